//! MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
//! CVPR 2018), laid out as torchvision's `mobilenet_v2` so its weights load by name.
//!
//! The block is inverted relative to ResNet's bottleneck: a 1x1 convolution widens a thin
//! input `t` times, a 3x3 depthwise convolution filters the wide map cheaply, and a 1x1
//! projection narrows it again with no activation after it: ReLU on the few channels of the
//! bottleneck would destroy information that cannot be recovered (the paper's "linear
//! bottleneck"). The skip connection joins the thin ends, so the memory a block keeps alive
//! stays small.

use convnet_layers::{
    Activation, BatchNormConfig, ConvConfig, DenseConfig, DropoutConfig, LayerConfig, LayerSpec,
    ModelSpec, Padding,
};

use crate::blocks::{conv_bn_act, named};
use crate::{ZooEntry, ZooOptions};

pub const VARIANTS: &[ZooEntry] = &[ZooEntry {
    name: "mobilenet_v2",
    description: "MobileNetV2 (Sandler 2018), width 1.0, 224x224, torchvision layout",
}];

pub fn spec(name: &str, options: &ZooOptions) -> Option<ModelSpec> {
    match name {
        "mobilenet_v2" => Some(
            MobileNetV2Config::mobilenet_v2()
                .with_options(options)
                .spec(),
        ),
        _ => None,
    }
}

/// The paper's Table 2: expansion `t`, output channels `c`, repeats `n`, first stride `s`.
const BOTTLENECKS: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

#[derive(Debug, Clone, PartialEq)]
pub struct MobileNetV2Config {
    /// Scales every layer's channels (the paper's width multiplier); channels are rounded to
    /// multiples of 8, which keeps vector units busy.
    pub width_mult: f64,
    pub num_classes: usize,
    pub in_channels: usize,
    pub image_size: usize,
    pub dropout: f64,
}

impl MobileNetV2Config {
    /// The paper's network at width 1.0 on 224x224 RGB, 1000 classes (3.5 M parameters).
    pub fn mobilenet_v2() -> Self {
        Self {
            width_mult: 1.0,
            num_classes: 1000,
            in_channels: 3,
            image_size: 224,
            dropout: 0.2,
        }
    }

    pub fn with_options(mut self, options: &ZooOptions) -> Self {
        self.num_classes = options.num_classes;
        self.in_channels = options.in_channels;
        self.image_size = options.image_size.unwrap_or(self.image_size);
        self
    }

    pub fn spec(&self) -> ModelSpec {
        let bn = BatchNormConfig::default();
        let relu6 = Activation::Relu6;
        let mut layers = Vec::new();
        let mut channels = make_divisible(32.0 * self.width_mult, 8);
        layers.extend(conv_bn_act(
            ["features.0.0", "features.0.1", "features.0.2"],
            torch_conv(channels, 3, 2, 1),
            bn.clone(),
            relu6,
        ));
        let mut index = 1;
        for &(t, c, n, s) in &BOTTLENECKS {
            let out = make_divisible(c as f64 * self.width_mult, 8);
            for i in 0..n {
                let stride = if i == 0 { s } else { 1 };
                let body = inverted_residual(channels, out, stride, t, &bn);
                let skip = stride == 1 && channels == out;
                layers.extend(torch_block(&format!("features.{index}"), body, skip));
                channels = out;
                index += 1;
            }
        }
        // Only widths above 1.0 widen the last layer: narrow models still need a rich
        // feature vector for the classifier.
        let last = make_divisible(1280.0 * self.width_mult.max(1.0), 8);
        let head = format!("features.{index}");
        layers.extend(conv_bn_act(
            [
                &format!("{head}.0"),
                &format!("{head}.1"),
                &format!("{head}.2"),
            ],
            torch_conv(last, 1, 1, 1),
            bn,
            relu6,
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
            "mobilenet_v2",
            [self.in_channels, self.image_size, self.image_size],
        );
        spec.layers = layers;
        spec
    }
}

/// One inverted residual block's layers, named as torchvision's `InvertedResidual.conv`.
fn inverted_residual(
    input: usize,
    output: usize,
    stride: usize,
    expand: usize,
    bn: &BatchNormConfig,
) -> Vec<LayerSpec> {
    let hidden = input * expand;
    let relu6 = Activation::Relu6;
    let mut layers = Vec::new();
    let mut at = 0;
    if expand != 1 {
        layers.extend(conv_bn_act(
            ["conv.0.0", "conv.0.1", "conv.0.2"],
            torch_conv(hidden, 1, 1, 1),
            bn.clone(),
            relu6,
        ));
        at = 1;
    }
    layers.extend(conv_bn_act(
        [
            &format!("conv.{at}.0"),
            &format!("conv.{at}.1"),
            &format!("conv.{at}.2"),
        ],
        torch_conv(hidden, 3, stride, hidden),
        bn.clone(),
        relu6,
    ));
    // The linear bottleneck: projection and batch norm, no activation.
    layers.push(named(
        format!("conv.{}", at + 1),
        LayerConfig::Conv2d(torch_conv(output, 1, 1, 1)),
    ));
    layers.push(named(
        format!("conv.{}", at + 2),
        LayerConfig::BatchNorm(bn.clone()),
    ));
    layers
}

/// A bias-free convolution padded as torchvision pads: `(k - 1) / 2` on every side. (TF's
/// `same` would pad a stride-2 layer only at the end and shift every later map by a pixel.)
pub(crate) fn torch_conv(
    filters: usize,
    kernel: usize,
    stride: usize,
    groups: usize,
) -> ConvConfig {
    ConvConfig::new(filters, kernel)
        .with_stride(stride)
        .with_padding(Padding::uniform((kernel - 1) / 2))
        .with_groups(groups)
        .with_bias(false)
}

/// A torchvision block named `name` whose layers are `body`: with a skip connection it is a
/// residual layer named `name` (its layers' weights are then `name.<layer>.weight`, as in the
/// state dict); without one its layers are spliced in as `name.<layer>`, which gives the same
/// weight names.
pub(crate) fn torch_block(name: &str, body: Vec<LayerSpec>, skip: bool) -> Vec<LayerSpec> {
    if skip {
        return vec![named(
            name,
            LayerConfig::Residual {
                body,
                shortcut: Vec::new(),
                activation: Activation::Linear,
            },
        )];
    }
    body.into_iter()
        .map(|mut layer| {
            let inner = layer.name.take().expect("block layers are named");
            layer.name = Some(format!("{name}.{inner}"));
            layer
        })
        .collect()
}

/// Rounds `value` to the nearest multiple of `divisor` (up when it is exactly halfway), but
/// never more than 10% below `value`: the channel rule MobileNet and EfficientNet share.
pub(crate) fn make_divisible(value: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let rounded = (((value + d / 2.0) / d).floor() * d).max(d);
    if rounded < 0.9 * value {
        (rounded + d) as usize
    } else {
        rounded as usize
    }
}

/// Every weight's key as the weight loader forms it: layer names joined along the nesting path
/// with `.`, then the parameter's own name (PyTorch's state-dict keys, less
/// `num_batches_tracked`).
#[cfg(test)]
pub(crate) fn weight_keys(spec: &ModelSpec) -> Vec<String> {
    fn walk(layers: &[LayerSpec], prefix: &str, keys: &mut Vec<String>) {
        for layer in layers {
            let name = layer.name.as_deref().expect("zoo layers are named");
            let path = format!("{prefix}{name}");
            let suffixes: &[&str] = match &layer.config {
                LayerConfig::Conv2d(c) if c.bias => &["weight", "bias"],
                LayerConfig::DepthwiseConv2d(c) if c.bias => &["weight", "bias"],
                LayerConfig::Dense(c) if c.bias => &["weight", "bias"],
                LayerConfig::Conv2d(_)
                | LayerConfig::DepthwiseConv2d(_)
                | LayerConfig::Dense(_) => &["weight"],
                LayerConfig::SeparableConv2d(c) if c.bias => {
                    &["depthwise.weight", "pointwise.weight", "pointwise.bias"]
                }
                LayerConfig::SeparableConv2d(_) => &["depthwise.weight", "pointwise.weight"],
                LayerConfig::BatchNorm(_) => &["weight", "bias", "running_mean", "running_var"],
                LayerConfig::SqueezeExcitation(_) => {
                    &["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
                }
                LayerConfig::Residual { body, shortcut, .. } => {
                    walk(body, &format!("{path}."), keys);
                    walk(shortcut, &format!("{path}."), keys);
                    &[]
                }
                _ => &[],
            };
            keys.extend(suffixes.iter().map(|s| format!("{path}.{s}")));
        }
    }
    let mut keys = Vec::new();
    walk(&spec.layers, "", &mut keys);
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, Tensor};
    use convnet_layers::{Mode, Summarize};

    #[test]
    fn channels_round_as_torchvision_rounds() {
        assert_eq!(make_divisible(32.0, 8), 32);
        assert_eq!(make_divisible(32.0 * 0.35, 8), 16);
        assert_eq!(make_divisible(24.0 * 1.1, 8), 24);
        assert_eq!(make_divisible(40.0 * 1.1, 8), 48);
        assert_eq!(make_divisible(1.0, 8), 8);
        // 100 is halfway between 96 and 104 and rounds up.
        assert_eq!(make_divisible(100.0, 8), 104);
        // Rounding down by more than 10% is undone: 11 -> 8 would lose 27%.
        assert_eq!(make_divisible(11.0, 8), 16);
    }

    #[test]
    fn parameter_count_matches_torchvision() {
        let model = spec("mobilenet_v2", &ZooOptions::default())
            .unwrap()
            .build(&Device::flex())
            .unwrap();
        let summary = model.summary().unwrap();
        // torchvision's `sum(p.numel() for p in mobilenet_v2().parameters())`.
        assert_eq!(summary.trainable_params, 3_504_872);
        // Plus the running mean and variance of its 17,056 batch-norm channels.
        assert_eq!(summary.non_trainable_params, 2 * 17_056);
        assert_eq!(summary.output_shape.dims(), &[1000]);
    }

    #[test]
    fn weight_names_follow_the_state_dict() {
        let keys = weight_keys(&MobileNetV2Config::mobilenet_v2().spec());
        // torchvision's state dict has 262 tensors besides the 52 `num_batches_tracked`.
        assert_eq!(keys.len(), 262);
        for key in [
            "features.0.0.weight",
            "features.0.1.running_var",
            "features.1.conv.0.0.weight",
            "features.1.conv.1.weight",
            "features.1.conv.2.bias",
            "features.2.conv.0.0.weight",
            "features.3.conv.1.0.weight",
            "features.3.conv.3.running_mean",
            "features.17.conv.2.weight",
            "features.18.0.weight",
            "features.18.1.bias",
            "classifier.1.weight",
            "classifier.1.bias",
        ] {
            assert!(keys.iter().any(|k| k == key), "{key} missing");
        }
        assert_eq!(keys.first().unwrap(), "features.0.0.weight");
        assert_eq!(keys.last().unwrap(), "classifier.1.bias");
    }

    #[test]
    fn builds_for_other_inputs_and_runs_forward() {
        let device = Device::flex();
        let options = ZooOptions {
            num_classes: 7,
            in_channels: 1,
            image_size: Some(64),
        };
        let model = spec("mobilenet_v2", &options)
            .unwrap()
            .build(&device)
            .unwrap();
        let x = Tensor::<4>::random([2, 1, 64, 64], Distribution::Normal(0.0, 1.0), &device);
        let y = model.forward(x, Mode::Eval).unwrap().into_flat();
        assert_eq!(y.dims(), [2, 7]);
        let values = y.into_data().try_to_vec::<f32>().unwrap();
        assert!(values.iter().all(|v| v.is_finite()));
    }
}
