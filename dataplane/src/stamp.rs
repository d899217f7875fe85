//! The STAMP session-reflector (RFC 8762, unauthenticated mode), in place.
//!
//! A session-sender's test packet becomes the reflector's answer in the same buffer:
//! the sender's sequence number, timestamp and error estimate move to their
//! "Session-Sender" fields, the received TTL is copied, and the reflector writes its
//! own sequence number, receive timestamp T2 and transmit timestamp T3. The session
//! identifier (RFC 8972 SSID, zero when unused) stays where it is. Bytes past the
//! 44-byte base packet are RFC 8972 TLVs, answered in place by [`tlv`], so the answer
//! has the sender's length, as the RFC asks for symmetric packets.
//!
//! Writing happens in two steps because T3 is taken just before the batch is sent:
//! [`answer`] writes everything else, [`write_transmit_time`] writes T3 and then the
//! UDP checksum, summed afresh over the whole (short) answer. Patching the sender's
//! checksum would carry its errors over: a same-host or VM sender with TX checksum
//! offload hands over a packet whose checksum field holds only the pseudo-header sum,
//! and an answer patched from it would be dropped by the sender's kernel. [`answer`]
//! reports such packets so the worker can count them.
//!
//! The packet layout is [`crate::wire::StampPacket`]'s.

pub mod tlv;

use crate::checksum::{ones_complement_sum, udp_pseudo_header_sum, update_word, verifies};
use crate::parse::{IpVersion, Layout};
use crate::streams::SessionCounts;
use crate::wire::stamp::tlv::{SYNC_LOCAL, SYNC_NTP};
use crate::wire::{Ipv4Packet, Ipv6Packet, StampPacket, UdpDatagram};
use serde::{Deserialize, Serialize};
use tlv::TlvContext;

pub use crate::wire::stamp::{NtpTimestamp, STAMP_MIN_PAYLOAD};

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
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
#[strum(
    serialize_all = "kebab-case",
    ascii_case_insensitive,
    parse_err_ty = UnknownStampMode,
    parse_err_fn = UnknownStampMode::new
)]
pub enum StampMode {
    /// The reflector's sequence number is the sender's (section 4.3.1 stateless).
    #[default]
    Stateless,
    /// The reflector counts each session's packets itself, so the sender can tell
    /// forward-path loss from return-path loss (section 4.3.2 stateful).
    Stateful,
}

impl StampMode {
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// A STAMP mode name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown STAMP mode {0:?}: expected stateless or stateful")]
pub struct UnknownStampMode(pub String);

impl UnknownStampMode {
    fn new(name: &str) -> Self {
        UnknownStampMode(name.to_owned())
    }
}

/// The session-sender's sequence number and transmit timestamp, read before
/// [`answer`] rewrites the packet.
#[inline]
pub fn sender_numbering(frame: &[u8], layout: &Layout) -> (u32, NtpTimestamp) {
    let packet = StampPacket::new_unchecked(&frame[layout.payload()..]);
    (packet.sequence(), packet.timestamp())
}

/// The 44-byte base packet of the STAMP packet `layout` locates in `frame`.
#[inline(always)]
fn base_packet<'a>(frame: &'a mut [u8], layout: &Layout) -> StampPacket<&'a mut [u8]> {
    let at = layout.payload();
    StampPacket::new_unchecked(&mut frame[at..at + STAMP_MIN_PAYLOAD])
}

/// What the reflector puts into one answer besides the sender's fields.
#[derive(Clone, Copy, Debug)]
pub struct Answer {
    /// The reflector's sequence number (the sender's, or the session's own count).
    pub sequence: u32,
    /// T2.
    pub receive_time: NtpTimestamp,
    /// The Error Estimate of T2 and T3 (RFC 4656 section 4.1.2).
    pub error_estimate: u16,
    /// The session's counts for a Direct Measurement TLV, if the stream is tracked.
    pub session: Option<SessionCounts>,
}

/// Turn the sender's test packet into the reflector's answer, all but T3 and the UDP
/// checksum. Returns `false` if the packet arrived with a wrong UDP checksum (it is
/// answered all the same, with a right one).
///
/// `layout` must come from [`crate::classify()`] accepting this frame as
/// [`crate::Signature::Stamp`] (so the 44-byte base packet is present). Addresses are
/// not touched here; [`crate::reflect()`] swaps them.
#[inline]
pub fn answer(frame: &mut [u8], layout: &Layout, answer: &Answer) -> bool {
    let checksum_ok = udp_checksum_verifies(frame, layout);
    let received_tos = received_tos(frame, layout);
    let received_ttl = set_answer_ttl(frame, layout);
    let mut packet = base_packet(frame, layout);
    let (sequence, timestamp, estimate) = (
        packet.sequence(),
        packet.timestamp(),
        packet.error_estimate(),
    );
    packet.set_sender_sequence(sequence);
    packet.set_sender_timestamp(timestamp);
    packet.set_sender_error_estimate(estimate);
    packet.set_sequence(answer.sequence);
    packet.set_error_estimate(answer.error_estimate);
    packet.set_receive_timestamp(answer.receive_time);
    packet.set_sender_ttl(received_ttl);
    packet.clear_answer_mbz();
    let context = TlvContext {
        // The S bit says the clock follows UTC; the kernel's clock is disciplined by
        // NTP (chrony, ntpd, timesyncd) on the hosts this runs on.
        sync_source: if answer.error_estimate >> 15 == 1 {
            SYNC_NTP
        } else {
            SYNC_LOCAL
        },
        received_tos,
        session: answer.session,
    };
    let tlvs = &mut frame[layout.payload() + STAMP_MIN_PAYLOAD..layout.end()];
    if let Some(dscp) = tlv::process(tlvs, &context) {
        set_dscp(frame, layout, dscp);
    }
    checksum_ok
}

/// Write the transmit timestamp T3 of an [`answer`]ed packet, then its UDP checksum.
#[inline]
pub fn write_transmit_time(frame: &mut [u8], layout: &Layout, transmit_time: NtpTimestamp) {
    base_packet(frame, layout).set_timestamp(transmit_time);
    let pseudo_header = pseudo_header_sum(frame, layout);
    let mut udp = UdpDatagram::new_unchecked(&mut frame[layout.l4..layout.end()]);
    // An IPv4 UDP checksum of 0 means "none" and must stay 0.
    if udp.checksum() == 0 && layout.ip == IpVersion::V4 {
        return;
    }
    udp.set_checksum(0);
    let checksum = match !ones_complement_sum(udp.as_ref(), pseudo_header) {
        0 => 0xFFFF,
        sum => sum,
    };
    udp.set_checksum(checksum);
}

/// Does the received datagram's UDP checksum verify (or is it an IPv4 "none")?
fn udp_checksum_verifies(frame: &[u8], layout: &Layout) -> bool {
    let udp = &frame[layout.l4..layout.end()];
    let none = layout.ip == IpVersion::V4 && UdpDatagram::new_unchecked(udp).checksum() == 0;
    none || verifies(udp, pseudo_header_sum(frame, layout))
}

fn pseudo_header_sum(frame: &[u8], layout: &Layout) -> u32 {
    let ip = &frame[layout.l3..];
    let udp_len = layout.end() - layout.l4;
    match layout.ip {
        IpVersion::V4 => {
            let ip = Ipv4Packet::new_unchecked(ip);
            udp_pseudo_header_sum(&ip.src_addr().octets(), &ip.dst_addr().octets(), udp_len)
        }
        IpVersion::V6 => {
            let ip = Ipv6Packet::new_unchecked(ip);
            udp_pseudo_header_sum(&ip.src_addr().octets(), &ip.dst_addr().octets(), udp_len)
        }
    }
}

/// DSCP and ECN of the received packet.
fn received_tos(frame: &[u8], layout: &Layout) -> u8 {
    let ip = &frame[layout.l3..];
    match layout.ip {
        IpVersion::V4 => Ipv4Packet::new_unchecked(ip).tos(),
        IpVersion::V6 => Ipv6Packet::new_unchecked(ip).traffic_class(),
    }
}

/// Give the answer `dscp`, keeping its ECN bits.
fn set_dscp(frame: &mut [u8], layout: &Layout, dscp: u8) {
    let ip = &mut frame[layout.l3..];
    match layout.ip {
        IpVersion::V4 => {
            let mut ip = Ipv4Packet::new_unchecked(ip);
            let tos = dscp << 2 | (ip.tos() & 0x03);
            ip.set_tos_updating_checksum(tos);
        }
        IpVersion::V6 => {
            let mut ip = Ipv6Packet::new_unchecked(ip);
            let class = dscp << 2 | (ip.traffic_class() & 0x03);
            ip.set_traffic_class(class);
        }
    }
}

/// Set the answer's TTL / hop limit, fixing the IPv4 header checksum; returns the
/// received value for the Ses-Sender TTL field.
fn set_answer_ttl(frame: &mut [u8], layout: &Layout) -> u8 {
    match layout.ip {
        IpVersion::V4 => {
            let mut ip = Ipv4Packet::new_unchecked(&mut frame[layout.l3..]);
            let received = ip.ttl();
            // TTL and protocol share the checksummed 16-bit word.
            let old_word = u16::from_be_bytes([received, ip.protocol()]);
            let new_word = u16::from_be_bytes([ANSWER_TTL, ip.protocol()]);
            ip.set_ttl(ANSWER_TTL);
            ip.set_checksum(update_word(ip.checksum(), old_word, new_word));
            received
        }
        IpVersion::V6 => {
            let mut ip = Ipv6Packet::new_unchecked(&mut frame[layout.l3..]);
            let received = ip.hop_limit();
            ip.set_hop_limit(ANSWER_TTL);
            received
        }
    }
}

/// A session-sender's unauthenticated test packet: `sequence`, `timestamp`, error
/// estimate, then zeros up to `len` (at least 44) bytes.
pub fn sender_packet(sequence: u32, timestamp: NtpTimestamp, len: usize) -> Vec<u8> {
    let mut packet = StampPacket::new_unchecked(vec![0; len.max(STAMP_MIN_PAYLOAD)]);
    packet.set_sequence(sequence);
    packet.set_timestamp(timestamp);
    packet.set_error_estimate(UNSYNCHRONISED_ERROR_ESTIMATE);
    packet.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(StampMode::Stateful.to_string(), "stateful");
        assert_eq!(StampMode::Stateless.name(), "stateless");
        assert_eq!(
            "both".parse::<StampMode>().unwrap_err().to_string(),
            "unknown STAMP mode \"both\": expected stateless or stateful"
        );
    }
}
