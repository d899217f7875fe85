//! The probes in `/metrics`: counts of the current (or last) run and the round-trip
//! histogram, exported the way the reflectors' dwell time is.

use super::ProbeView;
use crate::metrics::{family, ConstHistogram, Labels};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use settings::events::ProbeReport;

/// The OpenMetrics `text` with the probes' families added before its `# EOF`.
pub fn append(text: String, probes: Vec<ProbeView>) -> String {
    if probes.is_empty() {
        return text;
    }
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot(probes)));
    let mut ours = String::new();
    prometheus_client::encoding::text::encode(&mut ours, &registry)
        .expect("formatting into a String");
    let head = text.strip_suffix("# EOF\n").unwrap_or(&text);
    format!("{head}{ours}")
}

#[derive(Debug)]
struct Snapshot(Vec<ProbeView>);

fn labels(p: &ProbeView) -> Labels {
    let mut labels = vec![
        ("probe", p.id.clone()),
        ("interface", p.settings.interface.clone()),
    ];
    if let Some(reflector) = &p.settings.reflector {
        labels.push(("reflector", reflector.clone()));
    }
    labels
}

type Count = (&'static str, &'static str, fn(&ProbeReport) -> u64);

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let reported = || {
            self.0
                .iter()
                .filter_map(|p| p.report.as_ref().map(|r| (p, r)))
        };
        let counts: [Count; 5] = [
            (
                "reflector_probe_sent_frames",
                "Frames the probe sent, this run",
                |r| r.sent,
            ),
            (
                "reflector_probe_received_frames",
                "Distinct frames that came back correctly reflected, this run",
                |r| r.received,
            ),
            (
                "reflector_probe_reordered_frames",
                "Reflections that came back after a later one, this run",
                |r| r.reordered,
            ),
            (
                "reflector_probe_duplicated_frames",
                "Reflections of a frame already back, this run",
                |r| r.duplicated,
            ),
            (
                "reflector_probe_malformed_frames",
                "Frames with the probe's stamp reflected wrongly, this run",
                |r| r.malformed,
            ),
        ];
        for (name, help, value) in counts {
            family(
                &mut encoder,
                name,
                help,
                reported().map(|(p, r)| (labels(p), ConstCounter::new(value(r)))),
            )?;
        }
        let gauges: [Count; 2] = [
            (
                "reflector_probe_lost_frames",
                "Frames not back within --wait of being sent, this run",
                |r| r.lost,
            ),
            (
                "reflector_probe_in_flight_frames",
                "Frames sent less than --wait ago and not back yet",
                |r| r.in_flight,
            ),
        ];
        for (name, help, value) in gauges {
            family(
                &mut encoder,
                name,
                help,
                reported().map(|(p, r)| (labels(p), ConstGauge::new(value(r) as i64))),
            )?;
        }
        family(
            &mut encoder,
            "reflector_probe_rtt_seconds",
            "Round-trip time of the probe's frames, this run",
            reported().filter_map(|(p, r)| {
                ConstHistogram::from_ns(&r.rtt_buckets).map(|h| (labels(p), h))
            }),
        )?;
        family(
            &mut encoder,
            "reflector_probe_running",
            "1 while the probe sends",
            self.0.iter().map(|p| {
                let running = p.state == super::ProbeState::Running;
                (labels(p), ConstGauge::new(i64::from(running)))
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::{ProbeForm, ProbeState};
    use dataplane::histogram::Histogram;

    #[test]
    fn probe_families_go_before_the_end_marker() {
        let settings = ProbeForm {
            interface: "veth0".into(),
            to: "02:52:45:46:4c:01".into(),
            reflector: Some("lab@veth1".into()),
            ..ProbeForm::default()
        }
        .validate()
        .unwrap();
        let mut rtt = Histogram::default();
        rtt.record_n(40_000, 9);
        rtt.record(3_000_000);
        let report = ProbeReport {
            sent: 12,
            received: 9,
            lost: 2,
            in_flight: 1,
            rtt_ns: rtt.percentiles(),
            rtt_buckets: rtt.buckets(),
            ..ProbeReport::default()
        };
        let view = ProbeView {
            id: "probe-1".into(),
            state: ProbeState::Running,
            settings,
            pid: None,
            runs: 1,
            report: Some(report),
            last_error: None,
            summary: String::new(),
        };
        let text = append("reflector_up 1\n# EOF\n".into(), vec![view]);
        let labels = r#"probe="probe-1",interface="veth0",reflector="lab@veth1""#;
        for line in [
            "reflector_up 1".to_owned(),
            format!("reflector_probe_sent_frames_total{{{labels}}} 12"),
            format!("reflector_probe_lost_frames{{{labels}}} 2"),
            format!("reflector_probe_in_flight_frames{{{labels}}} 1"),
            format!("reflector_probe_running{{{labels}}} 1"),
            format!("reflector_probe_rtt_seconds_bucket{{le=\"0.00005\",{labels}}} 9"),
            format!("reflector_probe_rtt_seconds_bucket{{le=\"0.0025\",{labels}}} 9"),
            format!("reflector_probe_rtt_seconds_bucket{{le=\"0.005\",{labels}}} 10"),
            format!("reflector_probe_rtt_seconds_count{{{labels}}} 10"),
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
        }
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
        assert!(text.ends_with("# EOF\n"));
        // Nothing to add: the text is untouched.
        assert_eq!(append("x 1\n# EOF\n".into(), vec![]), "x 1\n# EOF\n");
    }
}
