//! Scoring a trained classifier (or an ensemble, its probabilities averaged) on a data set's
//! split (`convnet eval`): accuracy, loss, each class's precision and recall, and a picture of
//! the confusion matrix.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::tensor::Device;
use convnet_data::ClassSelection;
use convnet_train::metrics::{ClassReport, argmax_rows};
use convnet_train::{ConfusionMatrix, Observer};
use serde_json::json;

use super::Ensemble;
use crate::data::{DataSource, Locations};
use crate::models::run_dir_of;

/// What to score the classifier on, and where to draw its confusion matrix.
#[derive(Clone, Debug)]
pub struct EvalRequest {
    /// The data set (default: the one the first member was trained on).
    pub dataset: Option<String>,
    /// Integer labels `[N]` for a `.npy` data set (which is then scored as its test split).
    pub labels: Option<PathBuf>,
    /// Where Fashion-MNIST's IDX files are.
    pub data: Option<PathBuf>,
    /// `test` or `train`.
    pub split: String,
    /// The first N examples only.
    pub limit: Option<usize>,
    /// Where to draw the confusion matrix (default: confusion.png in the run directory).
    pub out: Option<PathBuf>,
}

/// A classifier's scores on a split.
pub struct Evaluation {
    pub checkpoints: Vec<PathBuf>,
    pub dataset: String,
    pub split: String,
    pub examples: usize,
    pub accuracy: f64,
    /// Mean cross-entropy of the (averaged) probabilities.
    pub loss: f64,
    pub classes: Vec<ClassReport>,
    pub confusion: ConfusionMatrix,
    pub confusion_png: PathBuf,
}

impl Evaluation {
    /// The scores as one JSON object (`convnet eval --json`).
    pub fn report(&self) -> serde_json::Value {
        json!({
            "checkpoints": self.checkpoints,
            "dataset": self.dataset,
            "split": self.split,
            "examples": self.examples,
            "accuracy": self.accuracy,
            "loss": self.loss,
            "classes": self.classes,
            "confusion": self.confusion.counts,
            "confusion_png": self.confusion_png,
        })
    }
}

/// Scores `ensemble` on the split `request` names; `progress` hears how many examples are
/// scored in all (`validation_start`) and as they are (`validation_progress`).
pub fn evaluate(
    ensemble: &Ensemble,
    request: &EvalRequest,
    device: &Device,
    progress: &mut dyn Observer,
) -> Result<Evaluation> {
    let first = &ensemble.members[0];
    let dataset = request
        .dataset
        .clone()
        .unwrap_or_else(|| first.meta.config.dataset.clone());
    let npy = Path::new(&dataset).extension().is_some_and(|e| e == "npy");
    let locations = Locations {
        data_dir: request.data.as_deref(),
        labels: request.labels.as_deref(),
        // A .npy set named here is what is evaluated, whatever the split.
        test: request
            .labels
            .as_deref()
            .filter(|_| npy)
            .map(|labels| (Path::new(&dataset), labels)),
    };
    let source = DataSource::resolve(&dataset, &locations)?;
    let set = source.load_split(
        &request.split,
        ensemble.input().try_into().ok(),
        request.limit,
        first.meta.config.seed,
    )?;
    // A run trained on some of its data set's classes (`--only-classes`) is scored on the same
    // classes, relabelled as in training.
    let config = &first.meta.config;
    let set = if config.only_classes.is_empty() || dataset != config.dataset {
        set
    } else {
        set.select(&ClassSelection {
            classes: config.only_classes.clone(),
            per_class: None,
            seed: config.seed,
        })?
    };
    convnet_data::check_not_empty(&format!("{} ({dataset})", request.split), set.len())?;
    if set.example_shape() != ensemble.input() {
        bail!(
            "the data set's examples are {:?} but the model takes {:?}",
            set.example_shape(),
            ensemble.input()
        );
    }
    let classes = ensemble.classes().to_vec();
    if set.classes().len() > classes.len() {
        bail!(
            "the data set has {} classes but the model only {}",
            set.classes().len(),
            classes.len()
        );
    }
    let labels = set.labels();
    progress.validation_start(set.len() * ensemble.members.len());
    let probs = ensemble.probabilities(set.into_examples(), device, |n| {
        progress.validation_progress(n)
    })?;

    let k = classes.len();
    let mut confusion = ConfusionMatrix::new(k);
    confusion.add(&labels, &argmax_rows(&probs, k));
    let loss = labels
        .iter()
        .enumerate()
        .map(|(i, &y)| -(probs[i * k + y].max(1e-12) as f64).ln())
        .sum::<f64>()
        / labels.len().max(1) as f64;
    let report = confusion.report(&classes);
    let png = request
        .out
        .clone()
        .unwrap_or_else(|| run_dir_of(&first.path).join("confusion.png"));
    convnet_vision::chart::confusion_png(
        &png,
        &confusion.counts,
        &classes,
        &format!(
            "Confusion matrix ({} {}, accuracy {:.2}%)",
            dataset,
            request.split,
            100.0 * confusion.accuracy()
        ),
    )?;
    Ok(Evaluation {
        checkpoints: ensemble.members.iter().map(|m| m.path.clone()).collect(),
        dataset,
        split: request.split.clone(),
        examples: labels.len(),
        accuracy: confusion.accuracy(),
        loss,
        classes: report,
        confusion,
        confusion_png: png,
    })
}
