//! `convnet train`: train a classifier on Fashion-MNIST or a folder of images, with a progress
//! bar per epoch, validation, history, curves and checkpoints in a run directory.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::Device;
use convnet_apps::run::{self, TEST_REPORT, TrainRequest, Transfer};
use convnet_apps::{classify, detect, segment};
use convnet_train::{OptimizerKind, TrainOutcome};

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

impl From<Task> for run::Task {
    fn from(task: Task) -> Self {
        match task {
            Task::Images => run::Task::Images,
            Task::Signal => run::Task::Signal,
            Task::Volume => run::Task::Volume,
            Task::Segment => run::Task::Segment,
            Task::Detect => run::Task::Detect,
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub(crate) enum OptimizerArg {
    Adam,
    Sgd,
}

impl From<OptimizerArg> for OptimizerKind {
    fn from(optimizer: OptimizerArg) -> Self {
        match optimizer {
            OptimizerArg::Adam => OptimizerKind::Adam,
            OptimizerArg::Sgd => OptimizerKind::Sgd,
        }
    }
}

impl Args {
    /// The run these options ask for, fine-tuned from `transfer`'s weights when given.
    fn request(self, transfer: Option<Transfer>) -> TrainRequest {
        TrainRequest {
            task: self.task.into(),
            model: self.model,
            dataset: self.dataset,
            labels: self.labels,
            test_dataset: self.test_dataset,
            test_labels: self.test_labels,
            train_size: self.train_size,
            data: self.data,
            epochs: self.epochs,
            batch: self.batch,
            optimizer: self.optimizer.into(),
            lr: self.lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            schedule: self.schedule,
            augment: self.augment,
            seed: self.seed,
            val_split: self.val_split,
            patience: self.patience,
            save_every: self.save_every,
            only_classes: self.only_classes,
            per_class: self.per_class,
            limit: self.limit,
            test_limit: self.test_limit,
            size: self.size,
            channels: self.channels,
            out: self.out,
            resume: self.resume,
            tile: self.tile,
            overlap: self.overlap,
            anchors: self.anchors,
            init: self.init,
            binary: self.binary,
            loss: self.loss,
            transfer,
        }
    }
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
    let json = args.json;
    let request = args.request(transfer);
    let run = run::start(&request)?;
    let mut bars = Bars::new(quiet || json);
    match request.task {
        run::Task::Segment => {
            let trained = segment::train::train(&request, run, device, &mut bars)?;
            if json {
                return print_json(&trained.report);
            }
            if let Some(m) = &trained.test {
                let epoch = trained.outcome.best_epoch.unwrap_or(0);
                let what = format!("best checkpoint, epoch {epoch}");
                println!(
                    "{}",
                    segment::val::metrics_table(m, &trained.classes, &what)
                );
            }
            println!("{:.1} s per epoch", trained.outcome.seconds_per_epoch());
            print_history(&trained.run_dir);
            print_report(&trained.run_dir);
            println!("checkpoints: {}", trained.outcome.best_checkpoint.display());
        }
        run::Task::Detect => {
            let trained = detect::train::train(&request, run, device, &mut bars)?;
            if json {
                return print_json(&trained.report);
            }
            let best = trained.outcome.best_epoch;
            let table = detect::val::scores_table(&trained.report, &trained.classes, best);
            println!("{table}");
            println!("{:.1} s per epoch", trained.outcome.seconds_per_epoch());
            print_report(&trained.run_dir);
            println!(
                "COCO files:  {} and test-pred.json",
                trained.run_dir.join("test-gt.json").display()
            );
            println!(
                "PR curves:   {}",
                trained.run_dir.join("test-pr.png").display()
            );
            println!("checkpoints: {}", trained.outcome.best_checkpoint.display());
        }
        _ => {
            let trained = classify::train::train(&request, run, device, &mut bars)?;
            if json {
                return print_json(&trained.report());
            }
            print_classifier(&trained.outcome, trained.test.as_ref(), &trained.run_dir);
        }
    }
    Ok(())
}

fn print_json(report: &serde_json::Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(report)?);
    Ok(())
}

fn print_history(run_dir: &std::path::Path) {
    println!("history:     {}", run_dir.join("history.csv").display());
    println!("curves:      {}", run_dir.join("curves.png").display());
}

fn print_report(run_dir: &std::path::Path) {
    println!("metrics:     {}", run_dir.join(TEST_REPORT).display());
}

fn print_classifier(
    outcome: &TrainOutcome,
    test: Option<&convnet_train::Evaluation>,
    run_dir: &std::path::Path,
) {
    if let Some(e) = test {
        println!(
            "test accuracy {:.2}% (loss {:.4}) with the best checkpoint (epoch {})",
            100.0 * e.accuracy,
            e.loss,
            outcome.best_epoch.unwrap_or(0)
        );
    }
    println!("{:.1} s per epoch", outcome.seconds_per_epoch());
    print_history(run_dir);
    println!(
        "checkpoints: {} (best), {} (last)",
        outcome.best_checkpoint.display(),
        outcome.last_checkpoint.display()
    );
}
