//! A classic-BPF program that admits exactly the frames [`dataplane::classify`] accepts.
//!
//! The kernel runs it on every frame before copying anything into the `/dev/bpf`
//! buffer, so the reflector wakes up only for test frames. It mirrors the classifier
//! step by step: MAC checks, up to [`MAX_VLAN_TAGS`] VLAN tags, IPv4 (any header
//! length) or IPv6 (with the same bounded walk over hop-by-hop, routing and
//! destination-options headers), where the frame ends (no bytes past the datagram
//! beyond Ethernet's minimum-frame padding), the IP endpoints (unspecified, broadcast,
//! multicast, loopback, the interface's directed broadcasts [`Filter::broadcasts`],
//! IPv4-mapped addresses by their IPv4 part, source equal to destination) and the UDP
//! length. Then, when STAMP is enabled, a
//! frame to [`Filter::stamp_port`] is refused if it also comes from that port (another
//! reflector's answer), else admitted if its UDP payload holds a STAMP test packet
//! ([`STAMP_MIN_PAYLOAD`] bytes) and refused otherwise; any other frame must
//! pass the ITO port, the source OUI (checked this late so that STAMP senders may have
//! any OUI) and finally the enabled rows of [`SIGNATURES`], compared with 4-, 2- and
//! 1-byte loads. Classic BPF returns 0 whenever a load falls outside the frame, which
//! is exactly where `classify` says `Truncated`. The program only admits or refuses:
//! it has no reasons, so its agreement with `classify` is accept versus reject. User
//! space still runs `classify` on every frame it reads, so this program is an
//! optimisation, never the last word.
//!
//! The layout of [`Insn`] is the `struct bpf_insn` of macOS and the `struct
//! sock_filter` of Linux, so the same program is attached to an `AF_PACKET` socket by
//! the Linux test (`tests/cbpf_kernel.rs`) and checked against `classify` there.
//!
//! The program is built in four sections (Ethernet/VLAN, IPv4, IPv6, UDP/STAMP/OUI/
//! signatures),
//! each ending in its own `ret #0`, so no conditional jump (8-bit offset) has to reach
//! across the whole program. Offsets that vary with the VLAN depth or the IPv4 header
//! length live in scratch memory and are applied with indexed loads.
//! The instructions are written through the small assembler in `asm`, which resolves
//! the labels into jump offsets.

use dataplane::filter::{DstMacFilter, Filter};
use dataplane::parse::*;
use dataplane::signature::{Signature, SIGNATURES};
use dataplane::stamp::STAMP_MIN_PAYLOAD;
use dataplane::MacAddr;

mod asm;

pub use asm::{op, CompileError, Insn, MAX_INSNS};
use asm::{Asm, Dest::Next, Label};

/// What the program returns for an admitted frame: the number of bytes to capture.
/// Larger than any frame, so admitted frames are never cut (libpcap's default).
pub const ACCEPT: u32 = 262_144;

/// Generate the program for `filter`.
pub fn compile(filter: &Filter) -> Result<Vec<Insn>, CompileError> {
    let mut asm = Asm::default();
    let ipv4 = asm.label();
    let ipv6 = asm.label();
    let udp = asm.label();

    link_layer(&mut asm, filter, ipv4, ipv6);
    ipv4_section(&mut asm, filter, ipv4, udp);
    if filter.ipv6 {
        ipv6_section(&mut asm, filter, ipv6, udp);
    }
    udp_section(&mut asm, filter, udp);
    asm.finish()
}

// Scratch memory slots.
/// Offset of the IP header.
const M_L3: u32 = 0;
/// IPv4 header length in bytes.
const M_HLEN: u32 = 1;
/// IPv4 total length.
const M_TOTAL: u32 = 2;
/// UDP length implied by the IP layer.
const M_ULEN: u32 = 3;
/// Offset of the UDP header.
const M_L4: u32 = 4;
/// Offset just past the IPv6 payload.
const M_END: u32 = 5;
/// IPv6: offset of the header being walked, and its type.
const M_AT: u32 = 6;
const M_NEXT: u32 = 7;
/// A word held for a comparison with X (source against destination address).
const M_TMP: u32 = 8;

/// Ethernet addresses, VLAN tags and the EtherType dispatch. Ends with `ret #0`.
fn link_layer(asm: &mut Asm, filter: &Filter, ipv4: Label, ipv6: Label) {
    let reject = asm.label();
    let src_differs = asm.label();
    match filter.dst_mac {
        DstMacFilter::Exact(mac) => {
            let (hi, lo) = split_mac(&mac);
            asm.ld(op::W | op::ABS, ETH_DST as u32);
            asm.jeq(hi, Next, reject.into());
            asm.ld(op::H | op::ABS, ETH_DST as u32 + 4);
            asm.jeq(lo, Next, reject.into());
            asm.ld(op::B | op::ABS, ETH_SRC as u32);
            asm.jset(1, reject.into(), Next);
            // The destination is known, so "src != dst" compares with constants.
            asm.ld(op::W | op::ABS, ETH_SRC as u32);
            asm.jeq(hi, Next, src_differs.into());
            asm.ld(op::H | op::ABS, ETH_SRC as u32 + 4);
            asm.jeq(lo, reject.into(), Next);
        }
        DstMacFilter::AnyUnicast => {
            asm.ld(op::B | op::ABS, ETH_DST as u32);
            asm.jset(1, reject.into(), Next);
            asm.ld(op::B | op::ABS, ETH_SRC as u32);
            asm.jset(1, reject.into(), Next);
            asm.ld(op::W | op::ABS, ETH_DST as u32);
            asm.tax();
            asm.ld(op::W | op::ABS, ETH_SRC as u32);
            asm.jump(op::JEQ | op::X, 0, Next, src_differs.into());
            asm.ld(op::H | op::ABS, ETH_DST as u32 + 4);
            asm.tax();
            asm.ld(op::H | op::ABS, ETH_SRC as u32 + 4);
            asm.jump(op::JEQ | op::X, 0, reject.into(), Next);
        }
    }
    // The source OUI is checked in the UDP section, after the ports, as classify does.
    asm.bind(src_differs);

    let depths = if filter.vlan { MAX_VLAN_TAGS + 1 } else { 1 };
    let dispatch: Vec<Label> = (0..depths).map(|_| asm.label()).collect();
    asm.ld(op::H | op::ABS, ETH_TYPE as u32);
    if filter.vlan {
        // Tag n's TPID sits where the EtherType would be; the next EtherType (or TPID)
        // follows its TCI, 4 bytes further on.
        for (depth, &not_tag) in dispatch.iter().enumerate() {
            let is_tag = asm.label();
            let not_tag = not_tag.into();
            asm.jeq(u32::from(TPID_8021Q), is_tag.into(), Next);
            asm.jeq(u32::from(TPID_8021AD), is_tag.into(), not_tag);
            asm.bind(is_tag);
            if depth == MAX_VLAN_TAGS {
                asm.ret(0);
            } else {
                let next_type = ETH_TYPE + VLAN_TAG_LEN * (depth + 1);
                asm.ld(op::H | op::ABS, next_type as u32);
            }
        }
    }
    let mut versions = Vec::with_capacity(depths);
    for (depth, label) in dispatch.into_iter().enumerate() {
        asm.bind(label);
        let (to_v4, to_v6) = (asm.label(), asm.label());
        if filter.ipv6 {
            asm.jeq(u32::from(ETHERTYPE_IPV4), to_v4.into(), Next);
            asm.jeq(u32::from(ETHERTYPE_IPV6), to_v6.into(), reject.into());
        } else {
            asm.jeq(u32::from(ETHERTYPE_IPV4), to_v4.into(), reject.into());
        }
        versions.push((ETH_HEADER_LEN + VLAN_TAG_LEN * depth, to_v4, to_v6));
    }
    for (l3, to_v4, to_v6) in versions {
        let l3 = l3 as u32;
        asm.bind(to_v4);
        asm.ld(op::IMM, l3);
        asm.st(M_L3);
        // X = 4 * IHL: the one instruction classic BPF has for IPv4 header lengths.
        asm.push(op::LDX | op::B | op::MSH, l3);
        asm.ja(ipv4);
        if filter.ipv6 {
            asm.bind(to_v6);
            asm.ld(op::IMM, l3);
            asm.st(M_L3);
            asm.ja(ipv6);
        }
    }
    asm.bind(reject);
    asm.ret(0);
}

/// IPv4 header checks, mirroring `walk_ipv4`. Entered with X = header length and
/// M_L3 set. Ends with `ret #0`.
fn ipv4_section(asm: &mut Asm, filter: &Filter, start: Label, udp: Label) {
    let reject = asm.label();
    asm.bind(start);
    asm.stx(M_HLEN);
    asm.txa();
    asm.jge(IPV4_MIN_HEADER_LEN as u32, Next, reject.into());
    asm.ldx_mem(M_L3);
    asm.ld(op::B | op::IND, 0);
    asm.alu(op::AND, 0xF0);
    asm.jeq(0x40, Next, reject.into());
    asm.ld(op::H | op::IND, IPV4_TOTAL_LEN as u32);
    asm.st(M_TOTAL);
    asm.ldx_mem(M_HLEN);
    asm.jump(op::JGE | op::X, 0, Next, reject.into());
    // l3 + total length must fit in the frame (Ethernet padding may follow).
    asm.ldx_mem(M_L3);
    asm.alu_x(op::ADD);
    asm.tax();
    asm.ld(op::W | op::LEN, 0);
    asm.jump(op::JGE | op::X, 0, Next, reject.into());
    reject_trailer(asm, reject);
    asm.ldx_mem(M_L3);
    asm.ld(op::H | op::IND, IPV4_FRAG as u32);
    asm.jset(u32::from(IPV4_MF_AND_OFFSET), reject.into(), Next);
    asm.ld(op::B | op::IND, IPV4_PROTOCOL as u32);
    asm.jeq(u32::from(IP_PROTO_UDP), Next, reject.into());
    endpoint_checks(asm, |asm, refuse| {
        for field in [IPV4_SRC, IPV4_DST] {
            asm.ld(op::W | op::IND, field as u32);
            reject_ipv4_endpoint(asm, filter, refuse);
        }
        reject_same_addresses(asm, IPV4_SRC, IPV4_DST, 1, refuse);
    });
    asm.ld(op::MEM, M_TOTAL);
    asm.ldx_mem(M_HLEN);
    asm.alu_x(op::SUB);
    asm.st(M_ULEN);
    asm.ld(op::MEM, M_L3);
    asm.alu_x(op::ADD);
    asm.st(M_L4);
    asm.ja(udp);
    asm.bind(reject);
    asm.ret(0);
}

/// IPv6 header and extension-header walk, mirroring `walk_ipv6`. Entered with M_L3
/// set. Ends with `ret #0`.
fn ipv6_section(asm: &mut Asm, filter: &Filter, start: Label, udp: Label) {
    let reject = asm.label();
    let found_udp = asm.label();
    asm.bind(start);
    asm.ldx_mem(M_L3);
    asm.ld(op::B | op::IND, 0);
    asm.alu(op::AND, 0xF0);
    asm.jeq(0x60, Next, reject.into());
    // A zero payload length announces a jumbogram.
    asm.ld(op::H | op::IND, IPV6_PAYLOAD_LEN as u32);
    asm.jeq(0, reject.into(), Next);
    asm.alu_x(op::ADD);
    asm.alu(op::ADD, IPV6_HEADER_LEN as u32);
    asm.st(M_END);
    asm.tax();
    asm.ld(op::W | op::LEN, 0);
    asm.jump(op::JGE | op::X, 0, Next, reject.into());
    reject_trailer(asm, reject);
    asm.ldx_mem(M_L3);
    endpoint_checks(asm, |asm, refuse| {
        for field in [IPV6_SRC, IPV6_DST] {
            reject_ipv6_endpoint(asm, filter, field as u32, refuse);
        }
        reject_same_addresses(asm, IPV6_SRC, IPV6_DST, 4, refuse);
    });
    asm.ld(op::B | op::IND, IPV6_NEXT_HEADER as u32);
    asm.st(M_NEXT);
    asm.txa();
    asm.alu(op::ADD, IPV6_HEADER_LEN as u32);
    asm.st(M_AT);
    asm.tax();
    asm.ld(op::MEM, M_NEXT);
    // Loop invariant: A = type of the header at X = M_AT. classify() looks at up to
    // MAX_IPV6_EXT_HEADERS + 1 headers; skipping past the last one can only end in a
    // rejection, so the last round just checks for UDP.
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        let skip = asm.label();
        asm.jeq(u32::from(IP_PROTO_UDP), found_udp.into(), Next);
        asm.jeq(u32::from(IPV6_EXT_HOP_BY_HOP), skip.into(), Next);
        asm.jeq(u32::from(IPV6_EXT_ROUTING), skip.into(), Next);
        // Fragments and every other protocol end here.
        asm.jeq(u32::from(IPV6_EXT_DEST_OPTIONS), skip.into(), reject.into());
        asm.bind(skip);
        asm.txa();
        asm.alu(op::ADD, 8);
        asm.ldx_mem(M_END);
        asm.jump(op::JGT | op::X, 0, reject.into(), Next);
        asm.ldx_mem(M_AT);
        asm.ld(op::B | op::IND, 0);
        asm.st(M_NEXT);
        // Length in 8-octet units past the first 8.
        asm.ld(op::B | op::IND, 1);
        asm.alu(op::ADD, 1);
        asm.alu(op::LSH, 3);
        asm.alu_x(op::ADD);
        asm.st(M_AT);
        asm.ldx_mem(M_END);
        asm.jump(op::JGT | op::X, 0, reject.into(), Next);
        asm.ldx_mem(M_AT);
        asm.ld(op::MEM, M_NEXT);
    }
    asm.jeq(u32::from(IP_PROTO_UDP), Next, reject.into());
    asm.bind(found_udp);
    asm.stx(M_L4);
    asm.ld(op::MEM, M_END);
    asm.alu_x(op::SUB);
    asm.st(M_ULEN);
    asm.ja(udp);
    asm.bind(reject);
    asm.ret(0);
}

/// `check_trailer`: entered with X = the offset just past the IP datagram, which the
/// frame must not outrun by more than the padding up to Ethernet's minimum payload.
/// Leaves X = M_L3.
fn reject_trailer(asm: &mut Asm, reject: Label) {
    let padded_end = asm.label();
    asm.ld(op::MEM, M_L3);
    asm.alu(op::ADD, ETH_MIN_PAYLOAD as u32);
    asm.jump(op::JGT | op::X, 0, Next, padded_end.into());
    // The minimum payload ends later than the datagram: the frame may run to it.
    asm.tax();
    asm.bind(padded_end);
    asm.ld(op::W | op::LEN, 0);
    asm.jump(op::JGT | op::X, 0, reject.into(), Next);
    asm.ldx_mem(M_L3);
}

/// `check_endpoints`, emitted by `body` with a `ret #0` of its own (`refuse`) right
/// after it, so its jumps stay short however many broadcast addresses it compares.
/// Entered and left with X = M_L3.
fn endpoint_checks(asm: &mut Asm, body: impl FnOnce(&mut Asm, Label)) {
    let refuse = asm.label();
    let passed = asm.label();
    body(asm, refuse);
    asm.ja(passed);
    asm.bind(refuse);
    asm.ret(0);
    asm.bind(passed);
}

/// `ipv4_endpoint`: refuse A if it is unspecified, limited broadcast, one of the
/// interface's directed broadcasts, loopback (127.0.0.0/8) or multicast (224.0.0.0/4).
fn reject_ipv4_endpoint(asm: &mut Asm, filter: &Filter, refuse: Label) {
    asm.jeq(0, refuse.into(), Next);
    asm.jeq(u32::MAX, refuse.into(), Next);
    for &broadcast in filter.broadcasts.as_u32s() {
        asm.jeq(broadcast, refuse.into(), Next);
    }
    asm.alu(op::AND, 0xFF00_0000);
    asm.jeq(0x7F00_0000, refuse.into(), Next);
    asm.alu(op::AND, 0xF000_0000);
    asm.jeq(0xE000_0000, refuse.into(), Next);
}

/// `ipv6_endpoint` for the address at `field`: an IPv4-mapped one (::ffff:0:0/96) by
/// its IPv4 part, any other refused if multicast (ff00::/8), unspecified or loopback.
fn reject_ipv6_endpoint(asm: &mut Asm, filter: &Filter, field: u32, refuse: Label) {
    let native = asm.label();
    let host = asm.label();
    asm.ld(op::W | op::IND, field);
    asm.jeq(0, Next, native.into());
    asm.ld(op::W | op::IND, field + 4);
    asm.jeq(0, Next, native.into());
    asm.ld(op::W | op::IND, field + 8);
    asm.jeq(0xFFFF, Next, native.into());
    asm.ld(op::W | op::IND, field + 12);
    reject_ipv4_endpoint(asm, filter, refuse);
    asm.ja(host);
    asm.bind(native);
    asm.ld(op::B | op::IND, field);
    asm.jeq(0xFF, refuse.into(), Next);
    // :: and ::1: twelve zero bytes, then 0 or 1.
    for word in 0..3 {
        asm.ld(op::W | op::IND, field + 4 * word);
        asm.jeq(0, Next, host.into());
    }
    asm.ld(op::W | op::IND, field + 12);
    asm.jge(2, host.into(), refuse.into());
    asm.bind(host);
}

/// Refuse the frame if the `words` 32-bit words at `src` equal those at `dst`.
/// Entered and left with X = M_L3.
fn reject_same_addresses(asm: &mut Asm, src: usize, dst: usize, words: usize, refuse: Label) {
    let differ = asm.label();
    for word in 0..words {
        let at = 4 * word as u32;
        asm.ldx_mem(M_L3);
        asm.ld(op::W | op::IND, dst as u32 + at);
        asm.st(M_TMP);
        asm.ld(op::W | op::IND, src as u32 + at);
        asm.ldx_mem(M_TMP);
        let equal = if word + 1 == words {
            refuse.into()
        } else {
            Next
        };
        asm.jump(op::JEQ | op::X, 0, equal, differ.into());
    }
    asm.bind(differ);
    asm.ldx_mem(M_L3);
}

/// UDP length (`check_udp_length`); then STAMP by ports and length, or the ITO port,
/// the source OUI (`check_src_oui`) and the enabled signatures (`match_signature`), in
/// `classify`'s order. Entered with M_L4 and M_ULEN set. Ends with `ret #0`.
fn udp_section(asm: &mut Asm, filter: &Filter, start: Label) {
    let reject = asm.label();
    asm.bind(start);
    asm.ld(op::MEM, M_ULEN);
    asm.jge(UDP_HEADER_LEN as u32, Next, reject.into());
    asm.ldx_mem(M_L4);
    asm.ld(op::H | op::IND, UDP_LENGTH as u32);
    asm.ldx_mem(M_ULEN);
    asm.jump(op::JEQ | op::X, 0, Next, reject.into());
    asm.ldx_mem(M_L4);
    let stamp = filter.signatures.contains(Signature::Stamp);
    if stamp || filter.udp_port != 0 {
        asm.ld(op::H | op::IND, UDP_DST_PORT as u32);
    }
    if stamp {
        // A frame to the STAMP port is a STAMP test packet or nothing: it never goes on
        // to the port, OUI and signature checks.
        let not_stamp = asm.label();
        asm.jeq(u32::from(filter.stamp_port), Next, not_stamp.into());
        // From the STAMP port too: another reflector's answer, which could loop.
        asm.ld(op::H | op::IND, UDP_SRC_PORT as u32);
        asm.jeq(u32::from(filter.stamp_port), reject.into(), Next);
        asm.ld(op::MEM, M_ULEN);
        asm.jge(
            (UDP_HEADER_LEN + STAMP_MIN_PAYLOAD) as u32,
            Next,
            reject.into(),
        );
        asm.ret(ACCEPT);
        // A still holds the destination port here.
        asm.bind(not_stamp);
    }
    if filter.udp_port != 0 {
        asm.jeq(u32::from(filter.udp_port), Next, reject.into());
    }
    if let Some(oui) = filter.src_oui {
        asm.ld(op::H | op::ABS, ETH_SRC as u32);
        asm.jeq(
            u32::from(u16::from_be_bytes([oui.0[0], oui.0[1]])),
            Next,
            reject.into(),
        );
        asm.ld(op::B | op::ABS, ETH_SRC as u32 + 2);
        asm.jeq(u32::from(oui.0[2]), Next, reject.into());
    }
    // X = UDP header offset from here on.
    for spec in SIGNATURES
        .iter()
        .filter(|spec| filter.signatures.contains(spec.signature))
    {
        let next = asm.label();
        // The signature must lie inside the UDP payload, not in Ethernet padding.
        asm.ld(op::MEM, M_ULEN);
        asm.jge(
            (UDP_HEADER_LEN + spec.min_payload()) as u32,
            Next,
            next.into(),
        );
        let mut at = UDP_HEADER_LEN + spec.offset;
        for chunk in chunks(spec.bytes) {
            let (size, value) = match *chunk {
                [a, b, c, d] => (op::W, u32::from_be_bytes([a, b, c, d])),
                [a, b] => (op::H, u32::from(u16::from_be_bytes([a, b]))),
                [a] => (op::B, u32::from(a)),
                _ => unreachable!("chunks() yields 4, 2 or 1 bytes"),
            };
            asm.ld(size | op::IND, at as u32);
            asm.jeq(value, Next, next.into());
            at += chunk.len();
        }
        asm.ret(ACCEPT);
        asm.bind(next);
    }
    asm.bind(reject);
    asm.ret(0);
}

/// Split `bytes` into the fewest 4-, 2- and 1-byte pieces, in order.
fn chunks(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        let take = match rest.len() {
            0 => return None,
            n if n >= 4 => 4,
            n if n >= 2 => 2,
            _ => 1,
        };
        let (chunk, tail) = rest.split_at(take);
        rest = tail;
        Some(chunk)
    })
}

fn split_mac(&MacAddr(mac): &MacAddr) -> (u32, u32) {
    (
        u32::from_be_bytes([mac[0], mac[1], mac[2], mac[3]]),
        u32::from(u16::from_be_bytes([mac[4], mac[5]])),
    )
}

#[cfg(test)]
mod tests;
