//! `POST /v1/detect?model=&score=&iou=&format=json|png`: boxes with class and score, or the
//! picture with them drawn.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use convnet_apps::catalog::Task;
use convnet_apps::detect::{self, DetectOptions};
use image::DynamicImage;
use serde_json::json;

use super::{Format, Params, json, not_a, png, with_model};
use crate::error::{ApiError, one_line};
use crate::state::AppState;

pub async fn detect(
    State(state): State<AppState>,
    params: Params,
    request: Request,
) -> Result<Response, ApiError> {
    params.only(&["model", "score", "iou", "format"])?;
    let options = DetectOptions {
        score: params.get("score")?,
        iou: params.get("iou")?.unwrap_or(DetectOptions::default().iou),
        ..DetectOptions::default()
    };
    options
        .check()
        .map_err(|e| ApiError::bad_request(one_line(e.as_ref())))?;
    let format = params.format()?;
    with_model(
        &state,
        Task::Detect,
        &params,
        request,
        move |state, entry, _, picture| {
            let detector = entry
                .model
                .detector()
                .ok_or_else(|| not_a(entry, "detector"))?;
            let rgb = picture.to_rgb8();
            let detections = detector.run(&rgb, &options, state.device())?;
            let classes = detector.classes();
            if format == Format::Png {
                let drawn = detect::draw(&picture, &detections, &classes);
                return png(&DynamicImage::ImageRgb8(drawn));
            }
            Ok(json(
                StatusCode::OK,
                json!({
                    "model": entry.info.name,
                    "width": rgb.width(),
                    "height": rgb.height(),
                    "detections": detect::found(&detections, &classes),
                    "classes": classes,
                }),
            ))
        },
    )
    .await
}
