//! RFC 8972 TLVs and UDP checksums of STAMP answers, byte by byte, through the worker
//! loop over the in-memory platform.

mod common;

use common::checksums_verify;
use dataplane::edits::layout_of;
use dataplane::frame::{FrameBuilder, IpSpec};
use dataplane::platform::memory::MemoryPlatform;
use dataplane::reference::{reference_filter, HEAD_MAC, REFLECTOR_MAC};
use dataplane::stamp::{error_estimate, sender_packet, NtpTimestamp};
use dataplane::wire::{Ipv4Packet, Ipv6Packet, StampPacket, UdpDatagram};
use dataplane::{Counters, IpVersion, Layout, Mode, Signature, Worker, WorkerConfig};
use dataplane::{StampMode, Telemetry, WorkerShared};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

const U: u8 = 0x80;
const M: u8 = 0x40;

/// A STAMP packet with `tlvs` after the base packet, IPv4 or IPv6, with DSCP/ECN
/// byte `tos`.
fn frame(ipv6: bool, tos: u8, sequence: u32, tlvs: &[u8]) -> Vec<u8> {
    session_frame(ipv6, tos, 0, sequence, tlvs)
}

/// [`frame`] of the RFC 8972 session `ssid`.
fn session_frame(ipv6: bool, tos: u8, ssid: u16, sequence: u32, tlvs: &[u8]) -> Vec<u8> {
    let mut b = if ipv6 {
        FrameBuilder::ipv6(HEAD_MAC, REFLECTOR_MAC, Signature::Stamp)
    } else {
        FrameBuilder::ipv4(HEAD_MAC, REFLECTOR_MAC, Signature::Stamp)
    };
    b.payload = sender_packet(sequence, NtpTimestamp::from_unix_nanos(1_000_000_000), 44);
    StampPacket::new_unchecked(&mut b.payload[..]).set_ssid(ssid);
    b.payload.extend_from_slice(tlvs);
    let mut frame = b.build();
    let layout = layout_of(&frame).unwrap();
    set_tos(&mut frame, &layout, tos);
    frame
}

/// Set the DSCP/ECN byte of a built frame, keeping its checksums valid.
fn set_tos(frame: &mut [u8], layout: &Layout, tos: u8) {
    let ip = &mut frame[layout.l3..];
    match layout.ip {
        IpVersion::V4 => Ipv4Packet::new_unchecked(ip).set_tos_updating_checksum(tos),
        IpVersion::V6 => Ipv6Packet::new_unchecked(ip).set_traffic_class(tos),
    }
}

fn tos_of(frame: &[u8], layout: &Layout) -> u8 {
    let ip = &frame[layout.l3..];
    match layout.ip {
        IpVersion::V4 => Ipv4Packet::new_unchecked(ip).tos(),
        IpVersion::V6 => Ipv6Packet::new_unchecked(ip).traffic_class(),
    }
}

fn run_with(config: &WorkerConfig, frames: Vec<Vec<u8>>) -> (Vec<Vec<u8>>, Counters) {
    let shared = Arc::new(WorkerShared::default());
    let mut worker = Worker::new(MemoryPlatform::new(8, frames), config, shared.clone());
    worker.run(&AtomicBool::new(false)).unwrap();
    (worker.into_platform().sent, shared.counters.snapshot())
}

fn config() -> WorkerConfig {
    WorkerConfig::new(reference_filter(), Mode::All)
}

/// The answer's TLV bytes (after its 44-byte base packet), checking its checksums.
fn answer_tlvs(answer: &[u8]) -> Vec<u8> {
    let layout = layout_of(answer).unwrap();
    assert!(checksums_verify(answer, &layout), "answer checksums");
    answer[layout.payload() + 44..layout.end()].to_vec()
}

/// Answer one packet with `tlvs`; returns the answer's TLV bytes.
fn reflect_tlvs(tlvs: &[u8]) -> Vec<u8> {
    let (out, counters) = run_with(&config(), vec![frame(false, 0, 0, tlvs)]);
    assert_eq!(counters.signature(Signature::Stamp), 1);
    answer_tlvs(&out[0])
}

fn tlv(flags: u8, kind: u8, value: &[u8]) -> Vec<u8> {
    let mut t = vec![flags, kind];
    t.extend_from_slice(&(value.len() as u16).to_be_bytes());
    t.extend_from_slice(value);
    t
}

#[test]
fn unknown_types_come_back_unchanged_with_u_set() {
    for (kind, value) in [
        (200u8, &[1u8, 2, 3][..]),
        (0, &[9, 9]),
        (2, &[0; 12]),
        (7, &[0; 16]),
    ] {
        for sent_flags in [0, U] {
            let sent = tlv(sent_flags, kind, value);
            assert_eq!(reflect_tlvs(&sent), tlv(U, kind, value), "type {kind}");
        }
    }
}

#[test]
fn a_length_past_the_packet_sets_m_and_stops() {
    let padding = tlv(U, 1, &[0xAB; 4]);
    // Extra Padding claiming 100 bytes with 6 present.
    let truncated = [U, 1, 0, 100, 1, 2, 3, 4, 5, 6];
    let answer = reflect_tlvs(&[padding.clone(), truncated.to_vec()].concat());
    assert_eq!(
        answer,
        [tlv(0, 1, &[0xAB; 4]), vec![M, 1, 0, 100, 1, 2, 3, 4, 5, 6]].concat()
    );
    // An unknown type is both unrecognized and malformed.
    assert_eq!(reflect_tlvs(&[0, 99, 0, 8, 1]), [U | M, 99, 0, 8, 1]);
    // Fewer bytes than a TLV header.
    assert_eq!(reflect_tlvs(&[0, 3]), [M, 3]);
}

#[test]
fn a_wrong_length_for_the_type_sets_m_and_leaves_the_rest_unprocessed() {
    let bad_cos = tlv(U, 4, &[0xB8, 0, 0, 0, 0]);
    let timestamp_info = tlv(U, 3, &[0; 4]);
    let answer = reflect_tlvs(&[bad_cos, timestamp_info.clone()].concat());
    assert_eq!(
        answer,
        [tlv(M, 4, &[0xB8, 0, 0, 0, 0]), timestamp_info].concat()
    );
    for (kind, len) in [(3u8, 3usize), (5, 11), (5, 13), (6, 5)] {
        assert_eq!(
            reflect_tlvs(&tlv(U, kind, &vec![0; len])),
            tlv(M, kind, &vec![0; len])
        );
    }
}

#[test]
fn extra_padding_is_echoed_with_clear_flags() {
    let value: Vec<u8> = (0..=255).collect();
    assert_eq!(reflect_tlvs(&tlv(U, 1, &value)), tlv(0, 1, &value));
    assert_eq!(reflect_tlvs(&tlv(U, 1, &[])), tlv(0, 1, &[]));
}

#[test]
fn timestamp_information_names_the_clock_source_and_software_timestamps() {
    // Unsynchronised (the default Error Estimate): local free-running (5), SW local (2).
    assert_eq!(reflect_tlvs(&tlv(U, 3, &[0; 4])), tlv(0, 3, &[5, 2, 5, 2]));
    let mut synced = config();
    synced.stamp.error_estimate = error_estimate(true, 1_000_000);
    let (out, _) = run_with(&synced, vec![frame(true, 0, 0, &tlv(U, 3, &[0; 6]))]);
    // NTP (1); sub-TLV bytes after the four fields stay.
    assert_eq!(answer_tlvs(&out[0]), tlv(0, 3, &[1, 2, 1, 2, 0, 0]));
}

#[test]
fn class_of_service_reports_what_arrived_and_applies_dscp1() {
    for ipv6 in [false, true] {
        // DSCP1 46 (EF) requested; the packet arrived with DSCP 34 (AF41) and ECN 1.
        let sent_tos = 34 << 2 | 1;
        let request = tlv(U, 4, &[46 << 2, 0, 0xC0, 0]);
        let (out, _) = run_with(&config(), vec![frame(ipv6, sent_tos, 0, &request)]);
        let answer = &out[0];
        // DSCP1 101110 | DSCP2 100010 | ECN 01 | RP 00 | Reserved 0.
        let value = [0b1011_1010, 0b0010_0100, 0, 0];
        assert_eq!(answer_tlvs(answer), tlv(0, 4, &value), "ipv6={ipv6}");
        let layout = layout_of(answer).unwrap();
        assert_eq!(tos_of(answer, &layout), 46 << 2 | 1, "ipv6={ipv6}");
        // The same, as header bytes: DSCP 101110, ECN 01.
        let header = &answer[layout.l3..layout.l3 + 2];
        let expected = if ipv6 { [0x6B, 0x90] } else { [0x45, 0xB9] };
        assert_eq!(header, expected, "ipv6={ipv6}");
    }
}

#[test]
fn direct_measurement_carries_the_sessions_counts() {
    let request = |sent: u32| tlv(U, 5, &[sent.to_be_bytes(), [0; 4], [0; 4]].concat());
    let frames = (0..3)
        .map(|i| frame(false, 0, i, &request(i + 1)))
        .collect();
    let (out, _) = run_with(&config(), frames);
    for (i, answer) in out.iter().enumerate() {
        let n = i as u32 + 1;
        let value = [n.to_be_bytes(), n.to_be_bytes(), n.to_be_bytes()].concat();
        assert_eq!(answer_tlvs(answer), tlv(0, 5, &value), "packet {i}");
    }
    // Without a tracked stream there are no counts to give: not processed.
    let mut untracked = config();
    untracked.streams.capacity = 0;
    let (out, _) = run_with(&untracked, vec![frame(false, 0, 0, &request(1))]);
    assert_eq!(
        answer_tlvs(&out[0]),
        request(1)
            .iter()
            .enumerate()
            .map(|(i, b)| if i == 0 { U } else { *b })
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_sender_restart_restarts_the_sessions_counts_and_stateful_numbers() {
    let mut stateful = config();
    stateful.stamp.mode = StampMode::Stateful;
    let dm = tlv(U, 5, &[0; 12]);
    let frames = [0, 1, 2, 0, 1].map(|s| frame(false, 0, s, &dm)).to_vec();
    let (out, _) = run_with(&stateful, frames);
    let counts: Vec<(u32, u32)> = out
        .iter()
        .map(|answer| {
            let layout = layout_of(answer).unwrap();
            let payload = &answer[layout.payload()..];
            let sequence = u32::from_be_bytes(payload[0..4].try_into().unwrap());
            let received = u32::from_be_bytes(payload[52..56].try_into().unwrap());
            (sequence, received)
        })
        .collect();
    assert_eq!(counts, [(0, 1), (1, 2), (2, 3), (0, 1), (1, 2)]);
}

/// RFC 8972 section 3: a session is the 5-tuple and the SSID. Two senders sharing a
/// socket, interleaved, are two sessions, each numbered and counted on its own, and
/// neither looks like the other's restart or duplicates.
#[test]
fn two_ssids_on_one_five_tuple_are_two_sessions() {
    let mut stateful = config();
    stateful.stamp.mode = StampMode::Stateful;
    let dm = tlv(U, 5, &[0; 12]);
    let frames: Vec<_> = (0..6)
        .flat_map(|s| {
            [
                session_frame(false, 0, 1, s, &dm),
                session_frame(false, 0, 2, s, &dm),
            ]
        })
        .collect();
    let shared = Arc::new(WorkerShared::default());
    let mut worker = Worker::new(MemoryPlatform::new(8, frames), &stateful, shared.clone());
    worker.run(&AtomicBool::new(false)).unwrap();
    let out = worker.into_platform().sent;
    for (i, answer) in out.iter().enumerate() {
        let layout = layout_of(answer).unwrap();
        let payload = &answer[layout.payload()..];
        let answer_packet = StampPacket::new_unchecked(payload);
        let n = i as u32 / 2;
        assert_eq!(answer_packet.ssid(), 1 + i as u16 % 2);
        assert_eq!(answer_packet.sequence(), n, "answer {i}");
        let received = u32::from_be_bytes(payload[52..56].try_into().unwrap());
        assert_eq!(received, n + 1, "answer {i}: R_RxC");
    }
    // Reports (the workers' telemetry merged) fold the sessions into their stream.
    let telemetry = Telemetry::merge([&shared.telemetry()]);
    assert_eq!(telemetry.streams.len(), 1, "reported as one stream");
    let stream = &telemetry.streams[0];
    assert_eq!(stream.frames, 12);
    let q = stream.sequence.unwrap();
    assert_eq!(
        (q.lost, q.reordered, q.duplicated, q.restarts),
        (0, 0, 0, 0)
    );
}

#[test]
fn access_report_is_echoed_for_known_access_ids() {
    assert_eq!(
        reflect_tlvs(&tlv(U, 6, &[0x10, 1, 0, 0])),
        tlv(0, 6, &[0x10, 1, 0, 0])
    );
    assert_eq!(
        reflect_tlvs(&tlv(U, 6, &[0x30, 1, 0, 0])),
        tlv(U, 6, &[0x30, 1, 0, 0])
    );
}

#[test]
fn every_tlv_of_a_packet_is_answered_in_turn() {
    let sent = [
        tlv(U, 1, &[7; 3]),
        tlv(U, 3, &[0; 4]),
        tlv(0, 250, &[1]),
        tlv(U, 6, &[0x20, 2, 0, 0]),
    ]
    .concat();
    let expected = [
        tlv(0, 1, &[7; 3]),
        tlv(0, 3, &[5, 2, 5, 2]),
        tlv(U, 250, &[1]),
        tlv(0, 6, &[0x20, 2, 0, 0]),
    ]
    .concat();
    // Zero padding after the last TLV stays zero.
    let padded = [sent, vec![0; 9]].concat();
    assert_eq!(reflect_tlvs(&padded), [expected, vec![0; 9]].concat());
}

/// A same-host sender with TX checksum offload hands over its packet with only the
/// pseudo-header sum in the checksum field; the answer must carry a full checksum.
#[test]
fn answers_to_partially_checksummed_packets_carry_full_checksums_and_are_counted() {
    for ipv6 in [false, true] {
        let mut sent = frame(ipv6, 0, 3, &tlv(U, 3, &[0; 4]));
        let layout = layout_of(&sent).unwrap();
        let udp_len = layout.end() - layout.l4;
        let (src, dst): (Vec<u8>, Vec<u8>) = match layout.ip {
            IpVersion::V4 => {
                let ip = Ipv4Packet::new_unchecked(&sent[layout.l3..]);
                (ip.src_addr().octets().into(), ip.dst_addr().octets().into())
            }
            IpVersion::V6 => {
                let ip = Ipv6Packet::new_unchecked(&sent[layout.l3..]);
                (ip.src_addr().octets().into(), ip.dst_addr().octets().into())
            }
        };
        let partial = dataplane::checksum::ones_complement_sum(
            &[],
            dataplane::checksum::udp_pseudo_header_sum(&src, &dst, udp_len),
        );
        UdpDatagram::new_unchecked(&mut sent[layout.l4..]).set_checksum(partial);
        let good = frame(ipv6, 0, 4, &[]);
        let (out, counters) = run_with(&config(), vec![sent, good]);
        assert_eq!(out.len(), 2, "both answered");
        for answer in &out {
            assert!(
                checksums_verify(answer, &layout_of(answer).unwrap()),
                "ipv6={ipv6}"
            );
        }
        assert_eq!(counters.stamp_bad_checksum, 1, "ipv6={ipv6}");
    }
}

#[test]
fn an_ipv4_packet_without_a_udp_checksum_is_not_counted_as_wrong() {
    let mut b = FrameBuilder::ipv4(HEAD_MAC, REFLECTOR_MAC, Signature::Stamp);
    b.payload = sender_packet(1, NtpTimestamp(0), 60);
    if let IpSpec::V4 { udp_checksum, .. } = &mut b.ip {
        *udp_checksum = false;
    }
    let (out, counters) = run_with(&config(), vec![b.build()]);
    let layout = layout_of(&out[0]).unwrap();
    assert_eq!(
        UdpDatagram::new_unchecked(&out[0][layout.l4..]).checksum(),
        0
    );
    assert_eq!(counters.stamp_bad_checksum, 0);
}

proptest::proptest! {
    /// Whatever follows the base packet (TLVs or garbage), it is answered without a
    /// panic, at the sender's length, with checksums that verify.
    #[test]
    fn any_tail_is_answered_in_place(tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), ipv6: bool) {
        let sent = frame(ipv6, 0, 1, &tail);
        let (out, counters) = run_with(&config(), vec![sent.clone()]);
        proptest::prop_assert_eq!(counters.signature(Signature::Stamp), 1);
        proptest::prop_assert_eq!(counters.stamp_bad_checksum, 0);
        proptest::prop_assert_eq!(out[0].len(), sent.len());
        proptest::prop_assert_eq!(answer_tlvs(&out[0]).len(), tail.len());
    }
}
