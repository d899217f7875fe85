//! The STAMP session-reflector (RFC 8762, unauthenticated mode), in place.
//!
//! A session-sender's test packet becomes the reflector's answer in the same buffer:
//! the sender's sequence number, timestamp and error estimate move to their
//! "Session-Sender" fields, the received TTL is copied, and the reflector writes its
//! own sequence number, receive timestamp T2 and transmit timestamp T3. The session
//! identifier (RFC 8972 SSID, zero when unused) stays where it is. Bytes past the
//! 44-byte base packet (padding, RFC 8972 TLVs) are echoed unchanged, so the answer has
//! the sender's length, as the RFC asks for symmetric packets.
//!
//! Writing happens in two steps because T3 is taken just before the batch is sent:
//! [`answer`] writes everything else, [`write_transmit_time`] writes T3. Each step
//! patches the UDP checksum incrementally (RFC 1624) over the bytes it changed, and the
//! IPv4 header checksum for the TTL, so no step re-sums the whole datagram.
//!
//! Layout of the unauthenticated packets (offsets in the UDP payload):
//!
//! ```text
//! sender:    0 seq(4)  4 timestamp(8)  12 error estimate(2)  14 SSID(2)  16 MBZ(28)
//! reflector: 0 seq(4)  4 T3(8)  12 error estimate(2)  14 SSID(2)  16 T2(8)
//!            24 sender seq(4)  28 sender timestamp(8)  36 sender error estimate(2)
//!            38 MBZ(2)  40 sender TTL(1)  41 MBZ(3)
//! ```

use crate::checksum::{ones_complement_sum, replace_in_udp_checksum, update_word};
use crate::parse::*;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Smallest UDP payload of an unauthenticated STAMP test packet.
pub const STAMP_MIN_PAYLOAD: usize = 44;

const SEQUENCE: usize = 0;
const TIMESTAMP: usize = 4;
const ERROR_ESTIMATE: usize = 12;
const SSID: usize = 14;
const RECEIVE_TIMESTAMP: usize = 16;
const SENDER_SEQUENCE: usize = 24;
const SENDER_TIMESTAMP: usize = 28;
const SENDER_ERROR_ESTIMATE: usize = 36;
const SENDER_TTL: usize = 40;

/// TTL (hop limit) of every answer, as TWAMP reflectors use it: a sender that
/// receives 255 knows the answer crossed no router (GTSM, RFC 5082).
pub const ANSWER_TTL: u8 = 255;

/// Error estimate sent when the clock's synchronisation is unknown: S = 0 (not
/// synchronised to UTC), Z = 0 (NTP format), scale 0, multiplier 1 (RFC 4656 4.1.2
/// forbids a zero multiplier).
pub const UNSYNCHRONISED_ERROR_ESTIMATE: u16 = 0x0001;

/// The Error Estimate field (RFC 4656 section 4.1.2) for a clock whose error is at
/// most `error_ns`: S set when `synchronised` (to UTC, by NTP or PTP), Z = 0 (NTP
/// timestamps), and the smallest scale whose multiplier (1..=255) covers the error,
/// rounded up so the estimate never claims more accuracy than the clock has.
pub fn error_estimate(synchronised: bool, error_ns: u64) -> u16 {
    // The estimate is multiplier * 2^scale units of 2^-32 s.
    let units = ((u128::from(error_ns) << 32).div_ceil(1_000_000_000)).max(1);
    let mut scale = 0;
    while scale < 63 && units.div_ceil(1 << scale) > 255 {
        scale += 1;
    }
    let multiplier = units.div_ceil(1 << scale).clamp(1, 255) as u16;
    u16::from(synchronised) << 15 | (scale as u16) << 8 | multiplier
}

/// How the reflector numbers its answers (RFC 8762 section 4.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StampMode {
    /// The reflector's sequence number is the sender's (section 4.3.1 stateless).
    #[default]
    Stateless,
    /// The reflector counts each session's packets itself, so the sender can tell
    /// forward-path loss from return-path loss (section 4.3.2 stateful).
    Stateful,
}

impl StampMode {
    pub const fn name(self) -> &'static str {
        match self {
            StampMode::Stateless => "stateless",
            StampMode::Stateful => "stateful",
        }
    }
}

impl fmt::Display for StampMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A STAMP mode name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown STAMP mode {0:?}: expected stateless or stateful")]
pub struct UnknownStampMode(pub String);

impl FromStr for StampMode {
    type Err = UnknownStampMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [StampMode::Stateless, StampMode::Stateful]
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownStampMode(s.to_owned()))
    }
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
}

/// Offset of the STAMP packet (the UDP payload) in the frame.
#[inline(always)]
fn base(layout: &Layout) -> usize {
    layout.l4 + UDP_HEADER_LEN
}

/// The session-sender's sequence number, read before [`answer`] rewrites the packet.
#[inline]
pub fn sender_sequence(frame: &[u8], layout: &Layout) -> u32 {
    let at = base(layout) + SEQUENCE;
    u32::from_be_bytes([frame[at], frame[at + 1], frame[at + 2], frame[at + 3]])
}

/// Turn the sender's test packet into the reflector's answer, all but T3.
///
/// `layout` must come from [`crate::classify`] accepting this frame as
/// [`crate::Signature::Stamp`] (so the 44-byte base packet is present). Addresses are
/// not touched here; [`crate::reflect`] swaps them.
#[inline]
pub fn answer(
    frame: &mut [u8],
    layout: &Layout,
    reflector_sequence: u32,
    receive_time: NtpTimestamp,
    error_estimate: u16,
) {
    let at = base(layout);
    let before = ones_complement_sum(&frame[at..at + STAMP_MIN_PAYLOAD], 0);
    let received_ttl = set_answer_ttl(frame, layout);

    let packet: &mut [u8; STAMP_MIN_PAYLOAD] = (&mut frame[at..at + STAMP_MIN_PAYLOAD])
        .try_into()
        .expect("classify guarantees the base packet");
    // The sender's fields move up first: their new places overlap nothing still unread.
    packet.copy_within(SEQUENCE..SEQUENCE + 4, SENDER_SEQUENCE);
    packet.copy_within(TIMESTAMP..TIMESTAMP + 8, SENDER_TIMESTAMP);
    packet.copy_within(ERROR_ESTIMATE..ERROR_ESTIMATE + 2, SENDER_ERROR_ESTIMATE);
    packet[SEQUENCE..SEQUENCE + 4].copy_from_slice(&reflector_sequence.to_be_bytes());
    packet[ERROR_ESTIMATE..ERROR_ESTIMATE + 2].copy_from_slice(&error_estimate.to_be_bytes());
    packet[RECEIVE_TIMESTAMP..RECEIVE_TIMESTAMP + 8].copy_from_slice(&receive_time.0.to_be_bytes());
    packet[SENDER_ERROR_ESTIMATE + 2..SENDER_TTL].fill(0);
    packet[SENDER_TTL] = received_ttl;
    packet[SENDER_TTL + 1..].fill(0);
    let after = ones_complement_sum(packet, 0);
    patch_udp_checksum(frame, layout, before, after);
}

/// Write the transmit timestamp T3 of an [`answer`]ed packet.
#[inline]
pub fn write_transmit_time(frame: &mut [u8], layout: &Layout, transmit_time: NtpTimestamp) {
    let at = base(layout) + TIMESTAMP;
    let field = &mut frame[at..at + 8];
    let before = ones_complement_sum(field, 0);
    field.copy_from_slice(&transmit_time.0.to_be_bytes());
    let after = ones_complement_sum(field, 0);
    patch_udp_checksum(frame, layout, before, after);
}

/// Set the answer's TTL / hop limit, fixing the IPv4 header checksum; returns the
/// received value for the Ses-Sender TTL field.
fn set_answer_ttl(frame: &mut [u8], layout: &Layout) -> u8 {
    match layout.ip {
        IpVersion::V4 => {
            let ttl_at = layout.l3 + IPV4_TTL;
            let old_word = be16(frame, ttl_at);
            let received = frame[ttl_at];
            frame[ttl_at] = ANSWER_TTL;
            let new_word = be16(frame, ttl_at);
            let sum_at = layout.l3 + IPV4_CHECKSUM;
            let patched = update_word(be16(frame, sum_at), old_word, new_word);
            frame[sum_at..sum_at + 2].copy_from_slice(&patched.to_be_bytes());
            received
        }
        IpVersion::V6 => std::mem::replace(&mut frame[layout.l3 + IPV6_HOP_LIMIT], ANSWER_TTL),
    }
}

fn patch_udp_checksum(frame: &mut [u8], layout: &Layout, before: u16, after: u16) {
    let at = layout.l4 + UDP_CHECKSUM;
    let old = be16(frame, at);
    // An IPv4 UDP checksum of 0 means "none" and must stay 0.
    if old == 0 && layout.ip == IpVersion::V4 {
        return;
    }
    let new = replace_in_udp_checksum(old, before, after);
    frame[at..at + 2].copy_from_slice(&new.to_be_bytes());
}

/// The fields of a reflector's answer, read back (by tests and the test head).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    pub sequence: u32,
    pub transmit_time: NtpTimestamp,
    pub error_estimate: u16,
    pub receive_time: NtpTimestamp,
    pub sender_sequence: u32,
    pub sender_time: NtpTimestamp,
    pub sender_error_estimate: u16,
    pub sender_ttl: u8,
    /// RFC 8972 session identifier, echoed from the sender.
    pub ssid: u16,
    /// Every must-be-zero byte is zero.
    pub mbz_clear: bool,
}

impl Answer {
    /// Read an answer from a UDP payload; `None` if it is shorter than 44 bytes.
    pub fn parse(payload: &[u8]) -> Option<Answer> {
        let p = payload.get(..STAMP_MIN_PAYLOAD)?;
        let u16_at = |at: usize| u16::from_be_bytes([p[at], p[at + 1]]);
        let u32_at = |at: usize| u32::from_be_bytes(p[at..at + 4].try_into().unwrap());
        let ntp_at =
            |at: usize| NtpTimestamp(u64::from_be_bytes(p[at..at + 8].try_into().unwrap()));
        let zero = |range: std::ops::Range<usize>| p[range].iter().all(|b| *b == 0);
        Some(Answer {
            sequence: u32_at(SEQUENCE),
            transmit_time: ntp_at(TIMESTAMP),
            error_estimate: u16_at(ERROR_ESTIMATE),
            receive_time: ntp_at(RECEIVE_TIMESTAMP),
            sender_sequence: u32_at(SENDER_SEQUENCE),
            sender_time: ntp_at(SENDER_TIMESTAMP),
            sender_error_estimate: u16_at(SENDER_ERROR_ESTIMATE),
            sender_ttl: p[SENDER_TTL],
            ssid: u16_at(SSID),
            mbz_clear: zero(38..40) && zero(41..44),
        })
    }
}

/// A session-sender's unauthenticated test packet: `sequence`, `timestamp`, error
/// estimate, then zeros up to `len` (at least 44) bytes.
pub fn sender_packet(sequence: u32, timestamp: NtpTimestamp, len: usize) -> Vec<u8> {
    let mut packet = vec![0; len.max(STAMP_MIN_PAYLOAD)];
    packet[SEQUENCE..SEQUENCE + 4].copy_from_slice(&sequence.to_be_bytes());
    packet[TIMESTAMP..TIMESTAMP + 8].copy_from_slice(&timestamp.0.to_be_bytes());
    packet[ERROR_ESTIMATE..ERROR_ESTIMATE + 2]
        .copy_from_slice(&UNSYNCHRONISED_ERROR_ESTIMATE.to_be_bytes());
    packet
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Seconds an Error Estimate field stands for.
    fn estimate_secs(field: u16) -> f64 {
        let scale = i32::from((field >> 8) & 0x3F);
        f64::from(field & 0xFF) * 2f64.powi(scale - 32)
    }

    #[test]
    fn error_estimates_cover_the_clock_error_tightly() {
        assert_eq!(error_estimate(false, 0), UNSYNCHRONISED_ERROR_ESTIMATE);
        for error_ns in [1, 1_000, 250_000, 1_000_000, 37_000_000, 3_000_000_000] {
            let field = error_estimate(true, error_ns);
            assert_eq!(field >> 15, 1, "S bit");
            assert_eq!(field >> 14 & 1, 0, "Z bit: NTP format");
            let claimed = estimate_secs(field);
            let actual = error_ns as f64 / 1e9;
            assert!(claimed >= actual, "{error_ns} ns: claims {claimed} s");
            assert!(
                claimed <= actual * 1.01 + 2f64.powi(-32),
                "{error_ns} ns: {claimed} s is loose"
            );
        }
        assert_eq!(error_estimate(false, 1_000_000) >> 15, 0);
    }

    #[test]
    fn modes_parse() {
        assert_eq!("stateful".parse::<StampMode>(), Ok(StampMode::Stateful));
        assert_eq!("Stateless".parse::<StampMode>(), Ok(StampMode::Stateless));
        assert!("both".parse::<StampMode>().is_err());
    }
}
