//! The AF_XDP worker's TX kick. In copy mode the kernel sends at most 32 frames per
//! sendto(2) by default and answers EAGAIN when more wait on the TX ring, so a full
//! 64-frame batch took two sendto calls, one of them failing. The reflector raises the
//! per-call budget (XDP_MAX_TX_SKB_BUDGET, Linux 6.17+) so that one kick sends the
//! whole batch. Counted with strace attached to the running reflector while the fast
//! head offers more than the traced worker keeps up with, so its batches are full.

use reflector_tests::*;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Whether the running kernel knows XDP_MAX_TX_SKB_BUDGET (6.17 and later).
fn kernel_has_tx_budget() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("kernel release");
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    (major, minor) >= (6, 17)
}

/// (calls, errors) of sendto in an `strace -c` summary.
fn sendto_calls(summary: &str) -> (u64, u64) {
    let line = summary
        .lines()
        .find(|l| l.split_whitespace().last() == Some("sendto"))
        .unwrap_or_else(|| panic!("no sendto line in the strace summary:\n{summary}"));
    let columns: Vec<&str> = line.split_whitespace().collect();
    // % time, seconds, usecs/call, calls, [errors,] syscall
    let calls = columns[3].parse().expect("the calls column");
    let errors = if columns.len() == 6 {
        columns[4].parse().expect("the errors column")
    } else {
        0
    };
    (calls, errors)
}

#[test]
fn one_tx_kick_sends_a_whole_batch() {
    let rig = Rig::new("txkick");
    // The socket's transmit is what is counted: full batches would otherwise leave as
    // XDP frames (tests/xdp_send.rs), without sendto.
    let reflector = rig.start_reflector(&["--backend", "xdp", "--xdp-send", "off"]);
    let summary = std::env::temp_dir().join(format!("rfl-txkick-{}.strace", std::process::id()));
    let mut strace = Command::new("strace")
        .args(["-f", "-c", "-e", "trace=sendto", "-o"])
        .arg(&summary)
        .args(["-p", &reflector.pid().to_string()])
        .stderr(Stdio::null())
        .spawn()
        .expect("run strace (scripts/setup.sh installs it)");
    std::thread::sleep(Duration::from_secs(1));
    let report = rig.probe(&["--engine", "fast", "--rate", "0", "--duration", "1"]);
    must(Command::new("kill").args(["-INT", &strace.id().to_string()]));
    strace.wait().expect("strace ends when interrupted");
    let text = std::fs::read_to_string(&summary).expect("the strace summary");
    let _ = std::fs::remove_file(&summary);
    let counters = reflector.stop();

    assert!(
        report.received > 10_000,
        "too few frames came back to judge: {report:?}"
    );
    assert_eq!(
        counters.reflected, report.received,
        "{counters:?} {report:?}"
    );
    let (calls, errors) = sendto_calls(&text);
    // Every batch is kicked once; with the default budget of 32 every full batch also
    // costs a failed call (EAGAIN), about half of all calls.
    let frames_per_call = counters.reflected / calls.max(1);
    if kernel_has_tx_budget() {
        assert!(
            errors * 20 <= calls,
            "{errors} of {calls} sendto calls failed (EAGAIN: the kick left frames on the TX ring):\n{text}"
        );
        assert!(
            frames_per_call > 32,
            "{frames_per_call} frames per sendto: no more than the kernel's default budget:\n{text}"
        );
    } else {
        assert!(calls > 0, "{text}");
    }
}
