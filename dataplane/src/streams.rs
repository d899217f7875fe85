//! Per-stream statistics: who is sending what, and — for STAMP, whose packets carry a
//! sequence number — how much of it was lost, reordered or duplicated on the way in.
//!
//! A stream is (source MAC, source IP, source port, destination port, signature, and
//! for STAMP the RFC 8972 session identifier): two SSIDs on one 5-tuple are two STAMP
//! sessions, each with its own sequence tracking, stateful numbering and Direct
//! Measurement counts. Reports fold them back into one stream per 5-tuple. Each
//! worker owns a [`StreamTable`] whose memory is fixed when it is built: the table is
//! sized for `capacity` streams and never grows, streams idle longer than the idle
//! timeout are dropped by [`StreamTable::expire`], and frames of new streams that find
//! the table full are counted as untracked rather than tracked. Frames from one
//! source flow land on one RX queue, so a stream normally lives in one worker's table.

use crate::classify::Accepted;
use crate::mac::MacAddr;
use crate::parse::{IpVersion, Layout, ETH_HEADER_LEN, PLAIN_IPV4_HEADERS_LEN, PLAIN_IPV4_UDP};
use crate::sequence::{Arrival, SequenceTracker};
use crate::signature::Signature;
use crate::wire::{EthernetFrame, Ipv4Packet, Ipv6Packet, StampPacket, UdpDatagram};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;
use table::{Cold, Hot, Table};

mod table;

/// What identifies a stream. Read from the frame *before* it is reflected. Held as
/// four words, which is how the table hashes and compares it: source IP (two words),
/// source MAC with the source port, then destination port, signature and SSID.
#[derive(Clone, Copy, Debug, Eq)]
pub struct StreamKey([u64; 4]);

/// Word by word in registers: the derived comparison loaded the key just built as
/// 16-byte vectors from the stack, a store-forwarding stall on every lookup.
impl PartialEq for StreamKey {
    #[inline(always)]
    fn eq(&self, other: &Self) -> bool {
        let [a, b, c, d] = self.0;
        let [w, x, y, z] = other.0;
        (a ^ w) | (b ^ x) | (c ^ y) | (d ^ z) == 0
    }
}

impl StreamKey {
    /// `src_ip` is IPv6, or IPv4 as an IPv4-mapped IPv6 address; `ssid` is the STAMP
    /// session identifier (RFC 8972 section 3), 0 for other signatures.
    #[inline(always)]
    pub fn new(
        src_mac: MacAddr,
        src_ip: [u8; 16],
        src_port: u16,
        dst_port: u16,
        signature: Signature,
        ssid: u16,
    ) -> Self {
        let [ip_hi, ip_lo] = [&src_ip[..8], &src_ip[8..]]
            .map(|half| u64::from_le_bytes(half.try_into().expect("8 bytes")));
        let mut mac = [0u8; 8];
        mac[..6].copy_from_slice(&src_mac.0);
        StreamKey([
            ip_hi,
            ip_lo,
            u64::from_le_bytes(mac) | u64::from(src_port) << 48,
            u64::from(dst_port) | u64::from(signature as u8) << 16 | u64::from(ssid) << 32,
        ])
    }

    /// The key of an accepted, not yet reflected, frame.
    #[inline(always)]
    pub fn of(frame: &[u8], accepted: &Accepted) -> StreamKey {
        let layout = &accepted.layout;
        let ssid = match accepted.signature {
            Signature::Stamp => StampPacket::new_unchecked(&frame[layout.payload()..]).ssid(),
            _ => 0,
        };
        // Plain IPv4, nearly every frame: the same reads through a fixed-size view of
        // its headers, with the offsets as constants, need no bounds checks.
        if layout.is_plain_ipv4() {
            if let Some(headers) = frame.first_chunk::<PLAIN_IPV4_HEADERS_LEN>() {
                let plain = Layout {
                    ip: IpVersion::V4,
                    l3: ETH_HEADER_LEN,
                    l4: PLAIN_IPV4_UDP,
                    ..*layout
                };
                return StreamKey::of_headers(headers, &plain, accepted.signature, ssid);
            }
        }
        StreamKey::of_headers(frame, layout, accepted.signature, ssid)
    }

    #[inline(always)]
    fn of_headers(frame: &[u8], layout: &Layout, signature: Signature, ssid: u16) -> StreamKey {
        let udp = UdpDatagram::new_unchecked(&frame[layout.l4..]);
        StreamKey::new(
            EthernetFrame::new_unchecked(frame).src_addr(),
            source_ip(frame, layout),
            udp.src_port(),
            udp.dst_port(),
            signature,
            ssid,
        )
    }

    pub fn src_mac(&self) -> MacAddr {
        let bytes = self.0[2].to_le_bytes();
        MacAddr([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]])
    }

    pub fn src_ip(&self) -> [u8; 16] {
        let mut ip = [0; 16];
        ip[..8].copy_from_slice(&self.0[0].to_le_bytes());
        ip[8..].copy_from_slice(&self.0[1].to_le_bytes());
        ip
    }

    pub fn src_port(&self) -> u16 {
        (self.0[2] >> 48) as u16
    }

    pub fn dst_port(&self) -> u16 {
        self.0[3] as u16
    }

    pub fn signature(&self) -> Signature {
        Signature::ALL[usize::from((self.0[3] >> 16) as u8)]
    }

    pub fn ssid(&self) -> u16 {
        (self.0[3] >> 32) as u16
    }

    #[inline(always)]
    fn words(&self) -> [u64; 4] {
        self.0
    }
}

/// The source address of a classified frame, IPv4 mapped into IPv6.
#[inline]
pub fn source_ip(frame: &[u8], layout: &Layout) -> [u8; 16] {
    let ip = &frame[layout.l3..];
    match layout.ip {
        IpVersion::V4 => Ipv4Packet::new_unchecked(ip)
            .src_addr()
            .to_ipv6_mapped()
            .octets(),
        IpVersion::V6 => Ipv6Packet::new_unchecked(ip).src_addr().octets(),
    }
}

/// A STAMP session's own counts (RFC 8972 Direct Measurement, RFC 8762 stateful
/// numbering); they start again at 0 when the sender restarts at 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionCounts {
    /// Test packets received, this one included.
    pub received: u32,
    /// Answers so far. The worker counts an answer as it builds it, so a Direct
    /// Measurement TLV's R_TxC includes its own answer, and stateful numbering takes
    /// the count before it.
    pub answered: u32,
}

/// How much a [`StreamTable`] may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamLimits {
    /// Most streams tracked per worker; 0 turns stream tracking off.
    pub capacity: usize,
    /// A stream not seen for this long is forgotten.
    pub idle_timeout: Duration,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            capacity: 1024,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// One worker's streams, bounded in memory (`streams/table.rs` says how).
#[derive(Debug)]
pub struct StreamTable {
    table: Table,
    limits: StreamLimits,
    /// Frames of streams that found the table full.
    pub untracked_frames: u64,
}

impl StreamTable {
    /// Allocates room for `limits.capacity` streams now; recording never allocates.
    pub fn new(limits: StreamLimits) -> Self {
        StreamTable {
            table: Table::new(limits.capacity),
            limits,
            untracked_frames: 0,
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.limits.capacity > 0
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Count one frame of `len` bytes at wall-clock `now` (ns since the epoch), with
    /// its sequence number and sender timestamp if it carries them. Returns the
    /// stream's STAMP session counts, or `None` if it is not tracked (table full or
    /// tracking off).
    #[inline(always)]
    pub fn record(
        &mut self,
        key: StreamKey,
        len: usize,
        now: u64,
        sequence: Option<(u32, u64)>,
    ) -> Option<&mut SessionCounts> {
        if !self.is_enabled() {
            return None;
        }
        let Some(index) = self.table.find_or_insert(&key, now) else {
            self.untracked_frames += 1;
            return None;
        };
        let hot = self.table.hot_mut(index);
        hot.frames += 1;
        hot.bytes += len as u64;
        hot.last_seen = now;
        let cold = self.table.cold_mut(index);
        if let Some((sequence, sent_at)) = sequence {
            let tracker = cold.sequence.get_or_insert_with(SequenceTracker::default);
            if tracker.observe(sequence, sent_at) == Arrival::RunStart {
                cold.session = SessionCounts::default();
            }
            cold.session.received = cold.session.received.wrapping_add(1);
        }
        Some(&mut cold.session)
    }

    /// Forget streams idle since before `now - idle_timeout`.
    pub fn expire(&mut self, now: u64) {
        let idle = self.limits.idle_timeout.as_nanos() as u64;
        self.table
            .retain(|hot| now.saturating_sub(hot.last_seen) <= idle);
    }

    /// Every tracked stream, for publication.
    pub fn report(&self) -> impl Iterator<Item = StreamReport> + '_ {
        self.table
            .iter()
            .map(|(hot, cold)| StreamReport::new(hot, cold))
    }
}

/// A stream as published to readers (the stats output, the control plane).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamReport {
    /// `aa:bb:cc:dd:ee:ff`.
    pub src_mac: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub signature: Signature,
    pub frames: u64,
    pub bytes: u64,
    /// Milliseconds since the Unix epoch.
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    /// Loss, reordering and duplication, for streams that carry sequence numbers.
    pub sequence: Option<SequenceReport>,
}

/// A stream's [`SequenceTracker`] counts; see [`crate::sequence`] for what each means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SequenceReport {
    pub lost: u64,
    pub reordered: u64,
    pub duplicated: u64,
    /// Arrivals too far behind to tell late from duplicate (absent from older lines).
    #[serde(default)]
    pub too_late: u64,
    /// Times the sender restarted its numbering.
    #[serde(default)]
    pub restarts: u64,
}

impl StreamReport {
    fn new(hot: &Hot, cold: &Cold) -> Self {
        let key = &hot.key;
        let ip = Ipv6Addr::from(key.src_ip());
        StreamReport {
            src_mac: key.src_mac().to_string(),
            src_ip: ip.to_ipv4_mapped().map_or(IpAddr::V6(ip), IpAddr::V4),
            src_port: key.src_port(),
            dst_port: key.dst_port(),
            signature: key.signature(),
            frames: hot.frames,
            bytes: hot.bytes,
            first_seen_ms: cold.first_seen / 1_000_000,
            last_seen_ms: hot.last_seen / 1_000_000,
            sequence: cold.sequence.map(|s| SequenceReport {
                lost: s.lost,
                reordered: s.reordered,
                duplicated: s.duplicated,
                too_late: s.too_late,
                restarts: s.restarts,
            }),
        }
    }

    /// Does `other` describe the same stream (seen by another worker)?
    pub fn same_stream(&self, other: &StreamReport) -> bool {
        (
            &self.src_mac,
            self.src_ip,
            self.src_port,
            self.dst_port,
            self.signature,
        ) == (
            &other.src_mac,
            other.src_ip,
            other.src_port,
            other.dst_port,
            other.signature,
        )
    }

    /// Fold another worker's view of the same stream into this one.
    pub fn absorb(&mut self, other: &StreamReport) {
        self.frames += other.frames;
        self.bytes += other.bytes;
        self.first_seen_ms = self.first_seen_ms.min(other.first_seen_ms);
        self.last_seen_ms = self.last_seen_ms.max(other.last_seen_ms);
        if let Some(theirs) = other.sequence {
            let mine = self.sequence.get_or_insert_with(SequenceReport::default);
            mine.lost += theirs.lost;
            mine.reordered += theirs.reordered;
            mine.duplicated += theirs.duplicated;
            mine.too_late += theirs.too_late;
            mine.restarts += theirs.restarts;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16) -> StreamKey {
        StreamKey::new(
            MacAddr([0, 0xc0, 0x17, 0, 0, 1]),
            std::net::Ipv4Addr::new(192, 0, 2, 1)
                .to_ipv6_mapped()
                .octets(),
            port,
            862,
            Signature::Stamp,
            0,
        )
    }

    #[test]
    fn table_counts_caps_and_expires() {
        let limits = StreamLimits {
            capacity: 2,
            idle_timeout: Duration::from_secs(10),
        };
        let mut table = StreamTable::new(limits);
        let second = 1_000_000_000;
        assert!(table.record(key(1), 100, second, Some((0, 0))).is_some());
        assert!(table
            .record(key(1), 100, 2 * second, Some((2, 1)))
            .is_some());
        assert!(table.record(key(2), 60, 3 * second, None).is_some());
        assert!(table.record(key(3), 60, 3 * second, None).is_none());
        assert_eq!(table.untracked_frames, 1);
        let reports: Vec<_> = table.report().collect();
        let one = reports.iter().find(|r| r.src_port == 1).unwrap();
        assert_eq!((one.frames, one.bytes), (2, 200));
        assert_eq!((one.first_seen_ms, one.last_seen_ms), (1000, 2000));
        assert_eq!(one.sequence.unwrap().lost, 1);
        assert_eq!(one.src_ip, "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(one.src_mac, "00:c0:17:00:00:01");
        // Stream 1 was last seen at 2 s, stream 2 at 3 s: at 12.5 s only 2 remains.
        table.expire(12 * second + second / 2);
        assert_eq!(table.len(), 1);
        assert!(table.record(key(3), 60, 13 * second, None).is_some());
    }

    #[test]
    fn key_gives_back_its_fields() {
        let ip = std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 3, 4, 5, 6).octets();
        let mac = MacAddr([0xfe, 0xc0, 0x17, 0xaa, 0xbb, 0xcc]);
        let key = StreamKey::new(mac, ip, 0xfedc, 0x0102, Signature::Y1564, 0xbeef);
        assert_eq!((key.src_mac(), key.src_ip()), (mac, ip));
        assert_eq!((key.src_port(), key.dst_port()), (0xfedc, 0x0102));
        assert_eq!((key.signature(), key.ssid()), (Signature::Y1564, 0xbeef));
        let other = |ssid| StreamKey::new(mac, ip, 0xfedc, 0x0102, Signature::Y1564, ssid);
        assert_eq!(key, other(0xbeef));
        assert_ne!(key, other(0xbeee), "every field is part of the identity");
        for signature in Signature::ALL {
            assert_eq!(
                StreamKey::new(mac, ip, 1, 2, signature, 3).signature(),
                signature
            );
        }
    }

    #[test]
    fn tracking_off_records_nothing() {
        let mut table = StreamTable::new(StreamLimits {
            capacity: 0,
            ..StreamLimits::default()
        });
        assert!(table.record(key(1), 100, 1, None).is_none());
        assert_eq!(table.untracked_frames, 0);
    }
}
