//! `convnet detect`: a YOLO detector over a picture: boxes with class and score, drawn on the
//! picture (`-o`) and as JSON for scripts.
//!
//! The pretrained detector is face-api.js's Tiny Face Detector (`--model tiny-face`), whose TF.js
//! weights `scripts/fetch-pretrained.sh` fetches into `third_party/face-api/model/`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor, TensorData};
use convnet_data::folder::decode_image;
use convnet_layers::Mode;
use convnet_vision::Detection;
use convnet_vision::chart::{save_rgb_png, series_colour};
use convnet_vision::draw::draw_box;
use convnet_vision::yolo::YoloHead;
use serde_json::json;

use super::pretrained;

/// The weights file of face-api's Tiny Face Detector, as the fetch script lays it out.
const TINY_FACE_WEIGHTS: &str =
    "third_party/face-api/model/tiny_face_detector_model-weights_manifest.json";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The picture (PNG or JPEG).
    image: PathBuf,

    /// The detector: `tiny-face` (face-api.js's Tiny Face Detector).
    #[arg(long, default_value = "tiny-face")]
    model: String,

    /// Its weights (default for tiny-face: third_party/face-api/model/, from
    /// scripts/fetch-pretrained.sh, looked up from the current folder and beside the binary).
    #[arg(long)]
    weights: Option<PathBuf>,

    /// Write the picture with the boxes drawn on it (PNG).
    #[arg(long, short, value_name = "OUT.png")]
    output: Option<PathBuf>,

    /// Keep boxes scoring above this.
    #[arg(long, default_value_t = 0.5)]
    score: f32,

    /// Non-max suppression: drop a box whose IoU with a better one of its class is at least this.
    #[arg(long, default_value_t = 0.4)]
    iou: f32,

    /// Network input side in pixels (a multiple of 32; face-api uses 416 by default).
    #[arg(long, default_value_t = 416)]
    size: usize,

    /// Print the detections as JSON.
    #[arg(long)]
    json: bool,
}

/// A detector the command knows: its head and class names.
struct Detector {
    head: YoloHead,
    classes: Vec<String>,
}

fn detector(model: &str) -> Result<Detector> {
    match model {
        "tiny-face" | "tiny_face" => Ok(Detector {
            head: YoloHead {
                anchors: convnet_zoo::tiny_face::ANCHORS.to_vec(),
                classes: 0,
            },
            classes: vec!["face".into()],
        }),
        other => bail!("'{other}' is not a detector; detectors: tiny-face"),
    }
}

/// `relative` under the current folder, or under the folder two levels above the binary
/// (`target/release/convnet` in a checkout).
fn find_default(relative: &str) -> Option<PathBuf> {
    let here = PathBuf::from(relative);
    if here.is_file() {
        return Some(here);
    }
    let exe = std::env::current_exe().ok()?;
    let root = exe.parent()?.parent()?.parent()?;
    Some(root.join(relative)).filter(|p| p.is_file())
}

fn weights_for(args: &Args) -> Result<PathBuf> {
    if let Some(w) = &args.weights {
        return Ok(w.clone());
    }
    find_default(TINY_FACE_WEIGHTS).with_context(|| {
        format!(
            "no weights for {}: run scripts/fetch-pretrained.sh (it fetches face-api's models into third_party/) or pass --weights {TINY_FACE_WEIGHTS}",
            args.model
        )
    })
}

pub fn run(args: Args, device: &Device) -> Result<()> {
    if args.size < 32 || !args.size.is_multiple_of(32) {
        bail!(
            "--size must be a multiple of 32 (at least 32), not {}",
            args.size
        );
    }
    if !(0.0..1.0).contains(&args.score) || args.iou.is_nan() || args.iou <= 0.0 || args.iou > 1.0 {
        bail!("--score must lie in [0, 1) and --iou in (0, 1]");
    }
    let det = detector(&args.model)?;
    let weights = weights_for(&args)?;
    let dict = pretrained::read_weights(&weights, device)?;
    let spec = pretrained::spec_for(&args.model, Some(&[3, args.size, args.size]), 1)?;
    let (model, _) = pretrained::load(&spec, &dict, false, &weights, device)?;
    let preprocess = pretrained::preprocess_for(&args.model, None, Some(args.size))?;
    let picture = decode_image(&args.image)?;
    let (w, h) = (picture.width() as f32, picture.height() as f32);
    let x = Tensor::<4>::from_data(
        TensorData::new(preprocess.apply(&picture)?, [1, 3, args.size, args.size]),
        device,
    );
    let y = model.forward(x, Mode::Eval)?.into_map2d()?;
    let [_, _, gh, gw] = y.dims();
    let values = y.into_data().convert::<f32>().try_to_vec::<f32>()?;
    // The network saw the picture padded to a square at the bottom and right: a fraction of
    // the input is a fraction of that square's side.
    let side = w.max(h);
    let detections: Vec<Detection> = det
        .head
        .detect(&values, [gh, gw], args.score, args.iou)?
        .into_iter()
        .map(|d| Detection {
            bbox: d.bbox.scale(side, side).clip(w, h),
            ..d
        })
        .collect();
    if let Some(out) = &args.output {
        draw(&args.image, out, &detections, &det.classes)?;
    }
    report(&args, &detections, &det.classes, [w, h])
}

fn label(d: &Detection, classes: &[String]) -> String {
    let name = classes.get(d.class).map_or("?", String::as_str);
    format!("{name} {:.2}", d.score)
}

fn draw(input: &Path, out: &Path, detections: &[Detection], classes: &[String]) -> Result<()> {
    let mut img = decode_image(input)?.to_rgb8();
    let thickness = (img.width().max(img.height()) / 300).max(2);
    for d in detections {
        draw_box(
            &mut img,
            &d.bbox,
            &label(d, classes),
            series_colour(d.class),
            thickness,
        );
    }
    save_rgb_png(out, &img).with_context(|| format!("cannot write {}", out.display()))
}

fn report(args: &Args, detections: &[Detection], classes: &[String], size: [f32; 2]) -> Result<()> {
    if args.json {
        let items: Vec<_> = detections
            .iter()
            .map(|d| {
                json!({
                    "class": classes.get(d.class),
                    "class_index": d.class,
                    "score": d.score,
                    "box": [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2],
                })
            })
            .collect();
        let out = json!({
            "image": args.image,
            "width": size[0],
            "height": size[1],
            "model": args.model,
            "detections": items,
            "output": args.output,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{}: {} detection(s)",
        args.image.display(),
        detections.len()
    );
    for d in detections {
        println!(
            "  {:<12} box ({:.0}, {:.0}) - ({:.0}, {:.0})",
            label(d, classes),
            d.bbox.x1,
            d.bbox.y1,
            d.bbox.x2,
            d.bbox.y2
        );
    }
    if let Some(out) = &args.output {
        println!("boxes drawn in {}", out.display());
    }
    Ok(())
}
