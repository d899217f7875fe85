//! IPv6 header and the extension headers the reflector walks past.

use super::{read, swap_fields, write};
use crate::parse::{be16, IPV6_HEADER_LEN};
use std::net::Ipv6Addr;

mod field {
    use crate::parse::*;
    use std::ops::Range;

    pub const VERSION: usize = 0;
    pub const PAYLOAD_LEN: usize = IPV6_PAYLOAD_LEN;
    pub const NEXT_HEADER: usize = IPV6_NEXT_HEADER;
    pub const HOP_LIMIT: usize = IPV6_HOP_LIMIT;
    pub const SRC: Range<usize> = IPV6_SRC..IPV6_SRC + 16;
    pub const DST: Range<usize> = IPV6_DST..IPV6_DST + 16;
    /// In an extension header.
    pub const EXT_NEXT_HEADER: usize = 0;
    pub const EXT_LEN: usize = 1;
}

view! {
    /// An IPv6 packet: the fixed header and what follows it.
    Ipv6Packet: "an IPv6 header", IPV6_HEADER_LEN
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    #[inline(always)]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION] >> 4
    }

    /// Length of everything after the fixed header (extension headers included).
    #[inline(always)]
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    #[inline(always)]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// DSCP (upper 6 bits) and ECN (lower 2), split across the first two bytes.
    #[inline(always)]
    pub fn traffic_class(&self) -> u8 {
        let data = self.buffer.as_ref();
        data[field::VERSION] << 4 | data[field::VERSION + 1] >> 4
    }

    #[inline(always)]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    #[inline(always)]
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(read::<16>(self.buffer.as_ref(), field::SRC.start))
    }

    #[inline(always)]
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(read::<16>(self.buffer.as_ref(), field::DST.start))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Version 6, traffic class 0 and flow label 0.
    pub fn set_version(&mut self) {
        write(self.buffer.as_mut(), field::VERSION, &[0x60, 0, 0, 0]);
    }

    pub fn set_payload_len(&mut self, len: u16) {
        write(self.buffer.as_mut(), field::PAYLOAD_LEN, &len.to_be_bytes());
    }

    pub fn set_next_header(&mut self, next_header: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = next_header;
    }

    /// Set the traffic class, keeping version and flow label.
    pub fn set_traffic_class(&mut self, class: u8) {
        let data = self.buffer.as_mut();
        data[field::VERSION] = 0x60 | class >> 4;
        data[field::VERSION + 1] = class << 4 | (data[field::VERSION + 1] & 0x0F);
    }

    #[inline(always)]
    pub fn set_hop_limit(&mut self, hop_limit: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hop_limit;
    }

    pub fn set_src_addr(&mut self, addr: Ipv6Addr) {
        write(self.buffer.as_mut(), field::SRC.start, &addr.octets());
    }

    pub fn set_dst_addr(&mut self, addr: Ipv6Addr) {
        write(self.buffer.as_mut(), field::DST.start, &addr.octets());
    }

    /// Exchange source and destination (no header checksum in IPv6; the UDP checksum
    /// keeps its sum, the pseudo-header holding both).
    #[inline(always)]
    pub fn swap_addrs(&mut self) {
        swap_fields(self.buffer.as_mut(), field::SRC, field::DST);
    }
}

/// The smallest extension header.
pub const EXT_HEADER_MIN_LEN: usize = 8;

view! {
    /// A hop-by-hop, routing or destination-options header: the next header's type and
    /// this one's length lead it.
    Ipv6ExtHeader: "an IPv6 extension header", EXT_HEADER_MIN_LEN
}

impl<T: AsRef<[u8]>> Ipv6ExtHeader<T> {
    #[inline(always)]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::EXT_NEXT_HEADER]
    }

    /// This header's length in bytes (the field counts 8-octet units past the first 8).
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        (usize::from(self.buffer.as_ref()[field::EXT_LEN]) + 1) * 8
    }
}

/// Endpoints that must never become a destination: unspecified (::) and multicast
/// (ff00::/8).
#[inline(always)]
pub fn is_invalid_endpoint(addr: Ipv6Addr) -> bool {
    addr.is_unspecified() || addr.is_multicast()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{IPV6_EXT_HOP_BY_HOP, IP_PROTO_UDP};

    const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    /// 2001:db8::1 -> 2001:db8::2, 26 bytes of payload behind a hop-by-hop header.
    fn header() -> Vec<u8> {
        let mut bytes = vec![0x60, 0, 0, 0, 0x00, 0x1a, IPV6_EXT_HOP_BY_HOP, 64];
        bytes.extend_from_slice(&SRC.octets());
        bytes.extend_from_slice(&DST.octets());
        // Hop-by-hop: UDP next, 8 bytes, PadN over the other 4.
        bytes.extend_from_slice(&[IP_PROTO_UDP, 0, 1, 4, 0, 0, 0, 0]);
        bytes
    }

    #[test]
    fn reads_the_header_fields() {
        let bytes = header();
        let ip = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(ip.version(), 6);
        assert_eq!(ip.payload_len(), 26);
        assert_eq!(ip.next_header(), IPV6_EXT_HOP_BY_HOP);
        assert_eq!(ip.hop_limit(), 64);
        assert_eq!((ip.src_addr(), ip.dst_addr()), (SRC, DST));
        let ext = Ipv6ExtHeader::new_checked(&bytes[IPV6_HEADER_LEN..]).unwrap();
        assert_eq!((ext.next_header(), ext.header_len()), (IP_PROTO_UDP, 8));
    }

    #[test]
    fn setters_rebuild_the_header() {
        let expected = header();
        let mut bytes = vec![0u8; expected.len()];
        bytes[IPV6_HEADER_LEN..].copy_from_slice(&expected[IPV6_HEADER_LEN..]);
        let mut ip = Ipv6Packet::new_unchecked(&mut bytes[..]);
        ip.set_version();
        ip.set_payload_len(26);
        ip.set_next_header(IPV6_EXT_HOP_BY_HOP);
        ip.set_hop_limit(64);
        ip.set_src_addr(SRC);
        ip.set_dst_addr(DST);
        assert_eq!(bytes, expected);
        let mut ip = Ipv6Packet::new_unchecked(&mut bytes[..]);
        ip.swap_addrs();
        assert_eq!((ip.src_addr(), ip.dst_addr()), (DST, SRC));
    }

    #[test]
    fn checked_views_refuse_short_buffers() {
        let bytes = header();
        let err = Ipv6Packet::new_checked(&bytes[..39]).unwrap_err();
        assert_eq!((err.needed, err.len), (IPV6_HEADER_LEN, 39));
        assert!(Ipv6ExtHeader::new_checked(&bytes[IPV6_HEADER_LEN..47]).is_err());
    }

    #[test]
    fn invalid_endpoints() {
        assert!(is_invalid_endpoint(Ipv6Addr::UNSPECIFIED));
        assert!(is_invalid_endpoint(Ipv6Addr::new(
            0xff02, 0, 0, 0, 0, 0, 0, 1
        )));
        assert!(!is_invalid_endpoint(SRC));
    }
}
