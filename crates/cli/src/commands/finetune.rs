//! `convnet finetune`: transfer learning. A pretrained base keeps its features, a new head
//! (global average pool → dropout 0.2 → dense) learns the new classes; the base is frozen
//! (weights fixed, batch norms on their running statistics) up to `--unfreeze-from`.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::Device;

use convnet_apps::run::Transfer;

use super::train::{self, OptimizerArg, Task};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The pretrained architecture: a built-in model (see `convnet models`) or a spec file.
    #[arg(long)]
    base: String,

    /// Its weights: a PyTorch state_dict (`.pth`), a `.safetensors` file, or a convnet
    /// checkpoint / run directory (an earlier fine-tuning stage continues with its head).
    #[arg(long)]
    weights: PathBuf,

    /// The data: `fashion-mnist` or a folder with one sub-folder of images per class (or
    /// `train/` and `test/` folders laid out that way).
    #[arg(long, value_name = "DIR")]
    data: String,

    /// Classes of the new head; must match the data (after --only-classes).
    #[arg(long)]
    classes: usize,

    /// Train from this layer on (e.g. `layer4`, a group of layers, or `head.pool`, the
    /// default); the layers before it stay frozen. Use with a small --lr.
    #[arg(long, value_name = "LAYER")]
    unfreeze_from: Option<String>,

    /// Accept weights that cover only part of the base (the rest trains from scratch).
    #[arg(long)]
    allow_partial: bool,

    /// Keep only these classes of the data (`5,6,7` or `5-9`), relabelled 0..k.
    #[arg(long, value_name = "LIST")]
    only_classes: Option<String>,

    /// At most N labelled training images per class.
    #[arg(long, value_name = "N")]
    per_class: Option<usize>,

    /// Where Fashion-MNIST's IDX files are (default: `$CONVNET_DATA`, then
    /// /usr/share/datasets/fashion-mnist).
    #[arg(long, value_name = "DIR")]
    fashion_mnist_dir: Option<PathBuf>,

    #[arg(long, default_value_t = 10)]
    epochs: usize,

    #[arg(long, default_value_t = 32, value_parser = super::args::batch, allow_negative_numbers = true)]
    batch: usize,

    /// Learning rate (Adam).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,

    /// Augmentations, as for `convnet train`.
    #[arg(long, default_value = "none")]
    augment: String,

    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Fraction of the training images held out for validation.
    #[arg(long, default_value_t = 0.1)]
    val_split: f64,

    /// Stop when validation accuracy has not improved for this many epochs.
    #[arg(long)]
    patience: Option<usize>,

    /// Image size for folder data sets (default: the base's input size).
    #[arg(long, value_parser = super::args::image_side, allow_negative_numbers = true)]
    size: Option<usize>,

    /// Test on the first N test images only.
    #[arg(long)]
    test_limit: Option<usize>,

    /// The run directory (default: runs/finetune-BASE).
    #[arg(long, short)]
    out: Option<PathBuf>,

    /// Print one JSON object with the results.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, device: &Device, quiet: bool) -> Result<()> {
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("runs").join(format!(
            "finetune-{}",
            args.base.replace(['/', '\\', '.'], "_")
        ))
    });
    let train_args = train::Args {
        task: Task::Images,
        model: Some(args.base),
        dataset: Some(args.data),
        labels: None,
        test_dataset: None,
        test_labels: None,
        train_size: None,
        data: args.fashion_mnist_dir,
        epochs: args.epochs,
        batch: args.batch,
        optimizer: OptimizerArg::Adam,
        lr: Some(args.lr),
        momentum: 0.9,
        weight_decay: 0.0,
        schedule: "constant".into(),
        augment: args.augment,
        seed: args.seed,
        val_split: args.val_split,
        patience: args.patience,
        save_every: None,
        only_classes: args.only_classes,
        per_class: args.per_class,
        limit: None,
        test_limit: args.test_limit,
        size: args.size,
        channels: None,
        out: Some(out),
        resume: None,
        init: None,
        binary: false,
        anchors: 3,
        tile: None,
        overlap: 32,
        loss: "ce".into(),
        json: args.json,
    };
    let transfer = Transfer {
        weights: args.weights,
        classes: args.classes,
        unfreeze_from: args.unfreeze_from,
        allow_partial: args.allow_partial,
    };
    train::run_with(train_args, Some(transfer), device, quiet)
}
