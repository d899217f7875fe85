//! Reference frames for the refusals that turn on IP addresses and the frame's end:
//! directed broadcasts of the interface's prefixes, martian sources (loopback, source
//! equal to destination), IPv4-mapped IPv6 addresses judged by their IPv4 part, and
//! bytes after the IP datagram beyond Ethernet's minimum-frame padding.

use super::{reference_filter, set_v4, set_v6, v4, v6, ReferenceFrame};
use crate::filter::{Broadcasts, Filter};
use crate::parse::*;
use crate::reject::Reject;
use crate::signature::Signature;
use ipnet::Ipv4Net;

/// The IPv4 prefixes of the reference interface: the lab's 192.0.2.2/24 (as `netlab`
/// configures the reflector's end) and a /25, whose broadcast is not a .255.
pub const REFERENCE_PREFIXES: [&str; 2] = ["192.0.2.2/24", "198.51.100.1/25"];

/// [`reference_filter`] on an interface holding [`REFERENCE_PREFIXES`]: what a live
/// reflector on the lab's interface learns.
pub fn reference_filter_with_prefixes() -> Filter {
    let prefixes = REFERENCE_PREFIXES.map(|p| p.parse::<Ipv4Net>().expect("valid prefix"));
    Filter {
        broadcasts: Broadcasts::of_prefixes(prefixes),
        ..reference_filter()
    }
}

/// ::ffff:a.b.c.d
fn mapped(v4: [u8; 4]) -> [u8; 16] {
    let mut addr = [0; 16];
    addr[10..12].copy_from_slice(&[0xff, 0xff]);
    addr[12..].copy_from_slice(&v4);
    addr
}

/// ::1
const IPV6_LOOPBACK: [u8; 16] = {
    let mut addr = [0; 16];
    addr[15] = 1;
    addr
};

/// A tag inserted after the MAC addresses of a finished frame, as a bridge tags a
/// frame from an access port: its padding stays.
fn tagged_by_bridge(mut frame: Vec<u8>, tci: u16) -> Vec<u8> {
    let mut tag = TPID_8021Q.to_be_bytes().to_vec();
    tag.extend_from_slice(&tci.to_be_bytes());
    frame.splice(ETH_TYPE..ETH_TYPE, tag);
    frame
}

pub(super) fn frames() -> Vec<ReferenceFrame> {
    let plain = reference_filter();
    let prefixes = reference_filter_with_prefixes();
    let frame = |name, bytes, filter, expected| ReferenceFrame {
        name,
        bytes,
        filter,
        expected,
    };
    let no = |name, bytes, reason| frame(name, bytes, plain, Err(reason));
    let mut frames = Vec::new();

    // --- Directed broadcasts of the interface's prefixes, either side, also mapped.
    for (name, addr, to) in [
        (
            "ipv4 dst directed broadcast of the /24",
            [192, 0, 2, 255],
            true,
        ),
        (
            "ipv4 dst directed broadcast of the /25",
            [198, 51, 100, 127],
            true,
        ),
        ("ipv4 src directed broadcast", [192, 0, 2, 255], false),
    ] {
        let mut b = v4(Signature::ProbeOt);
        set_v4(&mut b, |src, dst, _, _| {
            *(if to { dst } else { src }) = addr
        });
        frames.push(frame(
            name,
            b.build(),
            prefixes,
            Err(Reject::DirectedBroadcast),
        ));
    }
    let mut b = v6(Signature::Rfc2544);
    set_v6(&mut b, |src, dst, _| {
        *src = mapped([192, 0, 2, 1]);
        *dst = mapped([192, 0, 2, 255]);
    });
    frames.push(frame(
        "ipv6 dst ipv4-mapped directed broadcast",
        b.build(),
        prefixes,
        Err(Reject::DirectedBroadcast),
    ));
    for (name, addr) in [
        (
            "ipv4 .255 of a prefix not on the interface",
            [203, 0, 113, 255],
        ),
        ("ipv4 .255 outside the /25", [198, 51, 100, 255]),
    ] {
        let mut b = v4(Signature::ProbeOt);
        set_v4(&mut b, |_, dst, _, _| *dst = addr);
        frames.push(frame(name, b.build(), prefixes, Ok(Signature::ProbeOt)));
    }

    // --- Martian sources and destinations.
    let mut b = v4(Signature::ProbeOt);
    set_v4(&mut b, |src, _, _, _| *src = [127, 0, 0, 1]);
    frames.push(no("ipv4 src loopback", b.build(), Reject::SrcIpLoopback));
    let mut b = v4(Signature::Latency);
    set_v4(&mut b, |src, _, _, _| *src = [127, 200, 1, 9]);
    frames.push(no("ipv4 src in 127/8", b.build(), Reject::SrcIpLoopback));
    let mut b = v4(Signature::ProbeOt);
    set_v4(&mut b, |_, dst, _, _| *dst = [127, 0, 0, 1]);
    frames.push(no("ipv4 dst loopback", b.build(), Reject::DstIpLoopback));
    let mut b = v4(Signature::ProbeOt);
    set_v4(&mut b, |src, dst, _, _| *src = *dst);
    frames.push(no("ipv4 src equals dst", b.build(), Reject::SrcIpIsDst));
    let mut b = v6(Signature::ProbeOt);
    set_v6(&mut b, |src, _, _| *src = IPV6_LOOPBACK);
    frames.push(no("ipv6 src loopback", b.build(), Reject::SrcIpLoopback));
    let mut b = v6(Signature::ProbeOt);
    set_v6(&mut b, |_, dst, _| *dst = IPV6_LOOPBACK);
    frames.push(no("ipv6 dst loopback", b.build(), Reject::DstIpLoopback));
    let mut b = v6(Signature::Stamp);
    set_v6(&mut b, |src, dst, _| *src = *dst);
    frames.push(no(
        "ipv6 STAMP src equals dst",
        b.build(),
        Reject::SrcIpIsDst,
    ));
    for (name, src, dst, reason) in [
        (
            "ipv6 src ipv4-mapped multicast",
            [224, 0, 0, 1],
            [192, 0, 2, 2],
            Reject::SrcIpInvalid,
        ),
        (
            "ipv6 dst ipv4-mapped limited broadcast",
            [192, 0, 2, 1],
            [255, 255, 255, 255],
            Reject::DstIpInvalid,
        ),
        (
            "ipv6 src ipv4-mapped unspecified",
            [0, 0, 0, 0],
            [192, 0, 2, 2],
            Reject::SrcIpInvalid,
        ),
        (
            "ipv6 src ipv4-mapped loopback",
            [127, 0, 0, 1],
            [192, 0, 2, 2],
            Reject::SrcIpLoopback,
        ),
        (
            "ipv6 dst ipv4-mapped loopback",
            [192, 0, 2, 1],
            [127, 0, 0, 1],
            Reject::DstIpLoopback,
        ),
    ] {
        let mut b = v6(Signature::DataOt);
        set_v6(&mut b, |s, d, _| (*s, *d) = (mapped(src), mapped(dst)));
        frames.push(no(name, b.build(), reason));
    }
    let mut b = v6(Signature::DataOt);
    set_v6(&mut b, |s, d, _| {
        (*s, *d) = (mapped([192, 0, 2, 1]), mapped([192, 0, 2, 2]))
    });
    frames.push(frame(
        "ipv6 ipv4-mapped unicast",
        b.build(),
        plain,
        Ok(Signature::DataOt),
    ));

    // --- The frame ends with the datagram or its minimum-frame padding.
    frames.push(frame(
        "padded frame tagged by a bridge",
        tagged_by_bridge(v4(Signature::ProbeOt).build(), 100),
        plain,
        Ok(Signature::ProbeOt),
    ));
    let mut one_past_padding = v4(Signature::ProbeOt).build();
    one_past_padding.push(0);
    frames.push(no(
        "ipv4 one byte past the minimum-frame padding",
        one_past_padding,
        Reject::LengthMismatch,
    ));
    // The frame: IP and UDP lengths say 100 bytes, the frame is 200.
    let mut b = v4(Signature::Rfc2544);
    b.payload
        .resize(100 - IPV4_MIN_HEADER_LEN - UDP_HEADER_LEN, 0);
    let mut trailer = b.build();
    trailer.resize(200, 0xA5);
    frames.push(no(
        "ipv4 200-byte frame holding a 100-byte datagram",
        trailer,
        Reject::LengthMismatch,
    ));
    let mut b = v6(Signature::Stamp);
    let mut trailer = b.build();
    trailer.extend_from_slice(&[0; 4]);
    b.vlan_tags = vec![(TPID_8021Q, 7)];
    frames.push(no(
        "ipv6 STAMP with 4 bytes after the datagram",
        trailer,
        Reject::LengthMismatch,
    ));
    let mut tagged_trailer = b.build();
    tagged_trailer.push(0);
    frames.push(no(
        "tagged ipv6 STAMP with a byte after the datagram",
        tagged_trailer,
        Reject::LengthMismatch,
    ));
    frames
}
