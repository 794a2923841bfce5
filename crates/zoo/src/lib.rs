//! The convnet model zoo: one model family per file, each with its config and the published
//! variants as constructors.

pub mod blocks;
pub mod fmnist_cnn;
pub mod lenet;
pub mod signal_cnn;
pub mod volume_cnn;

use burn::tensor::Device;
use convnet_layers::{ModelSpec, Summarize, Summary};

pub use fmnist_cnn::FmnistCnnConfig;
pub use lenet::LeNet5Config;
pub use signal_cnn::SignalCnnConfig;
pub use volume_cnn::VolumeCnnConfig;

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
    ZooEntry {
        name: "signal-cnn",
        description: "1D CNN for signals: 1 x 1000 (4 s of ECG at 250 Hz), 4 classes",
    },
    ZooEntry {
        name: "volume-cnn",
        description: "3D CNN for volumes and clips: 1 x 16 x 32 x 32 (16 frames), 4 classes",
    },
];

/// Why a built-in model could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ZooError {
    #[error("unknown model '{name}'; built-in models: {}", MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", "))]
    Unknown { name: String },
    #[error("model '{name}' takes {want}; the data's examples are {got:?}")]
    Input {
        name: String,
        want: String,
        got: Vec<usize>,
    },
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
        "signal-cnn" => Ok(SignalCnnConfig::ecg().spec()),
        "volume-cnn" => Ok(VolumeCnnConfig::clips().spec()),
        _ => Err(unknown(name)),
    }
}

/// The layer spec of a built-in classifier fitted to a data set: examples of shape `input`
/// (`[C, L]`, `[C, H, W]` or `[C, D, H, W]`) and `num_classes` outputs. LeNet-5 pads its first
/// convolution so smaller images (Fashion-MNIST's 28x28) reach the 32x32 the paper's layer
/// sizes assume.
pub fn classifier_spec(
    name: &str,
    input: &[usize],
    num_classes: usize,
) -> Result<ModelSpec, ZooError> {
    let wrong = |want: &str| ZooError::Input {
        name: name.to_string(),
        want: want.to_string(),
        got: input.to_vec(),
    };
    match (normalize(name).as_str(), input) {
        ("lenet5" | "lenet-5" | "lenet" | "lenet5-fmnist", &[c, h, w]) if h == w => {
            Ok(LeNet5Config::for_input(c, h)
                .with_num_classes(num_classes)
                .spec())
        }
        ("fmnist-cnn", &[c, h, w]) if h == w => Ok(FmnistCnnConfig {
            in_channels: c,
            input_size: h,
            ..FmnistCnnConfig::textbook()
        }
        .with_num_classes(num_classes)
        .spec()),
        ("lenet5" | "lenet-5" | "lenet" | "lenet5-fmnist" | "fmnist-cnn", _) => {
            Err(wrong("square images [channels, size, size]"))
        }
        ("signal-cnn", &[c, l]) => Ok(SignalCnnConfig {
            in_channels: c,
            length: l,
            num_classes,
            ..SignalCnnConfig::ecg()
        }
        .spec()),
        ("signal-cnn", _) => Err(wrong("signals [channels, length]")),
        ("volume-cnn", &[c, d, h, w]) => Ok(VolumeCnnConfig {
            in_channels: c,
            size: [d, h, w],
            num_classes,
            ..VolumeCnnConfig::clips()
        }
        .spec()),
        ("volume-cnn", _) => Err(wrong("volumes [channels, depth, height, width]")),
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
        let lenet = classifier_spec("lenet5", &[1, 28, 28], 10)
            .unwrap()
            .build(&device)
            .unwrap();
        assert_eq!(lenet.summary().unwrap().total_params, 61_706);
        let rgb = classifier_spec("fmnist-cnn", &[3, 32, 32], 4)
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
            "unknown model 'lenet7'; built-in models: lenet5, lenet5-fmnist, fmnist-cnn, signal-cnn, volume-cnn"
        );
    }
}
