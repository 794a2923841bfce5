//! Faces: face-api.js's pretrained networks (detector, 68 landmarks, 128-D encoder) over a
//! picture, and names for the faces from a gallery of people's encodings.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use convnet_face::gallery::{Gallery, Identity};
use convnet_face::pipeline::{DETECTOR_MANIFEST, Face, FaceModels};
use convnet_vision::chart::series_colour;
use convnet_vision::draw::draw_box;
use image::{Rgb, RgbImage};
use serde::Serialize;

use crate::models::find_default;

/// Where the fetch script puts face-api's models.
pub const MODELS_DIR: &str = "third_party/face-api/model";

/// face-api's networks from `dir`, else from [`MODELS_DIR`] (looked up from the current folder
/// and beside the binary), keeping detections that score at least `min_score`.
pub fn load(dir: Option<&Path>, min_score: f32, device: &Device) -> Result<FaceModels> {
    if !(0.0..1.0).contains(&min_score) {
        bail!("--min-score must lie in [0, 1), not {min_score}");
    }
    let dir = match dir {
        Some(dir) => dir.to_path_buf(),
        None => default_dir()?,
    };
    let mut models = FaceModels::load(&dir, device)?;
    models.options.min_confidence = min_score;
    Ok(models)
}

/// The folder of face-api's models that the fetch script made.
pub fn default_dir() -> Result<PathBuf> {
    find_default(&format!("{MODELS_DIR}/{DETECTOR_MANIFEST}"))
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .with_context(|| {
            format!(
                "face-api's models are not in {MODELS_DIR}: run scripts/fetch-pretrained.sh face-api or pass --models DIR"
            )
        })
}

/// Refuses a same-person threshold that is not a positive distance.
pub fn check_threshold(threshold: f32) -> Result<()> {
    if !(threshold.is_finite() && threshold > 0.0) {
        bail!("--threshold must be a positive distance, not {threshold}");
    }
    Ok(())
}

/// The faces in `picture`; none is an error that names it.
pub fn faces_in(models: &FaceModels, picture: &RgbImage, name: &str) -> Result<Vec<Face>> {
    let faces = models.faces(picture).with_context(|| name.to_string())?;
    if faces.is_empty() {
        bail!(
            "{name}: no face found (at --min-score {})",
            models.options.min_confidence
        );
    }
    Ok(faces)
}

/// Who a face is, by the gallery.
#[derive(Debug, Clone, Serialize)]
pub struct Named {
    /// The enrolled person closer than the threshold, if any.
    pub name: Option<String>,
    /// The distance to that person, or to the nearest one when nobody is close enough.
    pub distance: Option<f32>,
    /// The nearest person when nobody is close enough.
    pub nearest_unmatched: Option<String>,
}

impl Named {
    /// The face's label in drawings: the name and distance, or `unknown`.
    pub fn label(&self) -> String {
        match (&self.name, self.distance) {
            (Some(n), Some(d)) => format!("{n} {d:.2}"),
            _ => "unknown".into(),
        }
    }
}

/// Each face named from `gallery`: the person whose encodings lie closer than `threshold`.
pub fn identify(gallery: &Gallery, faces: &[Face], threshold: f32) -> Result<Vec<Named>> {
    check_threshold(threshold)?;
    faces
        .iter()
        .map(|face| {
            Ok(match gallery.identify(&face.encoding.0, threshold)? {
                Identity::Known { name, distance } => Named {
                    name: Some(name),
                    distance: Some(distance),
                    nearest_unmatched: None,
                },
                Identity::Unknown { nearest } => Named {
                    name: None,
                    distance: nearest.as_ref().map(|(_, d)| *d),
                    nearest_unmatched: nearest.map(|(n, _)| n),
                },
            })
        })
        .collect()
}

/// The picture with each face's box, label and landmarks.
pub fn draw(picture: &RgbImage, faces: &[Face], labels: &[String]) -> RgbImage {
    let mut img = picture.clone();
    let thickness = (img.width().max(img.height()) / 300).max(2);
    for (i, (face, label)) in faces.iter().zip(labels).enumerate() {
        let colour = if label == "unknown" {
            Rgb([200, 200, 200])
        } else {
            series_colour(i)
        };
        draw_box(&mut img, &face.bbox, label, colour, thickness);
        let r = (thickness as i64 / 2).max(1);
        for &[x, y] in &face.landmarks {
            for dy in -r..=r {
                for dx in -r..=r {
                    let (px, py) = (x as i64 + dx, y as i64 + dy);
                    if px >= 0 && py >= 0 && (px as u32) < img.width() && (py as u32) < img.height()
                    {
                        img.put_pixel(px as u32, py as u32, colour);
                    }
                }
            }
        }
    }
    img
}
