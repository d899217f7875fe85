//! STAMP answers, per-stream statistics, dwell time and the safety policy, through the
//! worker loop over the in-memory platform.

mod common;

use common::checksums_verify;
use dataplane::edits::layout_of;
use dataplane::frame::{FrameBuilder, IpSpec};
use dataplane::platform::memory::MemoryPlatform;
use dataplane::reference::{reference_filter, HEAD_MAC, REFLECTOR_MAC};
use dataplane::safety::RateLimit;
use dataplane::stamp::{sender_packet, NtpTimestamp, ANSWER_TTL};
use dataplane::wire::{EthernetFrame, Ipv4Packet, Ipv6Packet, StampPacket, UdpDatagram};
use dataplane::{classify, IpVersion, Layout, Reject, Signature, StampMode};
use dataplane::{Mode, WorkerShared};
use dataplane::{Telemetry, Worker, WorkerConfig};
use std::net::Ipv4Addr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A STAMP test packet: sequence `seq`, sender timestamp `1 s after the epoch`,
/// `padding` zero bytes after the base packet (a sender without RFC 8972 TLVs).
fn stamp_frame(seq: u32, ipv6: bool, padding: usize) -> FrameBuilder {
    let mut b = if ipv6 {
        FrameBuilder::ipv6(HEAD_MAC, REFLECTOR_MAC, Signature::Stamp)
    } else {
        FrameBuilder::ipv4(HEAD_MAC, REFLECTOR_MAC, Signature::Stamp)
    };
    b.payload = sender_packet(seq, NtpTimestamp::from_unix_nanos(1_000_000_000), 44);
    b.payload.extend(std::iter::repeat_n(0, padding));
    b
}

/// Run `frames` through one worker; returns (sent frames, counters, telemetry).
fn run(
    config: &WorkerConfig,
    frames: Vec<Vec<u8>>,
    batch: usize,
) -> (Vec<Vec<u8>>, dataplane::Counters, Telemetry) {
    let shared = Arc::new(WorkerShared::default());
    let mut worker = Worker::new(MemoryPlatform::new(batch, frames), config, shared.clone());
    worker.run(&AtomicBool::new(false)).unwrap();
    let counters = shared.counters.snapshot();
    (worker.into_platform().sent, counters, shared.telemetry())
}

fn config() -> WorkerConfig {
    WorkerConfig::new(reference_filter(), Mode::All)
}

fn answer_of(frame: &[u8]) -> (StampPacket<Vec<u8>>, Layout) {
    // The answer goes back to the head, so classify it as the head's side would.
    let filter = dataplane::Filter {
        dst_mac: dataplane::DstMacFilter::Exact(HEAD_MAC),
        src_oui: None,
        ..reference_filter()
    };
    let mut frame = frame.to_vec();
    // Take the answer's destination (the sender's port) as the STAMP port, so the
    // classifier finds the STAMP layout.
    let l4 = layout_of(&frame).expect("answer has a UDP header").l4;
    let stamp_port = UdpDatagram::new_unchecked(&frame[l4..]).dst_port();
    let layout = classify(
        &frame,
        &dataplane::Filter {
            udp_port: 0,
            stamp_port,
            ..filter
        },
    )
    .map(|a| a.layout)
    .unwrap_or_else(|r| panic!("answer does not parse: {r}"));
    frame.truncate(layout.end());
    let payload = frame[layout.payload()..].to_vec();
    (StampPacket::new_checked(payload).unwrap(), layout)
}

#[test]
fn stamp_answers_carry_every_rfc8762_field_and_valid_checksums() {
    for ipv6 in [false, true] {
        for padding in [0, 1, 100] {
            let sent = stamp_frame(7, ipv6, padding).build();
            let before = now_nanos();
            let (out, counters, _) = run(&config(), vec![sent.clone()], 8);
            let after = now_nanos();
            assert_eq!(counters.signature(Signature::Stamp), 1);
            let answer_frame = &out[0];
            assert_eq!(
                answer_frame.len(),
                sent.len(),
                "answers keep the sender's length"
            );
            let (answer, layout) = answer_of(answer_frame);
            assert!(
                checksums_verify(answer_frame, &layout),
                "ipv6={ipv6} padding={padding}"
            );
            assert_eq!(
                answer.sequence(),
                7,
                "stateless: the sender's sequence number"
            );
            assert_eq!(answer.sender_sequence(), 7);
            assert_eq!(
                answer.sender_timestamp(),
                NtpTimestamp::from_unix_nanos(1_000_000_000)
            );
            assert_eq!(answer.sender_error_estimate(), 0x0001);
            assert_eq!(answer.sender_ttl(), 64, "the TTL the packet arrived with");
            assert!(answer.answer_mbz_clear());
            let (t2, t3) = (
                answer.receive_timestamp().to_unix_nanos(),
                answer.timestamp().to_unix_nanos(),
            );
            assert!(
                before <= t2 + 1 && t2 <= t3 && t3 <= after + 1,
                "{before} {t2} {t3} {after}"
            );
            let ip = &answer_frame[layout.l3..];
            let ttl = match layout.ip {
                IpVersion::V4 => Ipv4Packet::new_unchecked(ip).ttl(),
                IpVersion::V6 => Ipv6Packet::new_unchecked(ip).hop_limit(),
            };
            assert_eq!(ttl, ANSWER_TTL);
            // Back to the sender's socket: ports swapped even though ITO mode could differ.
            let udp = UdpDatagram::new_unchecked(&answer_frame[layout.l4..]);
            assert_eq!((udp.src_port(), udp.dst_port()), (862, 49152));
            assert_eq!(
                EthernetFrame::new_unchecked(answer_frame).dst_addr(),
                HEAD_MAC
            );
            assert!(
                answer_frame[layout.payload() + 44..layout.end()]
                    .iter()
                    .all(|b| *b == 0),
                "zero padding is not read as TLVs"
            );
            assert_eq!(counters.stamp_bad_checksum, 0);
        }
    }
}

#[test]
fn platform_receive_stamps_become_t2_and_start_the_dwell_time() {
    let arrived = now_nanos() - 5_000_000; // 5 ms before the worker sees it
    let mut platform = MemoryPlatform::new(8, vec![stamp_frame(9, false, 0).build()]);
    platform.receive_stamp = Some(arrived);
    let shared = Arc::new(WorkerShared::default());
    let mut worker = Worker::new(platform, &config(), shared.clone());
    worker.run(&AtomicBool::new(false)).unwrap();
    let sent = worker.into_platform().sent;
    let (answer, _) = answer_of(&sent[0]);
    assert_eq!(
        answer.receive_timestamp(),
        NtpTimestamp::from_unix_nanos(arrived)
    );
    assert!(answer.timestamp().to_unix_nanos() >= arrived + 5_000_000);
    let telemetry = shared.telemetry();
    let dwell = telemetry.dwell.percentiles();
    assert!(
        dwell.min >= 5_000_000 && dwell.max < 1_000_000_000,
        "{dwell:?}"
    );
    assert_eq!(telemetry.platform_stamped_frames, 1);
}

#[test]
fn stamp_answers_swap_ports_even_in_mac_mode() {
    let config = WorkerConfig::new(reference_filter(), Mode::Mac);
    let (out, _, _) = run(&config, vec![stamp_frame(1, false, 0).build()], 8);
    let (_, layout) = answer_of(&out[0]);
    let udp = UdpDatagram::new_unchecked(&out[0][layout.l4..]);
    assert_eq!(udp.dst_port(), 49152);
    let ip = Ipv4Packet::new_unchecked(&out[0][layout.l3..]);
    assert_eq!(ip.dst_addr(), Ipv4Addr::new(192, 0, 2, 1));
}

#[test]
fn ipv4_udp_checksum_zero_stays_zero() {
    let mut b = stamp_frame(3, false, 0);
    if let IpSpec::V4 { udp_checksum, .. } = &mut b.ip {
        *udp_checksum = false;
    }
    let (out, _, _) = run(&config(), vec![b.build()], 8);
    let (answer, layout) = answer_of(&out[0]);
    assert_eq!(
        UdpDatagram::new_unchecked(&out[0][layout.l4..]).checksum(),
        0
    );
    assert!(checksums_verify(&out[0], &layout));
    assert_eq!(answer.sender_sequence(), 3);
}

#[test]
fn stateful_mode_numbers_each_session_itself_and_streams_count_loss() {
    let mut config = config();
    config.stamp.mode = StampMode::Stateful;
    // Session A sends 10, 11, 13, 12, 12 (13 overtakes 12, then 12 is repeated);
    // session B (another source port) sends 100, 101.
    let mut frames: Vec<Vec<u8>> = [10, 11, 13, 12, 12]
        .into_iter()
        .map(|seq| stamp_frame(seq, false, 0).build())
        .collect();
    for seq in [100, 101] {
        let mut b = stamp_frame(seq, false, 0);
        b.src_port = 50000;
        frames.push(b.build());
    }
    let (out, _, telemetry) = run(&config, frames, 2);
    let sequences: Vec<u32> = out.iter().map(|f| answer_of(f).0.sequence()).collect();
    assert_eq!(sequences, [0, 1, 2, 3, 4, 0, 1]);
    let senders: Vec<u32> = out
        .iter()
        .map(|f| answer_of(f).0.sender_sequence())
        .collect();
    assert_eq!(senders, [10, 11, 13, 12, 12, 100, 101]);

    assert_eq!(telemetry.streams.len(), 2);
    let a = telemetry
        .streams
        .iter()
        .find(|s| s.src_port == 49152)
        .unwrap();
    assert_eq!(
        (a.frames, a.signature, a.dst_port),
        (5, Signature::Stamp, 862)
    );
    let seq = a.sequence.unwrap();
    assert_eq!((seq.lost, seq.reordered, seq.duplicated), (0, 1, 1));
    assert_eq!(a.src_mac, "00:c0:17:54:05:01");
    assert!(a.first_seen_ms <= a.last_seen_ms && a.first_seen_ms > 1_600_000_000_000);
    let b = telemetry
        .streams
        .iter()
        .find(|s| s.src_port == 50000)
        .unwrap();
    assert_eq!(b.frames, 2);
}

#[test]
fn dwell_is_recorded_for_every_transmitted_frame() {
    let frames = (0..100)
        .map(|seq| stamp_frame(seq, false, 0).build())
        .collect();
    let (_, counters, telemetry) = run(&config(), frames, 16);
    let dwell = telemetry.dwell.percentiles();
    assert_eq!(dwell.count, counters.reflected);
    assert_eq!(
        telemetry.platform_stamped_frames, 0,
        "the memory platform stamps nothing by default"
    );
    assert!(dwell.min <= dwell.p50 && dwell.p50 <= dwell.p99 && dwell.p99 <= dwell.max);
    assert!(
        dwell.max < 1_000_000_000,
        "an in-memory batch takes far less than a second"
    );
}

#[test]
fn streams_beyond_the_cap_are_counted_untracked() {
    let mut config = config();
    config.streams.capacity = 3;
    let frames = (0..5u16)
        .map(|i| {
            let mut b = stamp_frame(0, false, 0);
            b.src_port = 40000 + i;
            b.build()
        })
        .collect();
    let (out, _, telemetry) = run(&config, frames, 8);
    assert_eq!(out.len(), 5, "untracked streams are still answered");
    assert_eq!(telemetry.streams.len(), 3);
    assert_eq!(telemetry.untracked_frames, 2);
}

#[test]
fn allow_list_refuses_other_sources() {
    let mut config = config();
    config.safety.allow = vec!["198.51.100.0/24".parse().unwrap()];
    let (out, counters, _) = run(&config, vec![stamp_frame(0, false, 0).build()], 8);
    assert!(out.is_empty());
    assert_eq!(counters.reject(Reject::SourceNotAllowed), 1);
    config.safety.allow.push("192.0.2.0/30".parse().unwrap());
    let (out, _, _) = run(&config, vec![stamp_frame(0, false, 0).build()], 8);
    assert_eq!(out.len(), 1);
}

#[test]
fn rate_limit_passes_the_burst_and_counts_the_rest() {
    let mut config = config();
    config.safety.rate_limit = Some(RateLimit {
        per_source_pps: 1,
        burst: 10,
    });
    let frames = (0..50)
        .map(|seq| stamp_frame(seq, false, 0).build())
        .collect();
    let (out, counters, _) = run(&config, frames, 64);
    assert_eq!(out.len(), 10);
    assert_eq!(counters.reject(Reject::RateLimited), 40);
    assert_eq!(counters.reflected, 10);
}

#[test]
fn loop_timeout_stops_reflection_and_says_so() {
    let mut config = config();
    config.safety.loop_timeout = Some(Duration::ZERO);
    let frames = (0..5)
        .map(|seq| stamp_frame(seq, false, 0).build())
        .collect();
    let (out, counters, telemetry) = run(&config, frames, 8);
    assert!(out.is_empty());
    assert_eq!(counters.reject(Reject::LoopTimeout), 5);
    assert!(telemetry.loop_timed_out);

    config.safety.loop_timeout = Some(Duration::from_secs(3600));
    let frames = (0..5)
        .map(|seq| stamp_frame(seq, false, 0).build())
        .collect();
    let (out, _, telemetry) = run(&config, frames, 8);
    assert_eq!(out.len(), 5);
    assert!(!telemetry.loop_timed_out);
}
