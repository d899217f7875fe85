//! While frames flow, a reflector whose workers sleep between frames (AF_XDP, AF_PACKET)
//! holds a CPU latency request (/dev/cpu_dma_latency at 0), so idle CPUs wake at once
//! for the next frame; once no frame has come for a second it lets go, so an idle
//! reflector leaves the CPUs free to sleep (docs/PERFORMANCE.md, "The tail at 1 kpps").
//! A busy-polling worker never sleeps and asks for nothing; `--wake-latency off` asks
//! for nothing either.

use reflector_tests::Rig;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const DEVICE: &str = "/dev/cpu_dma_latency";

/// Whether process `pid` has the latency device open, i.e. holds a request: the kernel
/// keeps one request per open file.
fn holds_request(pid: i32) -> bool {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("list the reflector's fds");
    fds.filter_map(Result::ok)
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == DEVICE))
}

/// The CPU latency the kernel currently enforces, over every request, in µs.
fn enforced_latency_us() -> i32 {
    let bytes = std::fs::read(DEVICE).expect("read /dev/cpu_dma_latency");
    i32::from_ne_bytes(bytes[..4].try_into().expect("an s32"))
}

/// Frames at 1 kpps for a second, returning at once after the last one.
fn send_traffic(rig: &Rig) {
    let report = rig.probe(&["--rate", "1000", "--duration", "1", "--wait", "0"]);
    assert!(report.received > 0, "nothing came back: {report:?}");
}

/// The request under `args`: none while idle, held right after frames, released about
/// a second after the last one, and taken again with the next frames. The first line
/// says it is on.
fn held_while_frames_flow_and_released_a_second_after(name: &str, args: &[&str]) {
    let rig = Rig::new(name);
    let reflector = rig.start_reflector(args);
    assert_eq!(reflector.platform.wake_latency, Some(true), "{args:?}");
    let pid = reflector.pid();
    assert!(
        !holds_request(pid),
        "an idle reflector must not hold a latency request"
    );

    send_traffic(&rig);
    assert!(
        holds_request(pid),
        "the reflector must hold a latency request right after frames arrived ({args:?})"
    );
    assert_eq!(
        enforced_latency_us(),
        0,
        "with the request held the kernel must enforce 0 µs"
    );

    let quiet_since = Instant::now();
    while holds_request(pid) && quiet_since.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Counted from the probe's exit, which comes a little after its last frame (more on
    // a loaded machine): hence a bound well below the second the request stays.
    let released_after = quiet_since.elapsed();
    assert!(
        !holds_request(pid),
        "the request must go within about a second of the last frame (still held after 3 s)"
    );
    assert!(
        released_after >= Duration::from_millis(500),
        "released {released_after:?} after the last frame: it must stay for about a second"
    );

    // Traffic again: held again.
    send_traffic(&rig);
    assert!(
        holds_request(pid),
        "the request must come back with the traffic"
    );
    reflector.stop();
}

#[test]
fn the_request_is_held_while_frames_flow_and_released_a_second_after() {
    held_while_frames_flow_and_released_a_second_after("wake", &["--backend", "xdp"]);
}

#[test]
fn af_packet_workers_hold_it_the_same_way() {
    held_while_frames_flow_and_released_a_second_after("wake-pkt", &["--backend", "af-packet"]);
}

/// Under `args` no request is ever taken: checked while frames flow (a second of them
/// from a second thread) and right after, when a request would still be held.
fn never_requested(name: &str, args: &[&str], why: &str) {
    let rig = Rig::new(name);
    let reflector = rig.start_reflector(args);
    assert_eq!(reflector.platform.wake_latency, Some(false), "{args:?}");
    let pid = reflector.pid();
    std::thread::scope(|scope| {
        let traffic = scope.spawn(|| send_traffic(&rig));
        while !traffic.is_finished() {
            assert!(
                !holds_request(pid),
                "{why} ({args:?}), yet held one under traffic"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        traffic.join().expect("the probe thread");
    });
    assert!(
        !holds_request(pid),
        "{why} ({args:?}), yet held one after traffic"
    );
    reflector.stop();
}

#[test]
fn busy_polling_workers_ask_for_nothing() {
    never_requested(
        "wake-busy",
        &["--backend", "xdp", "--busy-poll"],
        "a busy-polling worker never sleeps and must not hold a latency request",
    );
}

#[test]
fn turned_off_no_worker_asks_for_it() {
    for (name, backend) in [("wake-off", "xdp"), ("wake-offp", "af-packet")] {
        never_requested(
            name,
            &["--backend", backend, "--wake-latency", "off"],
            "with --wake-latency off no worker may hold a latency request",
        );
    }
}

/// The packaged service (deploy/reflector-control.service): its user, its capabilities,
/// no root. Without the package's udev rule the device is root's alone, so a worker
/// cannot take the request (it warns once); with the rule applied by udev itself, it
/// takes it as a root-run reflector does. The unit must also put the node into its
/// private /dev and allow it.
#[test]
fn the_packaged_service_takes_the_request_once_the_udev_rule_applies() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let unit =
        std::fs::read_to_string(deploy.join("reflector-control.service")).expect("read the unit");
    let values = |key: &str| -> Vec<String> {
        unit.lines()
            .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(values("PrivateDevices"), ["yes"]);
    assert_eq!(
        (values("BindPaths"), values("DeviceAllow")),
        (vec![format!("-{DEVICE}")], vec![format!("{DEVICE} rw")]),
        "the unit's private /dev must hold the device, and its device policy allow it"
    );
    let (user, group) = (values("User").concat(), values("Group").concat());
    let caps = values("AmbientCapabilities")
        .concat()
        .split_whitespace()
        .map(|cap| format!("+{}", cap.trim_start_matches("CAP_").to_lowercase()))
        .collect::<Vec<_>>()
        .join(",");
    service_user_as_the_package_makes_it(&deploy, &user);
    let as_service = [
        "setpriv",
        "--reuid",
        &user,
        "--regid",
        &group,
        "--init-groups",
        "--no-new-privs",
        "--bounding-set",
        &format!("-all,{caps}"),
        "--inh-caps",
        &format!("-all,{caps}"),
        "--ambient-caps",
        &format!("-all,{caps}"),
    ];
    // AF_PACKET: `ip netns exec` mounts a sysfs without /sys/fs/bpf, which only root
    // could mount again; the request is the same on every back end.
    let args = ["--backend", "af-packet"];
    let rig = Rig::new("wake-svc");

    // Without the rule the device is root's alone (the kernel's default).
    let device = DeviceAccess::kernel_default();
    let reflector = rig.start_reflector_under(&as_service, &args);
    send_traffic(&rig);
    assert!(
        !holds_request(reflector.pid()),
        "the service user opened {DEVICE} without the rule: the test proves nothing"
    );
    let (_, stderr) = reflector.stop_with_stderr();
    assert!(
        stderr.contains("cannot keep idle CPUs quick to wake"),
        "the worker must say it cannot take the request:\n{stderr}"
    );

    device.apply_udev_rule(&deploy.join("reflector-control.rules"));
    let after = std::fs::metadata(DEVICE).expect("stat the device");
    assert_eq!(
        (after.permissions().mode() & 0o777, group_name(after.gid())),
        (0o660, group.clone()),
        "udev must give {DEVICE} to the service's group, read-write"
    );
    let reflector = rig.start_reflector_under(&as_service, &args);
    send_traffic(&rig);
    assert!(
        holds_request(reflector.pid()),
        "the service's user must hold the request once the rule applies"
    );
    reflector.stop();
}

/// The service user, made as the package's postinst makes it (systemd-sysusers with the
/// package's file) when this machine has none yet.
fn service_user_as_the_package_makes_it(deploy: &Path, user: &str) {
    let exists = || {
        Command::new("getent")
            .args(["passwd", user])
            .output()
            .is_ok_and(|out| out.status.success())
    };
    if !exists() {
        reflector_tests::must(
            Command::new("systemd-sysusers").arg(deploy.join("reflector-control.sysusers")),
        );
    }
    assert!(exists(), "no user {user} after systemd-sysusers");
}

fn group_name(gid: u32) -> String {
    let out = reflector_tests::must(Command::new("getent").args(["group", &gid.to_string()]));
    String::from_utf8_lossy(&out.stdout)
        .split(':')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The device's access, as this test sets it: the kernel's default, then the package's
/// udev rule. Dropping it removes the rule and gives the device back the owner and mode
/// it had, and removes what `udevadm test` left where no udevd had made it.
struct DeviceAccess {
    before: std::fs::Metadata,
    /// What `udevadm test` may create, with whether each existed before.
    udev_leftovers: Vec<(PathBuf, bool)>,
}

/// Where udev reads runtime rules.
const RUNTIME_RULE: &str = "/run/udev/rules.d/60-reflector-control.rules";

impl DeviceAccess {
    fn kernel_default() -> DeviceAccess {
        let before = std::fs::metadata(DEVICE).expect("stat the device");
        let number = std::fs::read_to_string("/sys/class/misc/cpu_dma_latency/dev")
            .expect("read the device's number");
        let udev_leftovers = [
            PathBuf::from("/run/udev"),
            PathBuf::from(format!("/dev/char/{}", number.trim())),
        ]
        .map(|path| {
            let existed = path.symlink_metadata().is_ok();
            (path, existed)
        })
        .to_vec();
        let access = DeviceAccess {
            before,
            udev_leftovers,
        };
        std::os::unix::fs::chown(DEVICE, Some(0), Some(0)).expect("give the device to root");
        std::fs::set_permissions(DEVICE, std::fs::Permissions::from_mode(0o600))
            .expect("make the device root's alone");
        access
    }

    /// Install `rule` where udev reads runtime rules and have udev apply it to the
    /// device: udevd when it runs, else `udevadm test` (which applies the rules' GROUP
    /// and MODE to the node).
    fn apply_udev_rule(&self, rule: &Path) {
        std::fs::create_dir_all("/run/udev/rules.d").expect("create /run/udev/rules.d");
        std::fs::copy(rule, RUNTIME_RULE).expect("install the rule");
        let udevd_runs = Command::new("udevadm")
            .args(["control", "--ping"])
            .output()
            .is_ok_and(|out| out.status.success());
        if udevd_runs {
            reflector_tests::must(Command::new("udevadm").args(["control", "--reload-rules"]));
            reflector_tests::must(Command::new("udevadm").args([
                "trigger",
                "--action=change",
                "--settle",
                "/sys/class/misc/cpu_dma_latency",
            ]));
        } else {
            reflector_tests::must(
                Command::new("udevadm").args(["test", "/class/misc/cpu_dma_latency"]),
            );
        }
    }
}

impl Drop for DeviceAccess {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(RUNTIME_RULE);
        for (path, existed) in &self.udev_leftovers {
            if !existed && path.is_dir() && !path.is_symlink() {
                let _ = std::fs::remove_dir_all(path);
            } else if !existed {
                let _ = std::fs::remove_file(path);
            }
        }
        let (uid, gid) = (self.before.uid(), self.before.gid());
        let _ = std::os::unix::fs::chown(DEVICE, Some(uid), Some(gid));
        let _ = std::fs::set_permissions(DEVICE, self.before.permissions());
    }
}
