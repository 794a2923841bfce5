//! `convnet segment CKPT IMAGE -o MASK.png`: a class per pixel, as a mask of class indices and
//! a coloured overlay with a legend. Segmentation networks are trained by
//! `convnet train --task segment` ([`convnet_apps::segment::train`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use convnet_vision::chart::save_rgb_png;
use serde_json::json;

use convnet_apps::segment::{SegmentOptions, Segmenter, SegmenterSource, render_overlay};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A segmentation checkpoint file or run directory (`convnet train --task segment`), then
    /// the picture; with --model, the picture alone.
    #[arg(value_name = "CHECKPOINT | IMAGE")]
    checkpoint: PathBuf,

    /// The picture (PNG or JPEG); it is resized to the network's input and the mask back to
    /// the picture's size.
    image: Option<PathBuf>,

    /// An ONNX network whose output is a per-pixel map `[1, K, h, w]` (K class scores, or one
    /// probability map such as a text detector's), instead of a checkpoint; or a TF.js graph
    /// model (`model.json`: the human package's selfie and meet person segmenters).
    #[arg(long, value_name = "M.onnx")]
    model: Option<PathBuf>,

    /// Preprocessing for --model (`imagenet`, `caffe`, `tf`); default: the recipe stored in the
    /// file by `convnet export`, else `imagenet`.
    #[arg(long, requires = "model", value_name = "PRESET")]
    preprocess: Option<String>,

    /// For --model with an input size that is not fixed: the picture is scaled so its shorter
    /// side is this (default: as it is), then each side rounded up to a multiple of 32.
    #[arg(long, requires = "model", value_parser = super::args::image_side, allow_negative_numbers = true)]
    size: Option<usize>,

    /// Class names for --model, one per line, background first (default: `background` and
    /// `foreground` for a one-channel map, else `class 0`, `class 1`...).
    #[arg(long, requires = "model", value_name = "FILE")]
    labels: Option<PathBuf>,

    /// For a one-channel probability map: the probability from which a pixel is foreground.
    #[arg(long, default_value_t = 0.5, requires = "model")]
    threshold: f32,

    /// Where to write the mask: a greyscale PNG whose pixel values are class indices.
    #[arg(long, short, value_name = "MASK.png")]
    output: Option<PathBuf>,

    /// Also write the picture with each class in its colour and a legend.
    #[arg(long, value_name = "OVERLAY.png")]
    overlay: Option<PathBuf>,

    /// Print the class of each pixel count as JSON.
    #[arg(long)]
    json: bool,
}

/// `convnet segment`.
pub fn run(args: Args, device: &Device) -> Result<()> {
    if args.output.is_none() && args.overlay.is_none() && !args.json {
        bail!("say what to write: -o MASK.png, --overlay OVERLAY.png or --json");
    }
    let (image, source) = match &args.model {
        Some(model) => {
            if args.image.is_some() {
                bail!("with --model, give the picture alone (no checkpoint)");
            }
            (
                args.checkpoint.clone(),
                SegmenterSource::Onnx(model.clone()),
            )
        }
        None => {
            let Some(image) = args.image.clone() else {
                bail!(
                    "give the picture after the checkpoint (or segment with --model M.onnx PICTURE)"
                );
            };
            (image, SegmenterSource::Checkpoint(args.checkpoint.clone()))
        }
    };
    let options = SegmentOptions {
        preprocess: args.preprocess.clone(),
        size: args.size,
        labels: args.labels.clone(),
        threshold: args.threshold,
    };
    let picture = convnet_data::folder::decode_image(&image)?;
    let segmenter = Segmenter::open(&source, &options, device)?;
    let seg = segmenter.segment(&picture, device)?;
    let (pw, ph) = (picture.width(), picture.height());
    if let Some(output) = &args.output {
        write_png(output, |p| seg.mask.save(p))?;
    }
    if let Some(overlay) = &args.overlay {
        let img = render_overlay(&picture.to_rgb8(), &seg.mask, &seg.classes);
        save_rgb_png(overlay, &img)?;
    }
    let present = seg.present();
    if args.json {
        let present: Vec<_> = present
            .iter()
            .map(|a| json!({"class": a.class, "pixels": a.pixels}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "image": image, "mask": args.output, "overlay": args.overlay,
                "size": [pw, ph], "classes": present,
            }))?
        );
    } else {
        for a in &present {
            println!("{:<14} {:5.1}%", a.class, 100.0 * a.fraction);
        }
        if let Some(o) = &args.output {
            println!("mask: {}", o.display());
        }
        if let Some(o) = &args.overlay {
            println!("overlay: {}", o.display());
        }
    }
    Ok(())
}

/// Writes through a temporary file beside `path`, then renames it over.
fn write_png(path: &Path, save: impl FnOnce(&Path) -> image::ImageResult<()>) -> Result<()> {
    let tmp = path.with_extension("partial.png");
    save(&tmp).with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
