//! The fast test head (`reflector probe --engine fast`) on the lab: the kernel's
//! live-frames BPF_PROG_RUN sends, an XDP program on the head's end counts the returns.
//! Through the in-kernel XDP_TX baseline and through the AF_XDP reflector at a fixed
//! rate it must get every frame back, correctly reflected and with a sane RTT, and at
//! full rate it must offer far more than the socket engine's ~0.3 Mpps (the measured
//! figures are in docs/PERFORMANCE.md; this is a functional floor, not a benchmark).

use reflector_tests::*;
use settings::events::ProbeReport;
use settings::XdpMode;
use std::sync::{Mutex, MutexGuard};
use xdp_filter::{XdpLink, XdpTxBaseline};

/// One lab at a time: the full-rate test must not share the two CPUs with another.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn exclusive() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The XDP_TX baseline bouncing the test port on the reflector's end.
fn baseline(rig: &Rig) -> (XdpTxBaseline, XdpLink) {
    let end = &rig.lab.reflector;
    end.run(|| {
        let ifindex = platform_linux::iface::ifindex(&end.interface).expect("reflector ifindex");
        let program = XdpTxBaseline::load(dataplane::filter::DEFAULT_UDP_PORT)
            .expect("load the XDP_TX baseline");
        let link = program
            .attach(ifindex, XdpMode::Native)
            .expect("attach the XDP_TX baseline");
        (program, link)
    })
    .expect("enter the reflector's namespace")
}

fn fast(rig: &Rig, args: &[&str]) -> ProbeReport {
    rig.probe(&[&["--engine", "fast", "--wait", "0.5"][..], args].concat())
}

fn assert_every_frame_back(report: &ProbeReport, sent: u64, what: &str) {
    assert_eq!(report.sent, sent, "{what}: {report:?}");
    assert_eq!(report.received, sent, "{what}: frames lost: {report:?}");
    assert_eq!(report.lost, 0, "{what}: {report:?}");
    assert_eq!(report.malformed, 0, "{what}: wrongly reflected: {report:?}");
    assert_eq!(report.duplicated, 0, "{what}: {report:?}");
    let rtt = report.rtt_ns;
    assert_eq!(
        rtt.count, sent,
        "{what}: one RTT sample per frame: {report:?}"
    );
    assert!(
        0 < rtt.min && rtt.min <= rtt.p50 && rtt.p50 <= rtt.p99 && rtt.p99 <= rtt.max,
        "{what}: {rtt:?}"
    );
    // A veth round trip through XDP takes microseconds; a millisecond at the median
    // would mean the head's own delays are in the figure.
    assert!(rtt.p50 < 1_000_000, "{what}: {rtt:?}");
}

#[test]
fn fast_head_gets_every_frame_back_through_the_xdp_tx_baseline() {
    let _one = exclusive();
    let rig = Rig::new("fastbase");
    let (program, _link) = baseline(&rig);
    for size in ["64", "1518"] {
        let report = fast(
            &rig,
            &["--rate", "100000", "--count", "50000", "--size", size],
        );
        assert_every_frame_back(&report, 50_000, &format!("{size} B"));
    }
    assert_eq!(program.bounced().unwrap(), 100_000);
}

#[test]
fn fast_head_gets_every_frame_back_through_the_af_xdp_reflector() {
    let _one = exclusive();
    let rig = Rig::new("fastxsk");
    let reflector = rig.start_reflector(&["--backend", "af-xdp"]);
    assert_eq!(reflector.platform.backend, "af_xdp");
    let report = fast(&rig, &["--rate", "20000", "--duration", "2"]);
    assert_every_frame_back(&report, 40_000, "af_xdp");
    assert_eq!(reflector.stop().reflected, 40_000);
}

#[test]
fn fast_head_at_full_rate_offers_more_than_a_million_frames_a_second() {
    let _one = exclusive();
    let rig = Rig::new("fastmax");
    let (_program, _link) = baseline(&rig);
    let report = fast(&rig, &["--rate", "0", "--count", "3000000"]);
    assert_eq!(report.sent, 3_000_000, "{report:?}");
    assert!(report.tx_pps > 1e6, "{report:?}");
    assert!(report.received > 0, "{report:?}");
    assert_eq!(report.malformed, 0, "{report:?}");
}

/// The RFC 2544 search finds a zero-loss rate per size and shows every trial; it needs
/// the fast engine.
#[test]
fn throughput_search_reports_a_zero_loss_rate_per_size() {
    let _one = exclusive();
    let rig = Rig::new("fastsearch");
    let (_program, _link) = baseline(&rig);
    let run = |args: &[&str]| {
        rig.lab
            .head
            .exec(reflector_binary())
            .args(["probe", &rig.lab.head.interface, "--to", REFLECTOR_MAC])
            .args(args)
            .output()
            .expect("run the probe")
    };
    let output = run(&[
        "--engine",
        "fast",
        "--search",
        "--sizes",
        "64,512",
        "--duration",
        "0.3",
        "--wait",
        "0.2",
        "--json",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON table");
    let rows = table["search"].as_array().expect("search rows");
    assert_eq!(rows.len(), 2, "{table}");
    for (row, size) in rows.iter().zip([64, 512]) {
        assert_eq!(row["size"], size, "{row}");
        let zero_loss = row["zero_loss_pps"].as_u64().unwrap();
        let max = row["max_offered_pps"].as_u64().unwrap();
        assert!(zero_loss > 0 && zero_loss <= max, "{row}");
        let trials = row["trials"].as_array().unwrap();
        assert!(!trials.is_empty() && trials.len() <= 9, "{row}");
        assert_eq!(
            trials[0]["rate"], 0,
            "the first trial is at full rate: {row}"
        );
    }

    let refused = run(&["--search"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--engine fast"), "{stderr}");
}
