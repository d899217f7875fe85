//! The pieces both dashboards are drawn from: rate sparklines, a percentile chart, a
//! table of counts with their change since the last reset, header and help lines.

use super::app::History;
use super::terminal::last_held_log;
use crate::report::human_ns;
use dataplane::histogram::{Buckets, Percentiles};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Sparkline, Table};
use ratatui::Frame;

/// A bordered sparkline of `history` (as many of the newest samples as fit), titled
/// with the current value.
pub fn rate_panel(frame: &mut Frame, area: Rect, title: String, history: &History, color: Color) {
    let block = Block::default().borders(Borders::ALL).title(title);
    let data = history.last(usize::from(block.inner(area).width));
    frame.render_widget(
        Sparkline::default()
            .block(block)
            .data(&data)
            .style(Style::default().fg(color)),
        area,
    );
}

/// A latency distribution: its percentiles on two lines, then one bar per bucket of
/// the report's histogram (samples between the previous bound and this one), from the
/// first bucket with samples; when more buckets hold samples than there are rows, the
/// last row takes all the rest, so the counts always add up to the total.
pub fn histogram(frame: &mut Frame, area: Rect, title: &str, p: &Percentiles, b: &Buckets) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!("{title} ({} samples)", p.count));
    let inner = block.inner(area);
    if p.count == 0 {
        frame.render_widget(Paragraph::new("no samples yet".dim()).block(block), area);
        return;
    }
    let mut lines = vec![
        Line::from(format!(
            "min {}  p50 {}  p90 {}",
            human_ns(p.min),
            human_ns(p.p50),
            human_ns(p.p90)
        )),
        Line::from(format!(
            "p99 {}  p99.9 {}  max {}",
            human_ns(p.p99),
            human_ns(p.p999),
            human_ns(p.max)
        )),
    ];
    let rows = bucket_rows(b, usize::from(inner.height).saturating_sub(lines.len()));
    let most = rows.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let label_width = 22;
    let room = usize::from(inner.width).saturating_sub(label_width);
    lines.extend(rows.into_iter().map(|(label, n)| {
        // Linear: the bars are the shape of the distribution.
        let cells = if most == 0 {
            0
        } else {
            (n as f64 / most as f64 * room as f64).ceil() as usize
        };
        Line::from(vec![
            Span::raw(format!("{label:<11}{n:>10} ")),
            Span::styled("█".repeat(cells), Style::default().fg(Color::Yellow)),
        ])
    }));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// At most `rows` (label, samples) pairs from `b`'s cumulative counts: each bucket's
/// own samples from the first that has any, the last row holding all the rest.
fn bucket_rows(b: &Buckets, rows: usize) -> Vec<(String, u64)> {
    let mut own: Vec<(String, u64)> = Vec::new();
    let mut below = 0;
    for (bound, le) in b.bounds_ns.iter().zip(&b.le) {
        own.push((format!("<= {}", human_ns(*bound)), le - below));
        below = *le;
    }
    if let Some(last) = b.bounds_ns.last() {
        own.push((
            format!("> {}", human_ns(*last)),
            b.count.saturating_sub(below),
        ));
    }
    let first = own.iter().position(|(_, n)| *n > 0).unwrap_or(own.len());
    let used = own
        .iter()
        .rposition(|(_, n)| *n > 0)
        .map_or(first, |i| i + 1);
    let mut shown: Vec<(String, u64)> = own.drain(first..used).collect();
    if rows > 0 && shown.len() > rows {
        let rest: u64 = shown[rows - 1..].iter().map(|(_, n)| n).sum();
        shown.truncate(rows - 1);
        let label = match shown.last() {
            Some((below, _)) => below.replacen("<=", ">", 1),
            None => "all".to_owned(),
        };
        shown.push((label, rest));
    }
    shown.truncate(rows);
    shown
}

/// One row of a counts table: a name, its total and its change since the last reset.
pub struct Count {
    pub name: String,
    pub total: u64,
    pub since_reset: u64,
}

impl Count {
    /// `value` of the latest sample `now`, and its change since `baseline`.
    pub fn of<T>(
        name: impl Into<String>,
        now: &T,
        baseline: &T,
        value: impl Fn(&T) -> u64,
    ) -> Self {
        let total = value(now);
        Count {
            name: name.into(),
            total,
            since_reset: total.saturating_sub(value(baseline)),
        }
    }
}

/// A table of counts; rows with a zero total are dimmed so the others stand out.
pub fn counts(frame: &mut Frame, area: Rect, title: String, rows: &[Count]) {
    let rows = rows.iter().map(|c| {
        let row = Row::new([
            c.name.clone(),
            c.total.to_string(),
            c.since_reset.to_string(),
        ]);
        if c.total == 0 {
            row.style(Style::default().add_modifier(Modifier::DIM))
        } else {
            row
        }
    });
    let table = Table::new(
        rows,
        [
            // Room for the longest reason name (20) at a third of 80 columns.
            Constraint::Fill(1),
            Constraint::Length(11),
            Constraint::Length(11),
        ],
    )
    .header(Row::new(["", "total", "since reset"]).bold())
    .block(Block::default().borders(Borders::ALL).title(title));
    frame.render_widget(table, area);
}

/// The top line: whether the view is paused, elapsed time, and what runs where
/// (first the short parts, so a narrow terminal cuts only the platform line).
pub fn header(frame: &mut Frame, area: Rect, what: String, elapsed_s: f64, paused: bool) {
    let mut spans = Vec::new();
    if paused {
        spans.push(Span::styled(
            "PAUSED (p resumes)",
            Style::default().fg(Color::Black).bg(Color::Yellow),
        ));
        spans.push(Span::raw("  "));
    }
    spans.push(Span::raw(format!("elapsed {elapsed_s:.0}s  ")));
    spans.push(Span::styled(what, Style::default().bold()));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The bottom line: the keys, a note (e.g. the sort order), and the latest log line
/// held back while the dashboard is up (it is printed when the dashboard closes).
pub fn help(frame: &mut Frame, area: Rect, keys: &str, note: &str) {
    let mut spans = vec![Span::raw(format!("{keys}   {note}")).dim()];
    if let Some(log) = last_held_log() {
        spans.push(Span::styled(
            format!("   log: {log}"),
            Style::default().fg(Color::Yellow),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_rows_start_at_the_first_sample_and_keep_the_total() {
        let b = Buckets {
            bounds_ns: vec![1_000, 2_000, 3_000, 4_000, 5_000],
            le: vec![0, 5, 5, 8, 9],
            count: 10,
            sum_ns: 0,
        };
        let all = bucket_rows(&b, 10);
        let labels: Vec<&str> = all.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(
            labels,
            [
                "<= 2.0 µs",
                "<= 3.0 µs",
                "<= 4.0 µs",
                "<= 5.0 µs",
                "> 5.0 µs"
            ]
        );
        assert_eq!(
            all.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
            [5, 0, 3, 1, 1]
        );
        let two = bucket_rows(&b, 2);
        assert_eq!(
            two,
            [("<= 2.0 µs".to_owned(), 5), ("> 2.0 µs".to_owned(), 5)]
        );
        assert!(bucket_rows(&Buckets::default(), 5).is_empty());
    }
}
