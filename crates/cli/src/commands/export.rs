//! `convnet export`: a built-in model, a spec file, a training run or a checkpoint written as
//! an ONNX file, with its class names and preprocessing recipe in the file's metadata.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use convnet_graph::export::{DEFAULT_OPSET, ExportOptions, Metadata};
use convnet_layers::{ModelSpec, Sequential};
use convnet_train::Checkpoint;
use serde_json::{Value, json};

use super::pretrained;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
The graph is written from the model's layers in inference form: dropout is the identity, batch \
norm uses its running statistics, auxiliary classifiers are left out. Weights are initializers \
named as convnet's state dicts name them (torchvision's keys). The file's metadata_props say \
what its user needs: input_name / input_layout / input_shape, output_name / output_shape, \
classes (JSON) and preprocessing (JSON), and convnet_spec (the model spec, TOML).

Examples:
  convnet export resnet18 --weights resnet18.pth -o resnet18.onnx --dynamic-batch
  convnet export runs/lenet -o lenet.onnx
  convnet export unet-small --size 128 128 -o unet.onnx")]
pub struct Args {
    /// What to export: a built-in model (see `convnet models`), a model spec file (`.toml`), a
    /// training run directory (its best checkpoint) or a checkpoint file. Classifier,
    /// detector, segmentation and embedding runs all export.
    #[arg(value_name = "MODEL | RUN | CHECKPOINT")]
    source: String,

    /// Where to write the `.onnx` file (written whole or not at all).
    #[arg(long, short, value_name = "FILE")]
    output: PathBuf,

    /// Weights for a built-in model or spec file: a PyTorch state_dict (`.pth`), a
    /// `.safetensors` file or a convnet checkpoint, matched by (torchvision) name. Without
    /// it the file holds freshly initialised weights. A run or checkpoint brings its own.
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,

    /// Classes of a built-in model's classifier (default: what --weights has, else the
    /// model's own).
    #[arg(long, value_name = "N")]
    num_classes: Option<usize>,

    /// Class names for a built-in model or spec file, one per line (default: ImageNet's for
    /// 1000 classes, else `class 0`, `class 1`...). A run's come from the run.
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,

    /// The ONNX opset to write: 13 to 21.
    #[arg(long, default_value_t = DEFAULT_OPSET, allow_negative_numbers = true)]
    opset: i64,

    /// Make the batch axis symbolic (`N`) instead of 1.
    #[arg(long)]
    dynamic_batch: bool,

    /// The input's spatial size, for models that take any size (fully convolutional
    /// networks, global pooling): `H W` for images (`L` for signals, `D H W` for volumes).
    /// A built-in ImageNet model is instantiated at that size, as `convnet infer` does.
    #[arg(long, num_args = 1..=3, value_name = "SIZE", value_parser = super::args::image_side, allow_negative_numbers = true)]
    size: Option<Vec<usize>>,

    /// Print one JSON object describing what was written.
    #[arg(long)]
    json: bool,
}

/// The model to write and what the file should say about it.
struct Source {
    model: Sequential,
    options: ExportOptions,
    /// Whether the weights were freshly initialised (no --weights for a built-in model).
    fresh: bool,
}

pub fn run(args: Args, device: &Device) -> Result<()> {
    // Checked before a large model is read.
    convnet_graph::export::check_opset(args.opset)?;
    let path = Path::new(&args.source);
    let source = if path.is_dir() || Checkpoint::is_checkpoint(path) {
        from_run(&args, path, device)?
    } else {
        from_model(&args, device)?
    };
    let Source {
        model,
        mut options,
        fresh,
    } = source;
    options.opset = args.opset;
    options.dynamic_batch = args.dynamic_batch;
    let exported = convnet_graph::export::export(&model, &options)?;
    let bytes = exported.to_bytes()?;
    convnet_train::write_atomically(&args.output, &bytes)?;
    let shape = |s: &[Option<usize>]| -> Vec<Value> {
        s.iter()
            .map(|d| d.map_or(json!("N"), |v| json!(v)))
            .collect()
    };
    if args.json {
        let out = json!({
            "model": model.name(),
            "output": args.output,
            "bytes": bytes.len(),
            "opset": args.opset,
            "input": {"name": convnet_graph::export::INPUT_NAME, "shape": shape(&exported.input)},
            "outputs": {"name": convnet_graph::export::OUTPUT_NAME, "shape": shape(&exported.output)},
            "nodes": exported.nodes,
            "parameters": exported.parameters,
            "classes": options.metadata.classes.len(),
            "fresh_weights": fresh,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let dims = |s: &[Option<usize>]| -> String {
            s.iter()
                .map(|d| d.map_or("N".to_string(), |v| v.to_string()))
                .collect::<Vec<_>>()
                .join("x")
        };
        println!(
            "{}: wrote {} ({} bytes, opset {}): input '{}' {} -> output '{}' {}, {} nodes, {} parameters",
            model.name(),
            args.output.display(),
            bytes.len(),
            args.opset,
            convnet_graph::export::INPUT_NAME,
            dims(&exported.input),
            convnet_graph::export::OUTPUT_NAME,
            dims(&exported.output),
            exported.nodes,
            exported.parameters
        );
    }
    if fresh {
        eprintln!("note: no --weights: the file holds freshly initialised weights");
    }
    Ok(())
}

/// A run directory or checkpoint file: the stored spec and weights, its classes and input
/// normalisation; a detector's head file and an embedding run's unit-length outputs.
fn from_run(args: &Args, path: &Path, device: &Device) -> Result<Source> {
    if args.weights.is_some() || args.num_classes.is_some() || args.labels.is_some() {
        bail!(
            "{} is a run or checkpoint, which brings its own weights and classes: leave out --weights, --num-classes and --labels",
            path.display()
        );
    }
    let checkpoint = Checkpoint::resolve(path)?;
    let ckpt = Checkpoint::load(&checkpoint)?;
    let model = ckpt.model(&checkpoint, device)?;
    let run_dir = convnet_apps::models::run_dir_of(&checkpoint);
    let n = &ckpt.meta.normalization;
    let mut metadata = Metadata {
        classes: ckpt.meta.classes.clone(),
        preprocessing: Some(json!({
            "formula": "(x - mean[c]) / std[c]",
            "x": "a pixel divided by 255 for image data, the stored value for .npy data",
            "mean": n.mean,
            "std": n.std,
        })),
        extra: vec![("convnet_spec".into(), ckpt.meta.spec.clone())],
    };
    let mut options = ExportOptions {
        size: args.size.clone(),
        ..ExportOptions::default()
    };
    if let Some(dir) = convnet_apps::detect::detector_run_of(&checkpoint) {
        let head_path = dir.join(convnet_apps::detect::HEAD_FILE);
        let text = std::fs::read_to_string(&head_path)
            .with_context(|| format!("cannot read {}", head_path.display()))?;
        let head: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a detector's head file", head_path.display()))?;
        if let Some(classes) = head.get("classes").and_then(Value::as_array) {
            metadata.classes = classes
                .iter()
                .filter_map(|c| c.as_str().map(String::from))
                .collect();
        }
        metadata.extra.push((
            "detector_head".into(),
            json!({"anchors": head.get("anchors"), "input": head.get("input")}).to_string(),
        ));
    }
    if run_dir
        .join(convnet_train::embedding::EMBEDDING_FILE)
        .is_file()
    {
        // The classes are those it was trained on; its output is an embedding, not scores.
        options.normalize_output = true;
        metadata.extra.push((
            "output_meaning".into(),
            "unit-length (L2-normalised) embeddings".into(),
        ));
    }
    options.metadata = metadata;
    Ok(Source {
        model,
        options,
        fresh: false,
    })
}

/// A built-in model or spec file, with --weights or freshly initialised.
fn from_model(args: &Args, device: &Device) -> Result<Source> {
    let name = args.source.as_str();
    let spec_file = pretrained::is_spec_file(name);
    let base = if spec_file {
        ModelSpec::from_file(Path::new(name))?
    } else {
        convnet_zoo::spec(name)?
    };
    let own_classes = base
        .build_unallocated(device)?
        .output_shape()?
        .dims()
        .first()
        .copied()
        .unwrap_or(1);
    let dict = match &args.weights {
        Some(w) => Some(pretrained::read_weights(w, device)?),
        None => None,
    };
    // A built-in image model at a square --size is instantiated at that size, as `convnet
    // infer` instantiates it for its input; other sizes go to the exporter as they are.
    let square = match (args.size.as_deref(), base.input.as_slice()) {
        (Some(&[h, w]), &[c, _, _]) if !spec_file && h == w => Some(vec![c, h, w]),
        _ => None,
    };
    let input = square.clone().unwrap_or_else(|| base.input.clone());
    let classes = match (args.num_classes, &dict) {
        (Some(n), _) => n,
        (None, Some(dict)) if !spec_file => {
            let probe = pretrained::spec_for(name, Some(&input), own_classes)
                .unwrap_or_else(|_| base.clone());
            pretrained::classes_in(&probe, dict, device)?.unwrap_or(own_classes)
        }
        _ => own_classes,
    };
    let refit = !spec_file && (square.is_some() || classes != own_classes);
    let (spec, size) = match refit {
        false => (base, args.size.clone()),
        true => match pretrained::spec_for(name, Some(&input), classes) {
            Ok(spec) => (spec, None),
            Err(_) if classes == own_classes => (base, args.size.clone()),
            Err(e) => return Err(e.context(format!("cannot make {name} with {classes} classes"))),
        },
    };
    let model = match (&dict, &args.weights) {
        (Some(dict), Some(weights)) => pretrained::load(&spec, dict, false, weights, device)?.0,
        _ => spec.build(device)?,
    };
    let outputs = model.output_shape()?.dims().first().copied().unwrap_or(1);
    let metadata = Metadata {
        classes: pretrained::class_names(args.labels.as_deref(), outputs)?,
        preprocessing: preprocessing(name, spec.input.as_slice())?,
        extra: vec![("convnet_spec".into(), spec.to_toml()?)],
    };
    Ok(Source {
        model,
        options: ExportOptions {
            size,
            metadata,
            ..ExportOptions::default()
        },
        fresh: dict.is_none(),
    })
}

/// The recipe a built-in ImageNet model's published weights expect, at the exported size.
fn preprocessing(name: &str, input: &[usize]) -> Result<Option<Value>> {
    if convnet_zoo::input_recipe(name).is_none() {
        return Ok(None);
    }
    let side = match input {
        &[3, h, w] if h == w => h,
        _ => return Ok(None),
    };
    let recipe = pretrained::preprocess_for(name, None, Some(side))?;
    Ok(Some(serde_json::to_value(recipe)?))
}
