//! Frame edits for the tests that hold the kernel filters (XDP, classic BPF) to
//! [`crate::classify()`]: frames around the STAMP decision, and rewrites that move a
//! frame to another UDP port or change its payload length while keeping the length
//! fields consistent, so a mutation reaches the port and length checks instead of
//! failing earlier. Not on the reflect path.

use crate::classify::locate;
use crate::filter::{DstMacFilter, Filter, DEFAULT_STAMP_PORT, DEFAULT_UDP_PORT};
use crate::frame::{signature_payload, FrameBuilder, IpSpec};
use crate::parse::{IpVersion, Layout, ETH_MIN_PAYLOAD, IPV6_EXT_HOP_BY_HOP, TPID_8021Q};
use crate::reference::{FOREIGN_MAC, HEAD_MAC, REFLECTOR_MAC};
use crate::signature::Signature;
use crate::stamp::STAMP_MIN_PAYLOAD;
use crate::wire::{Ipv4Packet, Ipv6Packet, UdpDatagram};

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

/// Where a frame's layers are, found by [`crate::classify::locate`] under a filter
/// that refuses only what no filter can accept (any unicast MAC, VLAN and IPv6 on);
/// `None` for a frame broken before its UDP header, which then refuses before its
/// ports or payload length matter.
pub fn layout_of(frame: &[u8]) -> Option<Layout> {
    let any = Filter {
        dst_mac: DstMacFilter::AnyUnicast,
        vlan: true,
        ipv6: true,
        ..Filter::default()
    };
    locate(frame, &any).ok()
}

/// Write `port` into the UDP header field at `field` (`UDP_SRC_PORT` or
/// `UDP_DST_PORT`).
pub fn set_port(frame: &mut [u8], field: usize, port: u16) {
    if let Some(layout) = layout_of(frame) {
        let at = layout.l4 + field;
        frame[at..at + 2].copy_from_slice(&port.to_be_bytes());
    }
}

/// Grow or shrink the UDP payload by `delta` bytes, keeping the IP and UDP length
/// fields consistent with it (checksums are not the filter's business).
pub fn resize_payload(frame: &mut Vec<u8>, delta: isize) {
    let Some(layout) = layout_of(frame) else {
        return;
    };
    let end = layout.end();
    let delta = delta.max(-(layout.payload_len as isize));
    if delta >= 0 {
        frame.splice(end..end, std::iter::repeat_n(0xA5, delta as usize));
        // Padding that brought a short frame up to the minimum is no longer padding
        // past a longer datagram: keep only what the minimum still needs.
        let new_end = end + delta as usize;
        frame.truncate(new_end.max(layout.l3 + ETH_MIN_PAYLOAD));
    } else {
        frame.drain(end - delta.unsigned_abs()..end);
    }
    let grow = |len: u16| len.wrapping_add_signed(delta as i16);
    let l3 = &mut frame[layout.l3..];
    match layout.ip {
        IpVersion::V4 => {
            let mut ip = Ipv4Packet::new_unchecked(l3);
            ip.set_total_len(grow(ip.total_len()));
        }
        IpVersion::V6 => {
            let mut ip = Ipv6Packet::new_unchecked(l3);
            ip.set_payload_len(grow(ip.payload_len()));
        }
    }
    let mut udp = UdpDatagram::new_unchecked(&mut frame[layout.l4..]);
    udp.set_len(grow(udp.len()));
}
