//! `convnet embed`: the training side of face recognition, shown on Fashion-MNIST. `embed
//! train` learns an embedding with the triplet loss on some classes (the "identities" seen in
//! training); `embed one-shot` enrols one image of each of other classes and names every test
//! image of those classes after the nearest enrolled one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use convnet_data::{Augment, ClassSelection, DataError};
use convnet_layers::ModelSpec;
use convnet_train::embedding::{
    DEFAULT_DIM, DEFAULT_MARGIN, EMBEDDING_FILE, embedding_checkpoint, embedding_spec,
    one_shot_report,
};
use convnet_train::{
    Checkpoint, EmbeddingConfig, Mining, OptimizerSettings, TrainData, train_embedding,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::dataset::{AnySet, DataSource, Locations};
use super::progress::Bars;

/// Image folders are read at this size (channels, height, width): Fashion-MNIST's.
const FOLDER_SHAPE: [usize; 3] = [1, 28, 28];

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

/// The data set, with how to install Fashion-MNIST when it is missing.
fn source(dataset: &str, data_dir: Option<&Path>) -> Result<DataSource> {
    let locations = Locations {
        data_dir,
        ..Locations::default()
    };
    DataSource::resolve(dataset, &locations).map_err(|e| {
        if e.downcast_ref::<DataError>()
            .is_some_and(|d| matches!(d, DataError::NotFound { .. }))
        {
            e.context(
                "the embedding commands need Fashion-MNIST: run scripts/install-data.sh from the repository (it installs Debian's dataset-fashion-mnist package)",
            )
        } else {
            e
        }
    })
}

/// A class list (`0-6`, `7,8,9`) checked against the data set's classes.
fn class_list(text: &str, num_classes: usize, what: &str) -> Result<Vec<usize>> {
    let classes = ClassSelection::parse_classes(text)?;
    if let Some(bad) = classes.iter().find(|&&c| c >= num_classes) {
        bail!(
            "{what} {text}: class {bad} does not exist: the data set has classes 0-{}",
            num_classes.saturating_sub(1)
        );
    }
    if classes.len() < 2 {
        bail!("{what} {text}: at least 2 classes are needed");
    }
    Ok(classes)
}

fn images_only(set: &AnySet, dataset: &str) -> Result<()> {
    if set.as_images().is_none() {
        bail!(
            "{dataset} holds {:?} examples; the embedding commands take images",
            set.example_shape()
        );
    }
    Ok(())
}

fn backbone(model: &str, shape: &[usize], classes: usize) -> Result<ModelSpec> {
    let path = Path::new(model);
    if path.extension().is_some_and(|e| e == "toml") || path.is_file() {
        let spec = ModelSpec::from_file(path)?;
        if spec.input != shape {
            bail!(
                "{}: the model takes input {:?} but the images are {:?}",
                path.display(),
                spec.input,
                shape
            );
        }
        return Ok(spec);
    }
    Ok(convnet_zoo::classifier_spec(model, shape, classes)?)
}

fn train(args: TrainArgs, device: &Device, quiet: bool) -> Result<()> {
    let source = source(&args.dataset, args.data.as_deref())?;
    let loaded = Instant::now();
    let all = source.load_train(Some(FOLDER_SHAPE), args.limit, None, args.seed)?;
    images_only(&all, &args.dataset)?;
    let names = all.classes();
    let ids = class_list(&args.classes, names.len(), "--classes")?;
    let selection = ClassSelection {
        classes: ids.clone(),
        per_class: None,
        seed: args.seed,
    };
    let full = all.select(&selection)?;
    convnet_data::check_not_empty("training", full.len())?;
    let (train_set, validation) = full.split(args.val_split, args.seed)?;
    let shape = full.example_shape();
    let classes = full.classes();

    let mut config = EmbeddingConfig::new(&args.model, &args.dataset);
    config.train.epochs = args.epochs;
    config.train.optimizer = OptimizerSettings::adam(args.lr);
    config.train.augment = if args.augment == "none" {
        String::new()
    } else {
        args.augment.clone()
    };
    config.train.seed = args.seed;
    config.train.val_fraction = args.val_split;
    config.train.patience = args.patience;
    config.train.only_classes = ids.clone();
    config.dim = args.dim;
    config.margin = args.margin;
    config.mining = match args.mining {
        MiningArg::BatchHard => Mining::BatchHard,
        MiningArg::SemiHard => Mining::SemiHard,
    };
    config.classes_per_batch = args.classes_per_batch.unwrap_or(ids.len().min(7));
    config.images_per_class = args.images_per_class;
    config.train.batch_size = config.batch_size();
    config.validate()?;

    let run_dir = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("runs").join(format!(
            "embed-{}",
            args.model.replace(['/', '\\', '.'], "_")
        ))
    });
    convnet_train::ensure_writable_dir(&run_dir)?;
    let mut bars = Bars::triplets(quiet || args.json);
    bars.line(&format!(
        "data: {} training, {} validation images of {shape:?} in {} classes ({}) ({:.1} s to load)",
        train_set.len(),
        validation.len(),
        classes.len(),
        classes.join(", "),
        loaded.elapsed().as_secs_f64()
    ));
    let base = backbone(&args.model, &shape, classes.len())?;
    let spec = embedding_spec(&base, config.dim)?;
    let params = spec.build(device)?.num_params();
    bars.line(&format!(
        "model: {} ({} parameters), L2-normalised; {} mining, margin {}, batches of {} classes x {} images; run directory {}",
        spec.name,
        convnet_layers::summary::thousands(params as u64),
        config.mining.name(),
        config.margin,
        config.classes_per_batch,
        config.images_per_class,
        run_dir.display()
    ));
    let augment = match (config.train.augment.is_empty(), train_set.as_images()) {
        (false, Some(images)) => Some(Arc::new(Augment::parse(&config.train.augment, images)?)),
        _ => None,
    };
    let data = TrainData {
        classes: classes.clone(),
        normalization: train_set.normalization(),
        train: train_set.into_examples(),
        validation: (!validation.is_empty()).then(|| validation.into_examples()),
        augment,
    };
    let outcome = train_embedding(&base, &data, &config, &run_dir, device, &mut bars)?;
    let checkpoint = embedding_checkpoint(&run_dir)?;
    if args.json {
        let out = json!({
            "model": spec.name,
            "params": params,
            "classes": ids,
            "class_names": classes,
            "mining": config.mining.name(),
            "margin": config.margin,
            "dim": config.dim,
            "classes_per_batch": config.classes_per_batch,
            "images_per_class": config.images_per_class,
            "epochs": outcome.history.len(),
            "seconds_per_epoch": outcome.seconds_per_epoch(),
            "best_epoch": outcome.best_epoch,
            "best_val_one_shot": outcome.best_val_accuracy,
            "stopped_early": outcome.stopped_early,
            "history": outcome.history,
            "run_dir": run_dir,
            "checkpoint": checkpoint,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        if let (Some(epoch), Some(score)) = (outcome.best_epoch, outcome.best_val_accuracy) {
            println!(
                "best epoch {epoch}: validation one-shot accuracy {:.2}% (training classes)",
                100.0 * score
            );
        }
        println!("{:.1} s per epoch", outcome.seconds_per_epoch());
        println!("settings:    {}", run_dir.join(EMBEDDING_FILE).display());
        println!("history:     {}", run_dir.join("history.csv").display());
        println!("checkpoint:  {}", checkpoint.display());
        println!(
            "next:        convnet embed one-shot {} --classes LIST (classes not trained on)",
            run_dir.display()
        );
    }
    Ok(())
}

fn one_shot(args: OneShotArgs, device: &Device, quiet: bool) -> Result<()> {
    let config = EmbeddingConfig::load(&args.run_dir)?;
    let path = embedding_checkpoint(&args.run_dir)?;
    let ckpt = Checkpoint::load(&path)?;
    let model = ckpt.model(&path, device)?;
    let normalization = (&ckpt.meta.normalization).into();
    let dataset = args
        .dataset
        .clone()
        .unwrap_or_else(|| config.train.dataset.clone());
    let source = source(&dataset, args.data.as_deref())?;
    let pool = source.load_train(Some(FOLDER_SHAPE), None, None, config.train.seed)?;
    images_only(&pool, &dataset)?;
    let names = pool.classes();
    let ids = class_list(&args.classes, names.len(), "--classes")?;
    let selection = ClassSelection {
        classes: ids.clone(),
        per_class: None,
        seed: 0,
    };
    let pool = pool.select(&selection)?;
    let queries = source
        .load_test(Some(FOLDER_SHAPE), None)?
        .context("the data set has no test split to take the query images from (a folder needs train/ and test/ sub-folders)")?
        .select(&selection)?;
    let input = model.input_shape().dims().to_vec();
    if pool.example_shape() != input {
        bail!(
            "the images are {:?} but the network takes {input:?}",
            pool.example_shape()
        );
    }
    // Classes the network trained on are no test of one-shot learning: a warning, not an
    // error, since how well it identifies them is a useful comparison.
    let trained = if config.train.only_classes.is_empty() {
        (0..names.len()).collect()
    } else {
        config.train.only_classes.clone()
    };
    let seen: Vec<usize> = ids
        .iter()
        .copied()
        .filter(|c| trained.contains(c))
        .collect();
    if !seen.is_empty() && !quiet {
        let list = seen
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let (which, were) = if seen.len() == 1 {
            ("class", "was")
        } else {
            ("classes", "were")
        };
        eprintln!(
            "warning: {which} {list} {were} also trained on: this measures how well the network identifies classes it knows, not one-shot learning of new ones"
        );
    }
    let bar = if quiet || args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(Some(args.draws as u64), ProgressDrawTarget::stderr())
            .with_style(
                ProgressStyle::with_template("support draws [{bar:30}] {pos}/{len}")
                    .expect("a valid progress template"),
            )
    };
    let report = one_shot_report(
        &model,
        &normalization,
        pool.examples(),
        queries.examples(),
        args.shots,
        args.draws,
        args.seed,
        device,
        &mut |done, _| bar.set_position(done as u64),
    )?;
    bar.finish_and_clear();
    let class_names = queries.classes();
    let first = report.first();
    if args.json {
        let out = json!({
            "run_dir": args.run_dir,
            "checkpoint": path,
            "dataset": dataset,
            "classes": ids,
            "class_names": class_names,
            "seen_classes": seen,
            "trained_classes": trained,
            "shots": report.shots,
            "queries": report.queries,
            "seed": args.seed,
            "accuracy": first.accuracy,
            "confusion": first.confusion.counts,
            "support": first.support,
            "draws": report.draws.len(),
            "mean_accuracy": report.mean_accuracy,
            "std_accuracy": report.std_accuracy,
            "min_accuracy": report.min_accuracy,
            "max_accuracy": report.max_accuracy,
            "draw_accuracies": report.draws.iter().map(|d| d.accuracy).collect::<Vec<_>>(),
            "draw_seeds": report.draws.iter().map(|d| d.seed).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{}-shot identification of {} classes ({}) on {} test images, enrolled from the training images; {}",
        report.shots,
        class_names.len(),
        class_names.join(", "),
        report.queries,
        path.display()
    );
    println!(
        "accuracy {:.2}% with the support of seed {} (chance {:.2}%)",
        100.0 * first.accuracy,
        args.seed,
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
        args.seed
    );
    let width = class_names
        .iter()
        .map(|c| c.len())
        .max()
        .unwrap_or(5)
        .max(7);
    print!("{:<width$}", "");
    for name in &class_names {
        print!("  {name:>width$}");
    }
    println!();
    for (name, row) in class_names.iter().zip(&first.confusion.counts) {
        print!("{name:<width$}");
        for count in row {
            print!("  {count:>width$}");
        }
        println!();
    }
    Ok(())
}
