//! Changing a reflector's settings: `PUT` replaces them all (what the body leaves out
//! takes its default), `PATCH` changes only what the body names (an RFC 7396 merge
//! patch: a key set to `null` goes back to its default). A running worker restarts
//! with the result either way.

use super::{ApiError, AppState, ErrorBody, JsonBody};
use crate::config::{canonical_id, ReflectorForm};
use crate::views::ReflectorView;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{Map, Value};

/// Replace all of a reflector's settings: what the body leaves out takes its default
/// (`interface` and `netns` may be left out; they make up the id and cannot change).
/// A running worker restarts with the new settings. To change only some, PATCH.
#[utoipa::path(put, path = "/api/v1/reflectors/{id}", tag = "reflectors", summary = "Replace a reflector's settings",
    request_body = ReflectorForm, security(("bearer" = [])),
    responses(
        (status = 200, description = "Reconfigured", body = ReflectorView),
        (status = 400, description = "Bad JSON, invalid settings, or settings naming another reflector", body = ErrorBody)))]
pub(super) async fn replace(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(mut form): JsonBody<ReflectorForm>,
) -> Result<Json<ReflectorView>, ApiError> {
    let current = state.supervisor.get(&id).await?.settings;
    if form.interface.is_empty() {
        form.interface = current.interface;
    }
    if form.netns.is_none() {
        form.netns = current.netns;
    }
    apply(&state, &id, form).await
}

/// Change only the settings the body names (an RFC 7396 JSON merge patch: a key set
/// to null goes back to its default); the rest are kept. A running worker restarts.
#[utoipa::path(patch, path = "/api/v1/reflectors/{id}", tag = "reflectors", summary = "Change some of a reflector's settings",
    security(("bearer" = [])),
    request_body(description = "Any subset of the Settings keys; null resets one to its default",
        content((serde_json::Value = "application/json"), (serde_json::Value = "application/merge-patch+json"))),
    responses(
        (status = 200, description = "Reconfigured", body = ReflectorView),
        (status = 400, description = "Not a JSON object, invalid settings, or settings naming another reflector", body = ErrorBody),
        (status = 422, description = "An unknown key or a value of the wrong type", body = ErrorBody)))]
pub(super) async fn patch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(changes): JsonBody<Value>,
) -> Result<Json<ReflectorView>, ApiError> {
    let Value::Object(changes) = changes else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "a PATCH body is a JSON object of the settings to change, e.g. {\"mode\": \"mac\"}",
        ));
    };
    let current = state.supervisor.get(&id).await?.settings;
    let form = merge(current.into(), changes)?;
    apply(&state, &id, form).await
}

/// RFC 7396 over the settings as the API writes them: `null` removes a key, so the
/// form's default applies; unknown keys and wrong types are refused as in a `PUT`.
fn merge(current: ReflectorForm, changes: Map<String, Value>) -> Result<ReflectorForm, ApiError> {
    let Ok(Value::Object(mut merged)) = serde_json::to_value(current) else {
        unreachable!("a ReflectorForm serializes to a JSON object");
    };
    for (key, value) in changes {
        if value.is_null() {
            merged.remove(&key);
        } else {
            merged.insert(key, value);
        }
    }
    serde_json::from_value(Value::Object(merged))
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))
}

/// Check the new settings name the same reflector and are valid, then apply them.
async fn apply(
    state: &AppState,
    id: &str,
    form: ReflectorForm,
) -> Result<Json<ReflectorView>, ApiError> {
    let id = canonical_id(id);
    if form.id() != id {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "settings name reflector {:?}, not {id:?}; to move it, DELETE it and POST a new one",
                form.id()
            ),
        ));
    }
    let settings = form
        .validate()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok(Json(state.supervisor.reconfigure(&id, settings).await?))
}
