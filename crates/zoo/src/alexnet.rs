//! AlexNet (Krizhevsky, Sutskever and Hinton, *ImageNet Classification with Deep Convolutional
//! Neural Networks*, NeurIPS 2012) in the form torchvision ships: the single-GPU variant of
//! Krizhevsky's *One weird trick for parallelizing convolutional neural networks* (2014), with
//! 64 / 192 / 384 / 256 / 256 filters, no local response normalisation and no grouped
//! convolutions. That is the network torchvision's pretrained weights belong to.
//!
//! An adaptive average pool to 6x6 sits between the convolutions and the dense layers (as in
//! torchvision), so the 9216-input classifier fits any image size the convolutions accept.
//! Layer names are torchvision's (`features.0`, `classifier.1`, ...), so its weights load by name.

use convnet_layers::{
    Activation, AdaptivePoolConfig, ConvConfig, DenseConfig, DropoutConfig, LayerConfig, ModelSpec,
    Padding, PoolConfig,
};

use crate::{ZooEntry, ZooOptions};

pub const VARIANTS: &[ZooEntry] = &[ZooEntry {
    name: "alexnet",
    description: "AlexNet (Krizhevsky et al. 2012; torchvision's one-GPU variant), 224x224, 61.1M params",
}];

pub fn spec(name: &str, options: &ZooOptions) -> Option<ModelSpec> {
    match name {
        "alexnet" => Some(AlexNetConfig::alexnet().with_options(options).spec()),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlexNetConfig {
    pub in_channels: usize,
    /// Side of the square input; the convolutions need at least 63 pixels.
    pub image_size: usize,
    pub num_classes: usize,
    /// Dropout before each of the two hidden dense layers (0.5 in the paper, the regulariser
    /// that kept its 59M dense weights from overfitting).
    pub dropout: f64,
}

impl AlexNetConfig {
    /// The ImageNet network: 224x224 RGB, 1000 classes.
    pub fn alexnet() -> Self {
        Self {
            in_channels: 3,
            image_size: 224,
            num_classes: 1000,
            dropout: 0.5,
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
        let conv = |filters, kernel, stride, padding| {
            LayerConfig::Conv2d(
                ConvConfig::new(filters, kernel)
                    .with_stride(stride)
                    .with_padding(Padding::uniform(padding)),
            )
        };
        let relu = || LayerConfig::Activation {
            activation: Activation::Relu,
        };
        // Overlapping pooling (3x3 windows every 2 pixels), which the paper found overfits
        // slightly less than the usual 2x2.
        let pool = || LayerConfig::MaxPool2d(PoolConfig::new(3).with_stride(2));
        let dropout = || LayerConfig::Dropout(DropoutConfig::new(self.dropout));
        let dense = |units| LayerConfig::Dense(DenseConfig::new(units));
        let size = self.image_size;
        ModelSpec::new("alexnet", [self.in_channels, size, size])
            .named("features.0", conv(64, 11, 4, 2))
            .named("features.1", relu())
            .named("features.2", pool())
            .named("features.3", conv(192, 5, 1, 2))
            .named("features.4", relu())
            .named("features.5", pool())
            .named("features.6", conv(384, 3, 1, 1))
            .named("features.7", relu())
            .named("features.8", conv(256, 3, 1, 1))
            .named("features.9", relu())
            .named("features.10", conv(256, 3, 1, 1))
            .named("features.11", relu())
            .named("features.12", pool())
            .named(
                "avgpool",
                LayerConfig::AdaptiveAvgPool2d(AdaptivePoolConfig::new(6)),
            )
            .named("flatten", LayerConfig::Flatten)
            .named("classifier.0", dropout())
            .named("classifier.1", dense(4096))
            .named("classifier.2", relu())
            .named("classifier.3", dropout())
            .named("classifier.4", dense(4096))
            .named("classifier.5", relu())
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
    fn parameter_count_matches_torchvision() {
        let model = spec("alexnet", &ZooOptions::default())
            .unwrap()
            .build(&Device::flex())
            .unwrap();
        let summary = model.summary().unwrap();
        assert_eq!(summary.trainable_params, 61_100_840);
        assert_eq!(summary.output_shape.dims(), &[1000]);
        let before_pool = summary
            .layers
            .iter()
            .find(|r| r.name == "features.12")
            .unwrap();
        assert_eq!(before_pool.output_shape.to_string(), "(None, 256, 6, 6)");
    }

    #[test]
    fn runs_forward_on_small_images() {
        // 64x64 leaves a 1x1 map, which the adaptive pool spreads back to 6x6.
        let device = Device::flex();
        let options = ZooOptions {
            num_classes: 7,
            in_channels: 1,
            image_size: Some(64),
        };
        let model = spec("alexnet", &options).unwrap().build(&device).unwrap();
        let x = Tensor::<4>::random([2, 1, 64, 64], Distribution::Normal(0.0, 1.0), &device);
        let y = model.forward(x, Mode::Eval).unwrap();
        assert_eq!(y.dims(), vec![2, 7]);
        let values = y.into_flat().into_data().try_to_vec::<f32>().unwrap();
        assert!(values.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn weight_names_are_torchvision_state_dict_keys() {
        let model = spec("alexnet", &ZooOptions::default())
            .unwrap()
            .build(&Device::flex())
            .unwrap();
        assert_torch_keys(
            &model,
            16,
            &[
                ("features.0.weight", &[64, 3, 11, 11]),
                ("features.0.bias", &[64]),
                ("features.10.weight", &[256, 256, 3, 3]),
                ("classifier.1.weight", &[4096, 9216]),
                ("classifier.6.bias", &[1000]),
            ],
        );
    }
}
