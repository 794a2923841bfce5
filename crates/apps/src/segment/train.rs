//! Training a segmentation network (`convnet train --task segment`): a U-Net on the generated
//! scenes or an image + mask folder, then its best checkpoint scored on the test set, the
//! report written as the run's `test-metrics.json`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use convnet_data::fashion_mnist::Split;
use convnet_data::segmentation::load_mask_folder;
use convnet_data::synthetic::segmentation_scenes;
use convnet_data::{JointAugment, SegmentationSet};
use convnet_layers::ModelSpec;
use convnet_train::{
    Checkpoint, SegmentationData, SegmentationLoss, SegmentationMetrics, TrainOutcome,
    evaluate_segmentation, train_segmentation,
};
use serde_json::json;

use super::val::{per_class, test_scenes};
use crate::data::{SCENES, scene_items};
use crate::models;
use crate::run::{self, Progress, Run, TrainRequest};

/// Scenes generated for training when neither a size nor a limit is given.
const TRAIN_SCENES: usize = 2000;

/// `flip[=P]` and `shift=N` (alias `crop=N`), comma-separated; `none` for none.
fn joint_augment(text: &str) -> Result<Option<JointAugment>> {
    if text.is_empty() || text == "none" {
        return Ok(None);
    }
    let mut a = JointAugment::default();
    for part in text.split(',').map(str::trim) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        match name {
            "flip" => {
                a.flip = if value.is_empty() {
                    0.5
                } else {
                    value.parse()?
                }
            }
            "shift" | "crop" => a.shift = value.parse().context("shift=N needs pixels")?,
            other => bail!(
                "'{other}' is not an augmentation for segmentation: use flip[=P] and shift=N (image and mask move together)"
            ),
        }
    }
    Ok(Some(a))
}

/// The training and test sets named by `--dataset`.
fn load_sets(
    request: &TrainRequest,
    dataset: &str,
) -> Result<(SegmentationSet, Option<SegmentationSet>)> {
    let size = request.size;
    if dataset == SCENES {
        let side = size.unwrap_or(64);
        let items = scene_items(request.data.as_deref(), Split::Train)?;
        let n = request.train_size.or(request.limit).unwrap_or(TRAIN_SCENES);
        let train = segmentation_scenes(&items, n, side, request.seed)?;
        let test = test_scenes(request.data.as_deref(), request.test_limit, side)?;
        return Ok((train, Some(test)));
    }
    let dir = Path::new(dataset);
    if !dir.is_dir() {
        bail!(
            "--dataset for segmentation is `{SCENES}` (generated) or a folder with images/ and masks/ (or train/ and test/ folders laid out that way), not '{dataset}'"
        );
    }
    let channels = request.channels.unwrap_or(1);
    let square = size.map(|s| [s, s]);
    if dir.join("train").is_dir() {
        let train = load_mask_folder(&dir.join("train"), channels, square)?;
        let test = dir
            .join("test")
            .is_dir()
            .then(|| {
                load_mask_folder(
                    &dir.join("test"),
                    channels,
                    Some([train.shape[1], train.shape[2]]),
                )
            })
            .transpose()?;
        return Ok((train, test));
    }
    Ok((load_mask_folder(dir, channels, square)?, None))
}

/// A segmentation network's finished run.
pub struct Trained {
    /// The run's results, as written to its `test-metrics.json`.
    pub report: serde_json::Value,
    /// The best checkpoint's scores on the test set, when there is one.
    pub test: Option<SegmentationMetrics>,
    pub classes: Vec<String>,
    pub outcome: TrainOutcome,
    pub run_dir: PathBuf,
}

/// `convnet train --task segment`: trains in the run [`crate::run::start`] made of `request`,
/// scores the best checkpoint on the test set and writes the report.
pub fn train(
    request: &TrainRequest,
    run: Run,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<Trained> {
    let Run {
        config, run_dir, ..
    } = run;
    let started = std::time::Instant::now();
    let (mut train, mut test) = load_sets(request, &config.dataset)?;
    let loaded = started.elapsed().as_secs_f64();
    if request.binary {
        train = train.binary();
        test = test.map(|t| t.binary());
    }
    if let Some(t) = &test
        && t.classes.len() != train.classes.len()
    {
        bail!(
            "the test set has {} classes, the training set {}",
            t.classes.len(),
            train.classes.len()
        );
    }
    let (train, validation) = train.split(config.val_fraction, config.seed)?;
    progress.line(&format!(
        "data: {} training, {} validation, {} test pictures of {:?} in {} classes ({}) ({loaded:.1} s to load)",
        train.len(),
        validation.len(),
        test.as_ref().map_or(0, |t| t.len()),
        train.shape,
        train.classes.len(),
        train.classes.join(", ")
    ));
    let spec = if models::is_spec_file(&config.model) {
        let spec = ModelSpec::from_file(Path::new(&config.model))?;
        if spec.input != train.shape {
            bail!(
                "{} takes {:?}, the pictures are {:?}",
                config.model,
                spec.input,
                train.shape
            );
        }
        spec
    } else {
        convnet_zoo::segmenter_spec(&config.model, &train.shape, train.classes.len())?
    };
    let loss = SegmentationLoss::parse(&request.loss)?;
    let data = SegmentationData {
        normalization: train.normalization(),
        augment: joint_augment(&config.augment)?,
        train,
        validation: (!validation.is_empty()).then_some(validation),
        loss,
    };
    let (initial, init) = run::initial_model(request.init.as_deref(), &spec, device, progress)?;
    let outcome = train_segmentation(
        &spec,
        initial.as_ref(),
        &data,
        &config,
        &run_dir,
        device,
        progress,
    )?;
    let best = Checkpoint::resolve(&outcome.best_checkpoint)?;
    let model = Checkpoint::load(&best)?.model(&best, device)?;
    let tested = match &test {
        Some(t) => Some(evaluate_segmentation(
            &model,
            t,
            &data.normalization,
            loss,
            32,
            device,
        )?),
        None => None,
    };
    let classes = &data.train.classes;
    let report = json!({
        "model": spec.name,
        "init": init,
        "classes": classes,
        "epochs": outcome.history.len(),
        "seconds_per_epoch": outcome.seconds_per_epoch(),
        "best_epoch": outcome.best_epoch,
        "best_val_mean_iou": outcome.best_val_accuracy,
        "test_loss": tested.as_ref().map(|(l, _)| l),
        "test_pixel_accuracy": tested.as_ref().map(|(_, m)| m.pixel_accuracy()),
        "test_mean_iou": tested.as_ref().map(|(_, m)| m.mean_iou()),
        "test_mean_dice": tested.as_ref().map(|(_, m)| m.mean_dice()),
        "test_per_class": tested.as_ref().map(|(_, m)| per_class(m, classes)),
        "run_dir": run_dir,
        "best_checkpoint": outcome.best_checkpoint,
    });
    run::write_test_report(&run_dir, &report)?;
    Ok(Trained {
        report,
        test: tested.map(|(_, m)| m),
        classes: classes.clone(),
        outcome,
        run_dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn augmentations_move_picture_and_mask_together() {
        assert!(joint_augment("none").unwrap().is_none());
        let a = joint_augment("flip, crop=4").unwrap().unwrap();
        assert_eq!((a.flip, a.shift), (0.5, 4));
        let err = joint_augment("rotate=10").unwrap_err().to_string();
        assert!(
            err.contains("not an augmentation for segmentation"),
            "{err}"
        );
    }
}
