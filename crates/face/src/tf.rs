//! What face-api.js's networks share: named TF.js weights with shape checks, and TensorFlow's
//! convolutions (`same` padding puts the odd pixel at the bottom and right, unlike a symmetric
//! pad; a separable convolution is a depthwise then a 1x1 convolution with one bias).

use std::path::{Path, PathBuf};

use burn::tensor::module::{avg_pool2d, conv2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions};
use burn::tensor::{Device, Tensor, TensorData};
use convnet_weights::{StateDict, read_tfjs};

use crate::FaceError;

/// A TF.js manifest's tensors (PyTorch names and layouts, see [`convnet_weights::read_tfjs`]),
/// handed out as tensors on one device after their shapes are checked.
pub struct TfWeights {
    path: PathBuf,
    dict: StateDict,
    device: Device,
}

impl TfWeights {
    /// Reads `path` (a `*-weights_manifest.json` with its shards beside it).
    pub fn open(path: &Path, device: &Device) -> Result<Self, FaceError> {
        Ok(Self::from_dict(path, read_tfjs(path)?, device))
    }

    /// Tensors already read; `path` names them in errors.
    pub fn from_dict(path: &Path, dict: StateDict, device: &Device) -> Self {
        Self {
            path: path.to_path_buf(),
            dict,
            device: device.clone(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn contains(&self, key: &str) -> bool {
        self.dict.contains_key(key)
    }

    /// The values of `key`, which must have exactly `shape`.
    pub fn values(&self, key: &str, shape: &[usize]) -> Result<Vec<f32>, FaceError> {
        let t = self.dict.get(key).ok_or_else(|| FaceError::MissingWeight {
            path: self.path.clone(),
            name: key.to_string(),
        })?;
        if t.shape != shape || !t.is_consistent() {
            return Err(FaceError::WeightShape {
                path: self.path.clone(),
                name: key.to_string(),
                found: t.shape.clone(),
                expected: shape.to_vec(),
            });
        }
        Ok(t.data.clone())
    }

    /// The tensor `key`, which must have exactly `shape`.
    pub fn tensor<const D: usize>(
        &self,
        key: &str,
        shape: [usize; D],
    ) -> Result<Tensor<D>, FaceError> {
        let values = self.values(key, &shape)?;
        Ok(Tensor::from_data(
            TensorData::new(values, shape),
            &self.device,
        ))
    }

    /// The shape stored under `key`, if any (for networks whose widths come from the file).
    pub fn shape(&self, key: &str) -> Option<&[usize]> {
        self.dict.get(key).map(|t| t.shape.as_slice())
    }
}

/// TensorFlow's `same` padding along one axis: `(before, after)`, the odd pixel after.
pub fn same_pads(size: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = ((out.saturating_sub(1)) * stride + kernel).saturating_sub(size);
    (total / 2, total - total / 2)
}

/// How a TensorFlow convolution or pool pads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TfPadding {
    Same,
    Valid,
}

fn pads(
    x: &Tensor<4>,
    kernel: [usize; 2],
    stride: usize,
    padding: TfPadding,
) -> [(usize, usize); 2] {
    let [_, _, h, w] = x.dims();
    match padding {
        TfPadding::Same => [
            same_pads(h, kernel[0], stride),
            same_pads(w, kernel[1], stride),
        ],
        TfPadding::Valid => [(0, 0), (0, 0)],
    }
}

/// A convolution (`weight` `[out, in/groups, kh, kw]`) with TensorFlow's padding.
pub fn conv(
    x: Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    stride: usize,
    padding: TfPadding,
    groups: usize,
) -> Tensor<4> {
    let [_, _, kh, kw] = weight.dims();
    let p = pads(&x, [kh, kw], stride, padding);
    conv2d(
        x,
        weight.clone(),
        bias.cloned(),
        ConvOptions::new_with_padding([stride, stride], p, [1, 1], groups),
    )
}

/// A depthwise convolution (`weight` `[channels, 1, kh, kw]`) with TensorFlow's padding.
pub fn depthwise(x: Tensor<4>, weight: &Tensor<4>, stride: usize, padding: TfPadding) -> Tensor<4> {
    let groups = x.dims()[1];
    conv(x, weight, None, stride, padding, groups)
}

/// TensorFlow's average pool. With `same` padding TensorFlow averages over the pixels inside
/// the picture only, which is what `count_include_pad = false` does.
pub fn avg_pool(x: Tensor<4>, kernel: usize, stride: usize, padding: TfPadding) -> Tensor<4> {
    let p = pads(&x, [kernel, kernel], stride, padding);
    avg_pool2d(
        x,
        AvgPoolOptions::new([kernel, kernel])
            .with_stride([stride, stride])
            .with_padding_pairs(p)
            .with_count_include_pad(false),
    )
}

/// A separable convolution as TF.js stores it: `{prefix}.depthwise.weight`,
/// `{prefix}.pointwise.weight` and `{prefix}.pointwise.bias`.
pub struct SeparableConv {
    pub depthwise: Tensor<4>,
    pub pointwise: Tensor<4>,
    pub bias: Tensor<1>,
}

impl SeparableConv {
    /// Loads `{prefix}.*` for `channels_in` → `channels_out` with a `kernel`² depthwise step.
    pub fn load(
        weights: &TfWeights,
        prefix: &str,
        channels_in: usize,
        channels_out: usize,
        kernel: usize,
    ) -> Result<Self, FaceError> {
        Ok(Self {
            depthwise: weights.tensor(
                &format!("{prefix}.depthwise.weight"),
                [channels_in, 1, kernel, kernel],
            )?,
            pointwise: weights.tensor(
                &format!("{prefix}.pointwise.weight"),
                [channels_out, channels_in, 1, 1],
            )?,
            bias: weights.tensor(&format!("{prefix}.pointwise.bias"), [channels_out])?,
        })
    }

    /// `same` padding, as face-api uses everywhere.
    pub fn forward(&self, x: Tensor<4>, stride: usize) -> Tensor<4> {
        let x = depthwise(x, &self.depthwise, stride, TfPadding::Same);
        conv(x, &self.pointwise, Some(&self.bias), 1, TfPadding::Valid, 1)
    }
}

/// Tensors read from a manifest, with the names and the number of values taken, so a test can
/// check that a network uses every tensor of its file.
pub(crate) struct Loader<'a> {
    pub weights: &'a TfWeights,
    pub names: Vec<String>,
    pub values: usize,
}

impl<'a> Loader<'a> {
    pub fn new(weights: &'a TfWeights) -> Self {
        Self {
            weights,
            names: Vec::new(),
            values: 0,
        }
    }

    pub fn tensor<const D: usize>(
        &mut self,
        key: &str,
        shape: [usize; D],
    ) -> Result<Tensor<D>, FaceError> {
        let t = self.weights.tensor(key, shape)?;
        self.names.push(key.to_string());
        self.values += shape.iter().product::<usize>();
        Ok(t)
    }

    pub fn separable(
        &mut self,
        prefix: &str,
        channels_in: usize,
        channels_out: usize,
    ) -> Result<SeparableConv, FaceError> {
        let s = SeparableConv::load(self.weights, prefix, channels_in, channels_out, 3)?;
        for leaf in ["depthwise.weight", "pointwise.weight", "pointwise.bias"] {
            self.names.push(format!("{prefix}.{leaf}"));
        }
        self.values += channels_in * 9 + channels_out * channels_in + channels_out;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_puts_the_odd_pixel_after() {
        // TensorFlow: 112 → 56 with a 3x3 kernel and stride 2 pads 0 before and 1 after.
        assert_eq!(same_pads(112, 3, 2), (0, 1));
        assert_eq!(same_pads(113, 3, 2), (1, 1));
        assert_eq!(same_pads(7, 3, 1), (1, 1));
        assert_eq!(same_pads(150, 7, 2), (2, 3));
        assert_eq!(same_pads(4, 1, 1), (0, 0));
    }

    #[test]
    fn same_conv_matches_a_hand_computed_corner() {
        // A 4x4 ramp, a 3x3 kernel of ones, stride 2: outputs sit at (0,0),(0,2),(2,0),(2,2)
        // with the window starting there (no pad before), one zero row/column after.
        let device = Device::flex();
        let x: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(x, [1, 1, 4, 4]), &device);
        let w = Tensor::<4>::ones([1, 1, 3, 3], &device);
        let y = conv(x, &w, None, 2, TfPadding::Same, 1);
        let y: Vec<f32> = y.into_data().try_to_vec::<f32>().unwrap();
        let window = |r0: usize, c0: usize| -> f32 {
            let mut s = 0.0;
            for r in r0..(r0 + 3).min(4) {
                for c in c0..(c0 + 3).min(4) {
                    s += (r * 4 + c) as f32;
                }
            }
            s
        };
        assert_eq!(
            y,
            vec![window(0, 0), window(0, 2), window(2, 0), window(2, 2)]
        );
    }
}
