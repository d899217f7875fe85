//! What a worker publishes besides its counters: the dwell-time histogram, its streams
//! and whether the loop timeout has ended reflection.
//!
//! Counters are published every batch with relaxed stores ([`crate::stats`]); these
//! are larger, so the worker publishes them about once a second under a mutex it only
//! ever *tries* to take, so a slow reader can delay a publication but never the worker.

use crate::filter::SharedBroadcasts;
use crate::histogram::{Buckets, Histogram, Percentiles};
use crate::stats::SharedCounters;
use crate::streams::StreamReport;
use serde::{Deserialize, Serialize};
use std::sync::{Mutex, TryLockError};

/// One worker's published telemetry, or the merge of several.
#[derive(Clone, Debug, Default)]
pub struct Telemetry {
    /// Time from a batch's arrival to its hand-off to the transmitter, per frame.
    pub dwell: Histogram,
    pub streams: Vec<StreamReport>,
    /// Frames of streams the full stream table could not track.
    pub untracked_frames: u64,
    /// Frames whose receive time the platform stamped (XDP program, BPF header)
    /// rather than the worker's clock at batch arrival.
    pub platform_stamped_frames: u64,
    /// The loop timeout has passed: the worker no longer reflects.
    pub loop_timed_out: bool,
}

impl Telemetry {
    /// Combine workers' telemetry; a stream seen by two workers becomes one.
    pub fn merge<'a>(parts: impl IntoIterator<Item = &'a Telemetry>) -> Telemetry {
        let mut total = Telemetry::default();
        let mut any = false;
        let mut all_timed_out = true;
        for part in parts {
            any = true;
            all_timed_out &= part.loop_timed_out;
            total.dwell.merge(&part.dwell);
            total.untracked_frames += part.untracked_frames;
            total.platform_stamped_frames += part.platform_stamped_frames;
            for stream in &part.streams {
                match total.streams.iter_mut().find(|s| s.same_stream(stream)) {
                    Some(known) => known.absorb(stream),
                    None => total.streams.push(stream.clone()),
                }
            }
        }
        total.loop_timed_out = any && all_timed_out;
        total
            .streams
            .sort_by(|a, b| b.frames.cmp(&a.frames).then(a.src_port.cmp(&b.src_port)));
        total
    }

    /// The wire form, with the histogram summarised.
    pub fn report(&self) -> TelemetryReport {
        TelemetryReport {
            dwell_ns: self.dwell.percentiles(),
            dwell_buckets: self.dwell.buckets(),
            streams: self.streams.clone(),
            untracked_frames: self.untracked_frames,
            platform_stamped_frames: self.platform_stamped_frames,
            loop_timed_out: self.loop_timed_out,
        }
    }
}

/// [`Telemetry`] as JSON readers (the control plane) see it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TelemetryReport {
    /// Reflector dwell time (receive to transmit hand-off), nanoseconds.
    pub dwell_ns: Percentiles,
    /// The same dwell times as cumulative counts at fixed bounds (a Prometheus
    /// histogram).
    pub dwell_buckets: Buckets,
    /// Streams, busiest first.
    pub streams: Vec<StreamReport>,
    pub untracked_frames: u64,
    /// Frames timestamped by the platform at arrival (see [`Telemetry`]).
    pub platform_stamped_frames: u64,
    pub loop_timed_out: bool,
}

/// Everything one worker publishes; shared between the worker and readers.
#[derive(Debug, Default)]
pub struct WorkerShared {
    pub counters: SharedCounters,
    /// The other way round: the interface's directed broadcasts, when they change.
    pub broadcasts: SharedBroadcasts,
    telemetry: Mutex<Telemetry>,
}

impl WorkerShared {
    /// Publish `telemetry` unless a reader holds the lock; returns whether it did.
    /// Only the owning worker calls this.
    pub fn try_publish(&self, telemetry: impl FnOnce(&mut Telemetry)) -> bool {
        let mut slot = match self.telemetry.try_lock() {
            Ok(slot) => slot,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return false,
        };
        telemetry(&mut slot);
        true
    }

    /// A copy of the last published telemetry.
    pub fn telemetry(&self) -> Telemetry {
        self.telemetry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}
