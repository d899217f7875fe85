//! Reflector safety: limits on *whom* and *how much* the reflector answers.
//!
//! The frames the spec says must never be reflected are refused by
//! [`crate::classify()`] already. On top of that, after a frame is classified, the
//! worker applies this policy in order:
//!
//! 1. **Loop timeout**: after the configured time the worker stops reflecting, so a
//!    forgotten session (or two reflectors pointed at each other) cannot run forever.
//! 2. **Allow-list**: only sources inside the listed prefixes are answered.
//! 3. **Rate limit**: each source IP gets a token bucket; frames beyond it are dropped.
//!
//! Each refusal has its own [`crate::Reject`] counter.

use crate::parse::Layout;
use crate::streams::source_ip;
use ipnet::IpNet;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

/// The safety settings of one reflector. The default is on and permissive: no
/// allow-list, no rate limit, no timeout; the never-reflect rules always apply.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Safety {
    /// Source prefixes that may be answered; empty answers every source.
    pub allow: Vec<IpNet>,
    pub rate_limit: Option<RateLimit>,
    /// Stop reflecting this long after the worker starts.
    pub loop_timeout: Option<Duration>,
}

/// A token bucket per source IP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Sustained frames per second each source may have reflected.
    pub per_source_pps: u64,
    /// Frames a source may send back-to-back above that rate.
    pub burst: u32,
}

impl RateLimit {
    /// The GCRA form of the bucket: nanoseconds of credit one frame costs, and how far
    /// ahead of now a source's arrival time may run (the burst). The XDP program's
    /// limiter is configured from the same two numbers.
    pub fn gcra(&self) -> (u64, u64) {
        let interval = 1_000_000_000 / self.per_source_pps.max(1);
        (interval, interval * u64::from(self.burst.max(1) - 1))
    }
}

/// The allow-list check, precomputed for the hot path.
#[derive(Clone, Debug, Default)]
pub struct AllowList {
    prefixes: Vec<IpNet>,
}

impl AllowList {
    pub fn new(prefixes: &[IpNet]) -> Self {
        AllowList {
            prefixes: prefixes.iter().map(IpNet::trunc).collect(),
        }
    }

    /// Is the source of this classified frame allowed?
    #[inline]
    pub fn admits(&self, frame: &[u8], layout: &Layout) -> bool {
        self.prefixes.is_empty() || self.contains(source_ip(frame, layout))
    }

    fn contains(&self, mapped: [u8; 16]) -> bool {
        let v6 = Ipv6Addr::from(mapped);
        let ip = v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4);
        self.prefixes.iter().any(|prefix| prefix.contains(&ip))
    }
}

/// Per-source token buckets in the GCRA form: one "theoretical arrival time" per
/// source instead of a token count and a refill time, so a check is a compare and
/// an add. Bounded like the stream table: sources that find the table full share one
/// bucket, so a flood from many addresses is still limited as a whole.
#[derive(Debug)]
pub struct RateLimiter {
    /// Nanoseconds of credit one frame costs.
    interval: u64,
    /// How far ahead of now a source's arrival time may run (the burst).
    tolerance: u64,
    sources: FxHashMap<[u8; 16], u64>,
    capacity: usize,
    overflow: u64,
}

/// Sources tracked per worker by the rate limiter.
pub const RATE_LIMIT_SOURCES: usize = 4096;

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        let (interval, tolerance) = limit.gcra();
        let mut sources = FxHashMap::default();
        sources.reserve(RATE_LIMIT_SOURCES);
        RateLimiter {
            interval,
            tolerance,
            sources,
            capacity: RATE_LIMIT_SOURCES,
            overflow: 0,
        }
    }

    /// May a frame from this source go out at monotonic time `now` (ns)?
    #[inline]
    pub fn admits(&mut self, frame: &[u8], layout: &Layout, now: u64) -> bool {
        let source = source_ip(frame, layout);
        let full = self.sources.len() >= self.capacity;
        let arrival = if full && !self.sources.contains_key(&source) {
            &mut self.overflow
        } else {
            self.sources.entry(source).or_insert(0)
        };
        conform(arrival, now, self.interval, self.tolerance)
    }

    /// Forget sources whose bucket is full again: they are indistinguishable from
    /// new ones, and the room goes to sources that are sending now.
    pub fn expire(&mut self, now: u64) {
        self.sources.retain(|_, arrival| *arrival > now);
    }
}

/// GCRA: conforming if the theoretical arrival time is at most `tolerance` ahead.
#[inline]
fn conform(arrival: &mut u64, now: u64, interval: u64, tolerance: u64) -> bool {
    let tat = (*arrival).max(now);
    if tat - now > tolerance {
        return false;
    }
    *arrival = tat + interval;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FrameBuilder;
    use crate::signature::Signature;
    use crate::{classify, Filter, MacAddr};

    fn frame_from(src: [u8; 4]) -> (Vec<u8>, Layout) {
        let mut builder = FrameBuilder::ipv4(
            MacAddr([0, 0xc0, 0x17, 0, 0, 1]),
            MacAddr([2, 0, 0, 0, 0, 2]),
            Signature::Rfc2544,
        );
        if let crate::frame::IpSpec::V4 { src: s, dst, .. } = &mut builder.ip {
            *s = src;
            // Outside the sources the tests use: source == destination is refused.
            *dst = [203, 0, 113, 9];
        }
        let frame = builder.build();
        let layout = classify(&frame, &Filter::default()).unwrap().layout;
        (frame, layout)
    }

    #[test]
    fn allow_list_matches_prefixes_of_both_families() {
        let list = AllowList::new(&[
            "192.0.2.0/25".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ]);
        let (inside, layout) = frame_from([192, 0, 2, 1]);
        assert!(list.admits(&inside, &layout));
        let (outside, layout) = frame_from([192, 0, 2, 200]);
        assert!(!list.admits(&outside, &layout));
        assert!(AllowList::default().admits(&outside, &layout));
    }

    #[test]
    fn bucket_allows_burst_then_the_sustained_rate() {
        let mut limiter = RateLimiter::new(RateLimit {
            per_source_pps: 1000,
            burst: 5,
        });
        let (frame, layout) = frame_from([192, 0, 2, 1]);
        let at_once = (0..20)
            .filter(|_| limiter.admits(&frame, &layout, 0))
            .count();
        assert_eq!(at_once, 5);
        // One more frame's worth of credit every millisecond.
        assert!(!limiter.admits(&frame, &layout, 999_999));
        assert!(limiter.admits(&frame, &layout, 1_000_000));
        // Another source has its own bucket.
        let (other, layout) = frame_from([192, 0, 2, 2]);
        assert!(limiter.admits(&other, &layout, 1_000_000));
    }

    #[test]
    fn sources_beyond_capacity_share_one_bucket() {
        let mut limiter = RateLimiter::new(RateLimit {
            per_source_pps: 1,
            burst: 1,
        });
        limiter.capacity = 1;
        let (a, la) = frame_from([192, 0, 2, 1]);
        let (b, lb) = frame_from([192, 0, 2, 2]);
        let (c, lc) = frame_from([192, 0, 2, 3]);
        assert!(limiter.admits(&a, &la, 0));
        assert!(limiter.admits(&b, &lb, 0));
        assert!(
            !limiter.admits(&c, &lc, 0),
            "b and c share the overflow bucket"
        );
        limiter.expire(2_000_000_000);
        assert!(limiter.sources.is_empty());
    }
}
