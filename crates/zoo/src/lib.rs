//! The convnet model zoo: one model family per file, each with its config and the published
//! variants as constructors.

pub mod fmnist_cnn;
pub mod lenet;

use burn::tensor::Device;
use convnet_layers::{ModelSpec, Summarize, Summary};

pub use fmnist_cnn::FmnistCnnConfig;
pub use lenet::LeNet5Config;

/// A built-in model name with what it is.
#[derive(Debug, Clone, Copy)]
pub struct ZooEntry {
    pub name: &'static str,
    pub description: &'static str,
}

/// Every built-in model, in the order `convnet models` lists them.
pub const MODELS: &[ZooEntry] = &[
    ZooEntry {
        name: "lenet5",
        description: "LeNet-5 (LeCun 1998), 32x32x1 input, 10 classes",
    },
    ZooEntry {
        name: "lenet5-fmnist",
        description: "LeNet-5 for 28x28 Fashion-MNIST (first conv padded by 2)",
    },
    ZooEntry {
        name: "fmnist-cnn",
        description: "the textbook Fashion-MNIST CNN (Géron ch. 14): 28x28x1, 10 classes",
    },
];

/// Why a built-in model could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ZooError {
    #[error("unknown model '{name}'; built-in models: {}", MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", "))]
    Unknown { name: String },
    #[error(transparent)]
    Build(#[from] convnet_layers::SpecError),
    #[error(transparent)]
    Layer(#[from] convnet_layers::LayerError),
}

fn normalize(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

fn unknown(name: &str) -> ZooError {
    ZooError::Unknown {
        name: name.to_string(),
    }
}

/// The layer spec of a built-in model in its published form.
pub fn spec(name: &str) -> Result<ModelSpec, ZooError> {
    match normalize(name).as_str() {
        "lenet5" | "lenet-5" | "lenet" => Ok(LeNet5Config::lenet5().spec()),
        "lenet5-fmnist" => Ok(LeNet5Config::fashion_mnist().spec()),
        "fmnist-cnn" => Ok(FmnistCnnConfig::textbook().spec()),
        _ => Err(unknown(name)),
    }
}

/// The layer spec of a built-in classifier fitted to a data set: `channels x size x size`
/// images and `num_classes` outputs. LeNet-5 pads its first convolution so smaller images
/// (Fashion-MNIST's 28x28) reach the 32x32 the paper's layer sizes assume.
pub fn classifier_spec(
    name: &str,
    channels: usize,
    size: usize,
    num_classes: usize,
) -> Result<ModelSpec, ZooError> {
    match normalize(name).as_str() {
        "lenet5" | "lenet-5" | "lenet" | "lenet5-fmnist" => {
            Ok(LeNet5Config::for_input(channels, size)
                .with_num_classes(num_classes)
                .spec())
        }
        "fmnist-cnn" => Ok(FmnistCnnConfig {
            in_channels: channels,
            input_size: size,
            ..FmnistCnnConfig::textbook()
        }
        .with_num_classes(num_classes)
        .spec()),
        _ => Err(unknown(name)),
    }
}

/// Builds a built-in model by name; its parameters are created lazily, so summarising even a
/// large model allocates no weights.
pub fn build(name: &str, device: &Device) -> Result<Box<dyn Summarize>, ZooError> {
    Ok(Box::new(spec(name)?.build(device)?))
}

/// The summary of a built-in model.
pub fn summary(name: &str, device: &Device) -> Result<Summary, ZooError> {
    Ok(build(name, device)?.summary()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_survive_a_toml_round_trip() {
        // Checkpoints store their architecture as TOML; reading it back must give the same net.
        let device = Device::flex();
        for entry in MODELS {
            let spec = spec(entry.name).unwrap();
            let text = spec.to_toml().unwrap();
            let back = ModelSpec::parse(&text, "checkpoint").unwrap();
            assert_eq!(back.to_toml().unwrap(), text, "{}", entry.name);
            let a = spec.build(&device).unwrap().summary().unwrap();
            let b = back.build(&device).unwrap().summary().unwrap();
            assert_eq!(a.to_string(), b.to_string(), "{}", entry.name);
        }
    }

    #[test]
    fn classifiers_fit_the_data_set() {
        let device = Device::flex();
        let lenet = classifier_spec("lenet5", 1, 28, 10)
            .unwrap()
            .build(&device)
            .unwrap();
        assert_eq!(lenet.summary().unwrap().total_params, 61_706);
        let rgb = classifier_spec("fmnist-cnn", 3, 32, 4)
            .unwrap()
            .build(&device)
            .unwrap();
        assert_eq!(rgb.output_shape().unwrap().dims(), &[4]);
    }

    #[test]
    fn every_listed_model_builds_and_unknown_names_list_the_choices() {
        let device = Device::flex();
        for entry in MODELS {
            let s = summary(entry.name, &device).unwrap();
            assert!(s.total_params > 0, "{}", entry.name);
        }
        let err = summary("lenet7", &device).unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown model 'lenet7'; built-in models: lenet5, lenet5-fmnist, fmnist-cnn"
        );
    }
}
