//! A Tiny-YOLO-style detector (Redmon and Farhadi's yolov2-tiny, scaled down) for the generated
//! detection scenes: 3x3 convolutions with batch norm and leaky ReLU, each of the first four
//! followed by a 2x2 max pool (stride 16 in all), two more 3x3 convolutions, and a 1x1
//! convolution giving every grid cell `anchors x (5 + classes)` numbers: box offsets, log-size
//! scales, objectness and class logits. At 96x96 the grid is 6x6.

use convnet_layers::{
    Activation, BatchNormConfig, ConvConfig, DenseConfig, LayerConfig, LayerSpec, ModelSpec,
    Padding, PoolConfig, ZeroPadding2dConfig,
};

use crate::blocks::named;

#[derive(Debug, Clone, PartialEq)]
pub struct TinyYoloConfig {
    pub name: String,
    /// `[channels, side, side]`; the side must divide by 16.
    pub input: [usize; 3],
    /// Filters of the six 3x3 convolutions.
    pub filters: [usize; 6],
    pub anchors: usize,
    pub classes: usize,
}

impl TinyYoloConfig {
    /// The detector of the generated scenes: 96x96 grey pictures, 3 anchors, 10 classes.
    pub fn scenes() -> Self {
        Self {
            name: "tiny-yolo".into(),
            input: [1, 96, 96],
            filters: [16, 32, 64, 128, 256, 256],
            anchors: 3,
            classes: 10,
        }
    }

    /// [`Self::scenes`] with 512 filters in the last 3x3 convolution (1.6M parameters instead of
    /// 1.0M): more room to tell similar garments apart, for ~4% more time a training step on
    /// these 2 cores (the 6x6 map keeps the widest layer cheap).
    pub fn scenes_wide() -> Self {
        Self {
            name: "tiny-yolo-wide".into(),
            filters: [16, 32, 64, 128, 256, 512],
            ..Self::scenes()
        }
    }

    /// The built-in variant called `name` (`tiny-yolo`, `tiny-yolo-wide`).
    pub fn by_name(name: &str) -> Option<Self> {
        [Self::scenes(), Self::scenes_wide()]
            .into_iter()
            .find(|c| c.name == name)
    }

    /// The grid side for the configured input.
    pub fn grid(&self) -> usize {
        self.input[1] / 16
    }

    pub fn spec(&self) -> Result<ModelSpec, String> {
        let [_, h, w] = self.input;
        if h != w || h % 16 != 0 || h == 0 {
            return Err(format!(
                "{} takes square pictures whose side divides by 16 (its stride), not {h}x{w}",
                self.name
            ));
        }
        let mut spec = ModelSpec::new(&self.name, self.input.to_vec());
        spec.layers.extend(self.features());
        Ok(spec.named(
            "head",
            LayerConfig::Conv2d(ConvConfig::new(self.anchors * (5 + self.classes), 1)),
        ))
    }

    /// The detector's convolutions under a classifier head (global average pool → dense to
    /// `classes`), as YOLO's backbone is first trained to classify: the layers keep the
    /// detector's names, so `convnet train --task detect --init` places the weights. Pictures
    /// under [`BACKBONE_MIN_SIDE`] are zero-padded up to it (Fashion-MNIST's 28x28 would leave
    /// the last 3x3 convolutions a 1x1 map, whose kernels would learn only their centre).
    pub fn backbone_spec(&self) -> Result<ModelSpec, String> {
        let [c, h, w] = self.input;
        if h != w || h == 0 {
            return Err(format!(
                "{}-backbone takes square pictures, not {h}x{w}",
                self.name
            ));
        }
        let mut spec = ModelSpec::new(format!("{}-backbone", self.name), [c, h, w]);
        if h < BACKBONE_MIN_SIDE {
            let before = (BACKBONE_MIN_SIDE - h) / 2;
            let after = BACKBONE_MIN_SIDE - h - before;
            spec = spec.named(
                "pad",
                LayerConfig::ZeroPadding2d(ZeroPadding2dConfig::new(Padding::Explicit(vec![
                    (before, after),
                    (before, after),
                ]))),
            );
        }
        spec.layers.extend(self.features());
        Ok(spec
            .named("classifier.pool", LayerConfig::GlobalAvgPool)
            .named(
                "classifier.fc",
                LayerConfig::Dense(DenseConfig::new(self.classes)),
            ))
    }

    /// The six conv → batch norm → leaky ReLU units, the first four followed by a 2x2 max pool.
    fn features(&self) -> Vec<LayerSpec> {
        let mut layers = Vec::new();
        for (i, &filters) in self.filters.iter().enumerate() {
            layers.extend(unit(i, filters));
            if i < 4 {
                layers.push(pool(i));
            }
        }
        layers
    }
}

/// The detector's `i`th unit: a 3x3 convolution (no bias) → batch norm → leaky ReLU, named
/// `conv{i}`, `bn{i}`, `leaky{i}` wherever it is used, so a trained detector's weights find it.
pub(crate) fn unit(i: usize, filters: usize) -> Vec<LayerSpec> {
    vec![
        named(
            format!("conv{i}"),
            LayerConfig::Conv2d(
                ConvConfig::new(filters, 3)
                    .with_padding(Padding::Same)
                    .with_bias(false),
            ),
        ),
        named(
            format!("bn{i}"),
            LayerConfig::BatchNorm(BatchNormConfig::default()),
        ),
        named(
            format!("leaky{i}"),
            LayerConfig::Activation {
                activation: Activation::Leaky,
            },
        ),
    ]
}

/// The 2x2 max pool after unit `i`.
pub(crate) fn pool(i: usize) -> LayerSpec {
    named(
        format!("pool{i}"),
        LayerConfig::MaxPool2d(PoolConfig::new(2)),
    )
}

/// The smallest side [`TinyYoloConfig::backbone_spec`] trains at: after four poolings the last
/// convolutions still see a 3x3 map.
pub const BACKBONE_MIN_SIDE: usize = 48;

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;
    use convnet_layers::Summarize;

    /// 3x3 kernels without bias, batch norm (4 numbers a filter), the biased 1x1 head to 45.
    fn params_by_hand(filters: [usize; 6]) -> usize {
        let f: Vec<usize> = std::iter::once(1).chain(filters).collect();
        (0..6)
            .map(|i| 9 * f[i] * f[i + 1] + 4 * f[i + 1])
            .sum::<usize>()
            + f[6] * 45
            + 45
    }

    #[test]
    fn the_grid_holds_every_anchor_and_class() {
        for (c, filters, params) in [
            (
                TinyYoloConfig::scenes(),
                [16, 32, 64, 128, 256, 256],
                1_000_000,
            ),
            (
                TinyYoloConfig::scenes_wide(),
                [16, 32, 64, 128, 256, 512],
                1_600_000,
            ),
        ] {
            assert_eq!(TinyYoloConfig::by_name(&c.name), Some(c.clone()));
            let model = c.spec().unwrap().build(&Device::flex()).unwrap();
            assert_eq!(model.output_shape().unwrap().dims(), &[45, 6, 6]);
            let total = model.summary().unwrap().total_params;
            assert_eq!(total, params_by_hand(filters), "{}", c.name);
            // The rounded counts the docs give.
            assert_eq!((total + 50_000) / 100_000 * 100_000, params, "{}", c.name);
        }
        assert_eq!(TinyYoloConfig::by_name("tiny-yolo-huge"), None);
        let odd = TinyYoloConfig {
            input: [1, 100, 100],
            ..TinyYoloConfig::scenes()
        };
        assert!(odd.spec().unwrap_err().contains("divides by 16"));
    }
}
