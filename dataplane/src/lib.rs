//! The reflector's shared core: everything between "a frame arrived" and "send it
//! back" that does not depend on the operating system.
//!
//! - [`signature`]: the table of test-frame signatures (the single source of truth).
//! - [`filter`]: what one reflector accepts (MAC, OUI, port, signatures, IPv6, VLAN).
//! - [`parse`]: header layouts and accessors over raw bytes.
//! - [`classify`]: the accept/reject decision with a reason for every rejection.
//! - [`reflect`]: in-place address swapping for the `mac`, `mac-ip` and `all` modes.
//! - [`stamp`]: the STAMP (RFC 8762) session-reflector, answering in place.
//! - [`safety`]: allow-list, per-source rate limit and loop timeout.
//! - [`streams`]: bounded per-stream statistics with loss/reorder/duplicate counts.
//! - [`stats`]: per-worker counters, written by one worker and summed by readers.
//! - [`telemetry`]: dwell-time histogram and streams, published once a second.
//! - [`platform`]: the `Platform` trait every OS back end implements.
//! - [`worker`]: the batch loop, generic over `Platform`.
//! - [`frame`], [`checksum`], [`reference`], [`edits`]: building, checking and
//!   mutating test frames.
//! - [`histogram`]: latency percentiles (probe RTT, reflector dwell time).

pub mod checksum;
pub mod classify;
pub mod edits;
pub mod filter;
pub mod frame;
pub mod histogram;
pub mod parse;
pub mod platform;
pub mod reference;
pub mod reflect;
pub mod safety;
pub mod signature;
pub mod stamp;
pub mod stats;
pub mod streams;
pub mod telemetry;
pub mod worker;

pub use classify::{classify, Accepted, Reject};
pub use filter::{DstMacFilter, Filter};
pub use parse::{IpVersion, Layout, MacAddr};
pub use platform::{Flow, Platform};
pub use reflect::{reflect, Mode};
pub use signature::{Signature, SignatureSet};
pub use stamp::StampMode;
pub use stats::{Counters, SharedCounters};
pub use telemetry::{Telemetry, TelemetryReport, WorkerShared};
pub use worker::{Worker, WorkerConfig};
