//! The fast test head (`reflector probe --engine fast`) on the lab: the kernel's
//! live-frames BPF_PROG_RUN sends, an XDP program on the head's end counts the returns.
//! Through the in-kernel XDP_TX baseline and through the AF_XDP reflector at a fixed
//! rate it must get every frame back, correctly reflected and with a sane RTT, and at
//! full rate it must offer far more than the socket engine's ~0.3 Mpps (the measured
//! figures are in docs/PERFORMANCE.md; this is a functional floor, not a benchmark).
//! With one generator per CPU on a veth with one queue per CPU, the generators' streams
//! interleave and must still come back whole, in order and once each.

use reflector_tests::*;
use settings::events::ProbeReport;
use settings::XdpMode;
use xdp_filter::{XdpLink, XdpTxBaseline};

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

/// A lab whose veth has `queues` RX/TX queues on each end.
fn rig_with_queues(name: &str, queues: u32) -> Rig {
    Rig {
        lab: Lab::unique_with_queues(name, queues)
            .unwrap_or_else(|e| panic!("cannot build the lab: {e}")),
    }
}

fn fast(rig: &Rig, args: &[&str]) -> ProbeReport {
    rig.probe(&[&["--engine", "fast", "--wait", "0.5"][..], args].concat())
}

fn assert_every_frame_back(report: &ProbeReport, sent: u64, what: &str) {
    assert_every_frame_back_once(report, sent, what);
    assert_eq!(
        report.rtt_ns.count, sent,
        "{what}: one RTT sample per frame at a fixed rate: {report:?}"
    );
}

/// Every frame back once, in order and correctly reflected, with a sane RTT (sampled
/// or not).
fn assert_every_frame_back_once(report: &ProbeReport, sent: u64, what: &str) {
    assert_eq!(report.sent, sent, "{what}: {report:?}");
    assert_eq!(report.received, sent, "{what}: frames lost: {report:?}");
    assert_eq!(report.lost, 0, "{what}: {report:?}");
    assert_eq!(report.malformed, 0, "{what}: wrongly reflected: {report:?}");
    assert_eq!(report.duplicated, 0, "{what}: {report:?}");
    assert_eq!(report.reordered, 0, "{what}: {report:?}");
    assert_eq!(
        report.timestamps.as_deref(),
        Some("XDP bpf_ktime_get_ns"),
        "{what}: {report:?}"
    );
    let rtt = report.rtt_ns;
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

/// Two generators, one per CPU, on a two-queue veth: at a fixed rate and at full rate
/// everything comes back through the XDP_TX baseline, and the interleaving of the two
/// streams is not counted as reordering. At full rate one frame in 16 is timed.
#[test]
fn two_generators_get_every_frame_back_in_order_through_the_xdp_tx_baseline() {
    let _one = exclusive();
    let rig = rig_with_queues("fastgen2", 2);
    let (program, _link) = baseline(&rig);
    let two = ["--generators", "2"];
    let report = fast(
        &rig,
        &[&two[..], &["--rate", "200000", "--count", "100000"]].concat(),
    );
    assert_every_frame_back(&report, 100_000, "2 generators at 200 kpps");

    let report = fast(
        &rig,
        &[&two[..], &["--rate", "0", "--count", "2000000"]].concat(),
    );
    assert_every_frame_back_once(&report, 2_000_000, "2 generators at full rate");
    assert_eq!(report.rtt_ns.count, 2_000_000 / 16, "{report:?}");
    assert!(report.tx_pps > 1e6, "{report:?}");
    assert_eq!(program.bounced().unwrap(), 2_100_000);
}

/// The AF_XDP reflector on a two-queue veth serves both queues (one worker each) and
/// returns both generators' frames.
#[test]
fn two_generators_get_every_frame_back_through_the_af_xdp_reflector_on_two_queues() {
    let _one = exclusive();
    let rig = rig_with_queues("fastxsk2", 2);
    let reflector = rig.start_reflector(&["--backend", "af-xdp"]);
    let report = fast(
        &rig,
        &["--generators", "2", "--rate", "20000", "--duration", "2"],
    );
    assert_every_frame_back(&report, 40_000, "af_xdp, 2 queues");
    assert_eq!(reflector.stop().reflected, 40_000);
}

/// A reflector told to serve fewer queues than the interface has warns, and counts the
/// test frames that arrive on the others (the XDP program passes them to the stack)
/// as lost, so its totals still describe everything that was sent.
#[test]
fn frames_on_a_queue_without_a_worker_are_counted() {
    let _one = exclusive();
    let rig = rig_with_queues("fastxskq1", 2);
    let reflector = rig.start_reflector(&["--backend", "af-xdp", "--queues", "1"]);
    let report = fast(
        &rig,
        &["--generators", "2", "--rate", "20000", "--duration", "1"],
    );
    assert_eq!(report.sent, 20_000, "{report:?}");
    let (totals, stderr) = reflector.stop_with_stderr();
    assert!(
        stderr.contains("1 of the 2 receive queues"),
        "no warning about the unserved queue: {stderr}"
    );
    let unserved = totals.kernel.unserved_queue;
    assert!(
        unserved > 0,
        "every frame on queue 0? {totals:?} {report:?}"
    );
    assert_eq!(totals.reflected, report.received, "{totals:?} {report:?}");
    // received also counts the lab's own chatter (IPv6 neighbour discovery), refused.
    assert_eq!(
        totals.reflected + totals.kernel.lost(),
        20_000,
        "{totals:?}"
    );
}

/// --generators beyond the CPUs the probe may use is refused with the count it has.
#[test]
fn more_generators_than_cpus_are_refused() {
    let rig = Rig::new("fastgenx");
    let output = rig
        .lab
        .head
        .exec("taskset")
        .args(["-c", "0"])
        .arg(reflector_binary())
        .args(["probe", &rig.lab.head.interface, "--to", REFLECTOR_MAC])
        .args(["--engine", "fast", "--generators", "2", "--count", "10"])
        .output()
        .expect("run the probe");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--generators 2") && stderr.contains("1 CPUs"),
        "{stderr}"
    );
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
