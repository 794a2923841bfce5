//! `POST /v1/segment?model=&format=json|png`: the class of every pixel, as a mask PNG with the
//! area of each class present, or the picture with the classes overlaid.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use convnet_apps::catalog::Task;
use convnet_apps::segment::render_overlay;
use image::DynamicImage;
use serde_json::json;

use super::{Format, Params, base64_png, json, not_a, png, with_model};
use crate::error::ApiError;
use crate::state::AppState;

pub async fn segment(
    State(state): State<AppState>,
    params: Params,
    request: Request,
) -> Result<Response, ApiError> {
    params.only(&["model", "format"])?;
    let format = params.format()?;
    with_model(
        &state,
        Task::Segment,
        &params,
        request,
        move |state, entry, _, picture| {
            let segmenter = entry
                .model
                .segmenter()
                .ok_or_else(|| not_a(entry, "segmenter"))?;
            let seg = segmenter.segment(&picture, state.device())?;
            let overlay = DynamicImage::ImageRgb8(render_overlay(
                &picture.to_rgb8(),
                &seg.mask,
                &seg.classes,
            ));
            if format == Format::Png {
                return png(&overlay);
            }
            let present = seg.present();
            Ok(json(
                StatusCode::OK,
                json!({
                    "model": entry.info.name,
                    "width": picture.width(),
                    "height": picture.height(),
                    "classes": present,
                    "mask_png": base64_png(&DynamicImage::ImageLuma8(seg.mask))?,
                    "overlay_png": base64_png(&overlay)?,
                }),
            ))
        },
    )
    .await
}
