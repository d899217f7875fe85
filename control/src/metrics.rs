//! Prometheus metrics. Workers report absolute totals, so the values are read from the
//! supervisor at scrape time (a [`Collector`]) rather than mirrored into counters.

use crate::supervisor::{RunState, StatsView};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Render `stats` (one entry per reflector) in the OpenMetrics text format.
pub fn render(stats: Vec<StatsView>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot(stats)));
    let mut out = String::new();
    // Writing into a String cannot fail.
    prometheus_client::encoding::text::encode(&mut out, &registry)
        .expect("formatting into a String");
    out
}

#[derive(Debug)]
struct Snapshot(Vec<StatsView>);

type Labels<'a> = Vec<(&'static str, &'a str)>;

/// Name, help text, and how to read the value from one reflector's stats.
type Metric<T> = (&'static str, &'static str, fn(&StatsView) -> T);

fn labels(s: &StatsView) -> Labels<'_> {
    vec![("reflector", s.id.as_str())]
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let totals: [Metric<u64>; 6] = [
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
        ];
        for (name, help, value) in totals {
            family(
                &mut encoder,
                name,
                help,
                self.0
                    .iter()
                    .map(|s| (labels(s), ConstCounter::new(value(s)))),
            )?;
        }
        family(
            &mut encoder,
            "reflector_restarts",
            "Times the worker died and was restarted",
            self.0
                .iter()
                .map(|s| (labels(s), ConstCounter::new(s.restarts))),
        )?;
        family(
            &mut encoder,
            "reflector_signature_frames",
            "Frames reflected per test-frame signature",
            self.0.iter().flat_map(|s| {
                s.totals.signatures.iter().map(|(sig, v)| {
                    let mut l = labels(s);
                    l.push(("signature", sig.as_str()));
                    (l, ConstCounter::new(*v))
                })
            }),
        )?;
        family(
            &mut encoder,
            "reflector_rejected_reason_frames",
            "Frames refused per reason",
            self.0.iter().flat_map(|s| {
                s.totals.rejects.iter().map(|(reason, v)| {
                    let mut l = labels(s);
                    l.push(("reason", reason.as_str()));
                    (l, ConstCounter::new(*v))
                })
            }),
        )?;
        let gauges: [Metric<f64>; 4] = [
            ("reflector_up", "1 while a worker runs and reflects", |s| {
                f64::from(u8::from(s.state == RunState::Running))
            }),
            (
                "reflector_rx_pps",
                "Received frames per second, last interval",
                |s| s.rates.rx_pps,
            ),
            (
                "reflector_tx_pps",
                "Reflected frames per second, last interval",
                |s| s.rates.tx_pps,
            ),
            (
                "reflector_tx_mbps",
                "Reflected megabits per second, last interval",
                |s| s.rates.tx_mbps,
            ),
        ];
        for (name, help, value) in gauges {
            family(
                &mut encoder,
                name,
                help,
                self.0
                    .iter()
                    .map(|s| (labels(s), ConstGauge::new(value(s)))),
            )?;
        }
        Ok(())
    }
}

/// One family of samples; skipped entirely when there are none, since a descriptor
/// without samples only confuses readers.
fn family<'a, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl Iterator<Item = (Labels<'a>, M)>,
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
    use dataplane::{Counters, Signature};
    use reflector::report::Rates;

    #[test]
    fn totals_rates_and_breakdowns_are_exported_per_reflector() {
        let mut counters = Counters {
            received: 12,
            reflected: 10,
            ..Counters::default()
        };
        counters.per_signature[Signature::Rfc2544.index()] = 10;
        counters.per_reject[dataplane::Reject::NoSignature.index()] = 2;
        let stats = StatsView {
            id: "eth0".into(),
            state: RunState::Running,
            restarts: 3,
            platform: None,
            rates: Rates {
                rx_pps: 1000.0,
                tx_pps: 990.0,
                tx_mbps: 0.5,
            },
            totals: counters.into(),
        };
        let text = render(vec![stats]);
        for expected in [
            "reflector_received_frames_total{reflector=\"eth0\"} 12",
            "reflector_reflected_frames_total{reflector=\"eth0\"} 10",
            "reflector_rejected_frames_total{reflector=\"eth0\"} 2",
            "reflector_restarts_total{reflector=\"eth0\"} 3",
            "reflector_signature_frames_total{reflector=\"eth0\",signature=\"RFC2544\"} 10",
            "reflector_rejected_reason_frames_total{reflector=\"eth0\",reason=\"no_signature\"} 2",
            "reflector_up{reflector=\"eth0\"} 1.0",
            "reflector_tx_pps{reflector=\"eth0\"} 990.0",
            "# TYPE reflector_reflected_frames counter",
            "# EOF",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }

    #[test]
    fn no_reflectors_no_samples() {
        assert_eq!(render(vec![]), "# EOF\n");
    }
}
