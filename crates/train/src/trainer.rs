//! The training loop: epochs of shuffled, augmented batches; validation after each epoch;
//! history, curves and checkpoints written as it goes; resuming, early stopping, and a clean
//! stop when the loss stops being a number.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Bytes, Device};
use convnet_data::{
    Augment, Examples, Loader, LoaderConfig, Normalization, check_matches, check_not_empty,
};
use convnet_layers::{Mode, ModelSpec, Sequential};

use crate::checkpoint::{BEST, CHECKPOINT_DIR, Checkpoint, CheckpointMeta, FORMAT_VERSION, LAST};
use crate::commit::{self, Save};
use crate::config::TrainConfig;
use crate::error::TrainError;
use crate::evaluate::{check_classes, evaluate};
use crate::fs::ensure_writable_dir;
use crate::history::EpochRecord;
use crate::weights;

/// The data a run trains on, already split and prepared.
pub struct TrainData {
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// Images, signals or volumes.
    pub train: Arc<dyn Examples>,
    pub validation: Option<Arc<dyn Examples>>,
    /// Computed on the training set; stored in checkpoints so prediction normalises alike.
    pub normalization: Normalization,
    pub augment: Option<Arc<Augment>>,
}

/// Hooks for progress display; every method has a do-nothing default.
pub trait Observer {
    fn epoch_start(&mut self, _epoch: usize, _epochs: usize, _steps: usize) {}
    /// After each step: the epoch's running mean loss and accuracy so far.
    fn step(&mut self, _step: usize, _loss: f64, _accuracy: f64) {}
    fn validation_start(&mut self, _examples: usize) {}
    fn validation_progress(&mut self, _examples: usize) {}
    fn epoch_end(&mut self, _record: &EpochRecord, _best: bool) {}
    fn note(&mut self, _message: &str) {}
}

/// An observer that shows nothing.
pub struct Quiet;
impl Observer for Quiet {}

#[derive(Debug)]
pub struct TrainOutcome {
    pub history: Vec<EpochRecord>,
    pub best_epoch: Option<usize>,
    pub best_val_accuracy: Option<f64>,
    /// Early stopping ended the run before `epochs`.
    pub stopped_early: bool,
    pub last_checkpoint: PathBuf,
    pub best_checkpoint: PathBuf,
    /// The final weights, for inference.
    pub model: Sequential,
}

impl TrainOutcome {
    /// Mean wall time of the training passes run in this process and before it.
    pub fn seconds_per_epoch(&self) -> f64 {
        if self.history.is_empty() {
            return 0.0;
        }
        self.history.iter().map(|r| r.seconds).sum::<f64>() / self.history.len() as f64
    }
}

/// What a run has done by the end of an epoch: what its checkpoint records.
pub(crate) struct EpochState<'a> {
    pub spec: &'a ModelSpec,
    pub classes: &'a [String],
    pub normalization: &'a Normalization,
    pub config: &'a TrainConfig,
    pub epoch: usize,
    pub global_step: usize,
    /// `(epoch, score)` of the best epoch so far.
    pub best: Option<(usize, f64)>,
    pub history: &'a [EpochRecord],
}

/// Commits the epoch's checkpoint (as `last`, and as `best` when it `improved`) with the run's
/// history and curves, all at once (see [`commit`](crate::commit)).
pub(crate) fn save_epoch(
    state: &EpochState<'_>,
    model: &Sequential,
    optimizer: Option<Vec<u8>>,
    improved: bool,
    run_dir: &Path,
) -> Result<(), TrainError> {
    let last_path = run_dir.join(CHECKPOINT_DIR).join(LAST);
    let checkpoint = checkpoint_of(state, model, optimizer, &last_path)?;
    commit_checkpoint(run_dir, &checkpoint, improved, Some(state.history))
}

/// Commits `checkpoint` as the run's `last` (and `best` when it `improved`); `history` is
/// `None` when it has not changed since the last commit.
fn commit_checkpoint(
    run_dir: &Path,
    checkpoint: &Checkpoint,
    improved: bool,
    history: Option<&[EpochRecord]>,
) -> Result<(), TrainError> {
    let bytes = checkpoint
        .to_bytes()
        .map_err(|message| TrainError::Checkpoint {
            path: run_dir.join(CHECKPOINT_DIR).join(LAST),
            message,
        })?;
    commit::commit(
        run_dir,
        &Save {
            checkpoint: &bytes,
            improved,
            history,
        },
    )
}

/// The checkpoint of `state` and `model`; `path` names it in errors.
fn checkpoint_of(
    state: &EpochState<'_>,
    model: &Sequential,
    optimizer: Option<Vec<u8>>,
    path: &Path,
) -> Result<Checkpoint, TrainError> {
    Ok(Checkpoint {
        meta: CheckpointMeta {
            format: FORMAT_VERSION,
            spec: state.spec.to_toml()?,
            classes: state.classes.to_vec(),
            normalization: state.normalization.into(),
            epoch: state.epoch,
            global_step: state.global_step,
            steps_into_epoch: None,
            best_val_accuracy: state.best.map(|(_, a)| a).filter(|a| a.is_finite()),
            best_epoch: state.best.map(|(e, _)| e),
            config: state.config.clone(),
            history: state.history.to_vec(),
        },
        model: weights::to_bytes(model).map_err(|message| TrainError::Checkpoint {
            path: path.to_path_buf(),
            message,
        })?,
        optimizer,
    })
}

/// A NaN or infinite loss stops the run, naming the last checkpoint still good.
pub(crate) fn check_finite(
    value: f64,
    epoch: usize,
    step: usize,
    last_path: &Path,
) -> Result<(), TrainError> {
    if value.is_finite() {
        return Ok(());
    }
    Err(TrainError::NonFinite {
        value,
        epoch,
        step,
        last_good: last_path.is_file().then(|| last_path.to_path_buf()),
    })
}

/// Copies `initial`'s weights into `model` (the same spec) by value: forking a model made on a
/// device without autodiff would leave the training model's parameters untracked.
fn copy_weights(model: &mut Sequential, initial: &Sequential) -> Result<(), TrainError> {
    let bytes = weights::to_bytes(initial).map_err(TrainError::Config)?;
    weights::load_bytes(model, &bytes, "the initial weights").map_err(|e| match e {
        weights::LoadError::Mismatch(m) => TrainError::Mismatch(m),
        weights::LoadError::Format(message) => TrainError::Config(message),
    })
}

/// What a run that does not resume (segmentation, detection, embeddings) begins with: the
/// model on an autodiff device seeded from the config, its optimizer and schedule, and where
/// `last` goes.
pub(crate) struct FreshRun {
    pub train_device: Device,
    pub model: Sequential,
    pub optimizer: ModuleOptimizer,
    pub scheduler: ModuleLrScheduler,
    pub steps_per_epoch: usize,
    pub last_path: PathBuf,
}

impl FreshRun {
    /// A run of `spec` from a fresh initialisation, or from `initial`'s weights (built from
    /// `spec`, e.g. with a pretrained backbone), on `examples` training examples and, where the
    /// run has one, a validation set of that many; neither may be empty.
    pub fn start(
        spec: &ModelSpec,
        initial: Option<&Sequential>,
        config: &TrainConfig,
        (examples, validation): (usize, Option<usize>),
        run_dir: &Path,
        device: &Device,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        check_not_empty("training", examples)?;
        if let Some(n) = validation {
            check_not_empty("validation", n)?;
        }
        let ckpt_dir = run_dir.join(CHECKPOINT_DIR);
        ensure_writable_dir(&ckpt_dir)?;
        commit::prepare(run_dir)?;
        let train_device = device.clone().autodiff();
        train_device.seed(config.seed);
        let mut model = spec.build(&train_device)?;
        if let Some(initial) = initial {
            copy_weights(&mut model, initial)?;
        }
        let steps_per_epoch = examples.div_ceil(config.batch_size);
        let scheduler =
            config
                .schedule
                .scheduler(config.optimizer.lr, steps_per_epoch, config.epochs)?;
        Ok(Self {
            train_device,
            model,
            optimizer: config.optimizer.build(),
            scheduler,
            steps_per_epoch,
            last_path: ckpt_dir.join(LAST),
        })
    }
}

/// The bookkeeping of the runs that do not resume (segmentation, detection): the history, the
/// best epoch by a validation score (higher is better), patience, and each epoch's checkpoints
/// (the optimizer state is not kept).
pub(crate) struct Ledger<'a> {
    pub spec: &'a ModelSpec,
    pub classes: &'a [String],
    pub normalization: &'a Normalization,
    pub config: &'a TrainConfig,
    pub run_dir: &'a Path,
    pub history: Vec<EpochRecord>,
    pub best: Option<(usize, f64)>,
    pub global_step: usize,
    since_best: usize,
    stopped_early: bool,
}

impl<'a> Ledger<'a> {
    pub fn new(
        spec: &'a ModelSpec,
        classes: &'a [String],
        normalization: &'a Normalization,
        config: &'a TrainConfig,
        run_dir: &'a Path,
    ) -> Self {
        Self {
            spec,
            classes,
            normalization,
            config,
            run_dir,
            history: Vec::new(),
            best: None,
            global_step: 0,
            since_best: 0,
            stopped_early: false,
        }
    }

    /// Whether patience has run out: `score` (e.g. "validation mean IoU") has not improved for
    /// `patience` epochs. Says so to the observer.
    pub fn out_of_patience(&mut self, score: &str, observer: &mut dyn Observer) -> bool {
        if self.config.patience.is_some_and(|p| self.since_best >= p) {
            self.stopped_early = true;
            observer.note(&format!("early stopping: no better {score}"));
        }
        self.stopped_early
    }

    /// Records an epoch judged by `score` (none without validation, when only the first epoch
    /// counts as best), writes its checkpoints, history and curves, and tells the observer.
    pub fn end_epoch(
        &mut self,
        record: EpochRecord,
        score: Option<f64>,
        model: &Sequential,
        observer: &mut dyn Observer,
    ) -> Result<(), TrainError> {
        let score = score.unwrap_or(f64::INFINITY);
        let improved = self.best.is_none_or(|(_, b)| score > b);
        if improved {
            self.best = Some((record.epoch, score));
            self.since_best = 0;
        } else {
            self.since_best += 1;
        }
        self.history.push(record.clone());
        save_epoch(
            &EpochState {
                spec: self.spec,
                classes: self.classes,
                normalization: self.normalization,
                config: self.config,
                epoch: record.epoch,
                global_step: self.global_step,
                best: self.best,
                history: &self.history,
            },
            model,
            None,
            improved,
            self.run_dir,
        )?;
        observer.epoch_end(&record, improved);
        Ok(())
    }

    /// With `--save-every N`, after every N-th step of `epoch` short of its last (whose end
    /// `end_epoch` saves), writes the weights so far as `last` (atomically, without optimizer
    /// state): a long epoch stopped part-way keeps them.
    pub fn save_within_epoch(
        &self,
        epoch: usize,
        step: usize,
        steps: usize,
        model: &Sequential,
    ) -> Result<(), TrainError> {
        let Some(every) = self.config.save_every else {
            return Ok(());
        };
        if !step.is_multiple_of(every) || step >= steps {
            return Ok(());
        }
        let last_path = self.run_dir.join(CHECKPOINT_DIR).join(LAST);
        let state = EpochState {
            spec: self.spec,
            classes: self.classes,
            normalization: self.normalization,
            config: self.config,
            epoch: epoch - 1,
            global_step: self.global_step,
            best: self.best,
            history: &self.history,
        };
        let mut checkpoint = checkpoint_of(&state, model, None, &last_path)?;
        checkpoint.meta.steps_into_epoch = Some(step);
        commit_checkpoint(self.run_dir, &checkpoint, false, None)
    }

    pub fn finish(self, model: Sequential) -> TrainOutcome {
        let ckpt_dir = self.run_dir.join(CHECKPOINT_DIR);
        TrainOutcome {
            best_epoch: self.best.map(|(e, _)| e),
            best_val_accuracy: self.best.map(|(_, a)| a).filter(|a| a.is_finite()),
            history: self.history,
            stopped_early: self.stopped_early,
            last_checkpoint: ckpt_dir.join(LAST),
            best_checkpoint: ckpt_dir.join(BEST),
            model,
        }
    }
}

/// Where a run was when it was checkpointed.
struct Progress {
    epoch: usize,
    global_step: usize,
    history: Vec<EpochRecord>,
    best: Option<(usize, f64)>,
}

/// Trains `spec` on `data`, writing `history.csv`, `curves.png` and checkpoints into `run_dir`.
/// With `resume`, carries on from that checkpoint: weights, optimizer state, step count and
/// history; `config.epochs` is the total to reach.
pub fn train(
    spec: &ModelSpec,
    data: &TrainData,
    config: &TrainConfig,
    run_dir: &Path,
    resume: Option<(&Checkpoint, &Path)>,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome, TrainError> {
    train_from(spec, None, data, config, run_dir, resume, device, observer)
}

/// [`train`], starting from `initial` weights (built from `spec`, e.g. pretrained weights under
/// a new head) instead of a fresh initialisation. `config.freeze_before` freezes the layers
/// before the one it names.
#[allow(clippy::too_many_arguments)]
pub fn train_from(
    spec: &ModelSpec,
    initial: Option<Sequential>,
    data: &TrainData,
    config: &TrainConfig,
    run_dir: &Path,
    resume: Option<(&Checkpoint, &Path)>,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome, TrainError> {
    config.validate()?;
    check_not_empty("training", data.train.len())?;
    if let Some(val) = &data.validation {
        check_matches(&*data.train, &**val, "validation")?;
    }
    let ckpt_dir = run_dir.join(CHECKPOINT_DIR);
    ensure_writable_dir(&ckpt_dir)?;
    commit::prepare(run_dir)?;
    let last_path = ckpt_dir.join(LAST);
    let best_path = ckpt_dir.join(BEST);

    let train_device = device.clone().autodiff();
    train_device.seed(config.seed);
    let mut model = spec.build(&train_device)?;
    if let Some(initial) = &initial {
        copy_weights(&mut model, initial)?;
    }
    let mut optimizer = config.optimizer.build();
    let mut progress = Progress {
        epoch: 0,
        global_step: 0,
        history: Vec::new(),
        best: None,
    };
    if let Some((ckpt, path)) = resume {
        ckpt.load_into(&mut model, path)?;
        if let Some(bytes) = &ckpt.optimizer {
            optimizer = optimizer
                .from_bytes(Bytes::from_bytes_vec(bytes.clone()))
                .map_err(|e| TrainError::Checkpoint {
                    path: path.to_path_buf(),
                    message: format!("cannot restore the optimizer state: {e}"),
                })?;
        }
        let meta = &ckpt.meta;
        progress = Progress {
            epoch: meta.epoch,
            global_step: meta.global_step,
            history: meta.history.clone(),
            best: meta.best_epoch.zip(meta.best_val_accuracy),
        };
        // Dropout masks continue from a fresh stream rather than repeat the first epoch's.
        train_device.seed(config.seed.wrapping_add(meta.global_step as u64));
    }

    if let Some(name) = &config.freeze_before {
        let index = model.layer_start(name).ok_or_else(|| {
            TrainError::Config(format!(
                "cannot freeze before '{name}': the model has no layer of that name (`convnet summary` lists them)"
            ))
        })?;
        model = model.freeze_before(index);
    }

    let loader_config = |epoch: usize| LoaderConfig {
        batch_size: config.batch_size,
        shuffle: true,
        seed: config.seed,
        epoch: epoch as u64,
        drop_last: false,
        prefetch: 4,
        normalization: data.normalization.clone(),
        augment: data.augment.clone(),
    };
    let steps_per_epoch = Loader::new(data.train.clone(), loader_config(1))?.num_batches();
    let mut scheduler =
        config
            .schedule
            .scheduler(config.optimizer.lr, steps_per_epoch, config.epochs)?;
    for _ in 0..progress.global_step {
        scheduler.step();
    }

    let loss_fn = CrossEntropyLossConfig::new().init(&train_device);
    let num_classes = data.classes.len();
    let mut stopped_early = false;
    let mut since_best = progress.best.map_or(0, |(best_epoch, _)| {
        progress.epoch.saturating_sub(best_epoch)
    });

    for epoch in progress.epoch + 1..=config.epochs {
        if let Some(patience) = config.patience
            && since_best >= patience
        {
            stopped_early = true;
            observer.note(&format!(
                "early stopping: no better validation accuracy for {patience} epochs"
            ));
            break;
        }
        observer.epoch_start(epoch, config.epochs, steps_per_epoch);
        let started = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0u64, 0usize);
        let mut lr = config.optimizer.lr;
        for (step, batch) in Loader::new(data.train.clone(), loader_config(epoch))?.enumerate() {
            let n = batch.labels.len();
            let targets = batch.labels_tensor(&train_device);
            let logits = model.forward_logits(batch.to_features(&train_device), Mode::Train)?;
            check_classes(&logits, num_classes)?;
            let loss = loss_fn.forward(logits.clone(), targets.clone());
            let value = loss.clone().into_scalar::<f64>();
            check_finite(value, epoch, step + 1, &last_path)?;
            let hits = logits
                .argmax(1)
                .squeeze_dim::<1>(1)
                .equal(targets)
                .int()
                .sum()
                .into_scalar::<i64>();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let rate = scheduler.step();
            lr = rate.base();
            model = optimizer.step(rate, model, grads);
            progress.global_step += 1;
            loss_sum += value * n as f64;
            correct += hits as u64;
            seen += n;
            observer.step(
                step + 1,
                loss_sum / seen as f64,
                correct as f64 / seen as f64,
            );
        }
        let seconds = started.elapsed().as_secs_f64();

        let (val_loss, val_accuracy) = match &data.validation {
            Some(val) if !val.is_empty() => {
                observer.validation_start(val.len());
                let eval = evaluate(
                    &model.valid(),
                    val.clone(),
                    &data.normalization,
                    config.batch_size.max(256),
                    device,
                    |n| observer.validation_progress(n),
                )?;
                (Some(eval.loss), Some(eval.accuracy))
            }
            _ => (None, None),
        };
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            val_loss,
            val_accuracy,
            lr,
            seconds,
            val_mean_iou: None,
            val_map50: None,
            val_map: None,
        };
        // Without a validation set the latest epoch counts as the best.
        let score = val_accuracy.unwrap_or(f64::INFINITY);
        let improved = progress.best.is_none_or(|(_, best)| score > best);
        if improved {
            progress.best = Some((epoch, score));
            since_best = 0;
        } else {
            since_best += 1;
        }
        progress.epoch = epoch;
        progress.history.push(record.clone());

        let optimizer_bytes = optimizer
            .into_bytes()
            .map_err(|e| TrainError::Checkpoint {
                path: last_path.clone(),
                message: format!("cannot save the optimizer state: {e}"),
            })?
            .to_vec();
        save_epoch(
            &EpochState {
                spec,
                classes: &data.classes,
                normalization: &data.normalization,
                config,
                epoch,
                global_step: progress.global_step,
                best: progress.best,
                history: &progress.history,
            },
            &model,
            Some(optimizer_bytes),
            improved,
            run_dir,
        )?;
        observer.epoch_end(&record, improved);
    }

    Ok(TrainOutcome {
        best_epoch: progress.best.map(|(e, _)| e),
        best_val_accuracy: progress.best.map(|(_, a)| a).filter(|a| a.is_finite()),
        history: progress.history,
        stopped_early,
        last_checkpoint: last_path,
        best_checkpoint: best_path,
        model: model.valid(),
    })
}
