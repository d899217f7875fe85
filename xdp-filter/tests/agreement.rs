//! The XDP program and `dataplane::classify` must agree frame by frame: both run on the
//! reference frames (every row of the spec) and on thousands of mutations of them, the
//! XDP program in the kernel through BPF_PROG_TEST_RUN. Needs root (CI runs as root);
//! without it the test fails rather than skips.

use dataplane::reference::{reference_filter, reference_frames};
use dataplane::{classify, DstMacFilter, Filter, Reject, Signature, SignatureSet};
use xdp_filter::{Verdicts, XdpFilter};

/// XDP_PASS from <linux/bpf.h>: a frame without a socket to go to, or not a test frame.
const XDP_PASS: u32 = 2;
/// The kernel refuses BPF_PROG_TEST_RUN input shorter than an Ethernet header.
const KERNEL_MIN_INPUT: usize = 14;
/// Longer test input is split into fragments the (single-buffer) program cannot see,
/// as on a real interface, where an XDP program without multi-buffer support cannot be
/// attached at an MTU above about 3.5 KB. Jumbo frames are a documented limitation of
/// the AF_XDP path.
const KERNEL_MAX_LINEAR_INPUT: usize = 3500;

fn kernel_can_run(frame: &[u8]) -> bool {
    (KERNEL_MIN_INPUT..=KERNEL_MAX_LINEAR_INPUT).contains(&frame.len())
}

/// What the XDP program decided for one frame, read from its verdict counters.
#[derive(Debug, PartialEq, Eq)]
enum KernelVerdict {
    /// Would go to the AF_XDP socket (there is none in a test run).
    Accepted,
    Rejected(Reject),
}

fn kernel_verdict(program: &XdpFilter, frame: &[u8]) -> KernelVerdict {
    let before = program.verdicts().expect("read verdicts");
    let action = program
        .test_run(frame)
        .expect("BPF_PROG_TEST_RUN (are you root?)");
    assert_eq!(
        action, XDP_PASS,
        "without a socket every frame must reach the stack"
    );
    let after = program.verdicts().expect("read verdicts");
    let changed = diff(&before, &after);
    assert_eq!(
        changed.len(),
        1,
        "exactly one verdict counter must move, got {changed:?}"
    );
    changed.into_iter().next().unwrap()
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
        let program = XdpFilter::load(filter).expect("load the XDP program (are you root?)");
        self.0.push((*filter, program));
        &self.0.last().unwrap().1
    }
}

#[test]
fn xdp_program_agrees_with_rust_on_every_reference_frame() {
    let mut programs = Programs(Vec::new());
    let mut checked = 0;
    for reference in reference_frames() {
        if !kernel_can_run(&reference.bytes) {
            continue;
        }
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
/// overwrite length fields, cut the frame short or pad it.
fn mutate(frame: &mut Vec<u8>, rng: &mut Rng) {
    for _ in 0..1 + rng.below(3) {
        match rng.below(4) {
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
    let mut filters = vec![reference_filter()];
    let mut loose = reference_filter();
    loose.dst_mac = DstMacFilter::AnyUnicast;
    loose.src_oui = None;
    loose.udp_port = 0;
    filters.push(loose);
    let mut strict = reference_filter();
    strict.ipv6 = false;
    strict.vlan = false;
    strict.signatures = SignatureSet::from(vec![Signature::Rfc2544, Signature::Latency]);
    filters.push(strict);

    let seeds: Vec<Vec<u8>> = reference_frames()
        .into_iter()
        .map(|r| r.bytes)
        .filter(|b| kernel_can_run(b))
        .collect();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut accepted = 0;
    for filter in &filters {
        let program = XdpFilter::load(filter).expect("load the XDP program (are you root?)");
        for round in 0..1500 {
            let mut frame = seeds[rng.below(seeds.len())].clone();
            mutate(&mut frame, &mut rng);
            let rust = rust_verdict(&frame, filter);
            accepted += usize::from(rust == KernelVerdict::Accepted);
            assert_eq!(
                kernel_verdict(&program, &frame),
                rust,
                "round {round}, filter {filter:?}, frame {frame:02x?}"
            );
        }
    }
    // Mutations mostly break frames, but some must stay acceptable for the comparison
    // to cover the accept path too.
    assert!(
        accepted > 100,
        "only {accepted} mutated frames were acceptable"
    );
}
