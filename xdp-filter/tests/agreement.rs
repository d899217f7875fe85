//! The XDP program and `dataplane::classify` must agree frame by frame, reason included:
//! both run on the reference frames (every row of the spec), on frames around the STAMP
//! decision (ports and payload length), and on thousands of mutations of them, under
//! filters with STAMP on and off and at several STAMP ports, the XDP program in the
//! kernel through BPF_PROG_TEST_RUN. Loaded for in-kernel reflection (`xdp-tx`), the
//! program must also return exactly the frames the classifier accepts (STAMP aside) with
//! XDP_TX, byte for byte as `dataplane::reflect` rewrites them in each mode. Needs root
//! (CI runs as root); without it the test fails rather than skips.

use dataplane::edits::*;
use dataplane::filter::DEFAULT_UDP_PORT;
use dataplane::parse::*;
use dataplane::reference::{reference_filter, reference_filter_with_prefixes, reference_frames};
use dataplane::{
    classify, reflect, Broadcasts, DstMacFilter, Filter, Mode, Reject, Signature, SignatureSet,
};
use libbpf_rs::libbpf_sys::{XDP_PASS, XDP_TX};
use std::net::Ipv4Addr;
use xdp_filter::{Reflection, TestRun, Verdicts, XdpFilter, RX_META_LEN};

/// The kernel refuses BPF_PROG_TEST_RUN input shorter than an Ethernet header.
const KERNEL_MIN_INPUT: usize = ETH_HEADER_LEN;
/// Input beyond the first page is split into fragments, as a multi-buffer driver
/// splits a jumbo frame: the (`xdp.frags`) program sees the headers in the linear part
/// and the whole frame's length. The kernel takes up to a linear page plus
/// MAX_SKB_FRAGS (17) pages; this stays well inside.
const KERNEL_MAX_INPUT: usize = 32 * 1024;

fn kernel_can_run(frame: &[u8]) -> bool {
    (KERNEL_MIN_INPUT..=KERNEL_MAX_INPUT).contains(&frame.len())
}

/// No AF_XDP length limit: the comparisons are about classification.
const ANY_LENGTH: u32 = u32::MAX;

/// What the XDP program decided for one frame, read from its verdict counters.
#[derive(Debug, PartialEq, Eq)]
enum KernelVerdict {
    /// Would go to the AF_XDP socket (there is none in a test run).
    Accepted,
    /// Reflected in the kernel and returned with XDP_TX.
    Transmitted(Signature),
    Rejected(Reject),
}

/// Run `frame` through `program`: its verdict (exactly one counter must move) and the
/// action and output frame.
fn kernel_run(program: &XdpFilter, frame: &[u8]) -> (KernelVerdict, TestRun) {
    let before = program.verdicts().expect("read verdicts");
    let run = program
        .test_run(frame)
        .expect("BPF_PROG_TEST_RUN (are you root?)");
    let after = program.verdicts().expect("read verdicts");
    let changed = diff(&before, &after);
    assert_eq!(
        changed.len(),
        1,
        "exactly one verdict counter must move, got {changed:?}"
    );
    (changed.into_iter().next().unwrap(), run)
}

/// The verdict of a program loaded for AF_XDP, which passes every frame to the stack
/// when there is no socket.
fn kernel_verdict(program: &XdpFilter, frame: &[u8]) -> KernelVerdict {
    let (verdict, run) = kernel_run(program, frame);
    // XDP_PASS: a frame without a socket to go to, or not a test frame.
    assert_eq!(
        run.action, XDP_PASS,
        "without a socket every frame must reach the stack"
    );
    assert_eq!(run.frame, frame, "a frame for AF_XDP is not rewritten");
    verdict
}

fn diff(before: &Verdicts, after: &Verdicts) -> Vec<KernelVerdict> {
    let mut moved: Vec<KernelVerdict> = Reject::ALL
        .iter()
        .filter(|r| after.rejects[r.index()] != before.rejects[r.index()])
        .map(|r| KernelVerdict::Rejected(*r))
        .collect();
    if after.no_socket != before.no_socket || after.redirected != before.redirected {
        moved.push(KernelVerdict::Accepted);
    }
    moved.extend(
        Signature::ALL
            .iter()
            .filter(|s| after.transmitted[s.index()] != before.transmitted[s.index()])
            .map(|s| KernelVerdict::Transmitted(*s)),
    );
    moved
}

fn rust_verdict(frame: &[u8], filter: &Filter) -> KernelVerdict {
    match classify(frame, filter) {
        Ok(_) => KernelVerdict::Accepted,
        Err(reason) => KernelVerdict::Rejected(reason),
    }
}

/// One loaded program per distinct filter.
struct Programs(Vec<(Filter, XdpFilter)>);

impl Programs {
    fn for_filter(&mut self, filter: &Filter) -> &XdpFilter {
        if let Some(i) = self.0.iter().position(|(f, _)| f == filter) {
            return &self.0[i].1;
        }
        let program = load(filter, Reflection::AfXdp);
        self.0.push((*filter, program));
        &self.0.last().unwrap().1
    }
}

fn load(filter: &Filter, reflection: Reflection) -> XdpFilter {
    XdpFilter::load(filter, &reflection, ANY_LENGTH).expect("load the XDP program (are you root?)")
}

/// The reference frames and the STAMP seeds, as far as the kernel can run them.
fn seeds() -> Vec<Vec<u8>> {
    reference_frames()
        .into_iter()
        .map(|r| r.bytes)
        .chain(stamp_seeds())
        .filter(|b| kernel_can_run(b))
        .collect()
}

fn without_stamp(set: SignatureSet) -> SignatureSet {
    set.iter().filter(|s| *s != Signature::Stamp).collect()
}

/// The filters the comparisons run under: the spec's defaults (without and with the
/// reference interface's directed broadcasts), loose and strict settings, and STAMP
/// off, on a custom port, on the ITO port itself (STAMP is checked first, so it wins)
/// and alone.
fn filters() -> Vec<Filter> {
    let reference = reference_filter();
    let with_prefixes = reference_filter_with_prefixes();
    let mut loose = reference;
    loose.dst_mac = DstMacFilter::AnyUnicast;
    loose.src_oui = None;
    loose.udp_port = 0;
    let mut strict = with_prefixes;
    strict.ipv6 = false;
    strict.vlan = false;
    strict.signatures = SignatureSet::from(vec![Signature::Rfc2544, Signature::Latency]);
    let stamp_off = Filter {
        signatures: without_stamp(SignatureSet::ALL),
        ..reference
    };
    let custom_stamp_port = Filter {
        stamp_port: CUSTOM_STAMP_PORT,
        ..reference
    };
    let stamp_on_ito_port = Filter {
        stamp_port: DEFAULT_UDP_PORT,
        ..reference
    };
    let stamp_only_any_port = Filter {
        udp_port: 0,
        stamp_port: CUSTOM_STAMP_PORT,
        signatures: SignatureSet::from(vec![Signature::Stamp]),
        ..loose
    };
    vec![
        reference,
        with_prefixes,
        loose,
        strict,
        stamp_off,
        custom_stamp_port,
        stamp_on_ito_port,
        stamp_only_any_port,
    ]
}

#[test]
fn xdp_program_agrees_with_rust_on_every_reference_frame() {
    let mut programs = Programs(Vec::new());
    let mut checked = 0;
    let mut reasons = std::collections::BTreeSet::new();
    for reference in reference_frames() {
        if !kernel_can_run(&reference.bytes) {
            continue;
        }
        reasons.extend(reference.expected.err());
        let program = programs.for_filter(&reference.filter);
        let expected = match reference.expected {
            Ok(_) => KernelVerdict::Accepted,
            Err(reason) => KernelVerdict::Rejected(reason),
        };
        assert_eq!(
            kernel_verdict(program, &reference.bytes),
            expected,
            "reference frame {:?}",
            reference.name
        );
        checked += 1;
    }
    assert!(
        checked >= 60,
        "only {checked} reference frames were checked"
    );
    // Every reason the classifier gives, the address and trailer refusals included.
    let classifier_reasons = Reject::ALL
        .into_iter()
        .filter(|r| !r.is_policy() && !r.is_path_limit());
    for reason in classifier_reasons {
        assert!(
            reasons.contains(&reason),
            "no reference frame for {reason} ran"
        );
    }
}

/// Every reference frame and STAMP seed under every filter of [`filters`], not just
/// the one its spec verdict holds for.
#[test]
fn xdp_program_agrees_with_rust_under_every_filter() {
    let frames = seeds();
    let mut stamp_verdicts = [0usize; 3];
    for filter in filters() {
        let program = load(&filter, Reflection::AfXdp);
        for frame in &frames {
            let rust = classify(frame, &filter);
            stamp_verdicts[0] +=
                usize::from(matches!(rust, Ok(a) if a.signature == Signature::Stamp));
            stamp_verdicts[1] += usize::from(rust == Err(Reject::StampTooShort));
            stamp_verdicts[2] += usize::from(rust == Err(Reject::StampFromReflector));
            assert_eq!(
                kernel_verdict(&program, frame),
                rust_verdict(frame, &filter),
                "filter {filter:?}, frame {frame:02x?}"
            );
        }
        assert_policy_slots_untouched(&program);
    }
    let [stamps, too_short, from_reflector] = stamp_verdicts;
    eprintln!(
        "{} frames x {} filters: 0 disagreements ({stamps} STAMP accepts, {too_short} \
         StampTooShort, {from_reflector} StampFromReflector)",
        frames.len(),
        filters().len()
    );
    assert!(
        stamps >= 50 && too_short >= 50 && from_reflector >= 50,
        "{stamps} STAMP accepts, {too_short} StampTooShort and {from_reflector} \
         StampFromReflector rejects compared"
    );
}

/// The worker's policy reasons have counter slots but are never the kernel's verdict.
fn assert_policy_slots_untouched(program: &XdpFilter) {
    let verdicts = program.verdicts().expect("read verdicts");
    for reason in Reject::ALL.into_iter().filter(|r| r.is_policy()) {
        assert_eq!(
            verdicts.rejects[reason.index()],
            0,
            "{reason} counted in the kernel"
        );
    }
}

/// A small deterministic generator (xorshift64*), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Corrupt a frame the way the wire and buggy senders do: flip bits in the headers,
/// overwrite length fields, cut the frame short or pad it; and move it to or from
/// another UDP port or change its payload length (with consistent length fields),
/// which is what the STAMP decision turns on.
fn mutate(frame: &mut Vec<u8>, rng: &mut Rng) {
    for _ in 0..1 + rng.below(3) {
        match rng.below(7) {
            kind @ (4 | 6) => {
                let port = match rng.below(3) {
                    0 => rng.next() as u16,
                    _ => PORTS[rng.below(PORTS.len())],
                };
                let field = if kind == 4 {
                    UDP_DST_PORT
                } else {
                    UDP_SRC_PORT
                };
                set_port(frame, field, port);
            }
            5 => resize_payload(frame, rng.below(25) as isize - 12),
            0 => {
                let at = rng.below(frame.len().min(80));
                frame[at] ^= 1 << rng.below(8);
            }
            1 => {
                let at = rng.below(frame.len().min(80));
                frame[at] = rng.next() as u8;
            }
            2 => {
                let keep = KERNEL_MIN_INPUT + rng.below(frame.len() - KERNEL_MIN_INPUT + 1);
                frame.truncate(keep);
            }
            _ => frame.extend(std::iter::repeat_n(0u8, rng.below(16))),
        }
    }
}

#[test]
fn xdp_program_agrees_with_rust_on_mutated_frames() {
    let seeds = seeds();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut accepted = 0;
    let mut stamps = 0;
    let mut too_short = 0;
    let mut from_reflector = 0;
    let mut compared = 0;
    for filter in &filters() {
        let program = load(filter, Reflection::AfXdp);
        for round in 0..1500 {
            let mut frame = seeds[rng.below(seeds.len())].clone();
            mutate(&mut frame, &mut rng);
            if !kernel_can_run(&frame) {
                continue;
            }
            let rust = classify(&frame, filter);
            accepted += usize::from(rust.is_ok());
            stamps += usize::from(matches!(rust, Ok(a) if a.signature == Signature::Stamp));
            too_short += usize::from(rust == Err(Reject::StampTooShort));
            from_reflector += usize::from(rust == Err(Reject::StampFromReflector));
            assert_eq!(
                kernel_verdict(&program, &frame),
                rust_verdict(&frame, filter),
                "round {round}, filter {filter:?}, frame {frame:02x?}"
            );
            compared += 1;
        }
        assert_policy_slots_untouched(&program);
    }
    eprintln!(
        "{compared} mutated frames: 0 disagreements ({accepted} accepted, {stamps} as STAMP; \
         {too_short} StampTooShort, {from_reflector} StampFromReflector)"
    );
    // Mutations mostly break frames, but some must stay acceptable for the comparison
    // to cover the accept paths (signatures and STAMP) and both STAMP checks too.
    assert!(
        accepted > 300 && stamps > 100 && too_short > 100 && from_reflector > 100,
        "only {accepted} mutated frames were acceptable ({stamps} as STAMP), \
         {too_short} were short STAMP packets, {from_reflector} came from the STAMP port"
    );
}

/// What the in-kernel reflector must do with `frame`: the user-space worker's decision
/// (`classify`, then `reflect` in `mode`) for every frame it could take over. STAMP
/// packets still go to AF_XDP (no socket here: the stack), untouched.
fn expected_in_kernel(frame: &[u8], filter: &Filter, mode: Mode) -> (KernelVerdict, TestRun) {
    let run = |action, frame: Vec<u8>, metadata| TestRun {
        action,
        frame,
        metadata,
    };
    match classify(frame, filter) {
        // The arrival stamp goes in front of a frame for AF_XDP.
        Ok(accepted) if accepted.signature == Signature::Stamp => (
            KernelVerdict::Accepted,
            run(XDP_PASS, frame.to_vec(), vec![0; RX_META_LEN]),
        ),
        Ok(accepted) => {
            let mut reflected = frame.to_vec();
            reflect(&mut reflected, &accepted.layout, mode);
            let verdict = KernelVerdict::Transmitted(accepted.signature);
            (verdict, run(XDP_TX, reflected, Vec::new()))
        }
        Err(reason) => (
            KernelVerdict::Rejected(reason),
            run(XDP_PASS, frame.to_vec(), Vec::new()),
        ),
    }
}

/// The run without the metadata's contents (an arrival time), only its length.
fn blank_metadata(mut run: TestRun) -> TestRun {
    run.metadata.fill(0);
    run
}

/// In every mode and under every filter: the reference frames, the STAMP seeds and
/// mutations of them go back with XDP_TX exactly when `classify` accepts them (STAMP
/// aside), rewritten byte for byte as `reflect` does, counted per signature with their
/// bytes, and refused frames are counted per reason and left untouched.
#[test]
fn in_kernel_reflection_matches_reflect_byte_for_byte() {
    let seeds = seeds();
    let mut rng = Rng(0x5eed_1234_abcd_0002);
    let mut compared = 0;
    let mut per_mode_transmitted = [0usize; 3];
    for (m, mode) in Mode::ALL.into_iter().enumerate() {
        for filter in &filters() {
            let program = load(filter, Reflection::in_kernel(mode));
            let mutated = (0..500).map(|_| {
                let mut frame = seeds[rng.below(seeds.len())].clone();
                mutate(&mut frame, &mut rng);
                frame
            });
            let frames: Vec<Vec<u8>> = seeds
                .iter()
                .cloned()
                .chain(mutated.collect::<Vec<_>>())
                .filter(|f| kernel_can_run(f))
                .collect();
            let mut transmitted_bytes = 0;
            for frame in &frames {
                let expected = expected_in_kernel(frame, filter, mode);
                if expected.1.action == XDP_TX {
                    per_mode_transmitted[m] += 1;
                    transmitted_bytes += frame.len() as u64;
                }
                let (verdict, run) = kernel_run(&program, frame);
                assert_eq!(
                    (verdict, blank_metadata(run)),
                    expected,
                    "mode {mode}, filter {filter:?}, frame {frame:02x?}"
                );
                compared += 1;
            }
            let verdicts = program.verdicts().expect("read verdicts");
            assert_eq!(verdicts.transmitted_bytes, transmitted_bytes, "mode {mode}");
            assert_eq!(verdicts.redirected, 0, "no socket to redirect to");
            assert_policy_slots_untouched(&program);
        }
    }
    eprintln!(
        "{compared} frames in kernel reflection: 0 disagreements; XDP_TX in mode mac, \
         mac-ip, all: {per_mode_transmitted:?}"
    );
    assert!(
        per_mode_transmitted.iter().all(|n| *n > 500),
        "too few frames were reflected to compare: {per_mode_transmitted:?}"
    );
}

/// The program's quick IPv4 endpoint test (two different addresses with first octets in
/// 1..=126 or 128..=223, neither a directed broadcast, pass at once) must never pass what
/// the ordered checks refuse: every first octet with host parts at the edges, the
/// interface's broadcasts and a plain host, as source against an ordinary host, as
/// destination, and as both, in both reflection modes.
#[test]
fn xdp_program_agrees_with_rust_on_every_ipv4_first_octet() {
    let filter = reference_filter_with_prefixes();
    let broadcasts: Vec<Ipv4Addr> = filter.broadcasts.iter().collect();
    assert!(
        !broadcasts.is_empty(),
        "the filter must know some broadcasts"
    );
    let seed = reference_frames()
        .into_iter()
        .find(|f| f.expected.is_ok() && f.bytes.get(12..14) == Some(&[8, 0]))
        .expect("an untagged IPv4 reference test frame")
        .bytes;
    let l3 = layout_of(&seed).expect("the seed parses").l3;
    let host = Ipv4Addr::new(192, 0, 2, 1);
    let addrs: Vec<Ipv4Addr> = (0..=255u8)
        .flat_map(|octet| [[octet, 0, 0, 0], [octet, 0, 0, 1], [octet, 255, 255, 255]])
        .map(Ipv4Addr::from)
        .chain(broadcasts.iter().copied())
        .chain([host])
        .collect();
    let pairs: Vec<(Ipv4Addr, Ipv4Addr)> = addrs
        .iter()
        .flat_map(|&a| [(a, host), (host, a), (a, a)])
        .collect();
    for reflection in [Reflection::AfXdp, Reflection::in_kernel(Mode::All)] {
        let program = load(&filter, reflection.clone());
        let mut passed = 0;
        for &(src, dst) in &pairs {
            let mut frame = seed.clone();
            frame[l3 + IPV4_SRC..l3 + IPV4_SRC + 4].copy_from_slice(&src.octets());
            frame[l3 + IPV4_DST..l3 + IPV4_DST + 4].copy_from_slice(&dst.octets());
            let rust = rust_verdict(&frame, &filter);
            let kernel = match kernel_run(&program, &frame).0 {
                KernelVerdict::Transmitted(_) => KernelVerdict::Accepted,
                verdict => verdict,
            };
            assert_eq!(kernel, rust, "{reflection:?}: {src} -> {dst}");
            passed += usize::from(rust == KernelVerdict::Accepted);
        }
        // Both outcomes were exercised: most pairs pass, and every kind of refusal shows.
        assert!(passed > pairs.len() / 2, "{passed} of {}", pairs.len());
        assert!(
            passed < pairs.len() - addrs.len(),
            "{passed} of {}",
            pairs.len()
        );
    }
}

/// An address added to or removed from the interface reaches the running program
/// through its map: a frame to the new directed broadcast is refused from then on and
/// accepted again once the prefix is gone, without reloading, in both reflection modes.
#[test]
fn directed_broadcasts_change_without_reloading() {
    let frame = reference_frames()
        .into_iter()
        .find(|f| f.expected == Err(Reject::DirectedBroadcast))
        .expect("a directed-broadcast reference frame")
        .bytes;
    let learned = reference_filter_with_prefixes().broadcasts;
    for reflection in [Reflection::AfXdp, Reflection::in_kernel(Mode::All)] {
        let program = load(&reference_filter(), reflection.clone());
        let verdict = |program: &XdpFilter| kernel_run(program, &frame).0;
        let answered = verdict(&program);
        assert!(
            matches!(
                answered,
                KernelVerdict::Accepted | KernelVerdict::Transmitted(_)
            ),
            "{reflection:?}: with no prefix learned the frame is a test frame, got {answered:?}"
        );
        program.set_broadcasts(&learned).expect("update the map");
        assert_eq!(
            verdict(&program),
            KernelVerdict::Rejected(Reject::DirectedBroadcast),
            "{reflection:?}"
        );
        program
            .set_broadcasts(&Broadcasts::NONE)
            .expect("update the map");
        assert_eq!(verdict(&program), answered, "{reflection:?}");
    }
}

/// A test frame longer than the AF_XDP sockets take (a 9000-byte jumbo, split into
/// fragments as a multi-buffer driver delivers it) is counted as `too_large` and passed
/// to the stack, never redirected to be dropped; one that fits is redirected, and the
/// in-kernel path reflects it whatever the sockets' limit.
#[test]
fn frames_longer_than_the_sockets_take_are_counted_as_too_large() {
    let jumbo = reference_frames()
        .into_iter()
        .find(|f| f.bytes.len() > 8000 && f.expected.is_ok())
        .expect("a jumbo reference frame");
    let len = jumbo.bytes.len() as u32;
    let load_with = |reflection, limit| {
        XdpFilter::load(&jumbo.filter, &reflection, limit).expect("load the XDP program")
    };
    let too_small = load_with(Reflection::AfXdp, len - 1);
    assert_eq!(
        kernel_verdict(&too_small, &jumbo.bytes),
        KernelVerdict::Rejected(Reject::TooLarge)
    );
    let fits = load_with(Reflection::AfXdp, len);
    assert_eq!(kernel_verdict(&fits, &jumbo.bytes), KernelVerdict::Accepted);

    let in_kernel = load_with(Reflection::in_kernel(Mode::All), len - 1);
    let (verdict, run) = kernel_run(&in_kernel, &jumbo.bytes);
    assert_eq!(verdict, KernelVerdict::Transmitted(jumbo.expected.unwrap()));
    assert_eq!(run.action, XDP_TX);
    let mut expected = jumbo.bytes.clone();
    let layout = classify(&jumbo.bytes, &jumbo.filter).unwrap().layout;
    reflect(&mut expected, &layout, Mode::All);
    assert_eq!(
        run.frame, expected,
        "reflected in place, fragments included"
    );
    assert_eq!(
        in_kernel.verdicts().unwrap().transmitted_bytes,
        u64::from(len)
    );
}
