//! `convnet infer`: a batch in, raw outputs out, both as `.npy` — the interface for checking
//! convnet against another framework, and for scripts.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::tensor::{Device, Tensor, TensorData};
use convnet_data::{NpyData, read_npy, write_npy_f32};
use convnet_layers::{Features, Mode};
use serde_json::json;

use super::{onnx, pretrained};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A built-in model (see `convnet models`), a model spec file (`.toml`) or an ONNX file
    /// (`.onnx`: weights included, any number of inputs and outputs).
    #[arg(long)]
    model: String,

    /// Weights: a PyTorch state_dict (`.pth`/`.pt`), a `.safetensors` file or a convnet
    /// checkpoint, matched to the model's layers by (torchvision) name. Not for `.onnx`.
    #[arg(long)]
    weights: Option<PathBuf>,

    /// The batch: float32 `[N, C, H, W]` (`[N, C, L]` or `[N, C, D, H, W]` for spec files
    /// that take signals or volumes). For an ONNX model: one array per graph input, in the
    /// graph's order (repeat --input), of the types and shapes the graph declares.
    #[arg(long, value_name = "X.npy", required = true)]
    input: Vec<PathBuf>,

    /// Where to write the outputs `[N, ...]` as float32: the logits, before any final softmax.
    /// For an ONNX model: one file per graph output, in the graph's order (repeat --output).
    #[arg(long, short, value_name = "Y.npy", required = true)]
    output: Vec<PathBuf>,

    /// Classes of a built-in model's classifier (default: what the weights file has).
    #[arg(long)]
    num_classes: Option<usize>,

    /// Load the tensors that match and leave the rest as initialised (e.g. a new head).
    #[arg(long)]
    allow_partial: bool,

    /// Write this layer's activations instead of the logits (feature extraction; names as
    /// `convnet summary` lists them, e.g. `layer4` or `features.28`).
    #[arg(long, value_name = "NAME")]
    layer: Option<String>,

    /// Examples per forward pass.
    #[arg(long, default_value_t = 16, value_parser = super::args::batch, allow_negative_numbers = true)]
    batch: usize,

    /// Print a JSON summary of what was run.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, device: &Device) -> Result<()> {
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if onnx::is_onnx(&args.model) {
        if args.weights.is_some() || args.layer.is_some() || args.num_classes.is_some() {
            bail!(
                "--weights, --layer and --num-classes do not apply to an ONNX model (its weights are inside)"
            );
        }
        return onnx::infer(
            Path::new(&args.model),
            &args.input,
            &args.output,
            args.json,
            device,
        );
    }
    let (Some(weights), [input], [output]) =
        (&args.weights, args.input.as_slice(), args.output.as_slice())
    else {
        bail!(
            "--model NAME takes --weights FILE, one --input and one --output (several are for ONNX models)"
        );
    };
    let (input, output) = (input.clone(), output.clone());
    let array = read_npy(&input)?;
    let dims = array.shape.clone();
    let NpyData::F32(values) = array.data else {
        bail!(
            "{}: the input must be a float32 array, this one holds {}",
            input.display(),
            dtype_name(&array.data)
        );
    };
    if !(3..=5).contains(&dims.len()) {
        bail!(
            "{}: the input must be a batch [N, C, H, W] (or [N, C, L], [N, C, D, H, W]), this array is {dims:?}",
            input.display()
        );
    }
    if dims.contains(&0) {
        bail!(
            "{}: the input batch {dims:?} is empty (every dimension must be at least 1)",
            input.display()
        );
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        bail!(
            "{}: value {i} is {} — the input must be finite",
            input.display(),
            values[i]
        );
    }
    let example = &dims[1..];
    let dict = pretrained::read_weights(weights, device)?;
    let mut spec = pretrained::spec_for(&args.model, Some(example), 1000)?;
    if !pretrained::is_spec_file(&args.model) {
        let classes = match args.num_classes {
            Some(n) => n,
            None => pretrained::classes_in(&spec, &dict, device)?.unwrap_or(1000),
        };
        spec = pretrained::spec_for(&args.model, Some(example), classes)?;
    }
    let (model, report) = pretrained::load(&spec, &dict, args.allow_partial, weights, device)?;
    let n = dims[0];
    let per_example: usize = example.iter().product();
    let mut outputs = Vec::new();
    let mut out_shape = Vec::new();
    for start in (0..n).step_by(args.batch) {
        let end = (start + args.batch).min(n);
        let mut shape = dims.clone();
        shape[0] = end - start;
        let data = TensorData::new(
            values[start * per_example..end * per_example].to_vec(),
            shape.clone(),
        );
        let x: Features = match dims.len() {
            3 => Tensor::<3>::from_data(data, device).into(),
            4 => Tensor::<4>::from_data(data, device).into(),
            _ => Tensor::<5>::from_data(data, device).into(),
        };
        let (shape, values) = match &args.layer {
            None => {
                let logits = model.forward_logits(x, Mode::Eval)?;
                (logits.dims().to_vec(), logits.into_data())
            }
            Some(layer) => {
                let mut taps = model.forward_features(x, &[layer.as_str()], Mode::Eval)?;
                let features = taps.remove(0);
                (features.dims(), features.into_flat().into_data())
            }
        };
        out_shape = shape;
        outputs.extend(values.convert::<f32>().try_to_vec::<f32>()?);
    }
    out_shape[0] = n;
    write_npy_f32(&output, &out_shape, &outputs)?;
    if args.json {
        let out = json!({
            "model": spec.name,
            "input_shape": dims,
            "output_shape": out_shape,
            "output": output,
            "layer": args.layer,
            "loaded": report.loaded.len(),
            "complete": report.is_complete(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{}: {:?} -> {:?} written to {}",
            spec.name,
            dims,
            out_shape,
            output.display()
        );
        if !report.is_complete() {
            eprintln!("note (--allow-partial): {}", report.skipped());
        }
    }
    Ok(())
}

fn dtype_name(data: &NpyData) -> &'static str {
    match data {
        NpyData::Bool(_) => "bool",
        NpyData::U8(_) => "uint8",
        NpyData::I64(_) => "int64",
        NpyData::F32(_) => "float32",
        NpyData::F64(_) => "float64",
    }
}
