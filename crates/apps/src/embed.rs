//! The training side of face recognition, shown on Fashion-MNIST (`convnet embed`): [`train`]
//! learns an embedding with the triplet loss on some classes (the "identities" seen in
//! training); [`one_shot`] enrols one image of each of other classes and names every test
//! image of those classes after the nearest enrolled one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use convnet_data::{Augment, ClassSelection, DataError};
use convnet_layers::ModelSpec;
use convnet_train::embedding::{
    EMBEDDING_FILE, OneShotReport, embedding_checkpoint, embedding_spec, one_shot_report,
};
use convnet_train::{
    Checkpoint, EmbeddingConfig, Mining, OptimizerSettings, TrainData, TrainOutcome,
    train_embedding,
};
use serde_json::json;

use crate::data::{AnySet, DataSource, Locations};
use crate::models;
use crate::run::Progress;

/// Image folders are read at this size (channels, height, width): Fashion-MNIST's.
const FOLDER_SHAPE: [usize; 3] = [1, 28, 28];

/// What `convnet embed train` is asked to do, without the command line.
#[derive(Clone, Debug)]
pub struct TrainRequest {
    /// The classes trained on (original indices: `0-6`, `0,2,5`).
    pub classes: String,
    /// The backbone: a built-in classifier or a spec file (`.toml`); its classifier is
    /// replaced by a dense layer to `dim` numbers.
    pub model: String,
    /// `fashion-mnist`, or a folder with one sub-folder of images per class.
    pub dataset: String,
    /// Where Fashion-MNIST's IDX files are.
    pub data: Option<PathBuf>,
    pub epochs: usize,
    pub mining: Mining,
    /// The triplet margin α.
    pub margin: f64,
    /// Numbers per embedding.
    pub dim: usize,
    /// P: classes per batch (default: all the classes trained on, at most 7).
    pub classes_per_batch: Option<usize>,
    /// K: images of each class per batch.
    pub images_per_class: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Augmentations, as `convnet train` takes them; `none` for none.
    pub augment: String,
    /// Fraction of the training images held out to score each epoch.
    pub val_split: f64,
    pub patience: Option<usize>,
    /// Train on the first N training images only.
    pub limit: Option<usize>,
    pub seed: u64,
    /// The run directory (default: runs/embed-MODEL).
    pub out: Option<PathBuf>,
}

/// An embedding network's finished run.
pub struct Trained {
    /// The embedding network's name.
    pub model: String,
    pub params: usize,
    /// The classes trained on (original indices), and their names.
    pub classes: Vec<usize>,
    pub class_names: Vec<String>,
    pub config: EmbeddingConfig,
    pub outcome: TrainOutcome,
    pub run_dir: PathBuf,
    /// The checkpoint `one-shot` reads.
    pub checkpoint: PathBuf,
}

impl Trained {
    /// The run's results as `convnet embed train --json` prints them.
    pub fn to_json(&self) -> serde_json::Value {
        let (config, outcome) = (&self.config, &self.outcome);
        json!({
            "model": self.model,
            "params": self.params,
            "classes": self.classes,
            "class_names": self.class_names,
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
            "run_dir": self.run_dir,
            "checkpoint": self.checkpoint,
        })
    }

    /// The run's settings file, written beside its history.
    pub fn settings(&self) -> PathBuf {
        self.run_dir.join(EMBEDDING_FILE)
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
    if models::is_spec_file(model) {
        let path = Path::new(model);
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

/// `convnet embed train`: trains an embedding network with the triplet loss on the request's
/// classes and writes its run directory (embedding.json, history.csv, curves.png,
/// checkpoints).
pub fn train(
    request: &TrainRequest,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<Trained> {
    let source = source(&request.dataset, request.data.as_deref())?;
    let loaded = Instant::now();
    let all = source.load_train(Some(FOLDER_SHAPE), request.limit, None, request.seed)?;
    images_only(&all, &request.dataset)?;
    let names = all.classes();
    let ids = class_list(&request.classes, names.len(), "--classes")?;
    let selection = ClassSelection {
        classes: ids.clone(),
        per_class: None,
        seed: request.seed,
    };
    let full = all.select(&selection)?;
    convnet_data::check_not_empty("training", full.len())?;
    let (train_set, validation) = full.split(request.val_split, request.seed)?;
    let shape = full.example_shape();
    let classes = full.classes();

    let mut config = EmbeddingConfig::new(&request.model, &request.dataset);
    config.train.epochs = request.epochs;
    config.train.optimizer = OptimizerSettings::adam(request.lr);
    config.train.augment = if request.augment == "none" {
        String::new()
    } else {
        request.augment.clone()
    };
    config.train.seed = request.seed;
    config.train.val_fraction = request.val_split;
    config.train.patience = request.patience;
    config.train.only_classes = ids.clone();
    config.dim = request.dim;
    config.margin = request.margin;
    config.mining = request.mining;
    config.classes_per_batch = request.classes_per_batch.unwrap_or(ids.len().min(7));
    config.images_per_class = request.images_per_class;
    config.train.batch_size = config.batch_size();
    config.validate()?;

    let run_dir = request.out.clone().unwrap_or_else(|| {
        PathBuf::from("runs").join(format!(
            "embed-{}",
            request.model.replace(['/', '\\', '.'], "_")
        ))
    });
    convnet_train::ensure_writable_dir(&run_dir)?;
    progress.line(&format!(
        "data: {} training, {} validation images of {shape:?} in {} classes ({}) ({:.1} s to load)",
        train_set.len(),
        validation.len(),
        classes.len(),
        classes.join(", "),
        loaded.elapsed().as_secs_f64()
    ));
    let base = backbone(&request.model, &shape, classes.len())?;
    let spec = embedding_spec(&base, config.dim)?;
    let params = spec.build(device)?.num_params();
    progress.line(&format!(
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
    let outcome = train_embedding(&base, &data, &config, &run_dir, device, progress)?;
    let checkpoint = embedding_checkpoint(&run_dir)?;
    Ok(Trained {
        model: spec.name,
        params,
        classes: ids,
        class_names: classes,
        config,
        outcome,
        run_dir,
        checkpoint,
    })
}

/// What `convnet embed one-shot` is asked to do, without the command line.
#[derive(Clone, Debug)]
pub struct OneShotRequest {
    /// A run directory written by [`train`].
    pub run_dir: PathBuf,
    /// The classes to identify (original indices): ones the network did not train on.
    pub classes: String,
    /// Images enrolled per class.
    pub shots: usize,
    /// Random supports to average over (the first is drawn with `seed`).
    pub draws: usize,
    pub seed: u64,
    /// The data set (default: the one the run trained on).
    pub dataset: Option<String>,
    /// Where Fashion-MNIST's IDX files are.
    pub data: Option<PathBuf>,
}

/// What a one-shot run tells as it goes.
pub trait OneShotProgress {
    /// Something to say before the run that does not stop it (classes trained on).
    fn warn(&mut self, text: &str);
    /// `done` of the `total` support draws are scored.
    fn draws(&mut self, done: usize, total: usize);
}

/// One-shot identification's results.
pub struct OneShot {
    pub run_dir: PathBuf,
    pub checkpoint: PathBuf,
    pub dataset: String,
    /// The classes identified (original indices), and their names.
    pub classes: Vec<usize>,
    pub class_names: Vec<String>,
    /// The classes identified that the network trained on.
    pub seen: Vec<usize>,
    pub trained: Vec<usize>,
    /// The seed of the first support draw.
    pub seed: u64,
    pub report: OneShotReport,
}

impl OneShot {
    /// The results as `convnet embed one-shot --json` prints them.
    pub fn to_json(&self) -> serde_json::Value {
        let (report, first) = (&self.report, self.report.first());
        json!({
            "run_dir": self.run_dir,
            "checkpoint": self.checkpoint,
            "dataset": self.dataset,
            "classes": self.classes,
            "class_names": self.class_names,
            "seen_classes": self.seen,
            "trained_classes": self.trained,
            "shots": report.shots,
            "queries": report.queries,
            "seed": self.seed,
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
        })
    }

    /// The first draw's confusion matrix (rows: true class, columns: predicted), one line a
    /// class under a header of the class names.
    pub fn confusion_table(&self) -> String {
        let class_names = &self.class_names;
        let width = class_names
            .iter()
            .map(|c| c.len())
            .max()
            .unwrap_or(5)
            .max(7);
        let mut table = format!("{:<width$}", "");
        for name in class_names {
            let _ = write!(table, "  {name:>width$}");
        }
        table.push('\n');
        for (name, row) in class_names
            .iter()
            .zip(&self.report.first().confusion.counts)
        {
            let _ = write!(table, "{name:<width$}");
            for count in row {
                let _ = write!(table, "  {count:>width$}");
            }
            table.push('\n');
        }
        table
    }
}

/// The warning for classes the network trained on, if any of `seen`.
fn seen_warning(seen: &[usize]) -> Option<String> {
    if seen.is_empty() {
        return None;
    }
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
    Some(format!(
        "{which} {list} {were} also trained on: this measures how well the network identifies classes it knows, not one-shot learning of new ones"
    ))
}

/// `convnet embed one-shot`: enrols `shots` training images of each class and names every
/// test image of those classes after the nearest enrolled one, over `draws` support draws.
pub fn one_shot(
    request: &OneShotRequest,
    device: &Device,
    progress: &mut dyn OneShotProgress,
) -> Result<OneShot> {
    let config = EmbeddingConfig::load(&request.run_dir)?;
    let path = embedding_checkpoint(&request.run_dir)?;
    let ckpt = Checkpoint::load(&path)?;
    let model = ckpt.model(&path, device)?;
    let normalization = (&ckpt.meta.normalization).into();
    let dataset = request
        .dataset
        .clone()
        .unwrap_or_else(|| config.train.dataset.clone());
    let source = source(&dataset, request.data.as_deref())?;
    let pool = source.load_train(Some(FOLDER_SHAPE), None, None, config.train.seed)?;
    images_only(&pool, &dataset)?;
    let names = pool.classes();
    let ids = class_list(&request.classes, names.len(), "--classes")?;
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
    if let Some(warning) = seen_warning(&seen) {
        progress.warn(&warning);
    }
    let report = one_shot_report(
        &model,
        &normalization,
        pool.examples(),
        queries.examples(),
        request.shots,
        request.draws,
        request.seed,
        device,
        &mut |done, total| progress.draws(done, total),
    )?;
    Ok(OneShot {
        run_dir: request.run_dir.clone(),
        checkpoint: path,
        dataset,
        classes: ids,
        class_names: queries.classes(),
        seen,
        trained,
        seed: request.seed,
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_lists_name_existing_classes_and_at_least_two() {
        assert_eq!(class_list("7-9", 10, "--classes").unwrap(), vec![7, 8, 9]);
        let err = class_list("0-12", 10, "--classes").unwrap_err().to_string();
        assert_eq!(
            err,
            "--classes 0-12: class 10 does not exist: the data set has classes 0-9"
        );
        let err = class_list("3", 10, "--classes").unwrap_err().to_string();
        assert!(err.contains("at least 2 classes"), "{err}");
    }

    #[test]
    fn classes_trained_on_are_named_in_the_warning() {
        assert_eq!(seen_warning(&[]), None);
        let one = seen_warning(&[7]).unwrap();
        assert!(one.starts_with("class 7 was also trained on:"), "{one}");
        let two = seen_warning(&[5, 6]).unwrap();
        assert!(
            two.starts_with("classes 5, 6 were also trained on:"),
            "{two}"
        );
    }
}
