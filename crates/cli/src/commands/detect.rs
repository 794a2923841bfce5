//! `convnet detect`: a YOLO detector over a picture: boxes with class and score, drawn on the
//! picture (`-o`) and as JSON for scripts.
//!
//! The pretrained detector is face-api.js's Tiny Face Detector (`--model tiny-face`), whose TF.js
//! weights `scripts/fetch-pretrained.sh` fetches into `third_party/face-api/model/`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor, TensorData};
use convnet_data::detection::augment::BoxAugment;
use convnet_data::detection::letterbox::letterbox;
use convnet_data::detection::prepare::{Prepared, Source, Tiling, prepare};
use convnet_data::detection::tile::{merge_tiles, origins};
use convnet_data::fashion_mnist::Split;
use convnet_data::folder::decode_image;
use convnet_data::synthetic::DetectionSet;
use convnet_layers::Mode;
use convnet_vision::chart::{save_rgb_png, series_colour};
use convnet_vision::draw::draw_box;
use convnet_vision::yolo::YoloHead;
use convnet_vision::{BBox, Detection, nms_per_class};
use serde_json::json;

use super::pretrained;

/// The weights file of face-api's Tiny Face Detector, as the fetch script lays it out.
const TINY_FACE_WEIGHTS: &str =
    "third_party/face-api/model/tiny_face_detector_model-weights_manifest.json";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Pictures (PNG or JPEG), or folders of them.
    #[arg(required = true, value_name = "PICTURE|FOLDER")]
    images: Vec<PathBuf>,

    /// The detector: `tiny-face` (face-api.js's Tiny Face Detector), or the run directory of a
    /// detector trained with `convnet train --task detect` (its best checkpoint), or one of
    /// its checkpoint files.
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
    /// detector trained here, as Ultralytics' predict).
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

/// A detector the command knows: face-api's, or one trained here.
enum Detector {
    /// face-api.js's Tiny Face Detector: pictures padded to a square at the bottom and right,
    /// resized to `size`.
    TinyFace {
        model: Box<convnet_layers::Sequential>,
        head: YoloHead,
        preprocess: convnet_data::Preprocess,
        size: usize,
    },
    /// A run of `convnet train --task detect`.
    Trained(Box<Trained>),
}

impl Detector {
    fn open(args: &Args, device: &Device) -> Result<Self> {
        // A run directory (its best checkpoint) or one of its checkpoint files.
        if HeadFile::locate(Path::new(&args.model)).is_some() {
            return Ok(Detector::Trained(Box::new(Trained::load(
                Path::new(&args.model),
                device,
            )?)));
        }
        if !matches!(args.model.as_str(), "tiny-face" | "tiny_face") {
            bail!(
                "'{}' is not a detector; detectors: tiny-face, or the run directory of `convnet train --task detect`",
                args.model
            );
        }
        let size = args.size.unwrap_or(416);
        if size < 32 || !size.is_multiple_of(32) {
            bail!("--size must be a multiple of 32 (at least 32), not {size}");
        }
        let spec = pretrained::spec_for(&args.model, Some(&[3, size, size]), 1)?;
        // Counted from the network's own maps at this size, before any weight is read.
        spec.summary(device)?
            .forward_bytes(1)
            .check(&format!("detection at {size}x{size} (--size {size})"))?;
        let weights = weights_for(args)?;
        let dict = pretrained::read_weights(&weights, device)?;
        let (model, _) = pretrained::load(&spec, &dict, false, &weights, device)?;
        Ok(Detector::TinyFace {
            model: Box::new(model),
            head: YoloHead {
                anchors: convnet_zoo::tiny_face::ANCHORS.to_vec(),
                classes: 0,
            },
            preprocess: pretrained::preprocess_for(&args.model, None, Some(size))?,
            size,
        })
    }

    fn classes(&self) -> Vec<String> {
        match self {
            Detector::TinyFace { .. } => vec!["face".into()],
            Detector::Trained(t) => t.head_file.classes.clone(),
        }
    }

    /// The tiles a picture is cut into unless the command says otherwise.
    fn default_tiling(&self) -> Option<Tiling> {
        match self {
            Detector::Trained(t) => t.head_file.data.as_ref().and_then(|d| d.tiling),
            Detector::TinyFace { .. } => None,
        }
    }

    /// The detections in `picture` (in its pixels), above `score`, after per-class NMS.
    fn detect(
        &self,
        picture: &image::RgbImage,
        score: f32,
        iou: f32,
        device: &Device,
    ) -> Result<Vec<Detection>> {
        let (w, h) = (picture.width() as f32, picture.height() as f32);
        let (model, head, x, back): (_, _, Vec<f32>, Box<dyn Fn(BBox) -> BBox>) = match self {
            Detector::TinyFace {
                model,
                head,
                preprocess,
                ..
            } => {
                let x = preprocess.apply(&image::DynamicImage::ImageRgb8(picture.clone()))?;
                // The network saw the picture padded to a square at the bottom and right: a
                // fraction of the input is a fraction of that square's side.
                let side = w.max(h);
                (
                    &**model,
                    head,
                    x,
                    Box::new(move |b: BBox| b.scale(side, side)),
                )
            }
            Detector::Trained(t) => {
                let [channels, side, _] = t.head_file.input;
                if t.head_file.data.is_some() {
                    let (pixels, fit) = letterbox(picture, side);
                    let x = pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
                    let s = side as f32;
                    (
                        &t.model,
                        &t.head,
                        x,
                        Box::new(move |b: BBox| fit.to_picture(b.scale(s, s))),
                    )
                } else {
                    if channels != 1 {
                        bail!(
                            "{}: only greyscale scene detectors are supported",
                            t.run_dir.display()
                        );
                    }
                    // The generated scenes' detectors take the picture grey, stretched to the
                    // input square.
                    let grey = image::imageops::resize(
                        &image::DynamicImage::ImageRgb8(picture.clone()).to_luma8(),
                        side as u32,
                        side as u32,
                        image::imageops::FilterType::Triangle,
                    );
                    let x = grey.pixels().map(|p| f32::from(p.0[0]) / 255.0).collect();
                    (&t.model, &t.head, x, Box::new(move |b: BBox| b.scale(w, h)))
                }
            }
        };
        let side = match self {
            Detector::TinyFace { size, .. } => *size,
            Detector::Trained(t) => t.head_file.input[1],
        };
        let channels = x.len() / (side * side);
        let x = Tensor::<4>::from_data(TensorData::new(x, [1, channels, side, side]), device);
        let y = model.forward(x, Mode::Eval)?.into_map2d()?;
        let [_, _, gh, gw] = y.dims();
        let values = y.into_data().convert::<f32>().try_to_vec::<f32>()?;
        // face-api.js suppresses in the network's coordinates; a detector trained here in the
        // picture's pixels, after clipping (which can raise two boxes' overlap), so tiles
        // merged by the same NMS give the same boxes as the whole picture.
        let face_api = matches!(self, Detector::TinyFace { .. });
        let found = match face_api {
            true => head.detect(&values, [gh, gw], score, iou)?,
            false => head.decode(&values, [gh, gw], score)?,
        };
        let found: Vec<Detection> = found
            .into_iter()
            .map(|d| Detection {
                bbox: back(d.bbox).clip(w, h),
                ..d
            })
            .collect();
        Ok(match face_api {
            true => found,
            false => nms_per_class(&found, score, iou),
        })
    }

    /// The detections in `picture`, tile by tile when `tiling` says, merged across tiles.
    fn detect_tiled(
        &self,
        picture: &image::RgbImage,
        tiling: Option<Tiling>,
        score: f32,
        iou: f32,
        device: &Device,
    ) -> Result<Vec<Detection>> {
        let Some(t) = tiling else {
            return self.detect(picture, score, iou, device);
        };
        let (w, h) = picture.dimensions();
        let stride = t.tile - t.overlap;
        let mut per_tile = Vec::new();
        for y0 in origins(h, t.tile, stride) {
            for x0 in origins(w, t.tile, stride) {
                let piece =
                    image::imageops::crop_imm(picture, x0, y0, t.tile.min(w), t.tile.min(h))
                        .to_image();
                per_tile.push((x0, y0, self.detect(&piece, score, iou, device)?));
            }
        }
        Ok(merge_tiles(per_tile, iou))
    }
}

/// `relative` under the current folder, or under the folder two levels above the binary
/// (`target/release/convnet` in a checkout).
pub(crate) fn find_default(relative: &str) -> Option<PathBuf> {
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
    let valid_score = args.score.is_none_or(|s| (0.0..1.0).contains(&s));
    if !valid_score || args.iou.is_nan() || args.iou <= 0.0 || args.iou > 1.0 {
        bail!("--score must lie in [0, 1) and --iou in (0, 1]");
    }
    let pictures = pictures_of(&args.images)?;
    let detector = Detector::open(&args, device)?;
    let score = args.score.unwrap_or(match detector {
        Detector::TinyFace { .. } => 0.5,
        Detector::Trained(_) => 0.25,
    });
    let tiling = match (args.tile, detector.default_tiling()) {
        (Some(0), _) | (None, None) => None,
        (Some(tile), run) => {
            let overlap = args
                .overlap
                .or(run.map(|r| r.overlap as usize))
                .unwrap_or(32);
            if overlap >= tile {
                bail!("--overlap ({overlap}) must be smaller than --tile ({tile})");
            }
            Some(Tiling {
                tile: tile as u32,
                overlap: overlap as u32,
            })
        }
        (None, Some(run)) => Some(run),
    };
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
            draw(&picture, out, &detections, &classes)?;
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

fn label(d: &Detection, classes: &[String]) -> String {
    let name = classes.get(d.class).map_or("?", String::as_str);
    format!("{name} {:.2}", d.score)
}

/// The boxes drawn on the (already decoded) picture.
fn draw(
    picture: &image::DynamicImage,
    out: &Path,
    detections: &[Detection],
    classes: &[String],
) -> Result<()> {
    let mut img = picture.to_rgb8();
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

/// Scenes generated for training and testing when `--train-size` / `--test-limit` are not given.
const TRAIN_SCENES: usize = 4000;
const TEST_SCENES: usize = 500;
/// The test scenes come from test items and a fixed seed apart from any training seed.
const TEST_SEED: u64 = 0xde7_7e57;
/// The run's YOLO head (anchors in grid cells, class names, input side), beside its checkpoints.
pub const HEAD_FILE: &str = "head.json";
/// Epochs at the end of a run on people's own photos that train without mosaic (Ultralytics'
/// default).
const CLOSE_MOSAIC: usize = 10;
/// The input side of a detector trained on people's own photos, unless `--size` says.
const OWN_DATA_SIDE: usize = 416;

#[derive(serde::Serialize, serde::Deserialize)]
struct HeadFile {
    anchors: Vec<(f32, f32)>,
    classes: Vec<String>,
    input: [usize; 3],
    /// Runs on people's own data: where it is and how pictures were prepared (absent for the
    /// generated scenes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<OwnData>,
}

/// How a run on people's own labelled photos read them: the data set, its validation split
/// when the data set named none, and the tiles pictures were cut into. Pictures are
/// letterboxed (aspect kept, padded grey) to the input side.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct OwnData {
    dataset: PathBuf,
    layout: convnet_data::detection::Layout,
    val_fraction: f64,
    seed: u64,
    tiling: Option<Tiling>,
}

impl OwnData {
    /// The data set with its validation split, as training read it.
    fn open(&self) -> Result<convnet_data::detection::DetectionDataset> {
        let mut ds = convnet_data::detection::open(&self.dataset)?;
        if ds.val.is_empty() {
            ds.split_off_val(self.val_fraction, self.seed);
        }
        Ok(ds)
    }
}

/// The held-out scenes, the same for training's report and `convnet eval`: test items, a fixed
/// seed, the first `limit` (default 500).
fn test_scenes(
    data: Option<&Path>,
    limit: Option<usize>,
    side: usize,
) -> Result<convnet_data::synthetic::DetectionSet> {
    let items = super::segment::scene_items(data, Split::Test)?;
    Ok(convnet_data::synthetic::detection_scenes(
        &items,
        limit.unwrap_or(TEST_SCENES),
        side,
        TEST_SEED,
    )?)
}

/// A set to score a detector on, with where its squares came from (own data) so the COCO
/// files name pictures and tiles in their own pixels.
struct TestSet {
    set: DetectionSet,
    sources: Option<Vec<Source>>,
}

impl TestSet {
    fn scenes(set: DetectionSet) -> Self {
        Self { set, sources: None }
    }

    fn prepared(p: Prepared) -> Self {
        Self {
            set: p.set,
            sources: Some(p.sources),
        }
    }

    /// The held-out set of a run on own data: the data set's test split, else its validation.
    fn own(data: &OwnData, classes: &[String], side: usize, limit: Option<usize>) -> Result<Self> {
        Self::held_out(&data.open()?, data, classes, side, limit)
    }

    /// [`Self::own`] from the data set already opened.
    fn held_out(
        ds: &convnet_data::detection::DetectionDataset,
        data: &OwnData,
        classes: &[String],
        side: usize,
        limit: Option<usize>,
    ) -> Result<Self> {
        let images = if ds.test.is_empty() {
            &ds.val
        } else {
            &ds.test
        };
        let images = &images[..limit.unwrap_or(usize::MAX).min(images.len())];
        if images.is_empty() {
            bail!(
                "{} has no test or validation pictures to score on",
                data.dataset.display()
            );
        }
        Ok(Self::prepared(prepare(images, classes, side, data.tiling)?))
    }
}

/// A detector trained here: its head file and a checkpoint (the best unless named).
struct Trained {
    run_dir: PathBuf,
    head_file: HeadFile,
    model: convnet_layers::Sequential,
    head: YoloHead,
    checkpoint: PathBuf,
    meta: convnet_train::CheckpointMeta,
}

impl HeadFile {
    /// The run directory of `path` (a run directory or one of its checkpoints) and its head
    /// file's path, when that file is there (the run is a detector's).
    fn locate(path: &Path) -> Option<(PathBuf, PathBuf)> {
        let run_dir = if path.is_dir() {
            path.to_path_buf()
        } else {
            super::eval::run_dir_of(path)
        };
        let head_path = run_dir.join(HEAD_FILE);
        head_path.is_file().then_some((run_dir, head_path))
    }

    fn read(head_path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(head_path)
            .with_context(|| format!("cannot read {}", head_path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a detector's head file", head_path.display()))
    }
}

impl Trained {
    /// `path`: a run directory (its best checkpoint, else its last) or one of its checkpoints.
    fn load(path: &Path, device: &Device) -> Result<Self> {
        let Some((run_dir, head_path)) = HeadFile::locate(path) else {
            bail!("{} is not in a detector's run directory", path.display());
        };
        let head_file = HeadFile::read(&head_path)?;
        let checkpoint = convnet_train::Checkpoint::resolve(path)?;
        let saved = convnet_train::Checkpoint::load(&checkpoint)?;
        let model = saved.model(&checkpoint, device)?;
        let head = YoloHead {
            anchors: head_file.anchors.clone(),
            classes: head_file.classes.len(),
        };
        Ok(Self {
            run_dir,
            head_file,
            model,
            head,
            checkpoint,
            meta: saved.meta,
        })
    }
}

/// The detector's run directory that `path` (a run directory or one of its checkpoints) is
/// in, if it is a detector's (it has a head file).
pub(super) fn detector_run_of(path: &Path) -> Option<PathBuf> {
    HeadFile::locate(path).map(|(run_dir, _)| run_dir)
}

/// The anchors of the detector run that `--init` names, when it is one: its head was trained
/// for them, so a detector that goes on training keeps them rather than k-means' new ones.
/// `None` for other initial weights (a backbone, a `.pth`); an error when the run's head does
/// not fit (another anchor count or other classes).
fn inherited_anchors(
    init: Option<&Path>,
    anchors: usize,
    classes: &[String],
) -> Result<Option<(HeadFile, PathBuf)>> {
    let Some(init) = init else {
        return Ok(None);
    };
    let Some((_, head_path)) = HeadFile::locate(init) else {
        return Ok(None);
    };
    let head = HeadFile::read(&head_path)?;
    if head.anchors.len() != anchors {
        bail!(
            "--init {} is a detector with {} anchors; this run asks for {anchors} (--anchors)",
            init.display(),
            head.anchors.len()
        );
    }
    if head.classes != classes {
        bail!(
            "--init {} is a detector of other classes ({}); these scenes have {}",
            init.display(),
            head.classes.join(", "),
            classes.join(", ")
        );
    }
    Ok(Some((head, head_path)))
}

/// What a detection run trains, validates and is tested on, and how to say so.
struct RunData {
    train: DetectionSet,
    validation: DetectionSet,
    test: TestSet,
    own: Option<OwnData>,
    description: String,
}

/// The generated scenes: Fashion-MNIST items on textured grey backgrounds.
fn scene_data(args: &super::train::Args, config: &convnet_train::TrainConfig) -> Result<RunData> {
    use convnet_data::synthetic::detection_scenes;
    let side = args.size.unwrap_or(96);
    let items = super::segment::scene_items(args.data.as_deref(), Split::Train)?;
    let n = args.train_size.or(args.limit).unwrap_or(TRAIN_SCENES);
    let started = std::time::Instant::now();
    let mut train = detection_scenes(&items, n, side, args.seed)?;
    let val_n = ((n as f64) * config.val_fraction).round() as usize;
    let validation = train.split_off(n - val_n)?;
    let test = test_scenes(args.data.as_deref(), args.test_limit, side)?;
    let description = format!(
        "{} training, {} validation, {} test scenes of {side}x{side} ({:.1} s to generate)",
        train.len(),
        validation.len(),
        test.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(RunData {
        train,
        validation,
        test: TestSet::scenes(test),
        own: None,
        description,
    })
}

/// People's own labelled photos (YOLO, COCO, VOC or CSV), letterboxed to the input side,
/// tiled first with `--tile`.
fn own_data(args: &super::train::Args, config: &convnet_train::TrainConfig) -> Result<RunData> {
    let side = args.size.unwrap_or(OWN_DATA_SIDE);
    let tiling = match args.tile {
        Some(tile) if args.overlap >= tile => {
            bail!(
                "--overlap ({}) must be smaller than --tile ({tile})",
                args.overlap
            )
        }
        Some(tile) => Some(Tiling {
            tile: u32::try_from(tile)?,
            overlap: u32::try_from(args.overlap)?,
        }),
        None => None,
    };
    let started = std::time::Instant::now();
    // Absolute, so `convnet eval RUN` finds the data from any folder.
    let dataset = PathBuf::from(&config.dataset);
    if !dataset.exists() {
        bail!(
            "--dataset {}: detection trains on the generated scenes (`scenes`) or on a labelled data set (a YOLO, COCO, Pascal VOC or CSV folder or file), and there is no such file or folder",
            config.dataset
        );
    }
    let mut own = OwnData {
        dataset: std::fs::canonicalize(&dataset).unwrap_or(dataset),
        layout: convnet_data::detection::Layout::Yolo,
        val_fraction: config.val_fraction,
        seed: config.seed,
        tiling,
    };
    let ds = own.open()?;
    own.layout = ds.layout;
    let limit = args.limit.unwrap_or(usize::MAX);
    let train_pictures = &ds.train[..limit.min(ds.train.len())];
    let prepared = prepare(train_pictures, &ds.classes, side, tiling)?;
    if prepared.lost > 0 {
        eprintln!(
            "warning: {} training boxes are too large for any {}-pixel tile to hold half of them; they are left out (a larger --tile keeps them)",
            prepared.lost,
            tiling.map_or(0, |t| t.tile)
        );
    }
    let train = prepared.set;
    let validation = if ds.val.is_empty() {
        DetectionSet {
            images: vec![],
            objects: vec![],
            size: side,
            channels: train.channels,
            classes: ds.classes.clone(),
        }
    } else {
        prepare(&ds.val, &ds.classes, side, tiling)?.set
    };
    let test = TestSet::held_out(&ds, &own, &ds.classes, side, args.test_limit)?;
    let boxes = |set: &DetectionSet| set.objects.iter().map(Vec::len).sum::<usize>();
    let pieces = if tiling.is_some() {
        "tiles"
    } else {
        "pictures"
    };
    let description = format!(
        "{} data set {} ({} classes): {} training pictures as {} {pieces} with {} boxes, {} validation {pieces} with {} boxes, {} test {pieces}{}; letterboxed to {side}x{side} ({:.1} s to read)",
        ds.layout.name(),
        own.dataset.display(),
        ds.classes.len(),
        train_pictures.len(),
        train.len(),
        boxes(&train),
        validation.len(),
        boxes(&validation),
        test.set.len(),
        if ds.test.is_empty() {
            " (the validation split: the data set has no test split)"
        } else {
            ""
        },
        started.elapsed().as_secs_f64()
    );
    Ok(RunData {
        train,
        validation,
        test,
        own: Some(own),
        description,
    })
}

/// The network a run trains: a spec file, or a zoo detector for these pictures and classes.
fn detector_spec(
    model: &str,
    input: [usize; 3],
    anchors: usize,
    classes: usize,
) -> Result<convnet_layers::ModelSpec> {
    if pretrained::is_spec_file(model) {
        return Ok(convnet_layers::ModelSpec::from_file(Path::new(model))?);
    }
    if let Some(zoo) = convnet_zoo::TinyYoloConfig::by_name(model) {
        return convnet_zoo::TinyYoloConfig {
            input,
            anchors,
            classes,
            ..zoo
        }
        .spec()
        .map_err(anyhow::Error::msg);
    }
    if let Some(zoo) = convnet_zoo::YoloBackboneConfig::by_name(model) {
        return zoo
            .spec(input, anchors, classes)
            .map_err(anyhow::Error::msg);
    }
    bail!(
        "detection models: tiny-yolo, tiny-yolo-wide, {}, or a spec file ending in a YOLO head",
        convnet_zoo::YoloBackboneConfig::NAMES.join(", ")
    )
}

/// `convnet train --task detect`: a YOLO detector on generated scenes or on people's own
/// labelled photos; anchors by k-means on the training boxes (or the `--init` detector's),
/// then mAP on the held-out pictures (written as COCO JSON too, with precision–recall curves).
pub fn train(
    args: &super::train::Args,
    config: convnet_train::TrainConfig,
    run_dir: &Path,
    device: &Device,
    mut bars: super::progress::Bars,
) -> Result<()> {
    use convnet_train::detect::{DetectionData, train_detection};

    let scenes = config.dataset == super::segment::SCENES;
    if scenes && args.tile.is_some() {
        bail!("--tile cuts large photos of your own data set; the generated scenes are small");
    }
    let RunData {
        train,
        validation,
        test,
        own,
        description,
    } = if scenes {
        scene_data(args, &config)?
    } else {
        own_data(args, &config)?
    };
    let side = train.size;
    let classes = train.classes.clone();
    let input = [train.channels, side, side];
    let spec = detector_spec(&config.model, input, args.anchors, classes.len())?;
    let out = spec.build_unallocated(device)?.output_shape()?;
    let &[channels, gh, gw] = out.dims() else {
        bail!(
            "{} must end in a grid [A (5 + C), S, S], not {:?}",
            spec.name,
            out.dims()
        );
    };
    if channels != args.anchors * (5 + classes.len()) {
        bail!(
            "{} gives {channels} numbers per cell; {} anchors and {} classes need {}",
            spec.name,
            args.anchors,
            classes.len(),
            args.anchors * (5 + classes.len())
        );
    }
    let cell = [side as f32 / gw as f32, side as f32 / gh as f32];
    let (anchors, origin) = match inherited_anchors(args.init.as_deref(), args.anchors, &classes)? {
        Some((head, head_path)) => (head.anchors, format!("from {}", head_path.display())),
        None => {
            let boxes: Vec<(f32, f32)> = train
                .objects
                .iter()
                .flatten()
                .map(|o| (o.bbox[2] - o.bbox[0], o.bbox[3] - o.bbox[1]))
                .collect();
            let found = convnet_vision::anchors::kmeans_anchors(&boxes, args.anchors, config.seed)?;
            let anchors = found
                .shapes
                .iter()
                .map(|&(w, h)| (w / cell[0], h / cell[1]))
                .collect();
            (
                anchors,
                format!("by k-means, mean IoU {:.3}", found.mean_iou),
            )
        }
    };
    let head = YoloHead {
        anchors,
        classes: classes.len(),
    };
    let augment = BoxAugment::parse(if config.augment.is_empty() {
        "none"
    } else {
        &config.augment
    })?;
    bars.line(&format!(
        "data: {description}; {} anchors (cells) {:?}, {origin}; augmentation: {}",
        args.anchors,
        head.anchors,
        augment.describe(),
    ));
    let head_file = HeadFile {
        anchors: head.anchors.clone(),
        classes: classes.clone(),
        input,
        data: own,
    };
    convnet_train::write_atomically(
        &run_dir.join(HEAD_FILE),
        serde_json::to_string_pretty(&head_file)?.as_bytes(),
    )?;
    let data = DetectionData {
        train,
        validation: (!validation.is_empty()).then_some(validation),
        head: head.clone(),
        augment,
        // People's own photos hold many objects close together (tree crowns, cells, cars):
        // YOLOv2's ignore threshold. The generated scenes keep their published recipe.
        ignore_iou: (!scenes).then_some(convnet_train::detect::IGNORE_IOU),
        close_mosaic: if scenes { 0 } else { CLOSE_MOSAIC },
    };
    let (initial, init) = super::train::initial_model(args, &spec, device, &bars)?;
    let outcome = train_detection(
        &spec,
        initial.as_ref(),
        &data,
        &config,
        run_dir,
        device,
        &mut bars,
    )?;
    let best = convnet_train::Checkpoint::resolve(&outcome.best_checkpoint)?;
    let model = convnet_train::Checkpoint::load(&best)?.model(&best, device)?;
    let test_scores = evaluate_on(
        &[(&model, &head)],
        &test,
        &classes,
        run_dir,
        "test",
        false,
        device,
    )?;
    let mut report = json!({
        "model": spec.name,
        "init": init,
        "classes": classes,
        "anchors": head.anchors,
        "epochs": outcome.history.len(),
        "seconds_per_epoch": outcome.seconds_per_epoch(),
        "best_epoch": outcome.best_epoch,
        "best_val_map50": outcome.best_val_accuracy,
        "run_dir": run_dir,
    });
    merge(&mut report, test_scores);
    if super::train::write_test_report(run_dir, &report, args.json)? {
        return Ok(());
    }
    print_scores(&report, &classes, outcome.best_epoch);
    println!("{:.1} s per epoch", outcome.seconds_per_epoch());
    println!(
        "metrics:     {}",
        run_dir.join("test-metrics.json").display()
    );
    println!(
        "COCO files:  {} and test-pred.json",
        run_dir.join("test-gt.json").display()
    );
    println!("PR curves:   {}", run_dir.join("test-pr.png").display());
    println!("checkpoints: {}", outcome.best_checkpoint.display());
    Ok(())
}

/// `a`'s fields with `b`'s added (both JSON objects).
fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    if let (Some(a), serde_json::Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
}

/// mAP of `members` on the held-out `test` pictures: VOC all-point and 11-point AP@0.5, COCO
/// mAP@[.5:.95], per class; the ground truth and the detections written as COCO JSON
/// (`{prefix}-gt.json`, `{prefix}-pred.json`, in each picture's or tile's own pixels) and the
/// precision–recall curves at IoU 0.5 as `{prefix}-pr.png`, into `dir`.
fn evaluate_on(
    members: &[(&convnet_layers::Sequential, &YoloHead)],
    test: &TestSet,
    classes: &[String],
    dir: &Path,
    prefix: &str,
    flip_tta: bool,
    device: &Device,
) -> Result<serde_json::Value> {
    use convnet_train::detect::{EVAL_SCORE, as_map_inputs, detect_set};
    use convnet_vision::map::{Interpolation, coco_map, pr_curves, voc_map};

    let detections = detect_set(members, &test.set, EVAL_SCORE, flip_tta, 32, device)?;
    let (truth, scored) = as_map_inputs(&test.set, &detections);
    let voc = voc_map(&truth, &scored, 0.5, Interpolation::AllPoint);
    let voc11 = voc_map(&truth, &scored, 0.5, Interpolation::ElevenPoint);
    let coco = coco_map(&truth, &scored, 100);
    write_coco_files(test, &truth, &scored, classes, dir, prefix)?;
    let curves = pr_curves(&truth, &scored, 0.5);
    pr_chart(
        &curves,
        &voc,
        classes,
        &dir.join(format!("{prefix}-pr.png")),
    )?;
    let per_class: Vec<_> = classes
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let objects = truth.iter().filter(|g| g.class == c as u64).count();
            json!({"class": name, "objects": objects, "ap50": voc.per_class.get(&(c as u64)), "coco_ap": coco.per_class.get(&(c as u64))})
        })
        .collect();
    Ok(json!({
        "flip_tta": flip_tta,
        "test_scenes": test.set.len(),
        "test_objects": truth.len(),
        "test_map50": voc.mean,
        "test_map50_11point": voc11.mean,
        "test_coco_map": coco.map,
        "test_coco_map50": coco.map50,
        "test_coco_map75": coco.map75,
        "test_per_class": per_class,
    }))
}

/// The test pictures' ground truth and the detections as COCO JSON, for other tools: boxes in
/// each picture's (or tile's) own pixels, pictures named as `convnet dataset tile` names
/// tiles; categories numbered from 1 as COCO does (category `c + 1` is class `c`).
fn write_coco_files(
    test: &TestSet,
    truth: &[convnet_vision::map::GroundTruth],
    scored: &[convnet_vision::map::Scored],
    classes: &[String],
    dir: &Path,
    prefix: &str,
) -> Result<()> {
    let side = test.set.size as f32;
    let mut pieces: std::collections::HashMap<&Path, usize> = std::collections::HashMap::new();
    for s in test.sources.iter().flatten() {
        *pieces.entry(&s.picture).or_default() += 1;
    }
    let image = |i: usize| match &test.sources {
        Some(sources) => {
            let s = &sources[i];
            let name = if pieces[s.picture.as_path()] == 1 && s.origin == [0, 0] {
                s.picture
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            } else {
                let stem = s.picture.file_stem().unwrap_or_default().to_string_lossy();
                format!("{stem}_{:04}_{:04}.png", s.origin[0], s.origin[1])
            };
            (name, s.size[0] as f32, s.size[1] as f32)
        }
        None => (format!("{i}.png"), side, side),
    };
    let to_own = |i: u64, b: BBox| match &test.sources {
        Some(sources) => sources[i as usize].letterbox.to_picture(b),
        None => b,
    };
    let xywh = |b: BBox| [b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1];
    let images: Vec<_> = (0..test.set.len())
        .map(|i| {
            let (name, w, h) = image(i);
            json!({"id": i, "file_name": name, "width": w, "height": h})
        })
        .collect();
    let annotations: Vec<_> = truth
        .iter()
        .enumerate()
        .map(|(k, g)| {
            let b = to_own(g.image, g.bbox);
            json!({"id": k + 1, "image_id": g.image, "category_id": g.class + 1,
                   "bbox": xywh(b), "area": b.area(), "iscrowd": 0})
        })
        .collect();
    let categories: Vec<_> = classes
        .iter()
        .enumerate()
        .map(|(c, name)| json!({"id": c + 1, "name": name}))
        .collect();
    let results: Vec<_> = scored
        .iter()
        .map(|d| {
            json!({"image_id": d.image, "category_id": d.class + 1, "score": d.score,
                   "bbox": xywh(to_own(d.image, d.bbox))})
        })
        .collect();
    let gt = json!({"images": images, "annotations": annotations, "categories": categories});
    convnet_train::write_atomically(
        &dir.join(format!("{prefix}-gt.json")),
        serde_json::to_string(&gt)?.as_bytes(),
    )?;
    convnet_train::write_atomically(
        &dir.join(format!("{prefix}-pred.json")),
        serde_json::to_string(&results)?.as_bytes(),
    )?;
    Ok(())
}

/// Each class's precision–recall curve at IoU 0.5 in one chart, its AP in the legend.
fn pr_chart(
    curves: &std::collections::BTreeMap<u64, Vec<(f64, f64)>>,
    voc: &convnet_vision::map::ApReport,
    classes: &[String],
    path: &Path,
) -> Result<()> {
    use convnet_vision::chart::{Panel, Series, line_chart_png};
    // A curve has a point per detection; a few hundred are plenty to draw it.
    let series = curves
        .iter()
        .map(|(&c, points)| {
            let step = points.len().div_ceil(400).max(1);
            let thinned: Vec<(f64, f64)> = points
                .iter()
                .step_by(step)
                .chain(points.last())
                .copied()
                .collect();
            let name = classes.get(c as usize).map_or("?", String::as_str);
            let ap = voc.per_class.get(&c).copied().unwrap_or(0.0);
            Series::new(format!("{name} AP {ap:.3}"), thinned)
        })
        .collect();
    let panel = Panel::new(
        format!("Precision-recall at IoU 0.5 (mAP {:.3})", voc.mean),
        "recall",
        "precision",
        series,
    );
    line_chart_png(path, &[panel], 720, 560)?;
    Ok(())
}

/// The test part of a report, as a table.
fn print_scores(report: &serde_json::Value, classes: &[String], epoch: Option<usize>) {
    let number = |key: &str| report[key].as_f64().unwrap_or(f64::NAN);
    println!(
        "test: mAP@0.5 {:.4} (VOC all-point; 11-point {:.4}), COCO mAP@[.5:.95] {:.4} on {} scenes{}{}",
        number("test_map50"),
        number("test_map50_11point"),
        number("test_coco_map"),
        report["test_scenes"],
        if report["flip_tta"] == true {
            " with flip TTA"
        } else {
            ""
        },
        epoch.map_or(String::new(), |e| format!(" (best checkpoint, epoch {e})"))
    );
    for (c, name) in classes.iter().enumerate() {
        println!(
            "  {name:<14} AP@0.5 {:.4}",
            report["test_per_class"][c]["ap50"].as_f64().unwrap_or(0.0)
        );
    }
}

/// `convnet eval RUN` for a detector trained with `convnet train --task detect`: `checkpoint`
/// (the run directory, for its best checkpoint, or one of its checkpoint files) on the same
/// held-out pictures the training run scored (the generated test scenes, or its own data
/// set's test split, else validation split; the first `limit` of them), alone or
/// averaged with the detectors of `ensemble` (other such runs, for the same classes and
/// picture size), optionally with flip test-time augmentation; the COCO files written beside
/// the run's own as `eval-gt.json` and `eval-pred.json`, its PR curves as `eval-pr.png`.
pub fn evaluate_run(
    checkpoint: &Path,
    ensemble: &[PathBuf],
    options: &super::eval::Options,
    device: &Device,
) -> Result<()> {
    let first = Trained::load(checkpoint, device)?;
    let mut runs = vec![];
    for dir in ensemble {
        let other = Trained::load(dir, device)?;
        if other.head_file.classes != first.head_file.classes
            || other.head_file.input != first.head_file.input
            || other.head_file.anchors.len() != first.head_file.anchors.len()
            || other
                .head_file
                .data
                .as_ref()
                .map(|d| (&d.dataset, d.tiling))
                != first
                    .head_file
                    .data
                    .as_ref()
                    .map(|d| (&d.dataset, d.tiling))
        {
            bail!(
                "{} and {} detect different classes, take different pictures or have different numbers of anchors: they cannot be averaged",
                first.run_dir.display(),
                dir.display()
            );
        }
        runs.push(other);
    }
    runs.insert(0, first);
    let members: Vec<_> = runs.iter().map(|r| (&r.model, &r.head)).collect();
    let classes = &runs[0].head_file.classes;
    let [_, side, _] = runs[0].head_file.input;
    let test = match &runs[0].head_file.data {
        Some(own) => TestSet::own(own, classes, side, options.limit)?,
        None => TestSet::scenes(test_scenes(options.data, options.limit, side)?),
    };
    let run_dir = &runs[0].run_dir;
    let mut report = evaluate_on(
        &members,
        &test,
        classes,
        run_dir,
        "eval",
        options.flip_tta,
        device,
    )?;
    let checkpoints: Vec<&PathBuf> = runs.iter().map(|r| &r.checkpoint).collect();
    merge(
        &mut report,
        json!({"checkpoints": checkpoints, "classes": classes}),
    );
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for r in &runs {
            println!("{}", super::eval::checkpoint_line(&r.checkpoint, &r.meta));
        }
        print_scores(&report, classes, None);
    }
    Ok(())
}
