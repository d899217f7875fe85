//! `GET /api/v1/reflectors/{id}/history`: the last 15 minutes of a reflector's rates
//! (see [`crate::history`]), for the dashboard's charts on page load.

use super::{ApiError, AppState};
use crate::history::HistoryView;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/reflectors/{id}/history", get(history))
}

/// The last 15 minutes of the reflector's rates, one sample per second at most,
/// oldest first (kept in memory; empty after a control-plane restart).
#[utoipa::path(get, path = "/api/v1/reflectors/{id}/history", tag = "reflectors", summary = "A reflector's recent rates",
    responses(
        (status = 200, description = "History, as columns", body = HistoryView)))]
async fn history(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<HistoryView>, ApiError> {
    // Unknown ids are a 404, not an empty history; the view's id is the canonical one
    // (a request may use the older NETNS:IFACE spelling).
    let id = state.supervisor.get(&id).await?.id;
    Ok(Json(state.history.view(&id)))
}
