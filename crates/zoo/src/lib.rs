//! The convnet model zoo: one model family per file, each with its config and the published
//! variants as constructors.

pub mod alexnet;
pub mod blocks;
pub mod darknet;
pub mod efficientnet;
pub mod fcn;
pub mod fmnist_cnn;
pub mod googlenet;
pub mod lenet;
pub mod mobilenet_v1;
pub mod mobilenet_v2;
pub mod resnet;
pub mod se_resnet;
pub mod signal_cnn;
pub mod tiny_face;
pub mod tiny_yolo;
pub mod unet;
pub mod vgg;
pub mod volume_cnn;
pub mod xception;
pub mod yolo_resnet;

use burn::tensor::Device;
use convnet_layers::{ModelSpec, Summarize, Summary};

pub use fcn::FcnConfig;
pub use fmnist_cnn::FmnistCnnConfig;
pub use lenet::LeNet5Config;
pub use signal_cnn::SignalCnnConfig;
pub use tiny_yolo::TinyYoloConfig;
pub use unet::{Contracting, UNetConfig};
pub use volume_cnn::VolumeCnnConfig;
pub use yolo_resnet::YoloBackboneConfig;

/// A built-in model name with what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZooEntry {
    pub name: &'static str,
    pub description: &'static str,
}

/// How a zoo architecture is instantiated: the published one is `ZooOptions::default()`
/// (1000 ImageNet classes, RGB, the variant's own resolution).
#[derive(Debug, Clone, PartialEq)]
pub struct ZooOptions {
    pub num_classes: usize,
    pub in_channels: usize,
    /// Side of the square input in pixels; `None` is the variant's published resolution.
    pub image_size: Option<usize>,
}

impl Default for ZooOptions {
    fn default() -> Self {
        Self {
            num_classes: 1000,
            in_channels: 3,
            image_size: None,
        }
    }
}

/// The ImageNet architectures, one family per module: each lists its variants and builds
/// the spec of one of them (`name` is the variant's canonical name from its list).
/// Its third part is the input recipe of the variant's published weights.
type Family = (
    &'static [ZooEntry],
    fn(&str, &ZooOptions) -> Option<ModelSpec>,
    fn(&str) -> InputRecipe,
);

const FAMILIES: &[Family] = &[
    (alexnet::VARIANTS, alexnet::spec, InputRecipe::torchvision),
    (vgg::VARIANTS, vgg::spec, InputRecipe::torchvision),
    (resnet::VARIANTS, resnet::spec, InputRecipe::torchvision),
    (
        se_resnet::VARIANTS,
        se_resnet::spec,
        InputRecipe::torchvision,
    ),
    (
        googlenet::VARIANTS,
        googlenet::spec,
        InputRecipe::torchvision,
    ),
    (
        mobilenet_v1::VARIANTS,
        mobilenet_v1::spec,
        mobilenet_v1::input_recipe,
    ),
    (
        mobilenet_v2::VARIANTS,
        mobilenet_v2::spec,
        InputRecipe::torchvision,
    ),
    (
        efficientnet::VARIANTS,
        efficientnet::spec,
        efficientnet::input_recipe,
    ),
    (xception::VARIANTS, xception::spec, xception::input_recipe),
    (
        tiny_face::VARIANTS,
        tiny_face::spec,
        tiny_face::input_recipe,
    ),
];

/// How a variant's published weights expect their pictures: each set of weights is only right
/// under the recipe it was trained with, so the recipe travels with the architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputRecipe {
    /// The preprocessing preset: `imagenet` (torchvision: 0–1 scale, ImageNet mean and std),
    /// `tf` (Keras' MobileNet and Xception: values in [-1, 1]) or `caffe` (BGR, means
    /// subtracted).
    pub preset: &'static str,
    /// Side of the square network input.
    pub crop: usize,
    /// torchvision's recipes scale the shorter side to this before the centre crop; Keras'
    /// crop the largest centred square instead (`resize == crop`).
    pub resize: usize,
    /// Bicubic rather than bilinear resampling (EfficientNet's weights).
    pub bicubic: bool,
}

impl InputRecipe {
    /// torchvision's classification recipe for 224x224 weights: shorter side to 256, centre
    /// crop 224, bilinear (every family here but EfficientNet's and the Keras ones).
    pub fn torchvision(_variant: &str) -> Self {
        Self {
            preset: "imagenet",
            crop: 224,
            resize: 256,
            bicubic: false,
        }
    }

    /// Keras' `tf` mode at `size`: the image cropped to a square and scaled to [-1, 1].
    pub fn keras_tf(size: usize) -> Self {
        Self {
            preset: "tf",
            crop: size,
            resize: size,
            bicubic: false,
        }
    }
}

/// The input recipe of an ImageNet architecture's published weights, by name.
pub fn input_recipe(name: &str) -> Option<InputRecipe> {
    FAMILIES.iter().find_map(|(variants, _, recipe)| {
        let entry = variants.iter().find(|e| same_name(e.name, name))?;
        Some(recipe(entry.name))
    })
}

/// The 1000 ImageNet-1k class names in class-index order, as torchvision's weights report
/// them (`weights.meta["categories"]`; `scripts/dev/imagenet_classes.py` wrote the list).
pub fn imagenet_classes() -> Vec<&'static str> {
    include_str!("../data/imagenet_classes.txt")
        .lines()
        .collect()
}

/// Every built-in model, in the order `convnet models` lists them: the course's small
/// networks, then the ImageNet architectures.
pub fn models() -> Vec<ZooEntry> {
    let mut all = MODELS.to_vec();
    for (variants, _, _) in FAMILIES {
        all.extend_from_slice(variants);
    }
    all
}

/// Names compare without case, and `-` and `_` are the same (`mobilenet-v2`, `mobilenet_v2`).
fn same_name(a: &str, b: &str) -> bool {
    let key = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    key(a) == key(b)
}

/// The spec of an ImageNet architecture by name, instantiated with `options`.
pub fn imagenet_spec(name: &str, options: &ZooOptions) -> Option<ModelSpec> {
    FAMILIES.iter().find_map(|(variants, build, _)| {
        let entry = variants.iter().find(|e| same_name(e.name, name))?;
        build(entry.name, options)
    })
}

/// The small networks of the course (the ImageNet architectures come from [`FAMILIES`]).
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
    ZooEntry {
        name: "unet",
        description: "U-Net (Ronneberger 2015) for segmentation: depth 4, 64-1024 filters, 1 x 256 x 256, 2 classes",
    },
    ZooEntry {
        name: "unet-small",
        description: "U-Net, depth 3, 16-128 filters, batch norm: 1 x 64 x 64, 11 classes (the generated scenes)",
    },
    ZooEntry {
        name: "unet-small-deep",
        description: "unet-small one level deeper: depth 4, 16-256 filters, 1.9M parameters",
    },
    ZooEntry {
        name: "unet-tiny-yolo",
        description: "U-Net whose contracting path is tiny-yolo's convolutions (fill it from a trained detector with --init): 1 x 64 x 64, 11 classes",
    },
    ZooEntry {
        name: "unet-tiny-yolo-wide",
        description: "the same over tiny-yolo-wide's convolutions",
    },
    ZooEntry {
        name: "unet-small-encoder",
        description: "unet-small's contracting path + global pool + dense: a classifier whose weights start a U-Net (--init)",
    },
    ZooEntry {
        name: "unet-small-deep-encoder",
        description: "the same for unet-small-deep",
    },
    ZooEntry {
        name: "fcn-small",
        description: "FCN-8s-style segmenter (Long 2015): 3 stages, fc6/fc7 as convs, fused skips: 1 x 64 x 64, 11 classes",
    },
    ZooEntry {
        name: "tiny-yolo",
        description: "Tiny-YOLO-style detector: 6 conv-BN-leaky layers, stride 16: 1 x 96 x 96 -> 6 x 6 x 3 anchors x (5 + 10 classes)",
    },
    ZooEntry {
        name: "tiny-yolo-wide",
        description: "tiny-yolo with 512 filters in its last 3x3 convolution: 1.6M parameters instead of 1.0M",
    },
    ZooEntry {
        name: "yolo-resnet18",
        description: "YOLO head on torchvision's ResNet-18 stem and layers 1-3 (stride 16; --init resnet18.pth fills the trunk): 3 x 416 x 416, 3 anchors x (5 + 1 class)",
    },
    ZooEntry {
        name: "yolo-resnet34",
        description: "the same on ResNet-34's trunk",
    },
    ZooEntry {
        name: "tiny-yolo-backbone",
        description: "tiny-yolo's convolutions + global pool + dense (inputs under 48x48 zero-padded to it): a classifier whose weights start the detector (--init)",
    },
    ZooEntry {
        name: "tiny-yolo-wide-backbone",
        description: "the same for tiny-yolo-wide",
    },
];

/// Why a built-in model could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ZooError {
    #[error("unknown model '{name}'; built-in models: {}", models().iter().map(|m| m.name).collect::<Vec<_>>().join(", "))]
    Unknown { name: String },
    #[error("model '{name}' takes {want}; the data's examples are {got:?}")]
    Input {
        name: String,
        want: String,
        got: Vec<usize>,
    },
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Build(#[from] convnet_layers::SpecError),
    #[error(transparent)]
    Layer(#[from] convnet_layers::LayerError),
}

fn normalize(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// The detector whose backbone `name` (`tiny-yolo-backbone`, `tiny-yolo-wide-backbone`) is.
fn tiny_yolo_of_backbone(name: &str) -> Option<TinyYoloConfig> {
    TinyYoloConfig::by_name(name.strip_suffix("-backbone")?)
}

/// The U-Net whose contracting path `name` (`unet-small-encoder`, ...) is.
fn unet_of_encoder(name: &str) -> Option<UNetConfig> {
    UNetConfig::by_name(name.strip_suffix("-encoder")?)
}

fn unknown(name: &str) -> ZooError {
    ZooError::Unknown {
        name: name.to_string(),
    }
}

/// The layer spec of a built-in model in its published form.
pub fn spec(name: &str) -> Result<ModelSpec, ZooError> {
    let normalized = normalize(name);
    // Every built-in U-Net variant, by its own name list.
    if let Some(unet) = UNetConfig::by_name(&normalized) {
        return unet.spec().map_err(ZooError::Config);
    }
    match normalized.as_str() {
        "lenet5" | "lenet-5" | "lenet" => Ok(LeNet5Config::lenet5().spec()),
        "lenet5-fmnist" => Ok(LeNet5Config::fashion_mnist().spec()),
        "fmnist-cnn" => Ok(FmnistCnnConfig::textbook().spec()),
        "signal-cnn" => Ok(SignalCnnConfig::ecg().spec()),
        "volume-cnn" => Ok(VolumeCnnConfig::clips().spec()),
        n @ ("unet-small-encoder" | "unet-small-deep-encoder") => UNetConfig {
            num_classes: 10,
            ..unet_of_encoder(n).ok_or_else(|| unknown(name))?
        }
        .encoder_spec()
        .map_err(ZooError::Config),
        "fcn-small" => FcnConfig::small().spec().map_err(ZooError::Config),
        n @ ("tiny-yolo" | "tiny-yolo-wide") => TinyYoloConfig::by_name(n)
            .ok_or_else(|| unknown(name))?
            .spec()
            .map_err(ZooError::Config),
        n @ ("yolo-resnet18" | "yolo-resnet34") => YoloBackboneConfig::by_name(n)
            .ok_or_else(|| unknown(name))?
            .spec([3, 416, 416], 3, 1)
            .map_err(ZooError::Config),
        n @ ("tiny-yolo-backbone" | "tiny-yolo-wide-backbone") => tiny_yolo_of_backbone(n)
            .ok_or_else(|| unknown(name))?
            .backbone_spec()
            .map_err(ZooError::Config),
        _ => imagenet_spec(name, &ZooOptions::default()).ok_or_else(|| unknown(name)),
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
        (encoder @ ("unet-small-encoder" | "unet-small-deep-encoder"), &[c, h, w]) if h == w => {
            unet_of_encoder(encoder)
                .ok_or_else(|| unknown(name))?
                .fitted([c, h, w], num_classes)
                .and_then(|u| u.encoder_spec())
                .map_err(ZooError::Config)
        }
        ("unet-small-encoder" | "unet-small-deep-encoder", _) => {
            Err(wrong("square images [channels, size, size]"))
        }
        (backbone @ ("tiny-yolo-backbone" | "tiny-yolo-wide-backbone"), &[c, h, w]) => {
            TinyYoloConfig {
                input: [c, h, w],
                classes: num_classes,
                ..tiny_yolo_of_backbone(backbone).ok_or_else(|| unknown(name))?
            }
            .backbone_spec()
            .map_err(ZooError::Config)
        }
        ("tiny-yolo-backbone" | "tiny-yolo-wide-backbone", _) => {
            Err(wrong("square images [channels, size, size]"))
        }
        (_, &[c, h, w]) if h == w => imagenet_spec(
            name,
            &ZooOptions {
                num_classes,
                in_channels: c,
                image_size: Some(h),
            },
        )
        .ok_or_else(|| unknown(name)),
        _ if imagenet_spec(name, &ZooOptions::default()).is_some() => {
            Err(wrong("square images [channels, size, size]"))
        }
        _ => Err(unknown(name)),
    }
}

/// The names of the built-in segmentation networks.
pub const SEGMENTERS: &[&str] = &[
    "unet",
    "unet-small",
    "unet-small-deep",
    "unet-tiny-yolo",
    "unet-tiny-yolo-wide",
    "fcn-small",
];

/// The spec of a built-in segmentation network for pictures of shape `input` (`[C, H, W]`)
/// and `num_classes` classes; every pixel gets a score per class.
pub fn segmenter_spec(
    name: &str,
    input: &[usize],
    num_classes: usize,
) -> Result<ModelSpec, ZooError> {
    let &[c, h, w] = input else {
        return Err(ZooError::Input {
            name: name.to_string(),
            want: "pictures [channels, size, size]".into(),
            got: input.to_vec(),
        });
    };
    let input = [c, h, w];
    let normalized = normalize(name);
    let spec = if let Some(unet) = UNetConfig::by_name(&normalized) {
        unet.fitted(input, num_classes).and_then(|u| u.spec())
    } else if normalized == "fcn-small" {
        FcnConfig::small()
            .fitted(input, num_classes)
            .and_then(|f| f.spec())
    } else {
        return Err(ZooError::Config(format!(
            "'{name}' is not a segmentation network; built-in ones: {}",
            SEGMENTERS.join(", ")
        )));
    };
    spec.map_err(ZooError::Config)
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
    fn imagenet_names_and_recipes() {
        let names = imagenet_classes();
        assert_eq!(names.len(), 1000);
        assert_eq!(names[0], "tench");
        assert_eq!(names[999], "toilet tissue");
        let resnet = input_recipe("resnet50").unwrap();
        assert_eq!(
            (resnet.preset, resnet.crop, resnet.resize),
            ("imagenet", 224, 256)
        );
        let b3 = input_recipe("efficientnet-b3").unwrap();
        assert_eq!((b3.crop, b3.resize, b3.bicubic), (300, 320, true));
        assert_eq!(input_recipe("xception").unwrap().preset, "tf");
        assert_eq!(input_recipe("mobilenet").unwrap().crop, 224);
        assert!(input_recipe("lenet5").is_none());
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
        // Parameters are created lazily: summarising even EfficientNet-B7 allocates no weights.
        for entry in models() {
            let s = summary(entry.name, &device).unwrap();
            assert!(s.total_params > 0, "{}", entry.name);
        }
        let err = summary("lenet7", &device).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "unknown model 'lenet7'; built-in models: lenet5, lenet5-fmnist, fmnist-cnn, signal-cnn, volume-cnn, unet, unet-small, unet-small-deep, unet-tiny-yolo, unet-tiny-yolo-wide, unet-small-encoder, unet-small-deep-encoder, fcn-small, tiny-yolo, tiny-yolo-wide, yolo-resnet18, yolo-resnet34, tiny-yolo-backbone, tiny-yolo-wide-backbone, alexnet, vgg11,"
            ),
            "{err}"
        );
        assert!(err.ends_with(", xception, tiny-face"), "{err}");
    }
}
