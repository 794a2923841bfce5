//! What a training run was asked to do; stored in every checkpoint so a resumed run carries on
//! with the same recipe.

use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::optim::{OptimizerSettings, Schedule};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The model as the user named it (a zoo name or a spec file).
    pub model: String,
    /// The data set as the user named it (`fashion-mnist` or a folder).
    pub dataset: String,
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: OptimizerSettings,
    pub schedule: Schedule,
    /// The `--augment` list (empty: none).
    pub augment: String,
    pub seed: u64,
    /// Fraction of the training set held out for validation after each epoch.
    pub val_fraction: f64,
    /// Stop after this many epochs without a better validation accuracy.
    pub patience: Option<usize>,
    /// Transfer learning: the top-level layers before this one are frozen (their weights stay,
    /// their batch norms use their running statistics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze_before: Option<String>,
    /// The classes of the data set trained on (original indices, in label order); empty = all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only_classes: Vec<usize>,
    /// At most this many training examples per class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_class: Option<usize>,
    /// The weights file the run started from (`--init`), for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
    /// Detection and segmentation: also write `last` every this many steps inside an epoch,
    /// so a long epoch stopped part-way keeps its latest weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save_every: Option<usize>,
}

/// The most epochs a run may ask for: far beyond any real run, and small enough that loops
/// driven by an epoch count read from a checkpoint always end.
pub const MAX_EPOCHS: usize = 1_000_000;

impl TrainConfig {
    /// The course's LeNet-5 recipe: Adam 1e-3, batch 128.
    pub fn new(model: impl Into<String>, dataset: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            dataset: dataset.into(),
            epochs: 5,
            batch_size: 128,
            optimizer: OptimizerSettings::adam(1e-3),
            schedule: Schedule::Constant,
            augment: String::new(),
            seed: 0,
            val_fraction: 0.1,
            patience: None,
            freeze_before: None,
            only_classes: Vec::new(),
            per_class: None,
            init: None,
            save_every: None,
        }
    }

    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::Config(m));
        if self.epochs == 0 {
            return bad("--epochs must be at least 1".into());
        }
        if self.epochs > MAX_EPOCHS {
            return bad(format!(
                "--epochs {} is above the limit of {MAX_EPOCHS}",
                self.epochs
            ));
        }
        if self.batch_size == 0 {
            return bad("--batch must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return bad(format!(
                "--val-split must be in [0, 1), got {}",
                self.val_fraction
            ));
        }
        if self.patience == Some(0) {
            return bad("--patience must be at least 1".into());
        }
        if self.save_every == Some(0) {
            return bad("--save-every must be at least 1 step".into());
        }
        self.optimizer.validate()
    }
}
