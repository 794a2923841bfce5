//! A 1D CNN for signals (an ECG over time, as the course's 1D example): stages of
//! conv1d → batch norm → ReLU → max pool that halve the length, then a dense head. Five
//! stages give the last features a receptive field of a few hundred samples, more than one
//! beat-to-beat interval at 250 Hz, so rhythm as well as beat shape can be told apart.

use burn::tensor::Device;
use convnet_layers::{
    Activation, DenseConfig, DropoutConfig, LayerConfig, ModelSpec, Sequential, SpecError,
};

use crate::blocks::{Rank, conv_bn_relu_pool};

#[derive(Debug, Clone, PartialEq)]
pub struct SignalCnnConfig {
    pub in_channels: usize,
    /// Samples per example.
    pub length: usize,
    pub num_classes: usize,
    /// Filters of each stage; each stage halves the length.
    pub filters: Vec<usize>,
    pub kernel: usize,
    pub hidden: usize,
    pub dropout: f64,
}

impl SignalCnnConfig {
    /// Four seconds of one-lead ECG at 250 Hz, four rhythm classes.
    pub fn ecg() -> Self {
        Self {
            in_channels: 1,
            length: 1000,
            num_classes: 4,
            filters: vec![16, 32, 32, 64, 64],
            kernel: 7,
            hidden: 64,
            dropout: 0.3,
        }
    }

    pub fn spec(&self) -> ModelSpec {
        let mut spec = ModelSpec::new("signal-cnn", [self.in_channels, self.length]);
        for (i, &filters) in self.filters.iter().enumerate() {
            spec = conv_bn_relu_pool(spec, Rank::One, i + 1, filters, self.kernel, 2);
        }
        spec.named("flatten", LayerConfig::Flatten)
            .named(
                "fc1",
                LayerConfig::Dense(DenseConfig::new(self.hidden).with_activation(Activation::Relu)),
            )
            .named(
                "dropout",
                LayerConfig::Dropout(DropoutConfig::new(self.dropout)),
            )
            .named(
                "fc2",
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
    fn ecg_network_halves_the_length_five_times_and_counts_its_parameters() {
        let device = Device::flex();
        let model = SignalCnnConfig::ecg().init(&device).unwrap();
        let summary = model.summary().unwrap();
        let shape = |name: &str| {
            summary
                .layers
                .iter()
                .find(|r| r.name == name)
                .unwrap()
                .output_shape
                .to_string()
        };
        assert_eq!(shape("pool1"), "(None, 16, 500)");
        assert_eq!(shape("pool5"), "(None, 64, 31)");
        assert_eq!(shape("flatten"), "(None, 1984)");
        // Convs without bias (k·in·out), batch norms (γ, β), then the dense head.
        let convs = 7 * (16 + 16 * 32 + 32 * 32 + 32 * 64 + 64 * 64);
        let norms = 2 * (16 + 32 + 32 + 64 + 64);
        let dense = 1984 * 64 + 64 + 64 * 4 + 4;
        assert_eq!(summary.trainable_params, convs + norms + dense);
        let x = Tensor::<3>::random([2, 1, 1000], Distribution::Normal(0.0, 1.0), &device);
        let y = model.forward_logits(x, Mode::Eval).unwrap();
        assert_eq!(y.dims(), [2, 4]);
    }
}
