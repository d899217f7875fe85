//! Per-stream statistics: who is sending what, and — for STAMP, whose packets carry a
//! sequence number — how much of it was lost, reordered or duplicated on the way in.
//!
//! A stream is (source MAC, source IP, source port, destination port, signature, and
//! for STAMP the RFC 8972 session identifier): two SSIDs on one 5-tuple are two STAMP
//! sessions, each with its own sequence tracking, stateful numbering and Direct
//! Measurement counts. Reports fold them back into one stream per 5-tuple. Each
//! worker owns a [`StreamTable`] whose memory is fixed when it is built: the map is
//! sized for `capacity` streams and never grows, streams idle longer than the idle
//! timeout are dropped by [`StreamTable::expire`], and frames of new streams that find
//! the table full are counted as untracked rather than tracked. Frames from one
//! source flow land on one RX queue, so a stream normally lives in one worker's table.

use crate::classify::Accepted;
use crate::mac::MacAddr;
use crate::parse::{IpVersion, Layout};
use crate::sequence::{Arrival, SequenceTracker};
use crate::signature::Signature;
use crate::wire::{EthernetFrame, Ipv4Packet, Ipv6Packet, StampPacket, UdpDatagram};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

/// What identifies a stream. Read from the frame *before* it is reflected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamKey {
    pub src_mac: MacAddr,
    /// IPv6, or IPv4 as an IPv4-mapped IPv6 address.
    pub src_ip: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    pub signature: Signature,
    /// STAMP session identifier (RFC 8972 section 3); 0 for other signatures.
    pub ssid: u16,
}

impl StreamKey {
    /// The key of an accepted, not yet reflected, frame.
    #[inline]
    pub fn of(frame: &[u8], accepted: &Accepted) -> StreamKey {
        let layout = &accepted.layout;
        let udp = UdpDatagram::new_unchecked(&frame[layout.l4..]);
        let ssid = match accepted.signature {
            Signature::Stamp => StampPacket::new_unchecked(&frame[layout.payload()..]).ssid(),
            _ => 0,
        };
        StreamKey {
            src_mac: EthernetFrame::new_unchecked(frame).src_addr(),
            src_ip: source_ip(frame, layout),
            src_port: udp.src_port(),
            dst_port: udp.dst_port(),
            signature: accepted.signature,
            ssid,
        }
    }
}

/// Hashed as four words rather than field by field: the derived impl feeds FxHash a
/// chain of ten-odd dependent multiplications per frame, the top cost of the pipeline
/// profile. Equal keys still hash equally, which is all the table relies on.
impl Hash for StreamKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        let [ip_hi, ip_lo] = [&self.src_ip[..8], &self.src_ip[8..]]
            .map(|half| u64::from_le_bytes(half.try_into().expect("8 bytes")));
        let mut mac = [0u8; 8];
        mac[..6].copy_from_slice(&self.src_mac.0);
        state.write_u64(ip_hi);
        state.write_u64(ip_lo);
        state.write_u64(u64::from_le_bytes(mac) ^ (u64::from(self.src_port) << 48));
        state.write_u64(
            u64::from(self.dst_port)
                | u64::from(self.signature as u8) << 16
                | u64::from(self.ssid) << 32,
        );
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

/// One stream's running totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamState {
    pub frames: u64,
    pub bytes: u64,
    /// Wall-clock time, nanoseconds since the Unix epoch.
    pub first_seen: u64,
    pub last_seen: u64,
    /// Present once a sequence-numbered (STAMP) frame has been seen.
    pub sequence: Option<SequenceTracker>,
    /// The current STAMP session: since the stream began or the sender last
    /// restarted its numbering.
    pub session: SessionCounts,
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

/// One worker's streams, bounded in memory.
#[derive(Debug)]
pub struct StreamTable {
    streams: FxHashMap<StreamKey, StreamState>,
    limits: StreamLimits,
    /// Frames of streams that found the table full.
    pub untracked_frames: u64,
}

impl StreamTable {
    /// Allocates room for `limits.capacity` streams now; recording never allocates.
    pub fn new(limits: StreamLimits) -> Self {
        let mut streams = FxHashMap::default();
        streams.reserve(limits.capacity);
        StreamTable {
            streams,
            limits,
            untracked_frames: 0,
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.limits.capacity > 0
    }

    pub fn len(&self) -> usize {
        self.streams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Count one frame of `len` bytes at wall-clock `now` (ns since the epoch), with
    /// its sequence number and sender timestamp if it carries them. Returns the
    /// stream, or `None` if it is not tracked (table full or tracking off).
    #[inline]
    pub fn record(
        &mut self,
        key: StreamKey,
        len: usize,
        now: u64,
        sequence: Option<(u32, u64)>,
    ) -> Option<&mut StreamState> {
        if !self.is_enabled() {
            return None;
        }
        let full = self.streams.len() >= self.limits.capacity;
        if full && !self.streams.contains_key(&key) {
            self.untracked_frames += 1;
            return None;
        }
        let state = self.streams.entry(key).or_insert(StreamState {
            first_seen: now,
            ..StreamState::default()
        });
        state.frames += 1;
        state.bytes += len as u64;
        state.last_seen = now;
        if let Some((sequence, sent_at)) = sequence {
            let tracker = state.sequence.get_or_insert_with(SequenceTracker::default);
            if tracker.observe(sequence, sent_at) == Arrival::RunStart {
                state.session = SessionCounts::default();
            }
            state.session.received = state.session.received.wrapping_add(1);
        }
        Some(state)
    }

    /// Forget streams idle since before `now - idle_timeout`.
    pub fn expire(&mut self, now: u64) {
        let idle = self.limits.idle_timeout.as_nanos() as u64;
        self.streams
            .retain(|_, state| now.saturating_sub(state.last_seen) <= idle);
    }

    /// Every tracked stream, for publication.
    pub fn report(&self) -> impl Iterator<Item = StreamReport> + '_ {
        self.streams
            .iter()
            .map(|(key, state)| StreamReport::new(key, state))
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
    fn new(key: &StreamKey, state: &StreamState) -> Self {
        let ip = Ipv6Addr::from(key.src_ip);
        StreamReport {
            src_mac: key.src_mac.to_string(),
            src_ip: ip.to_ipv4_mapped().map_or(IpAddr::V6(ip), IpAddr::V4),
            src_port: key.src_port,
            dst_port: key.dst_port,
            signature: key.signature,
            frames: state.frames,
            bytes: state.bytes,
            first_seen_ms: state.first_seen / 1_000_000,
            last_seen_ms: state.last_seen / 1_000_000,
            sequence: state.sequence.map(|s| SequenceReport {
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
        StreamKey {
            src_mac: MacAddr([0, 0xc0, 0x17, 0, 0, 1]),
            src_ip: std::net::Ipv4Addr::new(192, 0, 2, 1)
                .to_ipv6_mapped()
                .octets(),
            src_port: port,
            dst_port: 862,
            signature: Signature::Stamp,
            ssid: 0,
        }
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
    fn tracking_off_records_nothing() {
        let mut table = StreamTable::new(StreamLimits {
            capacity: 0,
            ..StreamLimits::default()
        });
        assert!(table.record(key(1), 100, 1, None).is_none());
        assert_eq!(table.untracked_frames, 0);
    }
}
