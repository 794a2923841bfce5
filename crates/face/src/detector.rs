//! face-api.js's face detector, SSD-MobileNetV1 (`ssd_mobilenetv1_model`), on its TF.js
//! weights.
//!
//! The network:
//! - input: the picture padded to a square with black at the bottom or right (face-api pads
//!   this way for SSD, `toBatchTensor(512, false)`), resized bilinearly to 512x512 as
//!   TensorFlow's `resizeBilinear` does with `alignCorners = false` and no half-pixel centres
//!   (source pixel = output pixel · scale, no ½ offset), then `value / 127.5 − 1`;
//! - backbone: MobileNetV1 at 512 — a 3x3 stride-2 convolution to 32 channels, then 13
//!   depthwise-separable pairs (strides 2 at pairs 2, 4, 6 and 12). Each depthwise 3x3 step has
//!   a batch norm (ε = 0.0010000000474974513, folded here into the filter and a bias); each
//!   pointwise step has its batch norm already folded into a per-channel offset
//!   (`convolution_bn_offset`); every step ends in ReLU6. Pair 11 (32x32x512) and pair 13
//!   (16x16x1024) are kept;
//! - SSD head: eight more convolutions (1x1, then 3x3 stride 2, four times, each + offset and
//!   ReLU6) give 8x8, 4x4, 2x2 and 1x1 maps. Six box predictors (a 1x1 convolution with bias for
//!   box offsets, another for 3 class logits) read the six feature maps 32x32 (3 anchors per
//!   cell), 16x16, 8x8, 4x4, 2x2 and 1x1 (6 anchors per cell): 3072 + 1536 + 384 + 96 + 24 + 6 =
//!   5118 predictions, in TensorFlow's row-major `(y, x, anchor)` order;
//! - output: the 5118 prior boxes are not generated but shipped with the weights
//!   (`Output/extra_dim`, `[1, 5118, 4]`, `(y_min, x_min, y_max, x_max)` as fractions of the
//!   512 square). Each is decoded with SSD's scale factors 10 and 5: centre = anchor centre +
//!   offset / 10 · anchor size, size = anchor size · exp(offset / 5). The face score is the
//!   sigmoid of class column 1 (column 0 is the background logit; face-api ignores it);
//! - post-processing: face-api's greedy non-max suppression (scores above `min_confidence`,
//!   best first, a box is dropped when its IoU with a kept box is above 0.5), then the boxes go
//!   back to picture pixels the way face-api maps them: clip to the square's `[0, 1]`, scale by
//!   `512 / round(side · 512 / longest side)` and by the picture's size.
//!
//! Deviations from face-api:
//! - the boxes are also clipped to the picture (face-api lets a box run into the padding, past
//!   the bottom or right edge); where the clipped box would be inverted it collapses to an edge;
//! - `iou_threshold` is an option (face-api fixes 0.5, the default here) and `min_confidence = 0`
//!   is allowed (face-api turns 0 into its 0.5 default); `max_results = 0` returns nothing
//!   (face-api turns 0 into 100);
//! - the depthwise batch norm is folded into the filter and convolutions sum in another order,
//!   which rounds differently in the last bits: on face-api's own synthetic 512x512 reference
//!   picture (`fixtures/face/reference.json`) boxes agree to 4e-5 and scores to 1e-5, on the
//!   demo photos' own pixels (`reference-same-pixels.json`) boxes to 0.005 px and scores to
//!   6e-5;
//! - face-api in a browser draws the picture on a canvas to resize it (the canvas's own
//!   smoothing); this reproduces the tensor path (Node), TensorFlow's bilinear resize. The
//!   weights' own `Preprocessor/mul/x` (1/127.5 as a float32) agrees with face-api's `/ 127.5`.
//!
//! The picture comes in decoded. JPEG decoders differ: the `image` crate's pixels average about
//! half a level brighter than jpeg-js's (which the reference used), which moves scores on the
//! demo photos by up to 0.014 and boxes by a pixel or two (IoU ≥ 0.99). Given jpeg-js's pixels,
//! `detect` matches face-api to 5e-5 in score and IoU 0.9999 on all 22 faces.

use std::path::Path;

use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};
use convnet_vision::boxes::BBox;
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::FaceError;
use crate::input::{SquarePad, square_resized};
use crate::tf::{TfPadding, TfWeights, conv};

/// The side of the square the network sees.
const INPUT_SIZE: usize = 512;
/// face-api's batch-norm epsilon, 0.0010000000474974513: TensorFlow's 1e-3 as a float32,
/// which is what `0.001_f32` is.
const BN_EPSILON: f32 = 0.001;
/// MobileNetV1's widths: conv 0, then pointwise 1..=13.
const BACKBONE_WIDTHS: [usize; 14] = [
    32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024,
];
/// The SSD head's extra convolutions: (in, out, kernel, stride).
const HEAD: [(usize, usize, usize, usize); 8] = [
    (1024, 256, 1, 1),
    (256, 512, 3, 2),
    (512, 128, 1, 1),
    (128, 256, 3, 2),
    (256, 128, 1, 1),
    (128, 256, 3, 2),
    (256, 64, 1, 1),
    (64, 128, 3, 2),
];
/// The box predictors: (channels in, anchors per cell, side of the feature map at 512).
const PREDICTORS: [(usize, usize, usize); 6] = [
    (512, 3, 32),
    (1024, 6, 16),
    (512, 6, 8),
    (256, 6, 4),
    (256, 6, 2),
    (128, 6, 1),
];
/// Class logits per anchor: background, face, and a third column face-api ignores.
const CLASSES: usize = 3;

/// How [`SsdMobilenetV1::detect`] filters the network's 5118 boxes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SsdOptions {
    /// Keep boxes whose score is above this, in `[0, 1)` (face-api's `minConfidence`).
    pub min_confidence: f32,
    /// At most this many faces, best first (face-api's `maxResults`).
    pub max_results: usize,
    /// Non-max suppression drops a box whose IoU with a better kept box is above this, in
    /// `(0, 1]` (face-api fixes 0.5).
    pub iou_threshold: f32,
}

impl Default for SsdOptions {
    fn default() -> Self {
        Self {
            min_confidence: 0.5,
            max_results: 100,
            iou_threshold: 0.5,
        }
    }
}

impl SsdOptions {
    fn check(&self) -> Result<(), FaceError> {
        if !(0.0..1.0).contains(&self.min_confidence) {
            return Err(FaceError::Input(format!(
                "min_confidence must be in [0, 1), got {}",
                self.min_confidence
            )));
        }
        if !(self.iou_threshold > 0.0 && self.iou_threshold <= 1.0) {
            return Err(FaceError::Input(format!(
                "iou_threshold must be in (0, 1], got {}",
                self.iou_threshold
            )));
        }
        Ok(())
    }
}

/// A detected face: its box in the original picture's pixels (clipped to the picture) and the
/// network's confidence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaceBox {
    pub bbox: BBox,
    pub score: f32,
}

/// A convolution + per-channel offset + ReLU6: face-api's "pointwise" layer (its kernel may be
/// 3x3), and the depthwise layer once its batch norm is folded in (`groups` = channels).
struct ConvRelu6 {
    weight: Tensor<4>,
    bias: Tensor<1>,
    stride: usize,
    groups: usize,
}

impl ConvRelu6 {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv(
            x,
            &self.weight,
            Some(&self.bias),
            self.stride,
            TfPadding::Same,
            self.groups,
        )
        .clamp(0.0, 6.0)
    }
}

/// `{prefix}.Conv2d_{i}_pointwise`: weight `[out, in, k, k]` and `convolution_bn_offset`.
fn load_pointwise(
    w: &TfWeights,
    prefix: &str,
    (cin, cout, kernel, stride): (usize, usize, usize, usize),
) -> Result<ConvRelu6, FaceError> {
    Ok(ConvRelu6 {
        weight: w.tensor(&format!("{prefix}.weight"), [cout, cin, kernel, kernel])?,
        bias: w.tensor(&format!("{prefix}.convolution_bn_offset"), [cout])?,
        stride,
        groups: 1,
    })
}

/// `MobilenetV1.Conv2d_{i}_depthwise`: TensorFlow's `[3, 3, C, 1]` filter and a batch norm,
/// folded into a `[C, 1, 3, 3]` filter and a bias.
fn load_depthwise(
    w: &TfWeights,
    prefix: &str,
    channels: usize,
    stride: usize,
) -> Result<ConvRelu6, FaceError> {
    let filter = w.values(&format!("{prefix}.depthwise_weights"), &[3, 3, channels, 1])?;
    let bn = |name: &str| w.values(&format!("{prefix}.BatchNorm.{name}"), &[channels]);
    let (gamma, beta) = (bn("gamma")?, bn("beta")?);
    let (mean, variance) = (bn("moving_mean")?, bn("moving_variance")?);
    let scale: Vec<f32> = (0..channels)
        .map(|c| gamma[c] / (variance[c] + BN_EPSILON).sqrt())
        .collect();
    let bias: Vec<f32> = (0..channels)
        .map(|c| beta[c] - mean[c] * scale[c])
        .collect();
    let mut weight = vec![0.0; channels * 9];
    for k in 0..9 {
        for c in 0..channels {
            weight[c * 9 + k] = filter[k * channels + c] * scale[c];
        }
    }
    let device = w.device();
    Ok(ConvRelu6 {
        weight: Tensor::from_data(TensorData::new(weight, [channels, 1, 3, 3]), device),
        bias: Tensor::from_data(TensorData::new(bias, [channels]), device),
        stride,
        groups: channels,
    })
}

/// One SSD box predictor: 1x1 convolutions for the box offsets and the class logits.
struct BoxPredictor {
    boxes: (Tensor<4>, Tensor<1>),
    classes: (Tensor<4>, Tensor<1>),
}

impl BoxPredictor {
    fn load(w: &TfWeights, index: usize, cin: usize, anchors: usize) -> Result<Self, FaceError> {
        let part = |name: &str, out: usize| -> Result<(Tensor<4>, Tensor<1>), FaceError> {
            let prefix = format!("Prediction.BoxPredictor_{index}.{name}");
            Ok((
                w.tensor(&format!("{prefix}.weight"), [out, cin, 1, 1])?,
                w.tensor(&format!("{prefix}.bias"), [out])?,
            ))
        };
        Ok(Self {
            boxes: part("BoxEncodingPredictor", anchors * 4)?,
            classes: part("ClassPredictor", anchors * CLASSES)?,
        })
    }

    /// Box offsets `[n, h·w·anchors, 4]` and class logits `[n, h·w·anchors, 3]`, in
    /// TensorFlow's `(y, x, anchor)` order.
    fn forward(&self, x: Tensor<4>) -> (Tensor<3>, Tensor<3>) {
        let run = |(weight, bias): &(Tensor<4>, Tensor<1>), width: usize| -> Tensor<3> {
            let y = conv(x.clone(), weight, Some(bias), 1, TfPadding::Same, 1);
            let [n, _, _, _] = y.dims();
            // NCHW → NHWC, then rows of `width` as TensorFlow's reshape reads them.
            y.permute([0, 2, 3, 1])
                .reshape([n as i32, -1, width as i32])
        };
        (run(&self.boxes, 4), run(&self.classes, CLASSES))
    }
}

/// face-api.js's SSD-MobileNetV1 face detector (see the module documentation).
pub struct SsdMobilenetV1 {
    conv0: ConvRelu6,
    /// Pairs 1..=13: (depthwise with batch norm, pointwise with offset).
    pairs: Vec<(ConvRelu6, ConvRelu6)>,
    head: Vec<ConvRelu6>,
    predictors: Vec<BoxPredictor>,
    /// The prior boxes `[5118, 4]`, `(y_min, x_min, y_max, x_max)` in the unit square.
    anchors: Tensor<2>,
    device: Device,
}

impl SsdMobilenetV1 {
    /// Reads `ssd_mobilenetv1_model-weights_manifest.json` (with its shard beside it), checking
    /// every tensor's shape.
    pub fn load(manifest: &Path, device: &Device) -> Result<Self, FaceError> {
        let w = TfWeights::open(manifest, device)?;
        let conv0 = load_pointwise(
            &w,
            "MobilenetV1.Conv2d_0_pointwise",
            (3, BACKBONE_WIDTHS[0], 3, 2),
        )?;
        let mut pairs = Vec::with_capacity(13);
        for i in 1..=13 {
            let (cin, cout) = (BACKBONE_WIDTHS[i - 1], BACKBONE_WIDTHS[i]);
            let stride = if [2, 4, 6, 12].contains(&i) { 2 } else { 1 };
            let depthwise = load_depthwise(
                &w,
                &format!("MobilenetV1.Conv2d_{i}_depthwise"),
                cin,
                stride,
            )?;
            let pointwise = load_pointwise(
                &w,
                &format!("MobilenetV1.Conv2d_{i}_pointwise"),
                (cin, cout, 1, 1),
            )?;
            pairs.push((depthwise, pointwise));
        }
        let head = HEAD
            .iter()
            .enumerate()
            .map(|(i, &spec)| load_pointwise(&w, &format!("Prediction.Conv2d_{i}_pointwise"), spec))
            .collect::<Result<Vec<_>, _>>()?;
        let predictors = PREDICTORS
            .iter()
            .enumerate()
            .map(|(i, &(cin, anchors, _))| BoxPredictor::load(&w, i, cin, anchors))
            .collect::<Result<Vec<_>, _>>()?;
        let count = anchor_count();
        let anchors: Tensor<3> = w.tensor("Output.extra_dim", [1, count, 4])?;
        Ok(Self {
            conv0,
            pairs,
            head,
            predictors,
            anchors: anchors.reshape([count, 4]),
            device: device.clone(),
        })
    }

    /// The side of the square input (512).
    pub fn input_size(&self) -> usize {
        INPUT_SIZE
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The picture as face-api feeds it: `[1, 3, 512, 512]`, padded to a square with black at
    /// the bottom or right, resized with TensorFlow's bilinear (`alignCorners = false`, no
    /// half-pixel centres), scaled to `[-1, 1]`. An empty picture gives an all-black input;
    /// [`Self::detect`] refuses one.
    pub fn preprocess(&self, image: &RgbImage) -> Tensor<4> {
        let values = preprocess_values(image, INPUT_SIZE);
        Tensor::from_data(
            TensorData::new(values, [1, 3, INPUT_SIZE, INPUT_SIZE]),
            &self.device,
        )
    }

    /// The network on a preprocessed batch `[n, 3, 512, 512]`: decoded boxes `[n, 5118, 4]`
    /// as `(y_min, x_min, y_max, x_max)` fractions of the padded square (face-api's order,
    /// unclipped), and face scores `[n, 5118]` (sigmoids). The anchors fix the input size:
    /// another size panics (the prediction count no longer matches the 5118 anchors).
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<3>, Tensor<2>) {
        let mut x = self.conv0.forward(x);
        let mut conv11 = None;
        for (i, (depthwise, pointwise)) in self.pairs.iter().enumerate() {
            x = pointwise.forward(depthwise.forward(x));
            if i + 1 == 11 {
                conv11 = Some(x.clone());
            }
        }
        let conv11 = conv11.expect("MobileNetV1 has 13 pairs");
        // The feature maps the predictors read: pair 11, pair 13, then head convs 1, 3, 5, 7.
        let mut maps = vec![conv11, x.clone()];
        let mut h = x;
        for (i, layer) in self.head.iter().enumerate() {
            h = layer.forward(h);
            if i % 2 == 1 {
                maps.push(h.clone());
            }
        }
        let (offsets, logits): (Vec<_>, Vec<_>) = self
            .predictors
            .iter()
            .zip(maps)
            .map(|(p, m)| p.forward(m))
            .unzip();
        let offsets = Tensor::cat(offsets, 1);
        let logits = Tensor::cat(logits, 1);
        let [n, k, _] = logits.dims();
        let scores = sigmoid(logits.narrow(2, 1, 1)).reshape([n, k]);
        (decode_boxes(&self.anchors, offsets), scores)
    }

    /// The faces in `image`, best first, in its pixels.
    pub fn detect(
        &self,
        image: &RgbImage,
        options: &SsdOptions,
    ) -> Result<Vec<FaceBox>, FaceError> {
        options.check()?;
        let (width, height) = image.dimensions();
        if width == 0 || height == 0 {
            return Err(FaceError::Input(format!(
                "the picture is empty ({width}x{height} pixels)"
            )));
        }
        let (boxes, scores) = self.forward(self.preprocess(image));
        let boxes = to_vec(boxes.into_data())?;
        let scores = to_vec(scores.into_data())?;
        let boxes: Vec<[f32; 4]> = boxes
            .chunks_exact(4)
            .map(|b| [b[0], b[1], b[2], b[3]])
            .collect();
        let kept = suppress(
            &boxes,
            &scores,
            options.min_confidence,
            options.iou_threshold,
            options.max_results,
        );
        Ok(kept
            .into_iter()
            .map(|i| FaceBox {
                bbox: to_picture(boxes[i], width, height, INPUT_SIZE),
                score: scores[i],
            })
            .collect())
    }
}

fn to_vec(data: TensorData) -> Result<Vec<f32>, FaceError> {
    data.convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| FaceError::Input(format!("reading the network's output: {e:?}")))
}

/// How many prior boxes the six feature maps have (5118).
fn anchor_count() -> usize {
    PREDICTORS.iter().map(|&(_, a, side)| side * side * a).sum()
}

/// face-api's input for the detector, channel-major `[3, size, size]`: the picture padded
/// to a square at the bottom or right, resized (see [`crate::input`]), as `value / 127.5 − 1`.
fn preprocess_values(image: &RgbImage, size: usize) -> Vec<f32> {
    let plane = size * size;
    let mut out = vec![-1.0; 3 * plane];
    if image.width() == 0 || image.height() == 0 {
        return out;
    }
    let hwc = square_resized(image, SquarePad::BottomRight, size);
    for (p, px) in hwc.chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * plane + p] = px[c] / 127.5 - 1.0;
        }
    }
    out
}

/// SSD's box decoding as face-api's output layer does it. `anchors` `[k, 4]` and the result
/// are `(y_min, x_min, y_max, x_max)`; `offsets` `[n, k, 4]` are `(t_y, t_x, t_h, t_w)`:
/// centre = anchor centre + t / 10 · anchor size, size = anchor size · exp(t_size / 5).
pub fn decode_boxes(anchors: &Tensor<2>, offsets: Tensor<3>) -> Tensor<3> {
    let [n, k, _] = offsets.dims();
    let a: Tensor<3> = anchors.clone().unsqueeze::<3>().expand([n, k, 4]);
    let col = |t: &Tensor<3>, i: usize| t.clone().narrow(2, i, 1);
    let anchor_h = col(&a, 2) - col(&a, 0);
    let anchor_w = col(&a, 3) - col(&a, 1);
    let centre_y = col(&a, 0) + anchor_h.clone().div_scalar(2.0);
    let centre_x = col(&a, 1) + anchor_w.clone().div_scalar(2.0);
    let half_h = col(&offsets, 2).div_scalar(5.0).exp() * anchor_h.clone() / 2.0;
    let half_w = col(&offsets, 3).div_scalar(5.0).exp() * anchor_w.clone() / 2.0;
    let y = col(&offsets, 0).div_scalar(10.0) * anchor_h + centre_y;
    let x = col(&offsets, 1).div_scalar(10.0) * anchor_w + centre_x;
    Tensor::cat(
        vec![
            y.clone() - half_h.clone(),
            x.clone() - half_w.clone(),
            y + half_h,
            x + half_w,
        ],
        2,
    )
}

/// face-api's IoU of two `(y_min, x_min, y_max, x_max)` boxes (corners in either order);
/// 0 when either is empty.
fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let norm = |b: &[f32; 4]| {
        [
            b[0].min(b[2]),
            b[1].min(b[3]),
            b[0].max(b[2]),
            b[1].max(b[3]),
        ]
    };
    let (a, b) = (norm(a), norm(b));
    let area_a = (a[2] - a[0]) * (a[3] - a[1]);
    let area_b = (b[2] - b[0]) * (b[3] - b[1]);
    if area_a <= 0.0 || area_b <= 0.0 {
        return 0.0;
    }
    let h = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let w = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = h * w;
    inter / (area_a + area_b - inter)
}

/// face-api's non-max suppression: boxes scoring above `min_score`, best first (ties in index
/// order), each kept unless its IoU with a box already kept is above `iou_threshold`; at most
/// `max_results`. Returns indices.
fn suppress(
    boxes: &[[f32; 4]],
    scores: &[f32],
    min_score: f32,
    iou_threshold: f32,
    max_results: usize,
) -> Vec<usize> {
    let mut candidates: Vec<usize> = (0..boxes.len().min(scores.len()))
        .filter(|&i| scores[i] > min_score)
        .collect();
    candidates.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut kept: Vec<usize> = Vec::new();
    for i in candidates {
        if kept.len() >= max_results {
            break;
        }
        if kept
            .iter()
            .all(|&j| iou(&boxes[i], &boxes[j]) <= iou_threshold)
        {
            kept.push(i);
        }
    }
    kept
}

/// A `(y_min, x_min, y_max, x_max)` box in the padded square's unit coordinates → picture
/// pixels, the way face-api maps it (clip to `[0, 1]`, scale by `size / round(side · size /
/// longest)` and by the picture's side), then clipped to the picture.
fn to_picture(b: [f32; 4], width: u32, height: u32, size: usize) -> BBox {
    let (w, h, size) = (f64::from(width), f64::from(height), size as f64);
    let scale = size / w.max(h);
    let (reshaped_w, reshaped_h) = ((w * scale).round(), (h * scale).round());
    let (pad_x, pad_y) = (size / reshaped_w, size / reshaped_h);
    let top = f64::from(b[0]).max(0.0) * pad_y * h;
    let bottom = f64::from(b[2]).min(1.0) * pad_y * h;
    let left = f64::from(b[1]).max(0.0) * pad_x * w;
    let right = f64::from(b[3]).min(1.0) * pad_x * w;
    let x1 = left.clamp(0.0, w);
    let y1 = top.clamp(0.0, h);
    BBox {
        x1: x1 as f32,
        y1: y1 as f32,
        x2: right.clamp(x1, w) as f32,
        y2: bottom.clamp(y1, h) as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn decodes_one_anchor_by_hand() {
        let device = Device::flex();
        // Anchor rows 0.2..0.6 (h 0.4, centre 0.4), columns 0.1..0.3 (w 0.2, centre 0.2).
        let anchors = Tensor::<2>::from_data(
            TensorData::new(vec![0.2f32, 0.1, 0.6, 0.3], [1, 4]),
            &device,
        );
        // t_y = 1 moves the centre by 0.4 / 10 = 0.04 → 0.44; t_x = −2 by −0.04 → 0.16;
        // t_h = 5 makes the height 0.4 · e; t_w = 0 keeps the width 0.2.
        let offsets = Tensor::<3>::from_data(
            TensorData::new(vec![1.0f32, -2.0, 5.0, 0.0], [1, 1, 4]),
            &device,
        );
        let got = values(decode_boxes(&anchors, offsets));
        let e = std::f32::consts::E;
        let want = [0.44 - 0.2 * e, 0.16 - 0.1, 0.44 + 0.2 * e, 0.16 + 0.1];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn zero_offsets_give_back_the_anchors_for_every_image() {
        let device = Device::flex();
        let a = vec![0.0f32, 0.0, 0.5, 0.25, 0.3, 0.4, 0.9, 1.0];
        let anchors = Tensor::<2>::from_data(TensorData::new(a.clone(), [2, 4]), &device);
        let offsets = Tensor::<3>::zeros([3, 2, 4], &device);
        let got = values(decode_boxes(&anchors, offsets));
        assert_eq!(got.len(), 24);
        for (i, g) in got.iter().enumerate() {
            assert!((g - a[i % 8]).abs() < 1e-6, "{got:?}");
        }
    }

    #[test]
    fn there_are_5118_anchors() {
        assert_eq!(anchor_count(), 5118);
    }

    #[test]
    fn suppression_keeps_the_best_of_overlapping_boxes() {
        let boxes = [
            [0.0, 0.0, 1.0, 1.0],
            [0.0, 0.0, 1.0, 0.5], // IoU exactly 0.5 with the first: kept (face-api drops > 0.5)
            [0.0, 0.05, 1.0, 1.0], // IoU 0.95 with the first, 0.45 with the second
            [2.0, 2.0, 3.0, 3.0],
            [5.0, 5.0, 6.0, 6.0], // not above the score threshold
        ];
        let scores = [0.9, 0.8, 0.7, 0.6, 0.5];
        assert_eq!(suppress(&boxes, &scores, 0.5, 0.5, 100), vec![0, 1, 3]);
        assert_eq!(suppress(&boxes, &scores, 0.5, 0.5, 2), vec![0, 1]);
        assert_eq!(suppress(&boxes, &scores, 0.5, 0.96, 100), vec![0, 1, 2, 3]);
        assert_eq!(
            suppress(&boxes, &scores, 0.0, 0.96, 100),
            vec![0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn boxes_go_back_to_the_picture_like_face_api() {
        // 1920x1280: the square is 1920; the picture fills 512 x round(341.33) = 341 rows, so
        // face-api scales rows by 512/341 · 1280 (not 1920) per unit.
        let b = to_picture([0.1, 0.25, 0.2, 0.5], 1920, 1280, 512);
        assert!(
            (b.x1 - 480.0).abs() < 1e-3 && (b.x2 - 960.0).abs() < 1e-3,
            "{b:?}"
        );
        let row = 512.0 / 341.0 * 1280.0;
        assert!((b.y1 - 0.1 * row).abs() < 1e-2, "{b:?}");
        assert!((b.y2 - 0.2 * row).abs() < 1e-2, "{b:?}");
        // Past the edges: clipped to the picture.
        let b = to_picture([-0.1, 0.9, 0.8, 1.3], 1920, 1280, 512);
        assert_eq!((b.x1, b.y1, b.x2, b.y2), (1728.0, 0.0, 1920.0, 1280.0));
    }

    #[test]
    fn preprocessing_pads_bottom_right_and_resizes_like_tensorflow() {
        // A 4x2 picture (width 4, height 2) of white becomes a 4x4 square with black rows 2..4;
        // at size 2 the legacy resize samples source rows/columns 0 and 2 exactly.
        let image = RgbImage::from_pixel(4, 2, image::Rgb([255, 255, 255]));
        let v = preprocess_values(&image, 2);
        // Each channel: row 0 white (1.0), row 1 samples padded row 2 (−1.0).
        assert_eq!(v, [1.0, 1.0, -1.0, -1.0].repeat(3));
        // Upsampling 1x1 → 2x2 with a grey pixel: every output is that pixel.
        let image = RgbImage::from_pixel(1, 1, image::Rgb([51, 102, 153]));
        let v = preprocess_values(&image, 2);
        let want: Vec<f32> = [51.0f32, 102.0, 153.0]
            .iter()
            .flat_map(|&p| [p / 127.5 - 1.0; 4])
            .collect();
        assert_eq!(v, want);
        // A fractional tap: a 3-wide ramp to 2 columns samples 0 and 1.5.
        let mut image = RgbImage::new(3, 3);
        for (x, _, p) in image.enumerate_pixels_mut() {
            *p = image::Rgb([(x * 100) as u8; 3]);
        }
        let v = preprocess_values(&image, 2);
        assert!((v[1] - (150.0 / 127.5 - 1.0)).abs() < 1e-6, "{v:?}");
    }

    #[test]
    fn options_out_of_range_are_refused() {
        let ok = SsdOptions::default();
        assert!(ok.check().is_ok());
        for bad in [
            SsdOptions {
                min_confidence: 1.0,
                ..ok
            },
            SsdOptions {
                min_confidence: -0.1,
                ..ok
            },
            SsdOptions {
                min_confidence: f32::NAN,
                ..ok
            },
            SsdOptions {
                iou_threshold: 0.0,
                ..ok
            },
            SsdOptions {
                iou_threshold: 1.5,
                ..ok
            },
        ] {
            assert!(matches!(bad.check(), Err(FaceError::Input(_))), "{bad:?}");
        }
    }
}
