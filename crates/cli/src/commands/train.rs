//! `convnet train`: train a classifier on Fashion-MNIST or a folder of images, with a progress
//! bar per epoch, validation, history, curves and checkpoints in a run directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use convnet_data::{Augment, ClassSelection, Normalization};
use convnet_layers::{HEAD_START, ModelSpec, Sequential};
use convnet_train::checkpoint::{CHECKPOINT_DIR, LAST};
use convnet_train::{
    Checkpoint, OptimizerKind, OptimizerSettings, Schedule, TrainConfig, TrainData, evaluate,
};
use serde_json::json;

use super::dataset::{DataSource, Locations};
use super::pretrained;
use super::progress::Bars;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// What is classified: `images` (default model lenet5, data fashion-mnist), `signal`
    /// (signal-cnn on generated ECGs) or `volume` (volume-cnn on generated motion clips).
    #[arg(long, value_enum, default_value_t = Task::Images)]
    pub(crate) task: Task,

    /// A built-in model (see `convnet models`) or a model spec file (`.toml`); default: the
    /// task's.
    #[arg(long)]
    pub(crate) model: Option<String>,

    /// `fashion-mnist`; a folder with one sub-folder of images per class (or `train/` and
    /// `test/` folders laid out that way); the generated `ecg`, `motion` or `shapes`; or
    /// `X.npy` with `--labels Y.npy`. Detection: `scenes` (generated), or your own labelled
    /// photos in YOLO, COCO, Pascal VOC or CSV layout (a folder, a COCO `.json` or a `.csv`).
    /// Default: the task's.
    #[arg(long)]
    pub(crate) dataset: Option<String>,

    /// Integer labels `[N]` for a `.npy` data set.
    #[arg(long, value_name = "Y.npy")]
    pub(crate) labels: Option<PathBuf>,

    /// A `.npy` test set (with --test-labels).
    #[arg(long, value_name = "X.npy", requires = "test_labels")]
    pub(crate) test_dataset: Option<PathBuf>,

    #[arg(long, value_name = "Y.npy", requires = "test_dataset")]
    pub(crate) test_labels: Option<PathBuf>,

    /// How many training examples to generate (ecg: 4000; motion, shapes: 2000).
    #[arg(long)]
    pub(crate) train_size: Option<usize>,

    /// Where Fashion-MNIST's IDX files are (default: `$CONVNET_DATA`, then
    /// /usr/share/datasets/fashion-mnist).
    #[arg(long, value_name = "DIR")]
    pub(crate) data: Option<PathBuf>,

    /// Number of epochs (with --resume: the total to reach).
    #[arg(long, default_value_t = 5)]
    pub(crate) epochs: usize,

    /// Examples per batch.
    #[arg(long, default_value_t = 128, value_parser = super::args::batch, allow_negative_numbers = true)]
    pub(crate) batch: usize,

    #[arg(long, value_enum, default_value_t = OptimizerArg::Adam)]
    pub(crate) optimizer: OptimizerArg,

    /// Learning rate (default 1e-3 for Adam, 1e-2 for SGD; with --resume, a new rate).
    #[arg(long)]
    pub(crate) lr: Option<f64>,

    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub(crate) momentum: f64,

    /// L2 weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) weight_decay: f64,

    /// Learning-rate schedule: `constant`, `step` (x0.1 every 10 epochs), `step:EPOCHS[:GAMMA]`
    /// or `cosine`.
    #[arg(long, default_value = "constant")]
    pub(crate) schedule: String,

    /// Augmentations, comma-separated: `flip[=P]`, `crop=PAD`, `rotate=DEG`, `shift=MAX`,
    /// `pca[=SIGMA]` (RGB only); `none` for none. Detection moves the boxes with the pixels:
    /// `flip[=P]`, `scale=S`, `translate=T`, `hsv[=H:S:V]`, `mosaic[=P]`, or `default`
    /// (Ultralytics' recipe: flip 0.5, scale 0.5, translate 0.1, hsv 0.015:0.7:0.4, mosaic 1).
    #[arg(long, default_value = "none")]
    pub(crate) augment: String,

    /// Seed for initialisation, shuffling, the validation split and augmentation.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,

    /// Fraction of the training set held out for validation.
    #[arg(long, default_value_t = 0.1)]
    pub(crate) val_split: f64,

    /// Stop when validation accuracy has not improved for this many epochs.
    #[arg(long)]
    pub(crate) patience: Option<usize>,

    /// Detection and segmentation: inside an epoch, also write checkpoints/last.ckpt every N
    /// steps (weights only), so a long epoch stopped part-way keeps its latest weights
    /// (`convnet eval RUN/checkpoints/last.ckpt` scores them). Runs do not resume from it.
    #[arg(long, value_name = "N")]
    pub(crate) save_every: Option<usize>,

    /// Keep only these classes (original indices: `5,6,7` or `5-9`), relabelled 0..k in that
    /// order; applies to the test set too.
    #[arg(long, value_name = "LIST")]
    pub(crate) only_classes: Option<String>,

    /// At most N training examples per class, picked by a seeded shuffle (few-label training).
    #[arg(long, value_name = "N")]
    pub(crate) per_class: Option<usize>,

    /// Train on the first N training examples only (quick runs, tests).
    #[arg(long)]
    pub(crate) limit: Option<usize>,

    /// Test on the first N test examples only.
    #[arg(long)]
    pub(crate) test_limit: Option<usize>,

    /// Image size (height = width) for folder data sets (default: the model's input size).
    #[arg(long, value_parser = super::args::image_side, allow_negative_numbers = true)]
    pub(crate) size: Option<usize>,

    /// Channels for folder data sets: 1 (grey) or 3 (RGB) (default: the model's).
    #[arg(long)]
    pub(crate) channels: Option<usize>,

    /// The run directory: history.csv, curves.png, checkpoints/ (default: runs/MODEL).
    #[arg(long, short)]
    pub(crate) out: Option<PathBuf>,

    /// Continue the run in this directory from its last checkpoint (weights, optimizer state,
    /// epoch); `--epochs` is the total to reach.
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "out")]
    pub(crate) resume: Option<PathBuf>,

    /// Detection on your own data: cut pictures into tiles of this many pixels (training,
    /// validation and test alike; boxes clipped, kept when at least half inside), for pictures
    /// far larger than the network's input (aerial, microscope, document scans).
    #[arg(long, value_name = "PX", value_parser = super::args::image_side, allow_negative_numbers = true)]
    pub(crate) tile: Option<usize>,

    /// Detection: how many pixels neighbouring tiles share (with --tile).
    #[arg(long, value_name = "PX", default_value_t = 32, requires = "tile")]
    pub(crate) overlap: usize,

    /// Detection: anchors per grid cell, found by k-means (1 - IoU) on the training boxes; a
    /// detector's run named by `--init` keeps its own anchors.
    #[arg(long, default_value_t = 3)]
    pub(crate) anchors: usize,

    /// Segmentation and detection: start from the tensors of this checkpoint, run directory,
    /// `.pth` or `.safetensors` file that the model's layers name, exactly or nested deeper
    /// (a `unet-small-encoder` classifier's `down2.conv1` fills unet-small's
    /// `skip1.down2.conv1`); the other layers start fresh.
    #[arg(long, value_name = "WEIGHTS", conflicts_with = "resume")]
    pub(crate) init: Option<PathBuf>,

    /// Segmentation: item vs background only (two classes).
    #[arg(long)]
    pub(crate) binary: bool,

    /// Segmentation loss: `ce` (per-pixel cross-entropy), `dice` or `ce+dice`.
    #[arg(long, default_value = "ce")]
    pub(crate) loss: String,

    /// Print one JSON object with the results (and no progress) on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Task {
    /// Images `[C, H, W]`.
    #[value(alias = "classify")]
    Images,
    /// Signals `[C, L]`.
    Signal,
    /// Volumes or clips `[C, D, H, W]`.
    Volume,
    /// A class for every pixel (default model unet-small, data: the generated scenes).
    #[value(alias = "segmentation")]
    Segment,
    /// Boxes and classes of objects (default model tiny-yolo, data: generated scenes).
    #[value(alias = "detection")]
    Detect,
}

impl Task {
    fn defaults(self) -> (&'static str, &'static str) {
        match self {
            Task::Images => ("lenet5", super::dataset::FASHION_MNIST),
            Task::Signal => ("signal-cnn", super::dataset::ECG),
            Task::Volume => ("volume-cnn", super::dataset::MOTION),
            Task::Segment => ("unet-small", super::segment::SCENES),
            Task::Detect => ("tiny-yolo", super::segment::SCENES),
        }
    }

    fn rank(self) -> usize {
        match self {
            Task::Images | Task::Segment | Task::Detect => 3,
            Task::Signal => 2,
            Task::Volume => 4,
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub(crate) enum OptimizerArg {
    Adam,
    Sgd,
}

/// The spec and weights a transfer run starts from, and the normalisation the base was trained
/// with (its features expect inputs scaled that way). Weights that already carry a head for
/// `classes` (a checkpoint of an earlier fine-tuning stage) are used as they are; otherwise the
/// base's classifier is replaced by a new head.
fn transfer_start(
    base: &str,
    t: &Transfer,
    shape: &[usize],
    classes: usize,
    device: &Device,
    bars: &Bars,
) -> Result<(ModelSpec, Sequential, Option<Normalization>)> {
    if t.classes != classes {
        bail!(
            "--classes {} but the data set has {classes} classes{}",
            t.classes,
            " (use --only-classes to pick some)"
        );
    }
    let from_checkpoint = Checkpoint::is_checkpoint(&t.weights);
    let (dict, normalization, earlier) = if from_checkpoint {
        let path = Checkpoint::resolve(&t.weights)?;
        let ckpt = Checkpoint::load(&path)?;
        let spec = ckpt.spec(&path)?;
        let model = ckpt.model(&path, device)?;
        let continues = spec
            .layers
            .iter()
            .any(|l| l.name.as_deref() == Some(HEAD_START))
            && ckpt.meta.classes.len() == classes;
        (
            convnet_weights::to_state_dict(&model)?,
            Some(Normalization::from(&ckpt.meta.normalization)),
            continues.then_some(spec),
        )
    } else {
        let dict = pretrained::read_weights(&t.weights, device)?;
        // torchvision's ImageNet weights expect ImageNet's statistics.
        let imagenet = (shape.first() == Some(&3)).then(|| Normalization {
            mean: convnet_data::preprocess::IMAGENET_MEAN.to_vec(),
            std: convnet_data::preprocess::IMAGENET_STD.to_vec(),
        });
        (dict, imagenet, None)
    };
    let spec = match earlier {
        Some(spec) => spec,
        None => pretrained::spec_for(base, Some(shape), classes)?.with_new_head(classes)?,
    };
    let (model, report) = pretrained::load(&spec, &dict, true, &t.weights, device)?;
    // Only the new head may be missing: anything else means the weights are for another base.
    let not_head = |k: &String| !k.starts_with("head.");
    let missing: Vec<&String> = report.missing.iter().filter(|k| not_head(k)).collect();
    let mismatched: Vec<String> = report
        .mismatched
        .iter()
        .filter(|m| not_head(&m.key))
        .map(|m| format!("{} (model {:?}, file {:?})", m.key, m.expected, m.found))
        .collect();
    let fits = missing.is_empty() && mismatched.is_empty();
    if !fits && !t.allow_partial {
        bail!(
            "{} does not fit the base '{base}': {} of its layers' tensors are missing ({}){}; pass --allow-partial to train them from scratch",
            t.weights.display(),
            missing.len() + mismatched.len(),
            missing
                .iter()
                .take(10)
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if mismatched.is_empty() {
                String::new()
            } else {
                format!("; mis-shaped: {}", mismatched.join(", "))
            }
        );
    }
    bars.line(&format!(
        "transfer: {} tensors loaded from {}; the layers before '{}' are frozen",
        report.loaded.len(),
        t.weights.display(),
        t.unfreeze_from.as_deref().unwrap_or(HEAD_START)
    ));
    Ok((spec, model, normalization))
}

/// The weights a segmentation or detection run starts from (`--init`), if any, with what was
/// loaded for the run's report.
pub(super) fn initial_model(
    args: &Args,
    spec: &ModelSpec,
    device: &Device,
    bars: &Bars,
) -> Result<(Option<Sequential>, serde_json::Value)> {
    let Some(path) = &args.init else {
        return Ok((None, serde_json::Value::Null));
    };
    let (model, report) = pretrained::initial_model(spec, path, device)?;
    let rest = if report.missing.is_empty() {
        "none starts fresh"
    } else {
        "the rest start fresh"
    };
    bars.line(&format!(
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

/// The model's spec fitted to the data: zoo models adapt to the images and classes; a spec
/// file must already match them.
fn model_spec(model: &str, shape: &[usize], classes: usize) -> Result<ModelSpec> {
    let path = Path::new(model);
    if path.extension().is_some_and(|e| e == "toml") || path.is_file() {
        let spec = ModelSpec::from_file(path)?;
        if spec.input != shape {
            bail!(
                "{}: the model takes input {:?} but the data set's images are {:?} (channels, height, width)",
                path.display(),
                spec.input,
                shape
            );
        }
        return Ok(spec);
    }
    Ok(convnet_zoo::classifier_spec(model, shape, classes)?)
}

fn folder_shape(args: &Args, model: &str) -> Result<[usize; 3]> {
    let path = Path::new(model);
    let input = if path.extension().is_some_and(|e| e == "toml") || path.is_file() {
        ModelSpec::from_file(path)?.input
    } else {
        convnet_zoo::spec(model)?.input
    };
    if input.len() != 3 {
        bail!("the model's input {input:?} is not an image (channels, height, width)");
    }
    let channels = args.channels.unwrap_or(input[0]);
    if channels != 1 && channels != 3 {
        bail!("--channels must be 1 or 3, got {channels}");
    }
    let size = args.size.unwrap_or(input[1]);
    Ok([channels, size, size])
}

/// Transfer learning on top of a training run (`convnet finetune`): start from pretrained
/// weights under a new head and freeze the layers before `freeze_before`.
pub(crate) struct Transfer {
    pub weights: PathBuf,
    pub classes: usize,
    /// The first layer that learns (default: the new head).
    pub unfreeze_from: Option<String>,
    pub allow_partial: bool,
}

pub fn run(args: Args, device: &Device, quiet: bool) -> Result<()> {
    run_with(args, None, device, quiet)
}

pub(crate) fn run_with(
    args: Args,
    transfer: Option<Transfer>,
    device: &Device,
    quiet: bool,
) -> Result<()> {
    let resume = match &args.resume {
        Some(dir) => {
            let path = dir.join(CHECKPOINT_DIR).join(LAST);
            let ckpt = Checkpoint::load(&path)
                .with_context(|| format!("cannot resume from {}", dir.display()))?;
            Some((ckpt, path))
        }
        None => None,
    };
    let (default_model, default_dataset) = args.task.defaults();
    let model_name = match (&args.model, &resume) {
        (Some(m), _) => m.clone(),
        (None, Some((ckpt, _))) => ckpt.meta.config.model.clone(),
        (None, None) => default_model.to_string(),
    };
    let mut config = match &resume {
        Some((ckpt, _)) => ckpt.meta.config.clone(),
        None => TrainConfig::new(
            &model_name,
            args.dataset.as_deref().unwrap_or(default_dataset),
        ),
    };
    config.epochs = args.epochs;
    if resume.is_some() {
        // A resumed run keeps its recipe, except what the user says to change.
        if let Some(lr) = args.lr {
            config.optimizer.lr = lr;
        }
        if args.patience.is_some() {
            config.patience = args.patience;
        }
    } else {
        let kind = match args.optimizer {
            OptimizerArg::Adam => OptimizerKind::Adam,
            OptimizerArg::Sgd => OptimizerKind::Sgd,
        };
        config.batch_size = args.batch;
        config.optimizer = OptimizerSettings {
            kind,
            lr: args.lr.unwrap_or(match kind {
                OptimizerKind::Adam => 1e-3,
                OptimizerKind::Sgd => 1e-2,
            }),
            momentum: match kind {
                OptimizerKind::Adam => 0.0,
                OptimizerKind::Sgd => args.momentum,
            },
            weight_decay: args.weight_decay,
        };
        config.schedule = Schedule::parse(&args.schedule)?;
        config.augment = if args.augment == "none" {
            String::new()
        } else {
            args.augment.clone()
        };
        config.seed = args.seed;
        config.val_fraction = args.val_split;
        config.patience = args.patience;
        config.only_classes = match &args.only_classes {
            Some(list) => ClassSelection::parse_classes(list)?,
            None => Vec::new(),
        };
        config.per_class = args.per_class;
    }
    if let Some(init) = &args.init {
        if !matches!(args.task, Task::Segment | Task::Detect) {
            bail!(
                "--init starts segmentation and detection runs; a classifier starts from pretrained weights with `convnet finetune`"
            );
        }
        config.init = Some(init.display().to_string());
    }
    if args.save_every.is_some() {
        if !matches!(args.task, Task::Segment | Task::Detect) {
            bail!(
                "--save-every is for detection and segmentation runs; a classifier's epochs end with a checkpoint it can resume from (--resume)"
            );
        }
        config.save_every = args.save_every;
    }
    if let Some(t) = &transfer {
        config.freeze_before = Some(t.unfreeze_from.clone().unwrap_or(HEAD_START.to_string()));
    }
    config.validate()?;
    let run_dir = match (&args.resume, &args.out) {
        (Some(dir), _) => dir.clone(),
        (None, Some(out)) => out.clone(),
        (None, None) => PathBuf::from("runs").join(model_name.replace(['/', '\\', '.'], "_")),
    };

    let bars = Bars::new(quiet || args.json);
    if matches!(args.task, Task::Segment | Task::Detect) {
        // The detector writes its head file before its training starts (the training library
        // still refuses empty sets before it writes a checkpoint).
        convnet_train::ensure_writable_dir(&run_dir.join(CHECKPOINT_DIR))?;
    }
    if args.task == Task::Segment {
        if args.resume.is_some() || transfer.is_some() {
            bail!("segmentation runs do not resume or fine-tune yet");
        }
        return super::segment::train(&args, config, &run_dir, device, bars);
    }
    if args.task == Task::Detect {
        if args.resume.is_some() || transfer.is_some() {
            bail!("detection runs do not resume or fine-tune yet");
        }
        return super::detect::train(&args, config, &run_dir, device, bars);
    }
    let locations = Locations {
        data_dir: args.data.as_deref(),
        labels: args.labels.as_deref(),
        test: args
            .test_dataset
            .as_deref()
            .zip(args.test_labels.as_deref()),
    };
    let source = DataSource::resolve(&config.dataset, &locations)?;
    let image_size = if source.is_folder() {
        Some(folder_shape(&args, &model_name)?)
    } else {
        None
    };
    let loaded = Instant::now();
    let selection = ClassSelection {
        classes: config.only_classes.clone(),
        per_class: config.per_class,
        seed: config.seed,
    };
    let full = source
        .load_train(image_size, args.limit, args.train_size, config.seed)?
        .select(&selection)?;
    let shape = full.example_shape();
    if resume.is_none() && shape.len() != args.task.rank() {
        bail!(
            "--task {:?} takes examples of rank {}, but {} has examples of shape {shape:?}",
            args.task,
            args.task.rank(),
            config.dataset
        );
    }
    let test_selection = ClassSelection {
        per_class: None,
        ..selection
    };
    let test = source
        .load_test(image_size, args.test_limit)?
        .map(|t| t.select(&test_selection))
        .transpose()?;
    // Refused before the run directory is made, let alone trained in.
    convnet_data::check_not_empty("training", full.len())?;
    if let Some(test) = &test {
        convnet_data::check_matches(full.examples(), test.examples(), "test")?;
    }
    convnet_train::ensure_writable_dir(&run_dir.join(CHECKPOINT_DIR))?;
    let (train, validation) = full.split(config.val_fraction, config.seed)?;
    bars.line(&format!(
        "data: {} training, {} validation, {} test examples of {:?} in {} classes ({:.1} s to load)",
        train.len(),
        validation.len(),
        test.as_ref().map_or(0, |t| t.len()),
        shape,
        full.classes().len(),
        loaded.elapsed().as_secs_f64()
    ));
    let classes = full.classes();
    // Resuming with --model checks that the checkpoint fits that model (train loads it into
    // the model and lists any tensors that differ).
    let (spec, initial, base_normalization) = match (&resume, &args.model, &transfer) {
        (Some((ckpt, path)), None, _) => (ckpt.spec(path)?, None, None),
        (None, _, Some(t)) => {
            let (spec, model, normalization) =
                transfer_start(&model_name, t, &shape, classes.len(), device, &bars)?;
            (spec, Some(model), normalization)
        }
        _ => (model_spec(&model_name, &shape, classes.len())?, None, None),
    };
    let normalization = match (&resume, base_normalization) {
        (Some((ckpt, _)), _) => (&ckpt.meta.normalization).into(),
        (None, Some(n)) => n,
        (None, None) => train.normalization(),
    };
    let augment = match (config.augment.is_empty(), train.as_images()) {
        (true, _) => None,
        (false, Some(images)) => Some(Arc::new(Augment::parse(&config.augment, images)?)),
        (false, None) => {
            bail!("--augment works on images only; this data set holds {shape:?} examples")
        }
    };
    let params = spec.build(device)?.num_params();
    bars.line(&format!(
        "model: {} ({} parameters); run directory {}",
        spec.name,
        convnet_layers::summary::thousands(params as u64),
        run_dir.display()
    ));
    let data = TrainData {
        classes: classes.clone(),
        train: train.into_examples(),
        validation: (!validation.is_empty()).then(|| validation.into_examples()),
        normalization: normalization.clone(),
        augment,
    };
    let mut observer = bars;
    let outcome = convnet_train::train_from(
        &spec,
        initial,
        &data,
        &config,
        &run_dir,
        resume.as_ref().map(|(c, p)| (c, p.as_path())),
        device,
        &mut observer,
    )?;

    // Test with the best checkpoint's weights: what `convnet eval RUN_DIR` reports too.
    let best = Checkpoint::load(&outcome.best_checkpoint)?;
    let model = best.model(&outcome.best_checkpoint, device)?;
    let test_eval = match test {
        Some(test) => Some(evaluate(
            &model,
            test.into_examples(),
            &normalization,
            256,
            device,
            |_| {},
        )?),
        None => None,
    };
    let seconds_per_epoch = outcome.seconds_per_epoch();
    if args.json {
        let out = json!({
            "model": spec.name,
            "params": params,
            "epochs": outcome.history.len(),
            "seconds_per_epoch": seconds_per_epoch,
            "test_accuracy": test_eval.as_ref().map(|e| e.accuracy),
            "test_loss": test_eval.as_ref().map(|e| e.loss),
            "best_epoch": outcome.best_epoch,
            "best_val_accuracy": outcome.best_val_accuracy,
            "stopped_early": outcome.stopped_early,
            "history": outcome.history,
            "run_dir": run_dir,
            "best_checkpoint": outcome.best_checkpoint,
            "last_checkpoint": outcome.last_checkpoint,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        if let Some(e) = &test_eval {
            println!(
                "test accuracy {:.2}% (loss {:.4}) with the best checkpoint (epoch {})",
                100.0 * e.accuracy,
                e.loss,
                outcome.best_epoch.unwrap_or(0)
            );
        }
        println!("{:.1} s per epoch", seconds_per_epoch);
        println!("history:     {}", run_dir.join("history.csv").display());
        println!("curves:      {}", run_dir.join("curves.png").display());
        println!(
            "checkpoints: {} (best), {} (last)",
            outcome.best_checkpoint.display(),
            outcome.last_checkpoint.display()
        );
    }
    Ok(())
}

/// Writes a run's `test-metrics.json`; with `--json` also prints it and returns true (the
/// caller prints nothing more).
pub(crate) fn write_test_report(
    run_dir: &Path,
    report: &serde_json::Value,
    json: bool,
) -> Result<bool> {
    convnet_train::write_atomically(
        &run_dir.join("test-metrics.json"),
        serde_json::to_string_pretty(report)?.as_bytes(),
    )?;
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    }
    Ok(json)
}
