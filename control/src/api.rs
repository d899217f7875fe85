//! The REST API, `/metrics`, `/health` and the dashboard, as one axum router.
//!
//! Every failure is a 4xx/5xx with a JSON body `{"error": "..."}` saying exactly what
//! was wrong, so scripts and the dashboard can show it as is.

use crate::auth::Token;
use crate::config::{self, Config, ConfigError, ReflectorForm, ReflectorSettings};
use crate::events::Notice;
use crate::supervisor::{Supervisor, SupervisorError};
use crate::views::{ReflectorView, ReloadSummary, RunState};
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
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::path::PathBuf;
use std::time::Instant;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{Stream, StreamExt};

/// The hand-written OpenAPI description of this router.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Every (method, path) the router serves. The tests hold the router, this table and
/// the OpenAPI description to agreement.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/ui/app.js"),
    ("GET", "/ui/style.css"),
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/reflectors"),
    ("POST", "/api/v1/reflectors"),
    ("GET", "/api/v1/reflectors/{id}"),
    ("PUT", "/api/v1/reflectors/{id}"),
    ("DELETE", "/api/v1/reflectors/{id}"),
    ("POST", "/api/v1/reflectors/{id}/start"),
    ("POST", "/api/v1/reflectors/{id}/stop"),
    ("GET", "/api/v1/reflectors/{id}/stats"),
    ("GET", "/api/v1/reflectors/{id}/streams"),
    ("GET", "/api/v1/events"),
    ("POST", "/api/v1/reload"),
];

#[derive(Clone)]
pub struct AppState {
    pub supervisor: Supervisor,
    pub token: Token,
    /// The config file `POST /api/v1/reload` and SIGHUP re-read.
    pub config_path: Option<PathBuf>,
    started: Instant,
}

impl AppState {
    pub fn new(supervisor: Supervisor, token: Token, config_path: Option<PathBuf>) -> Self {
        AppState {
            supervisor,
            token,
            config_path,
            started: Instant::now(),
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
        let config = Config::load(path).map_err(|e| match e {
            ConfigError::Read { .. } => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
            _ => ApiError::new(StatusCode::BAD_REQUEST, e.to_string()),
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
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
        .route("/reflectors/{id}", get(show).put(replace).delete(remove))
        .route("/reflectors/{id}/start", post(start))
        .route("/reflectors/{id}/stop", post(stop))
        .route("/reflectors/{id}/stats", get(stats))
        .route("/reflectors/{id}/streams", get(streams))
        .route("/events", get(events))
        .route("/reload", post(reload))
        .route("/openapi.json", get(openapi))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .nest("/api/v1", api)
        .route("/health", get(health))
        .route("/metrics", get(prometheus))
        .merge(ui::routes())
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
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

async fn list(State(state): State<AppState>) -> Json<Vec<ReflectorView>> {
    Json(state.supervisor.list().await)
}

async fn create(
    State(state): State<AppState>,
    JsonBody(settings): JsonBody<ReflectorForm>,
) -> Result<Response, ApiError> {
    let settings = settings
        .validate()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    check_interface(&settings).await?;
    let view = state.supervisor.add(settings, false).await?;
    let location = format!("/api/v1/reflectors/{}", view.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response())
}

async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.supervisor.get(&id).await?))
}

/// Replace a reflector's settings. The body may leave out `interface` and `netns`
/// (they make up the id and cannot change); a running worker restarts with the rest.
async fn replace(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(mut settings): JsonBody<ReflectorForm>,
) -> Result<impl IntoResponse, ApiError> {
    let current = state.supervisor.get(&id).await?.settings;
    if settings.interface.is_empty() {
        settings.interface = current.interface.clone();
    }
    if settings.netns.is_none() {
        settings.netns = current.netns.clone();
    }
    if settings.id() != id {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("settings name reflector {:?}, not {id:?}; to move it, DELETE it and POST a new one", settings.id()),
        ));
    }
    let settings = settings
        .validate()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok(Json(state.supervisor.reconfigure(&id, settings).await?))
}

async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.supervisor.remove(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The optional body of `POST .../start`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    /// This session's loop timeout, in place of the settings'.
    loop_timeout_s: Option<u64>,
}

/// Start a reflector. A body `{"loop_timeout_s": N}` makes this a session that stops
/// reflecting after N seconds; without a body the settings apply.
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

async fn stop(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.supervisor.stop(&id).await?))
}

async fn stats(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.supervisor.stats(&id).await?))
}

/// Most streams one request may ask for.
pub const MAX_STREAMS_LIMIT: usize = 10_000;

/// The latest worker's streams, busiest first: `?limit=N` (1 to 10000, default 10000).
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

async fn reload(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.reload().await?))
}

/// Server-Sent Events: first the current state of every reflector, so a new client is
/// in sync without a separate request, then every change as it happens.
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

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let reflectors = state.supervisor.list().await;
    let running = reflectors
        .iter()
        .filter(|r| r.state == RunState::Running)
        .count();
    Json(json!({
        "status": "ok",
        "uptime_s": state.started.elapsed().as_secs_f64(),
        "reflectors": reflectors.len(),
        "running": running,
    }))
}

async fn prometheus(State(state): State<AppState>) -> impl IntoResponse {
    let text = metrics::render(
        state
            .supervisor
            .all_stats_and_streams(metrics::STREAM_SERIES_PER_REFLECTOR)
            .await,
    );
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text)
}

/// A worker for a missing interface would only die and back off forever; say so now.
async fn check_interface(settings: &ReflectorSettings) -> Result<(), ApiError> {
    let exists = match &settings.netns {
        // sysfs shows the namespace it was mounted in, so ask iproute2 for another one.
        Some(ns) => tokio::process::Command::new("ip")
            .args(["-n", ns, "link", "show", "dev", &settings.interface])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success()),
        None => std::path::Path::new("/sys/class/net")
            .join(&settings.interface)
            .exists(),
    };
    if exists {
        return Ok(());
    }
    let place = settings
        .netns
        .as_ref()
        .map(|ns| format!(" in network namespace {ns:?}"))
        .unwrap_or_default();
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        format!("interface {:?} does not exist{place}", settings.interface),
    ))
}
