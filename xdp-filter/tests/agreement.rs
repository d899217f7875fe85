//! The XDP program and `dataplane::classify` must agree frame by frame, reason included:
//! both run on the reference frames (every row of the spec), on frames around the STAMP
//! decision (ports and payload length), and on thousands of mutations of them, under
//! filters with STAMP on and off and at several STAMP ports, the XDP program in the
//! kernel through BPF_PROG_TEST_RUN. Needs root (CI runs as root); without it the test
//! fails rather than skips.

use dataplane::filter::{DEFAULT_STAMP_PORT, DEFAULT_UDP_PORT};
use dataplane::frame::{signature_payload, FrameBuilder, IpSpec};
use dataplane::parse::*;
use dataplane::reference::{reference_filter, reference_frames, HEAD_MAC, REFLECTOR_MAC};
use dataplane::stamp::STAMP_MIN_PAYLOAD;
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

/// A source MAC outside NetAlly's OUI, as an ordinary STAMP sender's would be.
const FOREIGN_MAC: MacAddr = [0x00, 0x1B, 0x21, 0x01, 0x02, 0x03];
/// A STAMP port other than the default.
const CUSTOM_STAMP_PORT: u16 = 8620;
/// Destination ports worth trying: the default and a custom STAMP port, the ITO port,
/// another one and 0.
const PORTS: [u16; 5] = [
    DEFAULT_STAMP_PORT,
    CUSTOM_STAMP_PORT,
    DEFAULT_UDP_PORT,
    9999,
    0,
];

fn without_stamp(set: SignatureSet) -> SignatureSet {
    set.iter().filter(|s| *s != Signature::Stamp).collect()
}

/// The filters the comparisons run under: the spec's defaults, loose and strict
/// settings, and STAMP off, on a custom port, on the ITO port itself (STAMP is checked
/// first, so it wins) and alone.
fn filters() -> Vec<Filter> {
    let reference = reference_filter();
    let mut loose = reference;
    loose.dst_mac = DstMacFilter::AnyUnicast;
    loose.src_oui = None;
    loose.udp_port = 0;
    let mut strict = reference;
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
        loose,
        strict,
        stamp_off,
        custom_stamp_port,
        stamp_on_ito_port,
        stamp_only_any_port,
    ]
}

/// Source ports worth trying for a frame to `dst_port`: an ephemeral one, `dst_port`
/// itself (to the STAMP port, that is another reflector's answer) and the default
/// STAMP port.
fn src_ports(dst_port: u16) -> Vec<u16> {
    let mut ports = vec![49152, dst_port];
    if dst_port != DEFAULT_STAMP_PORT {
        ports.push(DEFAULT_STAMP_PORT);
    }
    ports
}

/// Frames around the STAMP decision, which the reference set has only a few of: to
/// every port in [`PORTS`], from the ports of [`src_ports`], with UDP payloads below,
/// at and above [`STAMP_MIN_PAYLOAD`] (a PROBEOT signature when they are long enough
/// for one), from NetAlly's OUI and a foreign one, over IPv4 (also tagged) and IPv6
/// (also with an extension header).
fn stamp_seeds() -> Vec<Vec<u8>> {
    let long = signature_payload(Signature::ProbeOt, 64);
    let mut seeds = Vec::new();
    for port in PORTS {
        for src_port in src_ports(port) {
            for len in [
                0,
                Signature::ProbeOt.min_payload(),
                STAMP_MIN_PAYLOAD - 1,
                STAMP_MIN_PAYLOAD,
                STAMP_MIN_PAYLOAD + 1,
                64,
            ] {
                for (src, decorated) in
                    [(HEAD_MAC, false), (FOREIGN_MAC, false), (FOREIGN_MAC, true)]
                {
                    let mut v4 = FrameBuilder::ipv4(src, REFLECTOR_MAC, Signature::ProbeOt);
                    v4.src_port = src_port;
                    v4.dst_port = port;
                    v4.payload = long[..len].to_vec();
                    if decorated {
                        v4.vlan_tags = vec![(TPID_8021Q, 7)];
                    }
                    seeds.push(v4.build());
                    let mut v6 = FrameBuilder::ipv6(src, REFLECTOR_MAC, Signature::ProbeOt);
                    v6.src_port = src_port;
                    v6.dst_port = port;
                    v6.payload = long[..len].to_vec();
                    if decorated {
                        if let IpSpec::V6 {
                            extension_headers, ..
                        } = &mut v6.ip
                        {
                            *extension_headers = vec![IPV6_EXT_HOP_BY_HOP];
                        }
                    }
                    seeds.push(v6.build());
                }
            }
        }
    }
    seeds
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

/// Every reference frame and STAMP seed under every filter of [`filters`], not just
/// the one its spec verdict holds for.
#[test]
fn xdp_program_agrees_with_rust_under_every_filter() {
    let frames: Vec<Vec<u8>> = reference_frames()
        .into_iter()
        .map(|r| r.bytes)
        .chain(stamp_seeds())
        .filter(|b| kernel_can_run(b))
        .collect();
    let mut stamp_verdicts = [0usize; 3];
    for filter in filters() {
        let program = XdpFilter::load(&filter).expect("load the XDP program (are you root?)");
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

/// Where the IP header, the UDP header and the end of the IP datagram are, by a
/// simplified walk of a frame's headers; `None` when it cannot tell. A wrong guess on
/// a damaged frame only makes the edits below another kind of damage.
fn udp_bounds(frame: &[u8]) -> Option<(usize, usize, usize, bool)> {
    let be16_at = |at: usize| Some(u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]));
    let mut l3 = ETH_HEADER_LEN;
    let mut ethertype = be16_at(ETH_TYPE)?;
    while matches!(ethertype, TPID_8021Q | TPID_8021AD) && l3 < ETH_HEADER_LEN + 8 {
        ethertype = be16_at(l3 + 2)?;
        l3 += VLAN_TAG_LEN;
    }
    match ethertype {
        ETHERTYPE_IPV4 => {
            let l4 = l3 + usize::from(frame.get(l3)? & 0x0F) * 4;
            Some((
                l3,
                l4,
                l3 + usize::from(be16_at(l3 + IPV4_TOTAL_LEN)?),
                false,
            ))
        }
        ETHERTYPE_IPV6 => {
            let end = l3 + IPV6_HEADER_LEN + usize::from(be16_at(l3 + IPV6_PAYLOAD_LEN)?);
            let mut next = *frame.get(l3 + IPV6_NEXT_HEADER)?;
            let mut at = l3 + IPV6_HEADER_LEN;
            for _ in 0..MAX_IPV6_EXT_HEADERS {
                if next == IP_PROTO_UDP {
                    break;
                }
                next = *frame.get(at)?;
                at += (usize::from(*frame.get(at + 1)?) + 1) * 8;
            }
            (next == IP_PROTO_UDP).then_some((l3, at, end, true))
        }
        _ => None,
    }
}

/// Write `port` into the UDP header field at `field` (`UDP_SRC_PORT` or `UDP_DST_PORT`).
fn set_port(frame: &mut [u8], field: usize, port: u16) {
    if let Some((_, l4, _, _)) = udp_bounds(frame) {
        if let Some(bytes) = frame.get_mut(l4 + field..l4 + field + 2) {
            bytes.copy_from_slice(&port.to_be_bytes());
        }
    }
}

/// Grow or shrink the UDP payload by `delta` bytes, keeping the IP and UDP length
/// fields consistent with it (checksums are not the filter's business).
fn resize_payload(frame: &mut Vec<u8>, delta: isize) {
    let Some((l3, l4, end, v6)) = udp_bounds(frame) else {
        return;
    };
    if end > frame.len() || l4 + UDP_HEADER_LEN > end {
        return;
    }
    let delta = delta.max(-((end - l4 - UDP_HEADER_LEN) as isize));
    if delta >= 0 {
        frame.splice(end..end, std::iter::repeat_n(0xA5, delta as usize));
    } else {
        frame.drain(end - delta.unsigned_abs()..end);
    }
    let length_field = if v6 {
        l3 + IPV6_PAYLOAD_LEN
    } else {
        l3 + IPV4_TOTAL_LEN
    };
    for at in [length_field, l4 + UDP_LENGTH] {
        let old = u16::from_be_bytes([frame[at], frame[at + 1]]);
        let new = old.wrapping_add_signed(delta as i16);
        frame[at..at + 2].copy_from_slice(&new.to_be_bytes());
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
    let seeds: Vec<Vec<u8>> = reference_frames()
        .into_iter()
        .map(|r| r.bytes)
        .chain(stamp_seeds())
        .filter(|b| kernel_can_run(b))
        .collect();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut accepted = 0;
    let mut stamps = 0;
    let mut too_short = 0;
    let mut from_reflector = 0;
    let mut compared = 0;
    for filter in &filters() {
        let program = XdpFilter::load(filter).expect("load the XDP program (are you root?)");
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
