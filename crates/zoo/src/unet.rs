//! U-Net (Ronneberger, Fischer and Brox, *U-Net: Convolutional Networks for Biomedical Image
//! Segmentation*, MICCAI 2015): a contracting path of blocks of two 3x3 convolutions + ReLU,
//! each followed by a 2x2 max pool, and an expanding path whose blocks upsample with a 2x2
//! transposed convolution, concatenate the feature map of the matching contracting block (the
//! skip connection that brings back the detail pooling lost), then apply two 3x3 convolutions.
//! A 1x1 convolution maps the last features to one score per class and pixel: `[C, H, W]` in,
//! `[k, H, W]` out.
//!
//! Unlike the paper, convolutions are padded (`same`), so the output has the input's size and
//! no crop is needed; each convolution can have batch norm. The skips nest: level `d` is
//! `down_d → concat(identity, pool → level d+1 → up_d.upconv) → up_d`, built from the layers
//! crate's concat block, so the whole network is an ordinary spec.
//!
//! The input side must divide by `2^depth` (each pool halves it, each transposed conv doubles
//! it back): `convnet segment` resizes pictures to the network's input and the mask back.
//!
//! The contracting path can also be a trained network's (as segmentation libraries put a
//! U-Net decoder on a classifier's stages): [`Contracting::TinyYolo`] takes the Tiny-YOLO
//! detector's convolutions, one unit a level and its last two at the bottom, under their
//! detector names, so `--init` with a trained detector fills the whole contracting path.

use convnet_layers::{
    Activation, BatchNormConfig, Branch, ConvConfig, ConvTransposeConfig, DenseConfig, LayerConfig,
    LayerSpec, ModelSpec, Padding, PoolConfig,
};

use crate::blocks::named;
use crate::tiny_yolo;

/// What a U-Net's contracting path is made of.
#[derive(Debug, Clone, PartialEq)]
pub enum Contracting {
    /// The paper's blocks: two 3x3 convolutions (+ batch norm) + ReLU a level, `filters << d`
    /// wide, named `down{d+1}.conv1`, ..., and `bottleneck` at the bottom.
    DoubleConv,
    /// The convolutions of a Tiny-YOLO detector with these six widths (conv → batch norm →
    /// leaky ReLU, named `conv0` ... `conv5`): `conv0`–`conv3` are levels 0–3, `conv4` and
    /// `conv5` the bottom (depth 4). Each expanding block is as wide as its level's unit.
    TinyYolo([usize; 6]),
}

#[derive(Debug, Clone, PartialEq)]
pub struct UNetConfig {
    pub name: String,
    pub in_channels: usize,
    pub image_size: usize,
    pub num_classes: usize,
    /// Poolings on the contracting path (4 in the paper).
    pub depth: usize,
    /// Filters of the first block; each level down doubles them (64 in the paper).
    pub filters: usize,
    /// Batch norm after every 3x3 convolution (not in the paper; it trains faster).
    pub batch_norm: bool,
    /// Dilation of the bottom block's convolutions: a wider view without another pooling.
    pub bottleneck_dilation: usize,
    pub contracting: Contracting,
}

impl UNetConfig {
    /// The paper's network (depth 4, 64 to 1024 filters, two classes) with padded convolutions.
    pub fn paper() -> Self {
        Self {
            name: "unet".into(),
            in_channels: 1,
            image_size: 256,
            num_classes: 2,
            depth: 4,
            filters: 64,
            batch_norm: false,
            bottleneck_dilation: 1,
            contracting: Contracting::DoubleConv,
        }
    }

    /// A small U-Net for 64x64 pictures: depth 3, 16 to 128 filters, batch norm.
    pub fn small() -> Self {
        Self {
            name: "unet_small".into(),
            in_channels: 1,
            image_size: 64,
            num_classes: 11,
            depth: 3,
            filters: 16,
            batch_norm: true,
            bottleneck_dilation: 1,
            contracting: Contracting::DoubleConv,
        }
    }

    /// unet-small one level deeper (depth 4, 16 to 256 filters): a 4x4 bottom level with
    /// twice the filters. Four times the parameters for about a third more arithmetic, since
    /// the new layers work on 4x4 and 8x8 maps.
    pub fn small_deep() -> Self {
        Self {
            name: "unet_small_deep".into(),
            depth: 4,
            ..Self::small()
        }
    }

    /// A U-Net for the 64x64 scenes whose contracting path is `detector`'s convolutions
    /// (depth 4; see [`Contracting::TinyYolo`]): a detector trained on scenes of items already
    /// tells the garments apart, which is what a U-Net trained from nothing learns slowest.
    pub fn tiny_yolo(detector: &crate::TinyYoloConfig) -> Self {
        Self {
            name: format!("unet_{}", detector.name.replace('-', "_")),
            depth: 4,
            filters: detector.filters[0],
            contracting: Contracting::TinyYolo(detector.filters),
            ..Self::small()
        }
    }

    /// The built-in variant called `name` (`unet`, `unet-small`, `unet-small-deep`,
    /// `unet-tiny-yolo`, `unet-tiny-yolo-wide`).
    pub fn by_name(name: &str) -> Option<Self> {
        [
            Self::paper(),
            Self::small(),
            Self::small_deep(),
            Self::tiny_yolo(&crate::TinyYoloConfig::scenes()),
            Self::tiny_yolo(&crate::TinyYoloConfig::scenes_wide()),
        ]
        .into_iter()
        .find(|c| c.name.replace('_', "-") == name)
    }

    /// The network for `[channels, size, size]` pictures and `num_classes`.
    pub fn fitted(mut self, input: [usize; 3], num_classes: usize) -> Result<Self, String> {
        (self.in_channels, self.image_size) = crate::blocks::square_input(&self.name, input)?;
        self.num_classes = num_classes;
        Ok(self)
    }

    /// Two 3x3 convolutions (+ batch norm) + ReLU, named `NAME.conv1`, `NAME.bn1`, ...
    fn double_conv(&self, name: &str, filters: usize, dilation: usize) -> Vec<LayerSpec> {
        self.double_conv_named(name, "", filters, dilation)
    }

    /// [`Self::double_conv`] with `kind` before each layer's kind: `NAME.{kind}conv1`, ...
    fn double_conv_named(
        &self,
        name: &str,
        kind: &str,
        filters: usize,
        dilation: usize,
    ) -> Vec<LayerSpec> {
        let mut layers = Vec::new();
        for i in 1..=2 {
            let conv = ConvConfig::new(filters, 3)
                .with_padding(Padding::Same)
                .with_dilation(dilation)
                .with_bias(!self.batch_norm);
            let conv = if self.batch_norm {
                conv
            } else {
                conv.with_activation(Activation::Relu)
            };
            layers.push(named(
                format!("{name}.{kind}conv{i}"),
                LayerConfig::Conv2d(conv),
            ));
            if self.batch_norm {
                layers.push(named(
                    format!("{name}.{kind}bn{i}"),
                    LayerConfig::BatchNorm(BatchNormConfig::default()),
                ));
                layers.push(named(
                    format!("{name}.{kind}relu{i}"),
                    LayerConfig::Activation {
                        activation: Activation::Relu,
                    },
                ));
            }
        }
        layers
    }

    /// The width of level `d`'s contracting and expanding blocks (the bottom's output at
    /// `d == depth`).
    fn width(&self, d: usize) -> usize {
        match &self.contracting {
            Contracting::DoubleConv => self.filters << d,
            Contracting::TinyYolo(filters) if d == self.depth => filters[5],
            Contracting::TinyYolo(filters) => filters[d],
        }
    }

    /// Level `d`'s contracting block (the bottom one at `d == depth`) and the pool below it.
    fn contracting_block(&self, d: usize) -> (Vec<LayerSpec>, LayerSpec) {
        match &self.contracting {
            Contracting::DoubleConv => {
                let block = if d == self.depth {
                    self.double_conv("bottleneck", self.width(d), self.bottleneck_dilation)
                } else {
                    self.double_conv(&format!("down{}", d + 1), self.width(d), 1)
                };
                let pool = named(
                    format!("down{}.pool", d + 1),
                    LayerConfig::MaxPool2d(PoolConfig::new(2)),
                );
                (block, pool)
            }
            Contracting::TinyYolo(filters) => {
                let units = if d == self.depth { 4..6 } else { d..d + 1 };
                let block = units.flat_map(|i| tiny_yolo::unit(i, filters[i])).collect();
                (block, tiny_yolo::pool(d))
            }
        }
    }

    /// Level `d` of the U: its contracting block, the skip around everything below, and its
    /// expanding block (the bottom level is one block).
    fn level(&self, d: usize) -> Vec<LayerSpec> {
        let (mut layers, pool) = self.contracting_block(d);
        if d == self.depth {
            return layers;
        }
        let filters = self.width(d);
        let mut deeper = vec![pool];
        deeper.extend(self.level(d + 1));
        deeper.push(named(
            format!("up{}.upconv", d + 1),
            LayerConfig::ConvTranspose2d(ConvTransposeConfig::new(filters, 2).with_stride(2)),
        ));
        layers.push(named(
            format!("skip{}", d + 1),
            LayerConfig::Concat {
                branches: vec![Branch { layers: vec![] }, Branch { layers: deeper }],
            },
        ));
        // Over a detector's units (`conv1`, `bn1`, ...) the expanding blocks' layers are
        // `up2.merge_conv1`, ...: `up2.conv1` would end with a detector name, and its weights
        // would have two places to go.
        let kind = match self.contracting {
            Contracting::DoubleConv => "",
            Contracting::TinyYolo(_) => "merge_",
        };
        layers.extend(self.double_conv_named(&format!("up{}", d + 1), kind, filters, 1));
        layers
    }

    /// The 1x1 output convolution's name: `head`, or `score` (FCN's name) over a detector's
    /// convolutions, whose own 1x1 `head` would otherwise claim it and not fit.
    fn head_name(&self) -> &'static str {
        match self.contracting {
            Contracting::DoubleConv => "head",
            Contracting::TinyYolo(_) => "score",
        }
    }

    /// The contracting path and the bottleneck under a classifier head (global average pool →
    /// dense to `num_classes`): trained on labelled items, it gives a U-Net's contracting path a
    /// start that already tells items apart (`convnet train --task segment --init`). Its layers
    /// carry the U-Net's names (`down2.conv1`, `bottleneck.bn2`, ...), so the weights find their
    /// place in the nested U-Net (`skip1.down2.conv1`, ...). Pooling floors odd sides, so any
    /// input of at least `2^depth` pixels works.
    pub fn encoder_spec(&self) -> Result<ModelSpec, String> {
        if let Contracting::TinyYolo(_) = self.contracting {
            return Err(format!(
                "{}'s contracting path is a Tiny-YOLO detector's: start it from a trained detector or its backbone classifier",
                self.name
            ));
        }
        if self.depth == 0 || self.filters == 0 || self.num_classes == 0 {
            return Err("a U-Net encoder needs a depth, filters and classes of at least 1".into());
        }
        if self.image_size < 1 << self.depth {
            return Err(format!(
                "a depth-{} U-Net encoder takes sides of at least {} pixels, not {}",
                self.depth,
                1usize << self.depth,
                self.image_size
            ));
        }
        let size = self.image_size;
        let mut spec = ModelSpec::new(
            format!("{}_encoder", self.name),
            [self.in_channels, size, size],
        );
        for d in 0..self.depth {
            let name = format!("down{}", d + 1);
            spec.layers
                .extend(self.double_conv(&name, self.filters << d, 1));
            spec.layers.push(named(
                format!("{name}.pool"),
                LayerConfig::MaxPool2d(PoolConfig::new(2)),
            ));
        }
        spec.layers.extend(self.double_conv(
            "bottleneck",
            self.filters << self.depth,
            self.bottleneck_dilation,
        ));
        Ok(spec
            .named("classifier.pool", LayerConfig::GlobalAvgPool)
            .named(
                "classifier.fc",
                LayerConfig::Dense(DenseConfig::new(self.num_classes)),
            ))
    }

    /// The network, or why the configuration cannot work.
    pub fn spec(&self) -> Result<ModelSpec, String> {
        let step = 1usize << self.depth;
        if self.depth == 0 || self.filters == 0 || self.num_classes == 0 {
            return Err("a U-Net needs a depth, filters and classes of at least 1".into());
        }
        if let Contracting::TinyYolo(_) = self.contracting
            && (self.depth != 4 || self.bottleneck_dilation != 1 || !self.batch_norm)
        {
            return Err(format!(
                "{} keeps its detector's shape: depth 4, batch norm, no dilation",
                self.name
            ));
        }
        if self.image_size == 0 || !self.image_size.is_multiple_of(step) {
            return Err(format!(
                "a depth-{} U-Net takes sides that divide by {step}; {} does not (resize or pad the pictures to {})",
                self.depth,
                self.image_size,
                self.image_size.div_ceil(step).max(1) * step
            ));
        }
        let size = self.image_size;
        let mut spec = ModelSpec::new(&self.name, [self.in_channels, size, size]);
        spec.layers.extend(self.level(0));
        Ok(spec.named(
            self.head_name(),
            LayerConfig::Conv2d(ConvConfig::new(self.num_classes, 1)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, Tensor};
    use convnet_layers::{Mode, Summarize};

    /// Trainable parameters counted layer by layer: each level's two 3x3 convs (cin -> f -> f)
    /// carry a bias, or with batch norm no bias and BN's 2 numbers per channel; each 2x2
    /// up-convolution 2f -> f has a bias and is followed by convs 2f (concat) -> f -> f; the
    /// 1x1 head maps the first level's filters to the classes.
    fn counted_by_hand(depth: usize, filters: usize, classes: usize, batch_norm: bool) -> usize {
        let per_conv = |f: usize| if batch_norm { 2 * f } else { f };
        let (mut total, mut cin) = (0, 1);
        for d in 0..=depth {
            let f = filters << d;
            total += cin * f * 9 + per_conv(f) + f * f * 9 + per_conv(f);
            cin = f;
        }
        for d in 0..depth {
            let f = filters << d;
            total += 2 * f * f * 4 + f + 2 * f * f * 9 + per_conv(f) + f * f * 9 + per_conv(f);
        }
        total + filters * classes + classes
    }

    fn summary_of(config: &UNetConfig) -> convnet_layers::Summary {
        config
            .spec()
            .unwrap()
            .build(&Device::flex())
            .unwrap()
            .summary()
            .unwrap()
    }

    #[test]
    fn the_paper_network_has_its_size_counted_by_hand() {
        // The paper's figure 1: 3x3 convs 1->64->64, 64->128->128, ..., 512->1024->1024,
        // up-convolutions halving the channels, and the 1x1 head to 2 classes.
        let expected = counted_by_hand(4, 64, 2, false);
        assert_eq!(expected, 31_030_658);
        let summary = summary_of(&UNetConfig::paper());
        assert_eq!(summary.trainable_params, expected);
        assert_eq!(summary.output_shape.dims(), &[2, 256, 256]);
    }

    #[test]
    fn the_small_variants_have_their_size_counted_by_hand() {
        for (config, expected) in [
            (UNetConfig::small(), 482_619),
            (UNetConfig::small_deep(), 1_942_459),
        ] {
            let depth = config.depth;
            assert_eq!(counted_by_hand(depth, 16, 11, true), expected);
            let summary = summary_of(&config);
            assert_eq!(summary.trainable_params, expected, "depth {depth}");
            assert_eq!(summary.output_shape.dims(), &[11, 64, 64]);
        }
        assert_eq!(
            UNetConfig::by_name("unet-small-deep").map(|c| c.depth),
            Some(4)
        );
        assert_eq!(UNetConfig::by_name("unet-huge"), None);
    }

    #[test]
    fn the_unet_over_a_detector_has_its_size_counted_by_hand() {
        // Contracting: the detector's six units (3x3, no bias; batch norm's 2 trainable numbers
        // a filter). Expanding, levels 3 to 0: a biased 2x2 up-convolution from the level below
        // (conv5's 512 channels at level 3) to the level's width w, then 3x3 convs 2w -> w -> w
        // with batch norm. The 1x1 score to 11 classes.
        let widths = [16, 32, 64, 128, 256, 512];
        let mut expected = 0;
        let mut cin = 1;
        for &w in &widths {
            expected += 9 * cin * w + 2 * w;
            cin = w;
        }
        for d in 0..4 {
            let (w, below) = (widths[d], if d == 3 { 512 } else { widths[d + 1] });
            expected += below * w * 4 + w + 2 * w * w * 9 + 2 * w + w * w * 9 + 2 * w;
        }
        expected += 16 * 11 + 11;
        let config = UNetConfig::by_name("unet-tiny-yolo-wide").unwrap();
        assert_eq!(
            config.contracting,
            Contracting::TinyYolo(crate::TinyYoloConfig::scenes_wide().filters)
        );
        let summary = summary_of(&config);
        assert_eq!(summary.trainable_params, expected);
        assert_eq!(summary.output_shape.dims(), &[11, 64, 64]);
        let names: Vec<&str> = summary.layers.iter().map(|r| r.name.as_str()).collect();
        // Each detector unit's name ends exactly one layer's path (a weight has one place).
        for unit in ["conv0", "conv1", "bn2", "conv5"] {
            let at: Vec<_> = names
                .iter()
                .filter(|n| **n == unit || n.ends_with(&format!(".{unit}")))
                .collect();
            assert_eq!(at.len(), 1, "{unit}: {at:?}");
        }
        assert!(names.contains(&"score"), "{names:?}");
        assert!(config.encoder_spec().unwrap_err().contains("detector"));
        let shallow = UNetConfig { depth: 3, ..config };
        assert!(shallow.spec().unwrap_err().contains("depth 4"));
    }

    #[test]
    fn output_keeps_the_input_size_with_one_score_per_class() {
        let device = Device::flex();
        let model = UNetConfig {
            num_classes: 5,
            in_channels: 3,
            image_size: 32,
            ..UNetConfig::small()
        }
        .spec()
        .unwrap()
        .build(&device)
        .unwrap();
        let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
        let y = model.forward(x, Mode::Eval).unwrap();
        assert_eq!(y.dims(), vec![2, 5, 32, 32]);
        let summary = model.summary().unwrap();
        let shape = |name: &str| {
            // Layers inside the skips are listed under their path (`skip1.branch2.…`).
            let row = summary
                .layers
                .iter()
                .find(|r| r.name.ends_with(name))
                .unwrap();
            row.output_shape.dims().to_vec()
        };
        assert_eq!(shape("bottleneck.conv2"), [128, 4, 4]);
        // The skip at level 1 concatenates 16 channels from down1 with 16 up-sampled ones.
        assert_eq!(shape("skip1"), [32, 32, 32]);
    }

    #[test]
    fn sizes_that_do_not_divide_are_refused_with_the_fix() {
        let err = UNetConfig {
            image_size: 60,
            ..UNetConfig::small()
        }
        .spec()
        .unwrap_err();
        assert!(err.contains("divide by 8"), "{err}");
        assert!(err.contains("64"), "{err}");
    }
}
