//! Prometheus metrics. Workers report absolute totals, so the values are read from the
//! supervisor at scrape time (a [`Collector`]) rather than mirrored into counters.

use crate::views::{RunState, StatsView, StreamsView};
use dataplane::histogram::Buckets;
use dataplane::streams::StreamReport;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Per-stream series are exported for at most this many streams per reflector, the
/// busiest ones, so a reflector tracking thousands of streams cannot flood the
/// time-series database; the streams endpoint has all of them.
pub const STREAM_SERIES_PER_REFLECTOR: usize = 50;

/// Render one entry per reflector (statistics and busiest streams) in the OpenMetrics
/// text format, after `reflector_build_info`. Everything is read from this snapshot,
/// so series of streams that have expired (or reflectors that were removed) simply
/// stop appearing. Rates are not exported: Prometheus derives them from the counters
/// (`rate(reflector_reflected_frames_total[1m])`).
pub fn render(reflectors: Vec<(StatsView, StreamsView)>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot(reflectors)));
    let mut out = String::new();
    // Writing into a String cannot fail.
    prometheus_client::encoding::text::encode(&mut out, &registry)
        .expect("formatting into a String");
    out
}

#[derive(Debug)]
struct Snapshot(Vec<(StatsView, StreamsView)>);

pub type Labels = Vec<(&'static str, String)>;

/// Name, help text, and how to read the value from one reflector's stats.
type Metric<T> = (&'static str, &'static str, fn(&StatsView) -> T);

/// A breakdown of a counter by one label: name, help, label, the map of values.
type Breakdown = (
    &'static str,
    &'static str,
    &'static str,
    fn(&StatsView) -> &BTreeMap<String, u64>,
);

/// A per-stream counter; `None` leaves the stream out (no sequence numbers).
type StreamMetric = (&'static str, &'static str, fn(&StreamReport) -> Option<u64>);

/// What `reflector_build_info` says: the control plane's version, the git commit it
/// was built from and the back ends of this platform's reflector.
fn build_labels() -> Labels {
    vec![
        ("version", env!("CARGO_PKG_VERSION").to_owned()),
        ("commit", env!("REFLECTOR_GIT_COMMIT").to_owned()),
        ("backends", settings::build_info::back_ends()),
    ]
}

/// A histogram read from a report, in seconds: a Prometheus `histogram` with
/// `_bucket{le}` series at the report's bounds and `+Inf`, `_sum` and `_count`.
/// Public so every histogram of the control plane (dwell time, round trips) is
/// exported the same way.
#[derive(Debug)]
pub struct ConstHistogram {
    /// Per-bucket (not cumulative) counts with their upper bound, `f64::MAX` last.
    buckets: Vec<(f64, u64)>,
    sum: f64,
    count: u64,
}

impl ConstHistogram {
    /// None when nothing was measured: an empty histogram would read as 0 s.
    pub fn from_ns(report: &Buckets) -> Option<ConstHistogram> {
        if report.count == 0 || report.le.len() != report.bounds_ns.len() {
            return None;
        }
        let mut below = 0;
        let mut buckets = Vec::with_capacity(report.le.len() + 1);
        for (bound, &cumulative) in report.bounds_ns.iter().zip(&report.le) {
            buckets.push((*bound as f64 / 1e9, cumulative.saturating_sub(below)));
            below = cumulative;
        }
        buckets.push((f64::MAX, report.count.saturating_sub(below)));
        Some(ConstHistogram {
            buckets,
            sum: report.sum_ns as f64 / 1e9,
            count: report.count,
        })
    }
}

impl EncodeMetric for ConstHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<NoLabelSet>(self.sum, self.count, &self.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn labels(s: &StatsView) -> Labels {
    vec![("reflector", s.id.clone())]
}

fn with(mut labels: Labels, name: &'static str, value: impl ToString) -> Labels {
    labels.push((name, value.to_string()));
    labels
}

fn stream_labels(s: &StatsView, stream: &StreamReport) -> Labels {
    let mut l = labels(s);
    l.extend([
        ("src_mac", stream.src_mac.clone()),
        ("src_ip", stream.src_ip.to_string()),
        ("src_port", stream.src_port.to_string()),
        ("dst_port", stream.dst_port.to_string()),
        ("signature", stream.signature.name().to_owned()),
    ]);
    l
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = || self.0.iter().map(|(s, _)| s);
        family(
            &mut encoder,
            "reflector_build_info",
            "Always 1; the labels say which build of the control plane serves these metrics",
            std::iter::once((build_labels(), ConstGauge::new(1))),
        )?;
        let counters: [Metric<u64>; 14] = [
            (
                "reflector_received_frames",
                "Frames received by the worker",
                |s| s.totals.received,
            ),
            ("reflector_reflected_frames", "Frames reflected", |s| {
                s.totals.reflected
            }),
            (
                "reflector_rejected_frames",
                "Frames refused for any reason",
                |s| s.totals.rejected,
            ),
            (
                "reflector_received_bytes",
                "Bytes of received frames",
                |s| s.totals.rx_bytes,
            ),
            (
                "reflector_reflected_bytes",
                "Bytes of reflected frames",
                |s| s.totals.tx_bytes,
            ),
            (
                "reflector_tx_errors",
                "Reflected frames the platform could not send",
                |s| s.totals.tx_errors,
            ),
            (
                "reflector_stamp_bad_checksum_frames",
                "STAMP packets that arrived with a wrong UDP checksum (answered with a right one): typically a same-host or VM sender with TX checksum offload",
                |s| s.totals.stamp_bad_checksum,
            ),
            (
                "reflector_kernel_rx_ring_full_frames",
                "Frames the kernel dropped at the worker's socket because its RX ring (AF_XDP) or receive buffer (AF_PACKET) was full: the worker was too slow",
                |s| s.totals.kernel_rx_ring_full,
            ),
            (
                "reflector_kernel_rx_dropped_frames",
                "Frames the kernel dropped at the worker's socket for want of a receive buffer (AF_XDP fill ring empty)",
                |s| s.totals.kernel_rx_dropped,
            ),
            (
                "reflector_kernel_fill_ring_empty",
                "Times the kernel found the AF_XDP fill ring empty (no free UMEM frame)",
                |s| s.totals.kernel_fill_ring_empty,
            ),
            (
                "reflector_kernel_tx_invalid_descriptors",
                "Transmit descriptors the kernel refused as invalid",
                |s| s.totals.kernel_tx_invalid,
            ),
            (
                "reflector_kernel_unserved_queue_frames",
                "Test frames that arrived on a receive queue no worker serves (--queues below the interface's queue count), passed to the host stack unanswered",
                |s| s.totals.kernel_unserved_queue,
            ),
            (
                "reflector_restarts",
                "Times the worker died and was restarted",
                |s| s.restarts,
            ),
            (
                "reflector_stream_untracked_frames",
                "Frames of streams the full stream tables could not track (latest worker run)",
                |s| s.telemetry.untracked_frames,
            ),
        ];
        per_reflector(&mut encoder, &self.0, &counters, ConstCounter::new)?;
        let breakdowns: [Breakdown; 2] = [
            (
                "reflector_signature_frames",
                "Frames reflected per test-frame signature",
                "signature",
                |s| &s.totals.signatures,
            ),
            (
                "reflector_rejected_reason_frames",
                "Frames refused per reason",
                "reason",
                |s| &s.totals.rejects,
            ),
        ];
        for (name, help, label, map) in breakdowns {
            let samples = stats().flat_map(|s| {
                map(s)
                    .iter()
                    .map(move |(key, v)| (with(labels(s), label, key), ConstCounter::new(*v)))
            });
            family(&mut encoder, name, help, samples)?;
        }
        let gauges: [Metric<f64>; 3] = [
            (
                "reflector_up",
                "1 while a worker runs (see reflector_loop_timed_out for whether it reflects)",
                |s| f64::from(u8::from(s.state == RunState::Running)),
            ),
            (
                "reflector_streams",
                "Streams tracked by the latest worker",
                |s| s.telemetry.streams as f64,
            ),
            (
                "reflector_loop_timed_out",
                "1 once the loop timeout has passed and the worker no longer reflects",
                |s| f64::from(u8::from(s.telemetry.loop_timed_out)),
            ),
        ];
        per_reflector(&mut encoder, &self.0, &gauges, ConstGauge::new)?;
        // Only reflectors that have measured something: zeros would read as 0 s.
        let dwell = stats().filter_map(|s| {
            ConstHistogram::from_ns(&s.telemetry.dwell_buckets).map(|h| (labels(s), h))
        });
        family(
            &mut encoder,
            "reflector_dwell_seconds",
            "Dwell time from receiving a frame to handing it to the transmitter, latest worker run",
            dwell,
        )?;
        let per_stream: [StreamMetric; 7] = [
            (
                "reflector_stream_frames",
                "Frames of one stream (the busiest streams of each reflector)",
                |st| Some(st.frames),
            ),
            ("reflector_stream_bytes", "Bytes of one stream", |st| {
                Some(st.bytes)
            }),
            (
                "reflector_stream_lost",
                "Sequence numbers missing from one stream (STAMP)",
                |st| st.sequence.map(|q| q.lost),
            ),
            (
                "reflector_stream_reordered",
                "Frames of one stream that arrived out of order (STAMP)",
                |st| st.sequence.map(|q| q.reordered),
            ),
            (
                "reflector_stream_duplicated",
                "Frames of one stream that arrived twice (STAMP)",
                |st| st.sequence.map(|q| q.duplicated),
            ),
            (
                "reflector_stream_too_late",
                "Frames of one stream too far behind to tell late from duplicate (STAMP)",
                |st| st.sequence.map(|q| q.too_late),
            ),
            (
                "reflector_stream_sequence_restarts",
                "Times the sender of one stream restarted its numbering (STAMP)",
                |st| st.sequence.map(|q| q.restarts),
            ),
        ];
        for (name, help, value) in per_stream {
            let samples = self.0.iter().flat_map(|(s, streams)| {
                streams
                    .streams
                    .iter()
                    .take(STREAM_SERIES_PER_REFLECTOR)
                    .filter_map(move |st| {
                        value(st).map(|v| (stream_labels(s, st), ConstCounter::new(v)))
                    })
            });
            family(&mut encoder, name, help, samples)?;
        }
        Ok(())
    }
}

/// One family per metric of `table`, with one sample per reflector.
fn per_reflector<T, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    reflectors: &[(StatsView, StreamsView)],
    table: &[Metric<T>],
    metric: fn(T) -> M,
) -> Result<(), std::fmt::Error> {
    for (name, help, value) in table {
        let samples = reflectors
            .iter()
            .map(|(s, _)| (labels(s), metric(value(s))));
        family(encoder, name, help, samples)?;
    }
    Ok(())
}

/// One family of samples; skipped entirely when there are none, since a descriptor
/// without samples only confuses readers.
pub fn family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl Iterator<Item = (Labels, M)>,
) -> Result<(), std::fmt::Error> {
    let samples: Vec<_> = samples.collect();
    let Some((_, first)) = samples.first() else {
        return Ok(());
    };
    let mut family = encoder.encode_descriptor(name, help, None, first.metric_type())?;
    for (labels, metric) in &samples {
        metric.encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::TelemetrySummary;
    use dataplane::histogram::Histogram;
    use dataplane::streams::SequenceReport;
    use dataplane::{Counters, Signature, TelemetryReport};
    use settings::events::Rates;

    fn stats(id: &str, counters: Counters, telemetry: &TelemetryReport) -> StatsView {
        StatsView {
            id: id.into(),
            state: RunState::Running,
            restarts: 3,
            platform: None,
            rates: Rates {
                rx_pps: 1000.0,
                tx_pps: 990.0,
                rx_mbps: 0.6,
                tx_mbps: 0.5,
            },
            totals: counters.into(),
            telemetry: telemetry.into(),
        }
    }

    fn streams(id: &str, telemetry: &TelemetryReport) -> StreamsView {
        StreamsView {
            id: id.into(),
            total: telemetry.streams.len(),
            untracked_frames: telemetry.untracked_frames,
            streams: telemetry.streams.clone(),
        }
    }

    fn stream(src_port: u16, frames: u64, sequence: Option<SequenceReport>) -> StreamReport {
        StreamReport {
            src_mac: "00:c0:17:00:00:01".into(),
            src_ip: "192.0.2.1".parse().unwrap(),
            src_port,
            dst_port: 862,
            signature: if sequence.is_some() {
                Signature::Stamp
            } else {
                Signature::Rfc2544
            },
            frames,
            bytes: frames * 100,
            first_seen_ms: 1,
            last_seen_ms: 2,
            sequence,
        }
    }

    fn render_one(id: &str, counters: Counters, telemetry: &TelemetryReport) -> String {
        render(vec![(
            stats(id, counters, telemetry),
            streams(id, telemetry),
        )])
    }

    fn assert_lines(text: &str, expected: &[&str]) {
        for line in expected {
            assert!(
                text.lines().any(|l| l == *line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn totals_rates_and_breakdowns_are_exported_per_reflector() {
        let mut counters = Counters {
            received: 12,
            reflected: 10,
            ..Counters::default()
        };
        counters.per_signature[Signature::Rfc2544.index()] = 10;
        counters.per_reject[dataplane::Reject::NoSignature.index()] = 2;
        counters.kernel.rx_ring_full = 7;
        counters.kernel.fill_ring_empty = 1;
        counters.kernel.unserved_queue = 4;
        let text = render_one("eth0", counters, &TelemetryReport::default());
        assert_lines(
            &text,
            &[
                "reflector_received_frames_total{reflector=\"eth0\"} 12",
                "reflector_reflected_frames_total{reflector=\"eth0\"} 10",
                "reflector_rejected_frames_total{reflector=\"eth0\"} 2",
                "reflector_restarts_total{reflector=\"eth0\"} 3",
                "reflector_kernel_rx_ring_full_frames_total{reflector=\"eth0\"} 7",
                "reflector_kernel_rx_dropped_frames_total{reflector=\"eth0\"} 0",
                "reflector_kernel_fill_ring_empty_total{reflector=\"eth0\"} 1",
                "reflector_kernel_tx_invalid_descriptors_total{reflector=\"eth0\"} 0",
                "reflector_kernel_unserved_queue_frames_total{reflector=\"eth0\"} 4",
                "reflector_signature_frames_total{reflector=\"eth0\",signature=\"RFC2544\"} 10",
                "reflector_signature_frames_total{reflector=\"eth0\",signature=\"STAMP\"} 0",
                "reflector_rejected_reason_frames_total{reflector=\"eth0\",reason=\"no_signature\"} 2",
                "reflector_rejected_reason_frames_total{reflector=\"eth0\",reason=\"loop_timeout\"} 0",
                "reflector_up{reflector=\"eth0\"} 1.0",
                "reflector_streams{reflector=\"eth0\"} 0.0",
                "reflector_loop_timed_out{reflector=\"eth0\"} 0.0",
                "reflector_stream_untracked_frames_total{reflector=\"eth0\"} 0",
                "# TYPE reflector_reflected_frames counter",
                "# EOF",
            ],
        );
        // Nothing measured yet: no dwell histogram reading 0 s, no stream series.
        assert!(!text.contains("reflector_dwell_seconds"), "{text}");
        // Rates are Prometheus's to compute from the counters.
        assert!(!text.contains("_pps") && !text.contains("mbps"), "{text}");
        assert!(!text.contains("reflector_stream_frames"), "{text}");
    }

    #[test]
    fn dwell_streams_and_the_loop_timeout_are_exported() {
        let mut dwell = Histogram::default();
        dwell.record_n(500, 10);
        dwell.record_n(2_000, 80);
        dwell.record_n(7_000, 9);
        dwell.record(1_500_000);
        let telemetry = TelemetryReport {
            dwell_ns: dwell.percentiles(),
            dwell_buckets: dwell.buckets(),
            streams: vec![
                stream(
                    5000,
                    70,
                    Some(SequenceReport {
                        lost: 3,
                        reordered: 2,
                        duplicated: 1,
                        ..SequenceReport::default()
                    }),
                ),
                stream(5001, 30, None),
            ],
            untracked_frames: 17,
            loop_timed_out: true,
            ..TelemetryReport::default()
        };
        let text = render_one("eth1", Counters::default(), &telemetry);
        let stamp = "reflector=\"eth1\",src_mac=\"00:c0:17:00:00:01\",src_ip=\"192.0.2.1\",src_port=\"5000\",dst_port=\"862\",signature=\"STAMP\"";
        let rfc = "reflector=\"eth1\",src_mac=\"00:c0:17:00:00:01\",src_ip=\"192.0.2.1\",src_port=\"5001\",dst_port=\"862\",signature=\"RFC2544\"";
        assert_lines(
            &text,
            &[
                "# TYPE reflector_dwell_seconds histogram",
                "reflector_dwell_seconds_count{reflector=\"eth1\"} 100",
                "reflector_dwell_seconds_bucket{le=\"2.5e-7\",reflector=\"eth1\"} 0",
                "reflector_dwell_seconds_bucket{le=\"5e-7\",reflector=\"eth1\"} 10",
                "reflector_dwell_seconds_bucket{le=\"0.0000025\",reflector=\"eth1\"} 90",
                "reflector_dwell_seconds_bucket{le=\"0.00001\",reflector=\"eth1\"} 99",
                "reflector_dwell_seconds_bucket{le=\"0.001\",reflector=\"eth1\"} 99",
                "reflector_dwell_seconds_bucket{le=\"0.0025\",reflector=\"eth1\"} 100",
                "reflector_dwell_seconds_bucket{le=\"+Inf\",reflector=\"eth1\"} 100",
                "reflector_streams{reflector=\"eth1\"} 2.0",
                "reflector_stream_untracked_frames_total{reflector=\"eth1\"} 17",
                "reflector_loop_timed_out{reflector=\"eth1\"} 1.0",
                "# TYPE reflector_stream_frames counter",
                &format!("reflector_stream_frames_total{{{stamp}}} 70"),
                &format!("reflector_stream_bytes_total{{{stamp}}} 7000"),
                &format!("reflector_stream_lost_total{{{stamp}}} 3"),
                &format!("reflector_stream_reordered_total{{{stamp}}} 2"),
                &format!("reflector_stream_duplicated_total{{{stamp}}} 1"),
                &format!("reflector_stream_frames_total{{{rfc}}} 30"),
                &format!("reflector_stream_bytes_total{{{rfc}}} 3000"),
            ],
        );
        // Loss counts exist only for streams with sequence numbers.
        assert!(!text.contains(&format!("reflector_stream_lost_total{{{rfc}}}")));
        assert_eq!(text.matches("reflector_stream_lost_total{").count(), 1);
    }

    #[test]
    fn stream_series_are_capped_per_reflector_and_vanish_with_their_streams() {
        let many = TelemetryReport {
            streams: (0..60)
                .map(|i| stream(10_000 + i, 1000 - u64::from(i), None))
                .collect(),
            ..TelemetryReport::default()
        };
        let text = render(vec![
            (stats("a", Counters::default(), &many), streams("a", &many)),
            (stats("b", Counters::default(), &many), streams("b", &many)),
        ]);
        let series = |reflector: &str| {
            text.lines()
                .filter(|l| {
                    l.starts_with(&format!(
                        "reflector_stream_frames_total{{reflector=\"{reflector}\""
                    ))
                })
                .count()
        };
        assert_eq!(
            (series("a"), series("b")),
            (STREAM_SERIES_PER_REFLECTOR, 50)
        );
        // The busiest 50 are the ones kept.
        assert!(text.contains("src_port=\"10049\""));
        assert!(!text.contains("src_port=\"10050\""));
        assert_lines(&text, &["reflector_streams{reflector=\"a\"} 60.0"]);

        // Next scrape: the streams expired. Their series are gone, not left stale.
        let text = render_one("a", Counters::default(), &TelemetryReport::default());
        assert!(!text.contains("src_mac="), "{text}");
        assert!(!text.contains("reflector=\"b\""), "{text}");
    }

    #[test]
    fn no_reflectors_only_the_build_info() {
        let text = render(vec![]);
        let mut lines = text.lines().filter(|l| !l.starts_with('#'));
        let info = lines.next().unwrap();
        assert_eq!(lines.next(), None, "{text}");
        assert!(
            info.starts_with(&format!(
                "reflector_build_info{{version=\"{}\",commit=\"",
                env!("CARGO_PKG_VERSION")
            )) && info.contains(",backends=\"")
                && info.ends_with("\"} 1"),
            "{info}"
        );
        assert!(text.contains("# TYPE reflector_build_info gauge"), "{text}");
    }

    #[test]
    fn summary_counts_streams() {
        let t = TelemetryReport {
            streams: vec![stream(1, 1, None)],
            ..TelemetryReport::default()
        };
        let summary = TelemetrySummary::from(&t);
        assert_eq!((summary.streams, summary.loop_timed_out), (1, false));
    }
}
