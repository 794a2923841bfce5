//! Semantic segmentation: per-pixel losses (cross-entropy, binary cross-entropy, Dice), the
//! metrics (pixel accuracy, per-class IoU and Dice, mean IoU), evaluation, and the training
//! loop for networks whose output is a score map `[N, k, H, W]` (U-Net, FCN).

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::activation::{log_sigmoid, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};
use convnet_data::segmentation::epoch_order;
use convnet_data::{JointAugment, Normalization, SegmentationBatch, SegmentationSet};
use convnet_layers::{Mode, ModelSpec, Sequential};
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::error::TrainError;
use crate::history::EpochRecord;
use crate::metrics::ConfusionMatrix;
use crate::trainer::{FreshRun, Ledger, Observer, TrainOutcome, check_finite};

/// The loss a segmentation network trains with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentationLoss {
    /// Per-pixel cross-entropy (softmax over the classes).
    #[default]
    CrossEntropy,
    /// Soft Dice loss, `1 - mean_c Dice_c`: insensitive to how much of the picture is
    /// background.
    Dice,
    /// The sum of the two.
    CrossEntropyDice,
}

impl SegmentationLoss {
    pub fn parse(name: &str) -> Result<Self, TrainError> {
        match name {
            "ce" | "cross-entropy" | "cross_entropy" => Ok(Self::CrossEntropy),
            "dice" => Ok(Self::Dice),
            "ce+dice" | "cross-entropy+dice" => Ok(Self::CrossEntropyDice),
            other => Err(TrainError::Config(format!(
                "unknown segmentation loss '{other}'; use ce, dice or ce+dice"
            ))),
        }
    }

    pub fn forward(self, logits: Tensor<4>, targets: Tensor<3, Int>) -> Tensor<1> {
        match self {
            Self::CrossEntropy => pixel_cross_entropy(logits, targets),
            Self::Dice => dice_loss(logits, targets),
            Self::CrossEntropyDice => {
                pixel_cross_entropy(logits.clone(), targets.clone()) + dice_loss(logits, targets)
            }
        }
    }
}

/// `[N, k, H, W]` scores as one row of `k` per pixel: `[N * H * W, k]`, pixels in row-major
/// order within each picture, as the masks are.
pub fn pixel_rows(scores: Tensor<4>) -> Tensor<2> {
    let [n, k, h, w] = scores.dims();
    scores.permute([0, 2, 3, 1]).reshape([n * h * w, k])
}

fn flat_targets(targets: Tensor<3, Int>) -> Tensor<1, Int> {
    let [n, h, w] = targets.dims();
    targets.reshape([n * h * w])
}

/// Mean cross-entropy over every pixel of `logits` `[N, k, H, W]` against class indices
/// `targets` `[N, H, W]`.
pub fn pixel_cross_entropy(logits: Tensor<4>, targets: Tensor<3, Int>) -> Tensor<1> {
    let device = logits.device();
    CrossEntropyLossConfig::new()
        .init(&device)
        .forward(pixel_rows(logits), flat_targets(targets))
}

/// Mean binary cross-entropy of one logit per pixel, `logits` `[N, 1, H, W]`, against 0/1
/// `targets` `[N, H, W]`: `-(t log σ(z) + (1 - t) log(1 - σ(z)))`, computed from log-sigmoids
/// so large logits do not overflow.
pub fn binary_cross_entropy(logits: Tensor<4>, targets: Tensor<3, Int>) -> Tensor<1> {
    let [n, _, h, w] = logits.dims();
    let z: Tensor<3> = logits.reshape([n, h, w]);
    let t = targets.float();
    let positive = log_sigmoid(z.clone());
    let negative = log_sigmoid(z.neg());
    (t.clone() * positive + (t.neg() + 1.0) * negative)
        .neg()
        .mean()
}

/// Soft Dice loss: `1 - mean over classes of (2 Σ p t + ε) / (Σ p + Σ t + ε)` with `p` the
/// softmax probabilities and `t` the one-hot targets, summed over every pixel of the batch.
pub fn dice_loss(logits: Tensor<4>, targets: Tensor<3, Int>) -> Tensor<1> {
    const EPS: f64 = 1.0;
    let [_, k, _, _] = logits.dims();
    let p = softmax(pixel_rows(logits), 1);
    let t: Tensor<2> = flat_targets(targets).one_hot::<2>(k).float();
    let intersection = (p.clone() * t.clone()).sum_dim(0);
    let total = p.sum_dim(0) + t.sum_dim(0);
    let dice = (intersection * 2.0 + EPS) / (total + EPS);
    dice.mean().neg() + 1.0
}

/// Pixel counts of (true class, predicted class), and what they give.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentationMetrics {
    pub confusion: ConfusionMatrix,
}

impl SegmentationMetrics {
    pub fn new(num_classes: usize) -> Self {
        Self {
            confusion: ConfusionMatrix::new(num_classes),
        }
    }

    pub fn add(&mut self, truth: &[usize], predicted: &[usize]) {
        self.confusion.add(truth, predicted);
    }

    /// `(true positives, false positives, false negatives)` of class `c`.
    fn counts(&self, c: usize) -> (u64, u64, u64) {
        let k = self.confusion.num_classes();
        let tp = self.confusion.counts[c][c];
        let predicted: u64 = (0..k).map(|t| self.confusion.counts[t][c]).sum();
        let actual: u64 = self.confusion.counts[c].iter().sum();
        (tp, predicted - tp, actual - tp)
    }

    pub fn pixel_accuracy(&self) -> f64 {
        self.confusion.accuracy()
    }

    /// `TP / (TP + FP + FN)`; `None` for a class neither present nor predicted.
    pub fn iou(&self, c: usize) -> Option<f64> {
        let (tp, fp, fn_) = self.counts(c);
        let union = tp + fp + fn_;
        (union > 0).then(|| tp as f64 / union as f64)
    }

    /// `2 TP / (2 TP + FP + FN)`; `None` for a class neither present nor predicted.
    pub fn dice(&self, c: usize) -> Option<f64> {
        let (tp, fp, fn_) = self.counts(c);
        let denominator = 2 * tp + fp + fn_;
        (denominator > 0).then(|| 2.0 * tp as f64 / denominator as f64)
    }

    fn mean(values: impl Iterator<Item = Option<f64>>) -> f64 {
        let present: Vec<f64> = values.flatten().collect();
        if present.is_empty() {
            0.0
        } else {
            present.iter().sum::<f64>() / present.len() as f64
        }
    }

    /// Mean IoU over the classes present in the truth or the prediction.
    pub fn mean_iou(&self) -> f64 {
        Self::mean((0..self.confusion.num_classes()).map(|c| self.iou(c)))
    }

    /// Mean Dice over the classes present in the truth or the prediction.
    pub fn mean_dice(&self) -> f64 {
        Self::mean((0..self.confusion.num_classes()).map(|c| self.dice(c)))
    }

    /// Background (class 0) against every other class taken as one: how well the items are
    /// found, whatever they are called.
    pub fn items_found(&self) -> SegmentationMetrics {
        let k = self.confusion.num_classes();
        let mut found = SegmentationMetrics::new(2);
        for t in 0..k {
            for p in 0..k {
                found.confusion.counts[usize::from(t > 0)][usize::from(p > 0)] +=
                    self.confusion.counts[t][p];
            }
        }
        found
    }

    /// The metrics had every item pixel predicted as some item been given its true class: what
    /// the outlines found allow. The distance from these to the metrics themselves is naming;
    /// from these to a perfect 1, the outlines (background taken for an item or the reverse).
    pub fn named_right(&self) -> SegmentationMetrics {
        let k = self.confusion.num_classes();
        let mut named = self.clone();
        for t in 1..k {
            let row = &mut named.confusion.counts[t];
            let misnamed: u64 = (1..k).filter(|&p| p != t).map(|p| row[p]).sum();
            for (p, n) in row.iter_mut().enumerate().skip(1) {
                if p != t {
                    *n = 0;
                }
            }
            row[t] += misnamed;
        }
        named
    }
}

/// The batch as tensors: images `[N, C, H, W]` and masks `[N, H, W]`.
fn tensors(batch: SegmentationBatch, device: &Device) -> (Tensor<4>, Tensor<3, Int>) {
    let [n, _, h, w] = batch.shape;
    let x = Tensor::<4>::from_data(TensorData::new(batch.images, batch.shape), device);
    let y = Tensor::<3, Int>::from_data(TensorData::new(batch.masks, [n, h, w]), device);
    (x, y)
}

/// `y` as score maps `[N, k, H, W]`, checked to hold one score per class and pixel of the
/// batch `x` was (`[N, C, H, W]`).
fn score_maps(
    y: convnet_layers::Features,
    input: [usize; 4],
    num_classes: usize,
) -> Result<Tensor<4>, TrainError> {
    let [n, _, h, w] = input;
    let dims = y.dims();
    if dims != [n, num_classes, h, w] {
        return Err(TrainError::Config(format!(
            "a segmentation network must output one score per class and pixel, {:?}; this one gives {dims:?}",
            [n, num_classes, h, w]
        )));
    }
    y.into_map2d()
        .map_err(|e| TrainError::Config(format!("cannot read the score maps: {e:?}")))
}

/// The class of every pixel, `[N * H * W]` row-major, from score maps.
pub fn argmax_pixels(scores: Tensor<4>) -> Vec<usize> {
    pixel_rows(scores)
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap_or_default()
        .into_iter()
        .map(|v| v as usize)
        .collect()
}

/// Mean loss and metrics of `model` on `set`.
pub fn evaluate_segmentation(
    model: &Sequential,
    set: &SegmentationSet,
    normalization: &Normalization,
    loss: SegmentationLoss,
    batch_size: usize,
    device: &Device,
) -> Result<(f64, SegmentationMetrics), TrainError> {
    evaluate_segmentation_ensemble(
        &[(model, normalization)],
        set,
        loss,
        false,
        batch_size,
        device,
    )
}

/// Mean loss and metrics on `set` of the average score maps of `members` (each network with
/// the normalisation it was trained with). With `flip_tta` each picture's scores are also
/// averaged with its mirror image's, mirrored back (flip test-time augmentation).
pub fn evaluate_segmentation_ensemble(
    members: &[(&Sequential, &Normalization)],
    set: &SegmentationSet,
    loss: SegmentationLoss,
    flip_tta: bool,
    batch_size: usize,
    device: &Device,
) -> Result<(f64, SegmentationMetrics), TrainError> {
    if members.is_empty() {
        return Err(TrainError::Config("no segmentation network to run".into()));
    }
    let mut metrics = SegmentationMetrics::new(set.num_classes());
    let mut loss_sum = 0.0;
    let indices: Vec<usize> = (0..set.len()).collect();
    let views: &[bool] = if flip_tta { &[false, true] } else { &[false] };
    for chunk in indices.chunks(batch_size.max(1)) {
        let mut sum: Option<Tensor<4>> = None;
        let mut labels = None;
        let mut truth = Vec::new();
        for &(model, normalization) in members {
            let batch = set.batch(chunk, normalization, None, 0, 0);
            if truth.is_empty() {
                truth = batch.masks.iter().map(|&m| m as usize).collect();
            }
            let (x, y) = tensors(batch, device);
            let input = x.dims();
            for &mirrored in views {
                let s = if mirrored {
                    let y = model.forward(x.clone().flip([3]), Mode::Eval)?;
                    score_maps(y, input, set.num_classes())?.flip([3])
                } else {
                    score_maps(
                        model.forward(x.clone(), Mode::Eval)?,
                        input,
                        set.num_classes(),
                    )?
                };
                sum = Some(match sum {
                    Some(total) => total + s,
                    None => s,
                });
            }
            labels.get_or_insert(y);
        }
        let s = sum
            .expect("at least one member")
            .div_scalar((members.len() * views.len()) as f64);
        let y = labels.expect("at least one member");
        loss_sum += loss.forward(s.clone(), y).into_scalar::<f64>() * chunk.len() as f64;
        metrics.add(&truth, &argmax_pixels(s));
    }
    Ok((loss_sum / set.len().max(1) as f64, metrics))
}

/// The data a segmentation run trains on.
pub struct SegmentationData {
    pub train: SegmentationSet,
    pub validation: Option<SegmentationSet>,
    pub normalization: Normalization,
    pub augment: Option<JointAugment>,
    pub loss: SegmentationLoss,
}

/// Trains `spec` (a network giving `[k, H, W]` score maps) on `data`, writing `history.csv`
/// (with the validation mean IoU), `curves.png` and checkpoints (`best` = best validation mean
/// IoU) into `run_dir`, as [`crate::train`] does for classifiers. `initial` (built from `spec`)
/// starts the run from its weights, e.g. a pretrained contracting path.
pub fn train_segmentation(
    spec: &ModelSpec,
    initial: Option<&Sequential>,
    data: &SegmentationData,
    config: &TrainConfig,
    run_dir: &Path,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome, TrainError> {
    let FreshRun {
        train_device,
        mut model,
        mut optimizer,
        mut scheduler,
        steps_per_epoch,
        last_path,
    } = FreshRun::start(
        spec,
        initial,
        config,
        (data.train.len(), data.validation.as_ref().map(|v| v.len())),
        run_dir,
        device,
    )?;
    let k = data.train.num_classes();
    let mut ledger = Ledger::new(
        spec,
        &data.train.classes,
        &data.normalization,
        config,
        run_dir,
    );

    for epoch in 1..=config.epochs {
        if ledger.out_of_patience("validation mean IoU", observer) {
            break;
        }
        observer.epoch_start(epoch, config.epochs, steps_per_epoch);
        let started = Instant::now();
        let (mut loss_sum, mut correct, mut pixels, mut seen) = (0.0f64, 0u64, 0u64, 0usize);
        let mut lr = config.optimizer.lr;
        let order = epoch_order(data.train.len(), config.seed, epoch as u64);
        for (step, chunk) in order.chunks(config.batch_size).enumerate() {
            let batch = data.train.batch(
                chunk,
                &data.normalization,
                data.augment.as_ref(),
                config.seed,
                epoch as u64,
            );
            let (x, y) = tensors(batch, &train_device);
            let input = x.dims();
            let s = score_maps(model.forward(x, Mode::Train)?, input, k)?;
            let loss = data.loss.forward(s.clone(), y.clone());
            let value = loss.clone().into_scalar::<f64>();
            check_finite(value, epoch, step + 1, &last_path)?;
            let hits = pixel_rows(s.clone())
                .argmax(1)
                .squeeze_dim::<1>(1)
                .equal(flat_targets(y.clone()))
                .int()
                .sum()
                .into_scalar::<i64>();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let rate = scheduler.step();
            lr = rate.base();
            model = optimizer.step(rate, model, grads);
            ledger.global_step += 1;
            let [n, h, w] = y.dims();
            loss_sum += value * n as f64;
            correct += hits as u64;
            pixels += (n * h * w) as u64;
            seen += n;
            ledger.save_within_epoch(epoch, step + 1, steps_per_epoch, &model)?;
            observer.step(
                step + 1,
                loss_sum / seen as f64,
                correct as f64 / pixels as f64,
            );
        }
        let seconds = started.elapsed().as_secs_f64();

        let validation = match &data.validation {
            Some(val) if !val.is_empty() => {
                observer.validation_start(val.len());
                let result = evaluate_segmentation(
                    &model.valid(),
                    val,
                    &data.normalization,
                    data.loss,
                    config.batch_size.max(32),
                    device,
                )?;
                observer.validation_progress(val.len());
                Some(result)
            }
            _ => None,
        };
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct as f64 / pixels.max(1) as f64,
            val_loss: validation.as_ref().map(|(l, _)| *l),
            val_accuracy: validation.as_ref().map(|(_, m)| m.pixel_accuracy()),
            lr,
            seconds,
            val_mean_iou: validation.as_ref().map(|(_, m)| m.mean_iou()),
            val_map50: None,
            val_map: None,
        };
        let score = record.val_mean_iou;
        ledger.end_epoch(record, score, &model, observer)?;
    }
    Ok(ledger.finish(model.valid()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        Device::flex()
    }

    /// Logits `[1, 2, 1, 2]` and targets `[1, 1, 2]` with known answers.
    fn example() -> (Tensor<4>, Tensor<3, Int>) {
        let d = device();
        // Pixel 0: logits (2, 0), class 0; pixel 1: logits (0, 1), class 1... as [N, k, H, W].
        let logits = Tensor::<4>::from_data(
            TensorData::new(vec![2.0f32, 0.0, 0.0, 1.0], [1, 2, 1, 2]),
            &d,
        );
        let targets = Tensor::<3, Int>::from_data(TensorData::new(vec![0i64, 1], [1, 1, 2]), &d);
        (logits, targets)
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }

    /// A random 3-class network on 8x8 pictures: two same-padded convolutions whose random
    /// kernels are not left-right symmetric.
    fn lopsided_net() -> Sequential {
        let spec = ModelSpec::parse(
            r#"
name = "lopsided"
input = [1, 8, 8]
[[layers]]
type = "conv2d"
filters = 6
kernel = 3
padding = "same"
activation = "relu"
[[layers]]
type = "conv2d"
filters = 3
kernel = 3
padding = "same"
"#,
            "lopsided.toml",
        )
        .unwrap();
        spec.build(&device()).unwrap()
    }

    /// Pseudo-random pictures and masks, and their mirror images.
    fn pictures_and_mirrors() -> (SegmentationSet, SegmentationSet) {
        let (n, side) = (5, 8);
        let images: Vec<u8> = (0..n * side * side).map(|i| (i * 73 % 251) as u8).collect();
        let masks: Vec<u8> = (0..n * side * side)
            .map(|i| (i * 7 / 5 % 3) as u8)
            .collect();
        let mirror = |v: &[u8]| -> Vec<u8> {
            v.chunks(side)
                .flat_map(|row| row.iter().rev().copied())
                .collect()
        };
        let set = |images, masks| SegmentationSet {
            images,
            masks,
            shape: [1, side, side],
            classes: vec!["a".into(), "b".into(), "c".into()],
        };
        (
            set(images.clone(), masks.clone()),
            set(mirror(&images), mirror(&masks)),
        )
    }

    #[test]
    fn flip_tta_scores_a_set_and_its_mirror_image_alike() {
        let net = lopsided_net();
        let norm = Normalization::identity(1);
        let (set, mirrored) = pictures_and_mirrors();
        let run = |set: &SegmentationSet, members: &[(&Sequential, &Normalization)], tta| {
            let loss = SegmentationLoss::CrossEntropy;
            evaluate_segmentation_ensemble(members, set, loss, tta, 2, &device()).unwrap()
        };
        let one = [(&net, &norm)];
        // Without TTA the lopsided network tells a picture from its mirror image...
        let (plain, plain_mirrored) = (run(&set, &one, false), run(&mirrored, &one, false));
        assert_ne!(plain.1.mean_iou(), plain_mirrored.1.mean_iou());
        // ...with it, each picture's maps average with its mirror's mirrored back, so a set and
        // its mirror image score the same.
        let (tta, tta_mirrored) = (run(&set, &one, true), run(&mirrored, &one, true));
        for c in 0..3 {
            assert_eq!(tta.1.iou(c), tta_mirrored.1.iou(c), "class {c}");
        }
        close(tta.0, tta_mirrored.0);
        // An ensemble of one network twice averages equal maps.
        let twice = run(&set, &[(&net, &norm), (&net, &norm)], false);
        assert_eq!(twice.1.mean_iou(), plain.1.mean_iou());
        close(twice.0, plain.0);
    }

    #[test]
    fn cross_entropy_is_the_mean_over_pixels() {
        let (logits, targets) = example();
        let ce = pixel_cross_entropy(logits, targets).into_scalar::<f64>();
        let p0 = (2f64).exp() / ((2f64).exp() + 1.0);
        let p1 = (1f64).exp() / ((1f64).exp() + 1.0);
        close(ce, -(p0.ln() + p1.ln()) / 2.0);
    }

    #[test]
    fn binary_cross_entropy_matches_the_formula_even_for_large_logits() {
        let d = device();
        let z = [3.0f64, -2.0, 80.0, -80.0];
        let t = [1i64, 1, 0, 0];
        let logits = Tensor::<4>::from_data(
            TensorData::new(z.iter().map(|&v| v as f32).collect(), [1, 1, 2, 2]),
            &d,
        );
        let targets = Tensor::<3, Int>::from_data(TensorData::new(t.to_vec(), [1, 2, 2]), &d);
        let got = binary_cross_entropy(logits, targets).into_scalar::<f64>();
        let want: f64 = z
            .iter()
            .zip(t)
            .map(|(&z, t)| {
                // log(1 + exp(-|z|)) + max(z, 0) - z t, the stable form.
                (1.0 + (-z.abs()).exp()).ln() + z.max(0.0) - z * t as f64
            })
            .sum::<f64>()
            / 4.0;
        assert!(got.is_finite());
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
    }

    #[test]
    fn dice_loss_is_zero_for_a_perfect_prediction_and_grows_with_errors() {
        let d = device();
        let targets =
            Tensor::<3, Int>::from_data(TensorData::new(vec![0i64, 1, 1, 0], [1, 2, 2]), &d);
        let sure = |sign: f32| {
            // Class 1 score +-20 where the target is 1, so softmax is ~one-hot (or its opposite).
            let t = [0.0f32, 1.0, 1.0, 0.0];
            let mut v = Vec::new();
            v.extend(t.iter().map(|&t| sign * 20.0 * (1.0 - t)));
            v.extend(t.iter().map(|&t| sign * 20.0 * t));
            Tensor::<4>::from_data(TensorData::new(v, [1, 2, 2, 2]), &d)
        };
        let perfect = dice_loss(sure(1.0), targets.clone()).into_scalar::<f64>();
        let wrong = dice_loss(sure(-1.0), targets).into_scalar::<f64>();
        // With ε = 1: each class has Σt = 2, so Dice = (2·2 + 1) / (2 + 2 + 1) = 1 and
        // (0 + 1) / (2 + 2 + 1) = 0.2 for the opposite.
        close(perfect, 0.0);
        close(wrong, 0.8);
    }

    #[test]
    fn iou_and_dice_come_from_the_pixel_counts() {
        let mut m = SegmentationMetrics::new(3);
        // truth:     0 0 1 1 1 2
        // predicted: 0 1 1 1 0 0
        m.add(&[0, 0, 1, 1, 1, 2], &[0, 1, 1, 1, 0, 0]);
        // Class 0: TP 1, FP 2, FN 1 -> IoU 1/4, Dice 2/5. Class 1: TP 2, FP 1, FN 1 -> 2/4,
        // 4/6. Class 2: TP 0, FN 1 -> 0.
        close(m.iou(0).unwrap(), 0.25);
        close(m.iou(1).unwrap(), 0.5);
        close(m.iou(2).unwrap(), 0.0);
        close(m.dice(0).unwrap(), 0.4);
        close(m.dice(1).unwrap(), 4.0 / 6.0);
        close(m.mean_iou(), 0.25);
        close(m.pixel_accuracy(), 0.5);
        // A class nobody saw does not count towards the mean.
        let mut m = SegmentationMetrics::new(4);
        m.add(&[0, 1], &[0, 1]);
        assert_eq!(m.iou(3), None);
        close(m.mean_iou(), 1.0);
    }

    #[test]
    fn the_errors_split_into_finding_items_and_naming_them() {
        let mut m = SegmentationMetrics::new(3);
        // truth:     0 0 1 1 1 2 2 2
        // predicted: 0 2 1 2 0 2 1 0
        m.add(&[0, 0, 1, 1, 1, 2, 2, 2], &[0, 2, 1, 2, 0, 2, 1, 0]);
        // Items found, whatever their class: background TP 1, FP 2, FN 1; items TP 4, FP 1, FN 2.
        let found = m.items_found();
        close(found.iou(0).unwrap(), 0.25);
        close(found.iou(1).unwrap(), 4.0 / 7.0);
        // Named right: truth 1 predicted 2 becomes 1 and the reverse; the misses stay.
        // Class 1: TP 2, FP 0, FN 1 -> 2/3. Class 2: TP 2, FP 1 (the background pixel), FN 1
        // -> 2/4. Background as before, 1/4.
        let named = m.named_right();
        close(named.iou(0).unwrap(), 0.25);
        close(named.iou(1).unwrap(), 2.0 / 3.0);
        close(named.iou(2).unwrap(), 0.5);
        assert_eq!(named.confusion.total(), m.confusion.total());
        // Perfect naming changes nothing more.
        assert_eq!(named.named_right(), named);
    }
}
