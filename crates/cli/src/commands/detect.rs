//! `convnet detect`: a YOLO detector over a picture: boxes with class and score, drawn on the
//! picture (`-o`) and as JSON for scripts.
//!
//! The pretrained detector is face-api.js's Tiny Face Detector (`--model tiny-face`), whose TF.js
//! weights `scripts/fetch-pretrained.sh` fetches into `third_party/face-api/model/`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use convnet_data::folder::decode_image;
use convnet_vision::Detection;
use convnet_vision::chart::save_rgb_png;
use serde_json::json;

use convnet_apps::detect::{DetectOptions, Detector, draw, label};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Pictures (PNG or JPEG), or folders of them.
    #[arg(required = true, value_name = "PICTURE|FOLDER")]
    images: Vec<PathBuf>,

    /// The detector: `tiny-face` (face-api.js's Tiny Face Detector), or the run directory of a
    /// detector trained with `convnet train --task detect` (its best checkpoint), or one of
    /// its checkpoint files, or a TF.js graph model of a COCO detector (the human package's
    /// `models/centernet.json` or `nanodet.json`, from scripts/fetch-pretrained.sh human).
    #[arg(long, default_value = "tiny-face")]
    model: String,

    /// Its weights (default for tiny-face: third_party/face-api/model/, from
    /// scripts/fetch-pretrained.sh, looked up from the current folder and beside the binary).
    #[arg(long)]
    weights: Option<PathBuf>,

    /// Write the picture with the boxes drawn on it: a PNG file for one picture, a folder
    /// (one PNG per picture, named after it) for several.
    #[arg(long, short, value_name = "OUT")]
    output: Option<PathBuf>,

    /// Keep boxes scoring above this (default: 0.5 for tiny-face, as face-api.js; 0.25 for a
    /// detector trained here, as Ultralytics' predict; 0.2 for CenterNet and NanoDet, as the
    /// human package).
    #[arg(long)]
    score: Option<f32>,

    /// Non-max suppression: drop a box whose IoU with a better one of its class is at least this.
    #[arg(long, default_value_t = 0.4)]
    iou: f32,

    /// Network input side in pixels for tiny-face (a multiple of 32; face-api's default 416).
    /// A trained run uses its own.
    #[arg(long, value_parser = super::args::image_side, allow_negative_numbers = true)]
    size: Option<usize>,

    /// Detect tile by tile at full resolution, tiles of this many pixels, merged across tiles
    /// by per-class NMS (as DeepForest and SAHI do). Default: the tiles a trained run was
    /// trained on, if any; 0 for the whole picture at once.
    #[arg(long, value_name = "PX", value_parser = tile_side, allow_negative_numbers = true)]
    tile: Option<usize>,

    /// Pixels neighbouring tiles share (with --tile; default: the run's, else 32).
    #[arg(long, value_name = "PX")]
    overlap: Option<usize>,

    /// Write each picture's detections as a YOLO label file (`class cx cy w h`, normalised)
    /// into this folder, named after the picture, as Ultralytics' `save_txt` does.
    #[arg(long, value_name = "DIR")]
    save_txt: Option<PathBuf>,

    /// With --save-txt: add each box's score as a sixth column.
    #[arg(long, requires = "save_txt")]
    save_conf: bool,

    /// Print the detections as JSON (one object for one picture, a list for several).
    #[arg(long)]
    json: bool,
}

/// `--tile`: 0 (no tiles) or a side from 32 to 8192.
fn tile_side(text: &str) -> Result<usize, String> {
    match text.trim() {
        "0" => Ok(0),
        other => super::args::image_side(other).and_then(|t| {
            if t < 32 {
                Err(format!(
                    "a tile must be at least 32 pixels (or 0 for none), not {t}"
                ))
            } else {
                Ok(t)
            }
        }),
    }
}

/// The pictures named on the command line: files as given, folders' pictures in name order.
fn pictures_of(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("cannot read {}", input.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && convnet_data::folder::is_image_name(p))
                .collect();
            if found.is_empty() {
                bail!(
                    "{} holds no pictures (PNG, JPEG, BMP, ...)",
                    input.display()
                );
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(input.clone());
        }
    }
    Ok(out)
}

pub fn run(args: Args, device: &Device) -> Result<()> {
    let options = DetectOptions {
        score: args.score,
        iou: args.iou,
        tile: args.tile,
        overlap: args.overlap,
    };
    options.check()?;
    let pictures = pictures_of(&args.images)?;
    let detector = Detector::open(&args.model, args.weights.as_deref(), args.size, device)?;
    let score = detector.score(&options);
    let tiling = detector.tiling(&options)?;
    let several = pictures.len() > 1;
    if let Some(dir) = args.output.as_ref().filter(|_| several) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if let Some(dir) = &args.save_txt {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let classes = detector.classes();
    let mut reports = Vec::with_capacity(pictures.len());
    for path in &pictures {
        let picture = decode_image(path)?;
        let rgb = picture.to_rgb8();
        let detections = detector.detect_tiled(&rgb, tiling, score, args.iou, device)?;
        let drawn = match &args.output {
            Some(out) if several => Some(out.join(png_name(path))),
            other => other.clone(),
        };
        if let Some(out) = &drawn {
            save_rgb_png(out, &draw(&picture, &detections, &classes))
                .with_context(|| format!("cannot write {}", out.display()))?;
        }
        if let Some(dir) = &args.save_txt {
            save_txt(
                &dir.join(txt_name(path)),
                &detections,
                rgb.dimensions(),
                args.save_conf,
            )?;
        }
        let size = [rgb.width() as f32, rgb.height() as f32];
        reports.push(report(
            &args,
            path,
            &detections,
            &classes,
            size,
            drawn.as_deref(),
        )?);
    }
    if args.json {
        let out = if several {
            serde_json::Value::Array(reports)
        } else {
            reports.pop().unwrap_or_default()
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

/// `NAME.png` for picture `path` (its stem), where drawings of several pictures go.
fn png_name(path: &Path) -> PathBuf {
    PathBuf::from(path.file_stem().unwrap_or_default()).with_extension("png")
}

fn txt_name(path: &Path) -> PathBuf {
    PathBuf::from(path.file_stem().unwrap_or_default()).with_extension("txt")
}

/// Detections as YOLO label lines, `class cx cy w h [score]` normalised to the picture.
fn save_txt(path: &Path, detections: &[Detection], (w, h): (u32, u32), conf: bool) -> Result<()> {
    let (w, h) = (w as f32, h as f32);
    let mut text = String::new();
    for d in detections {
        let b = d.bbox;
        text.push_str(&format!(
            "{} {:.6} {:.6} {:.6} {:.6}",
            d.class,
            (b.x1 + b.x2) / 2.0 / w,
            (b.y1 + b.y2) / 2.0 / h,
            (b.x2 - b.x1) / w,
            (b.y2 - b.y1) / h
        ));
        if conf {
            text.push_str(&format!(" {:.6}", d.score));
        }
        text.push('\n');
    }
    convnet_train::write_atomically(path, text.as_bytes())?;
    Ok(())
}

/// One picture's detections: printed as a table, or returned as JSON for `--json`.
fn report(
    args: &Args,
    image: &Path,
    detections: &[Detection],
    classes: &[String],
    size: [f32; 2],
    drawn: Option<&Path>,
) -> Result<serde_json::Value> {
    if args.json {
        let items = convnet_apps::detect::found(detections, classes);
        return Ok(json!({
            "image": image,
            "width": size[0],
            "height": size[1],
            "model": args.model,
            "detections": items,
            "output": drawn,
        }));
    }
    println!("{}: {} detection(s)", image.display(), detections.len());
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
    if let Some(out) = drawn {
        println!("boxes drawn in {}", out.display());
    }
    Ok(serde_json::Value::Null)
}
