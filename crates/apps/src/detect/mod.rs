//! Detection: YOLO detectors over pictures — face-api.js's Tiny Face Detector, or a detector
//! trained by `convnet train --task detect` (its run directory holds the head file) — boxes with
//! class and score in the picture's pixels, tile by tile for large pictures, drawn on request.

pub mod graph;
pub mod train;
pub mod val;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor, TensorData};
use convnet_data::detection::letterbox::letterbox;
use convnet_data::detection::prepare::Tiling;
use convnet_data::detection::tile::{merge_tiles, origins};
use convnet_layers::Mode;
use convnet_vision::chart::series_colour;
use convnet_vision::draw::draw_box;
use convnet_vision::yolo::YoloHead;
use convnet_vision::{BBox, Detection, nms_per_class};
use image::RgbImage;
use serde::Serialize;

use crate::models::{self, run_dir_of};

/// The weights file of face-api's Tiny Face Detector, as the fetch script lays it out.
const TINY_FACE_WEIGHTS: &str =
    "third_party/face-api/model/tiny_face_detector_model-weights_manifest.json";

/// A detector the command knows: face-api's, or one trained here.
pub enum Detector {
    /// face-api.js's Tiny Face Detector at input side `size`, run through face-api's own input
    /// and output path (`convnet_face::tiny_face`); `preprocess` describes that input (the
    /// `faceapi` recipe, which resizes the same way).
    TinyFace {
        model: Box<convnet_layers::Sequential>,
        preprocess: convnet_data::Preprocess,
        size: usize,
    },
    /// A run of `convnet train --task detect`.
    Trained(Box<Trained>),
    /// A COCO detector that is a TF.js graph model (the human package's CenterNet or
    /// NanoDet, `models/NAME.json`), translated to ONNX.
    Graph(Box<graph::GraphDetector>),
}

impl Detector {
    /// `model`: `tiny-face` (with `weights`, default the fetched face-api file, and input side
    /// `size`, default 416), or a run directory of `convnet train --task detect` or one of its
    /// checkpoints.
    pub fn open(
        model: &str,
        weights: Option<&Path>,
        size: Option<usize>,
        device: &Device,
    ) -> Result<Self> {
        if convnet_graph::tfjs::is_graph_model(Path::new(model)) {
            let g = graph::GraphDetector::open(Path::new(model), device)?;
            if size.is_some_and(|s| s != g.side()) || weights.is_some() {
                bail!(
                    "{model} takes {0}x{0} pictures and holds its weights: --size and --weights do not apply",
                    g.side()
                );
            }
            return Ok(Detector::Graph(Box::new(g)));
        }
        // A run directory (its best checkpoint) or one of its checkpoint files.
        if HeadFile::locate(Path::new(model)).is_some() {
            return Ok(Detector::Trained(Box::new(Trained::load(
                Path::new(model),
                device,
            )?)));
        }
        if !matches!(model, "tiny-face" | "tiny_face") {
            bail!(
                "'{model}' is not a detector; detectors: tiny-face, or the run directory of `convnet train --task detect`"
            );
        }
        let size = size.unwrap_or(416);
        if size < 32 || !size.is_multiple_of(32) {
            bail!("--size must be a multiple of 32 (at least 32), not {size}");
        }
        let spec = models::spec_for(model, Some(&[3, size, size]), 1)?;
        // Counted from the network's own maps at this size, before any weight is read.
        spec.summary(device)?
            .forward_bytes(1)
            .check(&format!("detection at {size}x{size} (--size {size})"))?;
        let weights = weights_for(model, weights)?;
        let dict = models::read_weights(&weights, device)?;
        let (net, _) = models::load(&spec, &dict, false, &weights, device)?;
        Ok(Detector::TinyFace {
            model: Box::new(net),
            preprocess: models::preprocess_for(model, None, Some(size))?,
            size,
        })
    }

    pub fn classes(&self) -> Vec<String> {
        match self {
            Detector::TinyFace { .. } => vec!["face".into()],
            Detector::Trained(t) => t.head_file.classes.clone(),
            Detector::Graph(g) => g.classes(),
        }
    }

    /// The tiles a picture is cut into unless the command says otherwise.
    pub fn default_tiling(&self) -> Option<Tiling> {
        match self {
            Detector::Trained(t) => t.head_file.data.as_ref().and_then(|d| d.tiling),
            Detector::TinyFace { .. } | Detector::Graph(_) => None,
        }
    }

    /// The detections in `picture` (in its pixels), above `score`, after per-class NMS.
    pub fn detect(
        &self,
        picture: &image::RgbImage,
        score: f32,
        iou: f32,
        device: &Device,
    ) -> Result<Vec<Detection>> {
        let (w, h) = (picture.width() as f32, picture.height() as f32);
        let (model, head, x, back): (_, _, Vec<f32>, Box<dyn Fn(BBox) -> BBox>) = match self {
            Detector::TinyFace { model, size, .. } => {
                return tiny_face(model, *size, picture, score, iou, device);
            }
            Detector::Graph(g) => return g.detect(picture, score, iou, device),
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
        let side = self.input_side();
        let channels = x.len() / (side * side);
        let x = Tensor::<4>::from_data(TensorData::new(x, [1, channels, side, side]), device);
        let y = model.forward(x, Mode::Eval)?.into_map2d()?;
        let [_, _, gh, gw] = y.dims();
        let values = y.into_data().convert::<f32>().try_to_vec::<f32>()?;
        // A detector trained here suppresses in the picture's pixels, after clipping (which
        // can raise two boxes' overlap), so tiles merged by the same NMS give the same boxes
        // as the whole picture (face-api's suppresses in the network's coordinates).
        let found: Vec<Detection> = head
            .decode(&values, [gh, gw], score)?
            .into_iter()
            .map(|d| Detection {
                bbox: back(d.bbox).clip(w, h),
                ..d
            })
            .collect();
        Ok(nms_per_class(&found, score, iou))
    }

    /// The detections in `picture`, tile by tile when `tiling` says, merged across tiles.
    pub fn detect_tiled(
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

/// face-api's Tiny Face Detector on `picture`: face-api's input, decoding and suppression
/// (in the network's coordinates, as face-api does), boxes clipped to the picture.
fn tiny_face(
    model: &convnet_layers::Sequential,
    size: usize,
    picture: &RgbImage,
    score: f32,
    iou: f32,
    device: &Device,
) -> Result<Vec<Detection>> {
    let options = convnet_face::tiny_face::TinyFaceOptions {
        score_threshold: score,
        iou_threshold: iou,
    };
    let (w, h) = (picture.width() as f32, picture.height() as f32);
    Ok(
        convnet_face::tiny_face::detect(model, size, picture, &options, device)?
            .into_iter()
            .map(|f| Detection {
                bbox: f.bbox.clip(w, h),
                score: f.score,
                class: 0,
            })
            .collect(),
    )
}

fn weights_for(model: &str, weights: Option<&Path>) -> Result<PathBuf> {
    if let Some(w) = weights {
        return Ok(w.to_path_buf());
    }
    models::find_default(TINY_FACE_WEIGHTS).with_context(|| {
        format!(
            "no weights for {model}: run scripts/fetch-pretrained.sh (it fetches face-api's models into third_party/) or pass --weights {TINY_FACE_WEIGHTS}"
        )
    })
}

pub fn label(d: &Detection, classes: &[String]) -> String {
    let name = classes.get(d.class).map_or("?", String::as_str);
    format!("{name} {:.2}", d.score)
}

/// The picture with each detection's box and label drawn.
pub fn draw(
    picture: &image::DynamicImage,
    detections: &[Detection],
    classes: &[String],
) -> RgbImage {
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
    img
}

/// The run's YOLO head (anchors in grid cells, class names, input side), beside its checkpoints.
pub const HEAD_FILE: &str = "head.json";

#[derive(serde::Serialize, serde::Deserialize)]
pub struct HeadFile {
    pub anchors: Vec<(f32, f32)>,
    pub classes: Vec<String>,
    pub input: [usize; 3],
    /// Runs on people's own data: where it is and how pictures were prepared (absent for the
    /// generated scenes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<OwnData>,
}

/// How a run on people's own labelled photos read them: the data set, its validation split
/// when the data set named none, and the tiles pictures were cut into. Pictures are
/// letterboxed (aspect kept, padded grey) to the input side.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct OwnData {
    pub dataset: PathBuf,
    pub layout: convnet_data::detection::Layout,
    pub val_fraction: f64,
    pub seed: u64,
    pub tiling: Option<Tiling>,
}

impl OwnData {
    /// The data set with its validation split, as training read it.
    pub fn open(&self) -> Result<convnet_data::detection::DetectionDataset> {
        let mut ds = convnet_data::detection::open(&self.dataset)?;
        if ds.val.is_empty() {
            ds.split_off_val(self.val_fraction, self.seed);
        }
        Ok(ds)
    }
}

/// A detector trained here: its head file and a checkpoint (the best unless named).
pub struct Trained {
    pub run_dir: PathBuf,
    pub head_file: HeadFile,
    pub model: convnet_layers::Sequential,
    pub head: YoloHead,
    pub checkpoint: PathBuf,
    pub meta: convnet_train::CheckpointMeta,
}

impl HeadFile {
    /// The run directory of `path` (a run directory or one of its checkpoints) and its head
    /// file's path, when that file is there (the run is a detector's).
    pub fn locate(path: &Path) -> Option<(PathBuf, PathBuf)> {
        let run_dir = if path.is_dir() {
            path.to_path_buf()
        } else {
            run_dir_of(path)
        };
        let head_path = run_dir.join(HEAD_FILE);
        head_path.is_file().then_some((run_dir, head_path))
    }

    pub fn read(head_path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(head_path)
            .with_context(|| format!("cannot read {}", head_path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a detector's head file", head_path.display()))
    }
}

impl Trained {
    /// `path`: a run directory (its best checkpoint, else its last) or one of its checkpoints.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
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
pub fn detector_run_of(path: &Path) -> Option<PathBuf> {
    HeadFile::locate(path).map(|(run_dir, _)| run_dir)
}

/// One detection as the applications report it: class, score and box in the picture's pixels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Found {
    /// The class name (`None` for an index the detector has no name for).
    pub class: Option<String>,
    pub class_index: usize,
    pub score: f32,
    /// `[x1, y1, x2, y2]`.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
}

/// `detections` with their class names.
pub fn found(detections: &[Detection], classes: &[String]) -> Vec<Found> {
    detections
        .iter()
        .map(|d| Found {
            class: classes.get(d.class).cloned(),
            class_index: d.class,
            score: d.score,
            bbox: [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2],
        })
        .collect()
}

/// How detections are chosen and pictures cut.
#[derive(Debug, Clone, Copy)]
pub struct DetectOptions {
    /// Keep boxes scoring at least this; default: the detector's own (0.5 for face-api's, 0.25
    /// for a trained one).
    pub score: Option<f32>,
    /// Boxes of one class overlapping more than this are one.
    pub iou: f32,
    /// Tile side in pixels (`Some(0)`: no tiling); default: as the detector was trained.
    pub tile: Option<usize>,
    /// Overlap between tiles in pixels; default: the run's, else 32.
    pub overlap: Option<usize>,
}

impl Default for DetectOptions {
    fn default() -> Self {
        Self {
            score: None,
            iou: 0.4,
            tile: None,
            overlap: None,
        }
    }
}

impl DetectOptions {
    /// Refuses scores outside [0, 1) and overlaps outside (0, 1].
    pub fn check(&self) -> Result<()> {
        let valid_score = self.score.is_none_or(|s| (0.0..1.0).contains(&s));
        if !valid_score || self.iou.is_nan() || self.iou <= 0.0 || self.iou > 1.0 {
            bail!("--score must lie in [0, 1) and --iou in (0, 1]");
        }
        Ok(())
    }
}

impl Detector {
    /// The score threshold `options` asks for, else the detector's default.
    pub fn score(&self, options: &DetectOptions) -> f32 {
        options.score.unwrap_or(match self {
            Detector::TinyFace { .. } => 0.5,
            Detector::Trained(_) => 0.25,
            Detector::Graph(_) => graph::DEFAULT_SCORE,
        })
    }

    /// The tiles pictures are cut into: as `options` says, else as the detector was trained.
    pub fn tiling(&self, options: &DetectOptions) -> Result<Option<Tiling>> {
        Ok(match (options.tile, self.default_tiling()) {
            (Some(0), _) | (None, None) => None,
            (Some(tile), run) => {
                let overlap = options
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
        })
    }

    /// The detections in `picture` with `options` (checked), in its pixels.
    pub fn run(
        &self,
        picture: &RgbImage,
        options: &DetectOptions,
        device: &Device,
    ) -> Result<Vec<Detection>> {
        options.check()?;
        let tiling = self.tiling(options)?;
        self.detect_tiled(picture, tiling, self.score(options), options.iou, device)
    }

    /// The input side the network takes.
    pub fn input_side(&self) -> usize {
        match self {
            Detector::TinyFace { size, .. } => *size,
            Detector::Trained(t) => t.head_file.input[1],
            Detector::Graph(g) => g.side(),
        }
    }
}
