//! `convnet embed`: the training side of face recognition, shown on Fashion-MNIST. `embed
//! train` learns an embedding with the triplet loss on some classes (the "identities" seen in
//! training); `embed one-shot` enrols one image of each of other classes and names every test
//! image of those classes after the nearest enrolled one.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::Device;
use convnet_apps::embed::{self, OneShotProgress, OneShotRequest, TrainRequest};
use convnet_train::Mining;
use convnet_train::embedding::{DEFAULT_DIM, DEFAULT_MARGIN};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::progress::Bars;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: EmbedCommand,
}

#[derive(clap::Subcommand, Debug)]
enum EmbedCommand {
    /// Train an embedding network with the triplet loss on some classes (progress, validation
    /// one-shot accuracy, history.csv, curves.png, checkpoints, embedding.json).
    Train(Box<TrainArgs>),
    /// One-shot identification of classes the network never saw: enrol one training image per
    /// class (drawn by a seed), name each test image after the nearest enrolled one.
    OneShot(OneShotArgs),
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum MiningArg {
    /// Per anchor: its farthest positive and nearest negative in the batch.
    BatchHard,
    /// Per (anchor, positive): the nearest negative farther than the positive (FaceNet).
    SemiHard,
}

#[derive(clap::Args, Debug)]
struct TrainArgs {
    /// The classes trained on (original indices: `0-6`, `0,2,5`): the identities the network
    /// learns from. Keep the ones `one-shot` tests on out.
    #[arg(long, default_value = "0-6", value_name = "LIST")]
    classes: String,

    /// The backbone: a built-in classifier (`lenet5`, `fmnist-cnn`) or a spec file (`.toml`);
    /// its classifier is replaced by a dense layer to `--dim` numbers.
    #[arg(long, default_value = "lenet5")]
    model: String,

    /// `fashion-mnist`, or a folder with one sub-folder of images per class (read as 28x28
    /// grey).
    #[arg(long, default_value = "fashion-mnist")]
    dataset: String,

    /// Where Fashion-MNIST's IDX files are (default: `$CONVNET_DATA`, then
    /// /usr/share/datasets/fashion-mnist).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,

    /// Number of epochs (an epoch: as many images as the training set holds). On
    /// Fashion-MNIST, more than 2 fit the training classes better but identify new ones worse.
    #[arg(long, default_value_t = 2)]
    epochs: usize,

    /// How the triplets of a batch are chosen.
    #[arg(long, value_enum, default_value_t = MiningArg::BatchHard)]
    mining: MiningArg,

    /// The triplet margin α (embeddings are unit vectors: squared distances are 0 to 4).
    #[arg(long, default_value_t = DEFAULT_MARGIN)]
    margin: f64,

    /// Numbers per embedding.
    #[arg(long, default_value_t = DEFAULT_DIM)]
    dim: usize,

    /// P: classes per batch (default: all the classes trained on, at most 7).
    #[arg(long, value_name = "P", value_parser = super::args::batch, allow_negative_numbers = true)]
    classes_per_batch: Option<usize>,

    /// K: images of each class per batch.
    #[arg(long, default_value_t = 16, value_name = "K", value_parser = super::args::batch, allow_negative_numbers = true)]
    images_per_class: usize,

    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,

    /// Augmentations, as `convnet train` takes them (`flip`, `crop=2`, `rotate=10`...).
    #[arg(long, default_value = "none")]
    augment: String,

    /// Fraction of the training images held out to score each epoch (one-shot accuracy on
    /// the training classes), which picks the best checkpoint; 0 keeps the last epoch.
    #[arg(long, default_value_t = 0.1)]
    val_split: f64,

    /// Stop when the validation score has not improved for this many epochs.
    #[arg(long)]
    patience: Option<usize>,

    /// Train on the first N training images only (quick runs, tests).
    #[arg(long)]
    limit: Option<usize>,

    /// Seed for initialisation, batches, the validation split and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// The run directory: embedding.json, history.csv, curves.png, checkpoints/ (default:
    /// runs/embed-MODEL).
    #[arg(long, short)]
    out: Option<PathBuf>,

    /// Print one JSON object with the results (and no progress) on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct OneShotArgs {
    /// A run directory written by `convnet embed train`.
    run_dir: PathBuf,

    /// The classes to identify (original indices): ones the network did not train on.
    #[arg(long, default_value = "7-9", value_name = "LIST")]
    classes: String,

    /// Images enrolled per class (nearest enrolled image wins).
    #[arg(long, default_value_t = 1)]
    shots: usize,

    /// Random supports to average over (the first is drawn with `--seed`).
    #[arg(long, default_value_t = 10)]
    draws: usize,

    /// Seed of the first support draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// The data set (default: the one the run trained on).
    #[arg(long)]
    dataset: Option<String>,

    /// Where Fashion-MNIST's IDX files are.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,

    /// Print one JSON object instead of the text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, device: &Device, quiet: bool) -> Result<()> {
    match args.command {
        EmbedCommand::Train(a) => train(*a, device, quiet),
        EmbedCommand::OneShot(a) => one_shot(a, device, quiet),
    }
}

fn train(args: TrainArgs, device: &Device, quiet: bool) -> Result<()> {
    let request = TrainRequest {
        classes: args.classes,
        model: args.model,
        dataset: args.dataset,
        data: args.data,
        epochs: args.epochs,
        mining: match args.mining {
            MiningArg::BatchHard => Mining::BatchHard,
            MiningArg::SemiHard => Mining::SemiHard,
        },
        margin: args.margin,
        dim: args.dim,
        classes_per_batch: args.classes_per_batch,
        images_per_class: args.images_per_class,
        lr: args.lr,
        augment: args.augment,
        val_split: args.val_split,
        patience: args.patience,
        limit: args.limit,
        seed: args.seed,
        out: args.out,
    };
    let mut bars = Bars::triplets(quiet || args.json);
    let trained = embed::train(&request, device, &mut bars)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&trained.to_json())?);
        return Ok(());
    }
    let outcome = &trained.outcome;
    if let (Some(epoch), Some(score)) = (outcome.best_epoch, outcome.best_val_accuracy) {
        println!(
            "best epoch {epoch}: validation one-shot accuracy {:.2}% (training classes)",
            100.0 * score
        );
    }
    println!("{:.1} s per epoch", outcome.seconds_per_epoch());
    println!("settings:    {}", trained.settings().display());
    println!(
        "history:     {}",
        trained.run_dir.join("history.csv").display()
    );
    println!("checkpoint:  {}", trained.checkpoint.display());
    println!(
        "next:        convnet embed one-shot {} --classes LIST (classes not trained on)",
        trained.run_dir.display()
    );
    Ok(())
}

/// The support draws' bar on stderr, made at the first draw, and the warnings, which `-q`
/// silences.
struct Draws {
    bar: Option<ProgressBar>,
    quiet: bool,
    /// No bar (`-q`, or `--json` where stdout is for the result).
    hidden: bool,
}

impl OneShotProgress for Draws {
    fn warn(&mut self, text: &str) {
        if !self.quiet {
            eprintln!("warning: {text}");
        }
    }

    fn draws(&mut self, done: usize, total: usize) {
        let hidden = self.hidden;
        let bar = self.bar.get_or_insert_with(|| {
            if hidden {
                return ProgressBar::hidden();
            }
            ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr())
                .with_style(
                    ProgressStyle::with_template("support draws [{bar:30}] {pos}/{len}")
                        .expect("a valid progress template"),
                )
        });
        bar.set_position(done as u64);
    }
}

fn one_shot(args: OneShotArgs, device: &Device, quiet: bool) -> Result<()> {
    let request = OneShotRequest {
        run_dir: args.run_dir,
        classes: args.classes,
        shots: args.shots,
        draws: args.draws,
        seed: args.seed,
        dataset: args.dataset,
        data: args.data,
    };
    let mut progress = Draws {
        bar: None,
        quiet,
        hidden: quiet || args.json,
    };
    let result = embed::one_shot(&request, device, &mut progress)?;
    if let Some(bar) = &progress.bar {
        bar.finish_and_clear();
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result.to_json())?);
        return Ok(());
    }
    let (report, class_names) = (&result.report, &result.class_names);
    let first = report.first();
    println!(
        "{}-shot identification of {} classes ({}) on {} test images, enrolled from the training images; {}",
        report.shots,
        class_names.len(),
        class_names.join(", "),
        report.queries,
        result.checkpoint.display()
    );
    println!(
        "accuracy {:.2}% with the support of seed {} (chance {:.2}%)",
        100.0 * first.accuracy,
        result.seed,
        100.0 / class_names.len() as f64
    );
    if report.draws.len() > 1 {
        println!(
            "accuracy {:.2}% ± {:.2}% over {} support draws (min {:.2}%, max {:.2}%)",
            100.0 * report.mean_accuracy,
            100.0 * report.std_accuracy,
            report.draws.len(),
            100.0 * report.min_accuracy,
            100.0 * report.max_accuracy
        );
    }
    println!(
        "\nconfusion (seed {}; rows: true class, columns: predicted)",
        result.seed
    );
    print!("{}", result.confusion_table());
    Ok(())
}
