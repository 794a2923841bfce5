//! Scoring detectors trained here (`convnet eval`, and the test report of
//! `convnet train --task detect`): VOC and COCO mAP on held-out pictures (the generated test
//! scenes, or a data set's own test split), alone or as an ensemble, optionally with flip
//! test-time augmentation; the ground truth and detections as COCO JSON and the
//! precision–recall curves beside the run's checkpoints.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::tensor::Device;
use convnet_data::detection::prepare::{Prepared, Source, prepare};
use convnet_data::fashion_mnist::Split;
use convnet_data::synthetic::DetectionSet;
use convnet_train::CheckpointMeta;
use convnet_vision::BBox;
use convnet_vision::yolo::YoloHead;
use serde_json::json;

use super::{OwnData, Trained};
use crate::data::scene_items;
use crate::run::EvalOptions;

/// Scenes generated for testing when no limit is given.
const TEST_SCENES: usize = 500;
/// The test scenes come from test items and a fixed seed apart from any training seed.
const TEST_SEED: u64 = 0xde7_7e57;

/// The held-out scenes, the same for training's report and `convnet eval`: test items, a fixed
/// seed, the first `limit` (default 500).
pub(super) fn test_scenes(
    data: Option<&Path>,
    limit: Option<usize>,
    side: usize,
) -> Result<DetectionSet> {
    let items = scene_items(data, Split::Test)?;
    Ok(convnet_data::synthetic::detection_scenes(
        &items,
        limit.unwrap_or(TEST_SCENES),
        side,
        TEST_SEED,
    )?)
}

/// A set to score a detector on, with where its squares came from (own data) so the COCO
/// files name pictures and tiles in their own pixels.
pub(super) struct TestSet {
    pub(super) set: DetectionSet,
    sources: Option<Vec<Source>>,
}

impl TestSet {
    pub(super) fn scenes(set: DetectionSet) -> Self {
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
    pub(super) fn held_out(
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

/// `a`'s fields with `b`'s added (both JSON objects).
pub(super) fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    if let (Some(a), serde_json::Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
}

/// mAP of `members` on the held-out `test` pictures: VOC all-point and 11-point AP@0.5, COCO
/// mAP@[.5:.95], per class; the ground truth and the detections written as COCO JSON
/// (`{prefix}-gt.json`, `{prefix}-pred.json`, in each picture's or tile's own pixels) and the
/// precision–recall curves at IoU 0.5 as `{prefix}-pr.png`, into `dir`.
pub(super) fn evaluate_on(
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

/// The test part of a report (training's or evaluation's) as a table: the means, then each
/// class's AP@0.5; `epoch`, the best checkpoint's, when a training run reports.
pub fn scores_table(
    report: &serde_json::Value,
    classes: &[String],
    epoch: Option<usize>,
) -> String {
    let number = |key: &str| report[key].as_f64().unwrap_or(f64::NAN);
    let mut lines = vec![format!(
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
    )];
    for (c, name) in classes.iter().enumerate() {
        lines.push(format!(
            "  {name:<14} AP@0.5 {:.4}",
            report["test_per_class"][c]["ap50"].as_f64().unwrap_or(0.0)
        ));
    }
    lines.join("\n")
}

/// Detectors' scores on held-out pictures.
pub struct Evaluation {
    /// The scores as one JSON object (`convnet eval --json`), with the checkpoints and classes.
    pub report: serde_json::Value,
    /// Each member's checkpoint, with where in its run it was written.
    pub checkpoints: Vec<(PathBuf, CheckpointMeta)>,
    pub classes: Vec<String>,
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
    options: &EvalOptions,
    device: &Device,
) -> Result<Evaluation> {
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
    let classes = classes.clone();
    Ok(Evaluation {
        report,
        checkpoints: runs.into_iter().map(|r| (r.checkpoint, r.meta)).collect(),
        classes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scores_table_names_the_best_epoch_and_each_class() {
        let report = json!({
            "flip_tta": true, "test_scenes": 12, "test_map50": 0.5, "test_map50_11point": 0.25,
            "test_coco_map": 0.125,
            "test_per_class": [{"ap50": 0.75}, {"ap50": null}],
        });
        let classes = ["shirt", "bag"].map(String::from);
        let table = scores_table(&report, &classes, Some(3));
        assert_eq!(
            table,
            "test: mAP@0.5 0.5000 (VOC all-point; 11-point 0.2500), COCO mAP@[.5:.95] 0.1250 on 12 scenes with flip TTA (best checkpoint, epoch 3)\n  shirt          AP@0.5 0.7500\n  bag            AP@0.5 0.0000"
        );
    }

    #[test]
    fn merging_reports_adds_the_fields() {
        let mut a = json!({"model": "tiny-yolo"});
        merge(&mut a, json!({"test_map50": 0.5}));
        assert_eq!(a, json!({"model": "tiny-yolo", "test_map50": 0.5}));
    }
}
