//! LeNet-5 (LeCun et al., 1998), as the course draws it: two 5x5 convolutions with 6 and 16
//! filters, each followed by 2x2 average pooling, then dense layers of 120, 84 and 10 units.

use burn::tensor::Device;
use convnet_layers::{
    Activation, Conv2dConfig, DenseConfig, LayerConfig, ModelSpec, Padding, Pool2dConfig,
    Sequential, SpecError,
};

/// LeNet-5's settings. Parameter counts do not depend on `padding` or the activation:
/// 32x32 unpadded and 28x28 with padding 2 give the same 61,706 parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct LeNet5Config {
    pub in_channels: usize,
    /// Height and width of the input.
    pub input_size: usize,
    /// Zero padding of the first convolution (2 turns 28x28 into LeNet's 32x32).
    pub first_padding: usize,
    pub num_classes: usize,
    pub activation: Activation,
}

impl LeNet5Config {
    /// The paper's network on 32x32 greyscale input (ReLU, as modern re-implementations use).
    pub fn lenet5() -> Self {
        Self {
            in_channels: 1,
            input_size: 32,
            first_padding: 0,
            num_classes: 10,
            activation: Activation::Relu,
        }
    }

    /// The 1998 original's tanh units.
    pub fn lenet5_tanh() -> Self {
        Self {
            activation: Activation::Tanh,
            ..Self::lenet5()
        }
    }

    /// 28x28 input (MNIST, Fashion-MNIST) padded to 32x32 by the first convolution, as
    /// `shared/bench/pytorch/train_torch.py` builds it.
    pub fn fashion_mnist() -> Self {
        Self {
            input_size: 28,
            first_padding: 2,
            ..Self::lenet5()
        }
    }

    /// LeNet-5 on `channels x size x size` images: inputs smaller than 32x32 are zero-padded
    /// by the first convolution up to (nearly) 32x32, so the later layers keep the paper's sizes.
    pub fn for_input(channels: usize, size: usize) -> Self {
        Self {
            in_channels: channels,
            input_size: size,
            first_padding: 32usize.saturating_sub(size) / 2,
            ..Self::lenet5()
        }
    }

    pub fn with_num_classes(mut self, num_classes: usize) -> Self {
        self.num_classes = num_classes;
        self
    }

    /// The network as a layer spec (what `convnet summary` and spec files share).
    pub fn spec(&self) -> ModelSpec {
        let a = self.activation;
        ModelSpec::new(
            "lenet5",
            [self.in_channels, self.input_size, self.input_size],
        )
        .named(
            "conv1",
            LayerConfig::Conv2d(
                Conv2dConfig::new(6, 5)
                    .with_padding(Padding::uniform(self.first_padding))
                    .with_activation(a),
            ),
        )
        .named("pool1", LayerConfig::AvgPool2d(Pool2dConfig::new(2)))
        .named(
            "conv2",
            LayerConfig::Conv2d(Conv2dConfig::new(16, 5).with_activation(a)),
        )
        .named("pool2", LayerConfig::AvgPool2d(Pool2dConfig::new(2)))
        .named("flatten", LayerConfig::Flatten)
        .named(
            "fc1",
            LayerConfig::Dense(DenseConfig::new(120).with_activation(a)),
        )
        .named(
            "fc2",
            LayerConfig::Dense(DenseConfig::new(84).with_activation(a)),
        )
        .named(
            "fc3",
            LayerConfig::Dense(DenseConfig::new(self.num_classes)),
        )
    }

    pub fn init(&self, device: &Device) -> Result<Sequential, SpecError> {
        self.spec().build(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::tensor::{Distribution, Tensor};
    use convnet_layers::{FeatureShape, Mode, Summarize};

    #[test]
    fn lenet5_has_the_course_parameter_count_61706() {
        let device = Device::flex();
        for config in [
            LeNet5Config::lenet5(),
            LeNet5Config::lenet5_tanh(),
            LeNet5Config::fashion_mnist(),
        ] {
            let model = config.init(&device).unwrap();
            assert_eq!(model.num_params(), 61_706);
            let summary = model.summary().unwrap();
            assert_eq!(summary.total_params, 61_706);
            let per_layer: Vec<usize> = summary.layers.iter().map(|r| r.params).collect();
            assert_eq!(per_layer, [156, 0, 2416, 0, 0, 48_120, 10_164, 850]);
            let shapes: Vec<String> = summary
                .layers
                .iter()
                .map(|r| r.output_shape.to_string())
                .collect();
            assert_eq!(
                shapes,
                [
                    "(None, 6, 28, 28)",
                    "(None, 6, 14, 14)",
                    "(None, 16, 10, 10)",
                    "(None, 16, 5, 5)",
                    "(None, 400)",
                    "(None, 120)",
                    "(None, 84)",
                    "(None, 10)"
                ]
            );
            // 28*28*6*25 + 10*10*16*150 + 400*120 + 120*84 + 84*10
            assert_eq!(
                summary.total_macs,
                117_600 + 240_000 + 48_000 + 10_080 + 840
            );
        }
    }

    #[test]
    fn lenet5_runs_forward() {
        let device = Device::flex();
        let model = LeNet5Config::fashion_mnist().init(&device).unwrap();
        let x = Tensor::<4>::random([3, 1, 28, 28], Distribution::Normal(0.0, 1.0), &device);
        let y = model.forward(x, Mode::Eval).unwrap();
        assert_eq!(y.dims(), vec![3, 10]);
        assert_eq!(model.input_shape(), &FeatureShape::new([1, 28, 28]));
        let values: Vec<f32> = y.into_flat().into_data().try_to_vec::<f32>().unwrap();
        assert!(values.iter().all(|v| v.is_finite()));
    }
}
