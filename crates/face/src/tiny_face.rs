//! face-api.js's Tiny Face Detector end to end, as its `TinyYolov2Base.detect` runs it on a
//! tensor: the network is convnet's zoo model `tiny-face` (a Tiny-YOLOv2 of separable
//! convolutions, built from `convnet_zoo::tiny_face` and loaded with face-api's TF.js weights);
//! around it, face-api's input and output:
//!
//! - input ([`crate::input::tiny_face_values`]): the picture padded to a square at the bottom
//!   and right, resized with TensorFlow's legacy bilinear to the input side (a multiple of 32,
//!   416 by default), `(x - mean) / 255`;
//! - output (`extractBoxes`): for every cell `(row, col)` and anchor, the score is
//!   `sigmoid(t_o)`; a box scoring above the threshold has centre `((col + σ(t_x)) / cells,
//!   (row + σ(t_y)) / cells)` and size `anchor · e^t / cells`, each scaled by `side /
//!   round(reshaped side)` (the picture fills `round(w · side / longest)` columns of the
//!   square, [`reshaped_dimensions`]), all in float64 as JavaScript computes it;
//! - non-max suppression in the network's coordinates, best score first (ties: the later
//!   cell), dropping a box whose IoU with a kept one is above the threshold (face-api fixes
//!   0.4);
//! - the boxes in the picture's pixels: the relative box times the picture's width and height.
//!   Like face-api's, a box may reach past the picture's edges; callers clip it if they must.

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use convnet_layers::{Mode, Sequential};
use convnet_vision::BBox;
use convnet_weights::LoadOptions;
use convnet_zoo::tiny_face::TinyFaceConfig;
use image::RgbImage;

use crate::FaceError;
use crate::detector::FaceBox;
use crate::input::{reshaped_dimensions, tiny_face_values};

/// The manifest of face-api's `model/` folder that holds the detector's weights.
pub const TINY_FACE_MANIFEST: &str = "tiny_face_detector_model-weights_manifest.json";

/// face-api's default input side.
pub const DEFAULT_INPUT_SIZE: usize = 416;

/// face-api's `BOX_ANCHORS` (width, height in grid cells), as JavaScript reads the literals
/// (float64; `convnet_zoo::tiny_face::ANCHORS` holds them as float32).
const ANCHORS: [(f64, f64); 5] = [
    (1.603231, 2.094468),
    (6.041143, 7.080126),
    (2.882459, 3.518061),
    (4.266906, 5.178857),
    (9.041765, 10.66308),
];

/// Values per anchor: `t_x, t_y, t_w, t_h, t_o`.
const PER_ANCHOR: usize = 5;

/// How [`detect`] filters boxes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TinyFaceOptions {
    /// Keep boxes scoring above this, in `[0, 1)` (face-api's `scoreThreshold`, 0.5).
    pub score_threshold: f32,
    /// Drop a box whose IoU with a better kept box is above this, in `(0, 1]` (face-api: 0.4).
    pub iou_threshold: f32,
}

impl Default for TinyFaceOptions {
    fn default() -> Self {
        Self {
            score_threshold: 0.5,
            iou_threshold: 0.4,
        }
    }
}

/// Refuses an input side face-api's network cannot take: a positive multiple of 32.
pub fn check_input_size(size: usize) -> Result<(), FaceError> {
    if size < 32 || !size.is_multiple_of(32) {
        return Err(FaceError::Input(format!(
            "the Tiny Face Detector's input side must be a multiple of 32 (at least 32), not {size}"
        )));
    }
    Ok(())
}

/// The zoo's `tiny-face` network at input side `size`, with the weights of face-api's
/// `tiny_face_detector_model-weights_manifest.json` (its `.bin` shard beside it).
pub fn load_model(manifest: &Path, size: usize, device: &Device) -> Result<Sequential, FaceError> {
    check_input_size(size)?;
    let config = TinyFaceConfig {
        image_size: size,
        ..TinyFaceConfig::face_api()
    };
    let model = config
        .spec()
        .build(device)
        .map_err(|e| FaceError::Input(format!("building the Tiny Face Detector: {e}")))?;
    let dict = convnet_weights::read_tfjs(manifest)?;
    let (model, _) = convnet_weights::load(
        model,
        &dict,
        &LoadOptions {
            allow_partial: false,
        },
    )?;
    Ok(model)
}

/// The faces `model` (the zoo's `tiny-face` at input side `size`, on `device`) finds in
/// `image`, in face-api's order (best first), in the picture's pixels (see the module
/// documentation).
pub fn detect(
    model: &Sequential,
    size: usize,
    image: &RgbImage,
    options: &TinyFaceOptions,
    device: &Device,
) -> Result<Vec<FaceBox>, FaceError> {
    check_input_size(size)?;
    let valid = (0.0..1.0).contains(&options.score_threshold)
        && options.iou_threshold > 0.0
        && options.iou_threshold <= 1.0;
    if !valid {
        return Err(FaceError::Input(format!(
            "the score threshold must lie in [0, 1) and the IoU threshold in (0, 1], not {} and {}",
            options.score_threshold, options.iou_threshold
        )));
    }
    let (width, height) = image.dimensions();
    if width == 0 || height == 0 {
        return Err(FaceError::Input(format!(
            "the picture is empty ({width}x{height} pixels)"
        )));
    }
    let x = Tensor::<4>::from_data(
        TensorData::new(tiny_face_values(image, size), [1, 3, size, size]),
        device,
    );
    let y = model
        .forward(x, Mode::Eval)
        .map_err(|e| FaceError::Input(format!("running the Tiny Face Detector: {e}")))?
        .into_map2d()
        .map_err(|e| FaceError::Input(format!("the Tiny Face Detector's output: {e:?}")))?;
    let [_, channels, rows, cols] = y.dims();
    if channels != ANCHORS.len() * PER_ANCHOR || rows != cols {
        return Err(FaceError::Input(format!(
            "the Tiny Face Detector gave a {channels}x{rows}x{cols} output, not {}xSxS",
            ANCHORS.len() * PER_ANCHOR
        )));
    }
    let values = y
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| FaceError::Input(format!("reading the detector's output: {e:?}")))?;
    let reshaped = reshaped_dimensions(width, height, size);
    let candidates = extract_boxes(&values, cols, reshaped, options.score_threshold);
    let kept = suppress(&candidates, size as f64, f64::from(options.iou_threshold));
    let (w, h) = (f64::from(width), f64::from(height));
    Ok(kept
        .into_iter()
        .map(|i| {
            let (b, score) = candidates[i];
            FaceBox {
                bbox: BBox {
                    x1: (b[0] * w) as f32,
                    y1: (b[1] * h) as f32,
                    x2: ((b[0] + b[2]) * w) as f32,
                    y2: ((b[1] + b[3]) * h) as f32,
                },
                score: score as f32,
            }
        })
        .collect())
}

/// JavaScript's `1 / (1 + Math.exp(-x))`.
fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// face-api's `extractBoxes`: the boxes scoring above `threshold` as `([x, y, width, height]`
/// relative to the picture, score), in `(row, col, anchor)` order. `values` is the network's
/// output `[anchors · 5, cells, cells]` (channels first); `reshaped` the picture's size inside
/// the input square.
fn extract_boxes(
    values: &[f32],
    cells: usize,
    reshaped: (f64, f64),
    threshold: f32,
) -> Vec<([f64; 4], f64)> {
    let side = reshaped.0.max(reshaped.1);
    let (fx, fy) = (side / reshaped.0, side / reshaped.1);
    let n = cells as f64;
    let at = |channel: usize, row: usize, col: usize| {
        f64::from(values[(channel * cells + row) * cells + col])
    };
    let mut out = Vec::new();
    for row in 0..cells {
        for col in 0..cells {
            for (anchor, &(aw, ah)) in ANCHORS.iter().enumerate() {
                let base = anchor * PER_ANCHOR;
                let score = sigmoid(at(base + 4, row, col));
                // face-api: `!scoreThreshold || score > scoreThreshold`; NaN falls out here.
                if score.is_nan() || score <= f64::from(threshold) {
                    continue;
                }
                let ct_x = ((col as f64 + sigmoid(at(base, row, col))) / n) * fx;
                let ct_y = ((row as f64 + sigmoid(at(base + 1, row, col))) / n) * fy;
                let bw = ((at(base + 2, row, col).exp() * aw) / n) * fx;
                let bh = ((at(base + 3, row, col).exp() * ah) / n) * fy;
                let b = [ct_x - bw / 2.0, ct_y - bh / 2.0, bw, bh];
                if b.iter().all(|v| v.is_finite()) {
                    out.push((b, score));
                }
            }
        }
    }
    out
}

/// face-api's `nonMaxSuppression` over `[x, y, width, height]` boxes scaled by `scale` (it
/// suppresses in the network's pixels): indices best first, the later of two equal scores
/// first; a box is dropped when its IoU with the box just kept is above `iou_threshold`.
fn suppress(boxes: &[([f64; 4], f64)], scale: f64, iou_threshold: f64) -> Vec<usize> {
    // A stable ascending sort, taken from the end.
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| boxes[a].1.total_cmp(&boxes[b].1));
    let scaled: Vec<[f64; 4]> = boxes.iter().map(|(b, _)| b.map(|v| v * scale)).collect();
    let mut kept = Vec::new();
    while let Some(current) = order.pop() {
        kept.push(current);
        order.retain(|&i| iou(&scaled[current], &scaled[i]) <= iou_threshold);
    }
    kept
}

/// face-api's `iou` of two `[x, y, width, height]` boxes.
fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let w = ((a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0])).max(0.0);
    let h = ((a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    inter / (a[2] * a[3] + b[2] * b[3] - inter)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output of one cell grid of `cells` where every anchor scores nothing but `anchor` of
    /// cell `(row, col)`, which predicts `t`.
    fn output(cells: usize, anchor: usize, row: usize, col: usize, t: [f32; 5]) -> Vec<f32> {
        let mut v = vec![-20.0; ANCHORS.len() * PER_ANCHOR * cells * cells];
        for (k, &value) in t.iter().enumerate() {
            v[((anchor * PER_ANCHOR + k) * cells + row) * cells + col] = value;
        }
        v
    }

    #[test]
    fn boxes_are_decoded_and_corrected_like_face_api() {
        // Cell (1, 2) of a 4 grid, anchor 0, σ(0) = 0.5: centre (2.5 / 4, 1.5 / 4) of the
        // square; a picture 3:2 fills 4 of 4 columns and round(8/3) = 3 rows of 4 at size 4,
        // so rows are stretched by 4 / 3.
        let v = output(4, 0, 1, 2, [0.0, 0.0, 0.0, 0.0, 2.0]);
        let found = extract_boxes(&v, 4, (4.0, 3.0), 0.5);
        assert_eq!(found.len(), 1);
        let (b, score) = found[0];
        assert!((score - sigmoid(2.0)).abs() < 1e-12);
        let (w, h) = (ANCHORS[0].0 / 4.0, ANCHORS[0].1 / 4.0 * 4.0 / 3.0);
        let want = [2.5 / 4.0 - w / 2.0, 1.5 / 4.0 * 4.0 / 3.0 - h / 2.0, w, h];
        for (g, e) in b.iter().zip(want) {
            assert!((g - e).abs() < 1e-12, "{b:?} vs {want:?}");
        }
        // Nothing above a threshold over its score.
        assert!(extract_boxes(&v, 4, (4.0, 3.0), 0.9).is_empty());
    }

    #[test]
    fn suppression_keeps_the_best_and_prefers_the_later_of_equal_scores() {
        let boxes = vec![
            ([0.0, 0.0, 1.0, 1.0], 0.9),
            ([0.0, 0.0, 1.0, 0.9], 0.8), // IoU 0.9 with the first: dropped
            ([2.0, 2.0, 1.0, 1.0], 0.7),
            ([2.1, 2.0, 1.0, 1.0], 0.7), // equal score, later: kept, drops the one before
        ];
        assert_eq!(suppress(&boxes, 416.0, 0.4), vec![0, 3]);
        assert_eq!(suppress(&boxes, 1.0, 0.95), vec![0, 1, 3, 2]);
    }

    #[test]
    fn input_sides_must_be_multiples_of_32() {
        for bad in [0, 31, 33, 100] {
            assert!(matches!(check_input_size(bad), Err(FaceError::Input(_))));
        }
        assert!(check_input_size(416).is_ok() && check_input_size(608).is_ok());
    }
}
