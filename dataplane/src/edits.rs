//! Frame edits for the tests that hold the kernel filters (XDP, classic BPF) to
//! [`crate::classify`]: frames around the STAMP decision, and rewrites that move a
//! frame to another UDP port or change its payload length while keeping the length
//! fields consistent, so a mutation reaches the port and length checks instead of
//! failing earlier. Not on the reflect path.

use crate::filter::{DEFAULT_STAMP_PORT, DEFAULT_UDP_PORT};
use crate::frame::{signature_payload, FrameBuilder, IpSpec};
use crate::parse::*;
use crate::reference::{HEAD_MAC, REFLECTOR_MAC};
use crate::signature::Signature;
use crate::stamp::STAMP_MIN_PAYLOAD;

/// A source MAC outside NetAlly's OUI, as an ordinary STAMP sender's would be.
pub const FOREIGN_MAC: MacAddr = [0x00, 0x1B, 0x21, 0x01, 0x02, 0x03];
/// A STAMP port other than the default.
pub const CUSTOM_STAMP_PORT: u16 = 8620;
/// Destination ports worth trying: the default and a custom STAMP port, the ITO port,
/// another one and 0.
pub const PORTS: [u16; 5] = [
    DEFAULT_STAMP_PORT,
    CUSTOM_STAMP_PORT,
    DEFAULT_UDP_PORT,
    9999,
    0,
];

/// Source ports worth trying for a frame to `dst_port`: an ephemeral one, `dst_port`
/// itself (to the STAMP port, that is another reflector's answer) and the default
/// STAMP port.
pub fn src_ports(dst_port: u16) -> Vec<u16> {
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
pub fn stamp_seeds() -> Vec<Vec<u8>> {
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

/// Where the IP header, the UDP header and the end of the IP datagram are, by a
/// simplified walk of a frame's headers, as `(l3, l4, end, is_ipv6)`; `None` when it
/// cannot tell. A wrong guess on a damaged frame only makes the edits below another
/// kind of damage.
pub fn udp_bounds(frame: &[u8]) -> Option<(usize, usize, usize, bool)> {
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
pub fn set_port(frame: &mut [u8], field: usize, port: u16) {
    if let Some((_, l4, _, _)) = udp_bounds(frame) {
        if let Some(bytes) = frame.get_mut(l4 + field..l4 + field + 2) {
            bytes.copy_from_slice(&port.to_be_bytes());
        }
    }
}

/// Grow or shrink the UDP payload by `delta` bytes, keeping the IP and UDP length
/// fields consistent with it (checksums are not the filter's business).
pub fn resize_payload(frame: &mut Vec<u8>, delta: isize) {
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
