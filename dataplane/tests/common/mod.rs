//! Checks shared by the dataplane's integration tests.

use dataplane::checksum::{udp_pseudo_header_sum, verifies};
use dataplane::wire::{Ipv4Packet, Ipv6Packet, UdpDatagram};
use dataplane::{IpVersion, Layout};

/// Do the IPv4 header checksum (if any) and the UDP checksum (unless IPv4 sent 0)
/// verify for the frame `layout` describes?
pub fn checksums_verify(frame: &[u8], layout: &Layout) -> bool {
    let udp = &frame[layout.l4..layout.end()];
    let ip = &frame[layout.l3..];
    let pseudo_header = |src: &[u8], dst: &[u8]| udp_pseudo_header_sum(src, dst, udp.len());
    match layout.ip {
        IpVersion::V4 => {
            let ip = Ipv4Packet::new_unchecked(ip);
            let header_ok = verifies(ip.header(), 0);
            let (src, dst) = (ip.src_addr().octets(), ip.dst_addr().octets());
            let unsummed = UdpDatagram::new_unchecked(udp).checksum() == 0;
            header_ok && (unsummed || verifies(udp, pseudo_header(&src, &dst)))
        }
        IpVersion::V6 => {
            let ip = Ipv6Packet::new_unchecked(ip);
            let (src, dst) = (ip.src_addr().octets(), ip.dst_addr().octets());
            verifies(udp, pseudo_header(&src, &dst))
        }
    }
}
