//! Root-only: the virtual lab, and the whole stack end to end on it with the real
//! reflector and its test head. Fails (never skips) where it cannot build the lab.

mod common;

use common::{eventually, require_root, ControlProcess};
use control::lab::{self, Lab, HEAD_MAC, REFLECTOR_MAC};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

/// The first of reflector `id`'s five busiest streams that `wanted` accepts, once
/// one appears.
async fn stream_where(
    control: &ControlProcess,
    id: &str,
    what: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    eventually(what, Duration::from_secs(15), async || {
        let view = control
            .get(&format!("/api/v1/reflectors/{id}/streams?limit=5"))
            .await;
        view["streams"]
            .as_array()?
            .iter()
            .find(|s| wanted(s))
            .cloned()
    })
    .await
}

fn link(end: &netlab::End) -> String {
    let out = Command::new("ip")
        .args(["-n", &end.netns, "link", "show", "dev", &end.interface])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} missing in {}: {}",
        end.interface,
        end.netns,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn labs_are_built_removed_and_stale_ones_replaced() {
    require_root();
    let lab = lab::create("rfl-lt").unwrap();
    let reflector_side = link(&lab.reflector);
    assert!(
        reflector_side.contains(REFLECTOR_MAC) && reflector_side.contains("UP"),
        "{reflector_side}"
    );
    assert!(
        link(&lab.head).contains("00:c0:17:"),
        "test head in the NetAlly OUI"
    );
    // A demo killed without cleaning up leaves its lab behind...
    std::mem::forget(lab);
    assert!(Lab::exists("rfl-lt"));
    // ...and the next one replaces it instead of failing on "File exists".
    let lab = lab::create("rfl-lt").unwrap();
    link(&lab.reflector);
    drop(lab);
    assert!(!Lab::exists("rfl-lt"));
}

#[tokio::test]
async fn demo_reflects_real_traffic_and_survives_stop_and_start() {
    require_root();
    let state = tempfile::tempdir().unwrap();
    let control = ControlProcess::demo("rfl-e2e", state.path()).await;
    let stats_path = "/api/v1/reflectors/rfl-e2e-r@rfl-e2e-r/stats";
    let first = eventually("reflected frames", Duration::from_secs(30), async || {
        let s = control.get(stats_path).await;
        (s["totals"]["reflected"].as_u64() > Some(100)).then_some(s)
    })
    .await;
    assert_eq!(first["state"], "running");
    assert_eq!(first["platform"]["backend"], "af_xdp");
    assert_eq!(first["platform"]["interface"], "rfl-e2e-r");
    assert!(
        first["totals"]["signatures"]["PROBEOT"].as_u64() > Some(0),
        "{first}"
    );
    let before = first["totals"]["reflected"].as_u64().unwrap();
    eventually(
        "the counters to keep moving",
        Duration::from_secs(15),
        async || {
            (control.get(stats_path).await["totals"]["reflected"].as_u64() > Some(before + 500))
                .then_some(())
        },
    )
    .await;
    let metrics = control.metrics().await;
    assert!(
        metrics.contains("reflector_reflected_frames_total{reflector=\"rfl-e2e-r@rfl-e2e-r\"}"),
        "{metrics}"
    );

    // The same interface twice is refused.
    let reply = control
        .http
        .post(format!("{}/api/v1/reflectors", control.base))
        .bearer_auth(&control.token)
        .json(&serde_json::json!({"interface": "rfl-e2e-r", "netns": "rfl-e2e-r"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 409);
    assert_eq!(
        reply.json::<serde_json::Value>().await.unwrap()["error"],
        "interface rfl-e2e-r is already supervised as reflector \"rfl-e2e-r@rfl-e2e-r\""
    );

    let stopped = control
        .post("/api/v1/reflectors/rfl-e2e-r@rfl-e2e-r/stop")
        .await;
    assert_eq!(stopped["state"], "stopped");
    let at_stop = control.get(stats_path).await["totals"]["reflected"]
        .as_u64()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        control.get(stats_path).await["totals"]["reflected"].as_u64(),
        Some(at_stop),
        "nothing reflects while stopped"
    );

    control
        .post("/api/v1/reflectors/rfl-e2e-r@rfl-e2e-r/start")
        .await;
    eventually(
        "totals to grow past the first run's",
        Duration::from_secs(30),
        async || {
            let s = control.get(stats_path).await;
            (s["state"] == "running" && s["totals"]["reflected"].as_u64() > Some(at_stop + 200))
                .then_some(())
        },
    )
    .await;

    // The real worker's telemetry: the test head's stream, dwell times, metrics.
    let id = "rfl-e2e-r@rfl-e2e-r";
    let stream = stream_where(&control, id, "the test head's stream", |s| {
        s["src_mac"] == HEAD_MAC && s["signature"] == "PROBEOT" && s["frames"].as_u64() > Some(0)
    })
    .await;
    assert!(stream["sequence"].is_null(), "{stream}");
    // The demo's STAMP sender (stamp-suite, installed by scripts/setup.sh): its
    // session is answered and tracked with loss counts.
    let stamp = stream_where(&control, id, "the STAMP sender's stream", |s| {
        s["signature"] == "STAMP" && s["frames"].as_u64() > Some(2)
    })
    .await;
    assert_eq!(stamp["dst_port"], 862, "{stamp}");
    assert_eq!(stamp["sequence"]["lost"], 0, "{stamp}");
    let telemetry = control.get(stats_path).await["telemetry"].clone();
    assert!(
        telemetry["dwell_ns"]["count"].as_u64() > Some(0),
        "{telemetry}"
    );
    assert!(telemetry["streams"].as_u64() >= Some(1), "{telemetry}");
    // The demo's reflector runs on AF_XDP: receive times come from the XDP program.
    assert!(
        telemetry["platform_stamped_frames"].as_u64() > Some(0),
        "{telemetry}"
    );
    let metrics = control.metrics().await;
    for expected in [
        format!("reflector_stream_frames_total{{reflector=\"{id}\",src_mac=\"{HEAD_MAC}\""),
        format!("reflector_dwell_seconds_bucket{{le=\"+Inf\",reflector=\"{id}\"}}"),
        format!("reflector_loop_timed_out{{reflector=\"{id}\"}} 0.0"),
    ] {
        assert!(metrics.contains(&expected), "{expected} not in\n{metrics}");
    }

    // A session with a loop timeout, end to end: after a second the real worker
    // stops reflecting, and the control plane shows it.
    control.post(&format!("/api/v1/reflectors/{id}/stop")).await;
    let session = control
        .http
        .post(format!("{}/api/v1/reflectors/{id}/start", control.base))
        .bearer_auth(&control.token)
        .json(&serde_json::json!({"loop_timeout_s": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(session.status().as_u16(), 200);
    let view = eventually(
        "the loop timeout to show",
        Duration::from_secs(20),
        async || {
            let view = control.get(&format!("/api/v1/reflectors/{id}")).await;
            (view["loop_timed_out"] == true).then_some(view)
        },
    )
    .await;
    assert_eq!(view["state"], "running");
    assert_eq!(view["loop_timeout_remaining_s"], 0.0);
    eventually(
        "test frames dropped as loop_timeout",
        Duration::from_secs(15),
        async || {
            let s = control.get(stats_path).await;
            (s["totals"]["rejects"]["loop_timeout"].as_u64() > Some(100)).then_some(())
        },
    )
    .await;
    let frozen = control.get(stats_path).await["totals"]["reflected"]
        .as_u64()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        control.get(stats_path).await["totals"]["reflected"].as_u64(),
        Some(frozen),
        "nothing reflects after the loop timeout"
    );

    assert!(Lab::exists("rfl-e2e"));
    let status = control.terminate();
    assert!(status.success(), "{status}");
    assert!(!Lab::exists("rfl-e2e"), "the demo removes its lab on exit");
}
