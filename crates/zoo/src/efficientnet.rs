//! EfficientNet B0–B7 (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional
//! Neural Networks", ICML 2019), laid out as torchvision's `efficientnet_b*` so their weights
//! load by name.
//!
//! The paper's point is that depth, width and resolution should grow together: a deeper net
//! needs more pixels to have something to look at and more channels to keep what it sees.
//! B0 is a small searched network of MBConv blocks (MobileNetV2's inverted residual plus
//! squeeze-and-excitation, with SiLU); B1–B7 are B0 with its channels multiplied by a width
//! coefficient, its stage repeats by a depth coefficient and its input side set by a resolution,
//! each variant about twice the compute of the one before. So every variant here is derived
//! from B0's stage table and four numbers, not written out.
//!
//! Stochastic depth (dropping a residual branch per example while training) is left out: it
//! is training-only regularisation with no weights, and in evaluation the block is the plain
//! residual these specs build.

use convnet_layers::{
    Activation, BatchNormConfig, DenseConfig, DropoutConfig, LayerConfig, LayerSpec, ModelSpec,
    SqueezeExcitationConfig,
};

use crate::blocks::{conv_bn_act, named};
use crate::mobilenet_v2::{make_divisible, torch_block, torch_conv};
use crate::{InputRecipe, ZooEntry, ZooOptions};

pub const VARIANTS: &[ZooEntry] = &[
    ZooEntry {
        name: "efficientnet_b0",
        description: "EfficientNet-B0 (Tan & Le 2019), 224x224, torchvision layout",
    },
    ZooEntry {
        name: "efficientnet_b1",
        description: "EfficientNet-B1: width 1.0, depth 1.1, 240x240",
    },
    ZooEntry {
        name: "efficientnet_b2",
        description: "EfficientNet-B2: width 1.1, depth 1.2, 260x260",
    },
    ZooEntry {
        name: "efficientnet_b3",
        description: "EfficientNet-B3: width 1.2, depth 1.4, 300x300",
    },
    ZooEntry {
        name: "efficientnet_b4",
        description: "EfficientNet-B4: width 1.4, depth 1.8, 380x380",
    },
    ZooEntry {
        name: "efficientnet_b5",
        description: "EfficientNet-B5: width 1.6, depth 2.2, 456x456",
    },
    ZooEntry {
        name: "efficientnet_b6",
        description: "EfficientNet-B6: width 1.8, depth 2.6, 528x528",
    },
    ZooEntry {
        name: "efficientnet_b7",
        description: "EfficientNet-B7: width 2.0, depth 3.1, 600x600",
    },
];

pub fn spec(name: &str, options: &ZooOptions) -> Option<ModelSpec> {
    let index = VARIANTS.iter().position(|v| v.name == name)?;
    Some(
        EfficientNetConfig::variant(index)?
            .with_options(options)
            .spec(),
    )
}

/// torchvision's weights were evaluated with their own crops (B2 at 288, not the paper's 260)
/// and bicubic resampling: (crop, shorter side before the crop) for B0–B7.
const TORCHVISION_TRANSFORMS: [(usize, usize); 8] = [
    (224, 256),
    (240, 256),
    (288, 288),
    (300, 320),
    (380, 384),
    (456, 456),
    (528, 528),
    (600, 600),
];

pub fn input_recipe(name: &str) -> InputRecipe {
    let index = VARIANTS.iter().position(|v| v.name == name).unwrap_or(0);
    let (crop, resize) = TORCHVISION_TRANSFORMS[index];
    InputRecipe {
        preset: "imagenet",
        crop,
        resize,
        bicubic: true,
    }
}

/// One stage of B0 (the paper's Table 1): expansion ratio, kernel, stride of the first block,
/// input and output channels, and the number of blocks.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stage {
    expand: usize,
    kernel: usize,
    stride: usize,
    input: usize,
    output: usize,
    blocks: usize,
}

const fn stage(
    expand: usize,
    kernel: usize,
    stride: usize,
    input: usize,
    output: usize,
    blocks: usize,
) -> Stage {
    Stage {
        expand,
        kernel,
        stride,
        input,
        output,
        blocks,
    }
}

const B0_STAGES: [Stage; 7] = [
    stage(1, 3, 1, 32, 16, 1),
    stage(6, 3, 2, 16, 24, 2),
    stage(6, 5, 2, 24, 40, 2),
    stage(6, 3, 2, 40, 80, 3),
    stage(6, 5, 1, 80, 112, 3),
    stage(6, 5, 2, 112, 192, 4),
    stage(6, 3, 1, 192, 320, 1),
];

/// Width, depth, resolution and classifier dropout of B0–B7 (the published compound-scaling
/// coefficients; larger nets get more dropout because they overfit more easily).
const COEFFICIENTS: [(f64, f64, usize, f64); 8] = [
    (1.0, 1.0, 224, 0.2),
    (1.0, 1.1, 240, 0.2),
    (1.1, 1.2, 260, 0.3),
    (1.2, 1.4, 300, 0.3),
    (1.4, 1.8, 380, 0.4),
    (1.6, 2.2, 456, 0.4),
    (1.8, 2.6, 528, 0.5),
    (2.0, 3.1, 600, 0.5),
];

#[derive(Debug, Clone, PartialEq)]
pub struct EfficientNetConfig {
    pub name: String,
    /// Multiplies every stage's channels (rounded to multiples of 8).
    pub width: f64,
    /// Multiplies every stage's number of blocks (rounded up).
    pub depth: f64,
    pub image_size: usize,
    pub dropout: f64,
    pub batch_norm: BatchNormConfig,
    pub num_classes: usize,
    pub in_channels: usize,
}

impl EfficientNetConfig {
    /// EfficientNet-B`index` (0 to 7) as published: 1000 classes, RGB, its own resolution.
    pub fn variant(index: usize) -> Option<Self> {
        let &(width, depth, image_size, dropout) = COEFFICIENTS.get(index)?;
        // B5–B7's torchvision weights were ported from the TensorFlow checkpoints and keep
        // TensorFlow's batch-norm settings; B0–B4 were trained in PyTorch with its defaults.
        let batch_norm = if index >= 5 {
            BatchNormConfig {
                epsilon: 1e-3,
                momentum: 0.01,
            }
        } else {
            BatchNormConfig::default()
        };
        Some(Self {
            name: format!("efficientnet_b{index}"),
            width,
            depth,
            image_size,
            dropout,
            batch_norm,
            num_classes: 1000,
            in_channels: 3,
        })
    }

    pub fn b0() -> Self {
        Self::variant(0).expect("B0 is in the table")
    }

    pub fn b7() -> Self {
        Self::variant(7).expect("B7 is in the table")
    }

    pub fn with_options(mut self, options: &ZooOptions) -> Self {
        self.num_classes = options.num_classes;
        self.in_channels = options.in_channels;
        self.image_size = options.image_size.unwrap_or(self.image_size);
        self
    }

    fn channels(&self, base: usize) -> usize {
        make_divisible(base as f64 * self.width, 8)
    }

    fn repeats(&self, base: usize) -> usize {
        (base as f64 * self.depth).ceil() as usize
    }

    pub fn spec(&self) -> ModelSpec {
        let silu = Activation::Silu;
        let bn = &self.batch_norm;
        let mut layers = conv_bn_act(
            ["features.0.0", "features.0.1", "features.0.2"],
            torch_conv(self.channels(B0_STAGES[0].input), 3, 2, 1),
            bn.clone(),
            silu,
        );
        for (s, stage) in B0_STAGES.iter().enumerate() {
            let output = self.channels(stage.output);
            for i in 0..self.repeats(stage.blocks) {
                let (input, stride) = if i == 0 {
                    (self.channels(stage.input), stage.stride)
                } else {
                    (output, 1)
                };
                let body = self.mbconv(input, output, stride, stage);
                let skip = stride == 1 && input == output;
                layers.extend(torch_block(&format!("features.{}.{i}", s + 1), body, skip));
            }
        }
        let head = 4 * self.channels(B0_STAGES[6].output);
        let h = format!("features.{}", B0_STAGES.len() + 1);
        layers.extend(conv_bn_act(
            [&format!("{h}.0"), &format!("{h}.1"), &format!("{h}.2")],
            torch_conv(head, 1, 1, 1),
            bn.clone(),
            silu,
        ));
        layers.push(named("avgpool", LayerConfig::GlobalAvgPool));
        layers.push(named(
            "classifier.0",
            LayerConfig::Dropout(DropoutConfig::new(self.dropout)),
        ));
        layers.push(named(
            "classifier.1",
            LayerConfig::Dense(DenseConfig::new(self.num_classes)),
        ));
        let mut spec = ModelSpec::new(
            self.name.clone(),
            [self.in_channels, self.image_size, self.image_size],
        );
        spec.layers = layers;
        spec
    }

    /// An MBConv block's layers, named as torchvision's `MBConv.block`: expansion (when the
    /// ratio is above 1), depthwise convolution, squeeze-and-excitation, linear projection.
    fn mbconv(&self, input: usize, output: usize, stride: usize, stage: &Stage) -> Vec<LayerSpec> {
        let silu = Activation::Silu;
        let bn = &self.batch_norm;
        let expanded = make_divisible((input * stage.expand) as f64, 8);
        let mut layers = Vec::new();
        let mut at = 0;
        let names = |at: usize| [0, 1, 2].map(|k| format!("block.{at}.{k}"));
        if expanded != input {
            let n = names(at);
            layers.extend(conv_bn_act(
                [&n[0], &n[1], &n[2]],
                torch_conv(expanded, 1, 1, 1),
                bn.clone(),
                silu,
            ));
            at += 1;
        }
        let n = names(at);
        layers.extend(conv_bn_act(
            [&n[0], &n[1], &n[2]],
            torch_conv(expanded, stage.kernel, stride, expanded),
            bn.clone(),
            silu,
        ));
        // The squeeze is a quarter of the block's input, not of the wide map it gates: the
        // gate's cost stays proportional to the thin end.
        layers.push(named(
            format!("block.{}", at + 1),
            LayerConfig::SqueezeExcitation(SqueezeExcitationConfig {
                squeeze_channels: Some((input / 4).max(1)),
                activation: silu,
                ..SqueezeExcitationConfig::default()
            }),
        ));
        let n = names(at + 2);
        layers.extend(conv_bn_act(
            [&n[0], &n[1], &n[2]],
            torch_conv(output, 1, 1, 1),
            bn.clone(),
            Activation::Linear,
        ));
        layers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mobilenet_v2::weight_keys;
    use burn::tensor::{Device, Distribution, Tensor};
    use convnet_layers::{Mode, Summarize};

    /// torchvision 0.29: `sum(p.numel() for p in efficientnet_bN().parameters())`, the
    /// number of state-dict tensors besides `num_batches_tracked`, and the batch-norm
    /// channels (each with a running mean and variance).
    const TORCHVISION: [(usize, usize, usize); 8] = [
        (5_288_548, 311, 21_008),
        (7_794_184, 439, 31_024),
        (9_109_994, 439, 33_784),
        (12_233_232, 496, 43_648),
        (19_341_616, 610, 62_600),
        (30_389_784, 738, 86_368),
        (43_040_704, 852, 112_216),
        (66_347_960, 1037, 155_360),
    ];

    #[test]
    fn parameter_counts_match_torchvision() {
        let device = Device::flex();
        for (entry, &(params, tensors, bn_channels)) in VARIANTS.iter().zip(&TORCHVISION) {
            let spec = spec(entry.name, &ZooOptions::default()).unwrap();
            assert_eq!(weight_keys(&spec).len(), tensors, "{}", entry.name);
            let summary = spec.build(&device).unwrap().summary().unwrap();
            assert_eq!(summary.trainable_params, params, "{}", entry.name);
            assert_eq!(
                summary.non_trainable_params,
                2 * bn_channels,
                "{}",
                entry.name
            );
            assert_eq!(summary.output_shape.dims(), &[1000]);
        }
    }

    #[test]
    fn scaled_variants_follow_their_coefficients() {
        let b7 = EfficientNetConfig::b7();
        assert_eq!(b7.image_size, 600);
        assert_eq!(b7.batch_norm.epsilon, 1e-3);
        assert_eq!(EfficientNetConfig::b0().batch_norm.epsilon, 1e-5);
        // Stage repeats ceil(n · 3.1): 1 → 4, 2 → 7, 3 → 10, 4 → 13.
        let blocks: Vec<usize> = B0_STAGES.iter().map(|s| b7.repeats(s.blocks)).collect();
        assert_eq!(blocks, [4, 7, 7, 10, 10, 13, 4]);
        // Stem 32·2 = 64, last stage 320·2 = 640, head 4·640.
        let keys = weight_keys(&b7.spec());
        assert!(keys.contains(&"features.0.0.weight".to_string()));
        assert!(keys.contains(&"features.7.3.block.3.1.running_var".to_string()));
        assert!(keys.contains(&"features.8.0.weight".to_string()));
        let summary = b7.spec().build(&Device::flex()).unwrap().summary().unwrap();
        let stem = &summary.layers[0];
        assert_eq!(stem.output_shape.dims(), &[64, 300, 300]);
    }

    #[test]
    fn weight_names_follow_the_state_dict() {
        let keys = weight_keys(&EfficientNetConfig::b0().spec());
        for key in [
            // Stage 1 has no expansion: depthwise, SE, projection are block.0 to block.2.
            "features.1.0.block.0.0.weight",
            "features.1.0.block.1.fc1.weight",
            "features.1.0.block.1.fc2.bias",
            "features.1.0.block.2.1.running_mean",
            // A block with a skip connection: block.0 expands, block.2 is the SE.
            "features.2.1.block.0.0.weight",
            "features.2.1.block.2.fc1.bias",
            "features.2.1.block.3.0.weight",
            "features.7.0.block.3.1.bias",
            "features.8.1.running_var",
            "classifier.1.weight",
        ] {
            assert!(keys.iter().any(|k| k == key), "{key} missing");
        }
        assert_eq!(keys.last().unwrap(), "classifier.1.bias");
    }

    #[test]
    fn every_variant_runs_forward_on_small_images() {
        let device = Device::flex();
        for entry in VARIANTS {
            let options = ZooOptions {
                num_classes: 5,
                in_channels: 2,
                image_size: Some(32),
            };
            let model = spec(entry.name, &options).unwrap().build(&device).unwrap();
            let x = Tensor::<4>::random([1, 2, 32, 32], Distribution::Normal(0.0, 1.0), &device);
            let y = model.forward(x, Mode::Eval).unwrap().into_flat();
            assert_eq!(y.dims(), [1, 5], "{}", entry.name);
            let values = y.into_data().try_to_vec::<f32>().unwrap();
            assert!(values.iter().all(|v| v.is_finite()), "{}", entry.name);
        }
    }
}
#[cfg(test)]
mod dump_tmp {
    #[test]
    fn dump_keys_tmp() {
        use crate::mobilenet_v2::weight_keys;
        let k = weight_keys(&crate::mobilenet_v2::MobileNetV2Config::mobilenet_v2().spec());
        std::fs::write("/tmp/ours_mnv2.txt", k.join("\n") + "\n").unwrap();
        for i in 0..8 {
            let k = weight_keys(&super::EfficientNetConfig::variant(i).unwrap().spec());
            std::fs::write(format!("/tmp/ours_effb{i}.txt"), k.join("\n") + "\n").unwrap();
        }
    }
}
