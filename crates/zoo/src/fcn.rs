//! A fully convolutional network for segmentation (Long, Shelhamer and Darrell, *Fully
//! Convolutional Networks for Semantic Segmentation*, CVPR 2015), FCN-8s style at a small
//! scale: three stages of two 3x3 convolutions and a 2x2 max pool (1/2, 1/4, 1/8 of the
//! picture), then the classifier's dense layers as convolutions (`fc6`, a 3x3 convolution, and
//! `fc7`, a 1x1 one: what `convnet_weights::fully_convolutional` makes of a trained
//! classifier's dense layers), a 1x1 `score` convolution to the classes, and the way back up:
//! a 4x4 stride-2 transposed convolution doubles the score map and adds the scores of the
//! matching pooled stage (`score_pool2` at 1/4, `score_pool1` at 1/2), twice, and a last one
//! reaches the picture's size. The additions are residual blocks with a linear activation, so
//! the skips nest as in the U-Net.
//!
//! Dilation (`fc6_dilation`) widens fc6's view without another pooling (DeepLab's atrous
//! convolution).

use convnet_layers::{
    Activation, BatchNormConfig, ConvConfig, ConvTransposeConfig, LayerConfig, LayerSpec,
    ModelSpec, Padding, PoolConfig,
};

use crate::blocks::named;

#[derive(Debug, Clone, PartialEq)]
pub struct FcnConfig {
    pub name: String,
    pub in_channels: usize,
    pub image_size: usize,
    pub num_classes: usize,
    /// Filters of the first stage; the next two double them, fc6/fc7 have 8x.
    pub filters: usize,
    pub fc6_dilation: usize,
}

impl FcnConfig {
    /// For the 64x64 generated scenes: 16 filters, 11 classes.
    pub fn small() -> Self {
        Self {
            name: "fcn-small".into(),
            in_channels: 1,
            image_size: 64,
            num_classes: 11,
            filters: 16,
            fc6_dilation: 1,
        }
    }

    /// The network for `[channels, size, size]` pictures and `num_classes`.
    pub fn fitted(mut self, input: [usize; 3], num_classes: usize) -> Result<Self, String> {
        (self.in_channels, self.image_size) = crate::blocks::square_input(&self.name, input)?;
        self.num_classes = num_classes;
        Ok(self)
    }

    fn stage(&self, index: usize, filters: usize) -> Vec<LayerSpec> {
        let mut layers = Vec::new();
        for i in 1..=2 {
            layers.push(named(
                format!("block{index}.conv{i}"),
                LayerConfig::Conv2d(
                    ConvConfig::new(filters, 3)
                        .with_padding(Padding::Same)
                        .with_bias(false),
                ),
            ));
            layers.push(named(
                format!("block{index}.bn{i}"),
                LayerConfig::BatchNorm(BatchNormConfig::default()),
            ));
            layers.push(named(
                format!("block{index}.relu{i}"),
                LayerConfig::Activation {
                    activation: Activation::Relu,
                },
            ));
        }
        layers.push(named(
            format!("block{index}.pool"),
            LayerConfig::MaxPool2d(PoolConfig::new(2)),
        ));
        layers
    }

    fn score(&self, name: &str) -> LayerSpec {
        named(
            name,
            LayerConfig::Conv2d(ConvConfig::new(self.num_classes, 1)),
        )
    }

    /// A 4x4 stride-2 transposed convolution: doubles the score map.
    fn up(&self, name: &str) -> LayerSpec {
        named(
            name,
            LayerConfig::ConvTranspose2d(
                ConvTransposeConfig::new(self.num_classes, 4)
                    .with_stride(2)
                    .with_padding(Padding::uniform(1)),
            ),
        )
    }

    /// `body(x) + score(x)`: the upsampled deeper scores plus this stage's own.
    fn fuse(name: &str, body: Vec<LayerSpec>, shortcut: LayerSpec) -> LayerSpec {
        named(
            name,
            LayerConfig::Residual {
                body,
                shortcut: vec![shortcut],
                activation: Activation::Linear,
            },
        )
    }

    pub fn spec(&self) -> Result<ModelSpec, String> {
        if self.filters == 0 || self.num_classes == 0 || self.fc6_dilation == 0 {
            return Err("an FCN needs filters, classes and a dilation of at least 1".into());
        }
        if self.image_size == 0 || !self.image_size.is_multiple_of(8) {
            return Err(format!(
                "an FCN with three poolings takes sides that divide by 8; {} does not (resize or pad the pictures to {})",
                self.image_size,
                self.image_size.div_ceil(8).max(1) * 8
            ));
        }
        let f = self.filters;
        let relu_conv = |filters, kernel, dilation| {
            LayerConfig::Conv2d(
                ConvConfig::new(filters, kernel)
                    .with_padding(Padding::Same)
                    .with_dilation(dilation)
                    .with_activation(Activation::Relu),
            )
        };
        // 1/8: the classifier part, scored and doubled to 1/4.
        let mut deepest = self.stage(3, 4 * f);
        deepest.push(named("fc6", relu_conv(8 * f, 3, self.fc6_dilation)));
        deepest.push(named("fc7", relu_conv(8 * f, 1, 1)));
        deepest.push(self.score("score"));
        deepest.push(self.up("up8"));
        // 1/4: stage 2, then the fused 1/4 scores doubled to 1/2.
        let mut middle = self.stage(2, 2 * f);
        middle.push(Self::fuse("fuse_pool2", deepest, self.score("score_pool2")));
        middle.push(self.up("up4"));

        let size = self.image_size;
        let mut spec = ModelSpec::new(&self.name, [self.in_channels, size, size]);
        spec.layers.extend(self.stage(1, f));
        spec.layers
            .push(Self::fuse("fuse_pool1", middle, self.score("score_pool1")));
        Ok(spec.named(
            "up2",
            LayerConfig::ConvTranspose2d(
                ConvTransposeConfig::new(self.num_classes, 4)
                    .with_stride(2)
                    .with_padding(Padding::uniform(1)),
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, Tensor};
    use convnet_layers::{Mode, Summarize};

    #[test]
    fn scores_every_pixel_through_the_fused_skips() {
        let device = Device::flex();
        let model = FcnConfig::small()
            .fitted([3, 32, 32], 5)
            .unwrap()
            .spec()
            .unwrap()
            .build(&device)
            .unwrap();
        let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
        assert_eq!(
            model.forward(x, Mode::Eval).unwrap().dims(),
            vec![2, 5, 32, 32]
        );
        let summary = model.summary().unwrap();
        let shape = |name: &str| {
            let row = summary
                .layers
                .iter()
                .find(|r| r.name.ends_with(name))
                .unwrap();
            row.output_shape.dims().to_vec()
        };
        assert_eq!(shape("fc7"), [128, 4, 4]);
        assert_eq!(shape("fuse_pool2"), [5, 8, 8]);
        assert_eq!(shape("fuse_pool1"), [5, 16, 16]);
        assert_eq!(shape("up2"), [5, 32, 32]);
    }

    #[test]
    fn sides_that_do_not_divide_by_eight_are_refused() {
        let err = FcnConfig::small()
            .fitted([1, 36, 36], 3)
            .unwrap()
            .spec()
            .unwrap_err();
        assert!(err.contains("divide by 8") && err.contains("40"), "{err}");
    }
}
