//! face-api.js's face recognition network (`FaceRecognitionNet`): dlib's ResNet-34-like face
//! encoder (`dlib_face_recognition_resnet_model_v1`, trained with a metric loss so that two
//! pictures of one person lie within about 0.6 of each other), ported to TF.js by face-api and
//! run here over its weights (`face_recognition_model-weights_manifest.json`). It maps a
//! 150x150 face crop to a 128-D [`Encoding`]; faces are compared by Euclidean distance.
//!
//! The graph, as face-api's `FaceRecognitionNet.forwardInput` builds it:
//!
//! - `convDown`: a 7x7 stride-2 `valid` convolution to 32 channels, dlib's affine "scale" layer
//!   (`x * weights + biases` per channel, a frozen batch norm) and a relu, then a 3x3 stride-2
//!   `valid` max pool;
//! - residual blocks (`residual`): two 3x3 `same` convolutions with scale layers, the first
//!   with a relu, plus the block's input, then a relu;
//! - down-sampling residual blocks (`residualDown`) before 64, 128 and 256 channels and one
//!   more at the end (`conv256_down_out`);
//! - the mean over the picture and a matrix product with `fc` (`[256, 128]`, no bias).
//!
//! It is wired by hand because `residualDown`'s shortcut is not a projection: it is a 2x2
//! stride-2 average pool of the block's input with zero channels appended to reach the main
//! path's width, and when the main path (a 3x3 stride-2 `valid` convolution) comes out one
//! pixel smaller than the pool, face-api pads the main path with one zero row at the bottom
//! and one zero column at the right before the sum ([`residual_down_merge`]).
//!
//! Sizes at 150 pixels (the `valid` rule is `floor((n - k) / s) + 1`):
//!
//! ```text
//! input                        150x150x3
//! conv32_down  7x7/2 valid     floor(143/2)+1 = 72      x32
//! max pool     3x3/2 valid     floor(69/2)+1  = 35      x32   conv32_1..3 keep 35
//! conv64_down  conv 3x3/2      floor(32/2)+1  = 17, pool floor(33/2)+1 = 17  → 17 x64
//! conv128_down conv            floor(14/2)+1  = 8,  pool floor(15/2)+1 = 8   → 8  x128
//! conv256_down conv            floor(5/2)+1   = 3,  pool floor(6/2)+1  = 4   → 4  x256 (padded)
//! conv256_down_out conv        floor(1/2)+1   = 1,  pool floor(2/2)+1  = 2   → 2  x256 (padded)
//! mean over 2x2 → 256, times fc [256, 128] → 128
//! ```

use std::path::Path;

use burn::tensor::activation::relu;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::FaceError;
use crate::input::to_batch_tensor;
use crate::tf::Loader;
use crate::tf::{TfPadding, TfWeights, avg_pool, conv};

/// The length of a face encoding.
pub const ENCODING_SIZE: usize = 128;

/// The recognition network's input side, in pixels.
pub const RECOGNITION_INPUT_SIZE: usize = 150;

/// The distance under which dlib and face-api take two encodings for the same person.
pub const SAME_PERSON_DISTANCE: f32 = 0.6;

/// A face's 128-D encoding (face-api's "face descriptor").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Encoding(pub Vec<f32>);

impl Encoding {
    /// `values` must hold [`ENCODING_SIZE`] finite numbers.
    pub fn new(values: Vec<f32>) -> Result<Self, FaceError> {
        if values.len() != ENCODING_SIZE {
            return Err(FaceError::Input(format!(
                "an encoding has {ENCODING_SIZE} values, {} given",
                values.len()
            )));
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(FaceError::Input("an encoding value is not finite".into()));
        }
        Ok(Self(values))
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    /// The Euclidean distance between two encodings (face-api's `euclideanDistance`); under
    /// about [`SAME_PERSON_DISTANCE`] the faces are taken for one person. Encodings of
    /// different lengths are infinitely far apart.
    pub fn distance(&self, other: &Encoding) -> f32 {
        if self.0.len() != other.0.len() {
            return f32::INFINITY;
        }
        self.0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| {
                let d = f64::from(a - b);
                d * d
            })
            .sum::<f64>()
            .sqrt() as f32
    }
}

/// face-api's `convLayer`: a convolution with a bias, then dlib's scale layer
/// (`scaleLayer.ts`: `x * weights + biases` per channel).
struct ConvLayer {
    weight: Tensor<4>,
    bias: Tensor<1>,
    scale: Tensor<4>,
    shift: Tensor<4>,
}

impl ConvLayer {
    fn load(
        loader: &mut Loader,
        prefix: &str,
        channels_in: usize,
        channels: usize,
        kernel: usize,
    ) -> Result<Self, FaceError> {
        let column = |t: Tensor<1>| t.reshape([1, channels, 1, 1]);
        Ok(Self {
            weight: loader.tensor(
                &format!("{prefix}.conv.weight"),
                [channels, channels_in, kernel, kernel],
            )?,
            bias: loader.tensor(&format!("{prefix}.conv.bias"), [channels])?,
            scale: column(loader.tensor(&format!("{prefix}.scale.weights"), [channels])?),
            shift: column(loader.tensor(&format!("{prefix}.scale.bias"), [channels])?),
        })
    }

    fn forward(
        &self,
        x: Tensor<4>,
        stride: usize,
        padding: TfPadding,
        with_relu: bool,
    ) -> Tensor<4> {
        let y = conv(x, &self.weight, Some(&self.bias), stride, padding, 1);
        let y = y * self.scale.clone() + self.shift.clone();
        if with_relu { relu(y) } else { y }
    }
}

/// face-api's `ResidualLayerParams`: `conv1` and `conv2`.
struct Residual {
    conv1: ConvLayer,
    conv2: ConvLayer,
}

impl Residual {
    fn load(
        loader: &mut Loader,
        prefix: &str,
        channels_in: usize,
        channels: usize,
    ) -> Result<Self, FaceError> {
        Ok(Self {
            conv1: ConvLayer::load(loader, &format!("{prefix}.conv1"), channels_in, channels, 3)?,
            conv2: ConvLayer::load(loader, &format!("{prefix}.conv2"), channels, channels, 3)?,
        })
    }

    /// face-api's `residual`: `relu(convNoRelu(conv(x)) + x)`, both convolutions 3x3 `same`.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = self.conv1.forward(x.clone(), 1, TfPadding::Same, true);
        let out = self.conv2.forward(out, 1, TfPadding::Same, false);
        relu(out + x)
    }

    /// face-api's `residualDown`: the main path is `convDown` (3x3 stride 2 `valid`, relu) then
    /// `convNoRelu`; the shortcut and the sum are [`residual_down_merge`].
    fn forward_down(&self, x: Tensor<4>) -> Tensor<4> {
        let out = self.conv1.forward(x.clone(), 2, TfPadding::Valid, true);
        let out = self.conv2.forward(out, 1, TfPadding::Same, false);
        residual_down_merge(x, out)
    }
}

/// The end of face-api's `residualDown`, given the block's `input` `[n, c, h, w]` and its main
/// path's output `main` `[n, c', h', w']`:
///
/// - the shortcut is `avgPool(input, 2, 2, 'valid')`, with `c' - c` zero channels appended
///   after the pooled ones when the main path is wider (face-api concatenates a zero tensor of
///   the pooled shape, doubling the channels);
/// - when the main path is smaller than the pool (it is one pixel smaller when the input side
///   is even), it gets zero rows at the bottom and zero columns at the right (face-api appends
///   one row and one column, which is exactly the difference in this network);
/// - the result is `relu(shortcut + main)`.
pub fn residual_down_merge(input: Tensor<4>, main: Tensor<4>) -> Tensor<4> {
    let pooled = avg_pool(input, 2, 2, TfPadding::Valid);
    let [n, c, ph, pw] = pooled.dims();
    let [_, mc, mh, mw] = main.dims();
    let pooled = if mc > c {
        let zeros = Tensor::<4>::zeros([n, mc - c, ph, pw], &pooled.device());
        Tensor::cat(vec![pooled, zeros], 1)
    } else {
        pooled
    };
    let main = if (mh, mw) != (ph, pw) {
        main.pad(
            [(0, ph.saturating_sub(mh)), (0, pw.saturating_sub(mw))],
            burn::tensor::ops::PadMode::Constant(0.0),
        )
    } else {
        main
    };
    relu(pooled + main)
}

/// face-api.js's `FaceRecognitionNet`.
pub struct FaceRecognitionNet {
    conv32_down: ConvLayer,
    /// After the max pool: `conv32_1..3`; `conv64_down`, `conv64_1..3`; `conv128_down`,
    /// `conv128_1..2`; `conv256_down`, `conv256_1..2`; `conv256_down_out` (see [`PLAN`]).
    stages: Vec<Stage>,
    /// `[256, 128]`, TensorFlow's `[in, out]`.
    fc: Tensor<2>,
    device: Device,
    names: Vec<String>,
    num_values: usize,
}

/// `(stage, channels in, channels, down block, residual blocks)`, in face-api's order.
type StagePlan = (
    &'static str,
    usize,
    usize,
    Option<&'static str>,
    &'static [&'static str],
);

const PLAN: [StagePlan; 5] = [
    (
        "conv32",
        32,
        32,
        None,
        &["conv32_1", "conv32_2", "conv32_3"],
    ),
    (
        "conv64",
        32,
        64,
        Some("conv64_down"),
        &["conv64_1", "conv64_2", "conv64_3"],
    ),
    (
        "conv128",
        64,
        128,
        Some("conv128_down"),
        &["conv128_1", "conv128_2"],
    ),
    (
        "conv256",
        128,
        256,
        Some("conv256_down"),
        &["conv256_1", "conv256_2"],
    ),
    ("conv256_out", 256, 256, Some("conv256_down_out"), &[]),
];

struct Stage {
    name: &'static str,
    down: Option<Residual>,
    blocks: Vec<Residual>,
}

impl FaceRecognitionNet {
    /// Loads `face_recognition_model-weights_manifest.json` (its `.bin` shards beside it).
    pub fn load(manifest: &Path, device: &Device) -> Result<Self, FaceError> {
        Self::from_weights(&TfWeights::open(manifest, device)?)
    }

    /// Builds the network from tensors already read.
    pub fn from_weights(weights: &TfWeights) -> Result<Self, FaceError> {
        let mut loader = Loader::new(weights);
        let conv32_down = ConvLayer::load(&mut loader, "conv32_down", 3, 32, 7)?;
        let mut stages = Vec::new();
        for (name, cin, c, down, blocks) in PLAN {
            let down = match down {
                Some(prefix) => Some(Residual::load(&mut loader, prefix, cin, c)?),
                None => None,
            };
            let blocks = blocks
                .iter()
                .map(|prefix| Residual::load(&mut loader, prefix, c, c))
                .collect::<Result<Vec<_>, _>>()?;
            stages.push(Stage { name, down, blocks });
        }
        let fc = loader.tensor("fc", [256, ENCODING_SIZE])?;
        Ok(Self {
            conv32_down,
            stages,
            fc,
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

    /// The network on a preprocessed batch `[n, 3, 150, 150]` (see [`Self::preprocess`]),
    /// calling `watch` with each stage's name and output.
    fn run(&self, x: Tensor<4>, mut watch: impl FnMut(&'static str, &Tensor<4>)) -> Tensor<2> {
        let x = self.conv32_down.forward(x, 2, TfPadding::Valid, true);
        watch("conv32_down", &x);
        let mut x = max_pool2d(x, MaxPoolOptions::new([3, 3]).with_stride([2, 2]));
        watch("max_pool", &x);
        for stage in &self.stages {
            if let Some(down) = &stage.down {
                x = down.forward_down(x);
            }
            for block in &stage.blocks {
                x = block.forward(x);
            }
            watch(stage.name, &x);
        }
        let [n, c, _, _] = x.dims();
        let mean: Tensor<2> = x.mean_dims(&[2, 3]).reshape([n, c]);
        mean.matmul(self.fc.clone())
    }

    /// The encodings `[n, 128]` of a preprocessed batch `[n, 3, 150, 150]`: face-api's
    /// `forwardInput` after `toBatchTensor`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.run(x, |_, _| {})
    }

    /// Each stage's output shape `[n, c, h, w]` for a batch (for tests and curious readers):
    /// `conv32_down`, `max_pool`, then `conv32`, `conv64`, `conv128`, `conv256`, `conv256_out`
    /// after their residual blocks.
    pub fn stage_shapes(&self, x: Tensor<4>) -> Vec<(&'static str, [usize; 4])> {
        let mut shapes = Vec::new();
        self.run(x, |name, t| shapes.push((name, t.dims())));
        shapes
    }

    /// face-api's input for this network: [`to_batch_tensor`] at 150 pixels.
    pub fn preprocess(&self, crops: &[RgbImage]) -> Result<Tensor<4>, FaceError> {
        to_batch_tensor(crops, RECOGNITION_INPUT_SIZE, &self.device)
    }

    /// The encodings of face crops, computed as one batch (an empty list gives none).
    pub fn encode(&self, crops: &[RgbImage]) -> Result<Vec<Encoding>, FaceError> {
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        let values = self
            .forward(self.preprocess(crops)?)
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| FaceError::Input(format!("reading the encodings: {e:?}")))?;
        Ok(values
            .chunks_exact(ENCODING_SIZE)
            .map(|v| Encoding(v.to_vec()))
            .collect())
    }

    /// The encoding of one face crop.
    pub fn encode_one(&self, crop: &RgbImage) -> Result<Encoding, FaceError> {
        let mut all = self.encode(std::slice::from_ref(crop))?;
        Ok(all.remove(0))
    }
}
