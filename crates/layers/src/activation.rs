//! Element-wise activations, usable as a layer's `activation` or as a layer of their own.

use burn::module::Module;
use burn::tensor::{Tensor, activation};
use serde::{Deserialize, Serialize};

use crate::error::LayerErrorKind;
use crate::layer::LayerInfo;
use crate::shape::FeatureShape;

/// The course's activations. `softmax` runs over the channel / feature axis (axis 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// The identity (`linear` in Keras).
    #[default]
    #[serde(alias = "none", alias = "identity")]
    Linear,
    Relu,
    Relu6,
    Sigmoid,
    Tanh,
    Softmax,
    /// `x · σ(x)` (EfficientNet's activation; Keras calls it swish).
    #[serde(alias = "swish")]
    Silu,
    /// Leaky ReLU with slope 0.1 for negative inputs: darknet's `leaky`, which YOLO and
    /// face-api's Tiny Face Detector use.
    #[serde(alias = "leaky_relu")]
    Leaky,
}

/// The negative slope of [`Activation::Leaky`] (darknet's).
pub const LEAKY_SLOPE: f64 = 0.1;

impl Activation {
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Linear => x,
            Activation::Relu => activation::relu(x),
            // Two one-sided clamps: flex's two-sided clamp tests its bounds for NaN per element and
            // does not vectorise (a quarter of MobileNet v2's inference time, `perf`).
            Activation::Relu6 => x.clamp_min(0.0).clamp_max(6.0),
            Activation::Sigmoid => activation::sigmoid(x),
            Activation::Tanh => activation::tanh(x),
            Activation::Softmax => activation::softmax(x, 1),
            Activation::Silu => activation::silu(x),
            // Burn's autodiff records leaky ReLU as a mask and a `mask_where`, slow on flex.
            Activation::Leaky => convnet_kernels::leaky_relu(x, LEAKY_SLOPE),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Relu6 => "relu6",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
            Activation::Silu => "silu",
            Activation::Leaky => "leaky",
        }
    }

    /// Keras' class name for the layer form.
    pub fn kind(self) -> &'static str {
        match self {
            Activation::Linear => "Activation",
            Activation::Relu => "ReLU",
            Activation::Relu6 => "ReLU6",
            Activation::Sigmoid => "Sigmoid",
            Activation::Tanh => "Tanh",
            Activation::Softmax => "Softmax",
            Activation::Silu => "SiLU",
            Activation::Leaky => "LeakyReLU",
        }
    }
}

/// An activation as a layer of its own (Keras' `ReLU()`, `Softmax()`...).
#[derive(Module, Debug)]
pub struct ActivationLayer {
    #[module(skip)]
    pub activation: Activation,
}

impl ActivationLayer {
    pub fn new(activation: Activation) -> Self {
        Self { activation }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.activation.apply(x)
    }
}

impl LayerInfo for ActivationLayer {
    fn kind(&self) -> &'static str {
        self.activation.kind()
    }

    fn output_shape(&self, input: &FeatureShape) -> Result<FeatureShape, LayerErrorKind> {
        Ok(input.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn activations_match_their_formulas() {
        let device = Device::flex();
        let xs = [-7.0f32, -1.0, 0.0, 0.5, 3.0, 8.0];
        let x = Tensor::<2>::from_data(TensorData::new(xs.to_vec(), [1, 6]), &device);
        let get = |a: Activation| -> Vec<f32> {
            a.apply(x.clone()).into_data().try_to_vec::<f32>().unwrap()
        };
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
        assert!(close(
            &get(Activation::Relu),
            &[0.0, 0.0, 0.0, 0.5, 3.0, 8.0]
        ));
        assert!(close(
            &get(Activation::Relu6),
            &[0.0, 0.0, 0.0, 0.5, 3.0, 6.0]
        ));
        let sig: Vec<f32> = xs.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect();
        assert!(close(&get(Activation::Sigmoid), &sig));
        let tanh: Vec<f32> = xs.iter().map(|v| v.tanh()).collect();
        assert!(close(&get(Activation::Tanh), &tanh));
        let z: f32 = xs.iter().map(|v| v.exp()).sum();
        let soft: Vec<f32> = xs.iter().map(|v| v.exp() / z).collect();
        assert!(close(&get(Activation::Softmax), &soft));
        assert!(close(&get(Activation::Linear), &xs));
        let silu: Vec<f32> = xs.iter().map(|v| v / (1.0 + (-v).exp())).collect();
        assert!(close(&get(Activation::Silu), &silu));
        let leaky: Vec<f32> = xs
            .iter()
            .map(|&v| if v < 0.0 { 0.1 * v } else { v })
            .collect();
        assert!(close(&get(Activation::Leaky), &leaky));
    }

    /// Leaky ReLU (convnet's kernel on flex) against Burn's own composition, forward and
    /// backward, on more elements than one parallel chunk, with zeros, negative zeros and NaNs;
    /// and its in-place inference path leaves a shared input alone.
    #[test]
    fn leaky_matches_burns_leaky_relu_forward_and_backward() {
        let n = 40_000;
        let xs: Vec<f32> = (0..n)
            .map(|i| match i % 97 {
                0 => 0.0,
                1 => -0.0,
                2 => f32::NAN,
                _ => ((i * 7919) % 2001) as f32 / 100.0 - 10.0,
            })
            .collect();
        let upstream: Vec<f32> = (0..n).map(|i| (i % 13) as f32 - 6.0).collect();
        let bits = |t: Tensor<1>| -> Vec<u32> {
            let v = t.into_data().try_to_vec::<f32>().unwrap();
            v.iter().map(|v| v.to_bits()).collect()
        };
        let device = Device::flex().autodiff();
        let run = |ours: bool| {
            let x =
                Tensor::<1>::from_data(TensorData::new(xs.clone(), [n]), &device).require_grad();
            let y = if ours {
                Activation::Leaky.apply(x.clone())
            } else {
                activation::leaky_relu(x.clone(), LEAKY_SLOPE)
            };
            let g = Tensor::<1>::from_data(TensorData::new(upstream.clone(), [n]), &device);
            let grads = (y.clone() * g).sum().backward();
            (bits(y), bits(x.grad(&grads).unwrap()))
        };
        let (ours, burns) = (run(true), run(false));
        assert_eq!(ours.0, burns.0, "forward");
        assert_eq!(ours.1, burns.1, "gradient");

        let device = Device::flex();
        let x = Tensor::<1>::from_data(TensorData::new(xs.clone(), [n]), &device);
        let shared = Activation::Leaky.apply(x.clone()) + x.clone();
        let want = activation::leaky_relu(x.clone(), LEAKY_SLOPE) + x.clone();
        assert_eq!(bits(shared), bits(want), "with the input shared");
        let fresh = Tensor::<1>::from_data(TensorData::new(xs.clone(), [n]), &device);
        assert_eq!(bits(x), bits(fresh), "the shared input");
        let unique = Tensor::<1>::from_data(TensorData::new(xs, [n]), &device);
        assert_eq!(bits(Activation::Leaky.apply(unique)), ours.0, "in place");
    }

    /// ReLU6 passes the gradient strictly inside (0, 6) and NaN through, as PyTorch's does.
    #[test]
    fn relu6_gradient_and_nan() {
        let device = Device::flex().autodiff();
        let xs = vec![-1.0f32, 0.5, 3.0, 5.9, 7.0, f32::NAN];
        let x = Tensor::<1>::from_data(TensorData::new(xs, [6]), &device).require_grad();
        let y = Activation::Relu6.apply(x.clone());
        let values = y.clone().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(&values[..5], &[0.0, 0.5, 3.0, 5.9, 6.0]);
        assert!(values[5].is_nan());
        let grads = (y * Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &device))
            .sum()
            .backward();
        let dx = x.grad(&grads).unwrap().into_data().try_to_vec::<f32>();
        assert_eq!(&dx.unwrap()[..5], &[0.0, 2.0, 3.0, 4.0, 0.0]);
    }
}
