//! The socket engine of `reflector probe` times round trips with the kernel's software
//! stamps (SO_TIMESTAMPING): each reflection's receive stamp, and each frame's transmit
//! stamp from the socket's error queue. On veth the kernel gives both, so every frame
//! that comes back must have a round-trip sample from the two, and say so.

use reflector_tests::*;
use settings::events::ProbeReport;

/// A round trip over veth in one machine takes microseconds; 20 ms is far beyond any
/// plausible one, yet far below a stamp taken from the wrong clock or the wrong frame
/// (those are off by the clocks' epochs or by whole seconds).
const GENEROUS_NS: u64 = 20_000_000;

fn assert_kernel_stamped(report: &ProbeReport, sent: u64, what: &str) {
    assert_eq!(report.received, sent, "{what}: frames lost: {report:?}");
    assert_eq!(report.malformed, 0, "{what}: {report:?}");
    assert_eq!(
        report.timestamps.as_deref(),
        Some("kernel software"),
        "{what}: {report:?}"
    );
    let rtt = &report.rtt_ns;
    assert_eq!(
        rtt.count, report.received,
        "{what}: a returned frame without a round-trip sample: {report:?}"
    );
    assert!(
        rtt.min > 0 && rtt.p50 >= rtt.min && rtt.p50 < GENEROUS_NS && rtt.max < GENEROUS_NS,
        "{what}: implausible round trips: {rtt:?}"
    );
}

#[test]
fn every_reflection_through_the_af_xdp_reflector_is_timed_by_kernel_stamps() {
    let rig = Rig::new("tsxdp");
    let reflector = rig.start_reflector(&[]);
    // One at a time, then batches of 64 (above 10 kpps), untagged and QinQ.
    for (rate, tags) in [
        ("1000", &[][..]),
        ("50000", &[][..]),
        ("2000", &["--vlan", "10,20"][..]),
    ] {
        let report = rig.probe(
            &[
                &["--count", "2000", "--rate", rate, "--wait", "0.3"][..],
                tags,
            ]
            .concat(),
        );
        assert_kernel_stamped(&report, 2000, &format!("af_xdp {rate} pps {tags:?}"));
    }
    assert_eq!(reflector.stop().reflected, 6000);
}

#[test]
fn every_reflection_through_the_af_packet_reflector_is_timed_by_kernel_stamps() {
    let rig = Rig::new("tsafp");
    let reflector = rig.start_reflector(&["--backend", "af-packet"]);
    let report = rig.probe(&["--count", "2000", "--rate", "5000", "--wait", "0.3"]);
    assert_kernel_stamped(&report, 2000, "af_packet");
    assert_eq!(reflector.stop().reflected, 2000);
}
