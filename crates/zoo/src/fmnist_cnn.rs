//! The textbook Fashion-MNIST network (Géron, *Hands-On Machine Learning*, ch. 14, as the course
//! notes draw it): a 7x7 convolution with 64 filters, then two pairs of 3x3 convolutions with 128
//! and 256 filters, each stage followed by 2x2 max pooling, and a dense head with dropout.

use burn::tensor::Device;
use convnet_layers::{
    Activation, Conv2dConfig, DenseConfig, DropoutConfig, LayerConfig, ModelSpec, Padding,
    Pool2dConfig, Sequential, SpecError,
};

#[derive(Debug, Clone, PartialEq)]
pub struct FmnistCnnConfig {
    pub in_channels: usize,
    pub input_size: usize,
    pub num_classes: usize,
    /// Dropout rate of the two hidden dense layers (0.5 in the book).
    pub dropout: f64,
}

impl FmnistCnnConfig {
    /// The book's network on 28x28 greyscale images, 10 classes.
    pub fn textbook() -> Self {
        Self {
            in_channels: 1,
            input_size: 28,
            num_classes: 10,
            dropout: 0.5,
        }
    }

    pub fn with_num_classes(mut self, num_classes: usize) -> Self {
        self.num_classes = num_classes;
        self
    }

    pub fn spec(&self) -> ModelSpec {
        let conv = |filters, kernel| {
            LayerConfig::Conv2d(
                Conv2dConfig::new(filters, kernel)
                    .with_padding(Padding::Same)
                    .with_activation(Activation::Relu),
            )
        };
        let pool = || LayerConfig::MaxPool2d(Pool2dConfig::new(2));
        let dense = |units, activation| {
            LayerConfig::Dense(DenseConfig::new(units).with_activation(activation))
        };
        ModelSpec::new(
            "fmnist-cnn",
            [self.in_channels, self.input_size, self.input_size],
        )
        .named("conv1", conv(64, 7))
        .named("pool1", pool())
        .named("conv2", conv(128, 3))
        .named("conv3", conv(128, 3))
        .named("pool2", pool())
        .named("conv4", conv(256, 3))
        .named("conv5", conv(256, 3))
        .named("pool3", pool())
        .named("flatten", LayerConfig::Flatten)
        .named("fc1", dense(128, Activation::Relu))
        .named(
            "dropout1",
            LayerConfig::Dropout(DropoutConfig::new(self.dropout)),
        )
        .named("fc2", dense(64, Activation::Relu))
        .named(
            "dropout2",
            LayerConfig::Dropout(DropoutConfig::new(self.dropout)),
        )
        .named("fc3", dense(self.num_classes, Activation::Softmax))
    }

    pub fn init(&self, device: &Device) -> Result<Sequential, SpecError> {
        self.spec().build(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::tensor::{Distribution, Tensor};
    use convnet_layers::{Mode, Summarize};

    #[test]
    fn parameter_count_matches_the_book_and_pytorch() {
        // 64·(7·7+1) + 128·(64·9+1) + 128·(128·9+1) + 256·(128·9+1) + 256·(256·9+1)
        // + (256·3·3)·128+128 + 128·64+64 + 64·10+10; PyTorch's train_torch.py `textbook`
        // model reports the same total.
        let expected = 3_200 + 73_856 + 147_584 + 295_168 + 590_080 + 295_040 + 8_256 + 650;
        assert_eq!(expected, 1_413_834);
        let model = FmnistCnnConfig::textbook().init(&Device::flex()).unwrap();
        assert_eq!(model.num_params(), expected);
        let summary = model.summary().unwrap();
        assert_eq!(summary.total_params, expected);
        let shapes: Vec<String> = summary
            .layers
            .iter()
            .filter(|r| r.name.starts_with("pool"))
            .map(|r| r.output_shape.to_string())
            .collect();
        // 28 -> 14 -> 7 -> 3 (max pooling floors).
        assert_eq!(
            shapes,
            [
                "(None, 64, 14, 14)",
                "(None, 128, 7, 7)",
                "(None, 256, 3, 3)"
            ]
        );
    }

    #[test]
    fn outputs_probabilities_and_logits() {
        let device = Device::flex();
        let model = FmnistCnnConfig::textbook().init(&device).unwrap();
        assert!(model.ends_in_softmax());
        let x = Tensor::<4>::random([2, 1, 28, 28], Distribution::Normal(0.0, 1.0), &device);
        let probs = model.forward(x.clone(), Mode::Eval).unwrap().into_flat();
        let logits = model.forward_logits(x, Mode::Eval).unwrap();
        assert_eq!(logits.dims(), [2, 10]);
        let from_logits = burn::tensor::activation::softmax(logits, 1);
        let a = probs.into_data().try_to_vec::<f32>().unwrap();
        let b = from_logits.into_data().try_to_vec::<f32>().unwrap();
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() < 1e-6);
        }
        let row: f32 = a[..10].iter().sum();
        assert!((row - 1.0).abs() < 1e-5);
    }
}
