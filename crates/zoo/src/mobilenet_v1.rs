//! MobileNet (Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile
//! Vision Applications", 2017), laid out as Keras' `MobileNet` application, layer names
//! included, so its weights load by name.
//!
//! A standard KxK convolution filters and combines channels in one step, at a cost of
//! `K² · C_in · C_out` per pixel. MobileNet splits the two: a depthwise KxK convolution filters
//! each channel on its own (`K² · C_in`), then a 1x1 pointwise convolution combines them
//! (`C_in · C_out`); with 3x3 kernels that is 8 to 9 times cheaper for a small loss of accuracy.
//! The width multiplier `alpha` thins every layer uniformly, trading accuracy for cost
//! roughly quadratically.

use convnet_layers::{
    Activation, AdaptivePoolConfig, BatchNormConfig, ConvConfig, DepthwiseConfig, DropoutConfig,
    LayerConfig, LayerSpec, ModelSpec, Padding, ZeroPadding2dConfig,
};

use crate::blocks::{conv_bn_act, named};
use crate::{InputRecipe, ZooEntry, ZooOptions};

pub const VARIANTS: &[ZooEntry] = &[
    ZooEntry {
        name: "mobilenet",
        description: "MobileNet v1 (Howard 2017), alpha 1.0, 224x224, Keras layout",
    },
    ZooEntry {
        name: "mobilenet_075",
        description: "MobileNet v1, alpha 0.75 (every layer 3/4 as wide)",
    },
    ZooEntry {
        name: "mobilenet_050",
        description: "MobileNet v1, alpha 0.5",
    },
    ZooEntry {
        name: "mobilenet_025",
        description: "MobileNet v1, alpha 0.25",
    },
];

/// Keras' MobileNet weights: 224x224 in `tf` mode (every alpha).
pub fn input_recipe(_name: &str) -> InputRecipe {
    InputRecipe::keras_tf(224)
}

pub fn spec(name: &str, options: &ZooOptions) -> Option<ModelSpec> {
    let alpha = match name {
        "mobilenet" => 1.0,
        "mobilenet_075" => 0.75,
        "mobilenet_050" => 0.5,
        "mobilenet_025" => 0.25,
        _ => return None,
    };
    Some(
        MobileNetConfig::with_alpha(alpha)
            .with_options(options)
            .spec(),
    )
}

/// Pointwise filters and stride of the 13 depthwise-separable blocks (the paper's Table 1).
const BLOCKS: [(usize, usize); 13] = [
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
];

#[derive(Debug, Clone, PartialEq)]
pub struct MobileNetConfig {
    /// Width multiplier: every layer gets `floor(alpha · filters)` filters.
    pub alpha: f64,
    /// Channels each depthwise convolution makes per input channel.
    pub depth_multiplier: usize,
    /// Keras' default is nearly none (1e-3): the network is thin enough not to overfit much.
    pub dropout: f64,
    pub num_classes: usize,
    pub in_channels: usize,
    pub image_size: usize,
}

impl MobileNetConfig {
    /// Keras' `MobileNet()`: alpha 1.0 on 224x224 RGB, 1000 classes (4.2 M weights).
    pub fn mobilenet() -> Self {
        Self::with_alpha(1.0)
    }

    pub fn with_alpha(alpha: f64) -> Self {
        Self {
            alpha,
            depth_multiplier: 1,
            dropout: 1e-3,
            num_classes: 1000,
            in_channels: 3,
            image_size: 224,
        }
    }

    pub fn with_options(mut self, options: &ZooOptions) -> Self {
        self.num_classes = options.num_classes;
        self.in_channels = options.in_channels;
        self.image_size = options.image_size.unwrap_or(self.image_size);
        self
    }

    fn filters(&self, base: usize) -> usize {
        (base as f64 * self.alpha) as usize
    }

    pub fn spec(&self) -> ModelSpec {
        // Keras' batch-norm defaults: epsilon 1e-3, moving averages kept with 0.99.
        let bn = BatchNormConfig {
            epsilon: 1e-3,
            momentum: 0.01,
        };
        let relu6 = Activation::Relu6;
        let mut layers = conv_bn_act(
            ["conv1", "conv1_bn", "conv1_relu"],
            ConvConfig::new(self.filters(32), 3)
                .with_stride(2)
                .with_padding(Padding::Same)
                .with_bias(false),
            bn.clone(),
            relu6,
        );
        for (i, &(filters, stride)) in BLOCKS.iter().enumerate() {
            let id = i + 1;
            // Keras pads a strided depthwise conv explicitly, one pixel at the bottom and
            // right, then convolves unpadded: the same as `same` on even sizes, but where
            // `same` would pad an odd size on both sides this keeps the weights' alignment.
            let padding = if stride == 1 {
                Padding::Same
            } else {
                layers.push(named(
                    format!("conv_pad_{id}"),
                    LayerConfig::ZeroPadding2d(ZeroPadding2dConfig::new(Padding::Explicit(vec![
                        (0, 1),
                        (0, 1),
                    ]))),
                ));
                Padding::Valid
            };
            layers.push(named(
                format!("conv_dw_{id}"),
                LayerConfig::DepthwiseConv2d(DepthwiseConfig {
                    depth_multiplier: self.depth_multiplier,
                    stride: stride.into(),
                    padding,
                    bias: false,
                    ..DepthwiseConfig::new(3)
                }),
            ));
            layers.push(named(
                format!("conv_dw_{id}_bn"),
                LayerConfig::BatchNorm(bn.clone()),
            ));
            layers.push(named(
                format!("conv_dw_{id}_relu"),
                LayerConfig::Activation { activation: relu6 },
            ));
            layers.extend(conv_bn_act(
                [
                    &format!("conv_pw_{id}"),
                    &format!("conv_pw_{id}_bn"),
                    &format!("conv_pw_{id}_relu"),
                ],
                ConvConfig::new(self.filters(filters), 1)
                    .with_padding(Padding::Same)
                    .with_bias(false),
                bn.clone(),
                relu6,
            ));
        }
        layers.extend(classifier(self.num_classes, self.dropout));
        let mut spec = ModelSpec::new(
            "mobilenet",
            [self.in_channels, self.image_size, self.image_size],
        );
        spec.layers = layers;
        spec
    }
}

/// Keras' head: the classifier is a 1x1 convolution on the pooled 1x1 map, then a reshape to
/// a vector and a softmax.
fn classifier(num_classes: usize, dropout: f64) -> Vec<LayerSpec> {
    vec![
        named(
            "global_average_pooling2d",
            LayerConfig::AdaptiveAvgPool2d(AdaptivePoolConfig::new(1)),
        ),
        named("dropout", LayerConfig::Dropout(DropoutConfig::new(dropout))),
        named(
            "conv_preds",
            LayerConfig::Conv2d(ConvConfig::new(num_classes, 1).with_padding(Padding::Same)),
        ),
        named("reshape_2", LayerConfig::Flatten),
        named(
            "predictions",
            LayerConfig::Activation {
                activation: Activation::Softmax,
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mobilenet_v2::weight_keys;
    use burn::tensor::{Device, Distribution, Tensor};
    use convnet_layers::{Mode, Summarize};

    #[test]
    fn parameter_counts_match_keras() {
        // Keras' `model.summary()` totals, which include batch norm's moving mean and variance.
        let device = Device::flex();
        for (name, total, bn_channels) in [
            ("mobilenet", 4_253_864, 10_944),
            ("mobilenet_075", 2_601_976, 8_208),
            ("mobilenet_050", 1_342_536, 5_472),
            ("mobilenet_025", 475_544, 2_736),
        ] {
            let summary = spec(name, &ZooOptions::default())
                .unwrap()
                .build(&device)
                .unwrap()
                .summary()
                .unwrap();
            assert_eq!(summary.total_params, total, "{name}");
            assert_eq!(summary.non_trainable_params, 2 * bn_channels, "{name}");
            assert_eq!(summary.output_shape.dims(), &[1000]);
        }
    }

    #[test]
    fn strided_blocks_halve_the_map_as_keras_does() {
        let summary = MobileNetConfig::mobilenet()
            .spec()
            .build(&Device::flex())
            .unwrap()
            .summary()
            .unwrap();
        let shape = |name: &str| {
            let row = summary.layers.iter().find(|r| r.name == name).unwrap();
            row.output_shape.dims().to_vec()
        };
        assert_eq!(shape("conv1"), [32, 112, 112]);
        assert_eq!(shape("conv_pad_2"), [64, 113, 113]);
        assert_eq!(shape("conv_dw_2"), [64, 56, 56]);
        assert_eq!(shape("conv_pw_13_relu"), [1024, 7, 7]);
        assert_eq!(shape("conv_preds"), [1000, 1, 1]);
    }

    #[test]
    fn weight_names_are_keras_layer_names() {
        let keys = weight_keys(&MobileNetConfig::mobilenet().spec());
        // 1 + 13·2 convolutions, 27 batch norms, and conv_preds' kernel and bias.
        assert_eq!(keys.len(), 27 + 27 * 4 + 2);
        for key in [
            "conv1.weight",
            "conv1_bn.running_mean",
            "conv_dw_1.weight",
            "conv_dw_1_bn.weight",
            "conv_pw_1.weight",
            "conv_pw_13_bn.running_var",
            "conv_preds.weight",
            "conv_preds.bias",
        ] {
            assert!(keys.iter().any(|k| k == key), "{key} missing");
        }
    }

    #[test]
    fn every_variant_runs_forward() {
        let device = Device::flex();
        for entry in VARIANTS {
            let options = ZooOptions {
                num_classes: 3,
                in_channels: 1,
                image_size: Some(64),
            };
            let model = spec(entry.name, &options).unwrap().build(&device).unwrap();
            assert!(model.ends_in_softmax());
            let x = Tensor::<4>::random([2, 1, 64, 64], Distribution::Normal(0.0, 1.0), &device);
            let y = model.forward(x, Mode::Eval).unwrap().into_flat();
            assert_eq!(y.dims(), [2, 3], "{}", entry.name);
            let values = y.into_data().try_to_vec::<f32>().unwrap();
            assert!(values.iter().all(|v| v.is_finite()), "{}", entry.name);
            let sum: f32 = values[..3].iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "{}", entry.name);
        }
    }
}
