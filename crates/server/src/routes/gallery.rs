//! The gallery of people: `GET /v1/gallery/people` lists them; `POST` and `DELETE
//! /v1/gallery/people/{name}` enrol the largest face of a picture and remove a person. Writes
//! need `Authorization: Bearer T` matching `--token`, and are refused on a server without one.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use convnet_face::gallery::GalleryError;
use convnet_face::pipeline::largest;
use serde_json::json;

use super::faces::faces_of;
use super::{Params, blocking, infer, json};
use crate::error::ApiError;
use crate::picture;
use crate::state::AppState;

/// A gallery failure as the client sees it: naming nobody known or a bad name is theirs, the
/// rest (a damaged or unwritable file) the server's.
fn gallery_error(err: GalleryError) -> ApiError {
    match err {
        GalleryError::UnknownName { .. } => ApiError::not_found(err.to_string()),
        GalleryError::BadName { .. } | GalleryError::NoEncodings { .. } => {
            ApiError::bad_request(err.to_string())
        }
        other => ApiError::internal(&other.into()),
    }
}

/// Lets a gallery write through only with the server's token.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &state.settings().token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "gallery writes are off: start the server with --token T (or CONVNET_TOKEN) to allow them",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(given) if same(given.trim().as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong token")),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "gallery writes need the header Authorization: Bearer <token>",
        )),
    }
}

/// Compares in time that does not depend on where the values first differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn person(name: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    name.map(|Path(n)| n)
        .map_err(|e| ApiError::bad_request(format!("bad name in the path: {}", e.body_text())))
}

pub async fn list(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    params.only(&[])?;
    let people = blocking(&state, |state| {
        state.gallery()?.people().map_err(gallery_error)
    })
    .await?;
    Ok(json(StatusCode::OK, json!({ "people": people })))
}

pub async fn enrol(
    State(state): State<AppState>,
    params: Params,
    name: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    params.only(&[])?;
    authorize(&state, request.headers())?;
    let name = person(name)?;
    state.models().faces()?;
    let upload = picture::read(request, &state.settings().limits).await?;
    infer(&state, move |state| {
        let (_, found) = faces_of(state, &upload)?;
        let face = largest(&found).ok_or_else(|| {
            ApiError::bad_request(format!("{}: no face found to enrol", upload.name))
        })?;
        let encodings = [(face.encoding.0.clone(), upload.name.clone())];
        let total = state
            .gallery()?
            .enroll(&name, &encodings)
            .map_err(gallery_error)?;
        Ok(json(
            StatusCode::CREATED,
            json!({"name": name, "added": encodings.len(), "encodings": total}),
        ))
    })
    .await
}

pub async fn remove(
    State(state): State<AppState>,
    params: Params,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    params.only(&[])?;
    authorize(&state, &headers)?;
    let name = person(name)?;
    let removed = {
        let name = name.clone();
        blocking(&state, move |state| {
            state.gallery()?.remove(&name).map_err(gallery_error)
        })
        .await?
    };
    Ok(json(
        StatusCode::OK,
        json!({"name": name, "removed": removed}),
    ))
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secret2"));
        assert!(!same(b"", b"x"));
    }
}
