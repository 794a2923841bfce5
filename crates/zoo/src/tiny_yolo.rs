//! A Tiny-YOLO-style detector (Redmon and Farhadi's yolov2-tiny, scaled down) for the generated
//! detection scenes: 3x3 convolutions with batch norm and leaky ReLU, each of the first four
//! followed by a 2x2 max pool (stride 16 in all), two more 3x3 convolutions, and a 1x1
//! convolution giving every grid cell `anchors x (5 + classes)` numbers: box offsets, log-size
//! scales, objectness and class logits. At 96x96 the grid is 6x6.

use convnet_layers::{
    Activation, BatchNormConfig, ConvConfig, LayerConfig, ModelSpec, Padding, PoolConfig,
};

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
        for (i, &filters) in self.filters.iter().enumerate() {
            spec = spec
                .named(
                    &format!("conv{i}"),
                    LayerConfig::Conv2d(
                        ConvConfig::new(filters, 3)
                            .with_padding(Padding::Same)
                            .with_bias(false),
                    ),
                )
                .named(
                    &format!("bn{i}"),
                    LayerConfig::BatchNorm(BatchNormConfig::default()),
                )
                .named(
                    &format!("leaky{i}"),
                    LayerConfig::Activation {
                        activation: Activation::Leaky,
                    },
                );
            if i < 4 {
                spec = spec.named(
                    &format!("pool{i}"),
                    LayerConfig::MaxPool2d(PoolConfig::new(2)),
                );
            }
        }
        Ok(spec.named(
            "head",
            LayerConfig::Conv2d(ConvConfig::new(self.anchors * (5 + self.classes), 1)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;
    use convnet_layers::Summarize;

    #[test]
    fn the_grid_holds_every_anchor_and_class() {
        let c = TinyYoloConfig::scenes();
        let model = c.spec().unwrap().build(&Device::flex()).unwrap();
        assert_eq!(model.output_shape().unwrap().dims(), &[45, 6, 6]);
        // 3x3 kernels without bias, batch norm (4 numbers a filter), the biased 1x1 head.
        let f = [1, 16, 32, 64, 128, 256, 256];
        let expected: usize = (0..6)
            .map(|i| 9 * f[i] * f[i + 1] + 4 * f[i + 1])
            .sum::<usize>()
            + 256 * 45
            + 45;
        assert_eq!(model.summary().unwrap().total_params, expected);
        let odd = TinyYoloConfig {
            input: [1, 100, 100],
            ..TinyYoloConfig::scenes()
        };
        assert!(odd.spec().unwrap_err().contains("divides by 16"));
    }
}
