//! What the training and evaluation runs of every task share, as Ultralytics' `engine/` holds
//! what its trainers and validators share: the request a run starts from, its recipe (a new
//! one, or the one of the checkpoint it resumes), its run directory, the weights it starts from
//! (`--init`), its test report, how it shows progress, and how a checkpoint is named in reports.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use convnet_data::ClassSelection;
use convnet_layers::{HEAD_START, ModelSpec, Sequential};
use convnet_train::checkpoint::{CHECKPOINT_DIR, LAST};
use convnet_train::{
    Checkpoint, Observer, OptimizerKind, OptimizerSettings, Schedule, TrainConfig,
};
use serde_json::json;

use crate::data::{ECG, FASHION_MNIST, MOTION, SCENES};
use crate::models;

/// What a run learns to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Classify images `[C, H, W]`.
    Images,
    /// Classify signals `[C, L]`.
    Signal,
    /// Classify volumes or clips `[C, D, H, W]`.
    Volume,
    /// A class for every pixel.
    Segment,
    /// Boxes and classes of objects.
    Detect,
}

impl Task {
    /// The model and data set a run of this task uses when the request names none.
    pub fn defaults(self) -> (&'static str, &'static str) {
        match self {
            Task::Images => ("lenet5", FASHION_MNIST),
            Task::Signal => ("signal-cnn", ECG),
            Task::Volume => ("volume-cnn", MOTION),
            Task::Segment => ("unet-small", SCENES),
            Task::Detect => ("tiny-yolo", SCENES),
        }
    }

    /// The rank of the examples a classifier of this task takes.
    pub fn rank(self) -> usize {
        match self {
            Task::Images | Task::Segment | Task::Detect => 3,
            Task::Signal => 2,
            Task::Volume => 4,
        }
    }

    /// Segmentation and detection: tasks that predict where, not only what, and that start
    /// from `--init` weights rather than a fine-tuned base.
    pub fn is_dense(self) -> bool {
        matches!(self, Task::Segment | Task::Detect)
    }
}

/// Everything a training run is asked to do: `convnet train`'s options without the command
/// line. `None` means the task's, the data set's or the resumed run's default.
#[derive(Clone, Debug)]
pub struct TrainRequest {
    pub task: Task,
    /// A built-in model or a model spec file (`.toml`).
    pub model: Option<String>,
    pub dataset: Option<String>,
    /// Integer labels `[N]` for a `.npy` data set.
    pub labels: Option<PathBuf>,
    /// A `.npy` test set, with its labels.
    pub test_dataset: Option<PathBuf>,
    pub test_labels: Option<PathBuf>,
    /// How many training examples to generate.
    pub train_size: Option<usize>,
    /// Where Fashion-MNIST's IDX files are.
    pub data: Option<PathBuf>,
    /// Epochs (when resuming: the total to reach).
    pub epochs: usize,
    pub batch: usize,
    pub optimizer: OptimizerKind,
    pub lr: Option<f64>,
    /// SGD momentum.
    pub momentum: f64,
    pub weight_decay: f64,
    /// `constant`, `step`, `step:EPOCHS[:GAMMA]` or `cosine`.
    pub schedule: String,
    /// The task's augmentations, comma-separated; `none` for none.
    pub augment: String,
    pub seed: u64,
    /// Fraction of the training set held out for validation.
    pub val_split: f64,
    pub patience: Option<usize>,
    /// Detection and segmentation: a weights-only checkpoint every this many steps.
    pub save_every: Option<usize>,
    /// Original class indices to keep (`5,6,7` or `5-9`).
    pub only_classes: Option<String>,
    pub per_class: Option<usize>,
    /// Train on the first N training examples only.
    pub limit: Option<usize>,
    pub test_limit: Option<usize>,
    /// Picture side (folders, generated scenes, own detection data).
    pub size: Option<usize>,
    pub channels: Option<usize>,
    /// The run directory (default: runs/MODEL).
    pub out: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint.
    pub resume: Option<PathBuf>,
    /// Detection on own data: tiles of this many pixels.
    pub tile: Option<usize>,
    pub overlap: usize,
    /// Detection: anchors per grid cell.
    pub anchors: usize,
    /// Segmentation and detection: the weights the run starts from.
    pub init: Option<PathBuf>,
    /// Segmentation: item vs background only.
    pub binary: bool,
    /// Segmentation loss: `ce`, `dice` or `ce+dice`.
    pub loss: String,
    /// A classifier fine-tuned from pretrained weights (`convnet finetune`).
    pub transfer: Option<Transfer>,
}

/// Transfer learning on top of a training run (`convnet finetune`): start from pretrained
/// weights under a new head and freeze the layers before `freeze_before`.
#[derive(Clone, Debug)]
pub struct Transfer {
    pub weights: PathBuf,
    pub classes: usize,
    /// The first layer that learns (default: the new head).
    pub unfreeze_from: Option<String>,
    pub allow_partial: bool,
}

/// How a run shows what it does: the training loop's callbacks, and lines about the run.
pub trait Progress: Observer {
    /// A line about the run (its data, model, starting weights), for a person watching.
    fn line(&mut self, text: &str);
    /// Something the user must hear even when the run is quiet (data left out, say).
    fn warn(&mut self, text: &str);
}

/// A run about to train: its recipe, its directory, and the checkpoint it resumes.
pub struct Run {
    pub config: TrainConfig,
    pub run_dir: PathBuf,
    /// The last checkpoint of the run resumed, and its path.
    pub resume: Option<(Checkpoint, PathBuf)>,
    /// The model as the request or the resumed run names it.
    pub model: String,
}

/// The recipe and run directory of `request`, checked before anything is trained or written
/// (other than the run directory of a segmentation or detection run).
pub fn start(request: &TrainRequest) -> Result<Run> {
    let resume = match &request.resume {
        Some(dir) => {
            let path = dir.join(CHECKPOINT_DIR).join(LAST);
            let ckpt = Checkpoint::load(&path)
                .with_context(|| format!("cannot resume from {}", dir.display()))?;
            Some((ckpt, path))
        }
        None => None,
    };
    let (default_model, default_dataset) = request.task.defaults();
    let model = match (&request.model, &resume) {
        (Some(m), _) => m.clone(),
        (None, Some((ckpt, _))) => ckpt.meta.config.model.clone(),
        (None, None) => default_model.to_string(),
    };
    let mut config = match &resume {
        Some((ckpt, _)) => ckpt.meta.config.clone(),
        None => TrainConfig::new(
            &model,
            request.dataset.as_deref().unwrap_or(default_dataset),
        ),
    };
    config.epochs = request.epochs;
    if resume.is_some() {
        // A resumed run keeps its recipe, except what the user says to change.
        if let Some(lr) = request.lr {
            config.optimizer.lr = lr;
        }
        if request.patience.is_some() {
            config.patience = request.patience;
        }
    } else {
        let kind = request.optimizer;
        config.batch_size = request.batch;
        config.optimizer = OptimizerSettings {
            kind,
            lr: request.lr.unwrap_or(match kind {
                OptimizerKind::Adam => 1e-3,
                OptimizerKind::Sgd => 1e-2,
            }),
            momentum: match kind {
                OptimizerKind::Adam => 0.0,
                OptimizerKind::Sgd => request.momentum,
            },
            weight_decay: request.weight_decay,
        };
        config.schedule = Schedule::parse(&request.schedule)?;
        config.augment = if request.augment == "none" {
            String::new()
        } else {
            request.augment.clone()
        };
        config.seed = request.seed;
        config.val_fraction = request.val_split;
        config.patience = request.patience;
        config.only_classes = match &request.only_classes {
            Some(list) => ClassSelection::parse_classes(list)?,
            None => Vec::new(),
        };
        config.per_class = request.per_class;
    }
    let dense = request.task.is_dense();
    if let Some(init) = &request.init {
        if !dense {
            bail!(
                "--init starts segmentation and detection runs; a classifier starts from pretrained weights with `convnet finetune`"
            );
        }
        config.init = Some(init.display().to_string());
    }
    if request.save_every.is_some() {
        if !dense {
            bail!(
                "--save-every is for detection and segmentation runs; a classifier's epochs end with a checkpoint it can resume from (--resume)"
            );
        }
        config.save_every = request.save_every;
    }
    if let Some(t) = &request.transfer {
        config.freeze_before = Some(t.unfreeze_from.clone().unwrap_or(HEAD_START.to_string()));
    }
    config.validate()?;
    let run_dir = match (&request.resume, &request.out) {
        (Some(dir), _) => dir.clone(),
        (None, Some(out)) => out.clone(),
        (None, None) => PathBuf::from("runs").join(model.replace(['/', '\\', '.'], "_")),
    };
    if dense {
        // The detector writes its head file before its training starts (the training library
        // still refuses empty sets before it writes a checkpoint).
        convnet_train::ensure_writable_dir(&run_dir.join(CHECKPOINT_DIR))?;
        if resume.is_some() || request.transfer.is_some() {
            let what = match request.task {
                Task::Segment => "segmentation",
                _ => "detection",
            };
            bail!("{what} runs do not resume or fine-tune yet");
        }
    }
    Ok(Run {
        config,
        run_dir,
        resume,
        model,
    })
}

/// The weights a segmentation or detection run starts from (`--init`), if any, with what was
/// loaded for the run's report.
pub fn initial_model(
    init: Option<&Path>,
    spec: &ModelSpec,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<(Option<Sequential>, serde_json::Value)> {
    let Some(path) = init else {
        return Ok((None, serde_json::Value::Null));
    };
    let (model, report) = models::initial_model(spec, path, device)?;
    let rest = if report.missing.is_empty() {
        "none starts fresh"
    } else {
        "the rest start fresh"
    };
    progress.line(&format!(
        "init: {} of the model's {} tensors from {} ({} of its tensors not used); {rest}",
        report.loaded.len(),
        report.loaded.len() + report.missing.len(),
        path.display(),
        report.unexpected.len()
    ));
    let summary = json!({
        "weights": path,
        "loaded": report.loaded.len(),
        "fresh": report.missing.len(),
        "unused": report.unexpected.len(),
    });
    Ok((Some(model), summary))
}

/// The file a segmentation or detection run's test report is written to, in its run
/// directory.
pub const TEST_REPORT: &str = "test-metrics.json";

/// Writes a run's test report ([`TEST_REPORT`]).
pub fn write_test_report(run_dir: &Path, report: &serde_json::Value) -> Result<()> {
    convnet_train::write_atomically(
        &run_dir.join(TEST_REPORT),
        serde_json::to_string_pretty(report)?.as_bytes(),
    )?;
    Ok(())
}

/// What detectors' and segmentation networks' evaluations take besides the networks.
#[derive(Clone, Copy, Debug, Default)]
pub struct EvalOptions<'a> {
    /// Where Fashion-MNIST's IDX files are (the generated scenes are made of them).
    pub data: Option<&'a Path>,
    /// The first N test pictures only.
    pub limit: Option<usize>,
    /// Average each picture's output with its mirror image's.
    pub flip_tta: bool,
}

/// `path` with where in its run it was written: after which epoch, and for a checkpoint saved
/// inside an epoch (`--save-every`), how many steps into the next.
pub fn checkpoint_line(path: &Path, meta: &convnet_train::CheckpointMeta) -> String {
    format!(
        "{} ({})",
        path.display(),
        position(meta.epoch, meta.global_step, meta.steps_into_epoch)
    )
}

/// `epochs` completed, `global_step` steps in all, `steps_into_epoch` of the next epoch when
/// the checkpoint was written inside it.
fn position(epochs: usize, global_step: usize, steps_into_epoch: Option<usize>) -> String {
    match steps_into_epoch {
        Some(steps) => format!(
            "epoch {} step {steps}, mid-epoch; global step {global_step}",
            epochs + 1
        ),
        None => format!("after epoch {epochs}; global step {global_step}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(task: Task, out: &Path) -> TrainRequest {
        TrainRequest {
            task,
            model: None,
            dataset: None,
            labels: None,
            test_dataset: None,
            test_labels: None,
            train_size: None,
            data: None,
            epochs: 2,
            batch: 16,
            optimizer: OptimizerKind::Sgd,
            lr: None,
            momentum: 0.8,
            weight_decay: 0.0,
            schedule: "constant".into(),
            augment: "none".into(),
            seed: 7,
            val_split: 0.1,
            patience: None,
            save_every: None,
            only_classes: Some("5-7".into()),
            per_class: None,
            limit: None,
            test_limit: None,
            size: None,
            channels: None,
            out: Some(out.to_path_buf()),
            resume: None,
            tile: None,
            overlap: 32,
            anchors: 3,
            init: None,
            binary: false,
            loss: "ce".into(),
            transfer: None,
        }
    }

    #[test]
    fn a_new_run_takes_the_tasks_defaults_and_the_requests_recipe() {
        let dir = tempfile::tempdir().unwrap();
        let run = start(&request(Task::Segment, dir.path())).unwrap();
        assert_eq!(run.model, "unet-small");
        assert_eq!(run.config.dataset, SCENES);
        assert_eq!(run.config.optimizer.lr, 1e-2);
        assert_eq!(run.config.optimizer.momentum, 0.8);
        assert_eq!(run.config.only_classes, vec![5, 6, 7]);
        assert!(run.config.augment.is_empty());
        assert_eq!(run.run_dir, dir.path());
        // A segmentation run's directory is made before its data are read.
        assert!(dir.path().join(CHECKPOINT_DIR).is_dir());
    }

    #[test]
    fn classifiers_and_dense_runs_refuse_each_others_starts() {
        let dir = tempfile::tempdir().unwrap();
        let mut classifier = request(Task::Images, dir.path());
        classifier.init = Some(dir.path().join("w.pth"));
        let err = start(&classifier).err().unwrap().to_string();
        assert!(err.contains("convnet finetune"), "{err}");
        let mut detector = request(Task::Detect, dir.path());
        detector.transfer = Some(Transfer {
            weights: dir.path().join("w.pth"),
            classes: 2,
            unfreeze_from: None,
            allow_partial: false,
        });
        let err = start(&detector).err().unwrap().to_string();
        assert_eq!(err, "detection runs do not resume or fine-tune yet");
    }

    #[test]
    fn a_checkpoint_says_where_in_its_run_it_was_written() {
        assert_eq!(position(3, 1200, None), "after epoch 3; global step 1200");
        // Saved 2,000 steps into the first epoch (`--save-every 2000`): no epoch completed.
        assert_eq!(
            position(0, 2000, Some(2000)),
            "epoch 1 step 2000, mid-epoch; global step 2000"
        );
    }
}
