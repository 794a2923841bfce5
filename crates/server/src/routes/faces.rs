//! `POST /v1/faces?format=json|png`: every face with its landmarks and encoding;
//! `POST /v1/faces/identify?threshold=0.6&format=json|png`: every face named from the gallery.
//! A picture without faces answers an empty list: nothing here needs one.

use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use convnet_apps::faces::{self, Named, check_threshold};
use convnet_face::pipeline::{DEFAULT_THRESHOLD, Face};
use image::{DynamicImage, RgbImage};
use serde_json::{Value, json};

use super::{Format, Params, infer, json, png};
use crate::error::{ApiError, one_line};
use crate::picture::{self, Upload};
use crate::state::AppState;

/// A face's box and score, as every faces answer gives them.
fn located(face: &Face) -> Value {
    json!({
        "box": [face.bbox.x1, face.bbox.y1, face.bbox.x2, face.bbox.y2],
        "score": face.score,
    })
}

/// The decoded picture and its faces (found by `state`'s face models, which must be loaded).
pub fn faces_of(state: &AppState, upload: &Upload) -> Result<(RgbImage, Vec<Face>), ApiError> {
    let models = state.models().faces()?;
    let picture = picture::decode(upload)?.to_rgb8();
    let found = models
        .faces(&picture)
        .with_context(|| upload.name.clone())?;
    Ok((picture, found))
}

pub async fn encode(
    State(state): State<AppState>,
    params: Params,
    request: Request,
) -> Result<Response, ApiError> {
    params.only(&["format"])?;
    let format = params.format()?;
    state.models().faces()?;
    let upload = picture::read(request, &state.settings().limits).await?;
    infer(&state, move |state| {
        let (picture, found) = faces_of(state, &upload)?;
        if format == Format::Png {
            let labels: Vec<String> = (1..=found.len()).map(|i| format!("face {i}")).collect();
            return png(&DynamicImage::ImageRgb8(faces::draw(
                &picture, &found, &labels,
            )));
        }
        let items: Vec<Value> = found
            .iter()
            .map(|f| {
                let mut v = located(f);
                v["landmarks"] = json!(f.landmarks);
                v["encoding"] = json!(f.encoding.0);
                v
            })
            .collect();
        Ok(json(
            StatusCode::OK,
            json!({"width": picture.width(), "height": picture.height(), "faces": items}),
        ))
    })
    .await
}

pub async fn identify(
    State(state): State<AppState>,
    params: Params,
    request: Request,
) -> Result<Response, ApiError> {
    params.only(&["threshold", "format"])?;
    let threshold = params.get::<f32>("threshold")?.unwrap_or(DEFAULT_THRESHOLD);
    check_threshold(threshold).map_err(|e| ApiError::bad_request(one_line(e.as_ref())))?;
    let format = params.format()?;
    state.models().faces()?;
    let upload = picture::read(request, &state.settings().limits).await?;
    infer(&state, move |state| {
        let (picture, found) = faces_of(state, &upload)?;
        let named = {
            let gallery = state.gallery()?;
            faces::identify(&gallery, &found, threshold)?
        };
        if format == Format::Png {
            let labels: Vec<String> = named.iter().map(Named::label).collect();
            return png(&DynamicImage::ImageRgb8(faces::draw(
                &picture, &found, &labels,
            )));
        }
        let items: Vec<Value> = found
            .iter()
            .zip(&named)
            .map(|(f, n)| {
                let mut v = located(f);
                v["name"] = json!(n.name);
                v["distance"] = json!(n.distance);
                v["nearest_unmatched"] = json!(n.nearest_unmatched);
                v
            })
            .collect();
        Ok(json(
            StatusCode::OK,
            json!({
                "width": picture.width(),
                "height": picture.height(),
                "threshold": threshold,
                "faces": items,
            }),
        ))
    })
    .await
}
