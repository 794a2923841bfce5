//! `convnet predict`: the most likely classes of image files, from one trained model or the
//! averaged probabilities of several.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use convnet_data::{ImageSet, folder};
use serde_json::json;

use super::classifier::Ensemble;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A checkpoint file or a run directory (its best checkpoint).
    checkpoint: PathBuf,

    /// Image files (PNG or JPEG); each is converted to the model's channels, resized and
    /// centre-cropped to its input size.
    #[arg(required = true)]
    images: Vec<PathBuf>,

    /// More checkpoints whose probabilities are averaged with the first.
    #[arg(long, num_args = 1.., value_name = "CKPT")]
    ensemble: Vec<PathBuf>,

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
    let mut paths = vec![args.checkpoint.clone()];
    paths.extend(args.ensemble.iter().cloned());
    let ensemble = Ensemble::load(&paths, device)?;
    let shape = ensemble.input();
    let classes = ensemble.classes().to_vec();
    let mut pixels = Vec::new();
    for image in &args.images {
        pixels.extend(
            folder::load_image_file(image, shape)
                .with_context(|| format!("cannot use {}", image.display()))?,
        );
    }
    // Labels are unknown; class 0 stands in so the images travel as an ordinary set.
    let set = ImageSet::new(pixels, vec![0; args.images.len()], shape, classes.clone())?;
    let probs = ensemble.probabilities(Arc::new(set), device, |_| {})?;
    let k = classes.len();
    let top = args.top.min(k);
    let mut results = Vec::new();
    for (i, image) in args.images.iter().enumerate() {
        let row = &probs[i * k..(i + 1) * k];
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        let best: Vec<(String, f32)> = order[..top]
            .iter()
            .map(|&c| (classes[c].clone(), row[c]))
            .collect();
        results.push((image, best));
    }
    if args.json {
        let out: Vec<_> = results
            .iter()
            .map(|(image, best)| {
                json!({
                    "image": image,
                    "predictions": best.iter().map(|(c, p)| json!({"class": c, "probability": p})).collect::<Vec<_>>(),
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
            .map(|(c, p)| format!("{c} {:.1}%", 100.0 * p))
            .collect();
        println!("{}: {}", image.display(), text.join(", "));
    }
    Ok(())
}
