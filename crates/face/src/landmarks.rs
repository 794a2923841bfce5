//! face-api.js's 68-point face landmark network (`FaceLandmark68Net`), as an inference module
//! over its TF.js weights (`face_landmark_68_model-weights_manifest.json`).
//!
//! The network takes a face crop padded to a square and resized to 112x112, and regresses the
//! 68 points of the iBUG 300-W scheme (jaw, eyebrows, nose, eyes, mouth) as fractions of that
//! square. Its body is face-api's `FaceFeatureExtractor`: four dense blocks (`denseBlock4`),
//! each halving the picture (112 → 56 → 28 → 14 → 7) and widening it (32, 64, 128, 256
//! channels), then a 7x7 average pool to one 256-vector, and `FaceProcessor`'s fully
//! connected head to 136 numbers (x, y interleaved).
//!
//! It is wired by hand rather than written as a layer spec because a dense block is not a
//! chain: each of its four convolutions reads the relu of the *sum* of all the earlier ones'
//! outputs (`out1`, `out1 + out2`, `out1 + out2 + out3`) and the block returns the relu of
//! the sum of all four. The first convolution of the first block is a plain 3x3 convolution,
//! every other one a depthwise separable convolution, all with TensorFlow's `same` padding.
//!
//! Its input path ([`crate::input::to_batch_tensor`]) is shared with the recognition network.

use std::path::Path;

use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::FaceError;
use crate::input::to_batch_tensor;
use crate::tf::{Loader, SeparableConv, TfPadding, TfWeights, avg_pool, conv};

/// The landmark network's input side, in pixels.
pub const LANDMARK_INPUT_SIZE: usize = 112;

/// The number of landmarks.
pub const NUM_LANDMARKS: usize = 68;

/// The first convolution of a dense block (boxed: a tensor handle is large).
enum FirstConv {
    /// `dense0.conv0`: a plain 3x3 convolution with a bias (the picture has only 3 channels).
    Plain(Box<(Tensor<4>, Tensor<1>)>),
    Separable(Box<SeparableConv>),
}

/// face-api's `denseBlock4` (with `isScaleDown = true`, the only way the network uses it).
struct DenseBlock4 {
    conv0: FirstConv,
    convs: [SeparableConv; 3],
}

impl DenseBlock4 {
    fn load(
        loader: &mut Loader,
        prefix: &str,
        channels_in: usize,
        channels: usize,
        first: bool,
    ) -> Result<Self, FaceError> {
        let conv0 = if first {
            FirstConv::Plain(Box::new((
                loader.tensor(
                    &format!("{prefix}.conv0.weight"),
                    [channels, channels_in, 3, 3],
                )?,
                loader.tensor(&format!("{prefix}.conv0.bias"), [channels])?,
            )))
        } else {
            FirstConv::Separable(Box::new(loader.separable(
                &format!("{prefix}.conv0"),
                channels_in,
                channels,
            )?))
        };
        let convs = [
            loader.separable(&format!("{prefix}.conv1"), channels, channels)?,
            loader.separable(&format!("{prefix}.conv2"), channels, channels)?,
            loader.separable(&format!("{prefix}.conv3"), channels, channels)?,
        ];
        Ok(Self { conv0, convs })
    }

    /// `out1 = relu(conv0(x, stride 2))`, then each separable convolution reads the relu of
    /// the sum so far, and the block returns `relu(out1 + out2 + out3 + out4)`.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out1 = relu(match &self.conv0 {
            FirstConv::Plain(p) => conv(x, &p.0, Some(&p.1), 2, TfPadding::Same, 1),
            FirstConv::Separable(s) => s.forward(x, 2),
        });
        let out2 = self.convs[0].forward(out1.clone(), 1);
        let in3 = relu(out1.clone() + out2.clone());
        let out3 = self.convs[1].forward(in3, 1);
        let in4 = relu(out1.clone() + (out2.clone() + out3.clone()));
        let out4 = self.convs[2].forward(in4, 1);
        relu(out1 + (out2 + (out3 + out4)))
    }
}

/// face-api.js's `FaceLandmark68Net`: `FaceFeatureExtractor` (four dense blocks and a 7x7
/// average pool) and the fully connected head of `FaceProcessor.runNet`.
pub struct FaceLandmark68Net {
    blocks: [DenseBlock4; 4],
    /// `[136, 256]` (PyTorch's `[out, in]`).
    fc_weight: Tensor<2>,
    fc_bias: Tensor<1>,
    device: Device,
    names: Vec<String>,
    num_values: usize,
}

impl FaceLandmark68Net {
    /// Loads `face_landmark_68_model-weights_manifest.json` (its `.bin` shard beside it).
    pub fn load(manifest: &Path, device: &Device) -> Result<Self, FaceError> {
        Self::from_weights(&TfWeights::open(manifest, device)?)
    }

    /// Builds the network from tensors already read.
    pub fn from_weights(weights: &TfWeights) -> Result<Self, FaceError> {
        let mut loader = Loader::new(weights);
        let blocks = [
            DenseBlock4::load(&mut loader, "dense0", 3, 32, true)?,
            DenseBlock4::load(&mut loader, "dense1", 32, 64, false)?,
            DenseBlock4::load(&mut loader, "dense2", 64, 128, false)?,
            DenseBlock4::load(&mut loader, "dense3", 128, 256, false)?,
        ];
        let fc_weight = loader.tensor("fc.weight", [2 * NUM_LANDMARKS, 256])?;
        let fc_bias = loader.tensor("fc.bias", [2 * NUM_LANDMARKS])?;
        Ok(Self {
            blocks,
            fc_weight,
            fc_bias,
            device: weights.device().clone(),
            names: loader.names,
            num_values: loader.values,
        })
    }

    /// The names of the tensors the network was built from (the manifest's, renamed by
    /// [`convnet_weights::read_tfjs`]).
    pub fn weight_names(&self) -> &[String] {
        &self.names
    }

    /// The number of weight values the network holds.
    pub fn num_values(&self) -> usize {
        self.num_values
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The raw network output `[n, 136]` (x0, y0, x1, y1, ... as fractions of the padded
    /// square) for a preprocessed batch `[n, 3, 112, 112]` (see [`Self::preprocess`]):
    /// face-api's `runNet`, before `postProcess`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = x;
        for block in &self.blocks {
            x = block.forward(x);
        }
        let x = avg_pool(x, 7, 2, TfPadding::Valid);
        let [n, c, h, w] = x.dims();
        let x = x.reshape([n, c * h * w]);
        x.matmul(self.fc_weight.clone().transpose()) + self.fc_bias.clone().unsqueeze_dim(0)
    }

    /// face-api's input for this network: [`to_batch_tensor`] at 112 pixels.
    pub fn preprocess(&self, crops: &[RgbImage]) -> Result<Tensor<4>, FaceError> {
        to_batch_tensor(crops, LANDMARK_INPUT_SIZE, &self.device)
    }

    /// The 68 landmarks of the face in `crop`, in the crop's pixels.
    pub fn detect(&self, crop: &RgbImage) -> Result<Landmarks68, FaceError> {
        let mut all = self.detect_batch(std::slice::from_ref(crop))?;
        Ok(all.remove(0))
    }

    /// [`Self::detect`] for several crops in one batch.
    pub fn detect_batch(&self, crops: &[RgbImage]) -> Result<Vec<Landmarks68>, FaceError> {
        Ok(self
            .relative_batch(crops)?
            .into_iter()
            .zip(crops)
            .map(|(points, crop)| {
                let points = to_pixels(&points, crop.width(), crop.height());
                Landmarks68 { points }
            })
            .collect())
    }

    /// The landmarks of several crops in one batch as fractions of each crop
    /// ([`relative_points`]): what face-api scales by the crop's size and shifts by the
    /// detection's corner.
    pub fn relative_batch(&self, crops: &[RgbImage]) -> Result<Vec<Vec<[f32; 2]>>, FaceError> {
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        let raw = self.forward(self.preprocess(crops)?);
        let raw = raw
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| FaceError::Input(format!("reading the landmark output: {e:?}")))?;
        Ok(raw
            .chunks_exact(2 * NUM_LANDMARKS)
            .zip(crops)
            .map(|(r, crop)| relative_points(r, crop.width(), crop.height()))
            .collect())
    }
}

/// The 68 landmarks of one face, `(x, y)` in pixels, in the iBUG 300-W order. "Left" and
/// "right" are the picture's (face-api's naming): the left eye is the one on the left of the
/// picture, the person's right eye.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Landmarks68 {
    pub points: Vec<[f32; 2]>,
}

pub(crate) fn centre(points: &[[f32; 2]]) -> [f32; 2] {
    let n = points.len().max(1) as f32;
    let (x, y) = points
        .iter()
        .fold((0.0, 0.0), |(x, y), p| (x + p[0], y + p[1]));
    [x / n, y / n]
}

/// face-api's `postProcess` for one face: the network's raw values (fractions of the padded
/// 112 square, interleaved x, y) as fractions of a `width` x `height` crop. The padding is
/// taken off as face-api does, centred (`|w - h| / 2` on each side of the short axis), and in
/// float32 as tfjs computes it (`out * 112 - pad`, then `/ side`, each rounded to float32);
/// face-api then multiplies by the crop's size in float64 (`FaceLandmarks`).
pub fn relative_points(raw: &[f32], width: u32, height: u32) -> Vec<[f32; 2]> {
    let (w, h) = (f64::from(width), f64::from(height));
    let input = LANDMARK_INPUT_SIZE as f64;
    let scale = input / w.max(h);
    let (sw, sh) = (w * scale, h * scale);
    let pad_x = if sw < sh { (sw - sh).abs() / 2.0 } else { 0.0 } as f32;
    let pad_y = if sh < sw { (sw - sh).abs() / 2.0 } else { 0.0 } as f32;
    let (sw, sh, input) = (sw as f32, sh as f32, input as f32);
    raw.chunks_exact(2)
        .map(|p| [(p[0] * input - pad_x) / sw, (p[1] * input - pad_y) / sh])
        .collect()
}

/// face-api's `FaceLandmarks` positions: relative points times the crop's `width` and
/// `height`, plus `shift` (the detection's corner in the picture), in float64.
pub fn to_pixels_f64(
    relative: &[[f32; 2]],
    width: u32,
    height: u32,
    shift: [f64; 2],
) -> Vec<[f64; 2]> {
    let (w, h) = (f64::from(width), f64::from(height));
    relative
        .iter()
        .map(|p| {
            [
                f64::from(p[0]) * w + shift[0],
                f64::from(p[1]) * h + shift[1],
            ]
        })
        .collect()
}

/// [`to_pixels_f64`] in the crop's own pixels, rounded to float32.
fn to_pixels(relative: &[[f32; 2]], width: u32, height: u32) -> Vec<[f32; 2]> {
    to_pixels_f64(relative, width, height, [0.0; 2])
        .into_iter()
        .map(|p| [p[0] as f32, p[1] as f32])
        .collect()
}

impl Landmarks68 {
    /// 68 points; anything else is an input error.
    pub fn new(points: Vec<[f32; 2]>) -> Result<Self, FaceError> {
        if points.len() != NUM_LANDMARKS {
            return Err(FaceError::Input(format!(
                "{} landmarks given, a 68-point face needs {NUM_LANDMARKS}",
                points.len()
            )));
        }
        Ok(Self { points })
    }

    /// face-api's `postProcess` and `FaceLandmarks68` for one face: the network's 136 raw
    /// values (fractions of the square the crop was padded to, interleaved x, y) in pixels of a
    /// `width` x `height` crop (see [`relative_points`]).
    pub fn from_raw(raw: &[f32], width: u32, height: u32) -> Self {
        Self {
            points: to_pixels(&relative_points(raw, width, height), width, height),
        }
    }

    /// Points 0–16.
    pub fn jaw(&self) -> &[[f32; 2]] {
        &self.points[0..17]
    }

    /// Points 17–21.
    pub fn left_eyebrow(&self) -> &[[f32; 2]] {
        &self.points[17..22]
    }

    /// Points 22–26.
    pub fn right_eyebrow(&self) -> &[[f32; 2]] {
        &self.points[22..27]
    }

    /// Points 27–35 (the bridge 27–30, then the nostrils' line 31–35).
    pub fn nose(&self) -> &[[f32; 2]] {
        &self.points[27..36]
    }

    /// Points 36–41.
    pub fn left_eye(&self) -> &[[f32; 2]] {
        &self.points[36..42]
    }

    /// Points 42–47.
    pub fn right_eye(&self) -> &[[f32; 2]] {
        &self.points[42..48]
    }

    /// Points 48–67 (outer lip 48–59, inner lip 60–67).
    pub fn mouth(&self) -> &[[f32; 2]] {
        &self.points[48..68]
    }

    /// The mean of the left eye's points.
    pub fn left_eye_centre(&self) -> [f32; 2] {
        centre(self.left_eye())
    }

    /// The mean of the right eye's points.
    pub fn right_eye_centre(&self) -> [f32; 2] {
        centre(self.right_eye())
    }

    /// The mean of the nose's points.
    pub fn nose_centre(&self) -> [f32; 2] {
        centre(self.nose())
    }

    /// The mean of the mouth's points.
    pub fn mouth_centre(&self) -> [f32; 2] {
        centre(self.mouth())
    }

    /// `(x_min, y_min, x_max, y_max)` over all points.
    pub fn bounds(&self) -> [f32; 4] {
        self.points.iter().fold(
            [
                f32::INFINITY,
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::NEG_INFINITY,
            ],
            |b, p| {
                [
                    b[0].min(p[0]),
                    b[1].min(p[1]),
                    b[2].max(p[0]),
                    b[3].max(p[1]),
                ]
            },
        )
    }

    /// Every point moved by `(dx, dy)` (from a crop's pixels to the whole picture's: add the
    /// crop's top-left corner).
    pub fn translate(&self, dx: f32, dy: f32) -> Self {
        Self {
            points: self.points.iter().map(|p| [p[0] + dx, p[1] + dy]).collect(),
        }
    }

    /// Every point multiplied by `(sx, sy)` (for a crop that was resized).
    pub fn scale(&self, sx: f32, sy: f32) -> Self {
        Self {
            points: self.points.iter().map(|p| [p[0] * sx, p[1] * sy]).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_process_removes_the_centred_padding() {
        // A 50 x 100 crop: the square is 100 wide, 25 columns of padding on each side.
        let raw: Vec<f32> = [[0.25f32, 0.5]; 68].concat();
        let lm = Landmarks68::from_raw(&raw, 50, 100);
        assert!((lm.points[0][0] - 0.0).abs() < 1e-4);
        assert!((lm.points[0][1] - 50.0).abs() < 1e-4);
        let lm = lm.translate(10.0, 20.0).scale(2.0, 1.0);
        assert_eq!(lm.points[67], [20.0, 70.0]);
    }
}
