//! The routes, one module per resource, and what they share: query parameters, the answer's
//! format, running a job on the inference pool.

pub mod classify;
pub mod detect;
pub mod faces;
pub mod gallery;
pub mod meta;
pub mod models;
pub mod segment;

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

use axum::Json;
use axum::extract::{FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use convnet_apps::catalog::{Entry, Task};
use image::DynamicImage;

use crate::error::ApiError;
use crate::picture::{self, Upload};
use crate::pool::PoolError;
use crate::state::AppState;

/// The query string's parameters; each route says which it takes, so a misspelt one is an
/// error rather than silently ignored.
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Query(map) = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map_err(|e| ApiError::bad_request(format!("bad query string: {}", e.body_text())))?;
        Ok(Self(map))
    }
}

impl Params {
    /// Refuses any parameter not in `allowed`.
    pub fn only(&self, allowed: &[&str]) -> Result<&Self, ApiError> {
        let mut unknown: Vec<&str> = self
            .0
            .keys()
            .map(String::as_str)
            .filter(|k| !allowed.contains(k))
            .collect();
        unknown.sort_unstable();
        match unknown.first() {
            None => Ok(self),
            Some(key) if allowed.is_empty() => Err(ApiError::bad_request(format!(
                "unknown query parameter '{key}': this route takes none"
            ))),
            Some(key) => Err(ApiError::bad_request(format!(
                "unknown query parameter '{key}': this route takes {}",
                allowed.join(", ")
            ))),
        }
    }

    /// `key`'s value parsed, if given.
    pub fn get<T: FromStr>(&self, key: &str) -> Result<Option<T>, ApiError>
    where
        T::Err: Display,
    {
        self.0
            .get(key)
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|e| ApiError::bad_request(format!("bad value for {key}: '{v}' ({e})")))
            })
            .transpose()
    }

    /// `?model=NAME`, if given.
    pub fn model(&self) -> Option<&str> {
        self.0.get("model").map(String::as_str)
    }

    /// `?format=json|png` (default json).
    pub fn format(&self) -> Result<Format, ApiError> {
        match self.0.get("format").map(String::as_str) {
            None | Some("json") => Ok(Format::Json),
            Some("png") => Ok(Format::Png),
            Some(other) => Err(ApiError::bad_request(format!(
                "unknown format '{other}': json or png"
            ))),
        }
    }
}

/// What an inference route answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    /// The picture with the answer drawn on it.
    Png,
}

impl From<PoolError> for ApiError {
    fn from(err: PoolError) -> Self {
        match err {
            PoolError::Busy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "every inference worker is busy and the queue is full: retry shortly",
            ),
            PoolError::Failed(message) => ApiError::internal(&anyhow::anyhow!(message)),
        }
    }
}

/// Runs `job` on the inference pool with the server's state.
pub async fn infer<T: Send + 'static>(
    state: &AppState,
    job: impl FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let shared = state.clone();
    state.pool().run(move || job(&shared)).await?
}

/// Runs `job` on the inference pool with the decoded picture of `request` and the loaded model
/// of `task` that `?model=` names (else the only one): what every model route shares. The model
/// is chosen before the body is read, so a wrong name costs no upload.
pub async fn with_model<T: Send + 'static>(
    state: &AppState,
    task: Task,
    params: &Params,
    request: Request,
    job: impl FnOnce(&AppState, &Entry, &Upload, DynamicImage) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let name = state.models().pick(task, params.model())?.info.name.clone();
    let upload = picture::read(request, &state.settings().limits).await?;
    infer(state, move |state| {
        let entry = state.models().pick(task, Some(&name))?;
        let picture = picture::decode(&upload)?;
        job(state, entry, &upload, picture)
    })
    .await
}

/// The error for a model entry of the wrong kind: the catalogue sorts entries by task, so it
/// would be a bug.
pub fn not_a(entry: &Entry, kind: &str) -> ApiError {
    ApiError::internal(&anyhow::anyhow!("{} is not a {kind}", entry.info.name))
}

/// Runs quick blocking work (a gallery query) off the async threads, outside the inference
/// pool's bound.
pub async fn blocking<T: Send + 'static>(
    state: &AppState,
    job: impl FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let shared = state.clone();
    tokio::task::spawn_blocking(move || job(&shared))
        .await
        .map_err(|e| ApiError::internal(&anyhow::anyhow!("a gallery task failed: {e}")))?
}

/// A JSON answer with `status`.
pub fn json(status: StatusCode, value: serde_json::Value) -> Response {
    (status, Json(value)).into_response()
}

/// A drawn picture as the answer.
pub fn png(picture: &DynamicImage) -> Result<Response, ApiError> {
    let bytes = picture::png(picture)?;
    Ok(([(header::CONTENT_TYPE, "image/png")], bytes).into_response())
}

/// A PNG as base64 text, for JSON answers.
pub fn base64_png(picture: &DynamicImage) -> Result<String, ApiError> {
    use base64::Engine;
    Ok(base64::engine::general_purpose::STANDARD.encode(picture::png(picture)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn query_values_are_parsed_and_unknown_names_refused() {
        let p = params(&[("top", "3"), ("format", "png")]);
        assert_eq!(p.get::<usize>("top").unwrap(), Some(3));
        assert_eq!(p.get::<usize>("other").unwrap(), None);
        assert_eq!(p.format().unwrap(), Format::Png);
        assert!(p.only(&["top", "format"]).is_ok());
        let err = p.only(&["top"]).unwrap_err();
        assert!(err.message().contains("'format'"), "{err:?}");
        assert!(
            params(&[("x", "1")])
                .only(&[])
                .unwrap_err()
                .message()
                .contains("takes none")
        );
        let err = params(&[("top", "many")]).get::<usize>("top").unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(params(&[("format", "gif")]).format().is_err());
        assert_eq!(params(&[]).format().unwrap(), Format::Json);
    }
}
