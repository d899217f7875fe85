//! Frames rendered into ratatui's test backend, read back as text.

use super::*;
use crate::report::human_ns;
use dataplane::histogram::Histogram;
use dataplane::streams::{SequenceReport, StreamReport};
use dataplane::{Counters, Reject, Signature, TelemetryReport};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use settings::events::{Event, PlatformInfo, ProbeReport, Rates};

/// The screen `app` draws on a `width` x `height` terminal, one string per row.
fn screen<V: View>(app: &App<V>, width: u16, height: u16) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| app.render(frame)).unwrap();
    let buffer = terminal.backend().buffer();
    (0..height)
        .map(|y| (0..width).map(|x| buffer[(x, y)].symbol()).collect())
        .collect()
}

/// The number right after `label` in `row`.
fn number_after_label(row: &str, label: &str) -> Option<u64> {
    let rest = &row[row.find(label)? + label.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

fn row_with<'a>(screen: &'a [String], text: &str) -> Option<(usize, &'a String)> {
    screen
        .iter()
        .enumerate()
        .find(|(_, row)| row.contains(text))
}

fn stream(port: u16, frames: u64, lost: u64) -> StreamReport {
    StreamReport {
        src_mac: "00:c0:17:de:00:01".into(),
        src_ip: "192.0.2.1".parse().unwrap(),
        src_port: port,
        dst_port: 3842,
        signature: Signature::ProbeOt,
        frames,
        bytes: frames * 60,
        first_seen_ms: 0,
        last_seen_ms: 0,
        sequence: Some(SequenceReport {
            lost,
            ..SequenceReport::default()
        }),
    }
}

/// Ten dwell times: 900 ns, five of 2 µs, two of 3 µs, 40 µs and 41 µs.
fn dwell() -> Histogram {
    let mut h = Histogram::default();
    h.record(900);
    h.record_n(2_000, 5);
    h.record_n(3_000, 2);
    h.record(40_000);
    h.record(41_000);
    h
}

fn stats(received: u64) -> Event {
    let mut counters = Counters {
        received,
        reflected: received - 7,
        tx_bytes: (received - 7) * 60,
        ..Counters::default()
    };
    counters.per_signature[Signature::ProbeOt.index()] = received - 7;
    counters.per_reject[Reject::PortMismatch.index()] = 7;
    Event::Stats {
        elapsed_s: 12.0,
        rates: Rates {
            rx_pps: 2500.0,
            tx_pps: 2400.0,
            rx_mbps: 1.3,
            tx_mbps: 1.2,
        },
        counters,
        telemetry: TelemetryReport {
            dwell_ns: dwell().percentiles(),
            dwell_buckets: dwell().buckets(),
            // Busiest first, as the telemetry comes.
            streams: vec![stream(1000, 900, 0), stream(2000, 300, 12)],
            ..TelemetryReport::default()
        },
    }
}

fn reflector_app() -> App<ReflectorView> {
    let mut view = ReflectorView::default();
    view.take(&Event::Started {
        platform: PlatformInfo {
            backend: "af_xdp".into(),
            interface: "veth0".into(),
            xdp_mode: Some("native".into()),
            zero_copy: Some(false),
            busy_poll: Some(false),
            wake_latency: None,
            xdp_send: Some(true),
            queues: 2,
            reason: None,
            max_frame_len: None,
        },
    });
    view.take(&stats(1207));
    App::new(view)
}

#[test]
fn the_reflector_dashboard_shows_the_events_numbers() {
    let app = reflector_app();
    let s = screen(&app, 140, 40);
    let text = s.join("\n");
    assert!(
        s[0].starts_with(
            "elapsed 12s  reflecting on veth0 (af_xdp, xdp native, copy mode, xdp send), \
             2 queue(s)"
        ),
        "{text}"
    );
    assert!(
        text.contains("received 1207  reflected 1200  rejected 7  tx errors 0"),
        "{text}"
    );
    assert!(
        text.contains("rx 2.5 kpps") && text.contains("tx 2.4 kpps"),
        "{text}"
    );
    assert!(text.contains("tx 1.2 Mbit/s"), "{text}");
    assert!(text.contains("rx 1.3 Mbit/s"), "{text}");
    let (_, probeot) = row_with(&s, "  PROBEOT").expect(&text);
    assert!(probeot.contains("1200"), "{probeot}");
    // Every signature has its row, the last one too.
    for signature in Signature::ALL {
        assert!(
            row_with(&s, &format!("  {} ", signature.name())).is_some(),
            "{signature}: {text}"
        );
    }
    // Refusals that happened come first, whatever their place in Reject::ALL.
    let (port_row, port) = row_with(&s, "port_mismatch").expect(&text);
    let (truncated_row, _) = row_with(&s, "truncated").expect(&text);
    assert!(port_row < truncated_row, "{text}");
    assert!(port.contains(" 7 "), "{port}");
    assert!(text.contains("dwell, rx to tx (10 samples)"), "{text}");
    let p = dwell().percentiles();
    assert!(
        text.contains(&format!("p99 {}  p99.9", human_ns(p.p99))),
        "{text}"
    );
    // The histogram's rows: each bucket's own samples, from the first with any.
    let bucket = |label: &str| {
        let (_, row) = row_with(&s, label).unwrap_or_else(|| panic!("{label}:\n{text}"));
        number_after_label(row, label)
    };
    assert_eq!(bucket("<= 1.0 µs"), Some(1), "{text}");
    assert_eq!(bucket("<= 2.5 µs"), Some(5), "{text}");
    assert_eq!(bucket("<= 5.0 µs"), Some(2), "{text}");
    assert_eq!(bucket("<= 10.0 µs"), Some(0), "{text}");
    assert_eq!(bucket("<= 50.0 µs"), Some(2), "{text}");
    assert!(
        !text.contains("<= 500 ns"),
        "starts at the first sample: {text}"
    );
    assert!(
        text.contains("streams: 2 (0 frames untracked), sorted by frames"),
        "{text}"
    );
}

#[test]
fn keys_sort_the_streams_reset_the_deltas_and_pause() {
    let mut app = reflector_app();
    let rows = |app: &App<ReflectorView>| {
        let s = screen(app, 140, 40);
        let busy = row_with(&s, "1000 -> 3842").unwrap().0;
        let lossy = row_with(&s, "2000 -> 3842").unwrap().0;
        (busy, lossy)
    };
    let (busy, lossy) = rows(&app);
    assert!(busy < lossy, "by frames, the busiest stream first");
    assert!(!app.act(Action::Sort));
    let (busy, lossy) = rows(&app);
    assert!(lossy < busy, "by loss, the lossy stream first");
    assert!(screen(&app, 140, 40).join("\n").contains("sorted by loss"));

    let since_reset = |app: &App<ReflectorView>| {
        let s = screen(app, 140, 40);
        let (_, row) = row_with(&s, "reflected ")
            .map(|_| ())
            .and(row_with(&s, "│reflected"))
            .unwrap();
        row.split_whitespace()
            .filter_map(|w| w.trim_matches('│').parse::<u64>().ok())
            .collect::<Vec<_>>()
    };
    assert_eq!(since_reset(&app)[..2], [1200, 1200]);
    assert!(!app.act(Action::Reset));
    assert_eq!(since_reset(&app)[..2], [1200, 0]);
    app.live_mut().take(&stats(1307));
    assert_eq!(since_reset(&app)[..2], [1300, 100]);

    assert!(!app.act(Action::Pause));
    app.live_mut().take(&stats(2007));
    let paused = screen(&app, 140, 40).join("\n");
    assert!(paused.starts_with("PAUSED"), "{paused}");
    assert!(
        paused.contains("reflected 1300 "),
        "frozen while paused: {paused}"
    );
    assert!(!app.act(Action::Pause));
    assert!(screen(&app, 140, 40).join("\n").contains("reflected 2000 "));
    assert!(app.act(Action::Quit));
}

#[test]
fn a_small_terminal_still_draws() {
    // Resizing to something tiny must clip, not panic.
    let app = reflector_app();
    let s = screen(&app, 20, 5);
    assert!(s[0].starts_with("elapsed"), "{s:?}");
}

/// `n` round trips of 20 µs.
fn rtt(n: u64) -> Histogram {
    let mut h = Histogram::default();
    h.record_n(20_000, n);
    h
}

#[test]
fn the_probe_dashboard_shows_the_report_so_far() {
    let mut view = ProbeView::default();
    let info = crate::probe::RunInfo {
        describe: "probe 00:c0:17:de:00:01 -> 02:52:45:46:4c:01 on veth0".into(),
        wire_bytes: 64,
    };
    let report = |sent, received| ProbeReport {
        sent,
        received,
        lost: sent - received,
        rtt_ns: rtt(received).percentiles(),
        rtt_buckets: rtt(received).buckets(),
        ..ProbeReport::default()
    };
    view.take(Some(&info), report(1000, 990), 1.0);
    view.take(Some(&info), report(3000, 2990), 2.0);
    view.finished();
    let s = screen(&App::new(view), 140, 30);
    let text = s.join("\n");
    assert!(
        s[0].contains("on veth0") && s[0].contains("elapsed 2s"),
        "{text}"
    );
    assert!(
        text.contains("sent 3000  received 2990  lost 10  reordered 0"),
        "{text}"
    );
    assert!(text.contains("finished: q prints the report"), "{text}");
    // 2000 frames in the last second, 64 bytes each.
    assert!(text.contains("sent 2.0 kpps, 1.0 Mbit/s"), "{text}");
    assert!(text.contains("round-trip time (2990 samples)"), "{text}");
    assert!(text.contains("p50 20.0 µs"), "{text}");
    let (_, row) = row_with(&s, "<= 25.0 µs").expect(&text);
    assert_eq!(number_after_label(row, "<= 25.0 µs"), Some(2990), "{text}");
}
