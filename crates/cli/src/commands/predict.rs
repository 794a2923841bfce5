//! `convnet predict`: the most likely classes of image files, from one trained model or the
//! averaged probabilities of several.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use convnet_data::{Examples, ImageSet, TensorSet, folder, read_npy};
use serde_json::json;

use convnet_layers::Mode;

use super::classifier::Ensemble;
use super::{onnx, pretrained};

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
    let (names, classes, probs) = match (&args.model, &args.weights) {
        (Some(model), None) if onnx::is_onnx(model) => {
            onnx_probabilities(&args, Path::new(model), device)?
        }
        (Some(model), Some(weights)) if !onnx::is_onnx(model) => {
            pretrained_probabilities(&args, model, weights, device)?
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

/// Image names, class names and class probabilities (`[N, classes]` row-major) from a
/// pretrained model: each image is preprocessed as the weights expect, then run in batches.
fn pretrained_probabilities(
    args: &Args,
    model: &str,
    weights: &Path,
    device: &Device,
) -> Result<(Vec<String>, Vec<String>, Vec<f32>)> {
    let recipe = pretrained::preprocess_for(model, args.preprocess.as_deref(), args.size)?;
    let [h, w] = recipe.size;
    let input = [3, h, w];
    let dict = pretrained::read_weights(weights, device)?;
    let mut spec = pretrained::spec_for(model, Some(&input), 1000)?;
    if !pretrained::is_spec_file(model)
        && let Some(classes) = pretrained::classes_in(&spec, &dict, device)?
    {
        spec = pretrained::spec_for(model, Some(&input), classes)?;
    }
    let (net, _) = pretrained::load(&spec, &dict, false, weights, device)?;
    let classes = net.output_shape()?.dims().iter().product();
    let names = pretrained::class_names(args.labels.as_deref(), classes)?;
    let mut probs = Vec::with_capacity(args.paths.len() * classes);
    for chunk in args.paths.chunks(8) {
        let mut pixels = Vec::with_capacity(chunk.len() * 3 * h * w);
        for image in chunk {
            pixels.extend(
                recipe
                    .load(image)
                    .with_context(|| format!("cannot use {}", image.display()))?,
            );
        }
        let x = Tensor::<4>::from_data(TensorData::new(pixels, [chunk.len(), 3, h, w]), device);
        let logits = net.forward_logits(x, Mode::Eval)?;
        probs.extend(
            softmax(logits, 1)
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()?,
        );
    }
    let files = args.paths.iter().map(|p| p.display().to_string()).collect();
    Ok((files, names, probs))
}

/// Image names, class names and probabilities from an ONNX classifier, one picture at a time
/// (its batch axis may be fixed at 1).
fn onnx_probabilities(
    args: &Args,
    path: &Path,
    device: &Device,
) -> Result<(Vec<String>, Vec<String>, Vec<f32>)> {
    let model = onnx::open(path)?;
    let mut probs = Vec::new();
    let mut classes = 0;
    for image in &args.paths {
        let picture = convnet_data::folder::decode_image(image)?;
        let recipe = onnx::recipe(
            &model,
            path,
            args.preprocess.as_deref(),
            args.size,
            (picture.width(), picture.height()),
            false,
        )?;
        let [h, w] = recipe.size;
        let pixels = recipe
            .apply(&picture)
            .with_context(|| format!("cannot use {}", image.display()))?;
        let out = onnx::run_picture(&model, pixels, [3, h, w], device)?;
        let row = out
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        if classes != 0 && row.len() != classes || row.is_empty() {
            bail!(
                "{}: the output has {} values per picture; a classifier's is one score per class",
                path.display(),
                row.len()
            );
        }
        classes = row.len();
        let sum: f32 = row.iter().sum();
        let is_probability =
            row.iter().all(|&p| (0.0..=1.0).contains(&p)) && (sum - 1.0).abs() < 1e-3;
        if is_probability {
            probs.extend(row);
        } else {
            let x = Tensor::<2>::from_data(TensorData::new(row, [1, classes]), device);
            probs.extend(
                softmax(x, 1)
                    .into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()?,
            );
        }
    }
    let names = match (&args.labels, onnx::stored_classes(&model)) {
        (None, Some(stored)) if stored.len() == classes => stored,
        _ => pretrained::class_names(args.labels.as_deref(), classes)?,
    };
    let files = args.paths.iter().map(|p| p.display().to_string()).collect();
    Ok((files, names, probs))
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
