//! `GET /v1/models`: what is loaded, with each model's input, classes, recipe and summary.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::{Params, json};
use crate::error::ApiError;
use crate::state::AppState;

pub async fn list(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    params.only(&[])?;
    Ok(json(
        StatusCode::OK,
        json!({ "models": state.models().infos() }),
    ))
}
