//! STAMP interoperability: an independent session-sender (stamp-suite, installed from
//! crates.io by `scripts/setup.sh`, not written here) in the head namespace, our
//! reflector on AF_XDP in the other, real packets over veth.

use dataplane::Signature;
use reflector_tests::Rig;
use serde_json::Value;

fn u64_at(summary: &Value, pointer: &str) -> u64 {
    summary
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("stamp-suite summary has no {pointer}: {summary}"))
}

fn f64_at(summary: &Value, pointer: &str) -> f64 {
    summary
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("stamp-suite summary has no {pointer}: {summary}"))
}

/// `key=value` from one of stamp-suite's per-packet lines.
fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.trim_end_matches("ms").parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no {key} in {line:?}")) as u64
}

#[test]
fn stamp_suite_sender_gets_every_answer_stateless() {
    let rig = Rig::new("stamp");
    let reflector = rig.start_reflector(&[]);
    let count = 300;
    let (summary, packets) = rig.stamp_sender(&["-c", "300", "-d", "2ms", "-L", "2"]);
    let (totals, telemetry) = reflector.stop_with_telemetry();

    assert_eq!(u64_at(&summary, "/packets_sent"), count);
    assert_eq!(u64_at(&summary, "/packets_received"), count, "{summary}");
    assert_eq!(u64_at(&summary, "/measurements/unknown_replies"), 0);
    assert_eq!(u64_at(&summary, "/measurements/duplicate_replies"), 0);
    // Stateless: the reflector's sequence number is the sender's.
    assert_eq!(
        u64_at(&summary, "/measurements/last_reflector_sequence"),
        count - 1
    );
    assert_eq!(
        u64_at(&summary, "/measurements/independent_sequence_observations"),
        0
    );
    // Both namespaces share one clock, so one-way delays computed from our T2 and T3
    // are small and positive; wrong timestamps show up as absurd values here.
    for direction in ["forward", "reverse"] {
        let min = f64_at(&summary, &format!("/owd/{direction}_min_ms"));
        let max = f64_at(&summary, &format!("/owd/{direction}_max_ms"));
        assert!(
            min >= 0.0 && max < 1000.0,
            "{direction} OWD {min}..{max} ms"
        );
    }
    // The sender reads our Error Estimate as we meant it: the kernel's clock state.
    let estimate = platform_linux::clock::stamp_error_estimate();
    let reflector_clock = &summary["owd"]["clock_quality"]["last_reflector"];
    assert_eq!(
        reflector_clock["synchronized"],
        estimate >> 15 == 1,
        "{reflector_clock}"
    );
    assert_eq!(reflector_clock["format"], "NTP", "{reflector_clock}");
    assert_eq!(
        reflector_clock["scale"],
        (estimate >> 8) & 0x3F,
        "{reflector_clock}"
    );
    assert_eq!(
        reflector_clock["multiplier"],
        estimate & 0xFF,
        "{reflector_clock}"
    );
    assert_eq!(packets.len() as u64, count);
    for line in &packets {
        // stamp-suite sends with TTL 255; the answer carries what arrived.
        assert_eq!(field(line, "ttl"), 255, "{line}");
        assert!(
            field(line, "reflector_send_ts") >= field(line, "reflector_recv_ts"),
            "{line}"
        );
    }

    assert_eq!(totals.signature(Signature::Stamp), count);
    assert_eq!(totals.reflected, count);
    let stream = telemetry
        .streams
        .iter()
        .find(|s| s.signature == Signature::Stamp)
        .expect("a STAMP stream");
    assert_eq!(stream.frames, count);
    assert_eq!(stream.src_ip.to_string(), reflector_tests::HEAD_IP);
    assert_eq!(stream.src_mac, reflector_tests::HEAD_MAC);
    assert_eq!(stream.dst_port, 862);
    let sequence = stream
        .sequence
        .expect("STAMP streams carry sequence numbers");
    assert_eq!(
        (sequence.lost, sequence.reordered, sequence.duplicated),
        (0, 0, 0)
    );
    assert!(telemetry.dwell_ns.count >= count);
    assert!(telemetry.dwell_ns.p50 <= telemetry.dwell_ns.max);
    // T2 and the dwell time start at the XDP program's stamp, not at the worker.
    assert_eq!(
        telemetry.platform_stamped_frames,
        totals.received - totals.rejected()
    );
}

#[test]
fn stamp_suite_sees_stateful_numbering_per_session() {
    let rig = Rig::new("stampsf");
    let reflector = rig.start_reflector(&["--stamp-mode", "stateful"]);
    // Two sessions (two sender ports), then the first port again: the sender restarts
    // its numbering at 0 on the same 5-tuple, and so does the reflector.
    let (a, _) = rig.stamp_sender(&["-c", "50", "-d", "2ms", "-L", "2", "-o", "40001"]);
    let (b, _) = rig.stamp_sender(&["-c", "30", "-d", "2ms", "-L", "2", "-o", "40002"]);
    let (a_again, _) = rig.stamp_sender(&["-c", "20", "-d", "2ms", "-L", "2", "-o", "40001"]);
    let (totals, telemetry) = reflector.stop_with_telemetry();

    for (summary, sent) in [(&a, 50), (&b, 30), (&a_again, 20)] {
        assert_eq!(u64_at(summary, "/packets_received"), sent, "{summary}");
        assert_eq!(
            u64_at(summary, "/measurements/last_reflector_sequence"),
            sent - 1,
            "{summary}"
        );
    }
    assert_eq!(totals.signature(Signature::Stamp), 100);
    let frames_from = |port: u16| {
        telemetry
            .streams
            .iter()
            .find(|s| s.src_port == port)
            .map(|s| (s.frames, s.sequence.map(|q| (q.duplicated, q.restarts))))
    };
    assert_eq!(frames_from(40001), Some((70, Some((0, 1)))));
    assert_eq!(frames_from(40002), Some((30, Some((0, 0)))));
}

/// The AF_PACKET back end copies frames, so the host stack sees STAMP packets too; the
/// reflector holds the STAMP port open so the stack stays quiet instead of answering
/// with ICMP port-unreachable, which would make the sender drop our answers.
#[test]
fn stamp_suite_gets_answers_through_the_af_packet_back_end() {
    let rig = Rig::new("stampafp");
    let reflector = rig.start_reflector(&["--backend", "af-packet"]);
    let (summary, _) = rig.stamp_sender(&["-c", "100", "-d", "2ms", "-L", "2"]);
    let totals = reflector.stop();
    assert_eq!(u64_at(&summary, "/packets_received"), 100, "{summary}");
    assert_eq!(totals.signature(Signature::Stamp), 100);
}

/// With TX checksum offload on (veth's default, as on virtio), a same-host sender's
/// packets carry only the pseudo-header sum in their UDP checksum; the answers must
/// carry a full one or the sender's kernel drops them. Each back end reads the frame
/// differently, so each is run.
#[test]
fn a_sender_with_tx_checksum_offload_gets_every_answer() {
    // xdp-tx (no stream tracking) hands STAMP to the same AF_XDP workers as xdp.
    for backend in [
        &["--backend", "xdp"][..],
        &["--backend", "xdp-tx", "--max-streams", "0"],
        &["--backend", "af-packet"],
    ] {
        let rig = Rig::new("stampcsum");
        let head = &rig.lab.head;
        reflector_tests::must(
            head.exec("ethtool")
                .args(["-K", &head.interface, "tx", "on"]),
        );
        let reflector = rig.start_reflector(backend);
        let (summary, _) = rig.stamp_sender(&["-c", "10", "-d", "5ms", "-L", "1"]);
        let totals = reflector.stop();
        assert_eq!(
            u64_at(&summary, "/packets_received"),
            10,
            "{backend:?}: {summary}"
        );
        assert_eq!(totals.signature(Signature::Stamp), 10, "{backend:?}");
        assert_eq!(totals.stamp_bad_checksum, 10, "{backend:?}: counted");
    }
}

/// stamp-suite's RFC 8972 TLV options: the reflector answers the types it implements
/// (flags clear, values filled), marks Location (not implemented) U and a TLV whose
/// Length runs past the packet M.
#[test]
fn stamp_suite_tlvs_are_answered_as_rfc_8972_says() {
    let rig = Rig::new("stamptlv");
    let reflector = rig.start_reflector(&[]);
    let (summary, _) = rig.stamp_sender(&[
        "-c",
        "20",
        "-d",
        "2ms",
        "-L",
        "2",
        "--extra-padding",
        "64",
        "--location",
        "--timestamp-info",
        "--cos",
        "--dscp",
        "46",
        "--direct-measurement",
        "--access-report",
        "1",
    ]);
    let (malformed, _) = rig.stamp_sender(&[
        "-c",
        "5",
        "-d",
        "2ms",
        "-L",
        "2",
        "--timestamp-info",
        "--malformed",
        "bad-length",
    ]);
    let totals = reflector.stop();

    assert_eq!(u64_at(&summary, "/packets_received"), 20, "{summary}");
    let tlvs = &summary["measurements"]["tlv_validation"];
    for (kind, unrecognized) in [(1, 0), (2, 20), (3, 0), (4, 0), (5, 0)] {
        let at = |flag: &str| format!("/by_type/{kind}/{flag}");
        assert_eq!(u64_at(tlvs, &at("observed")), 20, "type {kind}: {tlvs}");
        assert_eq!(
            u64_at(tlvs, &at("flags/unrecognized")),
            unrecognized,
            "type {kind}"
        );
        assert_eq!(u64_at(tlvs, &at("flags/malformed")), 0, "type {kind}");
    }
    // The sender sends its Access Report until acknowledged by an echo.
    assert_eq!(
        summary["access_report"]["outcome"], "acknowledged",
        "{summary}"
    );
    // Direct Measurement: the reflector's counts agree with what the sender saw.
    let direct = &summary["measurements"]["direct_measurement"];
    assert_eq!(
        u64_at(direct, "/latest_transmit/reflector_rx"),
        20,
        "{direct}"
    );
    assert_eq!(
        u64_at(direct, "/latest_transmit/reflector_tx"),
        20,
        "{direct}"
    );
    assert_eq!(u64_at(direct, "/forward_missing"), 0, "{direct}");
    assert_eq!(u64_at(direct, "/reverse_missing"), 0, "{direct}");

    assert_eq!(u64_at(&malformed, "/packets_received"), 5, "{malformed}");
    let tlvs = &malformed["measurements"]["tlv_validation"];
    assert_eq!(u64_at(tlvs, "/by_type/3/flags/malformed"), 0, "{tlvs}");
    assert_eq!(u64_at(tlvs, "/flags/malformed"), 5, "{tlvs}");
    assert_eq!(totals.signature(Signature::Stamp), 25);
}
