//! GoogLeNet, or Inception v1 (Szegedy et al., *Going Deeper with Convolutions*, CVPR 2015), as
//! torchvision implements it. Each inception module runs four branches on the same input (1x1;
//! 1x1 then 3x3; 1x1 then a larger window; 3x3 max pool then 1x1) and concatenates them along
//! the channels, so the module sees several scales at once while the 1x1 "reductions" keep the
//! expensive convolutions narrow: 22 layers deep, with a ninth of AlexNet's parameters.
//!
//! torchvision's version differs from the paper's network in ways its weights depend on, and
//! this one follows it: every convolution is followed by batch norm (eps 0.001), max pools
//! round up (`ceil_mode`), and the third branch uses a 3x3 convolution where the paper has 5x5.
//! Layer names are torchvision's (`conv1.conv`, `inception3a.branch2.1.bn`, `aux1.fc2`, ...).
//!
//! The training variant adds the paper's two auxiliary classifiers, after inception 4a and 4d:
//! extra losses (weighted 0.3 in the paper) that push gradient into the middle of the network
//! while it trains. They are [`LayerConfig::Aux`] layers: `forward_aux` in `Mode::Train`
//! returns their outputs, in the order aux1, aux2; at inference they do nothing.

use convnet_layers::{
    Activation, AdaptivePoolConfig, BatchNormConfig, Branch, ConvConfig, DenseConfig,
    DropoutConfig, LayerConfig, LayerSpec, ModelSpec, Padding, PoolConfig,
};

use crate::blocks::{conv_bn_act, named};
use crate::{ZooEntry, ZooOptions};

pub const VARIANTS: &[ZooEntry] = &[
    ZooEntry {
        name: "googlenet",
        description: "GoogLeNet / Inception v1 (Szegedy et al. 2015, torchvision's), 224x224, 6.6M params",
    },
    ZooEntry {
        name: "googlenet_aux",
        description: "GoogLeNet for training, with its two auxiliary classifiers, 224x224, 13.0M params",
    },
];

pub fn spec(name: &str, options: &ZooOptions) -> Option<ModelSpec> {
    let config = match name {
        "googlenet" => GoogLeNetConfig::googlenet(),
        "googlenet_aux" => GoogLeNetConfig::googlenet_aux(),
        _ => return None,
    };
    Some(config.with_options(options).spec())
}

/// The filters of one inception module: `[1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool
/// projection]`, the columns of the paper's table 1.
type Inception = [usize; 6];

/// A max pool (name and window; stride 2) that halves the map before a stage.
type StagePool = Option<(&'static str, usize)>;

/// The nine modules in order, with the pool that precedes the first of each stage.
const INCEPTIONS: [(&str, StagePool, Inception); 9] = [
    ("inception3a", None, [64, 96, 128, 16, 32, 32]),
    ("inception3b", None, [128, 128, 192, 32, 96, 64]),
    (
        "inception4a",
        Some(("maxpool3", 3)),
        [192, 96, 208, 16, 48, 64],
    ),
    ("inception4b", None, [160, 112, 224, 24, 64, 64]),
    ("inception4c", None, [128, 128, 256, 24, 64, 64]),
    ("inception4d", None, [112, 144, 288, 32, 64, 64]),
    ("inception4e", None, [256, 160, 320, 32, 128, 128]),
    (
        "inception5a",
        Some(("maxpool4", 2)),
        [256, 160, 320, 32, 128, 128],
    ),
    ("inception5b", None, [384, 192, 384, 48, 128, 128]),
];

#[derive(Debug, Clone, PartialEq)]
pub struct GoogLeNetConfig {
    pub name: String,
    pub in_channels: usize,
    /// Side of the square input: at least 31 pixels, where `maxpool3` still gets a 3x3 map
    /// (PyTorch goes down to 15, letting a ceil-mode window overhang the whole input).
    pub image_size: usize,
    pub num_classes: usize,
    /// The two auxiliary classifiers (training only).
    pub aux_logits: bool,
    /// Dropout before the final dense layer (0.2 in torchvision; the paper used 0.4).
    pub dropout: f64,
    /// Dropout in the auxiliary classifiers (0.7, as in the paper).
    pub aux_dropout: f64,
}

impl GoogLeNetConfig {
    /// The inference network.
    pub fn googlenet() -> Self {
        Self {
            name: "googlenet".into(),
            in_channels: 3,
            image_size: 224,
            num_classes: 1000,
            aux_logits: false,
            dropout: 0.2,
            aux_dropout: 0.7,
        }
    }

    /// The network with its auxiliary classifiers, for training from scratch.
    pub fn googlenet_aux() -> Self {
        Self {
            name: "googlenet_aux".into(),
            aux_logits: true,
            ..Self::googlenet()
        }
    }

    /// The network for other data: classes, input channels and (if given) image size.
    pub fn with_options(mut self, options: &ZooOptions) -> Self {
        self.num_classes = options.num_classes;
        self.in_channels = options.in_channels;
        self.image_size = options.image_size.unwrap_or(self.image_size);
        self
    }

    pub fn spec(&self) -> ModelSpec {
        let size = self.image_size;
        let mut spec = ModelSpec::new(&self.name, [self.in_channels, size, size]);
        spec.layers.extend(basic_conv("conv1", 64, 7, 2, 3));
        spec.layers.push(max_pool("maxpool1", 3, 2));
        spec.layers.extend(basic_conv("conv2", 64, 1, 1, 0));
        spec.layers.extend(basic_conv("conv3", 192, 3, 1, 1));
        spec.layers.push(max_pool("maxpool2", 3, 2));
        for (name, pool, filters) in INCEPTIONS {
            if let Some((pool, window)) = pool {
                spec.layers.push(max_pool(pool, window, 2));
            }
            spec.layers.push(inception(name, filters));
            if self.aux_logits {
                match name {
                    "inception4a" => spec.layers.push(self.aux_classifier("aux1")),
                    "inception4d" => spec.layers.push(self.aux_classifier("aux2")),
                    _ => {}
                }
            }
        }
        spec.named("avgpool", LayerConfig::GlobalAvgPool)
            .named(
                "dropout",
                LayerConfig::Dropout(DropoutConfig::new(self.dropout)),
            )
            .named("fc", LayerConfig::Dense(DenseConfig::new(self.num_classes)))
    }

    /// An auxiliary classifier: average pool to 4x4, 128 1x1 filters, a 1024-unit dense
    /// layer with ReLU and dropout, then the classes. torchvision pools adaptively to 4x4
    /// where the paper uses a 5x5 window with stride 3 (4x4 only on a 14x14 map), so the head
    /// fits any image size.
    fn aux_classifier(&self, name: &str) -> LayerSpec {
        let mut layers = vec![named(
            "avgpool",
            LayerConfig::AdaptiveAvgPool2d(AdaptivePoolConfig::new(4)),
        )];
        layers.extend(basic_conv("conv", 128, 1, 1, 0));
        layers.extend([
            named("flatten", LayerConfig::Flatten),
            named("fc1", LayerConfig::Dense(DenseConfig::new(1024))),
            named(
                "relu",
                LayerConfig::Activation {
                    activation: Activation::Relu,
                },
            ),
            named(
                "dropout",
                LayerConfig::Dropout(DropoutConfig::new(self.aux_dropout)),
            ),
            named(
                "fc2",
                LayerConfig::Dense(DenseConfig::new(self.num_classes)),
            ),
        ]);
        named(name, LayerConfig::Aux { layers })
    }
}

/// torchvision's `BasicConv2d`: convolution without bias, batch norm with eps 0.001 (the
/// value its weights were trained with) and ReLU, named `{prefix}.conv`, `{prefix}.bn` and
/// `{prefix}.relu`.
fn basic_conv(
    prefix: &str,
    filters: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Vec<LayerSpec> {
    let padding = if padding == 0 {
        Padding::Valid
    } else {
        Padding::uniform(padding)
    };
    conv_bn_act(
        [
            &format!("{prefix}.conv"),
            &format!("{prefix}.bn"),
            &format!("{prefix}.relu"),
        ],
        ConvConfig::new(filters, kernel)
            .with_stride(stride)
            .with_padding(padding)
            .with_bias(false),
        BatchNormConfig {
            epsilon: 1e-3,
            ..BatchNormConfig::default()
        },
        Activation::Relu,
    )
}

/// A max pool that keeps a last partial window (`ceil_mode`), as torchvision's GoogLeNet does:
/// 224 -> 112 -> 56 -> 28 -> 14 -> 7 with 3x3 windows and stride 2.
fn max_pool(name: &str, pool: usize, stride: usize) -> LayerSpec {
    named(
        name,
        LayerConfig::MaxPool2d(
            PoolConfig::new(pool)
                .with_stride(stride)
                .with_ceil_mode(true),
        ),
    )
}

/// One inception module: the four branches' outputs concatenated along the channels.
fn inception(name: &str, [b1, b2_reduce, b2, b3_reduce, b3, b4]: Inception) -> LayerSpec {
    let branch1 = basic_conv("branch1", b1, 1, 1, 0);
    let mut branch2 = basic_conv("branch2.0", b2_reduce, 1, 1, 0);
    branch2.extend(basic_conv("branch2.1", b2, 3, 1, 1));
    let mut branch3 = basic_conv("branch3.0", b3_reduce, 1, 1, 0);
    // A 3x3 convolution where the paper has 5x5: torchvision's implementation (a known
    // slip that its pretrained weights keep), followed here so those weights load.
    branch3.extend(basic_conv("branch3.1", b3, 3, 1, 1));
    let mut branch4 = vec![named(
        "branch4.0",
        LayerConfig::MaxPool2d(
            PoolConfig::new(3)
                .with_stride(1)
                .with_padding(Padding::uniform(1))
                .with_ceil_mode(true),
        ),
    )];
    branch4.extend(basic_conv("branch4.1", b4, 1, 1, 0));
    named(
        name,
        LayerConfig::Concat {
            branches: [branch1, branch2, branch3, branch4]
                .into_iter()
                .map(|layers| Branch { layers })
                .collect(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resnet::tests::assert_torch_keys;
    use burn::tensor::{Device, Distribution, Tensor};
    use convnet_layers::{Mode, Summarize};

    #[test]
    fn parameter_counts_match_torchvision() {
        let device = Device::flex();
        for (name, expected) in [("googlenet", 6_624_904), ("googlenet_aux", 13_004_888)] {
            let model = spec(name, &ZooOptions::default())
                .unwrap()
                .build(&device)
                .unwrap();
            let summary = model.summary().unwrap();
            assert_eq!(summary.trainable_params, expected, "{name}");
            assert_eq!(summary.output_shape.dims(), &[1000], "{name}");
            // torchvision's sizes: ceil-mode pools take 224 to 7 before the global pool.
            let shape = |layer: &str| {
                let row = summary.layers.iter().find(|r| r.name == layer).unwrap();
                row.output_shape.to_string()
            };
            assert_eq!(shape("maxpool1"), "(None, 64, 56, 56)");
            assert_eq!(shape("inception3b"), "(None, 480, 28, 28)");
            assert_eq!(shape("inception4e"), "(None, 832, 14, 14)");
            assert_eq!(shape("inception5b"), "(None, 1024, 7, 7)");
        }
    }

    #[test]
    fn runs_forward_on_small_images() {
        let device = Device::flex();
        let options = ZooOptions {
            num_classes: 6,
            in_channels: 3,
            image_size: Some(64),
        };
        let x = || Tensor::<4>::random([2, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
        let finite = |t: Tensor<2>| {
            let values = t.into_data().try_to_vec::<f32>().unwrap();
            values.iter().all(|v| v.is_finite())
        };

        let model = spec("googlenet", &options).unwrap().build(&device).unwrap();
        let y = model.forward(x(), Mode::Eval).unwrap();
        assert_eq!(y.dims(), vec![2, 6]);
        assert!(finite(y.into_flat()));

        let model = spec("googlenet_aux", &options)
            .unwrap()
            .build(&device)
            .unwrap();
        let (y, aux) = model.forward_aux(x(), Mode::Train).unwrap();
        assert_eq!(y.dims(), vec![2, 6]);
        assert!(finite(y.into_flat()));
        assert_eq!(aux.len(), 2);
        for head in aux {
            assert_eq!(head.dims(), vec![2, 6]);
            assert!(finite(head.into_flat()));
        }
        // At inference the heads stay silent and the output is the main classifier's.
        let (y, aux) = model.forward_aux(x(), Mode::Eval).unwrap();
        assert_eq!(y.dims(), vec![2, 6]);
        assert!(aux.is_empty());
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
        let main: &[(&str, &[usize])] = &[
            ("conv1.conv.weight", &[64, 3, 7, 7]),
            ("conv1.bn.running_var", &[64]),
            ("conv3.conv.weight", &[192, 64, 3, 3]),
            ("inception3a.branch1.conv.weight", &[64, 192, 1, 1]),
            ("inception3a.branch2.1.conv.weight", &[128, 96, 3, 3]),
            ("inception3a.branch3.1.conv.weight", &[32, 16, 3, 3]),
            ("inception4e.branch4.1.bn.bias", &[128]),
            ("inception5b.branch2.0.conv.weight", &[192, 832, 1, 1]),
            ("fc.weight", &[1000, 1024]),
        ];
        assert_torch_keys(&build("googlenet"), 287, main);
        assert_torch_keys(&build("googlenet_aux"), 305, main);
        assert_torch_keys(
            &build("googlenet_aux"),
            305,
            &[
                ("aux1.conv.conv.weight", &[128, 512, 1, 1]),
                ("aux1.conv.bn.running_mean", &[128]),
                ("aux1.fc1.weight", &[1024, 2048]),
                ("aux2.conv.conv.weight", &[128, 528, 1, 1]),
                ("aux2.fc2.weight", &[1000, 1024]),
                ("aux2.fc2.bias", &[1000]),
            ],
        );
    }
}
