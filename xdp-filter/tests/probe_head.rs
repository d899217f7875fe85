//! The fast test head's programs in the kernel (BPF_PROG_TEST_RUN, not live): the
//! generator numbers frames and keeps their UDP checksum valid, and the counter tells
//! correct returns, duplicates, reordering, mangled headers and foreign frames apart,
//! also with two generators on two CPUs whose streams interleave.
//! Needs root (CI runs as root) and two CPUs; without them the tests fail rather than
//! skip. A test run of the generator runs on the calling thread's CPU and uses that
//! CPU's generator, so each test pins its thread.

use dataplane::checksum::udp_checksum;
use dataplane::frame::FrameBuilder;
use dataplane::parse::{be16, UDP_CHECKSUM};
use dataplane::reference::{reference_filter, HEAD_MAC, REFLECTOR_MAC};
use dataplane::{classify, reflect, Layout, Mode, Signature};
use libbpf_rs::libbpf_sys::{XDP_DROP, XDP_PASS};
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use xdp_filter::{ProbeCounts, ProbeHead, ProbeTemplate};

const MARKER: [u8; 2] = [0xA5, 0x5A];
const LOOPBACK: u32 = 1;

struct Frames {
    template: Vec<u8>,
    expected: Vec<u8>,
    layout: Layout,
    stamp_at: usize,
}

fn frames(builder: FrameBuilder, signature: Signature, wire: usize) -> Frames {
    let mut builder = builder;
    let stamp_offset = signature.min_payload().next_multiple_of(2);
    builder.payload.resize(stamp_offset + 6, 0);
    let mut template = builder.sized_for_wire(wire).build();
    let layout = classify(&template, &reference_filter()).unwrap().layout;
    let stamp_at = layout.payload() + stamp_offset;
    template[stamp_at..stamp_at + 2].copy_from_slice(&MARKER);
    // The template carries sequence number 0: its checksum covers the marker.
    let at = layout.l4 + UDP_CHECKSUM;
    template[at..at + 2].copy_from_slice(&[0, 0]);
    let sum = checksum_of(&template, &layout);
    template[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    let mut expected = template.clone();
    reflect(&mut expected, &layout, Mode::All);
    Frames {
        template,
        expected,
        layout,
        stamp_at,
    }
}

fn checksum_of(frame: &[u8], layout: &Layout) -> u16 {
    let (src, dst) = if frame[layout.l3] >> 4 == 4 {
        (
            &frame[layout.l3 + 12..layout.l3 + 16],
            &frame[layout.l3 + 16..layout.l3 + 20],
        )
    } else {
        (
            &frame[layout.l3 + 8..layout.l3 + 24],
            &frame[layout.l3 + 24..layout.l3 + 40],
        )
    };
    udp_checksum(src, dst, &frame[layout.l4..layout.end()])
}

/// The CPUs this test may run on (at least two): the main thread's, as test threads
/// may be reused after another test pinned them.
fn cpus() -> Vec<usize> {
    let set = sched_getaffinity(Pid::from_raw(std::process::id() as i32)).unwrap();
    let cpus: Vec<usize> = (0..CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap())
        .collect();
    assert!(cpus.len() >= 2, "these tests need two CPUs, have {cpus:?}");
    cpus
}

fn pin(cpu: usize) {
    let mut set = CpuSet::new();
    set.set(cpu).unwrap();
    sched_setaffinity(Pid::from_raw(0), &set).unwrap();
}

/// The probe with generators on `generator_cpus`, this thread pinned to the first.
fn load_on(f: &Frames, generator_cpus: &[usize]) -> ProbeHead {
    pin(generator_cpus[0]);
    ProbeHead::load(
        &ProbeTemplate {
            frame: &f.template,
            expected_reflection: &f.expected,
            stamp_at: f.stamp_at,
            checksum_at: f.layout.l4 + UDP_CHECKSUM,
        },
        LOOPBACK,
        0,
        u32::MAX,
        generator_cpus,
    )
    .expect("load the probe programs (needs root)")
}

fn load(f: &Frames) -> ProbeHead {
    load_on(f, &cpus()[..1])
}

fn seq_of(f: &Frames, frame: &[u8]) -> u32 {
    let s = &frame[f.stamp_at + 2..f.stamp_at + 6];
    u32::from_be_bytes([s[0], s[1], s[2], s[3]])
}

fn cases() -> Vec<(&'static str, Frames)> {
    let v6 = |signature| {
        let b = FrameBuilder::ipv6(HEAD_MAC, REFLECTOR_MAC, signature);
        frames(b, signature, 128)
    };
    vec![
        (
            "ipv4 64",
            frames(
                FrameBuilder::ipv4(HEAD_MAC, REFLECTOR_MAC, Signature::ProbeOt),
                Signature::ProbeOt,
                64,
            ),
        ),
        (
            "ipv4 1518 rfc2544",
            frames(
                FrameBuilder::ipv4(HEAD_MAC, REFLECTOR_MAC, Signature::Rfc2544),
                Signature::Rfc2544,
                1518,
            ),
        ),
        ("ipv6 128", v6(Signature::ProbeOt)),
    ]
}

#[test]
fn the_generator_numbers_frames_and_keeps_the_checksum_valid() {
    for (what, f) in cases() {
        let head = load(&f);
        for seq in 0u32..3 {
            let sent = head.test_send().unwrap();
            let stamp = &sent[f.stamp_at..f.stamp_at + 6];
            assert_eq!(stamp[..2], MARKER, "{what}");
            assert_eq!(stamp[2..], seq.to_be_bytes(), "{what}");
            let at = f.layout.l4 + UDP_CHECKSUM;
            let mut zeroed = sent.clone();
            zeroed[at..at + 2].copy_from_slice(&[0, 0]);
            assert_eq!(
                be16(&sent, at),
                checksum_of(&zeroed, &f.layout),
                "{what} seq {seq}"
            );
            // Nothing else changes.
            let mut rest = sent.clone();
            rest[f.stamp_at + 2..f.stamp_at + 6].copy_from_slice(&[0; 4]);
            rest[at..at + 2].copy_from_slice(&f.template[at..at + 2]);
            assert_eq!(rest, f.template, "{what}");
        }
        assert_eq!(head.generated().unwrap().frames, 3);
    }
}

#[test]
fn the_counter_tells_returns_duplicates_reordering_and_mangling_apart() {
    for (what, f) in cases() {
        let head = load(&f);
        let returned = |sent: &[u8]| {
            let mut frame = sent.to_vec();
            reflect(&mut frame, &f.layout, Mode::All);
            frame
        };
        let first = returned(&head.test_send().unwrap());
        let second = returned(&head.test_send().unwrap());
        assert_eq!(head.test_count(&second).unwrap(), XDP_DROP, "{what}");
        assert_eq!(head.test_count(&first).unwrap(), XDP_DROP, "{what}");
        assert_eq!(head.test_count(&first).unwrap(), XDP_DROP, "{what}");
        let mut mangled = returned(&head.test_send().unwrap());
        mangled[0] ^= 1; // not swapped back to us
        assert_eq!(head.test_count(&mangled).unwrap(), XDP_DROP, "{what}");
        // Foreign: no marker, or another length.
        let mut foreign = second.clone();
        foreign[f.stamp_at] ^= 0xff;
        assert_eq!(head.test_count(&foreign).unwrap(), XDP_PASS, "{what}");
        assert_eq!(
            head.test_count(&second[..second.len() - 1]).unwrap(),
            XDP_PASS
        );

        let counts = head.counts().unwrap();
        assert_eq!(
            ProbeCounts {
                rtt_max: 0,
                ..counts
            },
            ProbeCounts {
                received: 2,
                duplicated: 1,
                reordered: 1,
                malformed: 1,
                rtt_max: 0,
            },
            "{what}"
        );
        let rtt = head.rtt().unwrap();
        // At full rate one frame in 16 is timed: here numbers 0 and 1 came back, and
        // only 0 is.
        assert_eq!(rtt.count(), 1, "{what}: one RTT sample per timed return");
        assert!(
            counts.rtt_max > 0 && counts.rtt_max < 1_000_000_000,
            "{what}"
        );
    }
}

/// Two generators on two CPUs number their frames in blocks of their own, so
/// their streams interleave on the way back without counting as reordered; a frame
/// out of order within one generator's stream, and a duplicate, still count.
#[test]
fn two_generators_interleave_without_reordering_and_still_count_each_fault() {
    let cpus = cpus();
    let (a, b) = (cpus[0], cpus[1]);
    let f = &cases().remove(0).1;
    let head = load_on(f, &[a, b]);
    let returned = |sent: Vec<u8>| {
        let mut frame = sent;
        reflect(&mut frame, &f.layout, Mode::All);
        frame
    };
    pin(a);
    let from_a: Vec<Vec<u8>> = (0..3)
        .map(|_| returned(head.test_send().unwrap()))
        .collect();
    pin(b);
    let from_b: Vec<Vec<u8>> = (0..2)
        .map(|_| returned(head.test_send().unwrap()))
        .collect();
    let numbers = |frames: &[Vec<u8>]| frames.iter().map(|x| seq_of(f, x)).collect::<Vec<_>>();
    assert_eq!(numbers(&from_a), [0, 1, 2]);
    let block = ProbeHead::BLOCK;
    assert_eq!(numbers(&from_b), [block, block + 1]);
    let per_cpu = head.generators().unwrap();
    assert_eq!((per_cpu[a].sent, per_cpu[b].sent), (3, 2));
    assert_eq!(head.generated().unwrap().frames, 5);

    // Interleaved, both streams in order: nothing reordered.
    for frame in [&from_b[0], &from_a[0], &from_b[1], &from_a[1]] {
        assert_eq!(head.test_count(frame).unwrap(), XDP_DROP);
    }
    assert_eq!(head.counts().unwrap().reordered, 0);
    // Generator a's 2 after its 1 is fine; b's first again is a duplicate; a's 0 too.
    for frame in [&from_a[2], &from_b[0], &from_a[0]] {
        assert_eq!(head.test_count(frame).unwrap(), XDP_DROP);
    }
    let counts = head.counts().unwrap();
    assert_eq!(
        (counts.received, counts.duplicated, counts.reordered),
        (5, 2, 0)
    );

    // A fresh run: a's 1 before its 0 is out of order, whatever b did in between.
    let head = load_on(f, &[a, b]);
    let from_a: Vec<Vec<u8>> = (0..2)
        .map(|_| returned(head.test_send().unwrap()))
        .collect();
    pin(b);
    let from_b = returned(head.test_send().unwrap());
    for frame in [&from_a[1], &from_b, &from_a[0]] {
        assert_eq!(head.test_count(frame).unwrap(), XDP_DROP);
    }
    let counts = head.counts().unwrap();
    assert_eq!(
        (counts.received, counts.duplicated, counts.reordered),
        (3, 0, 1)
    );
}
