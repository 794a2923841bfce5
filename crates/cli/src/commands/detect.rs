//! `convnet detect`: a YOLO detector over a picture: boxes with class and score, drawn on the
//! picture (`-o`) and as JSON for scripts.
//!
//! The pretrained detector is face-api.js's Tiny Face Detector (`--model tiny-face`), whose TF.js
//! weights `scripts/fetch-pretrained.sh` fetches into `third_party/face-api/model/`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor, TensorData};
use convnet_data::fashion_mnist::Split;
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

    /// The detector: `tiny-face` (face-api.js's Tiny Face Detector), or the run directory of a
    /// detector trained with `convnet train --task detect`.
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

    /// Network input side in pixels for tiny-face (a multiple of 32; face-api's default 416).
    /// A trained run uses its own.
    #[arg(long, value_parser = super::args::image_side, allow_negative_numbers = true)]
    size: Option<usize>,

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

pub fn run(args: Args, device: &Device) -> Result<()> {
    if !(0.0..1.0).contains(&args.score) || args.iou.is_nan() || args.iou <= 0.0 || args.iou > 1.0 {
        bail!("--score must lie in [0, 1) and --iou in (0, 1]");
    }
    if Path::new(&args.model).join(HEAD_FILE).is_file() {
        return run_trained(&args, device);
    }
    let size = args.size.unwrap_or(416);
    if size < 32 || !size.is_multiple_of(32) {
        bail!("--size must be a multiple of 32 (at least 32), not {size}");
    }
    let det = detector(&args.model)?;
    let spec = pretrained::spec_for(&args.model, Some(&[3, size, size]), 1)?;
    // Counted from the network's own maps at this size, before any weight is read.
    spec.summary(device)?
        .forward_bytes(1)
        .check(&format!("detection at {size}x{size} (--size {size})"))?;
    let weights = weights_for(&args)?;
    let dict = pretrained::read_weights(&weights, device)?;
    let (model, _) = pretrained::load(&spec, &dict, false, &weights, device)?;
    let preprocess = pretrained::preprocess_for(&args.model, None, Some(size))?;
    let picture = decode_image(&args.image)?;
    let (w, h) = (picture.width() as f32, picture.height() as f32);
    let x = Tensor::<4>::from_data(
        TensorData::new(preprocess.apply(&picture)?, [1, 3, size, size]),
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
        draw(&picture, out, &detections, &det.classes)?;
    }
    report(&args, &detections, &det.classes, [w, h])
}

/// A detector trained here: its best checkpoint and `head.json`; the picture is turned grey
/// and scaled to the network's input (boxes are scaled back).
fn run_trained(args: &Args, device: &Device) -> Result<()> {
    let dir = Path::new(&args.model);
    let Trained {
        head_file, model, ..
    } = Trained::load(dir, device)?;
    let [channels, side, _] = head_file.input;
    if channels != 1 {
        bail!("{}: only greyscale detectors are supported", dir.display());
    }
    let picture = decode_image(&args.image)?;
    let (w, h) = (picture.width() as f32, picture.height() as f32);
    let grey = image::imageops::resize(
        &picture.to_luma8(),
        side as u32,
        side as u32,
        image::imageops::FilterType::Triangle,
    );
    let values: Vec<f32> = grey.pixels().map(|p| f32::from(p.0[0]) / 255.0).collect();
    let x = Tensor::<4>::from_data(TensorData::new(values, [1, 1, side, side]), device);
    let y = model.forward(x, Mode::Eval)?.into_map2d()?;
    let [_, _, gh, gw] = y.dims();
    let values = y.into_data().convert::<f32>().try_to_vec::<f32>()?;
    let head = YoloHead {
        anchors: head_file.anchors,
        classes: head_file.classes.len(),
    };
    let detections: Vec<Detection> = head
        .detect(&values, [gh, gw], args.score, args.iou)?
        .into_iter()
        .map(|d| Detection {
            bbox: d.bbox.scale(w, h).clip(w, h),
            ..d
        })
        .collect();
    if let Some(out) = &args.output {
        draw(&picture, out, &detections, &head_file.classes)?;
    }
    report(args, &detections, &head_file.classes, [w, h])
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

/// Scenes generated for training and testing when `--train-size` / `--test-limit` are not given.
const TRAIN_SCENES: usize = 4000;
const TEST_SCENES: usize = 500;
/// The test scenes come from test items and a fixed seed apart from any training seed.
const TEST_SEED: u64 = 0xde7_7e57;
/// The run's YOLO head (anchors in grid cells, class names, input side), beside its checkpoints.
pub const HEAD_FILE: &str = "head.json";

#[derive(serde::Serialize, serde::Deserialize)]
struct HeadFile {
    anchors: Vec<(f32, f32)>,
    classes: Vec<String>,
    input: [usize; 3],
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

/// A detector trained here: its head file and a checkpoint (the best unless named).
struct Trained {
    run_dir: PathBuf,
    head_file: HeadFile,
    model: convnet_layers::Sequential,
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
        Ok(Self {
            run_dir,
            head_file,
            model,
            checkpoint,
            meta: saved.meta,
        })
    }

    fn head(&self) -> YoloHead {
        YoloHead {
            anchors: self.head_file.anchors.clone(),
            classes: self.head_file.classes.len(),
        }
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

/// `convnet train --task detect`: a Tiny-YOLO on generated scenes, anchors by k-means on the
/// training boxes (or the `--init` detector's), then mAP on the held-out test scenes (written
/// as COCO JSON too).
pub fn train(
    args: &super::train::Args,
    config: convnet_train::TrainConfig,
    run_dir: &Path,
    device: &Device,
    mut bars: super::progress::Bars,
) -> Result<()> {
    use convnet_data::synthetic::detection_scenes;
    use convnet_train::detect::{DetectionData, train_detection};

    if config.dataset != super::segment::SCENES {
        bail!(
            "detection trains on the generated scenes (--dataset scenes), not '{}'",
            config.dataset
        );
    }
    let side = args.size.unwrap_or(96);
    let items = super::segment::scene_items(args.data.as_deref(), Split::Train)?;
    let n = args.train_size.or(args.limit).unwrap_or(TRAIN_SCENES);
    let started = std::time::Instant::now();
    let mut train = detection_scenes(&items, n, side, args.seed)?;
    let val_n = ((n as f64) * config.val_fraction).round() as usize;
    let validation = train.split_off(n - val_n)?;
    let test = test_scenes(args.data.as_deref(), args.test_limit, side)?;
    let generated = started.elapsed().as_secs_f64();
    let classes = train.classes.clone();
    let spec = if pretrained::is_spec_file(&config.model) {
        convnet_layers::ModelSpec::from_file(Path::new(&config.model))?
    } else if let Some(zoo) = convnet_zoo::TinyYoloConfig::by_name(&config.model) {
        convnet_zoo::TinyYoloConfig {
            input: [1, side, side],
            anchors: args.anchors,
            classes: classes.len(),
            ..zoo
        }
        .spec()
        .map_err(anyhow::Error::msg)?
    } else {
        bail!("detection models: tiny-yolo, tiny-yolo-wide, or a spec file ending in a YOLO head");
    };
    let out = spec.build(device)?.output_shape()?;
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
    bars.line(&format!(
        "data: {} training, {} validation, {} test scenes of {side}x{side} ({generated:.1} s to generate); {} anchors (cells) {:?}, {origin}",
        train.len(),
        validation.len(),
        test.len(),
        args.anchors,
        head.anchors,
    ));
    let head_file = HeadFile {
        anchors: head.anchors.clone(),
        classes: classes.clone(),
        input: [1, side, side],
    };
    convnet_train::write_atomically(
        &run_dir.join(HEAD_FILE),
        serde_json::to_string_pretty(&head_file)?.as_bytes(),
    )?;
    let flip = config
        .augment
        .split(',')
        .any(|a| a.trim().starts_with("flip"));
    let data = DetectionData {
        train,
        validation: (!validation.is_empty()).then_some(validation),
        head: head.clone(),
        flip,
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
    let files = [run_dir.join("test-gt.json"), run_dir.join("test-pred.json")];
    let test_scores = evaluate_on(&[(&model, &head)], &test, &classes, &files, false, device)?;
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
    println!("checkpoints: {}", outcome.best_checkpoint.display());
    Ok(())
}

/// `a`'s fields with `b`'s added (both JSON objects).
fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    if let (Some(a), serde_json::Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
}

/// mAP of `model` on the held-out `test` scenes: VOC all-point and 11-point AP@0.5, COCO
/// mAP@[.5:.95], per class; the ground truth and the detections written as COCO JSON to
/// `files` for other tools.
fn evaluate_on(
    members: &[(&convnet_layers::Sequential, &YoloHead)],
    test: &convnet_data::synthetic::DetectionSet,
    classes: &[String],
    files: &[PathBuf; 2],
    flip_tta: bool,
    device: &Device,
) -> Result<serde_json::Value> {
    use convnet_train::detect::{EVAL_SCORE, as_map_inputs, detect_set};
    use convnet_vision::map::{Interpolation, coco_map, voc_map};

    let detections = detect_set(members, test, EVAL_SCORE, flip_tta, 32, device)?;
    let (truth, scored) = as_map_inputs(test, &detections);
    let voc = voc_map(&truth, &scored, 0.5, Interpolation::AllPoint);
    let voc11 = voc_map(&truth, &scored, 0.5, Interpolation::ElevenPoint);
    let coco = coco_map(&truth, &scored, 100);
    test.write_coco(&files[0])?;
    let results: Vec<_> = scored
        .iter()
        .map(|d| {
            json!({"image_id": d.image, "category_id": d.class + 1, "score": d.score,
                   "bbox": [d.bbox.x1, d.bbox.y1, d.bbox.x2 - d.bbox.x1, d.bbox.y2 - d.bbox.y1]})
        })
        .collect();
    convnet_train::write_atomically(&files[1], serde_json::to_string(&results)?.as_bytes())?;
    let per_class: Vec<_> = classes
        .iter()
        .enumerate()
        .map(|(c, name)| json!({"class": name, "ap50": voc.per_class.get(&(c as u64)), "coco_ap": coco.per_class.get(&(c as u64))}))
        .collect();
    Ok(json!({
        "flip_tta": flip_tta,
        "test_scenes": test.len(),
        "test_objects": truth.len(),
        "test_map50": voc.mean,
        "test_map50_11point": voc11.mean,
        "test_coco_map": coco.map,
        "test_per_class": per_class,
    }))
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
/// held-out generated test scenes the training run scored (first `limit` of them), alone or
/// averaged with the detectors of `ensemble` (other such runs, for the same classes and
/// picture size), optionally with flip test-time augmentation; the COCO files written beside
/// the run's own as `eval-gt.json` and `eval-pred.json`.
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
    let heads: Vec<YoloHead> = runs.iter().map(Trained::head).collect();
    let members: Vec<_> = runs.iter().map(|r| &r.model).zip(&heads).collect();
    let classes = &runs[0].head_file.classes;
    let [_, side, _] = runs[0].head_file.input;
    let test = test_scenes(options.data, options.limit, side)?;
    let run_dir = &runs[0].run_dir;
    let files = [run_dir.join("eval-gt.json"), run_dir.join("eval-pred.json")];
    let mut report = evaluate_on(&members, &test, classes, &files, options.flip_tta, device)?;
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
