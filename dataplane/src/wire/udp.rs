//! UDP header.

use super::{check_len, swap_fields, write, ShortBuffer};
use crate::parse::{be16, UDP_HEADER_LEN};

mod field {
    use crate::parse::*;
    use std::ops::Range;

    pub const SRC_PORT: Range<usize> = UDP_SRC_PORT..UDP_SRC_PORT + 2;
    pub const DST_PORT: Range<usize> = UDP_DST_PORT..UDP_DST_PORT + 2;
    pub const LENGTH: usize = UDP_LENGTH;
    pub const CHECKSUM: usize = UDP_CHECKSUM;
}

view! {
    /// A UDP datagram: the 8-byte header and the payload. Bytes past the length
    /// field's end (Ethernet padding) are not part of it; `new_checked` also requires
    /// the bytes the length field claims.
    UdpDatagram: "a UDP header", UDP_HEADER_LEN, then UdpDatagram::check_claimed_len
}

impl<T: AsRef<[u8]>> UdpDatagram<T> {
    fn check_claimed_len(&self) -> Result<(), ShortBuffer> {
        check_len("a UDP datagram", self.buffer.as_ref(), self.end())
    }

    #[inline(always)]
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    #[inline(always)]
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT.start)
    }

    /// Header and payload length in bytes.
    #[inline(always)]
    #[allow(clippy::len_without_is_empty)] // a header field, not a container's size
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The payload, as long as the length field says (empty if it claims less than
    /// the header).
    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[UDP_HEADER_LEN..self.end()]
    }

    fn end(&self) -> usize {
        usize::from(self.len()).max(UDP_HEADER_LEN)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpDatagram<T> {
    #[inline(always)]
    pub fn set_src_port(&mut self, port: u16) {
        write(
            self.buffer.as_mut(),
            field::SRC_PORT.start,
            &port.to_be_bytes(),
        );
    }

    #[inline(always)]
    pub fn set_dst_port(&mut self, port: u16) {
        write(
            self.buffer.as_mut(),
            field::DST_PORT.start,
            &port.to_be_bytes(),
        );
    }

    pub fn set_len(&mut self, len: u16) {
        write(self.buffer.as_mut(), field::LENGTH, &len.to_be_bytes());
    }

    #[inline(always)]
    pub fn set_checksum(&mut self, checksum: u16) {
        write(
            self.buffer.as_mut(),
            field::CHECKSUM,
            &checksum.to_be_bytes(),
        );
    }

    /// Exchange source and destination ports; the checksum keeps its sum.
    #[inline(always)]
    pub fn swap_ports(&mut self) {
        swap_fields(self.buffer.as_mut(), field::SRC_PORT, field::DST_PORT);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.end();
        &mut self.buffer.as_mut()[UDP_HEADER_LEN..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 49152 -> 3842, 12 bytes, checksum 0xbeef, payload "ping", then padding.
    const DATAGRAM: [u8; 14] = [
        0xc0, 0x00, 0x0f, 0x02, 0x00, 0x0c, 0xbe, 0xef, b'p', b'i', b'n', b'g', 0, 0,
    ];

    #[test]
    fn reads_the_header_and_the_payload_without_padding() {
        let udp = UdpDatagram::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!((udp.src_port(), udp.dst_port()), (49152, 3842));
        assert_eq!((udp.len(), udp.checksum()), (12, 0xbeef));
        assert_eq!(udp.payload(), b"ping");
    }

    #[test]
    fn setters_write_where_getters_read() {
        let mut bytes = [0u8; 14];
        let mut udp = UdpDatagram::new_unchecked(&mut bytes[..]);
        udp.set_src_port(49152);
        udp.set_dst_port(3842);
        udp.set_len(12);
        udp.set_checksum(0xbeef);
        udp.payload_mut().copy_from_slice(b"ping");
        assert_eq!(bytes, DATAGRAM);
        let mut udp = UdpDatagram::new_unchecked(&mut bytes[..]);
        udp.swap_ports();
        assert_eq!((udp.src_port(), udp.dst_port()), (3842, 49152));
    }

    #[test]
    fn checked_view_refuses_short_buffers_and_overlong_lengths() {
        let err = UdpDatagram::new_checked(&DATAGRAM[..7]).unwrap_err();
        assert_eq!((err.needed, err.len), (UDP_HEADER_LEN, 7));
        let err = UdpDatagram::new_checked(&DATAGRAM[..11]).unwrap_err();
        assert_eq!(
            (err.needed, err.len),
            (12, 11),
            "shorter than its length field"
        );
        assert!(UdpDatagram::new_checked(&DATAGRAM[..12]).is_ok());
        let mut claims_less = DATAGRAM;
        claims_less[5] = 4;
        let udp = UdpDatagram::new_checked(&claims_less[..]).unwrap();
        assert!(udp.payload().is_empty());
    }
}
