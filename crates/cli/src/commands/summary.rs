use anyhow::{Result, bail};
use burn::tensor::Device;
use convnet_layers::{ModelSpec, Summary};
use std::path::Path;

use super::pretrained;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A built-in model name (see `convnet models`), a model spec file (`.toml`), a darknet
    /// config (`.cfg`: its layer table as darknet prints it, and the Keras-style summary when the
    /// network is sequential) or an ONNX file (`.onnx`: every node with its operator, output
    /// shapes and parameters, the graph's inputs, outputs and metadata).
    model: String,

    /// Leave out the classifier, as Keras' `include_top=False`: the network up to its last
    /// feature map (what a feature extractor or a new head builds on).
    #[arg(long)]
    no_top: bool,

    /// Classes of a built-in model's classifier (default: its published count).
    #[arg(long)]
    classes: Option<usize>,

    /// Input side of a built-in model in pixels (default: its published resolution).
    #[arg(long, value_parser = super::args::image_side, allow_negative_numbers = true)]
    size: Option<usize>,

    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

/// A spec file when the argument names a file or ends in `.toml`, a built-in model otherwise,
/// fitted to `--classes` and `--size`.
fn summarize(args: &Args, device: &Device) -> Result<Summary> {
    let mut spec = if pretrained::is_spec_file(&args.model) {
        if args.classes.is_some() || args.size.is_some() {
            bail!("--classes and --size apply to built-in models; a spec file states its own");
        }
        ModelSpec::from_file(Path::new(&args.model))?
    } else if args.classes.is_none() && args.size.is_none() {
        convnet_zoo::spec(&args.model)?
    } else {
        let published = convnet_zoo::spec(&args.model)?;
        // No weights are allocated to read the published class count.
        let published_classes = published
            .build_unallocated(device)?
            .output_shape()?
            .num_elements()?;
        let (classes, input) = (
            args.classes.unwrap_or(published_classes),
            match (args.size, published.input.as_slice()) {
                (Some(size), &[c, _, _]) => vec![c, size, size],
                (Some(_), other) => bail!(
                    "--size applies to image models; {} takes {other:?}",
                    args.model
                ),
                (None, other) => other.to_vec(),
            },
        );
        pretrained::spec_for(&args.model, Some(&input), classes)?
    };
    if args.no_top {
        spec = spec.without_top()?;
    }
    // Spec errors already name the file, line and layer. A summary counts from shapes: it
    // allocates no weights, so it describes networks of any size.
    Ok(spec.summary(device)?)
}

/// A darknet cfg: darknet's table, then the runnable network's summary when there is one.
fn darknet(args: &Args, device: &Device) -> Result<()> {
    if args.classes.is_some() || args.size.is_some() || args.no_top {
        bail!(
            "--classes, --size and --no-top apply to built-in models; a darknet cfg states its own"
        );
    }
    let cfg = convnet_zoo::darknet::DarknetCfg::from_file(Path::new(&args.model))?;
    let shapes = cfg.shapes()?;
    let name = Path::new(&args.model)
        .file_stem()
        .map_or("darknet".into(), |s| s.to_string_lossy().into_owned());
    // Sequential configs get the Keras-style table; graphs (routes, shortcuts) their totals.
    let summary = match cfg.to_spec(&name) {
        Ok(spec) => Some(spec.summary(device)?),
        Err(_) => None,
    };
    // Counting needs no weights: a config of any size is described.
    let graph = cfg.build_unallocated(None, device)?;
    let params = graph.total_params()?;
    if args.json {
        let layers: Vec<_> = cfg
            .layers
            .iter()
            .zip(&shapes)
            .enumerate()
            .map(|(i, (l, shape))| serde_json::json!({"index": i, "type": l.kind, "output": shape}))
            .collect();
        let out = serde_json::json!({
            "name": name,
            "input": cfg.input()?,
            "layers": layers,
            "total_params": params,
            "outputs": graph.heads(),
            "summary": summary,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", cfg.table()?);
        match summary {
            Some(summary) => println!("\n{summary}"),
            None => println!(
                "\n{} layers, {} outputs, total params: {}",
                cfg.layers.len(),
                graph.heads(),
                params
            ),
        }
    }
    Ok(())
}

pub fn run(args: Args, device: &Device) -> Result<()> {
    if args.model.ends_with(".cfg") {
        return darknet(&args, device);
    }
    if super::onnx::is_onnx(&args.model) {
        if args.classes.is_some() || args.size.is_some() || args.no_top {
            bail!(
                "--classes, --size and --no-top apply to built-in models; an ONNX file states its own"
            );
        }
        return super::onnx::summary(Path::new(&args.model), args.json, device);
    }
    let summary = summarize(&args, device)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("{summary}");
    }
    Ok(())
}
