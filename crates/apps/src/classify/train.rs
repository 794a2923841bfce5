//! Training a classifier (`convnet train`, `convnet finetune`): on Fashion-MNIST, a folder of
//! images, a generated set or `.npy` arrays, from scratch, resumed, or fine-tuned from
//! pretrained weights under a new head; validation, history, curves and checkpoints in the run
//! directory, then the test set scored with the best checkpoint.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use convnet_data::{Augment, ClassSelection, Normalization};
use convnet_layers::{HEAD_START, ModelSpec, Sequential};
use convnet_train::checkpoint::CHECKPOINT_DIR;
use convnet_train::{Checkpoint, Evaluation, TrainData, TrainOutcome, evaluate};
use serde_json::json;

use crate::data::{DataSource, Locations};
use crate::models;
use crate::run::{Progress, Run, TrainRequest, Transfer};

/// A classifier's finished run.
pub struct Trained {
    /// The model's name, as its spec says.
    pub model: String,
    pub params: usize,
    pub outcome: TrainOutcome,
    /// The test set scored with the best checkpoint, when the data set has one.
    pub test: Option<Evaluation>,
    pub run_dir: PathBuf,
}

impl Trained {
    /// The run's results as one JSON object (`convnet train --json`).
    pub fn report(&self) -> serde_json::Value {
        let outcome = &self.outcome;
        json!({
            "model": self.model,
            "params": self.params,
            "epochs": outcome.history.len(),
            "seconds_per_epoch": outcome.seconds_per_epoch(),
            "test_accuracy": self.test.as_ref().map(|e| e.accuracy),
            "test_loss": self.test.as_ref().map(|e| e.loss),
            "best_epoch": outcome.best_epoch,
            "best_val_accuracy": outcome.best_val_accuracy,
            "stopped_early": outcome.stopped_early,
            "history": outcome.history,
            "run_dir": self.run_dir,
            "best_checkpoint": outcome.best_checkpoint,
            "last_checkpoint": outcome.last_checkpoint,
        })
    }
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
    progress: &mut dyn Progress,
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
        let dict = models::read_weights(&t.weights, device)?;
        // torchvision's ImageNet weights expect ImageNet's statistics.
        let imagenet = (shape.first() == Some(&3)).then(|| Normalization {
            mean: convnet_data::preprocess::IMAGENET_MEAN.to_vec(),
            std: convnet_data::preprocess::IMAGENET_STD.to_vec(),
        });
        (dict, imagenet, None)
    };
    let spec = match earlier {
        Some(spec) => spec,
        None => models::spec_for(base, Some(shape), classes)?.with_new_head(classes)?,
    };
    let (model, report) = models::load(&spec, &dict, true, &t.weights, device)?;
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
    progress.line(&format!(
        "transfer: {} tensors loaded from {}; the layers before '{}' are frozen",
        report.loaded.len(),
        t.weights.display(),
        t.unfreeze_from.as_deref().unwrap_or(HEAD_START)
    ));
    Ok((spec, model, normalization))
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

/// What folder images are resized to: the request's channels and size, else the model's input.
fn folder_shape(request: &TrainRequest, model: &str) -> Result<[usize; 3]> {
    let path = Path::new(model);
    let input = if path.extension().is_some_and(|e| e == "toml") || path.is_file() {
        ModelSpec::from_file(path)?.input
    } else {
        convnet_zoo::spec(model)?.input
    };
    if input.len() != 3 {
        bail!("the model's input {input:?} is not an image (channels, height, width)");
    }
    let channels = request.channels.unwrap_or(input[0]);
    if channels != 1 && channels != 3 {
        bail!("--channels must be 1 or 3, got {channels}");
    }
    let size = request.size.unwrap_or(input[1]);
    Ok([channels, size, size])
}

/// Trains the classifier `request` asks for in the run [`crate::run::start`] made of it, then
/// scores the test set with the best checkpoint (what `convnet eval RUN_DIR` reports too).
pub fn train(
    request: &TrainRequest,
    run: Run,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<Trained> {
    let Run {
        config,
        run_dir,
        resume,
        model: model_name,
    } = run;
    let locations = Locations {
        data_dir: request.data.as_deref(),
        labels: request.labels.as_deref(),
        test: request
            .test_dataset
            .as_deref()
            .zip(request.test_labels.as_deref()),
    };
    let source = DataSource::resolve(&config.dataset, &locations)?;
    let image_size = if source.is_folder() {
        Some(folder_shape(request, &model_name)?)
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
        .load_train(image_size, request.limit, request.train_size, config.seed)?
        .select(&selection)?;
    let shape = full.example_shape();
    if resume.is_none() && shape.len() != request.task.rank() {
        bail!(
            "--task {:?} takes examples of rank {}, but {} has examples of shape {shape:?}",
            request.task,
            request.task.rank(),
            config.dataset
        );
    }
    let test_selection = ClassSelection {
        per_class: None,
        ..selection
    };
    let test = source
        .load_test(image_size, request.test_limit)?
        .map(|t| t.select(&test_selection))
        .transpose()?;
    // Refused before the run directory is made, let alone trained in.
    convnet_data::check_not_empty("training", full.len())?;
    if let Some(test) = &test {
        convnet_data::check_matches(full.examples(), test.examples(), "test")?;
    }
    convnet_train::ensure_writable_dir(&run_dir.join(CHECKPOINT_DIR))?;
    let (train, validation) = full.split(config.val_fraction, config.seed)?;
    progress.line(&format!(
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
    let (spec, initial, base_normalization) = match (&resume, &request.model, &request.transfer) {
        (Some((ckpt, path)), None, _) => (ckpt.spec(path)?, None, None),
        (None, _, Some(t)) => {
            let (spec, model, normalization) =
                transfer_start(&model_name, t, &shape, classes.len(), device, progress)?;
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
    progress.line(&format!(
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
    let outcome = convnet_train::train_from(
        &spec,
        initial,
        &data,
        &config,
        &run_dir,
        resume.as_ref().map(|(c, p)| (c, p.as_path())),
        device,
        progress,
    )?;

    // Test with the best checkpoint's weights: what `convnet eval RUN_DIR` reports too.
    let best = Checkpoint::load(&outcome.best_checkpoint)?;
    let model = best.model(&outcome.best_checkpoint, device)?;
    let test = match test {
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
    Ok(Trained {
        model: spec.name,
        params,
        outcome,
        test,
        run_dir,
    })
}
