//! Training a detector (`convnet train --task detect`): a YOLO detector on the generated
//! scenes or on people's own labelled photos (YOLO, COCO, Pascal VOC or CSV, tiled when they
//! are large), then its best checkpoint scored on the held-out pictures, the report written as
//! the run's `test-metrics.json`.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::tensor::Device;
use convnet_data::detection::augment::BoxAugment;
use convnet_data::detection::prepare::{Tiling, prepare};
use convnet_data::fashion_mnist::Split;
use convnet_data::synthetic::DetectionSet;
use convnet_train::detect::{DetectionData, train_detection};
use convnet_train::{TrainConfig, TrainOutcome};
use convnet_vision::yolo::YoloHead;
use serde_json::json;

use super::val::{TestSet, evaluate_on, merge, test_scenes};
use super::{HEAD_FILE, HeadFile, OwnData};
use crate::data::{SCENES, scene_items};
use crate::models;
use crate::run::{self, Progress, Run, TrainRequest};

/// Scenes generated for training when neither a size nor a limit is given.
const TRAIN_SCENES: usize = 4000;
/// Epochs at the end of a run on people's own photos that train without mosaic (Ultralytics'
/// default).
const CLOSE_MOSAIC: usize = 10;
/// The input side of a detector trained on people's own photos, unless `--size` says.
const OWN_DATA_SIDE: usize = 416;

/// A detector's finished run.
pub struct Trained {
    /// The run's results, as written to its `test-metrics.json`.
    pub report: serde_json::Value,
    pub classes: Vec<String>,
    pub outcome: TrainOutcome,
    pub run_dir: PathBuf,
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
fn scene_data(request: &TrainRequest, config: &TrainConfig) -> Result<RunData> {
    use convnet_data::synthetic::detection_scenes;
    let side = request.size.unwrap_or(96);
    let items = scene_items(request.data.as_deref(), Split::Train)?;
    let n = request.train_size.or(request.limit).unwrap_or(TRAIN_SCENES);
    let started = std::time::Instant::now();
    let mut train = detection_scenes(&items, n, side, request.seed)?;
    let val_n = ((n as f64) * config.val_fraction).round() as usize;
    let validation = train.split_off(n - val_n)?;
    let test = test_scenes(request.data.as_deref(), request.test_limit, side)?;
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
fn own_data(
    request: &TrainRequest,
    config: &TrainConfig,
    progress: &mut dyn Progress,
) -> Result<RunData> {
    let side = request.size.unwrap_or(OWN_DATA_SIDE);
    let tiling = match request.tile {
        Some(tile) if request.overlap >= tile => {
            bail!(
                "--overlap ({}) must be smaller than --tile ({tile})",
                request.overlap
            )
        }
        Some(tile) => Some(Tiling {
            tile: u32::try_from(tile)?,
            overlap: u32::try_from(request.overlap)?,
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
    let limit = request.limit.unwrap_or(usize::MAX);
    let train_pictures = &ds.train[..limit.min(ds.train.len())];
    let prepared = prepare(train_pictures, &ds.classes, side, tiling)?;
    if prepared.lost > 0 {
        progress.warn(&format!(
            "{} training boxes are too large for any {}-pixel tile to hold half of them; they are left out (a larger --tile keeps them)",
            prepared.lost,
            tiling.map_or(0, |t| t.tile)
        ));
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
    let test = TestSet::held_out(&ds, &own, &ds.classes, side, request.test_limit)?;
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
    if models::is_spec_file(model) {
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
/// labelled photos, in the run [`crate::run::start`] made of `request`; anchors by k-means on
/// the training boxes (or the `--init` detector's), then mAP on the held-out pictures (written
/// as COCO JSON too, with precision–recall curves) and the report written.
pub fn train(
    request: &TrainRequest,
    run: Run,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<Trained> {
    let Run {
        config, run_dir, ..
    } = run;
    let run_dir = run_dir.as_path();
    let scenes = config.dataset == SCENES;
    if scenes && request.tile.is_some() {
        bail!("--tile cuts large photos of your own data set; the generated scenes are small");
    }
    let RunData {
        train,
        validation,
        test,
        own,
        description,
    } = if scenes {
        scene_data(request, &config)?
    } else {
        own_data(request, &config, progress)?
    };
    let side = train.size;
    let classes = train.classes.clone();
    let input = [train.channels, side, side];
    let spec = detector_spec(&config.model, input, request.anchors, classes.len())?;
    let out = spec.build_unallocated(device)?.output_shape()?;
    let &[channels, gh, gw] = out.dims() else {
        bail!(
            "{} must end in a grid [A (5 + C), S, S], not {:?}",
            spec.name,
            out.dims()
        );
    };
    if channels != request.anchors * (5 + classes.len()) {
        bail!(
            "{} gives {channels} numbers per cell; {} anchors and {} classes need {}",
            spec.name,
            request.anchors,
            classes.len(),
            request.anchors * (5 + classes.len())
        );
    }
    let cell = [side as f32 / gw as f32, side as f32 / gh as f32];
    let (anchors, origin) =
        match inherited_anchors(request.init.as_deref(), request.anchors, &classes)? {
            Some((head, head_path)) => (head.anchors, format!("from {}", head_path.display())),
            None => {
                let boxes: Vec<(f32, f32)> = train
                    .objects
                    .iter()
                    .flatten()
                    .map(|o| (o.bbox[2] - o.bbox[0], o.bbox[3] - o.bbox[1]))
                    .collect();
                let found =
                    convnet_vision::anchors::kmeans_anchors(&boxes, request.anchors, config.seed)?;
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
    progress.line(&format!(
        "data: {description}; {} anchors (cells) {:?}, {origin}; augmentation: {}",
        request.anchors,
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
    let (initial, init) = run::initial_model(request.init.as_deref(), &spec, device, progress)?;
    let outcome = train_detection(
        &spec,
        initial.as_ref(),
        &data,
        &config,
        run_dir,
        device,
        progress,
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
    run::write_test_report(run_dir, &report)?;
    Ok(Trained {
        report,
        classes,
        outcome,
        run_dir: run_dir.to_path_buf(),
    })
}
