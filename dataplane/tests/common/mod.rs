//! Checks shared by the dataplane's integration tests.

use dataplane::checksum::{udp_pseudo_header_sum, verifies};
use dataplane::parse::*;
use dataplane::Layout;

/// Do the IPv4 header checksum (if any) and the UDP checksum (unless IPv4 sent 0)
/// verify for the frame `layout` describes?
pub fn checksums_verify(frame: &[u8], layout: &Layout) -> bool {
    let udp = &frame[layout.l4..layout.end()];
    match layout.ip {
        IpVersion::V4 => {
            let header_len = usize::from(frame[layout.l3] & 0x0F) * 4;
            let header_ok = verifies(&frame[layout.l3..layout.l3 + header_len], 0);
            let udp_sum = be16(frame, layout.l4 + UDP_CHECKSUM);
            let src = &frame[layout.l3 + IPV4_SRC..layout.l3 + IPV4_SRC + 4];
            let dst = &frame[layout.l3 + IPV4_DST..layout.l3 + IPV4_DST + 4];
            header_ok && (udp_sum == 0 || verifies(udp, udp_pseudo_header_sum(src, dst, udp.len())))
        }
        IpVersion::V6 => {
            let src = &frame[layout.l3 + IPV6_SRC..layout.l3 + IPV6_SRC + 16];
            let dst = &frame[layout.l3 + IPV6_DST..layout.l3 + IPV6_DST + 16];
            verifies(udp, udp_pseudo_header_sum(src, dst, udp.len()))
        }
    }
}
