//! Reference frames: one or more per row of `shared/spec/PACKETS.md`, each with the
//! verdict the spec demands. The Rust classifier, the XDP program and the classic-BPF
//! filter are all tested against this one table, so they cannot drift apart.

use crate::filter::{Filter, DEFAULT_STAMP_PORT};
use crate::frame::{FrameBuilder, IpSpec};
use crate::mac::MacAddr;
use crate::parse::*;
use crate::reject::Reject;
use crate::signature::{Signature, SignatureSet};
use crate::stamp::STAMP_MIN_PAYLOAD;

mod addresses;
pub use addresses::{reference_filter_with_prefixes, REFERENCE_PREFIXES};

/// The reflector's interface MAC in reference frames (locally administered).
pub const REFLECTOR_MAC: MacAddr = MacAddr([0x02, 0x52, 0x45, 0x46, 0x4c, 0x01]);
/// The test head's MAC: inside NetAlly's OUI, as a LinkRunner's would be.
pub const HEAD_MAC: MacAddr = MacAddr([0x00, 0xC0, 0x17, 0x54, 0x05, 0x01]);
/// A source MAC outside NetAlly's OUI, as an ordinary STAMP sender's would be.
pub const FOREIGN_MAC: MacAddr = MacAddr([0x00, 0x1B, 0x21, 0x01, 0x02, 0x03]);

/// A 64-byte (60 + FCS) IPv4 PROBEOT frame from a NetAlly head, written out byte by
/// byte from the spec (checksums computed independently of this crate).
pub const NETALLY_PROBEOT_FRAME: [u8; 60] = [
    0x02, 0x52, 0x45, 0x46, 0x4c, 0x01, 0x00, 0xc0, 0x17, 0x54, 0x05, 0x01, 0x08, 0x00, 0x45, 0x00,
    0x00, 0x2e, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x11, 0x9a, 0x75, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00,
    0x02, 0x02, 0xc0, 0x00, 0x0f, 0x02, 0x00, 0x1a, 0x9d, 0x79, 0x01, 0x00, 0x00, 0x00, 0x2a, 0x50,
    0x52, 0x4f, 0x42, 0x45, 0x4f, 0x54, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
];

/// [`NETALLY_PROBEOT_FRAME`] after reflection in mode `all`: MACs, IPs and ports
/// swapped, both checksums unchanged.
pub const NETALLY_PROBEOT_REFLECTED: [u8; 60] = [
    0x00, 0xc0, 0x17, 0x54, 0x05, 0x01, 0x02, 0x52, 0x45, 0x46, 0x4c, 0x01, 0x08, 0x00, 0x45, 0x00,
    0x00, 0x2e, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x11, 0x9a, 0x75, 0xc0, 0x00, 0x02, 0x02, 0xc0, 0x00,
    0x02, 0x01, 0x0f, 0x02, 0xc0, 0x00, 0x00, 0x1a, 0x9d, 0x79, 0x01, 0x00, 0x00, 0x00, 0x2a, 0x50,
    0x52, 0x4f, 0x42, 0x45, 0x4f, 0x54, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
];

/// One reference frame and what the spec says must happen to it.
#[derive(Clone, Debug)]
pub struct ReferenceFrame {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    /// The filter the verdict holds for.
    pub filter: Filter,
    pub expected: Result<Signature, Reject>,
}

/// The spec defaults for a reflector whose interface MAC is [`REFLECTOR_MAC`].
pub fn reference_filter() -> Filter {
    Filter::for_interface(REFLECTOR_MAC)
}

fn v4(signature: Signature) -> FrameBuilder {
    FrameBuilder::ipv4(HEAD_MAC, REFLECTOR_MAC, signature)
}

fn v6(signature: Signature) -> FrameBuilder {
    FrameBuilder::ipv6(HEAD_MAC, REFLECTOR_MAC, signature)
}

fn set_v4(
    builder: &mut FrameBuilder,
    edit: impl FnOnce(&mut [u8; 4], &mut [u8; 4], &mut Vec<u8>, &mut u16),
) {
    if let IpSpec::V4 {
        src,
        dst,
        options,
        flags_fragment,
        ..
    } = &mut builder.ip
    {
        edit(src, dst, options, flags_fragment);
    }
}

fn set_v6(
    builder: &mut FrameBuilder,
    edit: impl FnOnce(&mut [u8; 16], &mut [u8; 16], &mut Vec<u8>),
) {
    if let IpSpec::V6 {
        src,
        dst,
        extension_headers,
        ..
    } = &mut builder.ip
    {
        edit(src, dst, extension_headers);
    }
}

/// Build `builder`, then patch bytes at the given absolute offsets.
fn patched(builder: FrameBuilder, patches: &[(usize, &[u8])]) -> Vec<u8> {
    let mut bytes = builder.build();
    for (at, new) in patches {
        bytes[*at..*at + new.len()].copy_from_slice(new);
    }
    bytes
}

const L3: usize = ETH_HEADER_LEN;
const V4_L4: usize = L3 + IPV4_MIN_HEADER_LEN;

/// Every reference frame. Names are unique and say what the frame exercises.
pub fn reference_frames() -> Vec<ReferenceFrame> {
    let filter = reference_filter();
    let ok = |name, bytes, signature| ReferenceFrame {
        name,
        bytes,
        filter,
        expected: Ok(signature),
    };
    let no = |name, bytes, reason| ReferenceFrame {
        name,
        bytes,
        filter,
        expected: Err(reason),
    };
    let with = |name, bytes, filter, expected| ReferenceFrame {
        name,
        bytes,
        filter,
        expected,
    };
    let mut frames = Vec::new();

    // --- Accepted: every signature, both IP versions, tags, options, extension headers.
    frames.push(ok(
        "netally capture PROBEOT",
        NETALLY_PROBEOT_FRAME.to_vec(),
        Signature::ProbeOt,
    ));
    for signature in Signature::ALL {
        frames.push(ok(v4_name(signature), v4(signature).build(), signature));
        frames.push(ok(v6_name(signature), v6(signature).build(), signature));
    }
    let mut b = v4(Signature::DataOt);
    set_v4(&mut b, |_, _, options, _| {
        *options = vec![0x94, 0x04, 0x00, 0x00]
    });
    frames.push(ok("ipv4 router-alert option", b.build(), Signature::DataOt));
    let mut b = v4(Signature::Latency);
    set_v4(&mut b, |_, _, options, _| {
        *options = [[0x01; 4]; 10].concat()
    });
    frames.push(ok(
        "ipv4 40 bytes of options",
        b.build(),
        Signature::Latency,
    ));
    let mut b = v4(Signature::ProbeOt);
    b.vlan_tags = vec![(TPID_8021Q, 100)];
    frames.push(ok("802.1Q tag", b.build(), Signature::ProbeOt));
    let mut b = v4(Signature::Rfc2544);
    b.vlan_tags = vec![(TPID_8021AD, 200), (TPID_8021Q, 100)];
    frames.push(ok("QinQ 802.1ad + 802.1Q", b.build(), Signature::Rfc2544));
    let mut b = v4(Signature::Y1564);
    b.vlan_tags = vec![(TPID_8021Q, 300), (TPID_8021Q, 301)];
    frames.push(ok("double 802.1Q", b.build(), Signature::Y1564));
    let mut b = v6(Signature::Latency);
    b.vlan_tags = vec![(TPID_8021AD, 10), (TPID_8021Q, 20)];
    frames.push(ok("ipv6 QinQ", b.build(), Signature::Latency));
    for (name, chain) in [
        ("ipv6 hop-by-hop", vec![IPV6_EXT_HOP_BY_HOP]),
        ("ipv6 routing header", vec![IPV6_EXT_ROUTING]),
        ("ipv6 destination options", vec![IPV6_EXT_DEST_OPTIONS]),
        (
            "ipv6 hbh+routing+dstopts",
            vec![IPV6_EXT_HOP_BY_HOP, IPV6_EXT_ROUTING, IPV6_EXT_DEST_OPTIONS],
        ),
        (
            "ipv6 four extension headers",
            vec![
                IPV6_EXT_HOP_BY_HOP,
                IPV6_EXT_DEST_OPTIONS,
                IPV6_EXT_ROUTING,
                IPV6_EXT_DEST_OPTIONS,
            ],
        ),
    ] {
        let mut b = v6(Signature::DataOt);
        set_v6(&mut b, |_, _, ext| *ext = chain);
        frames.push(ok(name, b.build(), Signature::DataOt));
    }
    let mut b = v4(Signature::Rfc2544);
    if let IpSpec::V4 { udp_checksum, .. } = &mut b.ip {
        *udp_checksum = false;
    }
    frames.push(ok("ipv4 udp checksum 0", b.build(), Signature::Rfc2544));
    frames.push(ok(
        "1518-byte frame",
        v4(Signature::DataOt).sized_for_wire(1518).build(),
        Signature::DataOt,
    ));
    frames.push(ok(
        "9000-byte jumbo",
        v6(Signature::Rfc2544).sized_for_wire(9000).build(),
        Signature::Rfc2544,
    ));
    let mut b = v4(Signature::ProbeOt);
    b.dst_port = 9999;
    frames.push(with(
        "any port when port filter is 0",
        b.build(),
        Filter {
            udp_port: 0,
            ..filter
        },
        Ok(Signature::ProbeOt),
    ));
    let mut b = v4(Signature::Rfc2544);
    b.src_mac = FOREIGN_MAC;
    frames.push(with(
        "foreign OUI with OUI filter off",
        b.build(),
        Filter {
            src_oui: None,
            ..filter
        },
        Ok(Signature::Rfc2544),
    ));

    // --- Rejected, roughly in the order classify() checks.
    frames.push(no("empty frame", Vec::new(), Reject::Truncated));
    frames.push(no(
        "13-byte runt",
        NETALLY_PROBEOT_FRAME[..13].to_vec(),
        Reject::Truncated,
    ));
    frames.push(no(
        "src MAC broadcast",
        patched(v4(Signature::ProbeOt), &[(ETH_SRC, &[0xFF; 6])]),
        Reject::SrcMacGroup,
    ));
    frames.push(no(
        "src MAC multicast",
        patched(
            v4(Signature::ProbeOt),
            &[(ETH_SRC, &[0x01, 0x00, 0x5E, 0, 0, 1])],
        ),
        Reject::SrcMacGroup,
    ));
    let mut b = v4(Signature::ProbeOt);
    b.src_mac = REFLECTOR_MAC;
    frames.push(no("src MAC equals dst MAC", b.build(), Reject::SrcMacIsDst));
    frames.push(no(
        "dst MAC not ours",
        patched(v4(Signature::ProbeOt), &[(ETH_DST, &[0x02, 0, 0, 0, 0, 9])]),
        Reject::DstMacMismatch,
    ));
    frames.push(no(
        "dst MAC broadcast",
        patched(v4(Signature::ProbeOt), &[(ETH_DST, &[0xFF; 6])]),
        Reject::DstMacMismatch,
    ));
    frames.push(with(
        "dst MAC multicast with any-unicast filter",
        patched(
            v4(Signature::ProbeOt),
            &[(ETH_DST, &[0x33, 0x33, 0, 0, 0, 1])],
        ),
        Filter {
            dst_mac: crate::filter::DstMacFilter::AnyUnicast,
            ..filter
        },
        Err(Reject::DstMacMismatch),
    ));
    let mut b = v4(Signature::Rfc2544);
    b.src_mac = FOREIGN_MAC;
    frames.push(no("foreign OUI", b.build(), Reject::SrcOuiMismatch));
    let mut b = v4(Signature::Rfc2544);
    b.src_mac = FOREIGN_MAC;
    b.dst_port = 3843;
    frames.push(no(
        "foreign OUI to another port (port is checked first)",
        b.build(),
        Reject::PortMismatch,
    ));

    // --- STAMP: recognised by port and length, from any OUI.
    let mut b = v4(Signature::Stamp);
    b.src_mac = FOREIGN_MAC;
    frames.push(ok("STAMP from a foreign OUI", b.build(), Signature::Stamp));
    let mut b = v6(Signature::Stamp);
    b.payload.resize(STAMP_MIN_PAYLOAD + 100, 0xA5);
    frames.push(ok("ipv6 STAMP with padding", b.build(), Signature::Stamp));
    let mut b = v4(Signature::Stamp);
    b.src_port = DEFAULT_STAMP_PORT;
    frames.push(no(
        "STAMP answer from another reflector",
        b.build(),
        Reject::StampFromReflector,
    ));
    let mut b = v4(Signature::Stamp);
    b.payload.truncate(STAMP_MIN_PAYLOAD - 1);
    frames.push(no("STAMP one byte short", b.build(), Reject::StampTooShort));
    frames.push(with(
        "STAMP while STAMP is off",
        v4(Signature::Stamp).build(),
        Filter {
            signatures: SignatureSet::ALL
                .iter()
                .filter(|s| *s != Signature::Stamp)
                .collect(),
            ..filter
        },
        Err(Reject::PortMismatch),
    ));
    let mut b = v4(Signature::Stamp);
    b.dst_port = 8620;
    frames.push(with(
        "STAMP on a configured port",
        b.build(),
        Filter {
            stamp_port: 8620,
            ..filter
        },
        Ok(Signature::Stamp),
    ));
    let mut b = v4(Signature::Rfc2544);
    b.dst_port = DEFAULT_STAMP_PORT;
    frames.push(no(
        "RFC2544 frame to the STAMP port is a short STAMP packet",
        b.build(),
        Reject::StampTooShort,
    ));
    let mut b = v4(Signature::ProbeOt);
    b.vlan_tags = vec![(TPID_8021Q, 100)];
    frames.push(with(
        "tagged frame with VLAN off",
        b.build(),
        Filter {
            vlan: false,
            ..filter
        },
        Err(Reject::VlanDisabled),
    ));
    let mut b = v4(Signature::ProbeOt);
    b.vlan_tags = vec![(TPID_8021AD, 1), (TPID_8021Q, 2), (TPID_8021Q, 3)];
    frames.push(no("three VLAN tags", b.build(), Reject::TooManyVlanTags));
    let mut b = v4(Signature::ProbeOt);
    b.vlan_tags = vec![(TPID_8021Q, 100)];
    frames.push(no(
        "frame ends inside VLAN tag",
        b.build()[..16].to_vec(),
        Reject::Truncated,
    ));
    frames.push(no(
        "ARP EtherType",
        patched(v4(Signature::ProbeOt), &[(ETH_TYPE, &[0x08, 0x06])]),
        Reject::NotIp,
    ));
    frames.push(with(
        "ipv6 with IPv6 off",
        v6(Signature::ProbeOt).build(),
        Filter {
            ipv6: false,
            ..filter
        },
        Err(Reject::Ipv6Disabled),
    ));
    frames.push(no(
        "ipv4 header cut short",
        NETALLY_PROBEOT_FRAME[..L3 + 12].to_vec(),
        Reject::Truncated,
    ));
    frames.push(no(
        "ipv4 version field 5",
        patched(v4(Signature::ProbeOt), &[(L3, &[0x55])]),
        Reject::BadIpHeader,
    ));
    frames.push(no(
        "ipv4 IHL 4",
        patched(v4(Signature::ProbeOt), &[(L3, &[0x44])]),
        Reject::BadIpHeader,
    ));
    frames.push(no(
        "ipv4 IHL 15 beyond frame",
        patched(v4(Signature::ProbeOt), &[(L3, &[0x4F])])[..L3 + 40].to_vec(),
        Reject::Truncated,
    ));
    frames.push(no(
        "ipv4 total length beyond frame",
        patched(
            v4(Signature::ProbeOt),
            &[(L3 + IPV4_TOTAL_LEN, &[0x05, 0xDC])],
        ),
        Reject::LengthMismatch,
    ));
    frames.push(no(
        "ipv4 total length below header",
        patched(
            v4(Signature::ProbeOt),
            &[(L3 + IPV4_TOTAL_LEN, &[0x00, 0x10])],
        ),
        Reject::LengthMismatch,
    ));
    frames.push(no(
        "ipv4 more-fragments",
        patched(v4(Signature::ProbeOt), &[(L3 + IPV4_FRAG, &[0x20, 0x00])]),
        Reject::Fragment,
    ));
    frames.push(no(
        "ipv4 fragment offset",
        patched(v4(Signature::ProbeOt), &[(L3 + IPV4_FRAG, &[0x00, 0x10])]),
        Reject::Fragment,
    ));
    frames.push(no(
        "ipv4 TCP",
        patched(v4(Signature::ProbeOt), &[(L3 + IPV4_PROTOCOL, &[6])]),
        Reject::NotUdp,
    ));
    for (name, addr) in [
        ("ipv4 src multicast", [224, 0, 0, 1]),
        ("ipv4 src broadcast", [255, 255, 255, 255]),
        ("ipv4 src unspecified", [0, 0, 0, 0]),
    ] {
        let mut b = v4(Signature::ProbeOt);
        set_v4(&mut b, |src, _, _, _| *src = addr);
        frames.push(no(name, b.build(), Reject::SrcIpInvalid));
    }
    let mut b = v4(Signature::ProbeOt);
    set_v4(&mut b, |_, dst, _, _| *dst = [239, 1, 1, 1]);
    frames.push(no("ipv4 dst multicast", b.build(), Reject::DstIpInvalid));
    frames.push(no(
        "udp length disagrees with ip",
        patched(
            v4(Signature::ProbeOt),
            &[(V4_L4 + UDP_LENGTH, &[0x00, 0x10])],
        ),
        Reject::LengthMismatch,
    ));
    frames.push(no(
        "udp length below header",
        patched(
            v4(Signature::ProbeOt),
            &[(V4_L4 + UDP_LENGTH, &[0x00, 0x04])],
        ),
        Reject::LengthMismatch,
    ));
    let short_ip = (IPV4_MIN_HEADER_LEN + 4) as u16;
    frames.push(no(
        "ip leaves no room for udp header",
        patched(
            v4(Signature::ProbeOt),
            &[(L3 + IPV4_TOTAL_LEN, &short_ip.to_be_bytes())],
        ),
        Reject::LengthMismatch,
    ));
    let mut b = v4(Signature::ProbeOt);
    b.dst_port = 3843;
    frames.push(no("wrong udp port", b.build(), Reject::PortMismatch));
    let mut b = v4(Signature::ProbeOt);
    b.dst_port = 7;
    b.src_port = 3842;
    frames.push(no(
        "udp port only as source",
        b.build(),
        Reject::PortMismatch,
    ));
    let mut b = v4(Signature::ProbeOt);
    b.payload = b"hello, reflector".to_vec();
    frames.push(no("no signature", b.build(), Reject::NoSignature));
    let mut b = v4(Signature::ProbeOt);
    b.payload = b"PROBEOT at offset 0".to_vec();
    frames.push(no(
        "ITO signature at offset 0",
        b.build(),
        Reject::NoSignature,
    ));
    let mut b = v4(Signature::Y1564);
    b.payload = b"Y.1564_".to_vec();
    frames.push(no(
        "Y.1564 without trailing space",
        b.build(),
        Reject::NoSignature,
    ));
    let mut b = v4(Signature::ProbeOt);
    b.payload.truncate(10);
    frames.push(no(
        "payload ends inside signature",
        b.build(),
        Reject::NoSignature,
    ));
    frames.push(with(
        "signature disabled by filter",
        v4(Signature::Latency).build(),
        Filter {
            signatures: [Signature::Rfc2544, Signature::Y1564]
                .into_iter()
                .collect::<SignatureSet>(),
            ..filter
        },
        Err(Reject::NoSignature),
    ));
    // IPv6 rejections.
    frames.push(no(
        "ipv6 header cut short",
        v6(Signature::ProbeOt).build()[..L3 + 30].to_vec(),
        Reject::Truncated,
    ));
    frames.push(no(
        "ipv6 version field 4",
        patched(v6(Signature::ProbeOt), &[(L3, &[0x40])]),
        Reject::BadIpHeader,
    ));
    frames.push(no(
        "ipv6 payload length beyond frame",
        patched(
            v6(Signature::ProbeOt),
            &[(L3 + IPV6_PAYLOAD_LEN, &[0x05, 0xDC])],
        ),
        Reject::LengthMismatch,
    ));
    frames.push(no(
        "ipv6 jumbogram payload length 0",
        patched(v6(Signature::ProbeOt), &[(L3 + IPV6_PAYLOAD_LEN, &[0, 0])]),
        Reject::LengthMismatch,
    ));
    let mut b = v6(Signature::ProbeOt);
    set_v6(&mut b, |src, _, _| *src = [0; 16]);
    frames.push(no("ipv6 src unspecified", b.build(), Reject::SrcIpInvalid));
    let mut b = v6(Signature::ProbeOt);
    set_v6(&mut b, |src, _, _| {
        *src = [0; 16];
        src[0] = 0xFF;
        src[1] = 0x02;
        src[15] = 1;
    });
    frames.push(no("ipv6 src multicast", b.build(), Reject::SrcIpInvalid));
    let mut b = v6(Signature::ProbeOt);
    set_v6(&mut b, |_, dst, _| {
        *dst = [0; 16];
        dst[0] = 0xFF;
        dst[1] = 0x05;
    });
    frames.push(no("ipv6 dst multicast", b.build(), Reject::DstIpInvalid));
    let mut b = v6(Signature::ProbeOt);
    set_v6(&mut b, |_, _, ext| *ext = vec![IPV6_EXT_FRAGMENT]);
    frames.push(no("ipv6 fragment header", b.build(), Reject::Fragment));
    let mut b = v6(Signature::ProbeOt);
    set_v6(&mut b, |_, _, ext| {
        *ext = vec![IPV6_EXT_HOP_BY_HOP, IPV6_EXT_FRAGMENT]
    });
    frames.push(no(
        "ipv6 fragment after hop-by-hop",
        b.build(),
        Reject::Fragment,
    ));
    frames.push(no(
        "ipv6 TCP",
        patched(v6(Signature::ProbeOt), &[(L3 + IPV6_NEXT_HEADER, &[6])]),
        Reject::NotUdp,
    ));
    let mut b = v6(Signature::ProbeOt);
    set_v6(&mut b, |_, _, ext| {
        *ext = vec![IPV6_EXT_DEST_OPTIONS; MAX_IPV6_EXT_HEADERS + 1]
    });
    frames.push(no("ipv6 five extension headers", b.build(), Reject::NotUdp));
    let mut b = v6(Signature::ProbeOt);
    set_v6(&mut b, |_, _, ext| *ext = vec![IPV6_EXT_HOP_BY_HOP]);
    let ext_len_at = L3 + IPV6_HEADER_LEN + 1;
    frames.push(no(
        "ipv6 extension header past payload",
        patched(b, &[(ext_len_at, &[200])]),
        Reject::LengthMismatch,
    ));
    let mut b = v6(Signature::ProbeOt);
    b.src_port = 3842;
    b.dst_port = 3843;
    frames.push(no("ipv6 wrong udp port", b.build(), Reject::PortMismatch));
    frames.extend(addresses::frames());
    frames
}

fn v4_name(signature: Signature) -> &'static str {
    match signature {
        Signature::ProbeOt => "ipv4 PROBEOT",
        Signature::DataOt => "ipv4 DATA:OT",
        Signature::Latency => "ipv4 LATENCY",
        Signature::Rfc2544 => "ipv4 RFC2544",
        Signature::Y1564 => "ipv4 Y.1564",
        Signature::Stamp => "ipv4 STAMP",
    }
}

fn v6_name(signature: Signature) -> &'static str {
    match signature {
        Signature::ProbeOt => "ipv6 PROBEOT",
        Signature::DataOt => "ipv6 DATA:OT",
        Signature::Latency => "ipv6 LATENCY",
        Signature::Rfc2544 => "ipv6 RFC2544",
        Signature::Y1564 => "ipv6 Y.1564",
        Signature::Stamp => "ipv6 STAMP",
    }
}
