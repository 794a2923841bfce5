use anyhow::Result;
use burn::tensor::Device;
use convnet_layers::{ModelSpec, Summarize, Summary};
use std::path::Path;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A built-in model name (see `convnet models`) or a model spec file (`.toml`).
    model: String,

    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

/// A spec file when the argument names a file or ends in `.toml`, a built-in model otherwise.
fn summarize(model: &str, device: &Device) -> Result<Summary> {
    let path = Path::new(model);
    if path.extension().is_some_and(|e| e == "toml") || path.is_file() {
        let spec = ModelSpec::from_file(path)?;
        // Spec errors already name the file, line and layer.
        return Ok(spec.build(device)?.summary()?);
    }
    Ok(convnet_zoo::summary(model, device)?)
}

pub fn run(args: Args, device: &Device) -> Result<()> {
    let summary = summarize(&args.model, device)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("{summary}");
    }
    Ok(())
}
