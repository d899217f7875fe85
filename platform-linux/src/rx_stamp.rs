//! Receive timestamps the XDP program writes in front of each frame it redirects.
//!
//! The program reads `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) the moment it runs, at
//! driver entry, and stores it with a magic number in the frame's XDP metadata, which
//! AF_XDP hands to user space in the [`RX_META_LEN`] bytes before the frame. That is
//! the earliest software receive time Linux offers: it leaves out the time the frame
//! then waits in the RX ring for the worker. User space turns it into wall-clock time
//! with the offset between the two clocks, read once per batch.

use crate::clock::nanos;
use xdp_filter::{RX_META_LEN, RX_META_MAGIC, RX_META_MAGIC_AT, RX_META_STAMP_AT};

/// A stamp older than this is not from the batch being processed (a recycled UMEM
/// chunk, a driver that ignored the metadata): the worker's own clock is used instead.
const MAX_AGE_NS: u64 = 1_000_000_000;

/// The two clocks, read together once per batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StampClock {
    monotonic_now: u64,
    wall_now: u64,
}

impl StampClock {
    /// Read CLOCK_MONOTONIC and CLOCK_REALTIME now.
    pub fn read() -> StampClock {
        StampClock {
            monotonic_now: nanos(libc::CLOCK_MONOTONIC),
            wall_now: nanos(libc::CLOCK_REALTIME),
        }
    }

    /// The CLOCK_MONOTONIC reading.
    pub fn monotonic(&self) -> u64 {
        self.monotonic_now
    }

    /// The wall-clock receive time in `meta`, if it holds a stamp from the last
    /// second (by this clock reading).
    pub fn decode(&self, meta: &[u8; RX_META_LEN]) -> Option<u64> {
        let magic = u32::from_ne_bytes(
            meta[RX_META_MAGIC_AT..RX_META_MAGIC_AT + 4]
                .try_into()
                .ok()?,
        );
        let stamp = u64::from_ne_bytes(
            meta[RX_META_STAMP_AT..RX_META_STAMP_AT + 8]
                .try_into()
                .ok()?,
        );
        let age = self.monotonic_now.checked_sub(stamp)?;
        (magic == RX_META_MAGIC && age <= MAX_AGE_NS).then(|| self.wall_now.saturating_sub(age))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(stamp: u64, magic: u32) -> [u8; RX_META_LEN] {
        let mut m = [0; RX_META_LEN];
        m[RX_META_STAMP_AT..RX_META_STAMP_AT + 8].copy_from_slice(&stamp.to_ne_bytes());
        m[RX_META_MAGIC_AT..RX_META_MAGIC_AT + 4].copy_from_slice(&magic.to_ne_bytes());
        m
    }

    #[test]
    fn stamps_become_wall_clock_times() {
        let clock = StampClock {
            monotonic_now: 50_000_000_000,
            wall_now: 1_795_000_000_000_000_000,
        };
        // Stamped 3 µs before the clocks were read.
        let at = clock.decode(&meta(49_999_997_000, RX_META_MAGIC));
        assert_eq!(at, Some(1_795_000_000_000_000_000 - 3_000));
    }

    #[test]
    fn stale_foreign_or_future_stamps_are_ignored() {
        let clock = StampClock {
            monotonic_now: 50_000_000_000,
            wall_now: 1_795_000_000_000_000_000,
        };
        assert_eq!(clock.decode(&meta(49_999_997_000, 0)), None, "no magic");
        assert_eq!(clock.decode(&[0; RX_META_LEN]), None, "cleared");
        assert_eq!(
            clock.decode(&meta(10_000_000_000, RX_META_MAGIC)),
            None,
            "40 s old"
        );
        assert_eq!(
            clock.decode(&meta(50_000_000_001, RX_META_MAGIC)),
            None,
            "future"
        );
    }

    #[test]
    fn real_clocks_read_sensibly() {
        let clock = StampClock::read();
        assert!(clock.wall_now > 1_600_000_000_000_000_000);
        assert!(clock.monotonic_now > 0);
    }
}
