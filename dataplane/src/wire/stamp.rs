//! STAMP test packets (RFC 8762, unauthenticated mode), as UDP payloads.
//!
//! The session-sender's packet and the session-reflector's answer share their first
//! 16 bytes; the answer then carries the sender's fields back (offsets in the UDP
//! payload):
//!
//! ```text
//! sender:    0 seq(4)  4 timestamp(8)  12 error estimate(2)  14 SSID(2)  16 MBZ(28)
//! reflector: 0 seq(4)  4 T3(8)  12 error estimate(2)  14 SSID(2)  16 T2(8)
//!            24 sender seq(4)  28 sender timestamp(8)  36 sender error estimate(2)
//!            38 MBZ(2)  40 sender TTL(1)  41 MBZ(3)
//! ```
//!
//! The SSID is RFC 8972's session identifier, zero when unused. Bytes past the 44-byte
//! base packet are RFC 8972 TLVs, in the sender's packet and in the answer alike; their
//! layout is in [`tlv`].

use super::{read, write};
use crate::parse::be16;

/// Smallest UDP payload of an unauthenticated STAMP test packet.
pub const STAMP_MIN_PAYLOAD: usize = 44;

mod field {
    use std::ops::Range;

    pub const SEQUENCE: usize = 0;
    /// The sender's transmit time, or the reflector's (T3) in an answer.
    pub const TIMESTAMP: usize = 4;
    pub const ERROR_ESTIMATE: usize = 12;
    pub const SSID: usize = 14;
    pub const RECEIVE_TIMESTAMP: usize = 16;
    pub const SENDER_SEQUENCE: usize = 24;
    pub const SENDER_TIMESTAMP: usize = 28;
    pub const SENDER_ERROR_ESTIMATE: usize = 36;
    pub const SENDER_TTL: usize = 40;
    /// The must-be-zero runs of an answer.
    pub const ANSWER_MBZ: [Range<usize>; 2] = [38..40, 41..44];
}

/// RFC 8972 section 4: each TLV is Flags (1 byte), Type (1), Length (2, the Value's
/// length), Value. Offsets are from the TLV's first byte.
pub mod tlv {
    pub const HEADER_LEN: usize = 4;
    pub const FLAGS: usize = 0;
    pub const TYPE: usize = 1;
    pub const LENGTH: usize = 2;

    /// Flags: the reflector did not understand the TLV.
    pub const UNRECOGNIZED: u8 = 0x80;
    /// Flags: the TLV is malformed (its Length is wrong for its type or runs past the
    /// packet).
    pub const MALFORMED: u8 = 0x40;

    /// Types (RFC 8972 section 5.1 registry) the reflector implements, with the Value
    /// lengths it accepts.
    pub const EXTRA_PADDING: u8 = 1;
    /// Sync Src In, Timestamp In, Sync Src Out, Timestamp Out (one byte each).
    pub const TIMESTAMP_INFO: u8 = 3;
    pub const TIMESTAMP_INFO_LEN: usize = 4;
    /// DSCP1 (6 bits), DSCP2 (6), ECN (2), RP (2), Reserved (16).
    pub const CLASS_OF_SERVICE: u8 = 4;
    pub const CLASS_OF_SERVICE_LEN: usize = 4;
    /// S_TxC, R_RxC, R_TxC (4 bytes each).
    pub const DIRECT_MEASUREMENT: u8 = 5;
    pub const DIRECT_MEASUREMENT_LEN: usize = 12;
    /// Access ID (4 bits), Resv (4), Return Code (8), Reserved (16).
    pub const ACCESS_REPORT: u8 = 6;
    pub const ACCESS_REPORT_LEN: usize = 4;

    /// Synchronization sources (RFC 8972 section 5.4).
    pub const SYNC_NTP: u8 = 1;
    pub const SYNC_LOCAL: u8 = 5;
    /// Timestamping methods (RFC 8972 section 5.5).
    pub const TIMESTAMP_SW_LOCAL: u8 = 2;
}

/// An NTP 64-bit timestamp: seconds since 1900 in the high half, fraction below.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NtpTimestamp(pub u64);

/// Seconds from the NTP era (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

impl NtpTimestamp {
    /// From nanoseconds since the Unix epoch.
    pub fn from_unix_nanos(nanos: u64) -> Self {
        let secs = nanos / 1_000_000_000 + NTP_UNIX_OFFSET_SECS;
        let fraction = ((nanos % 1_000_000_000) << 32) / 1_000_000_000;
        NtpTimestamp(secs << 32 | fraction)
    }

    /// Back to nanoseconds since the Unix epoch (saturating before 1970).
    pub fn to_unix_nanos(self) -> u64 {
        let secs = (self.0 >> 32).saturating_sub(NTP_UNIX_OFFSET_SECS);
        let fraction = ((self.0 & 0xFFFF_FFFF) * 1_000_000_000) >> 32;
        secs * 1_000_000_000 + fraction
    }

    pub const fn to_be_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }
}

view! {
    /// A STAMP test packet, sender's or reflector's: the UDP payload.
    StampPacket: "an unauthenticated STAMP test packet", STAMP_MIN_PAYLOAD
}

impl<T: AsRef<[u8]>> StampPacket<T> {
    #[inline(always)]
    pub fn sequence(&self) -> u32 {
        u32::from_be_bytes(read(self.buffer.as_ref(), field::SEQUENCE))
    }

    /// The sender's transmit time, or in an answer the reflector's (T3).
    #[inline(always)]
    pub fn timestamp(&self) -> NtpTimestamp {
        self.ntp_at(field::TIMESTAMP)
    }

    #[inline(always)]
    pub fn error_estimate(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ERROR_ESTIMATE)
    }

    /// RFC 8972 session identifier.
    #[inline(always)]
    pub fn ssid(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SSID)
    }

    /// In an answer: when the reflector received the sender's packet (T2).
    #[inline(always)]
    pub fn receive_timestamp(&self) -> NtpTimestamp {
        self.ntp_at(field::RECEIVE_TIMESTAMP)
    }

    #[inline(always)]
    pub fn sender_sequence(&self) -> u32 {
        u32::from_be_bytes(read(self.buffer.as_ref(), field::SENDER_SEQUENCE))
    }

    #[inline(always)]
    pub fn sender_timestamp(&self) -> NtpTimestamp {
        self.ntp_at(field::SENDER_TIMESTAMP)
    }

    #[inline(always)]
    pub fn sender_error_estimate(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SENDER_ERROR_ESTIMATE)
    }

    /// The TTL (hop limit) the sender's packet arrived with.
    #[inline(always)]
    pub fn sender_ttl(&self) -> u8 {
        self.buffer.as_ref()[field::SENDER_TTL]
    }

    /// Are all of an answer's must-be-zero bytes zero?
    pub fn answer_mbz_clear(&self) -> bool {
        let data = self.buffer.as_ref();
        field::ANSWER_MBZ
            .iter()
            .all(|run| data[run.clone()].iter().all(|b| *b == 0))
    }

    #[inline(always)]
    fn ntp_at(&self, at: usize) -> NtpTimestamp {
        NtpTimestamp(u64::from_be_bytes(read(self.buffer.as_ref(), at)))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> StampPacket<T> {
    #[inline(always)]
    pub fn set_sequence(&mut self, sequence: u32) {
        write(
            self.buffer.as_mut(),
            field::SEQUENCE,
            &sequence.to_be_bytes(),
        );
    }

    #[inline(always)]
    pub fn set_timestamp(&mut self, time: NtpTimestamp) {
        write(self.buffer.as_mut(), field::TIMESTAMP, &time.to_be_bytes());
    }

    #[inline(always)]
    pub fn set_error_estimate(&mut self, estimate: u16) {
        write(
            self.buffer.as_mut(),
            field::ERROR_ESTIMATE,
            &estimate.to_be_bytes(),
        );
    }

    pub fn set_ssid(&mut self, ssid: u16) {
        write(self.buffer.as_mut(), field::SSID, &ssid.to_be_bytes());
    }

    #[inline(always)]
    pub fn set_receive_timestamp(&mut self, time: NtpTimestamp) {
        write(
            self.buffer.as_mut(),
            field::RECEIVE_TIMESTAMP,
            &time.to_be_bytes(),
        );
    }

    #[inline(always)]
    pub fn set_sender_sequence(&mut self, sequence: u32) {
        write(
            self.buffer.as_mut(),
            field::SENDER_SEQUENCE,
            &sequence.to_be_bytes(),
        );
    }

    #[inline(always)]
    pub fn set_sender_timestamp(&mut self, time: NtpTimestamp) {
        write(
            self.buffer.as_mut(),
            field::SENDER_TIMESTAMP,
            &time.to_be_bytes(),
        );
    }

    #[inline(always)]
    pub fn set_sender_error_estimate(&mut self, estimate: u16) {
        write(
            self.buffer.as_mut(),
            field::SENDER_ERROR_ESTIMATE,
            &estimate.to_be_bytes(),
        );
    }

    #[inline(always)]
    pub fn set_sender_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::SENDER_TTL] = ttl;
    }

    /// Zero an answer's must-be-zero bytes.
    #[inline(always)]
    pub fn clear_answer_mbz(&mut self) {
        let data = self.buffer.as_mut();
        for run in field::ANSWER_MBZ {
            data[run].fill(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reflector's answer written out from RFC 8762 section 4.3's figure, field by
    /// field, independently of the view.
    fn rfc_answer() -> [u8; STAMP_MIN_PAYLOAD] {
        let mut p = [0u8; STAMP_MIN_PAYLOAD];
        p[0..4].copy_from_slice(&[0x00, 0x00, 0x00, 0x07]); // Sequence Number
        p[4..12].copy_from_slice(&[0xe9, 0x00, 0x00, 0x01, 0x80, 0x00, 0x00, 0x00]); // T3
        p[12..14].copy_from_slice(&[0x80, 0x14]); // Error Estimate: S, scale 0, mult 20
        p[14..16].copy_from_slice(&[0x12, 0x34]); // SSID (RFC 8972)
        p[16..24].copy_from_slice(&[0xe9, 0x00, 0x00, 0x01, 0x40, 0x00, 0x00, 0x00]); // T2
        p[24..28].copy_from_slice(&[0x00, 0x00, 0x00, 0x05]); // Session-Sender Sequence
        p[28..36].copy_from_slice(&[0xe9, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00]); // T1
        p[36..38].copy_from_slice(&[0x00, 0x01]); // Session-Sender Error Estimate
                                                  // 38..40 MBZ
        p[40] = 62; // Ses-Sender TTL
                    // 41..44 MBZ
        p
    }

    #[test]
    fn reads_an_answer_laid_out_as_in_the_rfc() {
        let bytes = rfc_answer();
        let p = StampPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.sequence(), 7);
        assert_eq!(p.timestamp(), NtpTimestamp(0xe900_0001_8000_0000));
        assert_eq!(p.error_estimate(), 0x8014);
        assert_eq!(p.ssid(), 0x1234);
        assert_eq!(p.receive_timestamp(), NtpTimestamp(0xe900_0001_4000_0000));
        assert_eq!(p.sender_sequence(), 5);
        assert_eq!(p.sender_timestamp(), NtpTimestamp(0xe900_0001_0000_0000));
        assert_eq!(p.sender_error_estimate(), 1);
        assert_eq!(p.sender_ttl(), 62);
        assert!(p.answer_mbz_clear());
        for mbz in [38, 39, 41, 42, 43] {
            let mut dirty = bytes;
            dirty[mbz] = 1;
            assert!(
                !StampPacket::new_unchecked(&dirty[..]).answer_mbz_clear(),
                "{mbz}"
            );
        }
    }

    #[test]
    fn setters_write_the_rfc_layout() {
        let mut bytes = [0xA5u8; STAMP_MIN_PAYLOAD];
        let mut p = StampPacket::new_unchecked(&mut bytes[..]);
        p.set_sequence(7);
        p.set_timestamp(NtpTimestamp(0xe900_0001_8000_0000));
        p.set_error_estimate(0x8014);
        p.set_ssid(0x1234);
        p.set_receive_timestamp(NtpTimestamp(0xe900_0001_4000_0000));
        p.set_sender_sequence(5);
        p.set_sender_timestamp(NtpTimestamp(0xe900_0001_0000_0000));
        p.set_sender_error_estimate(1);
        p.set_sender_ttl(62);
        p.clear_answer_mbz();
        assert_eq!(bytes, rfc_answer());
    }

    #[test]
    fn checked_view_refuses_a_short_packet() {
        let bytes = rfc_answer();
        let err = StampPacket::new_checked(&bytes[..43]).unwrap_err();
        assert_eq!((err.needed, err.len), (STAMP_MIN_PAYLOAD, 43));
    }

    #[test]
    fn ntp_conversion_round_trips_within_a_nanosecond() {
        for nanos in [0, 1, 999_999_999, 1_700_000_000_123_456_789] {
            let back = NtpTimestamp::from_unix_nanos(nanos).to_unix_nanos();
            assert!(back.abs_diff(nanos) <= 1, "{nanos} -> {back}");
        }
        // 1970-01-01 is NTP second 2 208 988 800.
        assert_eq!(NtpTimestamp::from_unix_nanos(0).0 >> 32, 2_208_988_800);
        // Half a second is half the fraction range.
        assert_eq!(
            NtpTimestamp::from_unix_nanos(500_000_000).0 & 0xFFFF_FFFF,
            1 << 31
        );
    }
}
