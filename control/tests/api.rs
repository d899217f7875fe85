//! The REST API, in process, against stand-in workers. Every response checked here is
//! also validated against the OpenAPI description the server publishes.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use common::{eventually, stats_line, stats_line_with, telemetry, FakeWorker};
use control::api::{router, AppState, ROUTES};
use control::auth::Token;
use control::events::Bus;
use control::guard::AllowedHosts;
use control::supervisor::{Backoff, Launcher, Supervisor};
use control::ui;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;
use tower::ServiceExt;

const TOKEN: &str = "test-token";

struct Api {
    router: Router,
    spec: Value,
    // Keeps the stand-in worker's directory alive.
    worker: FakeWorker,
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

impl Api {
    fn new(config_path: Option<PathBuf>) -> Api {
        Api::with_worker(
            &format!("while true; do echo '{}'; sleep 0.1; done", stats_line(7)),
            config_path,
        )
    }

    /// With a stand-in worker running `body` (after its `started` line).
    fn with_worker(body: &str, config_path: Option<PathBuf>) -> Api {
        let worker = FakeWorker::new(body);
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            ..Backoff::default()
        };
        let launcher = Launcher {
            program: worker.program.clone(),
            grace: Duration::from_secs(1),
            backoff,
        };
        let state = AppState::new(
            Supervisor::new(launcher, Bus::default()),
            Token::new(TOKEN),
            config_path,
        );
        let spec = serde_json::from_str(control::api::openapi_json()).unwrap();
        Api {
            router: router(state),
            spec,
            worker,
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> Reply {
        self.send_with(method, path, body, token, &[]).await
    }

    /// As [`Api::send`], with more request headers.
    async fn send_with(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
        headers: &[(header::HeaderName, &str)],
    ) -> Reply {
        let mut request = Request::builder().method(method.clone()).uri(path);
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Body::from(body.unwrap_or_default().to_owned()))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let is_json = headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        let body = if is_json {
            serde_json::from_slice(&bytes).unwrap()
        } else {
            Value::String(String::from_utf8_lossy(&bytes).into())
        };
        // The router's own 404/405 for operations that do not exist are not in the spec.
        let fallback = status == StatusCode::METHOD_NOT_ALLOWED
            || body["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("no route"));
        if let Some(template) = template_for(path).filter(|_| !fallback) {
            self.conforms(&method, template, status, &headers, &body);
        }
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.send(
            method,
            path,
            body.map(|b| b.to_string()).as_deref(),
            Some(TOKEN),
        )
        .await
    }

    /// The status must be documented for the operation and the body must match its schema.
    fn conforms(
        &self,
        method: &Method,
        template: &str,
        status: StatusCode,
        headers: &axum::http::HeaderMap,
        body: &Value,
    ) {
        let op = format!(
            "/paths/{}/{}",
            escape(template),
            method.as_str().to_lowercase()
        );
        let documented = self
            .spec
            .pointer(&format!("{op}/responses/{}", status.as_u16()));
        assert!(
            documented.is_some(),
            "{method} {template} answered {status}, which the spec does not document: {body}"
        );
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        if !content_type.starts_with("application/json") {
            return;
        }
        let pointer = format!(
            "{op}/responses/{}/content/application~1json/schema",
            status.as_u16()
        );
        assert!(
            self.spec.pointer(&pointer).is_some(),
            "{method} {template} {status} returned JSON the spec does not describe"
        );
        let mut root = self.spec.clone();
        // A JSON pointer inside a URI fragment: the braces of {id} must be escaped.
        root["$ref"] = json!(format!(
            "#{}",
            pointer.replace('{', "%7B").replace('}', "%7D")
        ));
        let validator = jsonschema::draft202012::new(&root).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {template} {status}: {errors:?}\n{body:#}"
        );
    }
}

fn escape(path: &str) -> String {
    path.replace('~', "~0").replace('/', "~1")
}

/// Every (method, path template) the router serves: the API's and the embedded files.
fn all_routes() -> Vec<(&'static str, &'static str)> {
    let files = ui::ASSETS.iter().map(|a| ("GET", a.path));
    ROUTES.iter().copied().chain(files).collect()
}

/// The route template a concrete path matches, if any.
fn template_for(path: &str) -> Option<&'static str> {
    let path = path.split('?').next().unwrap();
    let parts: Vec<&str> = path.split('/').collect();
    all_routes().into_iter().map(|(_, t)| t).find(|t| {
        let tparts: Vec<&str> = t.split('/').collect();
        tparts.len() == parts.len()
            && tparts
                .iter()
                .zip(&parts)
                .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
    })
}

#[tokio::test]
async fn routes_router_and_openapi_agree() {
    let api = Api::new(None);
    // The description the server serves is the generated one, and it is OpenAPI 3.1.
    let served = api.call(Method::GET, "/api/v1/openapi.json", None).await;
    assert_eq!(served.body, api.spec);
    assert!(api.spec["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut documented: Vec<(String, String)> = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    for item in served.body["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let id = op["operationId"].as_str().unwrap_or_default().to_owned();
            assert!(
                !id.is_empty() && ids.insert(id.clone()),
                "operationId {id:?} is missing or not unique"
            );
        }
    }
    for (path, item) in served.body["paths"].as_object().unwrap() {
        for method in item
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "parameters")
        {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    let routes = all_routes();
    let mut listed: Vec<(String, String)> = routes
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    documented.sort();
    listed.sort();
    assert_eq!(
        listed, documented,
        "ROUTES and the OpenAPI paths differ: annotate a new handler with #[utoipa::path] and \
         list it in control/src/api/doc.rs (or a new file in control::ui::ASSETS)"
    );
    // Each route is really served: neither the 404 fallback nor 405. And on those
    // paths, every method the router answers is in the table.
    for (_, template) in &routes {
        let path = template.replace("{id}", "nosuch0");
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ] {
            if path.ends_with("/events") && method == Method::GET {
                continue; // an endless stream; covered by its own test
            }
            let reply = api.send(method.clone(), &path, None, Some(TOKEN)).await;
            let routed = routes
                .iter()
                .any(|(m, t)| t == template && *m == method.as_str());
            let fallback = reply.status == StatusCode::METHOD_NOT_ALLOWED
                || reply.body["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("no route"));
            assert_eq!(
                routed, !fallback,
                "{method} {path}: {} {}",
                reply.status, reply.body
            );
        }
    }
}

#[tokio::test]
async fn reflector_lifecycle_through_the_api() {
    let api = Api::new(None);
    let created = api
        .call(
            Method::POST,
            "/api/v1/reflectors",
            Some(json!({"interface": "lo", "mode": "mac", "port": 4000})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.headers[header::LOCATION], "/api/v1/reflectors/lo");
    assert_eq!(created.body["id"], "lo");
    assert_eq!(created.body["settings"]["mode"], "mac");
    let list = api.call(Method::GET, "/api/v1/reflectors", None).await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    let stats = eventually("counters", Duration::from_secs(10), async || {
        let s = api
            .call(Method::GET, "/api/v1/reflectors/lo/stats", None)
            .await;
        (s.body["totals"]["received"] == 7).then_some(s.body)
    })
    .await;
    assert_eq!(stats["state"], "running");
    assert_eq!(stats["platform"]["backend"], "fake");
    assert_eq!(stats["totals"]["signatures"]["RFC2544"], 6);
    assert_eq!(stats["totals"]["rejects"]["no_signature"], 1);
    assert_eq!(stats["rates"]["tx_pps"], 9.0);
    // A worker that reports no telemetry: zeros, not nulls or absent fields.
    assert_eq!(
        stats["telemetry"],
        json!({"dwell_ns": {"count": 0, "min": 0, "p50": 0, "p90": 0, "p99": 0, "p999": 0, "max": 0},
               "dwell_buckets": {"bounds_ns": [], "le": [], "count": 0, "sum_ns": 0},
               "streams": 0, "untracked_frames": 0, "platform_stamped_frames": 0,
               "loop_timed_out": false})
    );
    let args = api.worker.read("args");
    assert!(
        args.contains(
            "--stamp-port 862 --stamp-mode stateless --max-streams 1024 --stream-idle 300"
        ),
        "{args}"
    );

    let stopped = api
        .call(Method::POST, "/api/v1/reflectors/lo/stop", None)
        .await;
    assert_eq!(
        (stopped.status, stopped.body["state"].as_str()),
        (StatusCode::OK, Some("stopped"))
    );
    let started = api
        .call(Method::POST, "/api/v1/reflectors/lo/start", None)
        .await;
    assert_eq!(started.status, StatusCode::OK);
    assert!(started.body["pid"].is_u64(), "{}", started.body);

    let replaced = api
        .call(
            Method::PUT,
            "/api/v1/reflectors/lo",
            Some(json!({"mode": "all", "no_vlan": true})),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    assert_eq!(
        (
            replaced.body["settings"]["mode"].as_str(),
            replaced.body["settings"]["no_vlan"].as_bool()
        ),
        (Some("all"), Some(true))
    );
    assert_eq!(replaced.body["settings"]["interface"], "lo");

    let health = api.call(Method::GET, "/health", None).await;
    assert_eq!(health.body["reflectors"], 1);
    // Every run printed 7 received frames; totals add up across runs.
    api.call(Method::POST, "/api/v1/reflectors/lo/stop", None)
        .await;
    let stats = api
        .call(Method::GET, "/api/v1/reflectors/lo/stats", None)
        .await;
    let total = stats.body["totals"]["received"].as_u64().unwrap();
    assert!(total >= 7 && total % 7 == 0, "{total}");
    let metrics = api.call(Method::GET, "/metrics", None).await;
    let text = metrics.body.as_str().unwrap();
    let line = format!("reflector_received_frames_total{{reflector=\"lo\"}} {total}\n");
    assert!(text.contains(&line), "{text}");
    assert!(
        text.contains("reflector_up{reflector=\"lo\"} 0.0"),
        "{text}"
    );

    let removed = api
        .call(Method::DELETE, "/api/v1/reflectors/lo", None)
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let gone = api.call(Method::GET, "/api/v1/reflectors/lo", None).await;
    assert_eq!(
        (gone.status, gone.body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("no reflector with id \"lo\""))
    );
}

#[tokio::test]
async fn bad_input_gets_a_precise_4xx() {
    let api = Api::new(None);
    let post =
        |body: &'static str| api.send(Method::POST, "/api/v1/reflectors", Some(body), Some(TOKEN));
    let cases: Vec<(&str, StatusCode, &str)> = vec![
        (
            "{\"interface\": \"lo\",",
            StatusCode::BAD_REQUEST,
            "EOF while parsing",
        ),
        (
            "{\"interface\": \"lo\", \"mode\": \"ports\"}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown variant `ports`, expected one of `mac`, `mac-ip`, `all`",
        ),
        (
            "{\"interface\": \"lo\", \"port\": 70000}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid value: integer `70000`",
        ),
        (
            "{\"interface\": \"lo\", \"colour\": 1}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field `colour`",
        ),
        (
            "{\"interface\": \"lo\", \"oui\": \"00:c0\"}",
            StatusCode::BAD_REQUEST,
            "\"00:c0\" is not an OUI",
        ),
        (
            "{\"interface\": \"lo\", \"signatures\": [\"ping\"]}",
            StatusCode::BAD_REQUEST,
            "unknown signature",
        ),
        (
            "{\"interface\": \"lo\", \"queues\": 0}",
            StatusCode::BAD_REQUEST,
            "queues must be at least 1",
        ),
        ("{}", StatusCode::BAD_REQUEST, "interface is required"),
        (
            "{\"interface\": \"../etc\"}",
            StatusCode::BAD_REQUEST,
            "is not a valid name",
        ),
    ];
    for (body, status, message) in cases {
        let reply = post(body).await;
        let error = reply.body["error"].as_str().unwrap_or_default();
        assert_eq!(reply.status, status, "{body}: {error}");
        assert!(error.contains(message), "{body}: {error}");
    }
    let no_type = api
        .send(Method::POST, "/api/v1/reflectors", None, Some(TOKEN))
        .await;
    assert_eq!(no_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        no_type.body["error"]
            .as_str()
            .unwrap()
            .contains("Content-Type"),
        "{}",
        no_type.body
    );

    let first = post("{\"interface\": \"lo\", \"autostart\": false}").await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.body["state"], "stopped");
    let duplicate = post("{\"interface\": \"lo\"}").await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert_eq!(
        duplicate.body["error"],
        "interface lo is already supervised as reflector \"lo\""
    );
    let moved = api
        .call(
            Method::PUT,
            "/api/v1/reflectors/lo",
            Some(json!({"interface": "eth0"})),
        )
        .await;
    assert_eq!(moved.status, StatusCode::BAD_REQUEST);
    assert!(moved.body["error"]
        .as_str()
        .unwrap()
        .contains("DELETE it and POST a new one"));
    for (method, path) in [
        (Method::POST, "/api/v1/reflectors/eth7/start"),
        (Method::POST, "/api/v1/reflectors/eth7/stop"),
        (Method::DELETE, "/api/v1/reflectors/eth7"),
        (Method::GET, "/api/v1/reflectors/eth7/stats"),
        (Method::GET, "/api/v1/reflectors/eth7/streams"),
        (Method::GET, "/api/v1/reflectors/eth7/streams?limit=5"),
    ] {
        let reply = api.call(method, path, None).await;
        assert_eq!(
            (reply.status, reply.body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("no reflector with id \"eth7\"")),
            "{path}"
        );
    }
    let reload = api.call(Method::POST, "/api/v1/reload", None).await;
    assert_eq!(reload.status, StatusCode::CONFLICT);
    assert!(reload.body["error"]
        .as_str()
        .unwrap()
        .contains("without --config"));
    let unrouted = api.call(Method::GET, "/api/v2/things", None).await;
    assert_eq!(unrouted.status, StatusCode::NOT_FOUND);
    assert_eq!(
        unrouted.body["error"],
        "no route for GET /api/v2/things; see /api/v1/openapi.json"
    );
    let wrong = api.call(Method::PATCH, "/api/v1/reflectors", None).await;
    assert_eq!(
        (wrong.status, wrong.body["error"].as_str()),
        (
            StatusCode::METHOD_NOT_ALLOWED,
            Some("PATCH is not allowed on /api/v1/reflectors")
        )
    );
}

#[tokio::test]
async fn mutating_calls_need_the_token_and_reads_do_not() {
    let api = Api::new(None);
    let body = Some("{\"interface\": \"lo\"}");
    let none = api
        .send(Method::POST, "/api/v1/reflectors", body, None)
        .await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers[header::WWW_AUTHENTICATE], "Bearer");
    assert!(none.body["error"]
        .as_str()
        .unwrap()
        .contains("Authorization: Bearer"));
    let wrong = api
        .send(Method::POST, "/api/v1/reflectors", body, Some("guess"))
        .await;
    assert_eq!(
        (wrong.status, wrong.body["error"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("invalid API token; the API token is in the control plane's configuration")
        )
    );
    // RFC 7235: the scheme is case-insensitive.
    let lower = api
        .send_with(
            Method::POST,
            "/api/v1/reflectors/nosuch9/stop",
            None,
            None,
            &[(header::AUTHORIZATION, &format!("bearer {TOKEN}"))],
        )
        .await;
    assert_eq!(lower.status, StatusCode::NOT_FOUND, "{}", lower.body);
    for (method, path) in [
        (Method::DELETE, "/api/v1/reflectors/lo"),
        (Method::POST, "/api/v1/reload"),
        (Method::PUT, "/api/v1/reflectors/lo"),
    ] {
        assert_eq!(
            api.send(method, path, None, None).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    assert!(
        api.call(Method::GET, "/api/v1/reflectors", None)
            .await
            .body
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing was created"
    );
    for path in [
        "/api/v1/reflectors",
        "/health",
        "/metrics",
        "/api/v1/openapi.json",
        "/",
        "/ui/app.js",
        "/ui/style.css",
    ] {
        assert_eq!(
            api.send(Method::GET, path, None, None).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_dashboard_is_served_with_its_assets() {
    let api = Api::new(None);
    let page = api.send(Method::GET, "/", None, None).await;
    assert!(page.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.body.as_str().unwrap();
    assert!(html.contains("src=\"/ui/app.js\"") && html.contains("href=\"/ui/style.css\""));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no CDN: the page must work offline"
    );
    let script = api.send(Method::GET, "/ui/app.js", None, None).await;
    assert!(script
        .body
        .as_str()
        .unwrap()
        .contains("new EventSource(\"/api/v1/events\")"));
}

#[tokio::test]
async fn events_stream_current_state_then_live_stats() {
    let api = Api::new(None);
    api.call(
        Method::POST,
        "/api/v1/reflectors",
        Some(json!({"interface": "lo"})),
    )
    .await;
    let request = Request::get("/api/v1/events").body(Body::empty()).unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body();
    let mut text = String::new();
    let got_stats = tokio::time::timeout(Duration::from_secs(10), async {
        while !text.contains("event: stats") {
            let frame = body.frame().await.unwrap().unwrap();
            if let Ok(data) = frame.into_data() {
                text.push_str(&String::from_utf8_lossy(&data));
            }
        }
    })
    .await;
    assert!(got_stats.is_ok(), "no stats event in {text}");
    let first = text.split("\n\n").next().unwrap();
    assert!(
        first.starts_with("event: state\ndata: {\"type\":\"state\",\"id\":\"lo\""),
        "{first}"
    );
    let stats = text
        .split("\n\n")
        .find(|e| e.starts_with("event: stats"))
        .unwrap();
    let data: Value = serde_json::from_str(stats.split_once("data: ").unwrap().1).unwrap();
    assert_eq!(data["totals"]["received"], 7);
    // The payload (less its type tag) is a Stats object as the spec describes it.
    let mut payload = data.clone();
    payload.as_object_mut().unwrap().remove("type");
    let mut root = api.spec.clone();
    root["$ref"] = json!("#/components/schemas/Stats");
    let validator = jsonschema::draft202012::new(&root).unwrap();
    assert!(validator.is_valid(&payload), "{payload}");
    payload["totals"]
        .as_object_mut()
        .unwrap()
        .remove("received");
    assert!(
        !validator.is_valid(&payload),
        "the schema really constrains the payload"
    );
}

#[tokio::test]
async fn reload_applies_config_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("control.toml");
    std::fs::write(
        &path,
        "[interfaces.lo]\nmode = \"mac\"\n[interfaces.dummy0]\nautostart = false\n",
    )
    .unwrap();
    let api = Api::new(Some(path.clone()));
    // An API-made reflector that the file does not name survives reloads.
    api.call(
        Method::POST,
        "/api/v1/reflectors",
        Some(json!({"interface": "lo", "netns": null, "autostart": false})),
    )
    .await;
    let first = api.call(Method::POST, "/api/v1/reload", None).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(
        first.body,
        json!({"added": ["dummy0"], "removed": [], "restarted": ["lo"]})
    );
    let lo = api.call(Method::GET, "/api/v1/reflectors/lo", None).await;
    assert_eq!(lo.body["settings"]["mode"], "mac");
    assert_ne!(
        lo.body["state"], "stopped",
        "a changed autostart reflector is (re)started"
    );

    std::fs::write(&path, "[interfaces.lo]\nmode = \"mac\"\n").unwrap();
    let second = api.call(Method::POST, "/api/v1/reload", None).await;
    assert_eq!(
        second.body,
        json!({"added": [], "removed": ["dummy0"], "restarted": []})
    );
    let unchanged = api.call(Method::POST, "/api/v1/reload", None).await;
    assert_eq!(
        unchanged.body,
        json!({"added": [], "removed": [], "restarted": []})
    );

    std::fs::write(&path, "[interfaces.lo]\nmode = \"sideways\"\n").unwrap();
    let bad = api.call(Method::POST, "/api/v1/reload", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body["error"]
            .as_str()
            .unwrap()
            .contains("interfaces.lo: unknown variant `sideways`"),
        "{}",
        bad.body
    );
    let list = api.call(Method::GET, "/api/v1/reflectors", None).await;
    assert_eq!(
        list.body.as_array().unwrap().len(),
        1,
        "a bad file changes nothing"
    );
}

#[tokio::test]
async fn stamp_stream_and_safety_settings_are_validated_before_any_worker_runs() {
    let api = Api::new(None);
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"stamp_port": 3842}),
            StatusCode::BAD_REQUEST,
            "stamp_port 3842 is also the test-frame port",
        ),
        (
            json!({"stamp_port": 0}),
            StatusCode::BAD_REQUEST,
            "stamp_port 0 is not a port",
        ),
        (
            json!({"stamp_mode": "sometimes"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "stamp_mode: unknown variant `sometimes`, expected `stateless` or `stateful`",
        ),
        (
            json!({"wake_latency": "auto"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "wake_latency: unknown variant `auto`, expected `on` or `off`",
        ),
        (
            json!({"xdp_send": "yes"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "xdp_send: unknown variant `yes`, expected `on` or `off`",
        ),
        (
            json!({"stamp_mode": "stateful", "max_streams": 0}),
            StatusCode::BAD_REQUEST,
            "stamp_mode stateful counts packets per stream: it needs max_streams above 0",
        ),
        (
            json!({"max_streams": 2_000_000}),
            StatusCode::BAD_REQUEST,
            "max_streams 2000000 is more than 1000000",
        ),
        (
            json!({"max_streams": -1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "max_streams: invalid value: integer `-1`",
        ),
        (
            json!({"stream_idle_s": 0}),
            StatusCode::BAD_REQUEST,
            "stream_idle_s 0 is out of range: use 1 up to 31536000 seconds",
        ),
        (
            json!({"allow": ["192.0.2.0/24", "300.1.1.0/24"]}),
            StatusCode::BAD_REQUEST,
            "allow[1]: \"300.1.1.0/24\" is not a CIDR prefix like 192.0.2.0/24 or 2001:db8::/32",
        ),
        (
            json!({"allow": ["192.0.2.9/24"]}),
            StatusCode::BAD_REQUEST,
            "did you mean 192.0.2.0/24?",
        ),
        (
            json!({"allow": "192.0.2.0/24"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "allow: invalid type: string \"192.0.2.0/24\", expected a sequence",
        ),
        (
            json!({"rate_limit_pps": 0}),
            StatusCode::BAD_REQUEST,
            "rate_limit_pps 0 would drop everything",
        ),
        (
            json!({"rate_burst": 10}),
            StatusCode::BAD_REQUEST,
            "rate_burst only applies with rate_limit_pps",
        ),
        (
            json!({"rate_limit_pps": 100, "rate_burst": 0}),
            StatusCode::BAD_REQUEST,
            "rate_burst 0 would drop everything",
        ),
        (
            json!({"loop_timeout_s": 0}),
            StatusCode::BAD_REQUEST,
            "loop_timeout_s 0 would never reflect",
        ),
        (
            json!({"loop_timeout_s": 1.5}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "loop_timeout_s: invalid type: floating point `1.5`",
        ),
    ];
    for (mut body, status, message) in cases {
        body["interface"] = json!("lo");
        let reply = api
            .call(Method::POST, "/api/v1/reflectors", Some(body.clone()))
            .await;
        let error = reply.body["error"].as_str().unwrap_or_default();
        assert_eq!(reply.status, status, "{body}: {error}");
        assert!(error.contains(message), "{body}: {error}");
    }
    assert!(
        api.call(Method::GET, "/api/v1/reflectors", None)
            .await
            .body
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing was created"
    );
    assert_eq!(api.worker.read("args"), "", "no worker ever ran");

    // Valid ones reach the worker as its flags, and come back in the settings.
    let created = api
        .call(
            Method::POST,
            "/api/v1/reflectors",
            Some(json!({
                "interface": "lo", "stamp_port": 8620, "stamp_mode": "stateful",
                "max_streams": 64, "stream_idle_s": 30,
                "allow": ["192.0.2.0/24", "2001:db8::/32"],
                "rate_limit_pps": 5000, "rate_burst": 16, "loop_timeout_s": 120,
                "wake_latency": "off", "xdp_send": "off"
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let settings = &created.body["settings"];
    assert_eq!(settings["allow"], json!(["192.0.2.0/24", "2001:db8::/32"]));
    assert_eq!(
        (
            &settings["stamp_mode"],
            &settings["rate_burst"],
            &settings["wake_latency"],
            &settings["xdp_send"]
        ),
        (&json!("stateful"), &json!(16), &json!("off"), &json!("off"))
    );
    let args = eventually(
        "the worker's arguments",
        Duration::from_secs(10),
        async || Some(api.worker.read("args")).filter(|a| !a.is_empty()),
    )
    .await;
    for flag in [
        "--stamp-port 8620",
        "--stamp-mode stateful",
        "--max-streams 64",
        "--stream-idle 30",
        "--allow 192.0.2.0/24,2001:db8::/32",
        "--rate-limit 5000 --rate-burst 16",
        "--wake-latency off --xdp-send off",
        "--loop-timeout 1", // 120 s less the moment between the start and the spawn
    ] {
        assert!(args.contains(flag), "{flag} not in {args}");
    }
    // The same checks guard a replacement.
    let bad = api
        .call(
            Method::PUT,
            "/api/v1/reflectors/lo",
            Some(json!({"rate_burst": 3})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.body["error"],
        "rate_burst only applies with rate_limit_pps: set rate_limit_pps too, or remove rate_burst"
    );
}

#[tokio::test]
async fn telemetry_and_streams_are_served_and_exported() {
    let api = Api::with_worker(
        &format!(
            "while true; do echo '{}'; sleep 0.1; done",
            stats_line_with(7, telemetry())
        ),
        None,
    );
    api.call(
        Method::POST,
        "/api/v1/reflectors",
        Some(json!({"interface": "lo"})),
    )
    .await;
    let stats = eventually("telemetry", Duration::from_secs(10), async || {
        let s = api
            .call(Method::GET, "/api/v1/reflectors/lo/stats", None)
            .await;
        (s.body["telemetry"]["streams"] == 3).then_some(s.body)
    })
    .await;
    let mut telemetry_view = stats["telemetry"].clone();
    let buckets = telemetry_view
        .as_object_mut()
        .unwrap()
        .remove("dwell_buckets")
        .unwrap();
    assert_eq!(
        (&buckets["count"], &buckets["le"][2], &buckets["le"][3]),
        (&json!(1000), &json!(1), &json!(900)),
        "{buckets}"
    );
    assert_eq!(
        telemetry_view,
        json!({"dwell_ns": {"count": 1000, "min": 800, "p50": 1500, "p90": 4000, "p99": 9000, "p999": 20000, "max": 42000},
               "streams": 3, "untracked_frames": 5, "platform_stamped_frames": 990,
               "loop_timed_out": false})
    );

    let all = api
        .call(Method::GET, "/api/v1/reflectors/lo/streams", None)
        .await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(
        (
            &all.body["id"],
            &all.body["total"],
            &all.body["untracked_frames"]
        ),
        (&json!("lo"), &json!(3), &json!(5))
    );
    let streams = all.body["streams"].as_array().unwrap();
    let frames: Vec<u64> = streams
        .iter()
        .map(|s| s["frames"].as_u64().unwrap())
        .collect();
    assert_eq!(frames, [900, 600, 30], "busiest first");
    assert_eq!(
        streams[0],
        json!({"src_mac": "00:c0:17:aa:bb:01", "src_ip": "192.0.2.10", "src_port": 50000,
               "dst_port": 862, "signature": "STAMP", "frames": 900, "bytes": 115200,
               "first_seen_ms": 1_700_000_000_000u64, "last_seen_ms": 1_700_000_005_000u64,
               "sequence": {"lost": 4, "reordered": 2, "duplicated": 1, "too_late": 0, "restarts": 0}})
    );
    assert_eq!(streams[1]["sequence"], Value::Null);
    assert_eq!(streams[2]["src_ip"], "2001:db8::5");

    let one = api
        .call(Method::GET, "/api/v1/reflectors/lo/streams?limit=1", None)
        .await;
    assert_eq!(one.body["total"], 3);
    assert_eq!(one.body["streams"].as_array().unwrap().len(), 1);
    assert_eq!(one.body["streams"][0]["signature"], "STAMP");
    let max = api
        .call(
            Method::GET,
            "/api/v1/reflectors/lo/streams?limit=10000",
            None,
        )
        .await;
    assert_eq!(max.body["streams"].as_array().unwrap().len(), 3);

    for (query, message) in [
        (
            "limit=0",
            "limit must be a whole number from 1 to 10000, not \"0\"",
        ),
        (
            "limit=10001",
            "limit must be a whole number from 1 to 10000, not \"10001\"",
        ),
        (
            "limit=ten",
            "limit must be a whole number from 1 to 10000, not \"ten\"",
        ),
        (
            "limit=",
            "limit must be a whole number from 1 to 10000, not \"\"",
        ),
        (
            "limit=-3",
            "limit must be a whole number from 1 to 10000, not \"-3\"",
        ),
        (
            "top=5",
            "unknown query parameter \"top\"; the only one is limit",
        ),
    ] {
        let reply = api
            .call(
                Method::GET,
                &format!("/api/v1/reflectors/lo/streams?{query}"),
                None,
            )
            .await;
        assert_eq!(
            (reply.status, reply.body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some(message)),
            "{query}"
        );
    }

    let metrics = api.call(Method::GET, "/metrics", None).await;
    let text = metrics.body.as_str().unwrap();
    let stamp = r#"reflector="lo",src_mac="00:c0:17:aa:bb:01",src_ip="192.0.2.10",src_port="50000",dst_port="862",signature="STAMP""#;
    for line in [
        "reflector_dwell_seconds_count{reflector=\"lo\"} 1000".to_owned(),
        "reflector_dwell_seconds_bucket{le=\"0.000001\",reflector=\"lo\"} 1".to_owned(),
        "reflector_dwell_seconds_bucket{le=\"0.0000025\",reflector=\"lo\"} 900".to_owned(),
        "reflector_dwell_seconds_bucket{le=\"0.00001\",reflector=\"lo\"} 990".to_owned(),
        "reflector_dwell_seconds_bucket{le=\"0.000025\",reflector=\"lo\"} 990".to_owned(),
        "reflector_dwell_seconds_bucket{le=\"0.00005\",reflector=\"lo\"} 1000".to_owned(),
        "reflector_dwell_seconds_bucket{le=\"+Inf\",reflector=\"lo\"} 1000".to_owned(),
        "reflector_streams{reflector=\"lo\"} 3.0".to_owned(),
        "reflector_stream_untracked_frames_total{reflector=\"lo\"} 5".to_owned(),
        "reflector_loop_timed_out{reflector=\"lo\"} 0.0".to_owned(),
        format!("reflector_stream_frames_total{{{stamp}}} 900"),
        format!("reflector_stream_bytes_total{{{stamp}}} 115200"),
        format!("reflector_stream_lost_total{{{stamp}}} 4"),
        format!("reflector_stream_reordered_total{{{stamp}}} 2"),
        format!("reflector_stream_duplicated_total{{{stamp}}} 1"),
        r#"reflector_stream_frames_total{reflector="lo",src_mac="00:c0:17:aa:bb:01",src_ip="2001:db8::5",src_port="3842",dst_port="3842",signature="RFC2544"} 30"#.to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
    assert_eq!(text.matches("reflector_stream_lost_total{").count(), 1);

    // After a stop the last run's streams stay readable.
    api.call(Method::POST, "/api/v1/reflectors/lo/stop", None)
        .await;
    let kept = api
        .call(Method::GET, "/api/v1/reflectors/lo/streams", None)
        .await;
    assert_eq!(kept.body["total"], 3);
}

#[tokio::test]
async fn a_session_shows_when_its_loop_timeout_has_expired() {
    // The worker reflects for a moment, then reports its loop timeout as passed.
    let mut expired = telemetry();
    expired.loop_timed_out = true;
    let api = Api::with_worker(
        &format!(
            "echo '{}'\nsleep 0.5\nwhile true; do echo '{}'; sleep 0.1; done",
            stats_line_with(7, telemetry()),
            stats_line_with(9, expired)
        ),
        None,
    );
    let created = api
        .call(
            Method::POST,
            "/api/v1/reflectors",
            Some(json!({"interface": "lo", "autostart": false})),
        )
        .await;
    assert_eq!(
        (
            &created.body["loop_timed_out"],
            &created.body["loop_timeout_remaining_s"]
        ),
        (&json!(false), &Value::Null)
    );

    // A session: started with its own loop timeout (the settings have none).
    for (body, message) in [
        (
            "{\"loop_timeout_s\": 0}",
            "loop_timeout_s 0 would never reflect",
        ),
        (
            "{\"loop_timeout_s\": 99999999}",
            "loop_timeout_s 99999999 is out of range",
        ),
        (
            "{\"timeout\": 5}",
            "unknown field `timeout`, expected `loop_timeout_s`",
        ),
        (
            "{\"loop_timeout_s\": ",
            "the start body must be {\"loop_timeout_s\": SECONDS} or empty",
        ),
    ] {
        let reply = api
            .send(
                Method::POST,
                "/api/v1/reflectors/lo/start",
                Some(body),
                Some(TOKEN),
            )
            .await;
        let error = reply.body["error"].as_str().unwrap_or_default();
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert!(error.contains(message), "{body}: {error}");
    }
    assert_eq!(api.worker.read("args"), "", "refused starts start nothing");
    let started = api
        .call(
            Method::POST,
            "/api/v1/reflectors/lo/start",
            Some(json!({"loop_timeout_s": 30})),
        )
        .await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.body);
    let left = started.body["loop_timeout_remaining_s"].as_f64().unwrap();
    assert!(left > 29.0 && left <= 30.0, "{left}");
    assert_eq!(
        started.body["settings"]["loop_timeout_s"],
        Value::Null,
        "settings unchanged"
    );
    // The worker gets what is left of the session's 30 s.
    let args = eventually(
        "the worker's arguments",
        Duration::from_secs(10),
        async || Some(api.worker.read("args")).filter(|a| a.ends_with('\n')),
    )
    .await;
    let given: f64 = args
        .split_once("--loop-timeout ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no --loop-timeout in {args}"));
    assert!(given > 29.0 && given <= 30.0, "{args}");
    // A second timeout while the session runs would be ignored: refused instead.
    let again = api
        .call(
            Method::POST,
            "/api/v1/reflectors/lo/start",
            Some(json!({"loop_timeout_s": 60})),
        )
        .await;
    assert_eq!(
        (again.status, again.body["error"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("reflector \"lo\" is already started; stop it first to start a session with a new loop timeout")
        )
    );
    // A plain start of a running reflector is still fine.
    let plain = api
        .call(Method::POST, "/api/v1/reflectors/lo/start", None)
        .await;
    assert_eq!(plain.status, StatusCode::OK);

    let view = eventually("the expiry", Duration::from_secs(10), async || {
        let v = api.call(Method::GET, "/api/v1/reflectors/lo", None).await;
        (v.body["loop_timed_out"] == true).then_some(v.body)
    })
    .await;
    assert_eq!(
        view["state"], "running",
        "it runs, it just does not reflect"
    );
    let stats = api
        .call(Method::GET, "/api/v1/reflectors/lo/stats", None)
        .await;
    assert_eq!(stats.body["telemetry"]["loop_timed_out"], true);
    let metrics = api.call(Method::GET, "/metrics", None).await;
    assert!(metrics
        .body
        .as_str()
        .unwrap()
        .contains("reflector_loop_timed_out{reflector=\"lo\"} 1.0\n"));

    // Stopped: the session and its timer end; the flag tells how the last run ended.
    let stopped = api
        .call(Method::POST, "/api/v1/reflectors/lo/stop", None)
        .await;
    assert_eq!(
        (
            &stopped.body["loop_timed_out"],
            &stopped.body["loop_timeout_remaining_s"]
        ),
        (&json!(true), &Value::Null)
    );
    // A new run starts with a clean slate (and no timeout: the settings have none).
    let restarted = api
        .call(Method::POST, "/api/v1/reflectors/lo/start", None)
        .await;
    assert_eq!(
        (
            &restarted.body["loop_timed_out"],
            &restarted.body["loop_timeout_remaining_s"]
        ),
        (&json!(false), &Value::Null)
    );
    let second_run = eventually("the second worker", Duration::from_secs(10), async || {
        api.worker.read("args").lines().nth(1).map(str::to_owned)
    })
    .await;
    assert!(!second_run.contains("--loop-timeout"), "{second_run}");
}

#[tokio::test]
async fn reload_refuses_an_empty_or_missing_file_and_waits_for_missing_interfaces() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("control.toml");
    std::fs::write(&path, "[interfaces.lo]\n[interfaces.nosuch0]\n").unwrap();
    let api = Api::new(Some(path.clone()));
    let first = api.call(Method::POST, "/api/v1/reload", None).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    // From the file as from the API: a missing interface is waited for, not retried.
    let created = api
        .call(
            Method::POST,
            "/api/v1/reflectors",
            Some(json!({"interface": "nosuch1"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    for id in ["nosuch0", "nosuch1"] {
        let view = eventually(
            "waiting_for_interface",
            Duration::from_secs(5),
            async || {
                let view = api
                    .call(Method::GET, &format!("/api/v1/reflectors/{id}"), None)
                    .await
                    .body;
                (view["state"] == "waiting_for_interface").then_some(view)
            },
        )
        .await;
        assert_eq!(
            view["last_error"],
            format!("interface \"{id}\" does not exist; the worker starts when it appears")
        );
        assert_eq!(view["restarts"], 0);
    }

    // A truncated (empty) file would stop everything: refused, nothing changes.
    let before = api.call(Method::GET, "/api/v1/reflectors", None).await.body;
    for (text, expected) in [
        ("", "the file is empty (truncated?)"),
        (
            "listen = \"127.0.0.1:8080\"\n",
            "the file names no interfaces",
        ),
    ] {
        std::fs::write(&path, text).unwrap();
        let bad = api.call(Method::POST, "/api/v1/reload", None).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
        let error = bad.body["error"].as_str().unwrap();
        assert!(
            error.contains(expected)
                && error.contains("write `interfaces = {}`")
                && error.ends_with("nothing was changed"),
            "{error}"
        );
        let after = api.call(Method::GET, "/api/v1/reflectors", None).await.body;
        assert_eq!(after.as_array().unwrap().len(), 3, "{after}");
    }

    // A missing file is the caller's problem to fix (4xx), said precisely.
    std::fs::remove_file(&path).unwrap();
    let missing = api.call(Method::POST, "/api/v1/reload", None).await;
    assert_eq!(missing.status, StatusCode::CONFLICT, "{}", missing.body);
    let error = missing.body["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "reading {}: No such file or directory",
            path.display()
        )) && error.ends_with(
            "restore the file (or its permissions) and reload again; nothing was changed"
        ),
        "{error}"
    );

    // Saying so empties it on purpose; API-made reflectors stay.
    std::fs::write(&path, "interfaces = {}\n").unwrap();
    let emptied = api.call(Method::POST, "/api/v1/reload", None).await;
    assert_eq!(
        emptied.body,
        json!({"added": [], "removed": ["lo", "nosuch0"], "restarted": []})
    );
    let left = api.call(Method::GET, "/api/v1/reflectors", None).await.body;
    assert_eq!(left[0]["id"], "nosuch1", "{left}");
    let _ = before;
}

#[tokio::test]
async fn only_our_host_names_are_answered_and_the_page_cannot_be_framed() {
    let api = Api::new(None);
    let get = async |path: &str, host: &str| {
        api.send_with(Method::GET, path, None, None, &[(header::HOST, host)])
            .await
    };
    for host in [
        "localhost:8080",
        "127.0.0.1:8080",
        "[::1]:8080",
        "dash.localhost",
    ] {
        for path in ["/", "/api/v1/reflectors"] {
            assert_eq!(
                get(path, host).await.status,
                StatusCode::OK,
                "{host} {path}"
            );
        }
    }
    // A rebound name: refused on the dashboard and the API, even with the token.
    for path in [
        "/",
        "/ui/app.js",
        "/api/v1/reflectors",
        "/api/v1/openapi.json",
    ] {
        let reply = get(path, "evil.example:8080").await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
    }
    let stop = api
        .send_with(
            Method::POST,
            "/api/v1/reload",
            None,
            Some(TOKEN),
            &[(header::HOST, "evil.example")],
        )
        .await;
    assert_eq!(stop.status, StatusCode::FORBIDDEN);
    assert_eq!(
        stop.body["error"],
        "this control plane does not answer to the name \"evil.example\" (a guard against \
         DNS rebinding); open it by IP address or localhost, or add the name to \
         allowed_hosts in its config file"
    );
    // Monitoring scrapes by any name.
    for path in ["/metrics", "/health"] {
        assert_eq!(get(path, "rig1.example.net").await.status, StatusCode::OK);
    }
    let page = get("/", "localhost").await;
    assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("default-src 'self'")
            && csp.contains("frame-ancestors 'none'")
            && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(page.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
}

#[tokio::test]
async fn configured_host_names_are_answered() {
    let worker = FakeWorker::new("sleep 10");
    let supervisor = Supervisor::new(Launcher::new(worker.program.clone()), Bus::default());
    let state = AppState::new(supervisor, Token::new(TOKEN), None)
        .with_allowed_hosts(AllowedHosts::new(&["Rig1.Example.net".into()]));
    let app = router(state);
    for (host, status) in [
        ("rig1.example.net:8080", StatusCode::OK),
        ("RIG1.example.net", StatusCode::OK),
        ("rig2.example.net", StatusCode::FORBIDDEN),
    ] {
        let request = Request::get("/api/v1/reflectors")
            .header(header::HOST, host)
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), status, "{host}");
    }
}

#[tokio::test]
async fn patch_changes_only_what_it_names_and_put_replaces_everything() {
    let api = Api::new(None);
    let created = api
        .call(
            Method::POST,
            "/api/v1/reflectors",
            Some(json!({"interface": "lo", "mode": "mac", "port": 4000, "no_vlan": true, "autostart": false})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let settings = |reply: &Reply| {
        let s = &reply.body["settings"];
        (s["mode"].clone(), s["port"].clone(), s["no_vlan"].clone())
    };
    let patched = api
        .call(
            Method::PATCH,
            "/api/v1/reflectors/lo",
            Some(json!({"mode": "all"})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(settings(&patched), (json!("all"), json!(4000), json!(true)));
    // null: back to the default.
    let reset = api
        .call(
            Method::PATCH,
            "/api/v1/reflectors/lo",
            Some(json!({"port": null})),
        )
        .await;
    assert_eq!(settings(&reset), (json!("all"), json!(3842), json!(true)));
    // PUT is a full replace: what it leaves out takes its default.
    let replaced = api
        .call(
            Method::PUT,
            "/api/v1/reflectors/lo",
            Some(json!({"mode": "mac", "port": 5000})),
        )
        .await;
    assert_eq!(
        settings(&replaced),
        (json!("mac"), json!(5000), json!(false))
    );
    for (body, status, error) in [
        (
            json!({"speed": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field `speed`",
        ),
        (
            json!({"mode": "ports"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown variant `ports`",
        ),
        (
            json!({"port": 0, "stamp_port": 0}),
            StatusCode::BAD_REQUEST,
            "stamp_port",
        ),
        (
            json!(["mode", "all"]),
            StatusCode::BAD_REQUEST,
            "a PATCH body is a JSON object of the settings to change",
        ),
        (
            json!({"interface": "eth0"}),
            StatusCode::BAD_REQUEST,
            "DELETE it and POST a new one",
        ),
    ] {
        let reply = api
            .call(Method::PATCH, "/api/v1/reflectors/lo", Some(body.clone()))
            .await;
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
        assert!(
            reply.body["error"].as_str().unwrap().contains(error),
            "{body}: {}",
            reply.body
        );
    }
    let unchanged = api.call(Method::GET, "/api/v1/reflectors/lo", None).await;
    assert_eq!(
        settings(&unchanged),
        (json!("mac"), json!(5000), json!(false))
    );
    let missing = api
        .call(Method::PATCH, "/api/v1/reflectors/eth7", Some(json!({})))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn namespaced_ids_have_no_colon_and_the_old_spelling_still_works() {
    let api = Api::new(None);
    let created = api
        .call(
            Method::POST,
            "/api/v1/reflectors",
            Some(json!({"interface": "veth0", "netns": "lab-r", "autostart": false})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["id"], "veth0@lab-r");
    assert_eq!(
        created.headers[header::LOCATION],
        "/api/v1/reflectors/veth0@lab-r"
    );
    for path in [
        "/api/v1/reflectors/veth0@lab-r",
        "/api/v1/reflectors/lab-r:veth0",
        "/api/v1/reflectors/lab-r%3Aveth0",
    ] {
        let reply = api.call(Method::GET, path, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        assert_eq!(reply.body["id"], "veth0@lab-r", "{path}");
    }
    let patched = api
        .call(
            Method::PATCH,
            "/api/v1/reflectors/lab-r:veth0",
            Some(json!({"mode": "mac"})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let removed = api
        .call(Method::DELETE, "/api/v1/reflectors/lab-r:veth0", None)
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let bad = api
        .call(
            Method::POST,
            "/api/v1/reflectors",
            Some(json!({"interface": "a@b"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}
