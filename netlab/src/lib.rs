//! The lab: two network namespaces joined by one veth pair, a test head on one end and
//! a reflector on the other, so real frames (XDP included) cross a real link on one
//! machine without a NIC or cable. The end-to-end tests, the classic-BPF kernel test
//! and `reflector-control demo` all build this one lab.
//!
//! ```text
//!   netns <prefix>-h                           netns <prefix>-r
//!   [NAME-h] <------------- veth -------------> [NAME-r]
//!   test head  00:c0:17:de:00:01                reflector  02:52:45:46:4c:01
//!              192.0.2.1/24  2001:db8::1/64                192.0.2.2/24  2001:db8::2/64
//! ```
//!
//! Both ends are created inside their namespaces, so nothing ever appears in the host
//! namespace. The [`Lab`] value is the guard: dropping it (also while a panic unwinds)
//! deletes both namespaces and the link with them.

#![forbid(unsafe_code)]

mod command;
mod error;
mod names;

pub use error::LabError;

use command::check;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

/// The test head's MAC, in the NetAlly OUI so that the reflector's default source-OUI
/// filter accepts its frames.
pub const HEAD_MAC: &str = "00:c0:17:de:00:01";
/// The reflector's MAC (locally administered): the one `dataplane::reference` frames
/// are addressed to, so reference frames injected at the head reach it unchanged.
pub const REFLECTOR_MAC: &str = "02:52:45:46:4c:01";
/// The ends' addresses are those of the reference frames, so the host stacks and the
/// STAMP sender use the same ones the probe puts into test frames.
pub const HEAD_IP: &str = "192.0.2.1";
pub const REFLECTOR_IP: &str = "192.0.2.2";
pub const HEAD_IPV6: &str = "2001:db8::1";
pub const REFLECTOR_IPV6: &str = "2001:db8::2";

/// Where iproute2 keeps named network namespaces.
const NETNS_DIR: &str = "/var/run/netns";

/// Settings every namespace gets before its end of the link exists, so the new
/// interface inherits them through `default`: addresses are usable at once (no
/// duplicate address detection, which would also put probes on the link) and no
/// router solicitations add to the background traffic the reflector counts.
const SYSCTLS: [&str; 3] = [
    "net.ipv6.conf.all.accept_dad=0",
    "net.ipv6.conf.default.accept_dad=0",
    "net.ipv6.conf.default.router_solicitations=0",
];

/// One end of the link: its namespace, interface and addresses.
#[derive(Debug)]
pub struct End {
    pub netns: String,
    pub interface: String,
    pub mac: &'static str,
    pub ip: &'static str,
    pub ipv6: &'static str,
}

impl End {
    /// A command that runs `program` inside this end's namespace.
    pub fn exec(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = ip(&["netns", "exec", &self.netns]);
        cmd.arg(program);
        cmd
    }

    /// Run `body` inside this end's namespace and return what it returns. It runs on a
    /// thread of its own (`setns` moves only the calling thread); sockets it opens stay
    /// in this namespace wherever they are used afterwards. A panic in `body` is
    /// resumed on the caller's thread.
    #[cfg(target_os = "linux")]
    pub fn run<T: Send>(&self, body: impl FnOnce() -> T + Send) -> Result<T, LabError> {
        let enter_error = |source| LabError::Enter {
            netns: self.netns.clone(),
            source,
        };
        let netns =
            std::fs::File::open(Path::new(NETNS_DIR).join(&self.netns)).map_err(enter_error)?;
        std::thread::scope(|scope| {
            let worker = scope.spawn(|| {
                nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|errno| enter_error(errno.into()))?;
                Ok(body())
            });
            worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// `ip -n NETNS ARGS...`, checked.
    fn ip(&self, args: &[&str]) -> Result<(), LabError> {
        let mut cmd = ip(&["-n", &self.netns]);
        cmd.args(args);
        check(cmd)
    }
}

/// A built lab; dropping it deletes both namespaces and the link between them.
#[derive(Debug)]
pub struct Lab {
    /// The name the interfaces are derived from.
    pub name: String,
    pub head: End,
    pub reflector: End,
}

impl Lab {
    /// The lab `name`: namespaces and interfaces `NAME-h` (head) and `NAME-r`
    /// (reflector). A stale lab of the same name, left by a process killed before it
    /// could clean up, is removed first.
    pub fn create(name: &str) -> Result<Lab, LabError> {
        names::validate(name)?;
        Lab::build(name, name, 1)
    }

    /// A lab of this process's own, for one test among many running at once:
    /// interfaces `NAME-h` and `NAME-r` as with [`Lab::create`], namespaces
    /// `NAME-PID-N-h` and `NAME-PID-N-r`, unique per process and call. Labs of the
    /// same name that processes no longer running left behind are removed first.
    pub fn unique(name: &str) -> Result<Lab, LabError> {
        Lab::unique_with_queues(name, 1)
    }

    /// [`Lab::unique`] with `queues` RX and TX queues on each end of the veth. veth
    /// delivers a frame to the peer's queue of the sending CPU (modulo the count) and
    /// runs that queue's NAPI there, so with one queue per CPU each CPU keeps its own
    /// pipeline (the fast test head's generators need that).
    pub fn unique_with_queues(name: &str, queues: u32) -> Result<Lab, LabError> {
        names::validate(name)?;
        names::remove_orphans(name);
        Lab::build(name, &names::unique_prefix(name), queues)
    }

    /// Whether a namespace of the lab [`Lab::create`] builds under `name` exists.
    pub fn exists(name: &str) -> bool {
        ["h", "r"]
            .iter()
            .any(|side| netns_exists(&format!("{name}-{side}")))
    }

    fn build(name: &str, netns_prefix: &str, queues: u32) -> Result<Lab, LabError> {
        let end = |side, mac, ip, ipv6| End {
            netns: format!("{netns_prefix}-{side}"),
            interface: format!("{name}-{side}"),
            mac,
            ip,
            ipv6,
        };
        let lab = Lab {
            name: name.into(),
            head: end("h", HEAD_MAC, HEAD_IP, HEAD_IPV6),
            reflector: end("r", REFLECTOR_MAC, REFLECTOR_IP, REFLECTOR_IPV6),
        };
        lab.remove();
        // On error `lab` is dropped here, which removes whatever was built.
        lab.configure(queues)?;
        Ok(lab)
    }

    fn configure(&self, queues: u32) -> Result<(), LabError> {
        let ends = [&self.head, &self.reflector];
        for end in ends {
            check(ip(&["netns", "add", &end.netns]))?;
            let mut sysctl = end.exec("sysctl");
            sysctl.args(["-q", "-w"]).args(SYSCTLS);
            check(sysctl)?;
        }
        let (head, reflector) = (&self.head, &self.reflector);
        let queues = queues.to_string();
        let queues = ["numtxqueues", &queues, "numrxqueues", &queues];
        let mut add = ip(&["link", "add", &head.interface, "netns", &head.netns]);
        add.args(["address", head.mac])
            .args(queues)
            .args(["type", "veth", "peer", "name", &reflector.interface])
            .args(["netns", &reflector.netns, "address", reflector.mac])
            .args(queues);
        check(add)?;
        for end in ends {
            let iface = end.interface.as_str();
            end.ip(&["addr", "add", &format!("{}/24", end.ip), "dev", iface])?;
            end.ip(&["addr", "add", &format!("{}/64", end.ipv6), "dev", iface])?;
            end.ip(&["link", "set", "dev", iface, "up"])?;
            end.ip(&["link", "set", "dev", "lo", "up"])?;
        }
        // veth hands locally generated UDP packets (the STAMP sender's) to the peer
        // with CHECKSUM_PARTIAL: the checksum field holds only the pseudo-header sum,
        // which a NIC would complete on the wire. XDP sees the raw field, so the head
        // computes full checksums, as a test head on a real link does.
        let mut ethtool = head.exec("ethtool");
        ethtool.args(["-K", &head.interface, "tx", "off"]);
        check(ethtool)
    }

    /// Set the MTU of both ends. Labs start at 1500: XDP in native mode on veth needs
    /// the whole frame in one page, so only tests without XDP raise it (for jumbo
    /// frames).
    pub fn set_mtu(&self, mtu: u32) -> Result<(), LabError> {
        for end in [&self.head, &self.reflector] {
            end.ip(&[
                "link",
                "set",
                "dev",
                &end.interface,
                "mtu",
                &mtu.to_string(),
            ])?;
        }
        Ok(())
    }

    /// Delete both namespaces, which deletes the link with them. Idempotent.
    fn remove(&self) {
        for end in [&self.head, &self.reflector] {
            remove_netns(&end.netns);
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Whether the named network namespace `netns` exists.
pub fn netns_exists(netns: &str) -> bool {
    Path::new(NETNS_DIR).join(netns).exists()
}

/// Delete the named namespace if it exists; best effort, as a missing one is the state
/// wanted and this also runs from `Drop`.
fn remove_netns(netns: &str) {
    if netns_exists(netns) {
        let mut del = ip(&["netns", "del", netns]);
        let _ = del.stderr(std::process::Stdio::null()).status();
    }
}

/// `ip ARGS...` (iproute2).
fn ip(args: &[&str]) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    cmd
}
