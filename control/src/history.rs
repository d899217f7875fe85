//! The last 15 minutes of every reflector's rates, in memory, so a dashboard opened
//! now draws the recent past instead of an empty chart.
//!
//! It follows the event bus the supervisor already publishes on, and turns the
//! cumulative totals of consecutive `stats` notices into one sample per second at most:
//! rates come from totals, which survive worker restarts, so a restart or a lost
//! notice (a lagging subscriber) widens one sample instead of breaking the series.
//! Each reflector keeps a fixed-size ring; nothing grows with uptime.

use crate::events::{Bus, Notice};
use dataplane::stats::CountersReport;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast::error::RecvError;

/// How far back the history reaches.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Shortest time one sample spans; notices closer together are folded into the next.
pub const RESOLUTION: Duration = Duration::from_secs(1);
/// Samples kept per reflector: the window at the finest resolution.
const SLOTS: usize = (WINDOW.as_secs() / RESOLUTION.as_secs()) as usize;

/// Rates over one sample, ending at `t_ms`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Sample {
    t_ms: u64,
    at: Instant,
    rx_pps: f64,
    tx_pps: f64,
    rx_bps: f64,
    tx_bps: f64,
}

/// The totals a rate is computed from, and when they were seen.
#[derive(Clone, Copy, Debug)]
struct Mark {
    at: Instant,
    received: u64,
    reflected: u64,
    rx_bytes: u64,
    tx_bytes: u64,
}

impl Mark {
    fn of(totals: &CountersReport, at: Instant) -> Mark {
        Mark {
            at,
            received: totals.received,
            reflected: totals.reflected,
            rx_bytes: totals.rx_bytes,
            tx_bytes: totals.tx_bytes,
        }
    }
}

#[derive(Debug, Default)]
struct Series {
    last: Option<Mark>,
    samples: VecDeque<Sample>,
}

impl Series {
    fn record(&mut self, totals: &CountersReport, at: Instant, wall: SystemTime) {
        let mark = Mark::of(totals, at);
        let Some(last) = self.last else {
            self.last = Some(mark);
            return;
        };
        let span = at.saturating_duration_since(last.at);
        if span < RESOLUTION {
            return;
        }
        let secs = span.as_secs_f64();
        let per_second = |now: u64, then: u64| now.saturating_sub(then) as f64 / secs;
        if self.samples.len() == SLOTS {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample {
            t_ms: wall
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64,
            at,
            rx_pps: per_second(mark.received, last.received),
            tx_pps: per_second(mark.reflected, last.reflected),
            rx_bps: per_second(mark.rx_bytes, last.rx_bytes) * 8.0,
            tx_bps: per_second(mark.tx_bytes, last.tx_bytes) * 8.0,
        });
        self.last = Some(mark);
    }
}

/// One reflector's history, as columns (the shape chart libraries take).
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = History)]
pub struct HistoryView {
    pub id: String,
    /// Seconds the history reaches back at most.
    pub window_s: u64,
    /// End of each sample, milliseconds since the Unix epoch.
    pub t_ms: Vec<u64>,
    /// Frames received per second (all of them, refused ones included).
    pub rx_pps: Vec<f64>,
    /// Frames reflected per second.
    pub tx_pps: Vec<f64>,
    /// Bits received per second (Ethernet frames without FCS).
    pub rx_bps: Vec<f64>,
    /// Bits reflected per second.
    pub tx_bps: Vec<f64>,
}

/// Every reflector's history. Cheap to clone; clones share it.
#[derive(Clone, Debug, Default)]
pub struct History {
    series: Arc<Mutex<BTreeMap<String, Series>>>,
}

impl History {
    /// A history that records what `bus` carries from now on (needs a tokio runtime).
    pub fn follow(bus: &Bus) -> History {
        let history = History::default();
        let mut notices = bus.subscribe();
        let recorder = history.clone();
        tokio::spawn(async move {
            loop {
                match notices.recv().await {
                    Ok(notice) => recorder.take(&notice, Instant::now(), SystemTime::now()),
                    // Missed notices only widen the next sample.
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => break,
                }
            }
        });
        history
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Series>> {
        // Plain data: a panic elsewhere leaves nothing half-done worth refusing.
        self.series.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self, notice: &Notice, at: Instant, wall: SystemTime) {
        match notice {
            Notice::Stats(stats) => {
                self.lock()
                    .entry(stats.id.clone())
                    .or_default()
                    .record(&stats.totals, at, wall)
            }
            Notice::Removed { id } => {
                self.lock().remove(id);
            }
            Notice::State(_) | Notice::Probe(_) | Notice::ProbeRemoved { .. } => {}
        }
    }

    /// The samples of reflector `id` from the last [`WINDOW`], oldest first; empty for
    /// one that has reported nothing yet.
    pub fn view(&self, id: &str) -> HistoryView {
        let mut view = HistoryView {
            id: id.to_owned(),
            window_s: WINDOW.as_secs(),
            ..HistoryView::default()
        };
        let series = self.lock();
        let Some(series) = series.get(id) else {
            return view;
        };
        let now = Instant::now();
        for s in series
            .samples
            .iter()
            .filter(|s| now.saturating_duration_since(s.at) <= WINDOW)
        {
            view.t_ms.push(s.t_ms);
            view.rx_pps.push(s.rx_pps);
            view.tx_pps.push(s.tx_pps);
            view.rx_bps.push(s.rx_bps);
            view.tx_bps.push(s.tx_bps);
        }
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::{RunState, StatsView};
    use settings::events::Rates;

    fn stats(id: &str, received: u64, rx_bytes: u64) -> Notice {
        Notice::Stats(StatsView {
            id: id.into(),
            state: RunState::Running,
            restarts: 0,
            platform: None,
            rates: Rates::default(),
            totals: dataplane::Counters {
                received,
                reflected: received / 2,
                rx_bytes,
                tx_bytes: rx_bytes / 2,
                ..Default::default()
            }
            .into(),
            telemetry: Default::default(),
        })
    }

    #[test]
    fn rates_come_from_totals_one_sample_per_second_at_most() {
        let history = History::default();
        let t0 = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        history.take(&stats("a", 0, 0), t0, wall);
        // Closer than the resolution: folded into the next sample.
        let half = Duration::from_millis(500);
        history.take(&stats("a", 500, 32_000), t0 + half, wall + half);
        let two = Duration::from_secs(2);
        history.take(&stats("a", 2000, 128_000), t0 + two, wall + two);
        let view = history.view("a");
        assert_eq!(view.t_ms, vec![1_700_000_002_000]);
        assert_eq!(view.rx_pps, vec![1000.0]);
        assert_eq!(view.tx_pps, vec![500.0]);
        assert_eq!(view.rx_bps, vec![512_000.0]);
        assert_eq!(view.tx_bps, vec![256_000.0]);
        assert_eq!(view.window_s, 900);
        assert!(history.view("b").t_ms.is_empty());
    }

    #[test]
    fn the_ring_keeps_the_window_and_forgets_removed_reflectors() {
        let history = History::default();
        let t0 = Instant::now();
        let wall = SystemTime::now();
        for i in 0..=(SLOTS as u64 + 10) {
            let d = Duration::from_secs(i);
            history.take(&stats("a", i * 10, i * 640), t0 + d, wall + d);
        }
        let series = history.lock();
        assert_eq!(series["a"].samples.len(), SLOTS);
        drop(series);
        history.take(&Notice::Removed { id: "a".into() }, t0, wall);
        assert!(history.lock().is_empty());
    }
}
