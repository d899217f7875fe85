//! Real frames through the real data path: the test head in one network namespace,
//! the AF_XDP reflector in another, joined by veth.

use dataplane::{Reject, Signature};
use reflector_tests::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// The signatures the probe sends (all but STAMP).
const BYTE_SIGNATURES: [Signature; Signature::BYTE_SIGNATURES] = [
    Signature::ProbeOt,
    Signature::DataOt,
    Signature::Latency,
    Signature::Rfc2544,
    Signature::Y1564,
];

/// Frames per probe in the coverage matrix: enough to notice loss, quick to run.
const FRAMES: &str = "200";

fn assert_all_reflected(report: &settings::events::ProbeReport, what: &str) {
    assert_eq!(
        report.sent, 200,
        "{what}: not everything was sent: {report:?}"
    );
    assert_eq!(
        report.received, report.sent,
        "{what}: frames lost: {report:?}"
    );
    assert_eq!(
        report.malformed, 0,
        "{what}: wrongly reflected frames: {report:?}"
    );
    assert_eq!(
        report.duplicated, 0,
        "{what}: duplicated frames: {report:?}"
    );
}

/// Every mode, IPv4 and IPv6, untagged, VLAN and QinQ, every signature. The probe checks
/// each reflection byte for byte against what the mode must produce.
#[test]
fn every_mode_family_tagging_and_signature_round_trips() {
    let rig = Rig::new("matrix");
    for mode in ["mac", "mac-ip", "all"] {
        let reflector = rig.start_reflector(&["--mode", mode]);
        assert_eq!(reflector.platform.backend, "af_xdp");
        let mut expected = [0u64; Signature::COUNT];
        let mut case = 0;
        for (family, ips) in [
            ("ipv4", ["192.0.2.1", "192.0.2.2"]),
            ("ipv6", ["2001:db8::1", "2001:db8::2"]),
        ] {
            for tags in ["", "10", "100,200"] {
                // IPv4 untagged runs every signature; the other combinations rotate
                // through them so each signature meets each family and tagging.
                // (STAMP is answered, not mirrored: tests/stamp.rs covers it.)
                let signatures: Vec<Signature> = if family == "ipv4" && tags.is_empty() {
                    BYTE_SIGNATURES.to_vec()
                } else {
                    case += 1;
                    vec![BYTE_SIGNATURES[case % BYTE_SIGNATURES.len()]]
                };
                for signature in signatures {
                    let args = matrix_case(mode, FRAMES, signature, ips, tags);
                    let report = rig.probe(&args);
                    assert_all_reflected(
                        &report,
                        &format!("{mode} {family} vlan[{tags}] {signature}"),
                    );
                    expected[signature.index()] += 200;
                }
            }
        }
        let totals = reflector.stop();
        assert_eq!(
            totals.per_signature, expected,
            "mode {mode}: per-signature counts"
        );
        assert_eq!(totals.reflected, expected.iter().sum::<u64>());
        assert_eq!(totals.tx_errors, 0);
    }
}

/// Frames the filter refuses are never reflected, and are counted by reason.
#[test]
fn frames_outside_the_filter_are_never_reflected() {
    let rig = Rig::new("refuse");
    let reflector = rig.start_reflector(&[]);
    rig.send_refused_frames();
    let totals = reflector.stop();
    assert_eq!(totals.reflected, 0);
    assert_eq!(totals.reject(Reject::SrcOuiMismatch), 100);
    assert_eq!(totals.reject(Reject::PortMismatch), 100);
}

/// ARP, ping and TCP to the reflector's host keep working while it runs: the XDP
/// program passes everything that is not a test frame to the kernel.
#[test]
fn host_traffic_still_works_while_reflecting() {
    let rig = Rig::new("host");
    let reflector = rig.start_reflector(&[]);
    assert!(
        rig.ping(),
        "ping to the reflector's host failed while reflecting"
    );

    // The listener stays in the reflector's namespace after it is opened there.
    let listener = rig
        .lab
        .reflector
        .run(|| TcpListener::bind((REFLECTOR_IP, 5201)))
        .expect("enter the reflector's namespace")
        .expect("listen");
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 5];
        conn.read_exact(&mut buf).expect("read");
        conn.write_all(&buf).expect("echo");
    });
    let echoed = rig
        .lab
        .head
        .run(|| {
            let mut conn = TcpStream::connect((REFLECTOR_IP, 5201))
                .expect("connect through the reflector's interface");
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            conn.write_all(b"hello").unwrap();
            let mut buf = [0u8; 5];
            conn.read_exact(&mut buf).expect("echo back");
            buf
        })
        .expect("enter the head's namespace");
    assert_eq!(&echoed, b"hello");
    server.join().expect("server");

    // Test frames still flow alongside.
    let report = rig.probe(&["--count", "200", "--rate", "5000", "--wait", "0.3"]);
    assert_all_reflected(&report, "alongside host traffic");
    let totals = reflector.stop();
    assert!(
        totals.reject(Reject::NotUdp) > 0,
        "TCP/ICMP/ARP should show up as not_udp: {totals:?}"
    );
}

/// SIGKILL gives the reflector no chance to clean up; the BPF link must still take the
/// program off the interface, and the host must stay reachable.
#[test]
fn sigkill_leaves_no_xdp_program_behind() {
    let rig = Rig::new("kill");
    let reflector = rig.start_reflector(&[]);
    assert!(
        rig.xdp_attached(),
        "no XDP program while the reflector runs"
    );
    reflector.kill9();
    assert!(
        rig.xdp_detached_soon(),
        "an XDP program is still attached after SIGKILL"
    );
    assert!(rig.ping(), "ping fails after the reflector was killed");
    // And a new reflector can take over the interface.
    let again = rig.start_reflector(&[]);
    let report = rig.probe(&["--count", "200", "--rate", "5000", "--wait", "0.3"]);
    assert_all_reflected(&report, "after a restart");
    again.stop();
}

/// Zero loss at a moderate rate for several seconds, in order.
#[test]
fn no_loss_at_a_moderate_rate() {
    let rig = Rig::new("rate");
    let reflector = rig.start_reflector(&[]);
    let report = rig.probe(&["--rate", "20000", "--duration", "3", "--wait", "0.5"]);
    assert_eq!(report.sent, 60_000);
    assert_eq!(report.lost, 0, "{report:?}");
    assert_eq!(report.reordered, 0, "{report:?}");
    assert_eq!(report.malformed, 0, "{report:?}");
    assert!(report.rtt_ns.p50 > 0 && report.rtt_ns.p50 <= report.rtt_ns.p99);
    let totals = reflector.stop();
    assert_eq!(totals.reflected, 60_000);
}

/// The AF_PACKET back end (the benchmark's baseline) reflects correctly too, VLAN
/// tags included.
#[test]
fn af_packet_backend_reflects() {
    let rig = Rig::new("afp");
    let reflector = rig.start_reflector(&["--backend", "af-packet"]);
    assert_eq!(reflector.platform.backend, "af_packet");
    for tags in [&[][..], &["--vlan", "7"][..]] {
        let report = rig.probe(
            &[
                &["--count", "200", "--rate", "5000", "--wait", "0.3"][..],
                tags,
            ]
            .concat(),
        );
        assert_all_reflected(&report, &format!("af_packet {tags:?}"));
    }
    assert_eq!(reflector.stop().reflected, 400);
}

/// Bad command lines fail at once with a message that says what is wrong.
#[test]
fn bad_setup_is_explained() {
    let rig = Rig::new("errors");
    let output = rig.run_reflector(&["nosuch0"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no interface named \"nosuch0\""),
        "{stderr}"
    );

    let output = rig.run_reflector(&[&rig.lab.reflector.interface, "--queues", "9"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("lower --queues"), "{stderr}");
    assert!(
        !rig.xdp_attached(),
        "a failed start left a program attached"
    );
}

/// The fallbacks a user can force: generic XDP, copy mode and busy polling all still
/// reflect, and the started event reports what was granted.
#[test]
fn generic_xdp_copy_mode_and_busy_poll_reflect() {
    let rig = Rig::new("modes");
    let reflector =
        rig.start_reflector(&["--xdp-mode", "generic", "--zero-copy", "off", "--busy-poll"]);
    assert_eq!(reflector.platform.xdp_mode.as_deref(), Some("generic"));
    assert_eq!(reflector.platform.zero_copy, Some(false));
    assert_eq!(reflector.platform.busy_poll, Some(true));
    let report = rig.probe(&["--count", "200", "--rate", "5000", "--wait", "0.3"]);
    assert_all_reflected(&report, "generic XDP, copy mode, busy poll");
    assert_eq!(reflector.stop().reflected, 200);
}

/// Asking for zero-copy on an interface without it fails with the way out.
#[test]
fn zero_copy_on_where_unsupported_is_explained() {
    let rig = Rig::new("zc");
    let output = rig.run_reflector(&[&rig.lab.reflector.interface, "--zero-copy", "on"]);
    assert!(
        !output.status.success(),
        "veth has no zero-copy, yet the reflector started"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--zero-copy auto"), "{stderr}");
    assert_eq!(
        stderr
            .matches("error code returned when creating AF_XDP socket")
            .count(),
        1,
        "each cause is printed once: {stderr}"
    );
    assert!(
        !rig.xdp_attached(),
        "a failed start left a program attached"
    );
}

/// A probe to the wrong MAC says what to check instead of only `lost N`.
#[test]
fn a_probe_that_gets_nothing_back_says_what_to_check() {
    let rig = Rig::new("nothing");
    let reflector = rig.start_reflector(&[]);
    let output = rig
        .lab
        .head
        .exec(reflector_binary())
        .args(["probe", &rig.lab.head.interface])
        .args([
            "--to",
            "02:00:00:00:00:99",
            "--count",
            "20",
            "--wait",
            "0.3",
        ])
        .output()
        .expect("run the probe");
    assert_eq!(
        output.status.code(),
        Some(2),
        "lost frames must fail the probe"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stdout.contains("lost 20"), "{stdout}");
    assert!(stdout.contains("none (nothing came back)"), "{stdout}");
    for hint in [
        "--to 02:00:00:00:00:99",
        "dst_mac_mismatch",
        "src_oui_mismatch",
        "port_mismatch",
    ] {
        assert!(stderr.contains(hint), "hint lacks {hint}: {stderr}");
    }
    assert_eq!(reflector.stop().reflected, 0);
}

/// A reflector on a link without carrier says so at start, and again whenever the
/// link changes, instead of running at 0 pps in silence.
#[test]
fn a_down_link_is_reported_at_start_and_on_change() {
    let rig = Rig::new("linkdown");
    let set_head_link = |state: &str| {
        must(
            rig.lab
                .head
                .exec("ip")
                .args(["link", "set", "dev", &rig.lab.head.interface, state]),
        );
    };
    set_head_link("down");
    let reflector = rig.start_reflector(&[]);
    std::thread::sleep(Duration::from_millis(1500));
    set_head_link("up");
    std::thread::sleep(Duration::from_millis(2500));
    let report = rig.probe(&["--count", "50", "--wait", "0.3"]);
    assert_eq!(report.received, 50, "the link came back: {report:?}");
    set_head_link("down");
    std::thread::sleep(Duration::from_millis(2500));
    let (_, stderr) = reflector.stop_with_stderr();
    let interface = &rig.lab.reflector.interface;
    let no_carrier = format!("interface {interface} is up but has no carrier");
    assert_eq!(
        stderr.matches(&no_carrier).count(),
        2,
        "warned at start and when the link went down again: {stderr}"
    );
    assert!(
        stderr.contains(&format!("interface {interface} is up again")),
        "{stderr}"
    );
}
