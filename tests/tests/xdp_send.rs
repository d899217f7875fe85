//! `--xdp-send`: a copy-mode AF_XDP worker sends full batches as XDP frames through the
//! XDP program (a live-frames BPF_PROG_RUN) instead of through its socket. On veth the
//! device can send XDP frames only while its peer runs an XDP program (or has GRO on);
//! otherwise it refuses them, and the worker must notice and use the socket, losing
//! nothing.

use dataplane::reference::{
    reference_filter, reference_frames, REFLECTOR_MAC as REFERENCE_REFLECTOR_MAC,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use reflector_tests::*;
use std::time::Duration;

/// XDP frames the reflector's interface has sent (veth's `tx_queue_N_xdp_xmit`).
fn xdp_frames_sent(rig: &Rig) -> u64 {
    let reflector = &rig.lab.reflector;
    let out = must(reflector.exec("ethtool").args(["-S", &reflector.interface]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (name, value) = line.trim().split_once(": ")?;
            let queue = name.strip_prefix("tx_queue_")?;
            queue
                .ends_with("_xdp_xmit")
                .then(|| value.parse::<u64>().expect("a counter"))
        })
        .sum()
}

/// Through the fast head (which runs an XDP program on its end), at full rate: with
/// `--xdp-send on` (the default) most frames leave as XDP frames, with `off` none do,
/// and both return every frame.
#[test]
fn full_batches_leave_as_xdp_frames_and_every_frame_comes_back() {
    let _one = exclusive();
    let rig = Rig::new("xdpsend");
    for (setting, through_xdp) in [("on", true), ("off", false)] {
        let reflector = rig.start_reflector(&["--backend", "xdp", "--xdp-send", setting]);
        assert_eq!(
            reflector.platform.zero_copy,
            Some(false),
            "veth is copy mode"
        );
        assert_eq!(reflector.platform.xdp_send, Some(through_xdp), "{setting}");
        let before = xdp_frames_sent(&rig);
        let report = rig.probe(&["--engine", "fast", "--rate", "0", "--duration", "1"]);
        let sent_as_xdp = xdp_frames_sent(&rig) - before;
        let counters = reflector.stop();

        assert!(report.sent > 10_000, "{setting}: {report:?}");
        assert_eq!(
            report.received + counters.kernel.lost(),
            report.sent,
            "{setting}: every frame back or counted as a kernel drop: {report:?} {counters:?}"
        );
        assert_eq!(report.received, report.sent, "{setting}: {report:?}");
        assert_eq!(counters.reflected, report.sent, "{setting}");
        assert_eq!(counters.tx_errors, 0, "{setting}");
        if through_xdp {
            // At full rate the worker's batches are full; the few short ones (start,
            // end) go through the socket.
            assert!(
                sent_as_xdp * 2 > counters.reflected,
                "{setting}: {sent_as_xdp} of {} reflected frames left as XDP frames",
                counters.reflected
            );
        } else {
            assert_eq!(sent_as_xdp, 0, "{setting}");
        }
    }
}

/// A head without an XDP program and with GRO off: the device refuses XDP frames. The
/// worker's first full batch is refused, sent again through the socket, and the socket
/// sends from then on: every frame comes back and no error is counted.
#[test]
fn a_device_that_refuses_xdp_frames_loses_nothing() {
    let _one = exclusive();
    let rig = Rig::new("xdprefuse");
    let head = &rig.lab.head;
    must(
        head.exec("ethtool")
            .args(["-K", &head.interface, "gro", "off"]),
    );
    let link = must(
        head.exec("ip")
            .args(["-d", "link", "show", &head.interface]),
    );
    assert!(
        !String::from_utf8_lossy(&link.stdout).contains("prog/xdp"),
        "the head must run no XDP program"
    );
    let reflector = rig.start_reflector(&[]);
    assert_eq!(reflector.platform.xdp_send, Some(true));
    let frame = reference_frames()
        .into_iter()
        .find(|f| f.filter == reference_filter() && f.expected.is_ok())
        .expect("an accepted reference frame");
    let frames = vec![frame.bytes.as_slice(); 1000];

    // Stopped, the worker finds them all waiting when it resumes: full batches.
    let pid = Pid::from_raw(reflector.pid());
    kill(pid, Signal::SIGSTOP).expect("stop the reflector");
    let resume = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        kill(pid, Signal::SIGCONT).expect("resume the reflector");
    });
    let came_back =
        rig.inject_and_count_answers(&frames, REFERENCE_REFLECTOR_MAC, Duration::from_secs(2));
    resume.join().expect("the resuming thread");
    let sent_as_xdp = xdp_frames_sent(&rig);
    let (counters, stderr) = reflector.stop_with_stderr();

    assert_eq!(came_back, frames.len(), "every frame comes back");
    assert_eq!(counters.reflected, frames.len() as u64);
    assert_eq!(counters.tx_errors, 0);
    assert_eq!(sent_as_xdp, 0, "the device sent no XDP frame");
    assert!(
        stderr.contains("refused all") && stderr.contains("sends through the socket"),
        "the worker says it falls back: {stderr}"
    );
}
