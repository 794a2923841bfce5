//! A 3D CNN for volumes and clips (a CT scan, or video as a stack of frames, as the course's
//! 3D examples): stages of conv3d → batch norm → ReLU → max pool, then global average pooling
//! and a dense layer, so the same network takes any depth, height and width it was built for.

use burn::tensor::Device;
use convnet_layers::{Activation, DenseConfig, LayerConfig, ModelSpec, Sequential, SpecError};

use crate::blocks::{Rank, conv_bn_relu_pool};

#[derive(Debug, Clone, PartialEq)]
pub struct VolumeCnnConfig {
    pub in_channels: usize,
    /// `[depth, height, width]` (frames, height, width for clips).
    pub size: [usize; 3],
    pub num_classes: usize,
    /// Filters of each stage; every stage but the last halves each axis.
    pub filters: Vec<usize>,
    pub kernel: usize,
}

impl VolumeCnnConfig {
    /// 16 frames of 32x32 (the moving-item clips), four directions.
    pub fn clips() -> Self {
        Self {
            in_channels: 1,
            size: [16, 32, 32],
            num_classes: 4,
            filters: vec![8, 16, 32],
            kernel: 3,
        }
    }

    /// 24³ volumes (the shapes set), three classes.
    pub fn shapes() -> Self {
        Self {
            size: [24, 24, 24],
            num_classes: 3,
            ..Self::clips()
        }
    }

    pub fn spec(&self) -> ModelSpec {
        let [d, h, w] = self.size;
        let mut spec = ModelSpec::new("volume-cnn", [self.in_channels, d, h, w]);
        let last = self.filters.len();
        for (i, &filters) in self.filters.iter().enumerate() {
            let pool = if i + 1 < last { 2 } else { 1 };
            spec = conv_bn_relu_pool(spec, Rank::Three, i + 1, filters, self.kernel, pool);
        }
        spec.named("gap", LayerConfig::GlobalAvgPool).named(
            "fc",
            LayerConfig::Dense(
                DenseConfig::new(self.num_classes).with_activation(Activation::Softmax),
            ),
        )
    }

    pub fn init(&self, device: &Device) -> Result<Sequential, SpecError> {
        self.spec().build(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tensor};
    use convnet_layers::{Mode, Summarize};

    #[test]
    fn clip_and_shape_networks_run_forward() {
        let device = Device::flex();
        for (config, input, classes) in [
            (VolumeCnnConfig::clips(), [2, 1, 16, 32, 32], 4),
            (VolumeCnnConfig::shapes(), [2, 1, 24, 24, 24], 3),
        ] {
            let model = config.init(&device).unwrap();
            let summary = model.summary().unwrap();
            let convs = 27 * (8 + 8 * 16 + 16 * 32);
            let norms = 2 * (8 + 16 + 32);
            assert_eq!(
                summary.trainable_params,
                convs + norms + 32 * classes + classes
            );
            let x = Tensor::<5>::random(input, Distribution::Normal(0.0, 1.0), &device);
            let y = model.forward_logits(x, Mode::Eval).unwrap();
            assert_eq!(y.dims(), [2, classes]);
        }
        let clips = VolumeCnnConfig::clips()
            .init(&device)
            .unwrap()
            .summary()
            .unwrap();
        let pool2 = clips.layers.iter().find(|r| r.name == "pool2").unwrap();
        assert_eq!(pool2.output_shape.to_string(), "(None, 16, 4, 8, 8)");
    }
}
