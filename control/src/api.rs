//! The REST API, `/metrics`, `/health` and the dashboard, as one axum router.
//!
//! Every failure is a 4xx/5xx with a JSON body `{"error": "..."}` saying exactly what
//! was wrong, so scripts and the dashboard can show it as is.

use crate::auth::Token;
use crate::config::{self, Config, ConfigError, ReflectorForm};
use crate::events::Notice;
use crate::guard::{self, AllowedHosts};
use crate::history::History;
use crate::probes::{self as test_heads, Probes};
use crate::supervisor::{Supervisor, SupervisorError};
use crate::views::{ReflectorView, ReloadSummary, RunState, StatsView, StreamsView};
use crate::{metrics, ui};
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::path::PathBuf;
use std::time::Instant;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{Stream, StreamExt};

mod doc;
mod history;
mod probes;
mod update;

pub use doc::openapi_json;

/// Every (method, path) the router serves besides the embedded files
/// ([`ui::ASSETS`]). The tests hold the router, this table and the OpenAPI
/// description to agreement.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/reflectors"),
    ("POST", "/api/v1/reflectors"),
    ("GET", "/api/v1/reflectors/{id}"),
    ("PUT", "/api/v1/reflectors/{id}"),
    ("PATCH", "/api/v1/reflectors/{id}"),
    ("DELETE", "/api/v1/reflectors/{id}"),
    ("POST", "/api/v1/reflectors/{id}/start"),
    ("POST", "/api/v1/reflectors/{id}/stop"),
    ("GET", "/api/v1/reflectors/{id}/stats"),
    ("GET", "/api/v1/reflectors/{id}/streams"),
    ("GET", "/api/v1/reflectors/{id}/history"),
    ("GET", "/api/v1/probes"),
    ("POST", "/api/v1/probes"),
    ("GET", "/api/v1/probes/{id}"),
    ("DELETE", "/api/v1/probes/{id}"),
    ("POST", "/api/v1/probes/{id}/start"),
    ("POST", "/api/v1/probes/{id}/stop"),
    ("GET", "/api/v1/events"),
    ("POST", "/api/v1/reload"),
];

#[derive(Clone)]
pub struct AppState {
    pub supervisor: Supervisor,
    pub token: Token,
    /// The config file `POST /api/v1/reload` and SIGHUP re-read.
    pub config_path: Option<PathBuf>,
    /// The last 15 minutes of every reflector's rates.
    pub history: History,
    /// The test heads (`reflector probe` children).
    pub probes: Probes,
    /// Names besides localhost and IP addresses the API and dashboard answer to.
    pub allowed_hosts: AllowedHosts,
    started: Instant,
}

impl AppState {
    pub fn new(supervisor: Supervisor, token: Token, config_path: Option<PathBuf>) -> Self {
        AppState {
            history: History::follow(supervisor.bus()),
            probes: Probes::new(supervisor.launcher().clone(), supervisor.bus().clone()),
            supervisor,
            token,
            config_path,
            allowed_hosts: AllowedHosts::default(),
            started: Instant::now(),
        }
    }

    /// Also answer to these host names (the config file's `allowed_hosts`).
    pub fn with_allowed_hosts(self, allowed_hosts: AllowedHosts) -> Self {
        AppState {
            allowed_hosts,
            ..self
        }
    }

    /// Re-read the config file and apply its reflectors.
    pub async fn reload(&self) -> Result<ReloadSummary, ApiError> {
        let path = self.config_path.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "the control plane was started without --config; nothing to reload",
            )
        })?;
        // Either way nothing changes: the reflectors keep running as they are.
        let config = Config::load(path).map_err(|e| match e {
            // The file the control plane was started with is gone or unreadable:
            // a conflict with the server's state, not a server fault.
            ConfigError::Read { .. } => ApiError::new(
                StatusCode::CONFLICT,
                format!("{e}; restore the file (or its permissions) and reload again; nothing was changed"),
            ),
            _ => ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("{e}; nothing was changed"),
            ),
        })?;
        Ok(self.supervisor.reload(config.reflectors).await?)
    }
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

/// Every error's body.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What was wrong, and what to do about it.
    pub error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message,
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<SupervisorError> for ApiError {
    fn from(error: SupervisorError) -> Self {
        let status = match error {
            SupervisorError::UnknownId(_) | SupervisorError::Gone(_) => StatusCode::NOT_FOUND,
            SupervisorError::Duplicate { .. } | SupervisorError::AlreadyStarted(_) => {
                StatusCode::CONFLICT
            }
        };
        ApiError::new(status, error.to_string())
    }
}

/// A JSON body whose rejection is an [`ApiError`], so bad JSON gets the same
/// `{"error": ...}` shape as everything else (with serde's line and column).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    ApiError::new(rejection.status(), rejection.body_text())
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/reflectors", get(list).post(create))
        .route(
            "/reflectors/{id}",
            get(show)
                .put(update::replace)
                .patch(update::patch)
                .delete(remove),
        )
        .route("/reflectors/{id}/start", post(start))
        .route("/reflectors/{id}/stop", post(stop))
        .route("/reflectors/{id}/stats", get(stats))
        .route("/reflectors/{id}/streams", get(streams))
        .route("/events", get(events))
        .route("/reload", post(reload))
        .route("/openapi.json", get(openapi))
        .merge(history::routes())
        .merge(probes::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .nest("/api/v1", api)
        .route("/health", get(health))
        .route("/metrics", get(prometheus))
        .merge(ui::routes())
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn_with_state(
            state.allowed_hosts.clone(),
            guard::check_host,
        ))
        .layer(middleware::from_fn(guard::security_headers))
        .with_state(state)
}

/// Reads are open (the listener is loopback by default); anything that changes state
/// needs the token.
async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match state.token.check(header) {
        Ok(()) => next.run(request).await,
        Err(message) => ApiError::new(StatusCode::UNAUTHORIZED, message).into_response(),
    }
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no route for {method} {}; see /api/v1/openapi.json",
            uri.path()
        ),
    )
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

#[utoipa::path(get, path = "/api/v1/reflectors", tag = "reflectors", summary = "List reflectors",
    responses((status = 200, description = "All reflectors", body = Vec<ReflectorView>)))]
async fn list(State(state): State<AppState>) -> Json<Vec<ReflectorView>> {
    Json(state.supervisor.list().await)
}

/// Add a reflector; it starts unless `autostart` is false. An interface that does
/// not exist is accepted: the reflector shows `waiting_for_interface` until it appears.
#[utoipa::path(post, path = "/api/v1/reflectors", tag = "reflectors", summary = "Add a reflector",
    request_body = ReflectorForm, security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; Location names it", body = ReflectorView),
        (status = 400, description = "Bad JSON or invalid settings", body = ErrorBody),
        (status = 409, description = "The interface already has a reflector", body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    JsonBody(settings): JsonBody<ReflectorForm>,
) -> Result<Response, ApiError> {
    let settings = settings
        .validate()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let view = state.supervisor.add(settings, false).await?;
    Ok(created(format!("/api/v1/reflectors/{}", view.id), view))
}

/// 201 with the new resource's `location` and its view.
fn created(location: String, view: impl serde::Serialize) -> Response {
    (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response()
}

#[utoipa::path(get, path = "/api/v1/reflectors/{id}", tag = "reflectors", summary = "One reflector",
    responses(
        (status = 200, description = "The reflector", body = ReflectorView)))]
async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.supervisor.get(&id).await?))
}

/// Stop the worker and remove the reflector.
#[utoipa::path(delete, path = "/api/v1/reflectors/{id}", tag = "reflectors", summary = "Remove a reflector",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed")))]
async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.supervisor.remove(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The optional body of `POST .../start`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = StartInput)]
struct StartBody {
    /// This session's loop timeout, in place of the settings'.
    loop_timeout_s: Option<u64>,
}

/// Start a reflector. A body `{"loop_timeout_s": N}` makes this a session that stops
/// reflecting after N seconds; without a body the settings apply.
#[utoipa::path(post, path = "/api/v1/reflectors/{id}/start", tag = "reflectors", summary = "Start a reflector",
    security(("bearer" = [])),
    request_body(content = Option<StartBody>, description = "Optional: a session with its own loop timeout; a crashed worker restarted within it gets only the time left"),
    responses(
        (status = 200, description = "Started (or already running)", body = ReflectorView),
        (status = 400, description = "The body is not a valid StartInput, or its loop_timeout_s is out of range", body = ErrorBody),
        (status = 409, description = "A loop timeout was given but the reflector is already started", body = ErrorBody)))]
async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let body: StartBody = if body.iter().all(u8::is_ascii_whitespace) {
        StartBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the start body must be {{\"loop_timeout_s\": SECONDS}} or empty: {e}"),
            )
        })?
    };
    if let Some(seconds) = body.loop_timeout_s {
        // The same rule as the setting, with the same message.
        config::check_loop_timeout(seconds)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    }
    Ok(Json(
        state
            .supervisor
            .start_session(&id, body.loop_timeout_s)
            .await?,
    ))
}

/// Stop the worker: SIGTERM, SIGKILL after a grace period; returns once it exited.
#[utoipa::path(post, path = "/api/v1/reflectors/{id}/stop", tag = "reflectors", summary = "Stop a reflector",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stopped", body = ReflectorView)))]
async fn stop(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.supervisor.stop(&id).await?))
}

/// Totals, rates, per-signature and per-reason counts, platform mode, restarts and
/// the latest worker's telemetry (dwell time, streams, loop-timeout flag).
#[utoipa::path(get, path = "/api/v1/reflectors/{id}/stats", tag = "reflectors", summary = "A reflector's statistics",
    responses(
        (status = 200, description = "Statistics", body = StatsView)))]
async fn stats(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.supervisor.stats(&id).await?))
}

/// Most streams one request may ask for.
pub const MAX_STREAMS_LIMIT: usize = 10_000;

/// The latest worker's streams, busiest first: `?limit=N` (1 to 10000, default 10000).
#[utoipa::path(get, path = "/api/v1/reflectors/{id}/streams", tag = "reflectors", summary = "A reflector's streams",
    params(
        ("id" = String, Path, description = "Reflector id: the interface name, or IFACE@NETNS for a reflector in a network namespace (NETNS:IFACE is still accepted)"),
        ("limit" = Option<usize>, Query, description = "Most streams to return, 1 to 10000 (default 10000)")),
    responses(
        (status = 200, description = "Streams, busiest first", body = StreamsView),
        (status = 400, description = "limit is not a number from 1 to 10000, or an unknown query parameter", body = ErrorBody)))]
async fn streams(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let limit = streams_limit(&query)?;
    Ok(Json(state.supervisor.streams(&id, limit).await?))
}

fn streams_limit(query: &[(String, String)]) -> Result<usize, ApiError> {
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, message);
    let mut limit = MAX_STREAMS_LIMIT;
    for (key, value) in query {
        if key != "limit" {
            return Err(bad(format!(
                "unknown query parameter {key:?}; the only one is limit"
            )));
        }
        limit = value
            .parse()
            .ok()
            .filter(|n| (1..=MAX_STREAMS_LIMIT).contains(n))
            .ok_or_else(|| {
                bad(format!(
                    "limit must be a whole number from 1 to {MAX_STREAMS_LIMIT}, not {value:?}"
                ))
            })?;
    }
    Ok(limit)
}

/// Re-read the config file: added interfaces start, removed ones stop, changed ones
/// restart (as SIGHUP does). A file that is empty or has no interfaces table is
/// refused; `interfaces = {}` says no interface is meant.
#[utoipa::path(post, path = "/api/v1/reload", tag = "reflectors", summary = "Reload the config file",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Applied", body = ReloadSummary),
        (status = 400, description = "The file is invalid, empty or names no interfaces; nothing was changed", body = ErrorBody),
        (status = 409, description = "Started without --config, or the file is missing or unreadable; nothing was changed", body = ErrorBody)))]
async fn reload(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.reload().await?))
}

/// Server-Sent Events: first the current state of every reflector, so a new client is
/// in sync without a separate request, then every change as it happens: `state` (a
/// Reflector), `stats` (Stats), `removed` ({id}), `probe` (Probe), `probe_removed`
/// ({id}); each event's data is JSON with a `type` field equal to the event name.
#[utoipa::path(get, path = "/api/v1/events", tag = "reflectors", summary = "Live events",
    responses((status = 200, description = "Event stream", content_type = "text/event-stream", body = String)))]
async fn events(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    // Subscribe before taking the snapshot, so no change falls between the two.
    let live = BroadcastStream::new(state.supervisor.bus().subscribe()).filter_map(Result::ok);
    let current = tokio_stream::iter(state.supervisor.list().await.into_iter().map(Notice::State));
    let stream = current.chain(live).map(|notice| {
        Ok(SseEvent::default()
            .event(notice.kind())
            .json_data(&notice)
            .unwrap_or_else(|e| {
                // Our notices always serialize; report rather than drop if that ever breaks.
                SseEvent::default().event("error").data(e.to_string())
            }))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// This description, generated from the types the API serves.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", summary = "The OpenAPI description",
    responses((status = 200, description = "OpenAPI 3.1 description", body = serde_json::Value)))]
async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json())
}

/// `GET /health`.
#[derive(Serialize, utoipa::ToSchema)]
struct Health {
    /// Always `ok`: the control plane answers.
    status: &'static str,
    uptime_s: f64,
    /// Reflectors configured.
    reflectors: usize,
    /// Reflectors whose worker runs.
    running: usize,
}

/// Liveness of the control plane (any Host may ask).
#[utoipa::path(get, path = "/health", tag = "meta", summary = "Liveness",
    responses((status = 200, description = "Up", body = Health)))]
async fn health(State(state): State<AppState>) -> Json<Health> {
    let reflectors = state.supervisor.list().await;
    let running = reflectors
        .iter()
        .filter(|r| r.state == RunState::Running)
        .count();
    Json(Health {
        status: "ok",
        uptime_s: state.started.elapsed().as_secs_f64(),
        reflectors: reflectors.len(),
        running,
    })
}

/// Prometheus metrics (OpenMetrics text; any Host may ask).
#[utoipa::path(get, path = "/metrics", tag = "meta", summary = "Prometheus metrics",
    responses((status = 200, description = "Metrics", content_type = "application/openmetrics-text", body = String)))]
async fn prometheus(State(state): State<AppState>) -> impl IntoResponse {
    let text = metrics::render(
        state
            .supervisor
            .all_stats_and_streams(metrics::STREAM_SERIES_PER_REFLECTOR)
            .await,
    );
    let text = test_heads::metrics::append(text, state.probes.list());
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text)
}
