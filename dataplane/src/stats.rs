//! Per-worker counters.
//!
//! A worker counts into a plain [`Counters`] it owns, then publishes the totals to its
//! [`SharedCounters`] once per batch with relaxed *stores*. It is the only writer, so no
//! read-modify-write atomics and no locks are needed; readers load each cell and sum
//! across workers. A reader may see one counter from batch N and another from batch
//! N+1; every counter is monotonic, which is all rate computation needs.

use crate::reject::Reject;
use crate::signature::Signature;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Totals of one worker, or the sum of several.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "CountersReport", try_from = "CountersReport")]
pub struct Counters {
    /// Frames handed to the worker by the platform.
    pub received: u64,
    /// Frames reflected and queued for transmission.
    pub reflected: u64,
    /// Bytes of all received frames.
    pub rx_bytes: u64,
    /// Bytes of reflected frames.
    pub tx_bytes: u64,
    /// Reflected frames the platform could not transmit.
    pub tx_errors: u64,
    /// STAMP packets that arrived with a wrong UDP checksum (answered with a right
    /// one): typically a same-host or VM sender with TX checksum offload.
    pub stamp_bad_checksum: u64,
    /// Reflected frames per signature, indexed by [`Signature::index`].
    pub per_signature: [u64; Signature::COUNT],
    /// Refused frames per reason, indexed by [`Reject::index`].
    pub per_reject: [u64; Reject::COUNT],
    /// What the kernel dropped at the worker's socket before the worker saw it.
    pub kernel: KernelDrops,
}

/// The kernel's own counters for one socket (AF_XDP `XDP_STATISTICS`, AF_PACKET
/// `PACKET_STATISTICS`), read by the worker about once a second. Frames counted in
/// [`KernelDrops::rx_dropped`] or [`KernelDrops::rx_ring_full`] reached the socket but
/// never the worker, and those in [`KernelDrops::unserved_queue`] never reached a
/// socket, so `received + lost()` is everything that arrived.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelDrops {
    /// Frames dropped for want of a receive buffer (AF_XDP: no free UMEM frame on the
    /// fill ring, or a frame too large for one).
    pub rx_dropped: u64,
    /// Frames dropped because the receive ring (AF_XDP) or socket buffer (AF_PACKET)
    /// was full: the worker was too slow.
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty (no free UMEM frame). Not a frame
    /// count: in copy mode each such frame is also in `rx_dropped`.
    pub fill_ring_empty: u64,
    /// Transmit descriptors the kernel refused as invalid.
    pub tx_invalid: u64,
    /// Test frames that arrived on a receive queue no worker serves (`--queues` below
    /// the interface's count): the XDP program passes them to the host stack
    /// unanswered.
    pub unserved_queue: u64,
}

impl KernelDrops {
    /// Test frames that arrived and were lost before a worker saw them.
    pub fn lost(&self) -> u64 {
        self.rx_dropped + self.rx_ring_full + self.unserved_queue
    }

    /// Whether any counter is non-zero (the human stats line shows them only then).
    pub fn any(&self) -> bool {
        *self != KernelDrops::default()
    }
}

impl Counters {
    /// Frames refused for any reason.
    pub fn rejected(&self) -> u64 {
        self.per_reject.iter().sum()
    }

    pub fn signature(&self, signature: Signature) -> u64 {
        self.per_signature[signature.index()]
    }

    pub fn reject(&self, reason: Reject) -> u64 {
        self.per_reject[reason.index()]
    }

    /// Add `other` into `self` (summing workers, or carrying totals across restarts).
    pub fn accumulate(&mut self, other: &Counters) {
        for (mine, theirs) in self.cells_mut().zip(other.cells()) {
            *mine += theirs;
        }
    }

    /// Every counter in a fixed order; [`SharedCounters`] stores them in this order.
    fn cells(&self) -> impl Iterator<Item = u64> + '_ {
        [
            self.received,
            self.reflected,
            self.rx_bytes,
            self.tx_bytes,
            self.tx_errors,
            self.stamp_bad_checksum,
            self.kernel.rx_dropped,
            self.kernel.rx_ring_full,
            self.kernel.fill_ring_empty,
            self.kernel.tx_invalid,
            self.kernel.unserved_queue,
        ]
        .into_iter()
        .chain(self.per_signature.iter().copied())
        .chain(self.per_reject.iter().copied())
    }

    fn cells_mut(&mut self) -> impl Iterator<Item = &mut u64> {
        [
            &mut self.received,
            &mut self.reflected,
            &mut self.rx_bytes,
            &mut self.tx_bytes,
            &mut self.tx_errors,
            &mut self.stamp_bad_checksum,
            &mut self.kernel.rx_dropped,
            &mut self.kernel.rx_ring_full,
            &mut self.kernel.fill_ring_empty,
            &mut self.kernel.tx_invalid,
            &mut self.kernel.unserved_queue,
        ]
        .into_iter()
        .chain(self.per_signature.iter_mut())
        .chain(self.per_reject.iter_mut())
    }
}

const CELLS: usize = 11 + Signature::COUNT + Reject::COUNT;

/// The published copy of one worker's counters. Cache-line aligned so two workers'
/// counters never share a line.
#[repr(align(64))]
#[derive(Debug)]
pub struct SharedCounters {
    cells: [AtomicU64; CELLS],
}

impl Default for SharedCounters {
    fn default() -> Self {
        SharedCounters {
            cells: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl SharedCounters {
    /// Publish `counters`. Only the owning worker may call this.
    pub fn publish(&self, counters: &Counters) {
        for (cell, value) in self.cells.iter().zip(counters.cells()) {
            cell.store(value, Ordering::Relaxed);
        }
    }

    /// Read the last published values.
    pub fn snapshot(&self) -> Counters {
        let mut counters = Counters::default();
        for (value, cell) in counters.cells_mut().zip(&self.cells) {
            *value = cell.load(Ordering::Relaxed);
        }
        counters
    }
}

/// Sum the published counters of several workers.
pub fn sum<'a>(workers: impl IntoIterator<Item = &'a SharedCounters>) -> Counters {
    let mut total = Counters::default();
    for worker in workers {
        total.accumulate(&worker.snapshot());
    }
    total
}

/// The wire form of [`Counters`]: named maps instead of positional arrays, so JSON
/// readers (the control plane, scripts) do not depend on enum order.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CountersReport {
    pub received: u64,
    pub reflected: u64,
    pub rejected: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub tx_errors: u64,
    /// Absent in lines from before it was reported.
    #[serde(default)]
    pub stamp_bad_checksum: u64,
    pub signatures: BTreeMap<String, u64>,
    pub rejects: BTreeMap<String, u64>,
    /// [`KernelDrops`], flat; absent in lines from before they were reported.
    #[serde(default)]
    pub kernel_rx_dropped: u64,
    #[serde(default)]
    pub kernel_rx_ring_full: u64,
    #[serde(default)]
    pub kernel_fill_ring_empty: u64,
    #[serde(default)]
    pub kernel_tx_invalid: u64,
    #[serde(default)]
    pub kernel_unserved_queue: u64,
}

impl From<Counters> for CountersReport {
    fn from(c: Counters) -> Self {
        CountersReport {
            received: c.received,
            reflected: c.reflected,
            rejected: c.rejected(),
            rx_bytes: c.rx_bytes,
            tx_bytes: c.tx_bytes,
            tx_errors: c.tx_errors,
            stamp_bad_checksum: c.stamp_bad_checksum,
            signatures: Signature::ALL
                .iter()
                .map(|s| (s.name().to_owned(), c.signature(*s)))
                .collect(),
            rejects: Reject::ALL
                .iter()
                .map(|r| (r.name().to_owned(), c.reject(*r)))
                .collect(),
            kernel_rx_dropped: c.kernel.rx_dropped,
            kernel_rx_ring_full: c.kernel.rx_ring_full,
            kernel_fill_ring_empty: c.kernel.fill_ring_empty,
            kernel_tx_invalid: c.kernel.tx_invalid,
            kernel_unserved_queue: c.kernel.unserved_queue,
        }
    }
}

/// A report naming a signature or reason this build does not know.
#[derive(Debug, thiserror::Error)]
#[error(
    "counters report names unknown {kind} {name:?}; is the reflector binary newer than its reader?"
)]
pub struct UnknownCounter {
    kind: &'static str,
    name: String,
}

impl TryFrom<CountersReport> for Counters {
    type Error = UnknownCounter;

    fn try_from(report: CountersReport) -> Result<Self, Self::Error> {
        let mut c = Counters {
            received: report.received,
            reflected: report.reflected,
            rx_bytes: report.rx_bytes,
            tx_bytes: report.tx_bytes,
            tx_errors: report.tx_errors,
            stamp_bad_checksum: report.stamp_bad_checksum,
            kernel: KernelDrops {
                rx_dropped: report.kernel_rx_dropped,
                rx_ring_full: report.kernel_rx_ring_full,
                fill_ring_empty: report.kernel_fill_ring_empty,
                tx_invalid: report.kernel_tx_invalid,
                unserved_queue: report.kernel_unserved_queue,
            },
            ..Counters::default()
        };
        for (name, value) in report.signatures {
            let signature = Signature::ALL
                .into_iter()
                .find(|s| s.name() == name)
                .ok_or(UnknownCounter {
                    kind: "signature",
                    name,
                })?;
            c.per_signature[signature.index()] = value;
        }
        for (name, value) in report.rejects {
            let reason =
                Reject::ALL
                    .into_iter()
                    .find(|r| r.name() == name)
                    .ok_or(UnknownCounter {
                        kind: "reject reason",
                        name,
                    })?;
            c.per_reject[reason.index()] = value;
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seed: u64) -> Counters {
        let mut c = Counters {
            received: seed * 10,
            reflected: seed * 7,
            rx_bytes: seed * 640,
            tx_bytes: seed * 448,
            tx_errors: seed,
            stamp_bad_checksum: seed * 8,
            kernel: KernelDrops {
                rx_dropped: seed * 2,
                rx_ring_full: seed * 5,
                fill_ring_empty: seed * 4,
                tx_invalid: seed * 6,
                unserved_queue: seed * 9,
            },
            ..Counters::default()
        };
        c.per_signature[Signature::Latency.index()] = seed * 7;
        c.per_reject[Reject::PortMismatch.index()] = seed * 3;
        c
    }

    #[test]
    fn publish_then_snapshot_round_trips() {
        let shared = SharedCounters::default();
        shared.publish(&sample(3));
        assert_eq!(shared.snapshot(), sample(3));
    }

    #[test]
    fn sum_adds_every_cell() {
        let workers = [SharedCounters::default(), SharedCounters::default()];
        workers[0].publish(&sample(1));
        workers[1].publish(&sample(2));
        let total = sum(&workers);
        assert_eq!(total, sample(3));
        assert_eq!(total.rejected(), 9);
    }

    #[test]
    fn json_uses_names_and_round_trips() {
        let json = serde_json::to_string(&sample(2)).unwrap();
        assert!(json.contains("\"LATENCY\":14"), "{json}");
        assert!(json.contains("\"port_mismatch\":6"), "{json}");
        assert!(json.contains("\"rejected\":6"), "{json}");
        assert_eq!(serde_json::from_str::<Counters>(&json).unwrap(), sample(2));
    }

    #[test]
    fn lines_without_kernel_counters_still_parse() {
        let mut json: serde_json::Value = serde_json::to_value(sample(2)).unwrap();
        let map = json.as_object_mut().unwrap();
        map.retain(|key, _| !key.starts_with("kernel_"));
        let parsed: Counters = serde_json::from_value(json).unwrap();
        assert_eq!(parsed.kernel, KernelDrops::default());
        assert_eq!(parsed.received, sample(2).received);
    }

    #[test]
    fn kernel_losses_are_the_dropped_frames_not_the_fill_ring_events() {
        let c = sample(1);
        // rx_dropped 2 + rx_ring_full 5 + unserved_queue 9; not fill_ring_empty 4.
        assert_eq!(c.kernel.lost(), 16);
        assert!(c.kernel.any());
        assert!(!KernelDrops::default().any());
    }

    #[test]
    fn unknown_names_are_refused_with_a_hint() {
        let mut report = CountersReport::from(sample(1));
        report.rejects.insert("cosmic_ray".into(), 1);
        let err = Counters::try_from(report).unwrap_err();
        assert!(err.to_string().contains("cosmic_ray"));
    }
}
