//! The worker's policy run by the XDP program itself (`--backend xdp-tx`): the source
//! allow-list, the per-source rate limit and the loop timeout must decide every frame as
//! the worker's `Pipeline` does, reason included, in the kernel through
//! BPF_PROG_TEST_RUN. A refused frame is dropped (`XDP_DROP`), as the worker drops it,
//! and counted under the worker's reason; an admitted one is reflected byte for byte as
//! the worker reflects it. Needs root; without it the tests fail rather than skip.

use dataplane::frame::{FrameBuilder, IpSpec};
use dataplane::safety::{RateLimit, Safety, RATE_LIMIT_SOURCES};
use dataplane::worker::{BatchTime, Outcome, Pipeline, WorkerConfig};
use dataplane::{Filter, MacAddr, Mode, Reject, Signature};
use libbpf_rs::libbpf_sys::{XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX};
use std::net::IpAddr;
use std::time::{Duration, Instant};
use xdp_filter::{Reflection, XdpFilter};

const NETALLY_MAC: MacAddr = MacAddr([0, 0xc0, 0x17, 0, 0, 1]);
const REFLECTOR_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

/// What happened to one frame, said the same way for both sides.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    /// Reflected, leaving as these bytes.
    Reflected(Vec<u8>),
    /// A STAMP packet passed to the worker (the kernel) or answered (the worker).
    Stamp,
    Refused(Reject),
}

/// A test frame of `signature` from `src` to a documentation address of the same
/// family (never equal to the source).
fn frame_from(src: IpAddr, signature: Signature) -> Vec<u8> {
    let mut builder = match src {
        IpAddr::V4(src) => {
            let mut b = FrameBuilder::ipv4(NETALLY_MAC, REFLECTOR_MAC, signature);
            if let IpSpec::V4 { src: s, dst, .. } = &mut b.ip {
                *s = src.octets();
                *dst = [203, 0, 113, 9];
            }
            b
        }
        IpAddr::V6(src) => {
            let mut b = FrameBuilder::ipv6(NETALLY_MAC, REFLECTOR_MAC, signature);
            if let IpSpec::V6 { src: s, dst, .. } = &mut b.ip {
                *s = src.octets();
                *dst = "2001:db8:ffff::9"
                    .parse::<std::net::Ipv6Addr>()
                    .unwrap()
                    .octets();
            }
            b
        }
    };
    builder.vlan_tags.clear();
    builder.build()
}

fn config(safety: Safety) -> WorkerConfig {
    WorkerConfig {
        safety,
        ..WorkerConfig::new(Filter::default(), Mode::All)
    }
}

fn load(safety: &Safety) -> XdpFilter {
    let reflection = Reflection::InKernel {
        mode: Mode::All,
        safety: safety.clone(),
    };
    XdpFilter::load(&Filter::default(), &reflection, u32::MAX)
        .expect("load the XDP program with the policy (are you root?)")
}

/// The worker's decision, at monotonic time 0 of its life.
fn worker(pipeline: &mut Pipeline, frame: &[u8]) -> Decision {
    let mut bytes = frame.to_vec();
    let before = pipeline.counters.per_reject;
    match pipeline.process(
        &mut bytes,
        BatchTime {
            monotonic: 0,
            wall: 0,
        },
    ) {
        Outcome::Send => Decision::Reflected(bytes),
        Outcome::SendStampAnswer(_) => Decision::Stamp,
        Outcome::Drop => {
            let after = pipeline.counters.per_reject;
            let reason = Reject::ALL
                .into_iter()
                .find(|r| after[r.index()] != before[r.index()])
                .expect("a dropped frame is counted");
            Decision::Refused(reason)
        }
    }
}

/// The kernel's decision, checked against its action and its counters.
fn kernel(program: &XdpFilter, frame: &[u8]) -> Decision {
    let before = program.verdicts().expect("read verdicts");
    let run = program.test_run(frame).expect("BPF_PROG_TEST_RUN");
    let after = program.verdicts().expect("read verdicts");
    let refused: Vec<Reject> = Reject::ALL
        .into_iter()
        .filter(|r| after.rejects[r.index()] != before.rejects[r.index()])
        .collect();
    match run.action {
        XDP_TX => {
            assert_eq!(after.transmitted(), before.transmitted() + 1);
            Decision::Reflected(run.frame)
        }
        // No socket in a test run: a STAMP packet for the worker goes to the stack.
        XDP_PASS | XDP_REDIRECT if refused.is_empty() => {
            assert_eq!(after.no_socket + after.redirected, before.no_socket + 1);
            Decision::Stamp
        }
        XDP_DROP | XDP_PASS => {
            assert_eq!(refused.len(), 1, "exactly one reason counted");
            assert_eq!(
                run.action == XDP_DROP,
                refused[0].is_policy(),
                "policy refusals are dropped, the classifier's passed: {refused:?}"
            );
            Decision::Refused(refused[0])
        }
        other => panic!("unexpected XDP action {other}"),
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Sources inside and outside IPv4 and IPv6 prefixes, IPv4-mapped IPv6 sources (judged
/// by their IPv4 address, so an IPv6 prefix in ::ffff:0:0/96 admits nobody), STAMP, and
/// frames the classifier refuses first.
#[test]
fn allow_list_decides_as_the_worker_does() {
    let safety = Safety {
        allow: [
            "192.0.2.0/25",
            "10.0.0.0/8",
            "2001:db8::/32",
            "::ffff:198.51.100.0/120",
        ]
        .iter()
        .map(|p| p.parse().unwrap())
        .collect(),
        ..Safety::default()
    };
    let program = load(&safety);
    let mut pipeline = Pipeline::new(&config(safety));
    let sources = [
        ("192.0.2.1", true),
        ("192.0.2.127", true),
        ("192.0.2.128", false),
        ("10.200.3.4", true),
        ("198.51.100.7", false),
        ("2001:db8::1", true),
        ("2001:db8:ffff::7", true),
        ("2001:db9::1", false),
        ("::ffff:192.0.2.1", true),
        ("::ffff:198.51.100.7", false),
        ("::c000:201", false),
    ];
    for (source, allowed) in sources {
        for signature in [Signature::Rfc2544, Signature::Stamp] {
            let frame = frame_from(ip(source), signature);
            let expected = worker(&mut pipeline, &frame);
            assert_eq!(kernel(&program, &frame), expected, "{source} {signature:?}");
            assert_eq!(
                expected == Decision::Refused(Reject::SourceNotAllowed),
                !allowed,
                "{source}: the worker's own verdict changed"
            );
        }
    }
    // The classifier's reasons come first.
    let mut refused = frame_from(ip("192.0.2.1"), Signature::Rfc2544);
    refused[6] |= 1; // a group source MAC
    assert_eq!(
        kernel(&program, &refused),
        Decision::Refused(Reject::SrcMacGroup)
    );
}

/// The program and a worker's pipeline, both limiting each source to a frame a second
/// after a burst of `burst`.
fn one_a_second_after(burst: u32) -> (XdpFilter, Pipeline) {
    let safety = Safety {
        rate_limit: Some(RateLimit {
            per_source_pps: 1,
            burst,
        }),
        ..Safety::default()
    };
    (load(&safety), Pipeline::new(&config(safety)))
}

/// Back to back (well inside one interval), each source gets its burst and no more;
/// another source has its own bucket; STAMP packets draw on the same bucket.
#[test]
fn rate_limit_decides_as_the_worker_does() {
    let (program, mut pipeline) = one_a_second_after(5);
    let frames = [
        frame_from(ip("192.0.2.1"), Signature::Rfc2544),
        frame_from(ip("192.0.2.1"), Signature::Stamp),
        frame_from(ip("::ffff:192.0.2.1"), Signature::Latency),
        frame_from(ip("2001:db8::1"), Signature::Y1564),
    ];
    let mut refused = 0;
    for round in 0..6 {
        for frame in &frames {
            let expected = worker(&mut pipeline, frame);
            refused += usize::from(expected == Decision::Refused(Reject::RateLimited));
            assert_eq!(kernel(&program, frame), expected, "round {round}");
        }
    }
    // 192.0.2.1 sent 18 frames (as IPv4, STAMP and IPv4-mapped), 2001:db8::1 six.
    assert_eq!(refused, 13 + 1);
}

/// Sources beyond RATE_LIMIT_SOURCES share one bucket, on both sides. Within one
/// second, before the kernel forgets the first sources again (their buckets are full
/// after the 1 s interval), so only the actions are read per frame.
#[test]
fn sources_beyond_the_table_share_one_bucket() {
    let (program, mut pipeline) = one_a_second_after(1);
    let frames: Vec<Vec<u8>> = (1..=RATE_LIMIT_SOURCES as u32 + 3)
        .map(|n| frame_from(IpAddr::V4((0x0a00_0000 + n).into()), Signature::Rfc2544))
        .collect();
    let started = Instant::now();
    let mut refused = 0;
    for frame in &frames {
        let action = program.test_run(frame).expect("BPF_PROG_TEST_RUN").action;
        let expected = worker(&mut pipeline, frame);
        refused += u64::from(action == XDP_DROP);
        assert_eq!(
            action == XDP_DROP,
            expected == Decision::Refused(Reject::RateLimited),
            "source {:?}",
            &frame[26..30]
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "too slow a machine"
    );
    assert_eq!(refused, 2, "the last three share the overflow bucket");
    let verdicts = program.verdicts().expect("read verdicts");
    assert_eq!(verdicts.rejects[Reject::RateLimited.index()], 2);
    assert_eq!(verdicts.transmitted(), RATE_LIMIT_SOURCES as u64 + 1);

    // A second on, every bucket is full again: the kernel forgets those sources, as a
    // worker does once a second (`RateLimiter::expire`), so new sources get a bucket
    // each instead of sharing the overflow one.
    std::thread::sleep(Duration::from_millis(1100));
    for n in 0..3u32 {
        let frame = frame_from(IpAddr::V4((0x0b00_0001 + n).into()), Signature::Rfc2544);
        let actions: Vec<u32> = (0..2)
            .map(|_| program.test_run(&frame).expect("BPF_PROG_TEST_RUN").action)
            .collect();
        assert_eq!(actions, [XDP_TX, XDP_DROP], "new source {n}");
    }
}

/// A timeout already over (as the control plane hands a restarted worker) refuses
/// every test frame, before the allow-list; a running one stops reflecting when it ends.
#[test]
fn loop_timeout_stops_reflecting() {
    let over = Safety {
        loop_timeout: Some(Duration::ZERO),
        allow: vec!["2001:db8::/32".parse().unwrap()],
        ..Safety::default()
    };
    let program = load(&over);
    for signature in [Signature::Rfc2544, Signature::Stamp] {
        let frame = frame_from(ip("192.0.2.1"), signature);
        assert_eq!(
            kernel(&program, &frame),
            Decision::Refused(Reject::LoopTimeout)
        );
    }

    let timeout = Duration::from_millis(500);
    let loaded = Instant::now();
    let program = load(&Safety {
        loop_timeout: Some(timeout),
        ..Safety::default()
    });
    let frame = frame_from(ip("192.0.2.1"), Signature::Rfc2544);
    assert!(matches!(kernel(&program, &frame), Decision::Reflected(_)));
    assert!(
        loaded.elapsed() < timeout,
        "the machine is too slow for this test"
    );
    std::thread::sleep(timeout);
    assert_eq!(
        kernel(&program, &frame),
        Decision::Refused(Reject::LoopTimeout)
    );
}

/// All three at once still load (the verifier accepts every combination).
#[test]
fn every_combination_loads() {
    for bits in 0..8u8 {
        let safety = Safety {
            allow: match bits & 1 {
                0 => Vec::new(),
                _ => vec!["192.0.2.0/24".parse().unwrap()],
            },
            rate_limit: (bits & 2 != 0).then_some(RateLimit {
                per_source_pps: 1000,
                burst: 10,
            }),
            loop_timeout: (bits & 4 != 0).then_some(Duration::from_secs(60)),
        };
        let program = load(&safety);
        let frame = frame_from(ip("192.0.2.1"), Signature::Rfc2544);
        assert!(
            matches!(kernel(&program, &frame), Decision::Reflected(_)),
            "{safety:?}"
        );
    }
}
