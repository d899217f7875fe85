//! Checks of the generated program without a kernel: a structural validator with the
//! rules both kernels apply, and a small interpreter with classic-BPF semantics (a load
//! outside the frame returns 0) to compare verdicts with `classify` on the reference
//! frames and on many mutated frames. The same comparison on the real Linux kernel is
//! in `tests/cbpf_kernel.rs`.

use super::*;
use dataplane::edits::*;
use dataplane::filter::{
    Broadcasts, DEFAULT_STAMP_PORT, DEFAULT_UDP_PORT, MAX_BROADCASTS, NETALLY_OUI,
};
use dataplane::frame::{signature_payload, FrameBuilder};
use dataplane::reference::{
    reference_filter, reference_filter_with_prefixes, reference_frames, FOREIGN_MAC, HEAD_MAC,
    REFLECTOR_MAC,
};
use dataplane::signature::{Signature, SignatureSet};
use dataplane::{classify, Reject};
use proptest::prelude::*;
use std::net::Ipv4Addr;

/// Run `prog` on `frame` as a kernel would; returns the snap length (0 = drop).
/// Panics on anything a kernel's validator would have refused.
fn run(prog: &[Insn], frame: &[u8]) -> u32 {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [None::<u32>; op::MEMWORDS as usize];
    let mut pc = 0usize;
    let load = |at: u32, size: usize| -> Option<u32> {
        let at = at as usize;
        let bytes = frame.get(at..at.checked_add(size)?)?;
        Some(bytes.iter().fold(0, |acc, b| acc << 8 | u32::from(*b)))
    };
    loop {
        let insn = prog[pc];
        pc += 1;
        let k = insn.k;
        let operand = |x: u32| if insn.code & op::X != 0 { x } else { k };
        match insn.code & 0x07 {
            op::LD => {
                let size = match insn.code & 0x18 {
                    op::W => 4,
                    op::H => 2,
                    op::B => 1,
                    other => panic!("bad load size {other:#x}"),
                };
                a = match insn.code & 0xe0 {
                    op::IMM => k,
                    op::MEM => mem[k as usize].expect("read of unwritten scratch memory"),
                    op::LEN => frame.len() as u32,
                    op::ABS => match load(k, size) {
                        Some(v) => v,
                        None => return 0,
                    },
                    op::IND => match load(x.wrapping_add(k), size) {
                        Some(v) => v,
                        None => return 0,
                    },
                    other => panic!("bad load mode {other:#x}"),
                };
            }
            op::LDX => {
                x = match insn.code & 0xe0 {
                    op::IMM => k,
                    op::MEM => mem[k as usize].expect("read of unwritten scratch memory"),
                    op::MSH => match load(k, 1) {
                        Some(v) => 4 * (v & 0xf),
                        None => return 0,
                    },
                    other => panic!("bad ldx mode {other:#x}"),
                };
            }
            op::ST => mem[k as usize] = Some(a),
            op::STX => mem[k as usize] = Some(x),
            op::ALU => {
                let v = operand(x);
                a = match insn.code & 0xf0 {
                    op::ADD => a.wrapping_add(v),
                    op::SUB => a.wrapping_sub(v),
                    op::AND => a & v,
                    op::LSH => a << v,
                    other => panic!("bad alu op {other:#x}"),
                };
            }
            op::JMP => {
                let v = operand(x);
                let taken = match insn.code & 0xf0 {
                    op::JA => {
                        pc += k as usize;
                        continue;
                    }
                    op::JEQ => a == v,
                    op::JGT => a > v,
                    op::JGE => a >= v,
                    op::JSET => a & v != 0,
                    other => panic!("bad jump {other:#x}"),
                };
                pc += usize::from(if taken { insn.jt } else { insn.jf });
            }
            op::RET => return k,
            op::MISC => match insn.code & 0xf8 {
                op::TAX => x = a,
                op::TXA => a = x,
                other => panic!("bad misc op {other:#x}"),
            },
            _ => unreachable!(),
        }
    }
}

/// The static rules of Linux `bpf_check_classic` and macOS `bpf_validate` that the
/// generator could break: in-bounds jumps, scratch slots, a final `ret`.
fn validate(prog: &[Insn]) {
    assert!(
        !prog.is_empty() && prog.len() <= MAX_INSNS,
        "length {}",
        prog.len()
    );
    for (i, insn) in prog.iter().enumerate() {
        let class = insn.code & 0x07;
        if class == op::JMP {
            let reach = if insn.code & 0xf0 == op::JA {
                insn.k as usize
            } else {
                usize::from(insn.jt.max(insn.jf))
            };
            assert!(i + 1 + reach < prog.len(), "jump at {i} leaves the program");
        }
        let uses_mem = matches!(class, op::ST | op::STX)
            || (matches!(class, op::LD | op::LDX) && insn.code & 0xe0 == op::MEM);
        if uses_mem {
            assert!(insn.k < op::MEMWORDS, "scratch slot {} at {i}", insn.k);
        }
    }
    assert_eq!(
        prog.last().unwrap().code & 0x07,
        op::RET,
        "must end with ret"
    );
    check_load_and_stores(prog);
}

/// Linux's `check_load_and_stores`, transcribed: a linear scan in which jumps narrow
/// the set of written slots at their targets and `ret` does *not* end a path.
fn check_load_and_stores(prog: &[Insn]) {
    let mut masks = vec![u16::MAX; prog.len()];
    let mut valid = 0u16;
    for (pc, insn) in prog.iter().enumerate() {
        valid &= masks[pc];
        let class = insn.code & 0x07;
        let mem = insn.code & 0xe0 == op::MEM;
        match class {
            op::ST | op::STX => valid |= 1 << insn.k,
            op::LD | op::LDX if mem => {
                assert!(
                    valid & (1 << insn.k) != 0,
                    "slot {} read before written at {pc}",
                    insn.k
                )
            }
            op::JMP if insn.code & 0xf0 == op::JA => {
                masks[pc + 1 + insn.k as usize] &= valid;
                valid = u16::MAX;
            }
            op::JMP => {
                masks[pc + 1 + usize::from(insn.jt)] &= valid;
                masks[pc + 1 + usize::from(insn.jf)] &= valid;
                valid = u16::MAX;
            }
            _ => {}
        }
    }
}

fn dump(prog: &[Insn]) -> String {
    prog.iter()
        .enumerate()
        .map(|(i, insn)| format!("{i:3}: {insn}\n"))
        .collect()
}

/// The most directed broadcasts a filter holds, the reference interface's among them.
fn full_broadcasts() -> Broadcasts {
    let reference = reference_filter_with_prefixes().broadcasts;
    let others = (0..).map(|i| Ipv4Addr::new(10, i, 255, 255));
    let full = Broadcasts::new(reference.iter().chain(others).take(MAX_BROADCASTS));
    assert!(full.is_full());
    full
}

/// Filters that switch every knob the generator looks at: STAMP on and off, at the
/// default port, a custom one and the ITO port itself (where STAMP wins); no directed
/// broadcasts, the reference interface's and as many as a filter holds.
fn filter_variants() -> Vec<Filter> {
    let with_stamp =
        |set: SignatureSet| -> SignatureSet { set.iter().chain([Signature::Stamp]).collect() };
    let without_stamp = |set: SignatureSet| -> SignatureSet {
        set.iter().filter(|s| *s != Signature::Stamp).collect()
    };
    let subset: SignatureSet = [Signature::DataOt, Signature::Y1564].into_iter().collect();
    let signature_sets = [
        SignatureSet::ALL,
        without_stamp(SignatureSet::ALL),
        subset,
        with_stamp(subset),
        with_stamp(SignatureSet::EMPTY),
        SignatureSet::EMPTY,
    ];
    let mut filters = Vec::new();
    for dst_mac in [
        DstMacFilter::Exact(REFLECTOR_MAC),
        DstMacFilter::AnyUnicast,
        DstMacFilter::Exact(HEAD_MAC),
    ] {
        for src_oui in [Some(NETALLY_OUI), None, Some(FOREIGN_MAC.oui())] {
            let broadcasts = [
                reference_filter_with_prefixes().broadcasts,
                Broadcasts::NONE,
                full_broadcasts(),
            ];
            for (udp_port, broadcasts) in [DEFAULT_UDP_PORT, 0, 9999].into_iter().zip(broadcasts) {
                for signatures in signature_sets {
                    // The STAMP port only matters while STAMP is on.
                    let stamp_ports: &[u16] = if signatures.contains(Signature::Stamp) {
                        &[DEFAULT_STAMP_PORT, CUSTOM_STAMP_PORT, DEFAULT_UDP_PORT]
                    } else {
                        &[DEFAULT_STAMP_PORT]
                    };
                    for &stamp_port in stamp_ports {
                        for (ipv6, vlan) in
                            [(true, true), (true, false), (false, true), (false, false)]
                        {
                            filters.push(Filter {
                                dst_mac,
                                src_oui,
                                udp_port,
                                stamp_port,
                                signatures,
                                ipv6,
                                vlan,
                                broadcasts,
                            });
                        }
                    }
                }
            }
        }
    }
    filters
}

/// Send the frame to another UDP port.
fn set_dst_port(frame: &mut [u8], port: u16) {
    set_port(frame, UDP_DST_PORT, port);
}

/// Send the frame from another UDP port.
fn set_src_port(frame: &mut [u8], port: u16) {
    set_port(frame, UDP_SRC_PORT, port);
}

#[test]
fn stamp_seeds_exercise_every_stamp_verdict() {
    let seeds = stamp_seeds();
    let verdicts: Vec<_> = seeds
        .iter()
        .map(|frame| classify(frame, &reference_filter()).map(|a| a.signature))
        .collect();
    for wanted in [
        Ok(Signature::Stamp),
        Ok(Signature::ProbeOt),
        Err(Reject::StampTooShort),
        Err(Reject::StampFromReflector),
        Err(Reject::PortMismatch),
        Err(Reject::SrcOuiMismatch),
    ] {
        assert!(verdicts.contains(&wanted), "no STAMP seed gets {wanted:?}");
    }
}

#[test]
fn structured_edits_keep_the_lengths_consistent() {
    let filter = reference_filter();
    let mut probe = FrameBuilder::ipv4(HEAD_MAC, REFLECTOR_MAC, Signature::ProbeOt);
    probe.dst_port = DEFAULT_STAMP_PORT;
    let mut frame = probe.build();
    assert_eq!(
        classify(&frame, &filter).map(|a| a.signature),
        Err(Reject::StampTooShort)
    );
    let short_by = STAMP_MIN_PAYLOAD - Signature::ProbeOt.min_payload();
    resize_payload(&mut frame, short_by as isize);
    assert_eq!(
        classify(&frame, &filter).map(|a| a.signature),
        Ok(Signature::Stamp)
    );
    resize_payload(&mut frame, -1);
    assert_eq!(
        classify(&frame, &filter).map(|a| a.signature),
        Err(Reject::StampTooShort)
    );
    set_src_port(&mut frame, DEFAULT_STAMP_PORT);
    assert_eq!(
        classify(&frame, &filter).map(|a| a.signature),
        Err(Reject::StampFromReflector)
    );
    set_dst_port(&mut frame, DEFAULT_UDP_PORT);
    assert_eq!(
        classify(&frame, &filter).map(|a| a.signature),
        Ok(Signature::ProbeOt)
    );
    for v6 in stamp_seeds()
        .into_iter()
        .filter(|f| layout_of(f).is_some_and(|l| l.ip == IpVersion::V6))
    {
        let mut frame = v6.clone();
        resize_payload(&mut frame, 3);
        resize_payload(&mut frame, -3);
        assert_eq!(frame, v6);
    }
}

#[test]
fn every_filter_compiles_to_a_valid_program() {
    let mut longest = 0;
    for filter in filter_variants() {
        let prog = compile(&filter).unwrap_or_else(|e| panic!("{filter:?}: {e}"));
        validate(&prog);
        longest = longest.max(prog.len());
    }
    // The `MAX_INSNS` docs promise headroom below macOS's 512-instruction limit, with
    // as many directed broadcasts as a filter holds.
    let default = compile(&reference_filter_with_prefixes()).unwrap().len();
    eprintln!("longest program: {longest} instructions; the default filter with the reference prefixes: {default}");
    assert!(longest < 450, "longest program has {longest} instructions");
}

#[test]
fn stamp_frames_skip_the_port_oui_and_signature_checks() {
    let mut filter = reference_filter();
    filter.stamp_port = CUSTOM_STAMP_PORT;
    let prog = compile(&filter).unwrap();
    let mut stamp = FrameBuilder::ipv4(FOREIGN_MAC, REFLECTOR_MAC, Signature::Stamp);
    stamp.dst_port = CUSTOM_STAMP_PORT;
    assert_ne!(run(&prog, &stamp.build()), 0, "STAMP from any OUI");
    stamp.src_port = CUSTOM_STAMP_PORT;
    assert_eq!(run(&prog, &stamp.build()), 0, "STAMP from the STAMP port");
    stamp.src_port = DEFAULT_STAMP_PORT;
    assert_ne!(run(&prog, &stamp.build()), 0, "STAMP from another port");
    stamp.payload.truncate(STAMP_MIN_PAYLOAD - 1);
    assert_eq!(run(&prog, &stamp.build()), 0, "short STAMP");
    stamp.src_port = CUSTOM_STAMP_PORT;
    assert_eq!(
        run(&prog, &stamp.build()),
        0,
        "short STAMP from the STAMP port"
    );
    stamp.src_port = DEFAULT_STAMP_PORT;
    stamp.payload = signature_payload(Signature::Rfc2544, 0);
    assert_eq!(
        run(&prog, &stamp.build()),
        0,
        "a signature is no STAMP packet"
    );
    filter.signatures = [Signature::Rfc2544].into_iter().collect();
    let prog = compile(&filter).unwrap();
    stamp.payload = signature_payload(Signature::Stamp, 0);
    assert_eq!(run(&prog, &stamp.build()), 0, "STAMP off");
}

#[test]
fn reference_frames_get_the_spec_verdict() {
    for frame in reference_frames() {
        let prog = compile(&frame.filter).unwrap();
        let admitted = run(&prog, &frame.bytes) != 0;
        assert_eq!(
            admitted,
            frame.expected.is_ok(),
            "{}: expected {:?}\n{}",
            frame.name,
            frame.expected,
            dump(&prog)
        );
    }
}

#[test]
fn admitted_frames_are_returned_whole() {
    let prog = compile(&reference_filter()).unwrap();
    for frame in reference_frames() {
        let snap = run(&prog, &frame.bytes);
        assert!(
            snap == 0 || snap as usize >= frame.bytes.len(),
            "{}",
            frame.name
        );
    }
}

#[test]
fn reference_frames_agree_with_classify_under_every_filter() {
    let frames: Vec<(String, Vec<u8>)> = reference_frames()
        .into_iter()
        .map(|f| (f.name.to_owned(), f.bytes))
        .chain(
            stamp_seeds()
                .into_iter()
                .enumerate()
                .map(|(i, bytes)| (format!("STAMP seed {i}"), bytes)),
        )
        .collect();
    let mut from_reflector = 0;
    let mut too_short = 0;
    for filter in filter_variants() {
        let prog = compile(&filter).unwrap();
        for (name, bytes) in &frames {
            let admitted = run(&prog, bytes) != 0;
            let accepted = classify(bytes, &filter);
            from_reflector += usize::from(accepted == Err(Reject::StampFromReflector));
            too_short += usize::from(accepted == Err(Reject::StampTooShort));
            assert_eq!(
                admitted,
                accepted.is_ok(),
                "{name} under {filter:?}: classify says {accepted:?}"
            );
        }
    }
    assert!(
        from_reflector >= 1000 && too_short >= 1000,
        "{from_reflector} StampFromReflector and {too_short} StampTooShort rejects compared"
    );
}

#[test]
fn signatures_are_compared_in_four_two_one_byte_pieces() {
    let pieces: Vec<&[u8]> = chunks(b"Y.1564 ").collect();
    assert_eq!(pieces, vec![&b"Y.15"[..], b"64", b" "]);
    assert_eq!(chunks(b"").count(), 0);
    assert_eq!(chunks(b"abcdefgh").count(), 2);
}

#[test]
fn ipv4_header_length_uses_the_msh_load() {
    let prog = compile(&reference_filter()).unwrap();
    let msh: Vec<u32> = prog
        .iter()
        .filter(|i| i.code == op::LDX | op::B | op::MSH)
        .map(|i| i.k)
        .collect();
    // One per VLAN depth: the IPv4 header after 0, 1 and 2 tags.
    assert_eq!(msh, vec![14, 18, 22]);
}

/// The opcode parts are written out because macOS's libc has no `<net/bpf.h>` opcodes;
/// Linux's libc has them (`<linux/filter.h>`, the same values), so check against it.
#[cfg(target_os = "linux")]
#[test]
fn opcodes_match_the_kernel_headers() {
    let ours: [(u16, u32); 30] = [
        (op::LD, libc::BPF_LD),
        (op::LDX, libc::BPF_LDX),
        (op::ST, libc::BPF_ST),
        (op::STX, libc::BPF_STX),
        (op::ALU, libc::BPF_ALU),
        (op::JMP, libc::BPF_JMP),
        (op::RET, libc::BPF_RET),
        (op::MISC, libc::BPF_MISC),
        (op::W, libc::BPF_W),
        (op::H, libc::BPF_H),
        (op::B, libc::BPF_B),
        (op::IMM, libc::BPF_IMM),
        (op::ABS, libc::BPF_ABS),
        (op::IND, libc::BPF_IND),
        (op::MEM, libc::BPF_MEM),
        (op::LEN, libc::BPF_LEN),
        (op::MSH, libc::BPF_MSH),
        (op::ADD, libc::BPF_ADD),
        (op::SUB, libc::BPF_SUB),
        (op::AND, libc::BPF_AND),
        (op::LSH, libc::BPF_LSH),
        (op::JA, libc::BPF_JA),
        (op::JEQ, libc::BPF_JEQ),
        (op::JGT, libc::BPF_JGT),
        (op::JGE, libc::BPF_JGE),
        (op::JSET, libc::BPF_JSET),
        (op::K, libc::BPF_K),
        (op::X, libc::BPF_X),
        (op::TAX, libc::BPF_TAX),
        (op::TXA, libc::BPF_TXA),
    ];
    for (i, (ours, kernel)) in ours.into_iter().enumerate() {
        assert_eq!(u32::from(ours), kernel, "opcode part #{i}");
    }
    assert_eq!(i64::from(op::MEMWORDS), i64::from(libc::BPF_MEMWORDS));
    assert!(MAX_INSNS <= libc::BPF_MAXINSNS as usize);
}

#[test]
fn jumps_too_far_are_refused() {
    let mut asm = Asm::default();
    let far = asm.label();
    asm.jeq(0, far.into(), Next);
    for _ in 0..256 {
        asm.ret(0);
    }
    asm.bind(far);
    asm.ret(ACCEPT);
    assert_eq!(
        asm.finish(),
        Err(CompileError::JumpTooFar {
            at: 0,
            distance: 256
        })
    );
}

/// Bytes worth trying in header fields: EtherTypes, TPIDs, protocol numbers, lengths.
const INTERESTING: [u8; 14] = [
    0x00, 0x01, 0x02, 0x05, 0x06, 0x08, 0x11, 0x2b, 0x2c, 0x3c, 0x45, 0x60, 0x81, 0xff,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8000))]

    /// Damage a reference or STAMP seed frame in its headers, send it to or from another
    /// port, grow or shrink its payload (lengths kept consistent) and sometimes cut it
    /// short, and check the program and `classify` still agree, under every filter
    /// variant in turn.
    #[test]
    fn mutated_frames_agree_with_classify(
        frame_index in any::<prop::sample::Index>(),
        filter_index in any::<prop::sample::Index>(),
        port in prop::option::weighted(
            0.3,
            prop_oneof![prop::sample::select(&PORTS[..]), any::<u16>()],
        ),
        src_port in prop::option::weighted(
            0.2,
            prop_oneof![prop::sample::select(&PORTS[..]), any::<u16>()],
        ),
        delta in prop::option::weighted(0.3, -12isize..=12),
        edits in prop::collection::vec(
            (0usize..96, prop_oneof![prop::sample::select(&INTERESTING[..]), any::<u8>()]),
            0..4,
        ),
        cut in prop::option::weighted(0.2, 0usize..120),
    ) {
        let frames: Vec<Vec<u8>> = reference_frames()
            .into_iter()
            .map(|f| f.bytes)
            .chain(stamp_seeds())
            .collect();
        let filters = filter_variants();
        let mut bytes = frames[frame_index.index(frames.len())].clone();
        let filter = filters[filter_index.index(filters.len())];
        if let Some(port) = port {
            set_dst_port(&mut bytes, port);
        }
        if let Some(port) = src_port {
            set_src_port(&mut bytes, port);
        }
        if let Some(delta) = delta {
            resize_payload(&mut bytes, delta);
        }
        for (at, value) in edits {
            if let Some(byte) = bytes.get_mut(at) {
                *byte = value;
            }
        }
        if let Some(len) = cut {
            bytes.truncate(len);
        }
        let prog = compile(&filter).unwrap();
        let admitted = run(&prog, &bytes) != 0;
        let accepted = classify(&bytes, &filter);
        prop_assert_eq!(admitted, accepted.is_ok(), "classify: {:?}, frame {:02x?}", accepted, bytes);
    }
}
