//! ResNet (He, Zhang, Ren and Sun, *Deep Residual Learning for Image Recognition*, CVPR 2016),
//! as torchvision builds it: a 7x7 stem, four stages of residual blocks that halve the map and
//! double the width, global average pooling and one dense layer.
//!
//! Every block is one of the course's two residual blocks: the *identity block*, whose
//! shortcut passes the input through unchanged, and the *convolutional block*, whose shortcut
//! is a strided 1x1 convolution with batch norm that projects the input to the body's output
//! shape (needed where a stage starts, because there the body changes the map's size or depth).
//! Layer names follow torchvision's `state_dict` keys (`layer1.0.conv1.weight`,
//! `layer2.0.downsample.0.weight`, ...), so its pretrained weights load by name.

use convnet_layers::{
    Activation, BatchNormConfig, ConvConfig, DenseConfig, LayerConfig, LayerSpec, ModelSpec,
    Padding, PoolConfig, SqueezeExcitationConfig,
};

use crate::blocks::{conv_bn_act, named};
use crate::{ZooEntry, ZooOptions};

pub const VARIANTS: &[ZooEntry] = &[
    ZooEntry {
        name: "resnet18",
        description: "ResNet-18 (He et al. 2016): basic blocks [2, 2, 2, 2], 224x224, 11.7M params",
    },
    ZooEntry {
        name: "resnet34",
        description: "ResNet-34 (He et al. 2016): basic blocks [3, 4, 6, 3], 224x224, 21.8M params",
    },
    ZooEntry {
        name: "resnet50",
        description: "ResNet-50 (He et al. 2016): bottlenecks [3, 4, 6, 3], 224x224, 25.6M params",
    },
    ZooEntry {
        name: "resnet101",
        description: "ResNet-101 (He et al. 2016): bottlenecks [3, 4, 23, 3], 224x224, 44.5M params",
    },
    ZooEntry {
        name: "resnet152",
        description: "ResNet-152 (He et al. 2016): bottlenecks [3, 8, 36, 3], 224x224, 60.2M params",
    },
];

pub fn spec(name: &str, options: &ZooOptions) -> Option<ModelSpec> {
    let config = match name {
        "resnet18" => ResNetConfig::resnet18(),
        "resnet34" => ResNetConfig::resnet34(),
        "resnet50" => ResNetConfig::resnet50(),
        "resnet101" => ResNetConfig::resnet101(),
        "resnet152" => ResNetConfig::resnet152(),
        _ => return None,
    };
    Some(config.with_options(options).spec())
}

/// The residual block a network repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// Two 3x3 convolutions (ResNet-18 and -34).
    Basic,
    /// 1x1 reduce, 3x3, 1x1 expand to four times the width: the deeper networks keep their cost
    /// down by running the 3x3 convolution on a quarter of the channels.
    Bottleneck,
}

impl Block {
    /// Output channels per unit of width.
    pub fn expansion(self) -> usize {
        match self {
            Block::Basic => 1,
            Block::Bottleneck => 4,
        }
    }

    /// The block's main path for `width` and the stride of its first block in a stage;
    /// `se` adds squeeze-and-excitation (bottlenecks only, as SE-ResNet-50 and deeper use it).
    pub fn body(
        self,
        width: usize,
        stride: usize,
        se: Option<&SqueezeExcitationConfig>,
    ) -> Vec<LayerSpec> {
        match self {
            Block::Basic => basic_body(width, stride),
            Block::Bottleneck => bottleneck_body(width, stride, se),
        }
    }
}

/// PyTorch's batch-norm defaults (eps 1e-5, momentum 0.1), which torchvision's weights were
/// trained with.
fn bn() -> BatchNormConfig {
    BatchNormConfig::default()
}

/// A convolution without bias (the batch norm after it has the shift) and symmetric padding.
fn conv(filters: usize, kernel: usize, stride: usize, padding: usize) -> ConvConfig {
    let padding = if padding == 0 {
        Padding::Valid
    } else {
        Padding::uniform(padding)
    };
    ConvConfig::new(filters, kernel)
        .with_stride(stride)
        .with_padding(padding)
        .with_bias(false)
}

/// The basic block's body: `3x3 conv (stride) → BN → ReLU → 3x3 conv → BN`; the ReLU after
/// the addition belongs to the residual block.
pub fn basic_body(filters: usize, stride: usize) -> Vec<LayerSpec> {
    let mut body = conv_bn_act(
        ["conv1", "bn1", "relu1"],
        conv(filters, 3, stride, 1),
        bn(),
        Activation::Relu,
    );
    body.extend(conv_bn_act(
        ["conv2", "bn2", "relu2"],
        conv(filters, 3, 1, 1),
        bn(),
        Activation::Linear,
    ));
    body
}

/// The bottleneck's body: `1x1 conv → BN → ReLU → 3x3 conv (stride) → BN → ReLU → 1x1 conv
/// (4 x width) → BN`, then the squeeze-and-excitation gate when `se` is given (named `se`,
/// before the addition, as Hu et al. place it).
///
/// The stride sits on the 3x3 convolution, not on the first 1x1 as in the paper: torchvision's
/// "ResNet v1.5", about half a point more accurate, and the layout its weights need.
pub fn bottleneck_body(
    width: usize,
    stride: usize,
    se: Option<&SqueezeExcitationConfig>,
) -> Vec<LayerSpec> {
    let mut body = conv_bn_act(
        ["conv1", "bn1", "relu1"],
        conv(width, 1, 1, 0),
        bn(),
        Activation::Relu,
    );
    body.extend(conv_bn_act(
        ["conv2", "bn2", "relu2"],
        conv(width, 3, stride, 1),
        bn(),
        Activation::Relu,
    ));
    body.extend(conv_bn_act(
        ["conv3", "bn3", "relu3"],
        conv(width * Block::Bottleneck.expansion(), 1, 1, 0),
        bn(),
        Activation::Linear,
    ));
    if let Some(se) = se {
        body.push(named("se", LayerConfig::SqueezeExcitation(se.clone())));
    }
    body
}

/// The course's identity block: `y = ReLU(body(x) + x)`. The body must keep the input's shape.
pub fn identity_block(name: &str, body: Vec<LayerSpec>) -> LayerSpec {
    named(
        name,
        LayerConfig::Residual {
            body,
            shortcut: Vec::new(),
            activation: Activation::Relu,
        },
    )
}

/// The course's convolutional block: `y = ReLU(body(x) + BN(conv1x1(x)))`, the shortcut's
/// strided 1x1 convolution projecting the input to the body's `filters` and map size.
/// torchvision names the projection `downsample`.
pub fn convolutional_block(
    name: &str,
    body: Vec<LayerSpec>,
    filters: usize,
    stride: usize,
) -> LayerSpec {
    let shortcut = conv_bn_act(
        ["downsample.0", "downsample.1", "downsample.2"],
        conv(filters, 1, stride, 0),
        bn(),
        Activation::Linear,
    );
    named(
        name,
        LayerConfig::Residual {
            body,
            shortcut,
            activation: Activation::Relu,
        },
    )
}

/// One stage (`layer{index}` in torchvision, `conv{index + 1}_x` in the paper): `blocks`
/// blocks of `width`, the first strided by `stride` and a convolutional block when it changes
/// the shape, the rest identity blocks. Returns the blocks and their output channels.
pub fn stage(
    index: usize,
    block: Block,
    blocks: usize,
    in_channels: usize,
    width: usize,
    stride: usize,
    se: Option<&SqueezeExcitationConfig>,
) -> (Vec<LayerSpec>, usize) {
    let out = width * block.expansion();
    let mut channels = in_channels;
    let layers = (0..blocks)
        .map(|i| {
            let name = format!("layer{index}.{i}");
            let stride = if i == 0 { stride } else { 1 };
            let body = block.body(width, stride, se);
            let layer = if stride != 1 || channels != out {
                convolutional_block(&name, body, out, stride)
            } else {
                identity_block(&name, body)
            };
            channels = out;
            layer
        })
        .collect();
    (layers, out)
}

/// A ResNet: its block, the number of blocks per stage, and the input and output it is
/// built for.
#[derive(Debug, Clone, PartialEq)]
pub struct ResNetConfig {
    pub name: String,
    pub block: Block,
    /// Blocks in each of the four stages (the paper's table 1).
    pub layers: [usize; 4],
    pub in_channels: usize,
    /// Side of the square input. The global pool absorbs any size; from 32 pixels down the
    /// last stage runs on a 1x1 map.
    pub image_size: usize,
    pub num_classes: usize,
    /// Squeeze-and-excitation in every block (SE-ResNet); `None` for the plain network.
    pub se: Option<SqueezeExcitationConfig>,
}

impl ResNetConfig {
    fn imagenet(name: &str, block: Block, layers: [usize; 4]) -> Self {
        Self {
            name: name.to_string(),
            block,
            layers,
            in_channels: 3,
            image_size: 224,
            num_classes: 1000,
            se: None,
        }
    }

    pub fn resnet18() -> Self {
        Self::imagenet("resnet18", Block::Basic, [2, 2, 2, 2])
    }

    pub fn resnet34() -> Self {
        Self::imagenet("resnet34", Block::Basic, [3, 4, 6, 3])
    }

    pub fn resnet50() -> Self {
        Self::imagenet("resnet50", Block::Bottleneck, [3, 4, 6, 3])
    }

    pub fn resnet101() -> Self {
        Self::imagenet("resnet101", Block::Bottleneck, [3, 4, 23, 3])
    }

    pub fn resnet152() -> Self {
        Self::imagenet("resnet152", Block::Bottleneck, [3, 8, 36, 3])
    }

    /// The network for other data: classes, input channels and (if given) image size.
    pub fn with_options(mut self, options: &ZooOptions) -> Self {
        self.num_classes = options.num_classes;
        self.in_channels = options.in_channels;
        self.image_size = options.image_size.unwrap_or(self.image_size);
        self
    }

    pub fn spec(&self) -> ModelSpec {
        self.trunk(4)
            .named("avgpool", LayerConfig::GlobalAvgPool)
            .named("fc", LayerConfig::Dense(DenseConfig::new(self.num_classes)))
    }

    /// The stem and the first `stages` stages (1 to 4; stride 4 << stages), with torchvision's
    /// layer names, so a detector or segmenter built on it loads an ImageNet `.pth`'s trunk.
    pub fn trunk(&self, stages: usize) -> ModelSpec {
        let size = self.image_size;
        let mut spec = ModelSpec::new(&self.name, [self.in_channels, size, size]);
        spec.layers.extend(conv_bn_act(
            ["conv1", "bn1", "relu"],
            conv(64, 7, 2, 3),
            bn(),
            Activation::Relu,
        ));
        let mut spec = spec.named(
            "maxpool",
            LayerConfig::MaxPool2d(
                PoolConfig::new(3)
                    .with_stride(2)
                    .with_padding(Padding::uniform(1)),
            ),
        );
        let mut channels = 64;
        for (i, &blocks) in self.layers.iter().enumerate().take(stages.clamp(1, 4)) {
            let stride = if i == 0 { 1 } else { 2 };
            let (layers, out) = stage(
                i + 1,
                self.block,
                blocks,
                channels,
                64 << i,
                stride,
                self.se.as_ref(),
            );
            spec.layers.extend(layers);
            channels = out;
        }
        spec
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, Tensor};
    use convnet_layers::{Mode, Sequential, SequentialLayer, Stack, Summarize};

    /// The model's parameters and batch-norm statistics as PyTorch `state_dict` entries: key
    /// (layer names joined by `.` along the nesting path, then the tensor's name) and shape in
    /// PyTorch's layout (dense weights `[out, in]`).
    pub(crate) fn torch_params(model: &Sequential) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        walk(&model.stack, "", &mut out);
        out
    }

    type Params = Vec<(String, Vec<usize>)>;

    fn linear(prefix: &str, l: &burn::nn::Linear, out: &mut Params) {
        let mut weight = l.weight.lazy_shape().to_vec();
        weight.reverse();
        out.push((format!("{prefix}weight"), weight));
        if let Some(b) = &l.bias {
            out.push((format!("{prefix}bias"), b.lazy_shape().to_vec()));
        }
    }

    fn walk(stack: &Stack, prefix: &str, out: &mut Params) {
        for (name, layer) in stack.names.iter().zip(&stack.layers) {
            let p = format!("{prefix}{name}.");
            match layer {
                SequentialLayer::Conv2d(c) => {
                    out.push((format!("{p}weight"), c.weight.lazy_shape().to_vec()));
                    if let Some(b) = &c.bias {
                        out.push((format!("{p}bias"), b.lazy_shape().to_vec()));
                    }
                }
                SequentialLayer::Dense(d) => linear(&p, &d.linear, out),
                SequentialLayer::BatchNorm(bn) => {
                    out.push((format!("{p}weight"), bn.weight.lazy_shape().to_vec()));
                    out.push((format!("{p}bias"), bn.bias.lazy_shape().to_vec()));
                    let mean = bn.running_mean.value().dims().to_vec();
                    out.push((format!("{p}running_mean"), mean));
                    let var = bn.running_var.value().dims().to_vec();
                    out.push((format!("{p}running_var"), var));
                }
                SequentialLayer::SqueezeExcitation(se) => {
                    linear(&format!("{p}fc1."), &se.fc1, out);
                    linear(&format!("{p}fc2."), &se.fc2, out);
                }
                SequentialLayer::Residual(r) => {
                    walk(&r.body, &p, out);
                    walk(&r.shortcut, &p, out);
                }
                SequentialLayer::Concat(c) => {
                    for branch in &c.branches {
                        walk(branch, &p, out);
                    }
                }
                SequentialLayer::Aux(head) => walk(head, &p, out),
                _ => {}
            }
        }
    }

    /// Asserts that `model` has `count` state-dict entries and these `(key, shape)` among them.
    pub(crate) fn assert_torch_keys(
        model: &Sequential,
        count: usize,
        expected: &[(&str, &[usize])],
    ) {
        let params = torch_params(model);
        assert_eq!(params.len(), count, "{}", model.name());
        for (key, shape) in expected {
            let found = params.iter().find(|(k, _)| k == key);
            assert_eq!(
                found.map(|(_, s)| s.as_slice()),
                Some(*shape),
                "{}: {key}",
                model.name()
            );
        }
    }

    #[test]
    fn parameter_counts_match_torchvision() {
        let device = Device::flex();
        for (name, expected) in [
            ("resnet18", 11_689_512),
            ("resnet34", 21_797_672),
            ("resnet50", 25_557_032),
            ("resnet101", 44_549_160),
            ("resnet152", 60_192_808),
        ] {
            let model = spec(name, &ZooOptions::default())
                .unwrap()
                .build(&device)
                .unwrap();
            let summary = model.summary().unwrap();
            assert_eq!(summary.trainable_params, expected, "{name}");
            assert_eq!(summary.output_shape.dims(), &[1000], "{name}");
        }
    }

    #[test]
    fn every_variant_runs_forward_on_small_images() {
        let device = Device::flex();
        let options = ZooOptions {
            num_classes: 5,
            in_channels: 1,
            image_size: Some(32),
        };
        for entry in VARIANTS {
            let model = spec(entry.name, &options).unwrap().build(&device).unwrap();
            let x = Tensor::<4>::random([2, 1, 32, 32], Distribution::Normal(0.0, 1.0), &device);
            let y = model.forward(x, Mode::Eval).unwrap();
            assert_eq!(y.dims(), vec![2, 5], "{}", entry.name);
            let values = y.into_flat().into_data().try_to_vec::<f32>().unwrap();
            assert!(values.iter().all(|v| v.is_finite()), "{}", entry.name);
        }
    }

    #[test]
    fn weight_names_are_torchvision_state_dict_keys() {
        let device = Device::flex();
        let build = |name| {
            spec(name, &ZooOptions::default())
                .unwrap()
                .build(&device)
                .unwrap()
        };
        // torchvision's state_dict sizes, less the `num_batches_tracked` counters.
        assert_torch_keys(
            &build("resnet18"),
            102,
            &[
                ("conv1.weight", &[64, 3, 7, 7]),
                ("bn1.running_var", &[64]),
                ("layer1.0.conv1.weight", &[64, 64, 3, 3]),
                ("layer2.0.downsample.0.weight", &[128, 64, 1, 1]),
                ("layer2.0.downsample.1.bias", &[128]),
                ("layer4.1.bn2.weight", &[512]),
                ("fc.weight", &[1000, 512]),
                ("fc.bias", &[1000]),
            ],
        );
        assert_torch_keys(
            &build("resnet50"),
            267,
            &[
                ("layer1.0.downsample.0.weight", &[256, 64, 1, 1]),
                ("layer2.0.conv2.weight", &[128, 128, 3, 3]),
                ("layer3.5.conv3.weight", &[1024, 256, 1, 1]),
                ("layer4.2.bn3.running_mean", &[2048]),
                ("fc.weight", &[1000, 2048]),
            ],
        );
    }

    #[test]
    fn the_stride_of_a_bottleneck_sits_on_its_3x3_convolution() {
        let body = bottleneck_body(128, 2, None);
        let strides: Vec<_> = body
            .iter()
            .filter_map(|l| match &l.config {
                LayerConfig::Conv2d(c) => Some((l.name.clone().unwrap(), c.stride.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            strides,
            [
                ("conv1".to_string(), 1.into()),
                ("conv2".to_string(), 2.into()),
                ("conv3".to_string(), 1.into())
            ]
        );
    }
}
