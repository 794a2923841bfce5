//! Scoring segmentation networks (`convnet eval`, and the test report of
//! `convnet train --task segment`): mean IoU, pixel accuracy and Dice on the test set of the
//! data set the network was trained on, alone or as an ensemble, optionally with flip
//! test-time augmentation.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::tensor::Device;
use convnet_data::SegmentationSet;
use convnet_data::fashion_mnist::Split;
use convnet_data::segmentation::load_mask_folder;
use convnet_data::synthetic::segmentation_scenes;
use convnet_train::SegmentationMetrics;
use serde_json::json;

use crate::classify::Ensemble;
use crate::data::{SCENES, scene_items};
use crate::run::EvalOptions;

/// Scenes generated for testing when no limit is given.
const TEST_SCENES: usize = 500;
/// The test scenes come from a fixed seed apart from any training seed.
const TEST_SEED: u64 = 0x5e9_7e57;

/// The held-out scenes, the same for training's report and `convnet eval`: test items, a fixed
/// seed, the first `limit` (default 500).
pub(super) fn test_scenes(
    data: Option<&Path>,
    limit: Option<usize>,
    side: usize,
) -> Result<SegmentationSet> {
    let items = scene_items(data, Split::Test)?;
    Ok(segmentation_scenes(
        &items,
        limit.unwrap_or(TEST_SCENES),
        side,
        TEST_SEED,
    )?)
}

/// Each class's IoU and Dice, for the JSON reports.
pub(super) fn per_class(m: &SegmentationMetrics, classes: &[String]) -> Vec<serde_json::Value> {
    classes
        .iter()
        .enumerate()
        .map(|(c, name)| json!({"class": name, "iou": m.iou(c), "dice": m.dice(c)}))
        .collect()
}

/// A metric for the tables; "-" where it is undefined (a class neither present nor predicted).
fn cell(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.4}"))
}

/// The test scores as a table: the means (`what` says on what), then a line per class.
pub fn metrics_table(m: &SegmentationMetrics, classes: &[String], what: &str) -> String {
    let mut lines = vec![format!(
        "test: mean IoU {:.4}, pixel accuracy {:.2}%, mean Dice {:.4} ({what})",
        m.mean_iou(),
        100.0 * m.pixel_accuracy(),
        m.mean_dice(),
    )];
    for (c, name) in classes.iter().enumerate() {
        lines.push(format!(
            "  {name:<14} IoU {}  Dice {}",
            cell(m.iou(c)),
            cell(m.dice(c))
        ));
    }
    lines.join("\n")
}

/// The test set of a segmentation run's data set, as `convnet train --task segment` made it:
/// the generated test scenes (the first `limit`; two classes for a `--binary` run), or a
/// folder data set's `test/` folder.
fn test_set(
    dataset: &str,
    input: &[usize],
    classes: usize,
    data: Option<&Path>,
    limit: Option<usize>,
) -> Result<SegmentationSet> {
    let &[channels, h, w] = input else {
        bail!("a segmentation network takes [C, H, W] pictures, not {input:?}");
    };
    let set = if dataset == SCENES {
        let scenes = test_scenes(data, limit, h)?;
        if classes == 2 {
            scenes.binary()
        } else {
            scenes
        }
    } else {
        let dir = Path::new(dataset).join("test");
        if !dir.is_dir() {
            bail!(
                "{dataset} has no test/ folder to evaluate on (a folder data set needs train/ and test/)"
            );
        }
        if limit.is_some() {
            bail!("--limit is for the generated scenes; a folder's test set is used whole");
        }
        load_mask_folder(&dir, channels, Some([h, w]))?
    };
    if set.classes.len() != classes {
        bail!(
            "the test set has {} classes, the network {classes}",
            set.classes.len()
        );
    }
    Ok(set)
}

/// A segmentation network's (or ensemble's) scores on its data set's test set.
pub struct Evaluation {
    /// The scores as one JSON object (`convnet eval --json`).
    pub report: serde_json::Value,
    pub metrics: SegmentationMetrics,
    pub classes: Vec<String>,
    /// The data set the first network was trained on.
    pub dataset: String,
    /// How many test pictures were scored.
    pub pictures: usize,
    pub flip_tta: bool,
}

impl Evaluation {
    /// The scores as a table, with how well items were found when there are several kinds.
    pub fn table(&self) -> String {
        let what = format!(
            "{} test pictures of {}{}",
            self.pictures,
            self.dataset,
            if self.flip_tta { ", flip TTA" } else { "" }
        );
        let mut table = metrics_table(&self.metrics, &self.classes, &what);
        if self.classes.len() > 2 {
            table.push_str(&format!(
                "\nitems found (background against any item): IoU {}; mean IoU were every found item pixel named right: {:.4}",
                cell(self.metrics.items_found().iou(1)),
                self.metrics.named_right().mean_iou()
            ));
        }
        table
    }
}

/// `convnet eval` for segmentation networks (or an ensemble of them, their score maps
/// averaged): mean IoU, pixel accuracy and Dice on the test set of the data set the first was
/// trained on, optionally with flip test-time augmentation.
pub fn evaluate(ensemble: &Ensemble, options: &EvalOptions, device: &Device) -> Result<Evaluation> {
    let flip_tta = options.flip_tta;
    let first = &ensemble.members[0];
    let classes = ensemble.classes();
    let dataset = &first.meta.config.dataset;
    let test = test_set(
        dataset,
        &first.input,
        classes.len(),
        options.data,
        options.limit,
    )?;
    let members: Vec<_> = ensemble
        .members
        .iter()
        .map(|m| (&m.model, &m.normalization))
        .collect();
    let (_, m) = convnet_train::segment::evaluate_segmentation_ensemble(
        &members,
        &test,
        convnet_train::segment::SegmentationLoss::CrossEntropy,
        flip_tta,
        32,
        device,
    )?;
    let checkpoints: Vec<&PathBuf> = ensemble.members.iter().map(|m| &m.path).collect();
    let report = json!({
        "checkpoints": checkpoints,
        "dataset": dataset,
        "flip_tta": flip_tta,
        "test_images": test.len(),
        "test_pixel_accuracy": m.pixel_accuracy(),
        "test_mean_iou": m.mean_iou(),
        "test_mean_dice": m.mean_dice(),
        "test_per_class": per_class(&m, classes),
        "test_item_iou": m.items_found().iou(1),
        "test_mean_iou_named_right": m.named_right().mean_iou(),
        "test_confusion": m.confusion.counts,
    });
    Ok(Evaluation {
        report,
        metrics: m,
        classes: classes.to_vec(),
        dataset: dataset.clone(),
        pictures: test.len(),
        flip_tta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_a_line_per_class_and_a_dash_where_a_score_is_undefined() {
        // Class 0: 3 pixels, all found; class 1: one pixel, called 0; class 2 never seen.
        let mut m = SegmentationMetrics::new(3);
        m.add(&[0, 0, 0, 1], &[0, 0, 0, 0]);
        let classes = ["background", "item", "other"].map(String::from);
        let table = metrics_table(&m, &classes, "4 pixels");
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[0].starts_with("test: mean IoU"), "{table}");
        assert!(lines[0].contains("pixel accuracy 75.00%"), "{table}");
        assert!(lines[0].ends_with("(4 pixels)"), "{table}");
        assert_eq!(lines[1], "  background     IoU 0.7500  Dice 0.8571");
        assert_eq!(lines[2], "  item           IoU 0.0000  Dice 0.0000");
        assert_eq!(lines[3], "  other          IoU -  Dice -");
    }
}
