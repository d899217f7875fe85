//! The in-kernel back end (`--backend xdp-tx`) on the lab: the XDP program swaps and
//! returns test frames itself (STAMP still goes to an AF_XDP worker), runs the policy
//! (allow-list, rate limit, loop timeout) as the AF_XDP worker does, the counters in
//! the final JSON event come from its per-CPU maps, and `--backend auto` picks it only
//! when every enabled feature runs in the kernel.

use dataplane::{Counters, Reject, Signature, TelemetryReport};
use reflector_tests::*;
use settings::events::ProbeReport;

/// The in-kernel back end with the one feature it cannot run turned off.
const XDP_TX: [&str; 4] = ["--backend", "xdp-tx", "--max-streams", "0"];

const SIGNATURES: [Signature; Signature::BYTE_SIGNATURES] = [
    Signature::ProbeOt,
    Signature::DataOt,
    Signature::Latency,
    Signature::Rfc2544,
    Signature::Y1564,
];

/// A lab whose head can receive XDP_TX (see [`HeadXdpReceiver`]).
struct TxRig {
    rig: Rig,
    _head_program: HeadXdpReceiver,
}

fn rig(name: &str) -> TxRig {
    let rig = Rig::new(name);
    let head_program = rig.receive_xdp_tx_on_head();
    TxRig {
        rig,
        _head_program: head_program,
    }
}

impl std::ops::Deref for TxRig {
    type Target = Rig;

    fn deref(&self) -> &Rig {
        &self.rig
    }
}

fn assert_all_reflected(report: &ProbeReport, sent: u64, what: &str) {
    assert_eq!(
        report.sent, sent,
        "{what}: not everything was sent: {report:?}"
    );
    assert_eq!(report.lost, 0, "{what}: frames lost: {report:?}");
    assert_eq!(report.received, sent, "{what}: frames lost: {report:?}");
    assert_eq!(report.malformed, 0, "{what}: wrongly reflected: {report:?}");
    assert_eq!(report.duplicated, 0, "{what}: duplicated: {report:?}");
}

/// Every mode, IPv4 and IPv6, untagged, VLAN and QinQ: the probe checks each reflection
/// byte for byte against what the mode must produce, and the final event counts every
/// frame the kernel reflected, by signature, and every one it refused, by reason.
#[test]
fn xdp_tx_reflects_every_mode_family_and_tagging_in_the_kernel() {
    let rig = rig("xdptx");
    for mode in ["mac", "mac-ip", "all"] {
        let reflector = rig.start_reflector(&[&XDP_TX[..], &["--mode", mode]].concat());
        assert_eq!(reflector.platform.backend, "xdp_tx");
        assert_eq!(reflector.platform.reason, None, "asked for by name");
        let mut expected = [0u64; Signature::COUNT];
        let mut case = 0;
        for (family, ips) in [
            ("ipv4", ["192.0.2.1", "192.0.2.2"]),
            ("ipv6", ["2001:db8::1", "2001:db8::2"]),
        ] {
            for tags in ["", "10", "100,200"] {
                case += 1;
                let signature = SIGNATURES[case % SIGNATURES.len()];
                let args = matrix_case(mode, "300", signature, ips, tags);
                let report = rig.probe(&args);
                assert_all_reflected(&report, 300, &format!("{mode} {family} [{tags}]"));
                expected[signature.index()] += 300;
            }
        }
        // Refused in the kernel, counted by reason, never reflected.
        rig.send_refused_frames();
        let totals = reflector.stop();
        assert_eq!(totals.per_signature, expected, "mode {mode}: per signature");
        assert_eq!(totals.reflected, expected.iter().sum::<u64>());
        assert_eq!(totals.reject(Reject::SrcOuiMismatch), 100, "{totals:?}");
        assert_eq!(totals.reject(Reject::PortMismatch), 100, "{totals:?}");
        assert_eq!(totals.received, totals.reflected + totals.rejected());
        // The kernel's frames keep their length both ways (no STAMP was sent).
        assert!(totals.tx_bytes >= 64 * totals.reflected, "{totals:?}");
        assert_eq!(totals.rx_bytes, totals.tx_bytes, "{totals:?}");
        assert_eq!(totals.tx_errors, 0);
    }
}

/// STAMP packets still reach an AF_XDP worker, which answers them with timestamps,
/// while the kernel reflects the rest.
#[test]
fn xdp_tx_hands_stamp_to_the_worker() {
    let rig = rig("xdptxstamp");
    let reflector = rig.start_reflector(&XDP_TX);
    let (summary, _) = rig.stamp_sender(&["-c", "100", "-d", "2ms", "-L", "2"]);
    let report = rig.probe(&["--count", "200", "--rate", "5000", "--wait", "0.3"]);
    assert_all_reflected(&report, 200, "alongside STAMP");
    let totals = reflector.stop();
    assert_eq!(summary["packets_received"], 100, "{summary}");
    assert_eq!(totals.signature(Signature::Stamp), 100, "{totals:?}");
    assert_eq!(totals.reflected, 300, "{totals:?}");
}

/// SIGKILL leaves no program behind, as with AF_XDP: the BPF link goes with the process.
#[test]
fn sigkill_leaves_no_in_kernel_reflector_behind() {
    let rig = rig("xdptxkill");
    let reflector = rig.start_reflector(&XDP_TX);
    assert!(rig.xdp_attached(), "no XDP program while reflecting");
    reflector.kill9();
    assert!(
        rig.xdp_detached_soon(),
        "an XDP program is still attached after SIGKILL"
    );
    assert!(rig.ping(), "ping fails after the reflector was killed");
}

/// `auto` (the default) runs in the kernel exactly when every enabled feature can, and
/// says why in the started event; `xdp-tx` with a user-space feature is refused.
#[test]
fn auto_picks_the_back_end_the_features_allow() {
    let rig = rig("auto");
    let cases: [(&[&str], &str, &str); 3] = [
        (
            &["--max-streams", "0"],
            "xdp_tx",
            "auto: every enabled feature runs in the kernel",
        ),
        (
            &[],
            "af_xdp",
            "auto: stream tracking needs user space; --max-streams 0 for in-kernel",
        ),
        (
            &[
                "--max-streams",
                "0",
                "--rate-limit",
                "100000",
                "--allow",
                "0.0.0.0/0,::/0",
                "--loop-timeout",
                "3600",
            ],
            "xdp_tx",
            "auto: every enabled feature runs in the kernel",
        ),
    ];
    for (flags, backend, reason) in cases {
        let reflector = rig.start_reflector(flags);
        assert_eq!(reflector.platform.backend, backend, "{flags:?}");
        assert_eq!(reflector.platform.reason.as_deref(), Some(reason));
        let report = rig.probe(&["--count", "200", "--rate", "5000", "--wait", "0.3"]);
        assert_all_reflected(&report, 200, &format!("auto {flags:?}"));
        assert_eq!(reflector.stop().reflected, 200, "{flags:?}");
    }
    let refused = rig.run_reflector(&[&rig.lab.reflector.interface, "--backend", "xdp-tx"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("where stream tracking cannot run: set --max-streams 0"),
        "{stderr}"
    );
    assert!(
        !rig.xdp_attached(),
        "a refused start left a program attached"
    );
}

/// What one policy scenario came to on one back end.
struct Outcome {
    reports: Vec<ProbeReport>,
    totals: Counters,
    telemetry: TelemetryReport,
}

/// Run `scenario` (probe runs) against a reflector started with `flags` on the AF_XDP
/// back end and then on xdp-tx, both without stream tracking so the back end is the
/// only difference. Returns (AF_XDP, xdp-tx).
fn on_both_back_ends(
    rig: &TxRig,
    flags: &[&str],
    scenario: impl Fn(&TxRig) -> Vec<ProbeReport>,
) -> (Outcome, Outcome) {
    let run = |backend: &str, name: &str| {
        let args = [&["--backend", backend, "--max-streams", "0"][..], flags].concat();
        let reflector = rig.start_reflector(&args);
        assert_eq!(reflector.platform.backend, name);
        let reports = scenario(rig);
        let (totals, telemetry) = reflector.stop_with_telemetry();
        Outcome {
            reports,
            totals,
            telemetry,
        }
    };
    (run("xdp", "af_xdp"), run("xdp-tx", "xdp_tx"))
}

/// The allow-list: the refused source's frames are dropped in the kernel and counted as
/// `source_not_allowed`, exactly as the AF_XDP worker counts them.
#[test]
fn xdp_tx_allow_list_matches_the_worker() {
    let rig = rig("xdptxallow");
    let scenario = |rig: &TxRig| rig.probe_refused_then_allowed().to_vec();
    let (af_xdp, in_kernel) = on_both_back_ends(&rig, &["--allow", ALLOW_LIST], scenario);
    for (name, outcome) in [("af_xdp", &af_xdp), ("xdp_tx", &in_kernel)] {
        let [refused, allowed] = &outcome.reports[..] else {
            unreachable!()
        };
        assert_eq!(
            (refused.sent, refused.received),
            (100, 0),
            "{name}: {refused:?}"
        );
        assert_all_reflected(allowed, 100, name);
        assert_eq!(
            outcome.totals.reject(Reject::SourceNotAllowed),
            100,
            "{name}"
        );
        assert_eq!(outcome.totals.reflected, 100, "{name}");
    }
}

/// One probe run of `sent` frames: between `answered` of them came back, the rest were
/// counted under `reason`, on each back end. Returns the answers (AF_XDP, xdp-tx).
fn assert_limited(
    (af_xdp, in_kernel): &(Outcome, Outcome),
    sent: u64,
    answered: std::ops::RangeInclusive<u64>,
    reason: Reject,
) -> (u64, u64) {
    for (name, outcome) in [("af_xdp", af_xdp), ("xdp_tx", in_kernel)] {
        let report = &outcome.reports[0];
        assert_eq!(report.sent, sent, "{name}");
        assert!(
            answered.contains(&report.received),
            "{name}: expected {answered:?} answers, got {report:?}"
        );
        assert_eq!(outcome.totals.reflected, report.received, "{name}");
        let refused = outcome.totals.reject(reason);
        assert_eq!(refused, sent - report.received, "{name}: {reason}");
    }
    (af_xdp.reports[0].received, in_kernel.reports[0].received)
}

/// The rate limit: one source at 2000 pps against 200 pps with a burst of 20 gets about
/// 120 of 1000 frames answered on either back end; the rest are `rate_limited`.
#[test]
fn xdp_tx_rate_limit_matches_the_worker() {
    let rig = rig("xdptxrate");
    let scenario =
        |rig: &TxRig| vec![rig.probe(&["--count", "1000", "--rate", "2000", "--wait", "0.3"])];
    let limits = ["--rate-limit", "200", "--rate-burst", "20"];
    let outcomes = on_both_back_ends(&rig, &limits, scenario);
    let (a, b) = assert_limited(&outcomes, 1000, 100..=170, Reject::RateLimited);
    assert!(a.abs_diff(b) <= 30, "af_xdp answered {a}, xdp_tx {b}");
}

/// The loop timeout: about the first second of 2.5 s of traffic is answered, the rest
/// dropped as `loop_timeout`, and the telemetry says reflection stopped, on either back
/// end.
#[test]
fn xdp_tx_loop_timeout_matches_the_worker() {
    let rig = rig("xdptxloop");
    let scenario =
        |rig: &TxRig| vec![rig.probe(&["--count", "2500", "--rate", "1000", "--wait", "0.3"])];
    let outcomes = on_both_back_ends(&rig, &["--loop-timeout", "1"], scenario);
    assert_limited(&outcomes, 2500, 500..=1500, Reject::LoopTimeout);
    assert!(outcomes.0.telemetry.loop_timed_out, "af_xdp");
    assert!(outcomes.1.telemetry.loop_timed_out, "xdp_tx");
}
