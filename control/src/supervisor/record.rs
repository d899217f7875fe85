//! The shared record of one reflector: written by its task, read by everyone through
//! the registry, and announced on the bus whenever it changes.

use crate::config::ReflectorSettings;
use crate::events::{Bus, Notice};
use crate::views::{ReflectorView, RunState, StatsView, StreamsView};
use dataplane::{Counters, TelemetryReport};
use settings::events::{PlatformInfo, Rates};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

#[derive(Debug)]
pub(super) struct Record {
    pub settings: ReflectorSettings,
    pub state: RunState,
    pub pid: Option<u32>,
    pub restarts: u64,
    pub platform: Option<PlatformInfo>,
    pub started: Option<Instant>,
    pub last_error: Option<String>,
    /// Totals of the workers that have ended.
    pub carried: Counters,
    /// Latest totals of the running worker.
    pub current: Counters,
    pub rates: Rates,
    /// The latest worker's telemetry; streams busiest first.
    pub telemetry: TelemetryReport,
    /// When the current session's loop timeout ends, if it has one.
    pub loop_deadline: Option<Instant>,
}

impl Record {
    fn new(settings: ReflectorSettings) -> Self {
        Record {
            settings,
            state: RunState::Stopped,
            pid: None,
            restarts: 0,
            platform: None,
            started: None,
            last_error: None,
            carried: Counters::default(),
            current: Counters::default(),
            rates: Rates::default(),
            telemetry: TelemetryReport::default(),
            loop_deadline: None,
        }
    }

    fn totals(&self) -> Counters {
        let mut totals = self.carried;
        totals.accumulate(&self.current);
        totals
    }

    pub fn view(&self) -> ReflectorView {
        ReflectorView {
            id: self.settings.id(),
            state: self.state,
            settings: self.settings.clone(),
            pid: self.pid,
            restarts: self.restarts,
            platform: self.platform.clone(),
            uptime_s: self.started.map(|s| s.elapsed().as_secs_f64()),
            last_error: self.last_error.clone(),
            loop_timed_out: self.telemetry.loop_timed_out,
            loop_timeout_remaining_s: self
                .loop_deadline
                .map(|d| d.saturating_duration_since(Instant::now()).as_secs_f64()),
        }
    }

    pub fn stats(&self) -> StatsView {
        StatsView {
            id: self.settings.id(),
            state: self.state,
            restarts: self.restarts,
            platform: self.platform.clone(),
            rates: self.rates,
            totals: self.totals().into(),
            telemetry: (&self.telemetry).into(),
        }
    }

    pub fn streams(&self, limit: usize) -> StreamsView {
        StreamsView {
            id: self.settings.id(),
            total: self.telemetry.streams.len(),
            untracked_frames: self.telemetry.untracked_frames,
            streams: self.telemetry.streams.iter().take(limit).cloned().collect(),
        }
    }
}

/// A record plus the bus its changes are announced on. Clones share both.
#[derive(Clone)]
pub(super) struct Shared {
    record: Arc<Mutex<Record>>,
    pub bus: Bus,
}

impl Shared {
    pub fn new(settings: ReflectorSettings, bus: Bus) -> Self {
        Shared {
            record: Arc::new(Mutex::new(Record::new(settings))),
            bus,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Record> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Change the record and announce its new state.
    pub fn update(&self, change: impl FnOnce(&mut Record)) {
        let view = {
            let mut record = self.lock();
            change(&mut record);
            record.view()
        };
        self.bus.publish(Notice::State(view));
    }

    /// Announce the statistics as they are now.
    pub fn publish_stats(&self) {
        let stats = self.lock().stats();
        self.bus.publish(Notice::Stats(stats));
    }
}
