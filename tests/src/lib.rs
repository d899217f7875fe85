//! The end-to-end rig: the [`netlab`] lab (two network namespaces joined by a veth
//! pair), the reflector in one and the `reflector probe` test head in the other, both
//! the real binary.
//!
//! Everything here panics with the reason when the rig cannot be built: these tests run
//! as root in CI and must fail, never skip, when the machine can't do XDP or netns.

#![forbid(unsafe_code)]

use dataplane::{
    classify, Counters, DstMacFilter, Filter, MacAddr, Reject, Signature, TelemetryReport,
};
use platform_linux::packet::{PacketSocket, BATCH, SLOT_LEN};
use settings::events::{Event, PlatformInfo, ProbeReport};
use settings::XdpMode;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use netlab::{Lab, HEAD_IP, HEAD_MAC, REFLECTOR_IP, REFLECTOR_MAC};

/// `--allow` for [`Rig::probe_refused_then_allowed`]: no IPv4 source of the lab, and
/// the IPv6 documentation prefix.
pub const ALLOW_LIST: &str = "198.51.100.0/24,2001:db8::/32";
use xdp_filter::{XdpLink, XdpTxBaseline};

/// The `reflector` binary cargo built next to this test.
pub fn reflector_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("REFLECTOR_BIN") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/reflector
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in target/<profile>/deps")
        .join("reflector");
    assert!(
        path.exists(),
        "{} is missing: build it first (cargo build -p reflector) or set REFLECTOR_BIN",
        path.display()
    );
    path
}

/// The independent STAMP session-sender (stamp-suite, from crates.io) that
/// `scripts/setup.sh` installs under `target/tools`, or `$STAMP_SUITE_BIN`.
pub fn stamp_suite_binary() -> PathBuf {
    let path = std::env::var_os("STAMP_SUITE_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tools/bin/stamp-suite"),
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup.sh (it installs stamp-suite, the independent STAMP sender these tests interoperate with) or set STAMP_SUITE_BIN",
        path.display()
    );
    path
}

/// Run a command, panicking with its output if it fails.
pub fn must(cmd: &mut Command) -> Output {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Held by a test for its whole run so that, within one test binary, its lab runs
/// alone: a full-rate test must not share the two CPUs with another test's lab.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The lab (two namespaces joined by veth, removed on drop) with the real reflector
/// and test head to run in it.
pub struct Rig {
    pub lab: Lab,
}

impl Rig {
    /// Build a lab of this test's own: `name` tells concurrently running tests' labs
    /// apart in `ip netns list`.
    pub fn new(name: &str) -> Rig {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the end-to-end tests need root (network namespaces, XDP): run them with sudo"
        );
        let lab = Lab::unique(name).unwrap_or_else(|e| panic!("cannot build the lab: {e}"));
        Rig { lab }
    }

    /// Start the reflector on the reflector end with `args`; returns once it reports
    /// that it is running.
    pub fn start_reflector(&self, args: &[&str]) -> Reflector {
        self.start_reflector_under(&[], args)
    }

    /// [`Rig::start_reflector`] run through `wrapper` (a command that runs the rest of
    /// its command line, e.g. setpriv with its options), when not empty.
    pub fn start_reflector_under(&self, wrapper: &[&str], args: &[&str]) -> Reflector {
        let mut cmd = match wrapper {
            [] => self.lab.reflector.exec(reflector_binary()),
            [program, options @ ..] => {
                let mut cmd = self.lab.reflector.exec(program);
                cmd.args(options).arg(reflector_binary());
                cmd
            }
        };
        cmd.arg(&self.lab.reflector.interface)
            .args(["--json", "--stats-interval", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn the reflector");
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut reflector = Reflector {
            child,
            events,
            platform: PlatformInfo::default(),
        };
        match reflector.next_event(Duration::from_secs(20)) {
            Some(Event::Started { platform }) => {
                assert_eq!(platform.interface, self.lab.reflector.interface);
                reflector.platform = platform;
                reflector
            }
            other => {
                let stderr = reflector.stderr();
                panic!("the reflector did not start (got {other:?}):\n{stderr}")
            }
        }
    }

    /// Run the reflector on the reflector end with `args` until it exits (for command
    /// lines it must refuse).
    pub fn run_reflector(&self, args: &[&str]) -> Output {
        self.lab
            .reflector
            .exec(reflector_binary())
            .args(args)
            .output()
            .expect("run the reflector")
    }

    /// The allow-list scenario behind a reflector started with `--allow`
    /// [`ALLOW_LIST`]: 100 frames from the head's default IPv4 source, which the list
    /// leaves out, then 100 from an IPv6 source inside it; the two reports in order.
    pub fn probe_refused_then_allowed(&self) -> [ProbeReport; 2] {
        let paced = ["--count", "100", "--rate", "5000", "--wait", "0.3"];
        let refused = self.probe(&paced);
        let allowed = self.probe(
            &[
                &paced[..],
                &["--src-ip", "2001:db8::1", "--dst-ip", "2001:db8::2"],
            ]
            .concat(),
        );
        [refused, allowed]
    }

    /// Run the test head with `args` and return its report.
    pub fn probe(&self, args: &[&str]) -> ProbeReport {
        let mut reports = self.probe_reports(args);
        let last = reports.pop();
        assert!(
            reports.is_empty(),
            "probe {args:?} printed more than its report"
        );
        last.expect("probe_reports returns at least one report")
    }

    /// Run the test head with `args` and return every report it printed: with
    /// `--interval`, the reports so far and then the final one.
    pub fn probe_reports(&self, args: &[&str]) -> Vec<ProbeReport> {
        let output = self
            .lab
            .head
            .exec(reflector_binary())
            .args(["probe", &self.lab.head.interface])
            .args(["--to", REFLECTOR_MAC, "--json"])
            .args(args)
            .output()
            .expect("run the probe");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let reports = stdout
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<Vec<ProbeReport>, _>>();
        match reports {
            Ok(reports) if !reports.is_empty() => reports,
            outcome => panic!(
                "probe {args:?} printed no report ({:?}):\n{stdout}{}",
                outcome.err(),
                String::from_utf8_lossy(&output.stderr)
            ),
        }
    }

    /// Run stamp-suite's session-sender in the head namespace against the reflector's
    /// STAMP port with `args` (count, interval, ...). Returns its JSON summary and its
    /// per-packet lines (`seq=.. rtt=.. ttl=.. reflector_recv_ts=.. reflector_send_ts=..`).
    pub fn stamp_sender(&self, args: &[&str]) -> (serde_json::Value, Vec<String>) {
        let output = self
            .lab
            .head
            .exec(stamp_suite_binary())
            .args([
                "-r",
                REFLECTOR_IP,
                "-p",
                "862",
                "--output-format",
                "json",
                "-R",
            ])
            .args(args)
            .output()
            .expect("run stamp-suite");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "stamp-suite {args:?} failed:\n{stdout}{stderr}"
        );
        let summary = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!("stamp-suite {args:?} printed no JSON summary ({e}):\n{stdout}{stderr}")
        });
        let packets = stderr
            .lines()
            .filter(|l| l.starts_with("seq="))
            .map(str::to_owned)
            .collect();
        (summary, packets)
    }

    /// Is an XDP program attached to the reflector's interface?
    pub fn xdp_attached(&self) -> bool {
        let reflector = &self.lab.reflector;
        let out = must(Command::new("ip").args([
            "-n",
            &reflector.netns,
            "-d",
            "link",
            "show",
            &reflector.interface,
        ]));
        String::from_utf8_lossy(&out.stdout).contains("prog/xdp")
    }

    /// Send 100 frames from a foreign OUI and 100 to another UDP port, which the
    /// reflector must refuse (as `src_oui_mismatch` and `port_mismatch`); none may come
    /// back.
    pub fn send_refused_frames(&self) {
        let common = ["--count", "100", "--rate", "5000", "--wait", "0.3"];
        let foreign_oui = self.probe(&[&common[..], &["--src-mac", "00:11:22:33:44:55"]].concat());
        let wrong_port = self.probe(&[&common[..], &["--port", "9"]].concat());
        for report in [&foreign_oui, &wrong_port] {
            assert_eq!(report.sent, 100);
            assert_eq!(report.received, 0, "a refused frame came back: {report:?}");
        }
    }

    /// Wait up to 5 s for the XDP program to leave the reflector's interface (after
    /// SIGKILL the kernel releases the link as the process's files close); whether it
    /// did.
    pub fn xdp_detached_soon(&self) -> bool {
        for _ in 0..50 {
            if !self.xdp_attached() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Send `frames` raw from the head's end, as they are (no padding, any addresses),
    /// and count the UDP frames from `reflector_mac` that come back within `window`.
    pub fn inject_and_count_answers(
        &self,
        frames: &[&[u8]],
        reflector_mac: MacAddr,
        window: Duration,
    ) -> usize {
        let head = &self.lab.head;
        head.run(|| {
            let socket = PacketSocket::open(&head.interface).expect("packet socket on the head");
            send_all(&socket, frames);
            count_frames_from(&socket, reflector_mac, window)
        })
        .expect("enter the head's namespace")
    }

    /// Add (`"add"`) or remove (`"del"`) `prefix` (`203.0.113.7/24`) on the reflector's
    /// interface.
    pub fn reflector_address(&self, action: &str, prefix: &str) {
        let reflector = &self.lab.reflector;
        must(Command::new("ip").args([
            "-n",
            &reflector.netns,
            "address",
            action,
            prefix,
            "dev",
            &reflector.interface,
        ]));
    }

    /// Ping the reflector's address from the head: does the host stack still answer?
    pub fn ping(&self) -> bool {
        self.lab
            .head
            .exec("ping")
            .args(["-c", "3", "-i", "0.2", "-W", "1", REFLECTOR_IP])
            .stdout(Stdio::null())
            .status()
            .expect("run ping")
            .success()
    }
}

/// Send every one of `frames` from `socket` as it is, in bursts of up to a batch; what
/// the device queue does not take at once goes with the next burst.
pub fn send_all(socket: &PacketSocket, frames: &[&[u8]]) {
    let mut pending = frames;
    let give_up = Instant::now() + Duration::from_secs(5);
    while !pending.is_empty() {
        assert!(
            Instant::now() < give_up,
            "the head could not send its frames"
        );
        let sent = socket
            .send_many(pending.iter().take(BATCH).copied())
            .expect("send the frames");
        pending = &pending[sent..];
        if sent == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// UDP frames whose source MAC is `mac` seen on `socket` within `window`.
fn count_frames_from(socket: &PacketSocket, mac: MacAddr, window: Duration) -> usize {
    let mut seen = 0;
    for_each_udp_frame_from(socket, mac, window, |_| seen += 1);
    seen
}

/// Run `f` on every UDP frame whose source MAC is `mac` seen on `socket` within
/// `window`. (The reflector's host stack answers some refused frames itself, with ICMP
/// errors and ARP; those are not reflections.)
pub fn for_each_udp_frame_from(
    socket: &PacketSocket,
    mac: MacAddr,
    window: Duration,
    mut f: impl FnMut(&[u8]),
) {
    let any_udp = Filter {
        dst_mac: DstMacFilter::AnyUnicast,
        src_oui: None,
        udp_port: 0,
        ..Filter::default()
    };
    let is_udp = |frame: &[u8]| {
        matches!(
            classify(frame, &any_udp),
            Ok(_) | Err(Reject::NoSignature | Reject::StampTooShort)
        )
    };
    let mut slots = vec![0u8; BATCH * SLOT_LEN];
    let mut lens = vec![0usize; BATCH];
    let deadline = Instant::now() + window;
    while Instant::now() < deadline {
        if !socket.wait_readable(50).expect("poll the head socket") {
            continue;
        }
        let n = socket.recv_many(&mut slots, &mut lens).expect("receive");
        for (slot, &len) in slots.chunks(SLOT_LEN).zip(&lens).take(n) {
            let frame = &slot[..len];
            if len >= 12 && frame[6..12] == mac.0 && is_udp(frame) {
                f(frame);
            }
        }
    }
}

/// An XDP program on the head's end, for as long as frames an XDP program on the
/// reflector's end sends back with XDP_TX must arrive: veth drops them unless the peer
/// runs one too (a physical NIC needs none). It is the XDP_TX baseline bouncing UDP
/// port 1, which no test uses, so it passes every frame on to the head's sockets; being
/// multi-buffer aware, it attaches in native mode at any MTU.
pub struct HeadXdpReceiver {
    _program: XdpTxBaseline,
    _link: XdpLink,
}

impl Rig {
    pub fn receive_xdp_tx_on_head(&self) -> HeadXdpReceiver {
        let head = &self.lab.head;
        head.run(|| {
            let ifindex = platform_linux::iface::ifindex(&head.interface).expect("head ifindex");
            let program = XdpTxBaseline::load(1).expect("load the head's XDP program");
            let link = program
                .attach(ifindex, XdpMode::Native)
                .expect("attach the head's XDP program");
            HeadXdpReceiver {
                _program: program,
                _link: link,
            }
        })
        .expect("enter the head's namespace")
    }
}

/// The probe's arguments for one case of a coverage matrix: `count` frames of
/// `signature` at 5 kpps reflected in `mode`, from `ips[0]` to `ips[1]`, with the VLAN
/// `tags` (`"100,200"`; empty for none).
pub fn matrix_case<'a>(
    mode: &'a str,
    count: &'a str,
    signature: Signature,
    ips: [&'a str; 2],
    tags: &'a str,
) -> Vec<&'a str> {
    let mut args = vec![
        "--mode",
        mode,
        "--count",
        count,
        "--rate",
        "5000",
        "--wait",
        "0.3",
        "--signature",
        signature.name(),
        "--src-ip",
        ips[0],
        "--dst-ip",
        ips[1],
    ];
    if !tags.is_empty() {
        args.extend(["--vlan", tags]);
    }
    args
}

/// A running reflector process.
pub struct Reflector {
    child: Child,
    events: Receiver<String>,
    /// How it runs, from its `started` event.
    pub platform: PlatformInfo,
}

impl Reflector {
    pub fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        let line = self.events.recv_timeout(timeout).ok()?;
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}")))
    }

    /// Everything it wrote to stderr (stops it first).
    fn stderr(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut text = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Stop with SIGINT, as Ctrl-C would, and return the final totals it prints.
    pub fn stop(self) -> Counters {
        self.stop_with_telemetry().0
    }

    /// Stop with SIGINT; the final totals and telemetry (dwell time, streams).
    pub fn stop_with_telemetry(mut self) -> (Counters, TelemetryReport) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid()),
            nix::sys::signal::SIGINT,
        )
        .expect("signal the reflector");
        let status = self.child.wait().expect("wait for the reflector");
        assert!(
            status.success(),
            "the reflector exited with {status} after SIGINT"
        );
        while let Some(event) = self.next_event(Duration::from_secs(5)) {
            if let Event::Final {
                counters,
                telemetry,
                ..
            } = event
            {
                return (counters, telemetry);
            }
        }
        panic!("the reflector printed no final totals");
    }

    /// Stop as [`Reflector::stop`] does; also return what it wrote to stderr (its
    /// warnings), which must stay short enough for the pipe.
    pub fn stop_with_stderr(mut self) -> (Counters, String) {
        let mut stderr = self.child.stderr.take().expect("piped stderr");
        let counters = self.stop();
        let mut text = String::new();
        stderr
            .read_to_string(&mut text)
            .expect("read the reflector's stderr");
        (counters, text)
    }

    /// Kill with SIGKILL: no chance to clean up.
    pub fn kill9(mut self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid()),
            nix::sys::signal::SIGKILL,
        )
        .expect("signal the reflector");
        let _ = self.child.wait();
    }
}

impl Drop for Reflector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
