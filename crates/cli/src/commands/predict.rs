//! `convnet predict`: the most likely classes of image files, from one trained model or the
//! averaged probabilities of several.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use convnet_data::{Examples, ImageSet, TensorSet, folder, read_npy};
use serde_json::json;

use convnet_apps::classify::{Classifier, ClassifierSource, ClassifyOptions, Ensemble};
use convnet_apps::models;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A checkpoint file or a run directory (its best checkpoint), then the files to classify:
    /// images (PNG or JPEG), each converted to the model's channels, resized and centre-cropped
    /// to its input size, or `.npy` arrays holding one example or a batch of them (for signal
    /// and volume models). With --model and --weights: image files only.
    #[arg(required = true, value_name = "CHECKPOINT | FILE")]
    paths: Vec<PathBuf>,

    /// More checkpoints whose probabilities are averaged with the first.
    #[arg(long, num_args = 1.., value_name = "CKPT", conflicts_with = "model")]
    ensemble: Vec<PathBuf>,

    /// Classify with a pretrained architecture instead of a checkpoint: a built-in model (see
    /// `convnet models`) or a spec file, with --weights; or an ONNX classifier (`.onnx`, its
    /// weights inside; its output is taken as logits unless its rows already sum to 1).
    #[arg(long)]
    model: Option<String>,

    /// The pretrained weights for --model: a PyTorch state_dict (`.pth`) or `.safetensors`
    /// file with torchvision's names.
    #[arg(long, requires = "model")]
    weights: Option<PathBuf>,

    /// Preprocessing for --model: `imagenet` (torchvision), `caffe` (BGR, means subtracted)
    /// or `tf` ([-1, 1]); default: the recipe the model's published weights were trained with
    /// (for an ONNX file: the recipe `convnet export` stored in it, else `imagenet`).
    #[arg(long, requires = "model", value_name = "PRESET")]
    preprocess: Option<String>,

    /// Input side for --model (default: the published weights').
    #[arg(long, requires = "model", value_parser = super::args::image_side, allow_negative_numbers = true)]
    size: Option<usize>,

    /// Class names for --model, one per line (default: ImageNet's for 1000 classes).
    #[arg(long, requires = "model", value_name = "FILE")]
    labels: Option<PathBuf>,

    /// How many classes to show per image.
    #[arg(long, default_value_t = 3)]
    top: usize,

    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, device: &Device) -> Result<()> {
    if args.top == 0 {
        bail!("--top must be at least 1");
    }
    let options = ClassifyOptions {
        preprocess: args.preprocess.clone(),
        size: args.size,
        labels: args.labels.clone(),
    };
    let (names, classes, probs) = match (&args.model, &args.weights) {
        (Some(model), None) if models::is_onnx(model) => {
            let source = ClassifierSource::Onnx(PathBuf::from(model));
            pictures_probabilities(&args.paths, &source, &options, device)?
        }
        (Some(model), Some(weights)) if !models::is_onnx(model) => {
            let source = ClassifierSource::Pretrained {
                model: model.clone(),
                weights: weights.clone(),
            };
            pictures_probabilities(&args.paths, &source, &options, device)?
        }
        (Some(model), Some(_)) => bail!("{model} holds its own weights: leave out --weights"),
        (Some(_), None) => bail!("--model NAME needs --weights FILE (a .pth or .safetensors file)"),
        _ => {
            let [checkpoint, images @ ..] = args.paths.as_slice() else {
                unreachable!("clap requires at least one path");
            };
            if images.is_empty() {
                bail!(
                    "give the files to classify after the checkpoint (or classify with --model NAME --weights FILE)"
                );
            }
            let mut paths = vec![checkpoint.clone()];
            paths.extend(args.ensemble.iter().cloned());
            let ensemble = Ensemble::load(&paths, device)?;
            let shape = ensemble.input().to_vec();
            let classes = ensemble.classes().to_vec();
            let (set, names) = inputs(images, &shape, &classes)?;
            let probs = ensemble.probabilities(set, device, |_| {})?;
            (names, classes, probs)
        }
    };
    let k = classes.len();
    let top = args.top.min(k);
    let mut results = Vec::new();
    for (i, image) in names.iter().enumerate() {
        let row = &probs[i * k..(i + 1) * k];
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        let best: Vec<(usize, String, f32)> = order[..top]
            .iter()
            .map(|&c| (c, classes[c].clone(), row[c]))
            .collect();
        results.push((image.clone(), best));
    }
    if args.json {
        let out: Vec<_> = results
            .iter()
            .map(|(image, best)| {
                json!({
                    "image": image,
                    "predictions": best.iter().map(|(i, c, p)| json!({"index": i, "class": c, "probability": p})).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "results": out }))?
        );
        return Ok(());
    }
    for (image, best) in results {
        let text: Vec<String> = best
            .iter()
            .map(|(_, c, p)| format!("{c} {:.1}%", 100.0 * p))
            .collect();
        println!("{image}: {}", text.join(", "));
    }
    Ok(())
}

/// Image names, class names and class probabilities (`[N, classes]` row-major) of picture
/// files from a pretrained or ONNX classifier, eight pictures decoded at a time.
fn pictures_probabilities(
    paths: &[PathBuf],
    source: &ClassifierSource,
    options: &ClassifyOptions,
    device: &Device,
) -> Result<(Vec<String>, Vec<String>, Vec<f32>)> {
    let classifier = Classifier::open(source, options, device)?;
    let (mut classes, mut probs) = (Vec::new(), Vec::new());
    for chunk in paths.chunks(8) {
        let pictures = chunk
            .iter()
            .map(|p| {
                convnet_data::folder::decode_image(p)
                    .with_context(|| format!("cannot use {}", p.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        let (names, p) =
            classifier.probabilities(&pictures, |i| chunk[i].display().to_string(), device)?;
        classes = names;
        probs.extend(p);
    }
    let files = paths.iter().map(|p| p.display().to_string()).collect();
    Ok((files, classes, probs))
}

/// The examples to classify, with a name for each: an image file, or `FILE[i]` for the i-th
/// example of a `.npy` batch. Labels are unknown; class 0 stands in so the examples travel as
/// an ordinary set.
fn inputs(
    files: &[PathBuf],
    shape: &[usize],
    classes: &[String],
) -> Result<(Arc<dyn Examples>, Vec<String>)> {
    let npy = |p: &PathBuf| p.extension().is_some_and(|e| e == "npy");
    if files.iter().all(npy) {
        let (mut data, mut names) = (Vec::new(), Vec::new());
        for file in files {
            let array = read_npy(file)?;
            let dims = array.shape.clone();
            let per_example = shape.iter().product();
            let values = array
                .data
                .into_f32(per_example)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let n = if dims == shape {
                names.push(file.display().to_string());
                1
            } else if dims.len() == shape.len() + 1 && dims[1..] == *shape {
                let n = dims[0];
                names.extend((0..n).map(|i| format!("{}[{i}]", file.display())));
                n
            } else {
                bail!(
                    "{}: the model takes examples of shape {shape:?} (or a batch [N, ...] of them), the array is {:?}",
                    file.display(),
                    dims
                );
            };
            debug_assert_eq!(values.len(), n * per_example);
            data.extend(values);
        }
        let set = TensorSet::new(data, vec![0; names.len()], shape.to_vec(), classes.to_vec())?;
        return Ok((Arc::new(set), names));
    }
    let &[c, h, w] = shape else {
        bail!("this model takes examples of shape {shape:?}, not images: pass .npy arrays");
    };
    let mut pixels = Vec::new();
    for image in files {
        pixels.extend(
            folder::load_image_file(image, [c, h, w])
                .with_context(|| format!("cannot use {}", image.display()))?,
        );
    }
    let set = ImageSet::new(pixels, vec![0; files.len()], [c, h, w], classes.to_vec())?;
    let names = files.iter().map(|f| f.display().to_string()).collect();
    Ok((Arc::new(set), names))
}
