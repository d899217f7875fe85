//! Ethernet II header and 802.1Q / 802.1ad VLAN tags.

use super::{read, swap_fields, write};
use crate::mac::MacAddr;
use crate::parse::{be16, ETH_HEADER_LEN, TPID_8021AD, TPID_8021Q, VLAN_TAG_LEN};

mod field {
    use crate::parse::{ETH_DST, ETH_SRC, ETH_TYPE};
    use std::ops::Range;

    pub const DST: Range<usize> = ETH_DST..ETH_DST + 6;
    pub const SRC: Range<usize> = ETH_SRC..ETH_SRC + 6;
    pub const ETHERTYPE: usize = ETH_TYPE;
    /// In a VLAN tag, which follows its TPID (the outer EtherType).
    pub const TCI: usize = 0;
    pub const INNER_ETHERTYPE: usize = 2;
}

view! {
    /// An Ethernet II frame: destination, source, EtherType, then the payload (or the
    /// first VLAN tag, when the EtherType is a TPID).
    EthernetFrame: "an Ethernet header", ETH_HEADER_LEN
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    #[inline(always)]
    pub fn dst_addr(&self) -> MacAddr {
        MacAddr(read(self.buffer.as_ref(), field::DST.start))
    }

    #[inline(always)]
    pub fn src_addr(&self) -> MacAddr {
        MacAddr(read(self.buffer.as_ref(), field::SRC.start))
    }

    /// Is the frame addressed to `mac`? Compares in place, which costs less per
    /// frame than loading the address.
    #[inline(always)]
    pub fn dst_is(&self, mac: &MacAddr) -> bool {
        self.buffer.as_ref()[field::DST] == mac.0
    }

    /// Are source and destination the same address? Compares in place.
    #[inline(always)]
    pub fn src_is_dst(&self) -> bool {
        let data = self.buffer.as_ref();
        data[field::DST] == data[field::SRC]
    }

    /// The EtherType, or the TPID of the first VLAN tag.
    #[inline(always)]
    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// Everything after the header.
    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[ETH_HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    #[inline(always)]
    pub fn set_dst_addr(&mut self, mac: MacAddr) {
        write(self.buffer.as_mut(), field::DST.start, &mac.0);
    }

    #[inline(always)]
    pub fn set_src_addr(&mut self, mac: MacAddr) {
        write(self.buffer.as_mut(), field::SRC.start, &mac.0);
    }

    #[inline(always)]
    pub fn set_ethertype(&mut self, ethertype: u16) {
        write(
            self.buffer.as_mut(),
            field::ETHERTYPE,
            &ethertype.to_be_bytes(),
        );
    }

    /// Exchange source and destination: the frame goes back where it came from.
    #[inline(always)]
    pub fn swap_addrs(&mut self) {
        swap_fields(self.buffer.as_mut(), field::DST, field::SRC);
    }
}

/// Does this EtherType announce a VLAN tag (802.1Q customer or 802.1ad service)?
#[inline(always)]
pub const fn is_vlan_tpid(ethertype: u16) -> bool {
    matches!(ethertype, TPID_8021Q | TPID_8021AD)
}

view! {
    /// A VLAN tag as it follows its TPID: the tag control information and the
    /// EtherType of what comes next (another tag's TPID, or the network layer's type).
    VlanTag: "a VLAN tag", VLAN_TAG_LEN
}

impl<T: AsRef<[u8]>> VlanTag<T> {
    /// Priority, drop-eligible bit and VLAN ID.
    #[inline(always)]
    pub fn tci(&self) -> u16 {
        be16(self.buffer.as_ref(), field::TCI)
    }

    #[inline(always)]
    pub fn vlan_id(&self) -> u16 {
        self.tci() & 0x0FFF
    }

    /// The EtherType after the tag.
    #[inline(always)]
    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::INNER_ETHERTYPE)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanTag<T> {
    #[inline(always)]
    pub fn set_tci(&mut self, tci: u16) {
        write(self.buffer.as_mut(), field::TCI, &tci.to_be_bytes());
    }

    #[inline(always)]
    pub fn set_ethertype(&mut self, ethertype: u16) {
        write(
            self.buffer.as_mut(),
            field::INNER_ETHERTYPE,
            &ethertype.to_be_bytes(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{ETHERTYPE_IPV4, ETHERTYPE_IPV6};

    const DST: MacAddr = MacAddr([0x02, 0x52, 0x45, 0x46, 0x4c, 0x01]);
    const SRC: MacAddr = MacAddr([0x00, 0xc0, 0x17, 0x54, 0x05, 0x01]);
    const HEADER: [u8; 18] = [
        0x02, 0x52, 0x45, 0x46, 0x4c, 0x01, // destination
        0x00, 0xc0, 0x17, 0x54, 0x05, 0x01, // source
        0x81, 0x00, // TPID 802.1Q
        0x20, 0x07, // priority 1, VLAN 7
        0x08, 0x00, // IPv4
    ];

    #[test]
    fn reads_the_header_fields() {
        let frame = EthernetFrame::new_checked(&HEADER[..]).unwrap();
        assert_eq!((frame.dst_addr(), frame.src_addr()), (DST, SRC));
        assert!(frame.dst_is(&DST) && !frame.dst_is(&SRC));
        assert!(!frame.src_is_dst());
        assert_eq!(frame.ethertype(), TPID_8021Q);
        assert!(is_vlan_tpid(frame.ethertype()));
        let tag = VlanTag::new_checked(frame.payload()).unwrap();
        assert_eq!(tag.tci(), 0x2007);
        assert_eq!(tag.vlan_id(), 7);
        assert_eq!(tag.ethertype(), ETHERTYPE_IPV4);
        assert!(!is_vlan_tpid(tag.ethertype()));
        assert!(is_vlan_tpid(TPID_8021AD));
    }

    #[test]
    fn setters_write_where_getters_read() {
        let mut bytes = [0u8; 18];
        let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
        frame.set_dst_addr(DST);
        frame.set_src_addr(SRC);
        frame.set_ethertype(TPID_8021Q);
        let mut tag = VlanTag::new_unchecked(&mut bytes[ETH_HEADER_LEN..]);
        tag.set_tci(0x2007);
        tag.set_ethertype(ETHERTYPE_IPV4);
        assert_eq!(bytes, HEADER);
        let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
        frame.swap_addrs();
        assert_eq!((frame.dst_addr(), frame.src_addr()), (SRC, DST));
        frame.set_src_addr(SRC);
        assert!(frame.src_is_dst());
        frame.set_ethertype(ETHERTYPE_IPV6);
        assert_eq!(frame.into_inner()[12..14], [0x86, 0xdd]);
    }

    #[test]
    fn checked_views_refuse_short_buffers() {
        let err = EthernetFrame::new_checked(&HEADER[..13]).unwrap_err();
        assert_eq!((err.needed, err.len), (ETH_HEADER_LEN, 13));
        assert!(EthernetFrame::new_checked(&HEADER[..14]).is_ok());
        assert!(VlanTag::new_checked(&HEADER[14..17]).is_err());
        assert!(VlanTag::new_checked(&HEADER[14..]).is_ok());
    }
}
