//! What the control plane shows of its reflectors: the shapes the REST API, the live
//! event stream and the metrics serialize. The supervisor produces them; everyone
//! else only reads them, so they depend on nothing else in the control plane.

use crate::config::{ReflectorForm, ReflectorSettings};
use dataplane::histogram::{Buckets, Percentiles};
use dataplane::stats::CountersReport;
use dataplane::streams::StreamReport;
use dataplane::TelemetryReport;
use serde::Serialize;
use settings::events::{PlatformInfo, Rates};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Stopped,
    /// Spawned, not yet reported that it runs.
    Starting,
    Running,
    /// Waiting to restart a worker that died or failed to start.
    Backoff,
    /// Its interface does not exist (yet); the worker starts when it appears.
    WaitingForInterface,
}

/// What a reflector looks like from outside.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Reflector)]
pub struct ReflectorView {
    pub id: String,
    pub state: RunState,
    #[schema(value_type = ReflectorForm)]
    pub settings: ReflectorSettings,
    pub pid: Option<u32>,
    /// Times the worker died and was restarted.
    pub restarts: u64,
    /// What the running worker got from the platform (driver mode, zero-copy...).
    pub platform: Option<PlatformInfo>,
    pub uptime_s: Option<f64>,
    pub last_error: Option<String>,
    /// The worker reported that its loop timeout has passed: it runs but no longer
    /// reflects (frames are dropped and counted as `loop_timeout`). Stays set after
    /// the worker stops, until the next worker starts.
    pub loop_timed_out: bool,
    /// Seconds left until the session's loop timeout (0 once it has passed); null
    /// without a loop timeout or when stopped.
    pub loop_timeout_remaining_s: Option<f64>,
}

/// What the latest worker reported besides its counters (per worker run: a restart
/// starts afresh). The streams themselves are served by `streams`.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
#[schema(as = Telemetry)]
pub struct TelemetrySummary {
    /// Dwell time (frame received to handed to the transmitter), nanoseconds.
    pub dwell_ns: Percentiles,
    /// The same as cumulative counts: `le[i]` samples at or below `bounds_ns[i]`
    /// (fixed bounds, 250 ns to 1 s), of `count` in all; `/metrics` exports them as
    /// the `reflector_dwell_seconds` histogram.
    pub dwell_buckets: Buckets,
    /// Streams tracked.
    pub streams: usize,
    /// Frames of streams the full stream tables could not track.
    pub untracked_frames: u64,
    /// Frames whose receive time the platform stamped at arrival (XDP, BPF header).
    pub platform_stamped_frames: u64,
    pub loop_timed_out: bool,
}

impl From<&TelemetryReport> for TelemetrySummary {
    fn from(t: &TelemetryReport) -> Self {
        TelemetrySummary {
            dwell_ns: t.dwell_ns,
            dwell_buckets: t.dwell_buckets.clone(),
            streams: t.streams.len(),
            untracked_frames: t.untracked_frames,
            platform_stamped_frames: t.platform_stamped_frames,
            loop_timed_out: t.loop_timed_out,
        }
    }
}

/// The streams of one reflector's latest worker, busiest first.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Streams)]
pub struct StreamsView {
    pub id: String,
    /// Streams tracked, including any left out by the limit.
    pub total: usize,
    pub untracked_frames: u64,
    pub streams: Vec<StreamReport>,
}

/// Statistics of one reflector, cumulative over every worker it has run.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Stats)]
pub struct StatsView {
    pub id: String,
    pub state: RunState,
    pub restarts: u64,
    pub platform: Option<PlatformInfo>,
    /// Rates of the last interval (zero when no worker runs).
    pub rates: Rates,
    pub totals: CountersReport,
    /// Of the latest worker run.
    pub telemetry: TelemetrySummary,
}

/// What changed in a reload.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReloadSummary {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub restarted: Vec<String>,
}
