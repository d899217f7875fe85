//! Probes (test heads) through the REST API on a real netlab lab: the real `reflector`
//! supervised on one end (AF_PACKET, so this does not hang on the XDP program), and
//! `POST /api/v1/probes` running `reflector probe` on the other. Their reports arrive
//! live over SSE, in the probe's view and in `/metrics` (RTT as a Prometheus
//! histogram). Root; fails, never skips, when the lab cannot be built.

mod common;

use common::{eventually, real_reflector, require_root, ControlProcess};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn send(
    control: &ControlProcess,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = control
        .http
        .request(method, format!("{}{path}", control.base))
        .bearer_auth(&control.token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Every `probe` event of the live stream, collected in the background.
fn follow_probe_events(control: &ControlProcess) -> Arc<Mutex<Vec<Value>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let url = format!("{}/api/v1/events", control.base);
    let sink = seen.clone();
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut response = client.get(url).send().await.unwrap();
        let mut buffer = String::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                if event.lines().any(|l| l == "event: probe") {
                    let data = event
                        .lines()
                        .find_map(|l| l.strip_prefix("data: "))
                        .unwrap();
                    sink.lock()
                        .unwrap()
                        .push(serde_json::from_str(data).unwrap());
                }
            }
        }
    });
    seen
}

#[tokio::test]
async fn probes_through_the_api_measure_the_reflector_they_drive() {
    require_root();
    // Declared first, dropped last: the control plane stops before the lab goes.
    let lab = netlab::Lab::create("rfl-pr").expect("building the lab");
    let state = tempfile::tempdir().unwrap();
    let reflector = real_reflector();
    let control =
        ControlProcess::spawn(&["--reflector", reflector.to_str().unwrap()], state.path()).await;
    let (status, created) = send(
        &control,
        Method::POST,
        "/api/v1/reflectors",
        Some(json!({"interface": lab.reflector.interface, "netns": lab.reflector.netns, "backend": "af-packet"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    eventually(
        "the reflector to run",
        Duration::from_secs(20),
        async || {
            (control.get(&format!("/api/v1/reflectors/{id}")).await["state"] == "running")
                .then_some(())
        },
    )
    .await;
    let events = follow_probe_events(&control);

    // Bad requests name the field.
    let head = json!({"interface": lab.head.interface, "netns": lab.head.netns});
    for (extra, status, message) in [
        (
            json!({"to": "nope"}),
            StatusCode::BAD_REQUEST,
            "to must be a unicast MAC",
        ),
        (
            json!({"to": netlab::REFLECTOR_MAC, "rate": 0}),
            StatusCode::BAD_REQUEST,
            "rate must be 1 to",
        ),
        (
            json!({"to": netlab::REFLECTOR_MAC, "reflector": "nosuch"}),
            StatusCode::NOT_FOUND,
            "nosuch",
        ),
    ] {
        let mut body = head.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (got, reply) = send(&control, Method::POST, "/api/v1/probes", Some(body)).await;
        assert_eq!(got, status, "{reply}");
        assert!(
            reply["error"].as_str().unwrap().contains(message),
            "{reply}"
        );
    }

    // 3 s at 2000 frames/s, 128-byte frames, linked to the reflector.
    let mut body = head.clone();
    body.as_object_mut().unwrap().extend(
        json!({"to": netlab::REFLECTOR_MAC, "rate": 2000, "size": 128, "duration_s": 3, "reflector": id})
            .as_object()
            .unwrap()
            .clone(),
    );
    let (status, probe) = send(&control, Method::POST, "/api/v1/probes", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{probe}");
    assert_eq!(probe["id"], "probe-1");
    assert_eq!(probe["state"], "running");
    let done = eventually("the probe to finish", Duration::from_secs(20), async || {
        let view = control.get("/api/v1/probes/probe-1").await;
        (view["state"] == "finished").then_some(view)
    })
    .await;
    let report = &done["report"];
    assert_eq!(report["sent"], 6000, "{done}");
    assert_eq!(report["received"], 6000, "{done}");
    assert_eq!(
        (&report["lost"], &report["malformed"]),
        (&json!(0), &json!(0)),
        "{done}"
    );
    assert_eq!(report["rtt_ns"]["count"], 6000, "{done}");
    assert_eq!(report["rtt_buckets"]["count"], 6000, "{done}");
    assert!(report["rtt_ns"]["p50"].as_u64().unwrap() > 0, "{done}");
    assert!(
        done["summary"]
            .as_str()
            .unwrap()
            .contains("lost 0 (0.000 %)"),
        "{done}"
    );

    // Live: reports of the run in progress came over SSE before the final one.
    let live: Vec<u64> = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e["id"] == "probe-1" && e["state"] == "running")
        .filter_map(|e| e["report"]["sent"].as_u64())
        .collect();
    assert!(
        live.iter().any(|&sent| sent > 0 && sent < 6000),
        "no report in progress over SSE: {live:?}"
    );

    // Metrics: counts and the RTT histogram, labelled with the probe and its reflector.
    let metrics = control.metrics().await;
    let labels = format!(
        "probe=\"probe-1\",interface=\"{}\",reflector=\"{id}\"",
        lab.head.interface
    );
    for line in [
        format!("reflector_probe_sent_frames_total{{{labels}}} 6000"),
        format!("reflector_probe_received_frames_total{{{labels}}} 6000"),
        format!("reflector_probe_lost_frames{{{labels}}} 0"),
        format!("reflector_probe_rtt_seconds_count{{{labels}}} 6000"),
        format!("reflector_probe_rtt_seconds_bucket{{le=\"+Inf\",{labels}}} 6000"),
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line} in\n{metrics}"
        );
    }
    assert!(metrics.contains("# TYPE reflector_probe_rtt_seconds histogram"));
    assert!(metrics.trim_end().ends_with("# EOF"), "{metrics}");

    // Until stopped: stop answers with the final report, every frame back.
    let mut body = head.clone();
    body.as_object_mut().unwrap().extend(
        json!({"to": netlab::REFLECTOR_MAC, "rate": 1000})
            .as_object()
            .unwrap()
            .clone(),
    );
    let (status, probe) = send(&control, Method::POST, "/api/v1/probes", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{probe}");
    eventually("frames sent", Duration::from_secs(10), async || {
        let view = control.get("/api/v1/probes/probe-2").await;
        (view["report"]["sent"].as_u64()? > 500).then_some(())
    })
    .await;
    let (status, stopped) = send(&control, Method::POST, "/api/v1/probes/probe-2/stop", None).await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    let report = &stopped["report"];
    assert!(report["sent"].as_u64().unwrap() > 500, "{stopped}");
    assert_eq!(report["received"], report["sent"], "{stopped}");

    let (status, _) = send(&control, Method::DELETE, "/api/v1/probes/probe-2", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, reply) = send(&control, Method::GET, "/api/v1/probes/probe-2", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("GET /api/v1/probes"),
        "{reply}"
    );
    let list = control.get("/api/v1/probes").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert!(control.terminate().success());
    drop(lab);
}

/// `reflector-control demo` runs its test head as a probe of the control plane: the API
/// lists it, linked to the lab's reflector; the terminal gets a summary line every few
/// seconds, and on Ctrl-C (SIGINT to the control plane only, as a terminal's process
/// group would) the final totals and a verdict.
#[tokio::test]
async fn the_demo_runs_its_probe_through_the_api_and_prints_the_verdict() {
    use std::io::{BufRead, BufReader};
    require_root();
    let state = tempfile::tempdir().unwrap();
    let reflector = real_reflector();
    let port = common::free_port();
    // Stopped even when an assertion below fails: a demo left running keeps its lab.
    let mut child = common::StopOnDrop(
        std::process::Command::new(common::control_binary())
            .args(["demo", "--lab", "rfl-pd", "--reflector"])
            .arg(&reflector)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--state-dir"])
            .arg(state.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(state.path().join("control.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let (lines, received) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let next_line = |wanted: &dyn Fn(&str) -> bool, within: Duration| -> String {
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match received.recv_timeout(left) {
                Ok(line) if wanted(&line) => return line,
                Ok(_) => {}
                Err(e) => panic!("no such line on the terminal: {e}"),
            }
        }
    };

    let http = reqwest::Client::new();
    let probe = eventually("the demo's probe", Duration::from_secs(40), async || {
        let list: Value = http
            .get(format!("http://127.0.0.1:{port}/api/v1/probes"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let probe = list.get(0)?.clone();
        (probe["report"]["received"].as_u64()? > 0).then_some(probe)
    })
    .await;
    assert_eq!(probe["id"], "probe-1");
    assert_eq!(probe["state"], "running");
    assert_eq!(
        probe["settings"]["reflector"], "rfl-pd-r@rfl-pd-r",
        "{probe}"
    );
    assert_eq!(probe["settings"]["to"], netlab::REFLECTOR_MAC);

    let summary = next_line(
        &|l| l.starts_with("probe-1 -> rfl-pd-r@rfl-pd-r: sent "),
        Duration::from_secs(15),
    );
    assert!(
        summary.contains(" lost 0 (0.000 %)") && summary.contains("rtt us p50"),
        "{summary}"
    );
    // SAFETY: kill with our own child's pid, not yet reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let last = next_line(
        &|l| l.starts_with("final probe-1 -> "),
        Duration::from_secs(20),
    );
    assert!(last.contains(" lost 0 (0.000 %)"), "{last}");
    let verdict = next_line(&|l| l.starts_with("probe-1: "), Duration::from_secs(5));
    assert_eq!(
        verdict,
        "probe-1: PASS: every frame came back, correctly reflected"
    );
    assert!(child.wait().unwrap().success());
    assert!(!netlab::Lab::exists("rfl-pd"), "the demo removes its lab");
}
