//! IPv4 header.

use super::{read, swap_fields, write};
use crate::checksum::{internet_checksum, update_word};
use crate::parse::{be16, IPV4_MF_AND_OFFSET, IPV4_MIN_HEADER_LEN};
use std::net::Ipv4Addr;

mod field {
    use crate::parse::*;
    use std::ops::Range;

    pub const VERSION_IHL: usize = 0;
    /// DSCP (upper 6 bits) and ECN (lower 2).
    pub const TOS: usize = 1;
    pub const TOTAL_LEN: usize = IPV4_TOTAL_LEN;
    pub const IDENT: usize = IPV4_IDENT;
    pub const FLAGS_FRAGMENT: usize = IPV4_FRAG;
    pub const TTL: usize = IPV4_TTL;
    pub const PROTOCOL: usize = IPV4_PROTOCOL;
    pub const CHECKSUM: usize = IPV4_CHECKSUM;
    pub const SRC: Range<usize> = IPV4_SRC..IPV4_SRC + 4;
    pub const DST: Range<usize> = IPV4_DST..IPV4_DST + 4;
}

view! {
    /// An IPv4 packet: the header (options included) and what follows it.
    /// `new_checked` requires the fixed 20-byte header; the header length and length
    /// fields are the reader's to judge ([`crate::classify()`] refuses each kind of
    /// inconsistency with its own reason).
    Ipv4Packet: "an IPv4 header", IPV4_MIN_HEADER_LEN
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    #[inline(always)]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION_IHL] >> 4
    }

    /// Header length in bytes, from the IHL field.
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VERSION_IHL] & 0x0F) * 4
    }

    /// The DSCP (upper 6 bits) and ECN (lower 2) byte.
    /// Version 4 and a 20-byte header (no options): the fixed layout most packets have.
    #[inline(always)]
    pub fn is_plain_ipv4(&self) -> bool {
        self.buffer.as_ref()[field::VERSION_IHL] == 0x45
    }

    #[inline(always)]
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }

    /// Header and payload length in bytes.
    #[inline(always)]
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::TOTAL_LEN)
    }

    #[inline(always)]
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT)
    }

    /// The flags and fragment-offset word.
    #[inline(always)]
    pub fn flags_fragment(&self) -> u16 {
        be16(self.buffer.as_ref(), field::FLAGS_FRAGMENT)
    }

    /// More fragments follow, or this is not the first: either way, a fragment.
    #[inline(always)]
    pub fn is_fragment(&self) -> bool {
        self.flags_fragment() & IPV4_MF_AND_OFFSET != 0
    }

    #[inline(always)]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    #[inline(always)]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    #[inline(always)]
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read::<4>(self.buffer.as_ref(), field::SRC.start))
    }

    #[inline(always)]
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read::<4>(self.buffer.as_ref(), field::DST.start))
    }

    /// The header, options included.
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Version 4 and the IHL for a header of `header_len` bytes (a multiple of 4).
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VERSION_IHL] = 0x40 | (header_len / 4) as u8;
    }

    /// Set the DSCP/ECN byte, keeping the header checksum valid (RFC 1624).
    pub fn set_tos_updating_checksum(&mut self, tos: u8) {
        let data = self.buffer.as_mut();
        let old = u16::from_be_bytes([data[field::VERSION_IHL], data[field::TOS]]);
        data[field::TOS] = tos;
        let new = u16::from_be_bytes([data[field::VERSION_IHL], tos]);
        let checksum = update_word(self.checksum(), old, new);
        self.set_checksum(checksum);
    }

    pub fn set_total_len(&mut self, len: u16) {
        write(self.buffer.as_mut(), field::TOTAL_LEN, &len.to_be_bytes());
    }

    pub fn set_ident(&mut self, ident: u16) {
        write(self.buffer.as_mut(), field::IDENT, &ident.to_be_bytes());
    }

    pub fn set_flags_fragment(&mut self, word: u16) {
        write(
            self.buffer.as_mut(),
            field::FLAGS_FRAGMENT,
            &word.to_be_bytes(),
        );
    }

    #[inline(always)]
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    pub fn set_protocol(&mut self, protocol: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol;
    }

    #[inline(always)]
    pub fn set_checksum(&mut self, checksum: u16) {
        write(
            self.buffer.as_mut(),
            field::CHECKSUM,
            &checksum.to_be_bytes(),
        );
    }

    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        write(self.buffer.as_mut(), field::SRC.start, &addr.octets());
    }

    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        write(self.buffer.as_mut(), field::DST.start, &addr.octets());
    }

    /// Exchange source and destination. The header checksum stays valid: swapping
    /// 16-bit-aligned fields does not change a one's-complement sum.
    #[inline(always)]
    pub fn swap_addrs(&mut self) {
        swap_fields(self.buffer.as_mut(), field::SRC, field::DST);
    }

    /// Compute the header checksum over the header as it is now.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = internet_checksum(self.header());
        self.set_checksum(sum);
    }
}

/// Source addresses that must never become a destination: unspecified, limited
/// broadcast and multicast (224.0.0.0/4).
#[inline(always)]
pub fn is_invalid_endpoint(addr: Ipv4Addr) -> bool {
    let bits = u32::from(addr);
    // `|`, not `||`: three flag tests and no branch, for both addresses of every frame.
    (bits == 0) | (bits == u32::MAX) | (bits >> 28 == 0xE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::verifies;
    use crate::parse::IP_PROTO_UDP;

    /// 192.0.2.1 -> 192.0.2.2, UDP, 46 bytes, DF, TTL 64, as in the spec's PROBEOT frame.
    const HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x2e, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x11, 0x9a, 0x75, 0xc0, 0x00, 0x02,
        0x01, 0xc0, 0x00, 0x02, 0x02,
    ];

    #[test]
    fn reads_the_header_fields() {
        let ip = Ipv4Packet::new_checked(&HEADER[..]).unwrap();
        assert_eq!((ip.version(), ip.header_len()), (4, 20));
        assert!(ip.is_plain_ipv4());
        assert_eq!(ip.total_len(), 46);
        assert_eq!(ip.ident(), 0x1c46);
        assert_eq!(ip.flags_fragment(), 0x4000);
        assert!(!ip.is_fragment());
        assert_eq!((ip.ttl(), ip.protocol()), (64, IP_PROTO_UDP));
        assert_eq!(ip.checksum(), 0x9a75);
        assert_eq!(ip.src_addr(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(ip.dst_addr(), Ipv4Addr::new(192, 0, 2, 2));
        assert!(verifies(ip.header(), 0));
    }

    #[test]
    fn setters_rebuild_the_header() {
        let mut bytes = [0u8; 20];
        let mut ip = Ipv4Packet::new_unchecked(&mut bytes[..]);
        ip.set_version_and_header_len(20);
        ip.set_total_len(46);
        ip.set_ident(0x1c46);
        ip.set_flags_fragment(0x4000);
        ip.set_ttl(64);
        ip.set_protocol(IP_PROTO_UDP);
        ip.set_src_addr(Ipv4Addr::new(192, 0, 2, 1));
        ip.set_dst_addr(Ipv4Addr::new(192, 0, 2, 2));
        ip.fill_checksum();
        assert_eq!(bytes, HEADER);
        let mut ip = Ipv4Packet::new_unchecked(&mut bytes[..]);
        ip.swap_addrs();
        assert_eq!(ip.src_addr(), Ipv4Addr::new(192, 0, 2, 2));
        assert!(verifies(ip.header(), 0), "a swap keeps the checksum");
        ip.set_flags_fragment(0x2000);
        assert!(ip.is_fragment(), "more fragments");
        ip.set_flags_fragment(0x0001);
        assert!(ip.is_fragment(), "a later fragment");
    }

    #[test]
    fn checked_view_refuses_a_short_buffer() {
        let err = Ipv4Packet::new_checked(&HEADER[..19]).unwrap_err();
        assert_eq!((err.needed, err.len), (IPV4_MIN_HEADER_LEN, 19));
    }

    #[test]
    fn invalid_endpoints() {
        for bad in [
            [0, 0, 0, 0],
            [255, 255, 255, 255],
            [224, 0, 0, 1],
            [239, 255, 255, 250],
        ] {
            assert!(is_invalid_endpoint(bad.into()), "{bad:?}");
        }
        assert!(!is_invalid_endpoint(Ipv4Addr::new(192, 0, 2, 1)));
        assert!(!is_invalid_endpoint(Ipv4Addr::new(240, 0, 0, 1)));
        for first in 0..=u8::MAX {
            for [b, c, d] in [[0, 0, 0], [255, 255, 255], [1, 2, 3]] {
                let addr = Ipv4Addr::new(first, b, c, d);
                let by_std = addr.is_unspecified() || addr.is_broadcast() || addr.is_multicast();
                assert_eq!(is_invalid_endpoint(addr), by_std, "{addr}");
            }
        }
    }
}
