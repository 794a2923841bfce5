//! ONNX models as applications use them: one picture in, the first output back, with the
//! input recipe and class names that `convnet export` stores in the file.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, TensorData};
use convnet_graph::OnnxModel;

/// An `.onnx` file, or a TF.js graph model (`model.json`) translated to ONNX.
pub fn open(path: &Path) -> Result<OnnxModel> {
    if convnet_graph::tfjs::is_graph_model(path) {
        return open_graph_model(path);
    }
    Ok(OnnxModel::open(path)?)
}

/// A TF.js graph model translated, with [`graph_model_recipe`] stored as its recipe.
pub fn open_graph_model(path: &Path) -> Result<OnnxModel> {
    let mut metadata = vec![(
        "preprocessing".into(),
        serde_json::to_string(&graph_model_recipe(path, [1, 1]))?,
    )];
    // The human package's person segmenters: one probability map (selfie) or background and
    // person scores (meet).
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if stem.starts_with("selfie") || stem.starts_with("meet") {
        metadata.push(("classes".into(), r#"["background","person"]"#.into()));
    }
    let options = convnet_graph::tfjs::Options {
        outputs: None,
        metadata,
    };
    Ok(convnet_graph::tfjs::open_with(path, &options)?)
}

/// How the human package's JavaScript feeds its TF.js models, the picture stretched to the
/// `[h, w]` input (bilinear): 0–255 pixels for CenterNet, 0–1 for the others (NanoDet, selfie,
/// meet; the usual scale of TF.js models).
pub fn graph_model_recipe(path: &Path, size: [usize; 2]) -> convnet_data::Preprocess {
    use convnet_data::preprocess::{Interpolation, Resize};
    let centernet = path
        .file_stem()
        .is_some_and(|s| s.to_string_lossy().to_lowercase().starts_with("centernet"));
    convnet_data::Preprocess {
        name: "tfjs".into(),
        size,
        resize: Resize::Stretch,
        interpolation: Interpolation::Bilinear,
        scale: if centernet { 1.0 } else { 1.0 / 255.0 },
        mean: [0.0; 3],
        std: [1.0; 3],
        bgr: false,
    }
}

/// The value of a metadata property the exporter writes (`convnet export`), if present.
pub fn metadata<'a>(model: &'a OnnxModel, key: &str) -> Option<&'a str> {
    model
        .metadata()
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The single image input's `[C, H, W]` where known (`None` for a dynamic axis).
pub fn image_input(model: &OnnxModel, path: &Path) -> Result<[Option<usize>; 3]> {
    let [input] = model.inputs() else {
        bail!(
            "{} takes {} inputs; an image model takes one (use `convnet infer`)",
            path.display(),
            model.inputs().len()
        );
    };
    let &[_, c, h, w] = input.shape.as_slice() else {
        bail!(
            "{}: its input {} is {}, not an image batch [N, C, H, W] (use `convnet infer`)",
            path.display(),
            input.name,
            input.shape_text()
        );
    };
    Ok([c, h, w])
}

/// Runs a one-input model on a `[1, C, H, W]` picture and returns its first output.
pub fn run_picture(
    model: &OnnxModel,
    pixels: Vec<f32>,
    chw: [usize; 3],
    device: &Device,
) -> Result<TensorData> {
    let [c, h, w] = chw;
    let out = model.run(&[TensorData::new(pixels, [1, c, h, w])], device)?;
    out.into_iter().next().context("the model has no output")
}

/// Class names the exporter stored (`classes`: a JSON list), if any.
pub fn stored_classes(model: &OnnxModel) -> Option<Vec<String>> {
    serde_json::from_str(metadata(model, "classes")?).ok()
}

/// How pictures become this model's input: `--preprocess` names a preset; else the recipe the
/// exporter stored (`preprocessing`); else torchvision's ImageNet recipe. The size is the
/// model's own where its input states one; where it does not, the picture's, scaled so its
/// shorter side is `--size` if given, rounded up to a multiple of 32 (fully convolutional
/// networks halve their input five times). `whole` keeps the whole picture (stretched), as a per-pixel
/// map needs; classifiers crop as their recipe says.
pub fn recipe(
    model: &OnnxModel,
    path: &Path,
    preset: Option<&str>,
    size: Option<usize>,
    picture: (u32, u32),
    whole: bool,
) -> Result<convnet_data::Preprocess> {
    use convnet_data::{Preprocess, Resize};
    let [c, h, w] = image_input(model, path)?;
    if c.is_some_and(|c| c != 3) {
        bail!(
            "{} takes {} channels; pictures are made into 3 (RGB)",
            path.display(),
            c.unwrap_or_default()
        );
    }
    let [h, w] = match (h, w, size) {
        (Some(h), Some(w), Some(s)) if (h, w) != (s, s) => {
            bail!(
                "{} takes {h}x{w} pictures; --size {s} does not fit it",
                path.display()
            )
        }
        (Some(h), Some(w), _) => [h, w],
        (h, w, size) => {
            // Free axes follow the picture: scaled so its shorter side is `--size` (PaddleOCR's
            // `limit_type: min`), else as it is; then up to a multiple of 32.
            let (pw, ph) = (f64::from(picture.0.max(1)), f64::from(picture.1.max(1)));
            let scale = size.map_or(1.0, |s| s as f64 / pw.min(ph));
            let round = |n: f64| ((n * scale).round() as usize).div_ceil(32).max(1) * 32;
            let (sh, sw) = (round(ph), round(pw));
            convnet_layers::Bytes::of(&[sh, sw], 3).check(&format!(
                "the network input for a {}x{} picture",
                picture.0, picture.1
            ))?;
            [h.unwrap_or(sh), w.unwrap_or(sw)]
        }
    };
    let stored: Option<Preprocess> =
        metadata(model, "preprocessing").and_then(|p| serde_json::from_str(p).ok());
    let mut p = match (preset, stored) {
        (Some(name), _) => Preprocess::named(name, h.max(w))?,
        (None, Some(stored)) => stored,
        (None, None) => Preprocess::named("imagenet", h.max(w))?,
    };
    p.size = [h, w];
    if whole || h != w {
        p.resize = Resize::Stretch;
    }
    Ok(p)
}
