//! While frames flow, an AF_XDP reflector holds a CPU latency request
//! (/dev/cpu_dma_latency at 0), so idle CPUs wake at once for the next frame; once no
//! frame has come for a second it lets go, so an idle reflector leaves the CPUs free to
//! sleep (docs/PERFORMANCE.md, "The tail at 1 kpps"). A busy-polling worker never
//! sleeps and asks for nothing.

use reflector_tests::Rig;
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

#[test]
fn the_request_is_held_while_frames_flow_and_released_a_second_after() {
    let rig = Rig::new("wake");
    let reflector = rig.start_reflector(&["--backend", "xdp"]);
    let pid = reflector.pid();
    assert!(
        !holds_request(pid),
        "an idle reflector must not hold a latency request"
    );

    send_traffic(&rig);
    assert!(
        holds_request(pid),
        "the reflector must hold a latency request right after frames arrived"
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
    let released_after = quiet_since.elapsed();
    assert!(
        !holds_request(pid),
        "the request must go within about a second of the last frame (still held after 3 s)"
    );
    assert!(
        released_after >= Duration::from_millis(800),
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
fn busy_polling_workers_ask_for_nothing() {
    let rig = Rig::new("wake-busy");
    let reflector = rig.start_reflector(&["--backend", "xdp", "--busy-poll"]);
    send_traffic(&rig);
    assert!(
        !holds_request(reflector.pid()),
        "a busy-polling worker never sleeps and must not hold a latency request"
    );
    reflector.stop();
}
