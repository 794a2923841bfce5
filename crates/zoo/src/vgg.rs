//! VGG (Simonyan and Zisserman, *Very Deep Convolutional Networks for Large-Scale Image
//! Recognition*, ICLR 2015): stacks of 3x3 convolutions (two of them see a 5x5 window, three a
//! 7x7, with fewer weights and more non-linearities than one large filter), five 2x2 max pools,
//! and three dense layers. Configurations A, B, D and E of the paper's table 1 are VGG-11, -13,
//! -16 and -19; the `_bn` variants add batch norm after every convolution, as torchvision's do.
//!
//! As in torchvision an adaptive average pool to 7x7 precedes the dense layers, so the
//! 25088-input classifier fits any image size of at least 32 pixels. Layer names are
//! torchvision's (`features.N` numbered over convolutions, norms, ReLUs and pools alike,
//! `classifier.N`), so its pretrained weights load by name.

use convnet_layers::{
    Activation, AdaptivePoolConfig, BatchNormConfig, ConvConfig, DenseConfig, DropoutConfig,
    LayerConfig, ModelSpec, Padding, PoolConfig,
};

use crate::{ZooEntry, ZooOptions};

pub const VARIANTS: &[ZooEntry] = &[
    ZooEntry {
        name: "vgg11",
        description: "VGG-11, configuration A (Simonyan & Zisserman 2015), 224x224, 132.9M params",
    },
    ZooEntry {
        name: "vgg13",
        description: "VGG-13, configuration B (Simonyan & Zisserman 2015), 224x224, 133.0M params",
    },
    ZooEntry {
        name: "vgg16",
        description: "VGG-16, configuration D (Simonyan & Zisserman 2015), 224x224, 138.4M params",
    },
    ZooEntry {
        name: "vgg19",
        description: "VGG-19, configuration E (Simonyan & Zisserman 2015), 224x224, 143.7M params",
    },
    ZooEntry {
        name: "vgg11_bn",
        description: "VGG-11 with batch norm after every convolution, 224x224, 132.9M params",
    },
    ZooEntry {
        name: "vgg13_bn",
        description: "VGG-13 with batch norm after every convolution, 224x224, 133.1M params",
    },
    ZooEntry {
        name: "vgg16_bn",
        description: "VGG-16 with batch norm after every convolution, 224x224, 138.4M params",
    },
    ZooEntry {
        name: "vgg19_bn",
        description: "VGG-19 with batch norm after every convolution, 224x224, 143.7M params",
    },
];

pub fn spec(name: &str, options: &ZooOptions) -> Option<ModelSpec> {
    let (depth, batch_norm) = match name.strip_suffix("_bn") {
        Some(depth) => (depth, true),
        None => (name, false),
    };
    let config = match depth {
        "vgg11" => VggConfig::vgg11(),
        "vgg13" => VggConfig::vgg13(),
        "vgg16" => VggConfig::vgg16(),
        "vgg19" => VggConfig::vgg19(),
        _ => return None,
    };
    let config = if batch_norm {
        config.with_batch_norm()
    } else {
        config
    };
    Some(config.with_options(options).spec())
}

/// Filters of the five stages; each stage ends in a 2x2 max pool that halves the map.
const STAGE_FILTERS: [usize; 5] = [64, 128, 256, 512, 512];

#[derive(Debug, Clone, PartialEq)]
pub struct VggConfig {
    pub name: String,
    /// 3x3 convolutions in each of the five stages.
    pub convs_per_stage: [usize; 5],
    /// Batch norm between each convolution and its ReLU (the `_bn` variants).
    pub batch_norm: bool,
    pub in_channels: usize,
    pub image_size: usize,
    pub num_classes: usize,
    /// Dropout after the two hidden dense layers (0.5 in the paper).
    pub dropout: f64,
}

impl VggConfig {
    fn imagenet(name: &str, convs_per_stage: [usize; 5]) -> Self {
        Self {
            name: name.to_string(),
            convs_per_stage,
            batch_norm: false,
            in_channels: 3,
            image_size: 224,
            num_classes: 1000,
            dropout: 0.5,
        }
    }

    /// Configuration A.
    pub fn vgg11() -> Self {
        Self::imagenet("vgg11", [1, 1, 2, 2, 2])
    }

    /// Configuration B.
    pub fn vgg13() -> Self {
        Self::imagenet("vgg13", [2, 2, 2, 2, 2])
    }

    /// Configuration D.
    pub fn vgg16() -> Self {
        Self::imagenet("vgg16", [2, 2, 3, 3, 3])
    }

    /// Configuration E.
    pub fn vgg19() -> Self {
        Self::imagenet("vgg19", [2, 2, 4, 4, 4])
    }

    /// The same network with batch norm after every convolution, which lets it train from
    /// scratch without the paper's stage-wise initialisation from the shallower nets.
    pub fn with_batch_norm(mut self) -> Self {
        if !self.batch_norm {
            self.batch_norm = true;
            self.name.push_str("_bn");
        }
        self
    }

    /// The network for other data: classes, input channels and (if given) image size.
    pub fn with_options(mut self, options: &ZooOptions) -> Self {
        self.num_classes = options.num_classes;
        self.in_channels = options.in_channels;
        self.image_size = options.image_size.unwrap_or(self.image_size);
        self
    }

    pub fn spec(&self) -> ModelSpec {
        let relu = || LayerConfig::Activation {
            activation: Activation::Relu,
        };
        let size = self.image_size;
        let mut spec = ModelSpec::new(&self.name, [self.in_channels, size, size]);
        // torchvision numbers every module of `features`, parameterless ones included.
        let mut index = 0;
        let mut next = || {
            index += 1;
            format!("features.{}", index - 1)
        };
        for (&convs, &filters) in self.convs_per_stage.iter().zip(&STAGE_FILTERS) {
            for _ in 0..convs {
                spec = spec.named(
                    &next(),
                    LayerConfig::Conv2d(
                        ConvConfig::new(filters, 3).with_padding(Padding::uniform(1)),
                    ),
                );
                if self.batch_norm {
                    spec = spec.named(&next(), LayerConfig::BatchNorm(BatchNormConfig::default()));
                }
                spec = spec.named(&next(), relu());
            }
            spec = spec.named(&next(), LayerConfig::MaxPool2d(PoolConfig::new(2)));
        }
        let dropout = || LayerConfig::Dropout(DropoutConfig::new(self.dropout));
        let dense = |units| LayerConfig::Dense(DenseConfig::new(units));
        spec.named(
            "avgpool",
            LayerConfig::AdaptiveAvgPool2d(AdaptivePoolConfig::new(7)),
        )
        .named("flatten", LayerConfig::Flatten)
        .named("classifier.0", dense(4096))
        .named("classifier.1", relu())
        .named("classifier.2", dropout())
        .named("classifier.3", dense(4096))
        .named("classifier.4", relu())
        .named("classifier.5", dropout())
        .named("classifier.6", dense(self.num_classes))
    }
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
        for (name, expected) in [
            ("vgg11", 132_863_336),
            ("vgg13", 133_047_848),
            ("vgg16", 138_357_544),
            ("vgg19", 143_667_240),
            ("vgg11_bn", 132_868_840),
            ("vgg13_bn", 133_053_736),
            ("vgg16_bn", 138_365_992),
            ("vgg19_bn", 143_678_248),
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
        // 32x32 pools down to 1x1, which the adaptive pool spreads back to 7x7.
        let device = Device::flex();
        let options = ZooOptions {
            num_classes: 3,
            in_channels: 3,
            image_size: Some(32),
        };
        for entry in VARIANTS {
            let model = spec(entry.name, &options).unwrap().build(&device).unwrap();
            let x = Tensor::<4>::random([1, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
            let y = model.forward(x, Mode::Eval).unwrap();
            assert_eq!(y.dims(), vec![1, 3], "{}", entry.name);
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
        assert_torch_keys(
            &build("vgg16"),
            32,
            &[
                ("features.0.weight", &[64, 3, 3, 3]),
                ("features.2.bias", &[64]),
                ("features.28.weight", &[512, 512, 3, 3]),
                ("classifier.0.weight", &[4096, 25088]),
                ("classifier.3.weight", &[4096, 4096]),
                ("classifier.6.bias", &[1000]),
            ],
        );
        assert_torch_keys(
            &build("vgg11_bn"),
            54,
            &[
                ("features.1.running_mean", &[64]),
                ("features.4.weight", &[128, 64, 3, 3]),
                ("features.26.running_var", &[512]),
            ],
        );
    }
}
