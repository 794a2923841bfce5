//! Normalisation layers: batch norm with an explicit mode, and AlexNet's local response norm.

use burn::module::{Flag, Module, Param, RunningState};
use burn::tensor::ops::AvgPoolOptions;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::LayerErrorKind;
use crate::layer::LayerInfo;
use crate::limits::{Bytes, SizeError, checked_add, checked_mul};
use crate::mode::Mode;
use crate::shape::FeatureShape;
use crate::summary::ParamCount;

fn eps() -> f64 {
    1e-5
}
fn momentum() -> f64 {
    0.1
}

/// `BatchNormalization` over the channel axis of any map (or the features of a vector).
/// `momentum` follows PyTorch: `running = (1 - m) running + m batch` (Keras' 0.99 is m = 0.01).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchNormConfig {
    #[serde(default = "eps", alias = "eps")]
    pub epsilon: f64,
    #[serde(default = "momentum")]
    pub momentum: f64,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        Self {
            epsilon: eps(),
            momentum: momentum(),
        }
    }
}

impl BatchNormConfig {
    pub fn init(&self, channels: usize, device: &Device) -> Result<BatchNorm, LayerErrorKind> {
        if channels == 0 {
            return Err(LayerErrorKind::Config(
                "batch norm needs at least one channel".into(),
            ));
        }
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(LayerErrorKind::Config(
                "epsilon must be finite and positive".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(LayerErrorKind::Config(
                "momentum must be within [0, 1]".into(),
            ));
        }
        // Unlike weights, which Burn allocates on first use, the four vectors are made now.
        Bytes::f32s(&[4, channels]).check(&format!("batch norm of {channels} channels"))?;
        Ok(BatchNorm {
            weight: Param::from_tensor(Tensor::ones([channels], device)),
            bias: Param::from_tensor(Tensor::zeros([channels], device)),
            running_mean: RunningState::new(Tensor::zeros([channels], device)),
            running_var: RunningState::new(Tensor::ones([channels], device)),
            training: Param::from_bool(true),
            momentum: self.momentum,
            epsilon: self.epsilon,
        })
    }
}

/// Batch normalisation; names follow PyTorch (`weight` = γ, `bias` = β).
#[derive(Module, Debug)]
pub struct BatchNorm {
    pub weight: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
    pub running_mean: RunningState<Tensor<1>>,
    pub running_var: RunningState<Tensor<1>>,
    /// Cleared by [`Module::freeze`]: a frozen batch norm uses its running statistics even when
    /// asked to train, and never updates them.
    pub training: Param<Flag>,
    pub momentum: f64,
    pub epsilon: f64,
}

impl BatchNorm {
    pub fn channels(&self) -> usize {
        self.weight.lazy_shape().dims::<1>()[0]
    }

    /// Whether `mode` makes this layer use batch statistics.
    pub fn trains(&self, mode: Mode) -> bool {
        mode == Mode::Train && self.training.is_enabled()
    }

    /// Normalises `[N, C, ...]` per channel.
    pub fn forward<const D: usize>(
        &self,
        x: Tensor<D>,
        mode: Mode,
    ) -> Result<Tensor<D>, LayerErrorKind> {
        let dims = x.dims();
        if D < 2 || dims[1] != self.channels() {
            return Err(LayerErrorKind::Channels {
                expected: self.channels(),
                got: if D < 2 { 0 } else { dims[1] },
            });
        }
        let device = x.device();
        let (mean, var) = if self.trains(mode) {
            // [N, C, rest] -> per-channel statistics over N and rest.
            let n: usize = dims.iter().product::<usize>() / dims[1];
            let flat: Tensor<3> = x
                .clone()
                .swap_dims(0, 1)
                .flatten::<2>(1, D - 1)
                .unsqueeze_dim(0);
            let mean = flat.clone().mean_dim(2);
            let var = (flat - mean.clone()).powi_scalar(2).mean_dim(2);
            let (mean, var): (Tensor<1>, Tensor<1>) = (mean.flatten(0, 2), var.flatten(0, 2));
            // PyTorch keeps the unbiased variance in the running estimate.
            let unbiased = var.clone().detach() * (n as f64 / (n.max(2) - 1) as f64);
            let m = self.momentum;
            let running_mean = self.running_mean.value_sync().to_device(&device);
            let running_var = self.running_var.value_sync().to_device(&device);
            self.running_mean
                .update((running_mean * (1.0 - m) + mean.clone().detach() * m).detach());
            self.running_var
                .update((running_var * (1.0 - m) + unbiased * m).detach());
            (mean, var)
        } else {
            // `value_sync` sees updates made on other threads (a data-parallel training step).
            (
                self.running_mean.value_sync().to_device(&device),
                self.running_var.value_sync().to_device(&device),
            )
        };
        let inv_std = (var + self.epsilon).sqrt().recip();
        let scale = self.weight.val() * inv_std;
        let shift = self.bias.val() - mean * scale.clone();
        Ok(convnet_kernels::channel_affine(x, scale, shift))
    }

    /// γ and β are trained; the running mean and variance are not (Keras counts them as
    /// non-trainable parameters).
    pub fn param_count(&self) -> Result<ParamCount, SizeError> {
        let half = checked_mul("batch norm parameters", 2, self.channels())?;
        Ok(ParamCount {
            trainable: half,
            non_trainable: half,
        })
    }
}

impl LayerInfo for BatchNorm {
    fn kind(&self) -> &'static str {
        "BatchNormalization"
    }

    fn output_shape(&self, input: &FeatureShape) -> Result<FeatureShape, LayerErrorKind> {
        if input.channels() != self.channels() {
            return Err(LayerErrorKind::Channels {
                expected: self.channels(),
                got: input.channels(),
            });
        }
        Ok(input.clone())
    }
}

fn lrn_radius() -> usize {
    2
}
fn lrn_k() -> f64 {
    2.0
}
fn lrn_alpha() -> f64 {
    1e-4
}
fn lrn_beta() -> f64 {
    0.75
}

/// AlexNet's local response normalisation across channels:
/// `b_i = a_i (k + alpha * sum_{j = i - r}^{i + r} a_j^2)^(-beta)`, with AlexNet's
/// `r = 2, k = 2, alpha = 1e-4, beta = 0.75` as defaults. (PyTorch's `LocalResponseNorm(size,
/// alpha)` divides alpha by `size = 2r + 1`.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrnConfig {
    #[serde(default = "lrn_radius")]
    pub depth_radius: usize,
    #[serde(default = "lrn_k", alias = "k")]
    pub bias: f64,
    #[serde(default = "lrn_alpha")]
    pub alpha: f64,
    #[serde(default = "lrn_beta")]
    pub beta: f64,
}

impl Default for LrnConfig {
    fn default() -> Self {
        Self {
            depth_radius: lrn_radius(),
            bias: lrn_k(),
            alpha: lrn_alpha(),
            beta: lrn_beta(),
        }
    }
}

impl LrnConfig {
    pub fn init(&self) -> Result<LocalResponseNorm, LayerErrorKind> {
        if !(self.bias.is_finite() && self.alpha.is_finite() && self.beta.is_finite()) {
            return Err(LayerErrorKind::Config(
                "k, alpha and beta must be finite".into(),
            ));
        }
        // The window, 2 r + 1 channels, is computed on every forward pass.
        checked_add(
            "depth window",
            checked_mul("depth window", 2, self.depth_radius)?,
            1,
        )?;
        Ok(LocalResponseNorm {
            depth_radius: self.depth_radius,
            bias: self.bias,
            alpha: self.alpha,
            beta: self.beta,
        })
    }
}

#[derive(Module, Debug)]
pub struct LocalResponseNorm {
    pub depth_radius: usize,
    pub bias: f64,
    pub alpha: f64,
    pub beta: f64,
}

impl LocalResponseNorm {
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let dims = x.dims();
        let rest: usize = dims[2..].iter().product();
        let size = 2 * self.depth_radius + 1;
        // Sum of squares over a window of channels: a `size x 1` average (zeros beyond the
        // edges counted) times the window size.
        let squares = x
            .clone()
            .powi_scalar(2)
            .reshape([dims[0], 1, dims[1], rest]);
        let sums = convnet_kernels::avg_pool2d(
            squares,
            AvgPoolOptions::new([size, 1])
                .with_stride([1, 1])
                .with_padding([self.depth_radius, 0])
                .with_count_include_pad(true),
        ) * size as f64;
        let scale = (sums * self.alpha + self.bias).powf_scalar(-self.beta);
        x * scale.reshape(dims)
    }
}

impl LayerInfo for LocalResponseNorm {
    fn kind(&self) -> &'static str {
        "LocalResponseNorm"
    }

    fn output_shape(&self, input: &FeatureShape) -> Result<FeatureShape, LayerErrorKind> {
        if input.rank() < 2 {
            return Err(LayerErrorKind::Rank {
                expected: "a (channels, spatial...) map",
                hint: " (it was flattened already)",
            });
        }
        Ok(input.clone())
    }
}

fn rate() -> f64 {
    0.5
}

/// Dropout with rate `p`; active only in [`Mode::Train`] (inverted dropout: kept units are
/// scaled by `1 / (1 - p)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropoutConfig {
    #[serde(default = "rate", alias = "p")]
    pub rate: f64,
}

impl DropoutConfig {
    pub fn new(rate: f64) -> Self {
        Self { rate }
    }

    pub fn init(&self) -> Result<Dropout, LayerErrorKind> {
        if !(0.0..1.0).contains(&self.rate) {
            return Err(LayerErrorKind::Config(format!(
                "dropout rate must be in [0, 1), got {}",
                self.rate
            )));
        }
        Ok(Dropout { rate: self.rate })
    }
}

#[derive(Module, Debug)]
pub struct Dropout {
    pub rate: f64,
}

impl Dropout {
    pub fn forward<const D: usize>(&self, x: Tensor<D>, mode: Mode) -> Tensor<D> {
        if mode == Mode::Eval || self.rate == 0.0 {
            return x;
        }
        let keep = 1.0 - self.rate;
        let mask = x
            .zeros_like()
            .random_like(burn::tensor::Distribution::Bernoulli(keep));
        x * mask / keep
    }
}

impl LayerInfo for Dropout {
    fn kind(&self) -> &'static str {
        "Dropout"
    }

    fn output_shape(&self, input: &FeatureShape) -> Result<FeatureShape, LayerErrorKind> {
        Ok(input.clone())
    }
}
