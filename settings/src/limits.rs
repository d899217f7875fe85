//! The bounds [`crate::Settings::validate`] holds settings to, and the one default
//! the worker applies itself.

/// Longest stream idle time and loop timeout: a year.
pub const MAX_SECONDS: u64 = 31_536_000;

/// Most streams a worker may be asked to track. Each worker sizes its stream table
/// for `max_streams` up front (about 300 bytes a stream), so the bound keeps a typo
/// from costing gigabytes per queue.
pub const MAX_STREAMS: usize = 1_000_000;

/// Most prefixes in `allow`: every candidate frame is checked against each of them.
pub const MAX_ALLOW_PREFIXES: usize = 256;

/// Highest rate limit: the worker's token bucket counts in nanoseconds, so a faster
/// rate would be no limit at all.
pub const MAX_RATE_LIMIT_PPS: u64 = 1_000_000_000;

/// Frames a source may send back-to-back above the rate limit, unless set.
pub const DEFAULT_RATE_BURST: u32 = 64;
