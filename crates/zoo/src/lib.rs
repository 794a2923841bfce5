//! The convnet model zoo: one model family per file, each with its config and the published
//! variants as constructors.

pub mod lenet;

use burn::tensor::Device;
use convnet_layers::{Summarize, Summary};

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

/// Builds a built-in model by name; its parameters are created lazily, so summarising even a
/// large model allocates no weights.
pub fn build(name: &str, device: &Device) -> Result<Box<dyn Summarize>, ZooError> {
    let normalized = name.to_ascii_lowercase().replace('_', "-");
    match normalized.as_str() {
        "lenet5" | "lenet-5" | "lenet" => Ok(Box::new(LeNet5Config::lenet5().init(device)?)),
        "lenet5-fmnist" => Ok(Box::new(LeNet5Config::fashion_mnist().init(device)?)),
        _ => Err(ZooError::Unknown {
            name: name.to_string(),
        }),
    }
}

/// The summary of a built-in model.
pub fn summary(name: &str, device: &Device) -> Result<Summary, ZooError> {
    Ok(build(name, device)?.summary()?)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "unknown model 'lenet7'; built-in models: lenet5, lenet5-fmnist"
        );
    }
}
