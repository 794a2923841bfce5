//! Xception (Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions",
//! CVPR 2017), laid out as Keras' `Xception` application, layer names included, so its weights
//! load by name.
//!
//! Inception modules already split a convolution into cross-channel (1x1) and spatial parts;
//! Xception takes that "extreme" hypothesis all the way: every spatial convolution after the
//! stem is depthwise separable, mapping spatial and cross-channel correlations fully apart,
//! and every block is residual, which the paper found essential for training this deep a stack
//! of separable convolutions. The network has an entry flow that downsamples to 1/16, a middle
//! flow of eight identical 728-channel blocks, and an exit flow.
//!
//! Keras names most layers `block<N>_...`; the 1x1 projection shortcuts are unnamed there and
//! get Keras' automatic names (`conv2d`, `conv2d_1`..., `batch_normalization`...), as in a fresh
//! session. Residual blocks are named `block<N>`, so a shortcut weight's key is for example
//! `block2.conv2d.weight`; the last path component is always the Keras layer name.

use convnet_layers::{
    Activation, BatchNormConfig, ConvConfig, DenseConfig, LayerConfig, LayerSpec, ModelSpec,
    Padding, PoolConfig, SeparableConfig,
};

use crate::blocks::{conv_bn_act, named};
use crate::{InputRecipe, ZooEntry, ZooOptions};

pub const VARIANTS: &[ZooEntry] = &[ZooEntry {
    name: "xception",
    description: "Xception (Chollet 2017), 299x299, Keras layout",
}];

/// Keras' Xception weights: 299x299 in `tf` mode.
pub fn input_recipe(_name: &str) -> InputRecipe {
    InputRecipe::keras_tf(299)
}

pub fn spec(name: &str, options: &ZooOptions) -> Option<ModelSpec> {
    match name {
        "xception" => Some(XceptionConfig::xception().with_options(options).spec()),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct XceptionConfig {
    pub num_classes: usize,
    pub in_channels: usize,
    /// At least 71: the stem's two unpadded convolutions and four halvings must leave a map.
    pub image_size: usize,
    /// Repeats of the middle flow's block (8 in the paper).
    pub middle_blocks: usize,
}

impl XceptionConfig {
    /// Keras' `Xception()`: 299x299 RGB, 1000 classes (22.9 M weights).
    pub fn xception() -> Self {
        Self {
            num_classes: 1000,
            in_channels: 3,
            image_size: 299,
            middle_blocks: 8,
        }
    }

    pub fn with_options(mut self, options: &ZooOptions) -> Self {
        self.num_classes = options.num_classes;
        self.in_channels = options.in_channels;
        self.image_size = options.image_size.unwrap_or(self.image_size);
        self
    }

    pub fn spec(&self) -> ModelSpec {
        let relu = Activation::Relu;
        let mut layers = conv_bn_act(
            ["block1_conv1", "block1_conv1_bn", "block1_conv1_act"],
            ConvConfig::new(32, 3).with_stride(2).with_bias(false),
            keras_bn(),
            relu,
        );
        layers.extend(conv_bn_act(
            ["block1_conv2", "block1_conv2_bn", "block1_conv2_act"],
            ConvConfig::new(64, 3).with_bias(false),
            keras_bn(),
            relu,
        ));
        // Entry flow. Block 2 follows the stem's ReLU, so it starts with the convolution.
        let mut shortcuts = 0;
        for (block, filters) in [(2, 128), (3, 256), (4, 728)] {
            layers.push(downsampling_block(
                block,
                [filters, filters],
                block > 2,
                shortcuts,
            ));
            shortcuts += 1;
        }
        // Middle flow: the same block again and again, its input added back.
        let last_middle = 4 + self.middle_blocks;
        for block in 5..=last_middle {
            let mut body = Vec::new();
            for conv in 1..=3 {
                body.extend(act_sepconv_bn(block, conv, 728, true));
            }
            layers.push(named(
                format!("block{block}"),
                LayerConfig::Residual {
                    body,
                    shortcut: Vec::new(),
                    activation: Activation::Linear,
                },
            ));
        }
        // Exit flow.
        let exit = last_middle + 1;
        layers.push(downsampling_block(exit, [728, 1024], true, shortcuts));
        for (conv, filters) in [(1, 1536), (2, 2048)] {
            let name = format!("block{}_sepconv{conv}", exit + 1);
            layers.push(named(
                name.clone(),
                LayerConfig::SeparableConv2d(sepconv(filters)),
            ));
            layers.push(named(
                format!("{name}_bn"),
                LayerConfig::BatchNorm(keras_bn()),
            ));
            layers.push(named(
                format!("{name}_act"),
                LayerConfig::Activation { activation: relu },
            ));
        }
        layers.push(named("avg_pool", LayerConfig::GlobalAvgPool));
        layers.push(named(
            "predictions",
            LayerConfig::Dense(
                DenseConfig::new(self.num_classes).with_activation(Activation::Softmax),
            ),
        ));
        let mut spec = ModelSpec::new(
            "xception",
            [self.in_channels, self.image_size, self.image_size],
        );
        spec.layers = layers;
        spec
    }
}

/// Keras' batch-norm defaults: epsilon 1e-3, moving averages kept with 0.99.
fn keras_bn() -> BatchNormConfig {
    BatchNormConfig {
        epsilon: 1e-3,
        momentum: 0.01,
    }
}

/// A 3x3 separable convolution, `same` padded and without bias (batch norm follows).
fn sepconv(filters: usize) -> SeparableConfig {
    SeparableConfig {
        padding: Padding::Same,
        bias: false,
        ..SeparableConfig::new(filters, 3)
    }
}

/// `[ReLU →] separable conv → batch norm`, named `block<N>_sepconv<K>[_act|_bn]`.
fn act_sepconv_bn(block: usize, conv: usize, filters: usize, act: bool) -> Vec<LayerSpec> {
    let name = format!("block{block}_sepconv{conv}");
    let mut layers = Vec::new();
    if act {
        layers.push(named(
            format!("{name}_act"),
            LayerConfig::Activation {
                activation: Activation::Relu,
            },
        ));
    }
    layers.push(named(
        name.clone(),
        LayerConfig::SeparableConv2d(sepconv(filters)),
    ));
    layers.push(named(
        format!("{name}_bn"),
        LayerConfig::BatchNorm(keras_bn()),
    ));
    layers
}

/// Two separable convolutions and a strided 3x3 max pool, added to a strided 1x1 projection
/// of the block's input (the `index`-th unnamed Keras shortcut).
fn downsampling_block(
    block: usize,
    filters: [usize; 2],
    first_act: bool,
    index: usize,
) -> LayerSpec {
    let mut body = act_sepconv_bn(block, 1, filters[0], first_act);
    body.extend(act_sepconv_bn(block, 2, filters[1], true));
    body.push(named(
        format!("block{block}_pool"),
        LayerConfig::MaxPool2d(
            PoolConfig::new(3)
                .with_stride(2)
                .with_padding(Padding::Same),
        ),
    ));
    let suffix = if index == 0 {
        String::new()
    } else {
        format!("_{index}")
    };
    let shortcut = vec![
        named(
            format!("conv2d{suffix}"),
            LayerConfig::Conv2d(
                ConvConfig::new(filters[1], 1)
                    .with_stride(2)
                    .with_padding(Padding::Same)
                    .with_bias(false),
            ),
        ),
        named(
            format!("batch_normalization{suffix}"),
            LayerConfig::BatchNorm(keras_bn()),
        ),
    ];
    named(
        format!("block{block}"),
        LayerConfig::Residual {
            body,
            shortcut,
            activation: Activation::Linear,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mobilenet_v2::weight_keys;
    use burn::tensor::{Device, Distribution, Tensor};
    use convnet_layers::{Mode, Summarize};

    #[test]
    fn parameter_count_matches_keras() {
        let summary = XceptionConfig::xception()
            .spec()
            .build(&Device::flex())
            .unwrap()
            .summary()
            .unwrap();
        // Keras' `model.summary()`: 22,910,480 in all, 54,528 of them the batch norms'
        // moving means and variances.
        assert_eq!(summary.total_params, 22_910_480);
        assert_eq!(summary.non_trainable_params, 54_528);
        assert_eq!(summary.trainable_params, 22_855_952);
        assert_eq!(summary.output_shape.dims(), &[1000]);
        let shape = |name: &str| {
            let row = summary.layers.iter().find(|r| r.name == name).unwrap();
            row.output_shape.dims().to_vec()
        };
        assert_eq!(shape("block1_conv2_act"), [64, 147, 147]);
        assert_eq!(shape("block2"), [128, 74, 74]);
        assert_eq!(shape("block4"), [728, 19, 19]);
        assert_eq!(shape("block13"), [1024, 10, 10]);
        assert_eq!(shape("block14_sepconv2_act"), [2048, 10, 10]);
    }

    #[test]
    fn weight_names_are_keras_layer_names() {
        let keys = weight_keys(&XceptionConfig::xception().spec());
        for key in [
            "block1_conv1.weight",
            "block1_conv1_bn.running_mean",
            "block2.block2_sepconv1.depthwise.weight",
            "block2.block2_sepconv1.pointwise.weight",
            "block2.block2_sepconv2_bn.bias",
            "block2.conv2d.weight",
            "block2.batch_normalization.running_var",
            "block3.conv2d_1.weight",
            "block12.block12_sepconv3_bn.weight",
            "block13.conv2d_3.weight",
            "block13.batch_normalization_3.weight",
            "block14_sepconv2.pointwise.weight",
            "predictions.weight",
            "predictions.bias",
        ] {
            assert!(keys.iter().any(|k| k == key), "{key} missing");
        }
        // No bias on any convolution: 2 + 4 shortcut + 34 separable kernels, 40 batch norms.
        assert_eq!(keys.iter().filter(|k| k.ends_with("bias")).count(), 40 + 1);
        // Keras names are unique model-wide, so the last path component identifies a layer.
        let mut layers: Vec<&str> = keys
            .iter()
            .filter(|k| k.ends_with("weight") && !k.ends_with("depthwise.weight"))
            .map(|k| {
                let path = k.trim_end_matches(".weight").trim_end_matches(".pointwise");
                path.rsplit('.').next().unwrap()
            })
            .collect();
        let all = layers.len();
        layers.sort();
        layers.dedup();
        assert_eq!(layers.len(), all);
    }

    #[test]
    fn runs_forward_on_the_smallest_input() {
        let device = Device::flex();
        let options = ZooOptions {
            num_classes: 4,
            in_channels: 3,
            image_size: Some(71),
        };
        let model = spec("xception", &options).unwrap().build(&device).unwrap();
        let x = Tensor::<4>::random([1, 3, 71, 71], Distribution::Normal(0.0, 1.0), &device);
        let y = model.forward(x, Mode::Eval).unwrap().into_flat();
        assert_eq!(y.dims(), [1, 4]);
        let values = y.into_data().try_to_vec::<f32>().unwrap();
        assert!(values.iter().all(|v| v.is_finite()));
        assert!((values.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
}
