//! `/api/v1/probes`: test heads (see [`crate::probes`]) created, started, stopped and
//! removed over the API; their reports so far are in each view and on the event stream.

use super::{created, ApiError, AppState, ErrorBody, JsonBody};
use crate::probes::{ProbeError, ProbeForm, ProbeView};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/probes", get(list).post(create))
        .route("/probes/{id}", get(show).delete(remove))
        .route("/probes/{id}/start", post(start))
        .route("/probes/{id}/stop", post(stop))
}

impl From<ProbeError> for ApiError {
    fn from(error: ProbeError) -> Self {
        let status = match error {
            ProbeError::UnknownId(_) => StatusCode::NOT_FOUND,
            ProbeError::Form(_) => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, error.to_string())
    }
}

#[utoipa::path(get, path = "/api/v1/probes", tag = "probes", summary = "List the probes (test heads) with their reports so far",
    responses((status = 200, description = "Probes", body = Vec<ProbeView>)))]
async fn list(State(state): State<AppState>) -> Json<Vec<ProbeView>> {
    Json(state.probes.list())
}

/// Add a probe: a `reflector probe` child sending test frames to a reflector's MAC;
/// it starts unless `autostart` is false.
#[utoipa::path(post, path = "/api/v1/probes", tag = "probes", summary = "Add a probe",
    request_body = ProbeForm, security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; Location names it", body = ProbeView),
        (status = 400, description = "Bad JSON or an invalid field (the message names it)", body = ErrorBody),
        (status = 404, description = "reflector names no reflector", body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    JsonBody(form): JsonBody<ProbeForm>,
) -> Result<Response, ApiError> {
    if let Some(reflector) = &form.reflector {
        // A link to nothing would show the probe next to no reflector.
        state.supervisor.get(reflector).await?;
    }
    let view = state.probes.create(form).await?;
    Ok(created(format!("/api/v1/probes/{}", view.id), view))
}

#[utoipa::path(get, path = "/api/v1/probes/{id}", tag = "probes", summary = "One probe",
    responses(
        (status = 200, description = "The probe", body = ProbeView)))]
async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ProbeView>, ApiError> {
    Ok(Json(state.probes.get(&id)?))
}

/// Stop the probe and remove it.
#[utoipa::path(delete, path = "/api/v1/probes/{id}", tag = "probes", summary = "Remove a probe",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed")))]
async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.probes.remove(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Start a new run (counts start afresh); a running probe keeps running.
#[utoipa::path(post, path = "/api/v1/probes/{id}/start", tag = "probes", summary = "Start a probe",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The probe", body = ProbeView)))]
async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ProbeView>, ApiError> {
    Ok(Json(state.probes.start(&id).await?))
}

/// Returns once the probe has exited, with its final report.
#[utoipa::path(post, path = "/api/v1/probes/{id}/stop", tag = "probes", summary = "Stop a probe",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The probe, with its final report", body = ProbeView)))]
async fn stop(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ProbeView>, ApiError> {
    Ok(Json(state.probes.stop(&id).await?))
}
