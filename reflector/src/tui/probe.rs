//! The probe's dashboard: what `reflector probe --tui` shows, built from the
//! [`ProbeReport`]s the engine publishes while it runs (the same function builds the
//! report printed at the end).

use super::app::{History, View};
use super::keys::PROBE_HELP;
use super::widgets::{self, Count};
use super::Dashboard;
use crate::probe::RunInfo;
use crate::report::{human_ns, human_pps};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::Color;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use settings::events::ProbeReport;

/// Where the run is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    #[default]
    Running,
    /// Quit was asked: sending stopped, waiting `--wait` for late reflections.
    Stopping,
    /// The report is final; `q` prints it.
    Finished,
}

/// The latest report, the rates between reports, and the report at the last reset.
#[derive(Clone, Debug, Default)]
pub struct ProbeView {
    info: Option<RunInfo>,
    report: ProbeReport,
    /// Seconds since the dashboard started, at the latest report.
    at_s: f64,
    /// Frames per second sent and received between the last two reports.
    tx_pps: f64,
    rx_pps: f64,
    tx_history: History,
    rx_history: History,
    /// The round-trip time's 99th percentile so far, in ns.
    rtt_history: History,
    baseline: ProbeReport,
    phase: Phase,
}

/// The probe's dashboard.
pub type ProbeDashboard = Dashboard<ProbeView>;

impl ProbeView {
    /// Take a report published `at_s` seconds after the dashboard started.
    pub fn take(&mut self, info: Option<&RunInfo>, report: ProbeReport, at_s: f64) {
        if self.info.is_none() {
            self.info = info.cloned();
        }
        let dt = at_s - self.at_s;
        if dt > 0.0 {
            self.tx_pps = report.sent.saturating_sub(self.report.sent) as f64 / dt;
            self.rx_pps = report.received.saturating_sub(self.report.received) as f64 / dt;
            self.tx_history.push(self.tx_pps);
            self.rx_history.push(self.rx_pps);
            self.rtt_history.push(report.rtt_ns.p99 as f64);
        }
        self.report = report;
        self.at_s = at_s;
    }

    pub fn stopping(&mut self) {
        self.phase = Phase::Stopping;
    }

    /// The report is the final one.
    pub fn finished(&mut self) {
        self.phase = Phase::Finished;
    }

    fn count(&self, name: &str, value: impl Fn(&ProbeReport) -> u64) -> Count {
        Count::of(name, &self.report, &self.baseline, value)
    }

    fn mbps(&self, pps: f64) -> f64 {
        let bytes = self.info.as_ref().map_or(0, |i| i.wire_bytes);
        pps * bytes as f64 * 8.0 / 1e6
    }
}

impl View for ProbeView {
    fn render(&self, frame: &mut Frame, paused: bool) {
        let [header, totals, rates, counts, help] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Length(7),
            Constraint::Fill(1),
            Constraint::Length(1),
        ])
        .areas(frame.area());
        let what = self
            .info
            .as_ref()
            .map_or("probe: starting".to_owned(), |i| i.describe.clone());
        widgets::header(frame, header, what, self.at_s, paused);
        let r = &self.report;
        let phase = match self.phase {
            Phase::Running => "running (lost includes frames still in flight)",
            Phase::Stopping => "stopping: waiting for late reflections",
            Phase::Finished => "finished: q prints the report",
        };
        frame.render_widget(
            Paragraph::new(Line::from(format!(
                "sent {}  received {}  lost {}  reordered {}  duplicated {}  malformed {}   {phase}",
                r.sent, r.received, r.lost, r.reordered, r.duplicated, r.malformed
            ))),
            totals,
        );

        let [tx, rx, rtt_p99] = Layout::horizontal([Constraint::Fill(1); 3]).areas(rates);
        widgets::rate_panel(
            frame,
            tx,
            format!(
                "sent {}, {:.1} Mbit/s",
                human_pps(self.tx_pps),
                self.mbps(self.tx_pps)
            ),
            &self.tx_history,
            Color::Green,
        );
        widgets::rate_panel(
            frame,
            rx,
            format!(
                "returned {}, {:.1} Mbit/s",
                human_pps(self.rx_pps),
                self.mbps(self.rx_pps)
            ),
            &self.rx_history,
            Color::Cyan,
        );
        widgets::rate_panel(
            frame,
            rtt_p99,
            format!("rtt p99 {}", human_ns(r.rtt_ns.p99)),
            &self.rtt_history,
            Color::Yellow,
        );

        let [table, rtt] =
            Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(counts);
        let rows = [
            self.count("sent", |r| r.sent),
            self.count("received", |r| r.received),
            self.count("lost", |r| r.lost),
            self.count("reordered", |r| r.reordered),
            self.count("duplicated", |r| r.duplicated),
            self.count("malformed", |r| r.malformed),
        ];
        widgets::counts(frame, table, "frames".into(), &rows);
        widgets::histogram(frame, rtt, "round-trip time", &r.rtt_ns, &r.rtt_buckets);
        widgets::help(frame, help, PROBE_HELP, "");
    }

    fn reset(&mut self) {
        self.baseline = self.report.clone();
        self.tx_history.clear();
        self.rx_history.clear();
        self.rtt_history.clear();
    }

    /// The probe has no streams table.
    fn next_sort(&mut self) {}
}

/// Run the probe with its dashboard. Returns the final report once the user quits
/// (or at once when quit, SIGINT or SIGTERM stopped the run early); the caller prints
/// it as without `--tui`.
#[cfg(target_os = "linux")]
pub fn watch(args: &crate::probe::ProbeArgs) -> anyhow::Result<ProbeReport> {
    use crate::probe::{Progress, PUBLISH_EVERY};
    use anyhow::Context;
    use std::sync::atomic::Ordering;
    use std::time::Instant;

    let progress = Progress::new()?;
    let start = Instant::now();
    let at = || start.elapsed().as_secs_f64();
    std::thread::scope(|scope| {
        let run = std::thread::Builder::new()
            .name("probe".into())
            .spawn_scoped(scope, || crate::probe::run(args, &progress))
            .context("starting the probe thread")?;
        let shown = (|| -> std::io::Result<ProbeDashboard> {
            let mut dashboard = Dashboard::start(ProbeView::default())?;
            while !run.is_finished() {
                if dashboard.wait(PUBLISH_EVERY)? {
                    progress.stop();
                    dashboard.update(ProbeView::stopping);
                }
                if let Some(report) = progress.latest() {
                    dashboard.update(|view| view.take(progress.info(), report, at()));
                }
            }
            Ok(dashboard)
        })();
        // Whatever happened to the screen, the run must end before the scope does.
        if shown.is_err() {
            progress.stop();
        }
        let report = run
            .join()
            .map_err(|_| anyhow::anyhow!("the probe thread panicked"))??;
        let mut dashboard = shown?;
        if !progress.stop_flag().load(Ordering::Relaxed) {
            // It ran to the end: leave the final numbers up until the user quits.
            dashboard.update(|view| {
                view.take(progress.info(), report.clone(), at());
                view.finished();
            });
            while !dashboard.wait(std::time::Duration::from_secs(1))? {}
        }
        Ok(report)
    })
}
