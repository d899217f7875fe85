//! What the control plane shows of a probe: its state, settings and results so far,
//! and the one-line verdict the demo prints.

use super::form::ProbeSettings;
use serde::Serialize;
use settings::events::ProbeReport;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProbeState {
    /// Created and not started, or stopped before its duration was up.
    Stopped,
    Running,
    /// Sent for its whole duration and reported.
    Finished,
    /// `reflector probe` could not run (see `last_error`).
    Failed,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Probe)]
pub struct ProbeView {
    pub id: String,
    pub state: ProbeState,
    pub settings: ProbeSettings,
    pub pid: Option<u32>,
    /// Runs started so far; each starts its counts afresh.
    pub runs: u64,
    /// The current (or last) run's report: cumulative so far while it runs.
    pub report: Option<ProbeReport>,
    pub last_error: Option<String>,
    /// `report` in one line.
    pub summary: String,
}

/// One line: what came back, loss in percent, RTT percentiles.
pub fn summary(report: Option<&ProbeReport>) -> String {
    let Some(r) = report else {
        return "no report yet".to_owned();
    };
    let loss = if r.sent > 0 {
        r.lost as f64 * 100.0 / r.sent as f64
    } else {
        0.0
    };
    let mut line = format!(
        "sent {} received {} lost {} ({loss:.3} %) reordered {} duplicated {} malformed {}",
        r.sent, r.received, r.lost, r.reordered, r.duplicated, r.malformed
    );
    if r.in_flight > 0 {
        line.push_str(&format!(" in flight {}", r.in_flight));
    }
    if r.rtt_ns.count > 0 {
        let us = |ns: u64| ns as f64 / 1000.0;
        line.push_str(&format!(
            "; rtt us p50 {:.1} p99 {:.1} max {:.1}",
            us(r.rtt_ns.p50),
            us(r.rtt_ns.p99),
            us(r.rtt_ns.max)
        ));
    }
    line
}
