//! Models named by the user with weights from a file: a zoo architecture or a spec file, and a
//! PyTorch `.pth`, a `.safetensors` file or a convnet checkpoint, matched by the tensors'
//! (torchvision) names; and where the files that scripts fetch are found.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use convnet_layers::{ModelSpec, Sequential};
use convnet_train::Checkpoint;
use convnet_weights::{LoadOptions, LoadReport, StateDict};
use convnet_zoo::ZooOptions;

/// `relative` under the current folder, or under the folder two levels above the binary
/// (`target/release/convnet` in a checkout).
pub fn find_default(relative: &str) -> Option<PathBuf> {
    let here = PathBuf::from(relative);
    if here.is_file() {
        return Some(here);
    }
    let exe = std::env::current_exe().ok()?;
    let root = exe.parent()?.parent()?.parent()?;
    Some(root.join(relative)).filter(|p| p.is_file())
}

/// The run directory of a checkpoint: `RUN/checkpoints/x.ckpt` -> `RUN`; a checkpoint
/// elsewhere -> its folder.
pub fn run_dir_of(checkpoint: &Path) -> PathBuf {
    let folder = checkpoint.parent().unwrap_or(Path::new("."));
    match folder.file_name() {
        Some(n) if n == convnet_train::checkpoint::CHECKPOINT_DIR => {
            folder.parent().unwrap_or(Path::new(".")).to_path_buf()
        }
        _ => folder.to_path_buf(),
    }
}

/// Whether `model` names an ONNX file, or a TF.js graph model (run as ONNX once translated).
pub fn is_onnx(model: &str) -> bool {
    Path::new(model)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
        || convnet_graph::tfjs::is_graph_model(Path::new(model))
}

/// Whether `model` names a spec file rather than a built-in model.
pub fn is_spec_file(model: &str) -> bool {
    let path = Path::new(model);
    path.extension().is_some_and(|e| e == "toml") || path.is_file()
}

/// The spec of `model` for images of `input` (`[C, H, W]`, square for zoo models) and
/// `num_classes` outputs; a spec file must already take `input` when one is given.
pub fn spec_for(model: &str, input: Option<&[usize]>, num_classes: usize) -> Result<ModelSpec> {
    if is_spec_file(model) {
        let spec = ModelSpec::from_file(Path::new(model))?;
        if let Some(input) = input
            && spec.input != input
        {
            bail!(
                "{model}: the model takes examples of shape {:?}, the input is {input:?}",
                spec.input
            );
        }
        return Ok(spec);
    }
    let mut options = ZooOptions {
        num_classes,
        ..ZooOptions::default()
    };
    if let Some(input) = input {
        let &[c, h, w] = input else {
            bail!("{model} takes images [channels, height, width], the input is {input:?}");
        };
        if h != w {
            bail!("{model} takes square images; the input is {h}x{w}");
        }
        options.in_channels = c;
        options.image_size = Some(h);
    }
    match convnet_zoo::imagenet_spec(model, &options) {
        Some(spec) => Ok(spec),
        None => Ok(convnet_zoo::classifier_spec(
            model,
            input.unwrap_or(&convnet_zoo::spec(model)?.input),
            num_classes,
        )?),
    }
}

/// The tensors of a weights file under torchvision names: a convnet checkpoint is converted
/// through its own model, a TF.js weights manifest (`*.json`, face-api.js's models) through
/// its layouts; anything else is read as a PyTorch or safetensors state_dict.
pub fn read_weights(path: &Path, device: &Device) -> Result<StateDict> {
    if path.is_dir() || Checkpoint::is_checkpoint(path) {
        let path = Checkpoint::resolve(path)?;
        let ckpt = Checkpoint::load(&path)?;
        let model = ckpt.model(&path, device)?;
        return Ok(convnet_weights::to_state_dict(&model)?);
    }
    if convnet_weights::is_manifest(path) {
        return Ok(convnet_weights::read_tfjs(path)?);
    }
    Ok(convnet_weights::read(path)?)
}

/// The class count a state_dict's classifier was trained for: the output size of the last
/// dense layer `spec` would load, when the file has that tensor.
pub fn classes_in(spec: &ModelSpec, dict: &StateDict, device: &Device) -> Result<Option<usize>> {
    let model = spec.build(device)?;
    let last_dense = convnet_weights::expected(&model)
        .into_iter()
        .rev()
        .find(|(key, shape)| key.ends_with(".weight") && shape.len() == 2);
    Ok(last_dense.and_then(|(key, _)| dict.get(&key).and_then(|t| t.shape.first().copied())))
}

/// Builds `spec` and loads `dict` into it by name.
pub fn load(
    spec: &ModelSpec,
    dict: &StateDict,
    allow_partial: bool,
    weights: &Path,
    device: &Device,
) -> Result<(Sequential, LoadReport)> {
    let model = spec.build(device)?;
    convnet_weights::load(model, dict, &LoadOptions { allow_partial })
        .with_context(|| format!("cannot load {} into {}", weights.display(), spec.name))
}

/// `spec` built with the tensors of `weights` (a checkpoint, run directory, `.pth` or
/// `.safetensors`) that its layers name, exactly or nested deeper
/// ([`convnet_weights::nest_into`]); the other layers keep their fresh initialisation. A file
/// that fills nothing, or a named tensor of another shape, is an error: both mean weights made
/// for another network.
pub fn initial_model(
    spec: &ModelSpec,
    weights: &Path,
    device: &Device,
) -> Result<(Sequential, LoadReport)> {
    let dict = read_weights(weights, device)?;
    let model = spec.build(device)?;
    let keys = convnet_weights::expected(&model);
    let dict = convnet_weights::nest_into(&dict, keys.iter().map(|(k, _)| k.as_str()))
        .map_err(anyhow::Error::msg)?;
    let (model, report) = convnet_weights::load(model, &dict, &LoadOptions::partial())
        .with_context(|| format!("cannot load {} into {}", weights.display(), spec.name))?;
    if !report.mismatched.is_empty() {
        bail!(
            "{} does not fit {}: {}",
            weights.display(),
            spec.name,
            report
                .mismatched
                .iter()
                .map(|m| format!("{} (model {:?}, file {:?})", m.key, m.expected, m.found))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if report.loaded.is_empty() {
        bail!(
            "no tensor of {} belongs to {}: none of its {} names is a layer of the model, even nested",
            weights.display(),
            spec.name,
            report.unexpected.len()
        );
    }
    Ok((model, report))
}

/// The preprocessing for `model`'s pretrained weights: the recipe its published weights were
/// trained with (`convnet_zoo::input_recipe`), or torchvision's ImageNet recipe at the model's
/// own input size for spec files and the course's networks. `preset` (imagenet, caffe, tf)
/// replaces the recipe's normalisation; `size` its input side (the resize scales along).
pub fn preprocess_for(
    model: &str,
    preset: Option<&str>,
    size: Option<usize>,
) -> Result<convnet_data::Preprocess> {
    use convnet_data::{Interpolation, Preprocess, Resize};
    let recipe = match convnet_zoo::input_recipe(model) {
        Some(recipe) => recipe,
        None => {
            let input = spec_for(model, None, 1000)?.input;
            let &[3, h, w] = input.as_slice() else {
                bail!(
                    "{model} takes examples of shape {input:?}; pretrained preprocessing makes RGB images [3, H, W] (use `convnet infer` with a prepared .npy)"
                );
            };
            if h != w {
                bail!("{model} takes {h}x{w} images; preprocessing makes square ones");
            }
            convnet_zoo::InputRecipe {
                crop: h,
                resize: (h * 256).div_ceil(224),
                ..convnet_zoo::InputRecipe::torchvision(model)
            }
        }
    };
    let crop = size.unwrap_or(recipe.crop);
    if crop == 0 {
        bail!("--size must be at least 1");
    }
    let mut p = Preprocess::named(preset.unwrap_or(recipe.preset), crop)?;
    // The published recipe decides how the picture is cut; a preset named on the command line
    // decides only how values are scaled.
    p.resize = match recipe.preset {
        "imagenet" => Resize::CenterCrop {
            shorter: (recipe.resize * crop).div_ceil(recipe.crop),
        },
        "faceapi" => Resize::PadToSquare,
        _ => Resize::CropToAspect,
    };
    if recipe.bicubic {
        p.interpolation = Interpolation::Bicubic;
    }
    Ok(p)
}

/// Class names for a classifier with `classes` outputs: a file with one name per line, else
/// ImageNet's for 1000 outputs, else `class 0`, `class 1`...
pub fn class_names(labels: Option<&Path>, classes: usize) -> Result<Vec<String>> {
    if let Some(path) = labels {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the class names in {}", path.display()))?;
        let names: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        if names.len() != classes {
            bail!(
                "{} has {} class names, the model has {classes} outputs",
                path.display(),
                names.len()
            );
        }
        return Ok(names);
    }
    if classes == 1000 {
        return Ok(convnet_zoo::imagenet_classes()
            .into_iter()
            .map(String::from)
            .collect());
    }
    Ok((0..classes).map(|c| format!("class {c}")).collect())
}
