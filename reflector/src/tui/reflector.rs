//! The reflector's dashboard: what `reflector IFACE --tui` shows, built from the same
//! [`Event`]s the `--json` lines print.

use super::app::{History, View};
use super::keys::HELP;
use super::widgets::{self, Count};
use crate::report::{human_pps, kernel_summary, platform_line};
use dataplane::streams::StreamReport;
use dataplane::{Counters, Reject, Signature, TelemetryReport};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};
use ratatui::Frame;
use settings::events::{Event, PlatformInfo, Rates};

/// The streams table's order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StreamSort {
    /// Busiest first (the order of the telemetry and the line output's totals).
    #[default]
    Frames,
    /// Most frames lost first, for streams that carry sequence numbers.
    Loss,
}

impl StreamSort {
    fn next(self) -> StreamSort {
        match self {
            StreamSort::Frames => StreamSort::Loss,
            StreamSort::Loss => StreamSort::Frames,
        }
    }

    fn name(self) -> &'static str {
        match self {
            StreamSort::Frames => "frames",
            StreamSort::Loss => "loss",
        }
    }
}

/// The latest sample, its history, and the counters at the last reset.
#[derive(Clone, Debug, Default)]
pub struct ReflectorView {
    platform: PlatformInfo,
    elapsed_s: f64,
    rates: Rates,
    counters: Counters,
    telemetry: TelemetryReport,
    /// The counters when `r` was last pressed ("since reset" counts from here).
    baseline: Counters,
    rx_pps: History,
    tx_pps: History,
    /// In kbit/s: the sparkline plots integers, and a test rig's rates are below 1 Mbit/s.
    rx_kbps: History,
    tx_kbps: History,
    sort: StreamSort,
}

impl ReflectorView {
    /// Take one event of the stream the `--json` lines print.
    pub fn take(&mut self, event: &Event) {
        match event {
            Event::Started { platform } => self.platform = platform.clone(),
            Event::Stats {
                elapsed_s,
                rates,
                counters,
                telemetry,
            }
            | Event::Final {
                elapsed_s,
                rates,
                counters,
                telemetry,
            } => {
                self.elapsed_s = *elapsed_s;
                self.rates = *rates;
                self.counters = *counters;
                self.telemetry = telemetry.clone();
                self.rx_pps.push(rates.rx_pps);
                self.tx_pps.push(rates.tx_pps);
                self.rx_kbps.push(rates.rx_mbps * 1e3);
                self.tx_kbps.push(rates.tx_mbps * 1e3);
            }
        }
    }

    fn count(&self, name: impl Into<String>, value: impl Fn(&Counters) -> u64) -> Count {
        Count::of(name, &self.counters, &self.baseline, value)
    }

    fn frame_counts(&self) -> Vec<Count> {
        let mut rows = vec![
            self.count("received", |c| c.received),
            self.count("reflected", |c| c.reflected),
            self.count("rejected", Counters::rejected),
            self.count("tx errors", |c| c.tx_errors),
            self.count("kernel lost", |c| c.kernel.lost()),
        ];
        rows.extend(
            Signature::ALL
                .iter()
                .map(|s| self.count(format!("  {}", s.name()), |c| c.signature(*s))),
        );
        rows
    }

    /// Every refusal reason, the ones that happened first (most frequent first).
    fn refusals(&self) -> Vec<Count> {
        let mut rows: Vec<Count> = Reject::ALL
            .iter()
            .map(|r| self.count(r.name(), |c| c.reject(*r)))
            .collect();
        rows.sort_by_key(|c| std::cmp::Reverse(c.total));
        rows
    }

    fn sorted_streams(&self) -> Vec<&StreamReport> {
        let mut streams: Vec<&StreamReport> = self.telemetry.streams.iter().collect();
        if self.sort == StreamSort::Loss {
            let lost = |s: &StreamReport| s.sequence.map_or(0, |q| q.lost);
            // Stable: equal losses keep the busiest-first order.
            streams.sort_by_key(|s| std::cmp::Reverse(lost(s)));
        }
        streams
    }

    fn totals_line(&self) -> Line<'static> {
        let c = &self.counters;
        let mut text = format!(
            "received {}  reflected {}  rejected {}  tx errors {}  rx {} B  tx {} B",
            c.received,
            c.reflected,
            c.rejected(),
            c.tx_errors,
            c.rx_bytes,
            c.tx_bytes
        );
        // Only when non-zero, as in the line output.
        if c.kernel.any() {
            text.push_str(&format!("  kernel {}", kernel_summary(&c.kernel)));
        }
        if c.stamp_bad_checksum > 0 {
            text.push_str(&format!("  stamp_bad_checksum {}", c.stamp_bad_checksum));
        }
        let line = Line::from(text);
        if self.telemetry.loop_timed_out {
            Line::from(vec![
                line.spans[0].clone(),
                "  LOOP TIMEOUT: not reflecting".fg(Color::Red).bold(),
            ])
        } else {
            line
        }
    }

    fn streams(&self, frame: &mut Frame, area: Rect) {
        let rows = self.sorted_streams().into_iter().map(|s| {
            let q = s.sequence.unwrap_or_default();
            let seq = |v: u64| match s.sequence {
                Some(_) => v.to_string(),
                None => "-".to_owned(),
            };
            Row::new([
                s.src_mac.clone(),
                s.src_ip.to_string(),
                format!("{} -> {}", s.src_port, s.dst_port),
                s.signature.name().to_owned(),
                s.frames.to_string(),
                s.bytes.to_string(),
                seq(q.lost),
                seq(q.reordered),
                seq(q.duplicated),
            ])
        });
        let widths = [
            Constraint::Length(17),
            Constraint::Fill(1),
            Constraint::Length(13),
            Constraint::Length(8),
            Constraint::Length(11),
            Constraint::Length(13),
            Constraint::Length(8),
            Constraint::Length(9),
            Constraint::Length(8),
        ];
        let title = format!(
            "streams: {} ({} frames untracked), sorted by {}",
            self.telemetry.streams.len(),
            self.telemetry.untracked_frames,
            self.sort.name()
        );
        let table = Table::new(rows, widths)
            .header(
                Row::new([
                    "source MAC",
                    "source IP",
                    "ports",
                    "type",
                    "frames",
                    "bytes",
                    "lost",
                    "reordered",
                    "dup",
                ])
                .bold(),
            )
            .block(Block::default().borders(Borders::ALL).title(title));
        frame.render_widget(table, area);
    }
}

impl View for ReflectorView {
    fn render(&self, frame: &mut Frame, paused: bool) {
        let frame_counts = self.frame_counts();
        let [header, totals, rates, counts, streams, help] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Length(6),
            // Borders and a header around every total and signature.
            Constraint::Length(frame_counts.len() as u16 + 3),
            Constraint::Fill(1),
            Constraint::Length(1),
        ])
        .areas(frame.area());
        widgets::header(
            frame,
            header,
            platform_line(&self.platform),
            self.elapsed_s,
            paused,
        );
        frame.render_widget(Paragraph::new(self.totals_line()), totals);

        let [rx, tx, rx_bits, tx_bits] = Layout::horizontal([Constraint::Fill(1); 4]).areas(rates);
        let r = &self.rates;
        widgets::rate_panel(
            frame,
            rx,
            format!("rx {}", human_pps(r.rx_pps)),
            &self.rx_pps,
            Color::Cyan,
        );
        widgets::rate_panel(
            frame,
            tx,
            format!("tx {}", human_pps(r.tx_pps)),
            &self.tx_pps,
            Color::Green,
        );
        widgets::rate_panel(
            frame,
            rx_bits,
            format!("rx {:.1} Mbit/s", r.rx_mbps),
            &self.rx_kbps,
            Color::Blue,
        );
        widgets::rate_panel(
            frame,
            tx_bits,
            format!("tx {:.1} Mbit/s", r.tx_mbps),
            &self.tx_kbps,
            Color::Magenta,
        );

        let [frames, refusals, dwell] = Layout::horizontal([
            Constraint::Fill(1),
            Constraint::Fill(1),
            Constraint::Fill(1),
        ])
        .areas(counts);
        widgets::counts(frame, frames, "frames".into(), &frame_counts);
        let refused = self.refusals();
        let happened = refused.iter().filter(|c| c.total > 0).count();
        widgets::counts(
            frame,
            refusals,
            format!("refusals ({happened} reasons seen)"),
            &refused,
        );
        widgets::histogram(
            frame,
            dwell,
            "dwell, rx to tx",
            &self.telemetry.dwell_ns,
            &self.telemetry.dwell_buckets,
        );
        self.streams(frame, streams);
        widgets::help(
            frame,
            help,
            HELP,
            &format!("streams sorted by {}", self.sort.name()),
        );
    }

    fn reset(&mut self) {
        self.baseline = self.counters;
        self.rx_pps.clear();
        self.tx_pps.clear();
        self.rx_kbps.clear();
        self.tx_kbps.clear();
    }

    fn next_sort(&mut self) {
        self.sort = self.sort.next();
    }
}
