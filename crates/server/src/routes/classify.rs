//! `POST /v1/classify?model=&top=5`: the most likely classes of a picture.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use convnet_apps::catalog::Task;
use serde_json::json;

use super::{Params, json, not_a, with_model};
use crate::error::ApiError;
use crate::state::AppState;

/// Classes shown unless `?top` says otherwise.
pub const DEFAULT_TOP: usize = 5;

pub async fn classify(
    State(state): State<AppState>,
    params: Params,
    request: Request,
) -> Result<Response, ApiError> {
    params.only(&["model", "top"])?;
    let top = params.get::<usize>("top")?.unwrap_or(DEFAULT_TOP);
    if top == 0 {
        return Err(ApiError::bad_request("top must be at least 1"));
    }
    with_model(
        &state,
        Task::Classify,
        &params,
        request,
        move |state, entry, upload, picture| {
            let classifier = entry
                .model
                .classifier()
                .ok_or_else(|| not_a(entry, "classifier"))?;
            let predictions = classifier
                .classify(
                    std::slice::from_ref(&picture),
                    top,
                    |_| upload.name.clone(),
                    state.device(),
                )?
                .into_iter()
                .next()
                .unwrap_or_default();
            Ok(json(
                StatusCode::OK,
                json!({
                    "model": entry.info.name,
                    "width": picture.width(),
                    "height": picture.height(),
                    "predictions": predictions,
                }),
            ))
        },
    )
    .await
}
