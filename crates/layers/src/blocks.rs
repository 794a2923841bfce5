//! Blocks made of layers: squeeze-and-excitation, residual (skip) connections and channel
//! concatenation (inception modules).

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor, activation};
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::error::LayerErrorKind;
use crate::layer::{LayerInfo, macs_product, macs_sum};
use crate::limits::{checked_add, checked_product};
use crate::sequential::Stack;
use crate::shape::FeatureShape;

fn reduction() -> usize {
    16
}

/// Squeeze-and-excitation (Hu et al.): global average pool → dense `C / r` + ReLU → dense `C` +
/// sigmoid → scale each channel by its gate. EfficientNet uses SiLU in place of the ReLU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqueezeExcitationConfig {
    #[serde(default = "reduction", alias = "ratio")]
    pub reduction: usize,
    /// Overrides `C / reduction` (EfficientNet squeezes relative to the block's input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub squeeze_channels: Option<usize>,
    /// The activation after the squeeze (`relu` in the SE paper, `silu` in EfficientNet).
    #[serde(default = "relu", skip_serializing_if = "is_relu")]
    pub activation: Activation,
}

fn relu() -> Activation {
    Activation::Relu
}

fn is_relu(a: &Activation) -> bool {
    *a == Activation::Relu
}

impl Default for SqueezeExcitationConfig {
    fn default() -> Self {
        Self {
            reduction: reduction(),
            squeeze_channels: None,
            activation: relu(),
        }
    }
}

impl SqueezeExcitationConfig {
    pub fn init(
        &self,
        channels: usize,
        device: &Device,
    ) -> Result<SqueezeExcitation, LayerErrorKind> {
        if self.reduction == 0 {
            return Err(LayerErrorKind::Config(
                "reduction must be at least 1".into(),
            ));
        }
        let squeeze = self
            .squeeze_channels
            .unwrap_or((channels / self.reduction).max(1));
        if squeeze == 0 || channels == 0 {
            return Err(LayerErrorKind::Config(
                "squeeze channels must be at least 1".into(),
            ));
        }
        checked_product("weights", &[channels, squeeze])?;
        Ok(SqueezeExcitation {
            fc1: LinearConfig::new(channels, squeeze).init(device),
            fc2: LinearConfig::new(squeeze, channels).init(device),
            activation: self.activation,
        })
    }
}

#[derive(Module, Debug)]
pub struct SqueezeExcitation {
    pub fc1: Linear,
    pub fc2: Linear,
    #[module(skip)]
    pub activation: Activation,
}

impl SqueezeExcitation {
    pub fn channels(&self) -> usize {
        self.fc1.weight.lazy_shape().dims::<2>()[0]
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Result<Tensor<D>, LayerErrorKind> {
        let dims = x.dims();
        if D < 3 || dims[1] != self.channels() {
            return Err(LayerErrorKind::Channels {
                expected: self.channels(),
                got: if D < 2 { 0 } else { dims[1] },
            });
        }
        let squeezed: Tensor<2> = x
            .clone()
            .flatten::<3>(2, D - 1)
            .mean_dim(2)
            .reshape([dims[0], dims[1]]);
        let hidden = self.activation.apply(self.fc1.forward(squeezed));
        let gate = activation::sigmoid(self.fc2.forward(hidden));
        let mut shape = [1; D];
        shape[0] = dims[0];
        shape[1] = dims[1];
        Ok(x * gate.reshape(shape))
    }
}

impl LayerInfo for SqueezeExcitation {
    fn kind(&self) -> &'static str {
        "SqueezeExcitation"
    }

    fn output_shape(&self, input: &FeatureShape) -> Result<FeatureShape, LayerErrorKind> {
        if input.rank() < 2 {
            return Err(LayerErrorKind::Rank {
                expected: "a (channels, spatial...) map",
                hint: " (it was flattened already)",
            });
        }
        if input.channels() != self.channels() {
            return Err(LayerErrorKind::Channels {
                expected: self.channels(),
                got: input.channels(),
            });
        }
        Ok(input.clone())
    }

    fn macs(&self, input: &FeatureShape, _output: &FeatureShape) -> Result<u64, LayerErrorKind> {
        let s = self.fc1.weight.lazy_shape().dims::<2>()[1];
        macs_sum(
            macs_product(&[2, self.channels(), s])?,
            macs_product(input.dims())?,
        )
    }
}

/// `y = activation(body(x) + shortcut(x))`, the shortcut being the identity when empty (the
/// course's identity block) or a projection (its convolutional block).
#[derive(Module, Debug)]
pub struct Residual {
    pub body: Stack,
    pub shortcut: Stack,
    #[module(skip)]
    pub activation: crate::Activation,
}

impl Residual {
    pub(crate) fn output(&self, input: &FeatureShape) -> Result<FeatureShape, LayerErrorKind> {
        let body = self
            .body
            .output_shape(input)
            .map_err(|e| LayerErrorKind::Config(e.to_string()))?;
        let short = self
            .shortcut
            .output_shape(input)
            .map_err(|e| LayerErrorKind::Config(e.to_string()))?;
        if body != short {
            return Err(LayerErrorKind::Config(format!(
                "the body's output {body} differs from the shortcut's {short}; add a projection shortcut"
            )));
        }
        Ok(body)
    }
}

impl LayerInfo for Residual {
    fn kind(&self) -> &'static str {
        "Residual"
    }

    fn output_shape(&self, input: &FeatureShape) -> Result<FeatureShape, LayerErrorKind> {
        self.output(input)
    }
}

/// Runs branches on the same input and concatenates their outputs along the channels, as an
/// inception module does.
#[derive(Module, Debug)]
pub struct Concat {
    pub branches: Vec<Stack>,
}

impl Concat {
    pub(crate) fn output(&self, input: &FeatureShape) -> Result<FeatureShape, LayerErrorKind> {
        let mut out: Option<FeatureShape> = None;
        for (i, branch) in self.branches.iter().enumerate() {
            let shape = branch
                .output_shape(input)
                .map_err(|e| LayerErrorKind::Config(e.to_string()))?;
            out = Some(match out {
                None => shape,
                Some(acc) if acc.rank() == shape.rank() && acc.spatial() == shape.spatial() => {
                    let mut dims = acc.0.clone();
                    dims[0] = checked_add("concatenated channels", dims[0], shape.channels())?;
                    FeatureShape::new(dims)
                }
                Some(acc) => {
                    return Err(LayerErrorKind::Config(format!(
                        "branch {} gives {shape}, which cannot be concatenated with {acc} along the channels",
                        i + 1
                    )));
                }
            });
        }
        out.ok_or_else(|| LayerErrorKind::Config("concat needs at least one branch".into()))
    }
}

impl LayerInfo for Concat {
    fn kind(&self) -> &'static str {
        "Concatenate"
    }

    fn output_shape(&self, input: &FeatureShape) -> Result<FeatureShape, LayerErrorKind> {
        self.output(input)
    }
}
