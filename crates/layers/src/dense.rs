//! Fully connected layers and the flatten that feeds them.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::Device;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::error::LayerErrorKind;
use crate::layer::{LayerInfo, macs_product};
use crate::limits::checked_product;
use crate::shape::FeatureShape;

fn yes() -> bool {
    true
}

/// `Dense(units, activation)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenseConfig {
    pub units: usize,
    #[serde(default = "yes", alias = "use_bias")]
    pub bias: bool,
    #[serde(default)]
    pub activation: Activation,
    /// Optional: when given, the input must have this many features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_features: Option<usize>,
}

impl DenseConfig {
    pub fn new(units: usize) -> Self {
        Self {
            units,
            bias: true,
            activation: Activation::Linear,
            in_features: None,
        }
    }
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }
    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    pub fn init(&self, in_features: usize, device: &Device) -> Result<Dense, LayerErrorKind> {
        if let Some(expected) = self.in_features
            && expected != in_features
        {
            return Err(LayerErrorKind::Features {
                expected,
                got: in_features,
            });
        }
        if self.units == 0 {
            return Err(LayerErrorKind::Config("units must be at least 1".into()));
        }
        checked_product("weights", &[in_features, self.units])?;
        Ok(Dense {
            linear: LinearConfig::new(in_features, self.units)
                .with_bias(self.bias)
                .init(device),
            activation: self.activation,
        })
    }
}

/// A fully connected layer over `[N, features]`, followed by an optional activation.
#[derive(Module, Debug)]
pub struct Dense {
    pub linear: Linear,
    #[module(skip)]
    pub activation: Activation,
}

impl Dense {
    pub fn in_features(&self) -> usize {
        self.linear.weight.lazy_shape().dims::<2>()[0]
    }

    pub fn units(&self) -> usize {
        self.linear.weight.lazy_shape().dims::<2>()[1]
    }

    fn check(&self, input: &FeatureShape) -> Result<(), LayerErrorKind> {
        if input.rank() != 1 {
            return Err(LayerErrorKind::Rank {
                expected: "a flat (features) vector",
                hint: "; add a flatten layer before it",
            });
        }
        let got = input.num_elements()?;
        if got != self.in_features() {
            return Err(LayerErrorKind::Features {
                expected: self.in_features(),
                got,
            });
        }
        Ok(())
    }

    pub fn forward(&self, x: Tensor<2>) -> Result<Tensor<2>, LayerErrorKind> {
        let [_, f] = x.dims();
        self.check(&FeatureShape::new([f]))?;
        Ok(self.activation.apply(self.linear.forward(x)))
    }
}

impl LayerInfo for Dense {
    fn kind(&self) -> &'static str {
        "Dense"
    }

    fn describe(&self) -> String {
        format!("Dense {} units", self.units())
    }

    fn output_shape(&self, input: &FeatureShape) -> Result<FeatureShape, LayerErrorKind> {
        self.check(input)?;
        Ok(FeatureShape::new([self.units()]))
    }

    fn macs(&self, _input: &FeatureShape, _output: &FeatureShape) -> Result<u64, LayerErrorKind> {
        macs_product(&[self.in_features(), self.units()])
    }
}

/// Unrolls a `[C, H, W]` map into a `[C*H*W]` vector (channel-major, as PyTorch does).
#[derive(Module, Debug, Default)]
pub struct Flatten;

impl Flatten {
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<2> {
        x.flatten(1, D - 1)
    }
}

impl LayerInfo for Flatten {
    fn kind(&self) -> &'static str {
        "Flatten"
    }

    fn output_shape(&self, input: &FeatureShape) -> Result<FeatureShape, LayerErrorKind> {
        Ok(FeatureShape::new([input.num_elements()?]))
    }
}
