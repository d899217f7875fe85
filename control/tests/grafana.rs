//! The Grafana dashboard in deploy/grafana/ against the metrics the control plane
//! really exports: every metric a panel or variable names must appear in a scrape of
//! `/metrics` with a worker that reports everything (counters, dwell times, streams
//! with sequence numbers).

mod common;

use axum::body::Body;
use axum::http::Request;
use common::{eventually, stats_line_with, telemetry, FakeWorker};
use control::api::{router, AppState};
use control::auth::Token;
use control::config::ReflectorSettings;
use control::events::Bus;
use control::supervisor::{Launcher, Supervisor};
use dataplane::histogram::Histogram;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use settings::events::ProbeReport;
use std::collections::BTreeSet;
use std::time::Duration;
use tower::ServiceExt;

const DASHBOARD: &str = include_str!("../../deploy/grafana/reflector.json");

/// What a test head (`reflector probe --json`) reports: 100 sent, 2 lost, RTTs.
fn probe_report() -> String {
    let mut rtt = Histogram::default();
    rtt.record_n(40_000, 90);
    rtt.record_n(300_000, 8);
    let report = ProbeReport {
        sent: 100,
        received: 98,
        lost: 2,
        rtt_ns: rtt.percentiles(),
        rtt_buckets: rtt.buckets(),
        ..ProbeReport::default()
    };
    serde_json::to_string(&report).unwrap()
}

/// The sample names of one scrape (`reflector_dwell_seconds_bucket`, `..._total`...)
/// of a control plane with a reflector and a probe that report everything.
async fn scraped_names() -> (BTreeSet<String>, String) {
    // One stand-in for both: run as `reflector probe ...`, it reports as a probe does.
    let worker = FakeWorker::new(&format!(
        "[ \"$1\" = probe ] && while true; do echo '{}'; sleep 0.1; done\n\
         while true; do echo '{}'; sleep 0.1; done",
        probe_report(),
        stats_line_with(5, telemetry())
    ));
    let supervisor = Supervisor::new(Launcher::new(worker.program.clone()), Bus::default());
    let settings = ReflectorSettings {
        interface: "lo".into(),
        ..ReflectorSettings::default()
    };
    supervisor.add(settings, false).await.unwrap();
    let state = AppState::new(supervisor.clone(), Token::new("t"), None);
    let form = json!({"interface": "lo", "to": "02:52:45:46:4c:01", "reflector": "lo"});
    let probe = state
        .probes
        .create(serde_json::from_value(form).unwrap())
        .await
        .unwrap();
    eventually(
        "the reflector's and the probe's reports",
        Duration::from_secs(10),
        async || {
            let stats = supervisor.stats("lo").await.ok()?;
            let probe = state.probes.get(&probe.id).ok()?;
            (stats.telemetry.streams == 3 && probe.report.is_some()).then_some(())
        },
    )
    .await;
    let request = Request::get("/metrics").body(Body::empty()).unwrap();
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    state.probes.stop(&probe.id).await.unwrap();
    supervisor.shutdown().await;
    let names = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect();
    (names, text)
}

/// Every `reflector_...` metric name in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("reflector_") {
        let before = rest[..at].chars().next_back();
        let tail = &rest[at..];
        let end = tail.find(|c: char| !ident(c)).unwrap_or(tail.len());
        if !before.is_some_and(ident) {
            names.push(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    names
}

/// Every PromQL expression of the dashboard, with where it is.
fn expressions(dashboard: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        let title = panel["title"].as_str().unwrap();
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {title:?} has no query");
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            found.push((format!("panel {title:?}"), expr.to_owned()));
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(query) = variable["query"]["query"].as_str() {
            found.push((format!("variable {}", variable["name"]), query.to_owned()));
        }
    }
    found
}

#[tokio::test]
async fn every_metric_the_dashboard_names_is_exported() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    let (exported, text) = scraped_names().await;
    let mut used = BTreeSet::new();
    for (place, expr) in expressions(&dashboard) {
        let names = metric_names(&expr);
        assert!(!names.is_empty(), "{place} names no metric: {expr}");
        for name in names {
            assert!(
                exported.contains(&name),
                "{place} names {name}, which /metrics does not export: {expr}\nexported: {exported:?}"
            );
            used.insert(name);
        }
    }
    // The dashboard covers what matters most, in the shapes the issue asked for.
    for name in [
        "reflector_build_info",
        "reflector_up",
        "reflector_reflected_frames_total",
        "reflector_dwell_seconds_bucket",
        "reflector_rejected_reason_frames_total",
        "reflector_stream_lost_total",
        "reflector_probe_rtt_seconds_bucket",
        "reflector_probe_lost_frames",
    ] {
        assert!(used.contains(name), "no panel shows {name}");
    }
    // Panels are laid out and unique, and query the chosen data source.
    let mut ids = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "duplicate panel id"
        );
        assert!(panel["gridPos"]["w"].as_u64().is_some(), "{panel}");
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{panel}");
    }
    // What the dashboard relies on is really in the scrape, not just in a name list.
    assert!(text.contains("reflector_dwell_seconds_bucket{le=\"+Inf\",reflector=\"lo\"} 1000"));
}

#[test]
fn names_are_read_from_expressions() {
    assert_eq!(
        metric_names(
            "histogram_quantile(0.5, sum by (reflector, le) (rate(reflector_dwell_seconds_bucket{reflector=~\"$reflector\"}[5m])))"
        ),
        ["reflector_dwell_seconds_bucket"]
    );
    assert_eq!(
        metric_names("8 * rate(reflector_reflected_bytes_total[1m]) / reflector_up"),
        ["reflector_reflected_bytes_total", "reflector_up"]
    );
    assert!(metric_names("label_values(up{job=\"reflector\"}, my_reflector_x)").is_empty());
}

#[test]
fn the_prometheus_example_scrapes_metrics() {
    let example = include_str!("../../deploy/prometheus.yml");
    assert!(example.contains("metrics_path: /metrics"), "{example}");
    assert!(example.contains("job_name: reflector"), "{example}");
}
