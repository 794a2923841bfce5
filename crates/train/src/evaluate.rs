//! Running a trained classifier over a data set: loss, accuracy, confusion matrix, and the
//! class probabilities `predict` shows.

use std::sync::Arc;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};
use convnet_data::{Batch, Examples, Loader, LoaderConfig, Normalization};
use convnet_layers::{Mode, Sequential};

use crate::error::TrainError;
use crate::metrics::{ConfusionMatrix, argmax_rows};

#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Mean cross-entropy.
    pub loss: f64,
    pub accuracy: f64,
    pub confusion: ConfusionMatrix,
}

/// Loader settings for evaluation: in order, no augmentation.
pub fn eval_loader(
    set: Arc<dyn Examples>,
    normalization: &Normalization,
    batch_size: usize,
) -> Result<Loader, TrainError> {
    Ok(Loader::new(
        set,
        LoaderConfig {
            batch_size,
            shuffle: false,
            seed: 0,
            epoch: 0,
            drop_last: false,
            prefetch: 4,
            normalization: normalization.clone(),
            augment: None,
        },
    )?)
}

/// Evaluates `model` (in inference mode) on `set`; `on_batch` is told after each batch.
pub fn evaluate(
    model: &Sequential,
    set: Arc<dyn Examples>,
    normalization: &Normalization,
    batch_size: usize,
    device: &Device,
    mut on_batch: impl FnMut(usize),
) -> Result<Evaluation, TrainError> {
    let classes = set.num_classes();
    let total = set.len();
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut confusion = ConfusionMatrix::new(classes);
    let mut loss_sum = 0.0;
    for batch in eval_loader(set, normalization, batch_size)? {
        let logits = model.forward_logits(batch.to_features(device), Mode::Eval)?;
        check_classes(&logits, classes)?;
        let n = batch.labels.len();
        let loss = loss_fn.forward(logits.clone(), batch.labels_tensor(device));
        loss_sum += loss.into_scalar::<f64>() * n as f64;
        let values = logits.into_data().try_to_vec::<f32>().unwrap_or_default();
        confusion.add(&batch.labels, &argmax_rows(&values, classes));
        on_batch(n);
    }
    Ok(Evaluation {
        loss: if total == 0 {
            0.0
        } else {
            loss_sum / total as f64
        },
        accuracy: confusion.accuracy(),
        confusion,
    })
}

/// The model's output must have one score per class of the data set.
pub fn check_classes(logits: &Tensor<2>, classes: usize) -> Result<(), TrainError> {
    let [_, outputs] = logits.dims();
    if outputs != classes {
        return Err(TrainError::Config(format!(
            "the model has {outputs} outputs but the data set has {classes} classes"
        )));
    }
    Ok(())
}

/// Class probabilities `[N, classes]`, row-major.
pub fn probabilities(
    model: &Sequential,
    batch: &Batch,
    device: &Device,
) -> Result<Vec<f32>, TrainError> {
    let logits = model.forward_logits(batch.to_features(device), Mode::Eval)?;
    Ok(softmax(logits, 1)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap_or_default())
}
