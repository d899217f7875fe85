//! The reflector's shared core: everything between "a frame arrived" and "send it
//! back" that does not depend on the operating system.
//!
//! - [`signature`]: the table of test-frame signatures (the single source of truth).
//! - [`filter`]: what one reflector accepts (MAC, OUI, port, signatures, IPv6, VLAN).
//! - [`parse`]: header offsets and limits (the XDP program's C header is generated
//!   from them) and the [`Layout`] of an accepted frame.
//! - [`wire`]: typed views over Ethernet, VLAN, IPv4, IPv6, UDP and STAMP headers.
//! - [`mac`]: MAC addresses and OUIs, printed and parsed as `00:c0:17:...`.
//! - [`classify`](mod@classify): the accept/reject decision, with a [`reject`] reason for every
//!   rejection.
//! - [`reflect`](mod@reflect): in-place address swapping for the `mac`, `mac-ip` and `all` modes.
//! - [`stamp`]: the STAMP (RFC 8762) session-reflector, answering in place.
//! - [`safety`]: allow-list, per-source rate limit and loop timeout.
//! - [`streams`]: bounded per-stream statistics; [`sequence`]: their loss, reorder and
//!   duplicate counts.
//! - [`stats`]: per-worker counters, written by one worker and summed by readers.
//! - [`telemetry`]: dwell-time histogram and streams, published once a second.
//! - [`platform`]: the `Platform` trait every OS back end implements.
//! - [`worker`]: the batch loop, generic over `Platform`.
//! - [`frame`], [`checksum`]: building and checking test frames (the probe's too).
//! - `reference`, `edits` (feature `test-vectors`): the reference frames every
//!   filter's tests share, and edits that mutate them.
//! - [`histogram`]: latency percentiles (probe RTT, reflector dwell time).

#![forbid(unsafe_code)]

pub mod checksum;
pub mod classify;
#[cfg(any(test, feature = "test-vectors"))]
pub mod edits;
pub mod filter;
pub mod frame;
pub mod histogram;
pub mod mac;
pub mod parse;
pub mod platform;
#[cfg(any(test, feature = "test-vectors"))]
pub mod reference;
pub mod reflect;
pub mod reject;
pub mod safety;
pub mod sequence;
pub mod signature;
pub mod stamp;
pub mod stats;
pub mod streams;
pub mod telemetry;
mod variants;
pub mod wire;
pub mod worker;

pub use classify::{classify, Accepted};
pub use filter::{Broadcasts, DstMacFilter, Filter};
pub use mac::{MacAddr, Oui};
pub use parse::{IpVersion, Layout};
pub use platform::{Flow, Platform};
pub use reflect::{reflect, Mode};
pub use reject::Reject;
pub use signature::{Signature, SignatureSet};
pub use stamp::StampMode;
pub use stats::{Counters, KernelDrops, SharedCounters};
pub use telemetry::{Telemetry, TelemetryReport, WorkerShared};
pub use worker::{Worker, WorkerConfig};
