//! face-api.js's Tiny Face Detector (Vincent Mühler; weights in the npm package
//! `@vladmandic/face-api`): a Tiny-YOLOv2 made of depthwise-separable convolutions. At 416x416
//! the last 1x1 convolution gives a 13x13 grid with 5 anchors x (x, y, w, h, objectness) — one
//! class, faces. Layer names are face-api's (`conv0` ... `conv5`, `conv8`), so its TF.js
//! weights load by name; pools are named `pool0` ... `pool5`.
//!
//! As in face-api's `runMobilenet`: `conv0` is a plain 3x3 convolution without padding, the
//! separable ones pad by 1, every convolution but the last is followed by a leaky ReLU
//! (slope 0.1), five 2x2 max pools halve the map (TensorFlow's `same`, so odd sizes round up)
//! and a sixth with stride 1 keeps its size.

use convnet_layers::{
    Activation, ConvConfig, LayerConfig, ModelSpec, Padding, PoolConfig, SeparableConfig,
};

use crate::{InputRecipe, ZooEntry, ZooOptions};

pub const VARIANTS: &[ZooEntry] = &[ZooEntry {
    name: "tiny-face",
    description: "face-api.js Tiny Face Detector: Tiny-YOLOv2 with separable convs, 416x416, 13x13 grid x 5 anchors, 1 class",
}];

/// Anchor box shapes (width, height) in grid cells, from face-api's `BOX_ANCHORS`.
pub const ANCHORS: [(f32, f32); 5] = [
    (1.603_231, 2.094_468),
    (6.041_143, 7.080_126),
    (2.882_459, 3.518_061),
    (4.266_906, 5.178_857),
    (9.041_765, 10.663_08),
];

#[derive(Debug, Clone, PartialEq)]
pub struct TinyFaceConfig {
    /// Side of the square input (face-api: a multiple of 32, 416 by default).
    pub image_size: usize,
    /// Filters of conv0 ... conv5.
    pub filters: [usize; 6],
}

impl TinyFaceConfig {
    pub fn face_api() -> Self {
        Self {
            image_size: 416,
            filters: [16, 32, 64, 128, 256, 512],
        }
    }

    /// Outputs per grid cell: each anchor's x, y, w, h and objectness.
    pub fn outputs_per_cell(&self) -> usize {
        ANCHORS.len() * 5
    }

    pub fn spec(&self) -> ModelSpec {
        let size = self.image_size;
        let mut spec = ModelSpec::new("tiny-face", [3, size, size]);
        let pool = |stride| {
            LayerConfig::MaxPool2d(
                PoolConfig::new(2)
                    .with_stride(stride)
                    .with_padding(Padding::Same),
            )
        };
        for (i, &filters) in self.filters.iter().enumerate() {
            let conv = if i == 0 {
                LayerConfig::Conv2d(ConvConfig::new(filters, 3).with_activation(Activation::Leaky))
            } else {
                let mut c = SeparableConfig::new(filters, 3);
                c.padding = Padding::uniform(1);
                c.activation = Activation::Leaky;
                LayerConfig::SeparableConv2d(c)
            };
            spec = spec
                .named(&format!("conv{i}"), conv)
                .named(&format!("pool{i}"), pool(if i < 5 { 2 } else { 1 }));
        }
        spec.named(
            "conv8",
            LayerConfig::Conv2d(ConvConfig::new(self.outputs_per_cell(), 1)),
        )
    }
}

pub fn spec(_name: &str, options: &ZooOptions) -> Option<ModelSpec> {
    let mut config = TinyFaceConfig::face_api();
    config.image_size = options.image_size.unwrap_or(config.image_size);
    Some(config.spec())
}

/// face-api's recipe: the picture padded to a square (bottom and right), scaled to the input
/// size, the RGB means subtracted and the result divided by 255.
pub fn input_recipe(_name: &str) -> InputRecipe {
    InputRecipe {
        preset: "faceapi",
        crop: 416,
        resize: 416,
        bicubic: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Tensor};
    use convnet_layers::{Mode, Summarize};

    #[test]
    fn shapes_and_parameters_match_face_api() {
        let device = Device::flex();
        let model = TinyFaceConfig::face_api().spec().build(&device).unwrap();
        // 416 → 414 (conv0, no padding) → 207 → 104 → 52 → 26 → 13 → 13 (stride-1 pool).
        assert_eq!(model.output_shape().unwrap().dims(), &[25, 13, 13]);
        // Every tensor of the package's manifest: conv0 3·3·3·16 + 16; separable layers
        // 9·c_in + c_in·c_out + c_out; conv8 512·25 + 25.
        let separable: usize = [(16, 32), (32, 64), (64, 128), (128, 256), (256, 512)]
            .iter()
            .map(|&(i, o)| 9 * i + i * o + o)
            .sum();
        let expected = 3 * 3 * 3 * 16 + 16 + separable + 512 * 25 + 25;
        assert_eq!(model.summary().unwrap().total_params, expected);
        let y = model
            .forward(Tensor::<4>::zeros([1, 3, 416, 416], &device), Mode::Eval)
            .unwrap();
        assert_eq!(y.dims(), vec![1, 25, 13, 13]);
    }
}
