//! The training side of face recognition, on any labelled images: an embedding network trained
//! with the triplet loss, so that pictures of one identity lie close together and pictures of
//! different identities far apart, and one-shot identification with it.
//!
//! - The triplet loss (Schroff et al., *FaceNet*, 2015) on an anchor `A`, a positive `P` of the
//!   same identity and a negative `N` of another is
//!   `L = max(‖f(A) − f(P)‖² − ‖f(A) − f(N)‖² + α, 0)`; [`triplet_loss`] averages it over
//!   triplets.
//! - Most triplets of a batch already meet the margin and teach nothing, so the triplets are
//!   mined from the batch's distance matrix ([`pairwise_sq_distances`]): batch-hard (Hermans
//!   et al., 2017: [`mine_batch_hard`]) or FaceNet's semi-hard negatives ([`mine_semi_hard`]).
//!   Mining is a plain index selection on the distances; the loss is then taken on the
//!   selected entries of the distance tensor, so gradients flow through them only.
//! - The network is a classifier's feature layers (the zoo's LeNet-5 or Fashion-MNIST CNN)
//!   without its classifier, a dense layer to `D` numbers, and L2 normalisation onto the unit
//!   sphere ([`embedding_spec`], [`embed`]); batches hold `P` classes × `K` images each
//!   ([`balanced_batches`]) so every anchor has positives and negatives.
//! - One-shot identification ([`one_shot_report`]): enrol one picture of each new identity and
//!   name every query after the nearest enrolled picture (Euclidean distance). Which picture is
//!   enrolled matters a lot, so the accuracy is reported for one seeded draw and averaged over
//!   several.
//! - [`SiameseHead`]: the verification alternative, `ŷ = σ(Σ_k w_k |f(x_i)_k − f(x_j)_k| + b)`,
//!   trained with binary cross-entropy on same / different pairs ([`siamese_step`]).

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{Module, Param};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Int, Tensor, TensorData};
use convnet_data::loader::epoch_order;
use convnet_data::{Batch, Examples, Normalization, seed};
use convnet_layers::{DenseConfig, Features, LayerConfig, Mode, ModelSpec, Sequential};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{BEST, CHECKPOINT_DIR, Checkpoint, LAST};
use crate::config::TrainConfig;
use crate::error::TrainError;
use crate::fs::write_atomically;
use crate::history::EpochRecord;
use crate::metrics::ConfusionMatrix;
use crate::segment::binary_cross_entropy;
use crate::trainer::{FreshRun, Ledger, Observer, TrainData, TrainOutcome, check_finite};

/// FaceNet's margin α for embeddings on the unit sphere.
pub const DEFAULT_MARGIN: f64 = 0.2;
/// Numbers per embedding.
pub const DEFAULT_DIM: usize = 64;
/// Where a run directory records how its embedding was trained (beside `checkpoints/`).
pub const EMBEDDING_FILE: &str = "embedding.json";
/// Random supports the validation score averages over.
const VALIDATION_DRAWS: usize = 10;
/// Examples per forward pass when embedding a set.
const EVAL_BATCH: usize = 256;

/// How the triplets of a batch are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mining {
    /// Per anchor, its farthest positive and its nearest negative ([`mine_batch_hard`]).
    #[default]
    BatchHard,
    /// Per (anchor, positive) pair, FaceNet's semi-hard negative ([`mine_semi_hard`]).
    SemiHard,
}

impl Mining {
    pub fn parse(name: &str) -> Result<Self, TrainError> {
        match name.to_ascii_lowercase().replace('_', "-").as_str() {
            "batch-hard" | "hard" => Ok(Self::BatchHard),
            "semi-hard" | "semihard" => Ok(Self::SemiHard),
            _ => Err(TrainError::Config(format!(
                "unknown triplet mining '{name}': use batch-hard or semi-hard"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::BatchHard => "batch-hard",
            Self::SemiHard => "semi-hard",
        }
    }
}

/// Mean over the rows of `max(‖a − p‖² − ‖a − n‖² + margin, 0)`; `anchor`, `positive` and
/// `negative` are `[triplets, D]`.
pub fn triplet_loss(
    anchor: Tensor<2>,
    positive: Tensor<2>,
    negative: Tensor<2>,
    margin: f64,
) -> Tensor<1> {
    let d_ap = (anchor.clone() - positive).square().sum_dim(1);
    let d_an = (anchor - negative).square().sum_dim(1);
    (d_ap - d_an).add_scalar(margin).clamp_min(0.0).mean()
}

/// Squared Euclidean distances between the rows of `emb` `[n, D]`: `[n, n]`, from
/// `‖x‖² + ‖y‖² − 2 x·y`. Rounding can make that slightly negative, so it is clamped at 0, and
/// the diagonal is exactly 0.
pub fn pairwise_sq_distances(emb: Tensor<2>) -> Tensor<2> {
    let [n, _] = emb.dims();
    let device = emb.device();
    let sq = emb.clone().square().sum_dim(1); // [n, 1]
    let gram = emb.clone().matmul(emb.transpose());
    let off_diagonal: Vec<f32> = (0..n * n)
        .map(|i| if i / n == i % n { 0.0 } else { 1.0 })
        .collect();
    let mask = Tensor::<2>::from_data(TensorData::new(off_diagonal, [n, n]), &device);
    ((sq.clone() + sq.transpose()) - gram.mul_scalar(2.0)).clamp_min(0.0) * mask
}

/// Per anchor `a`, the batch-hard triplet `(a, p, n)`: `p` the positive (same label, not `a`)
/// at the largest distance, `n` the negative (another label) at the smallest; the first index
/// wins ties. Anchors without a positive or without a negative are skipped. `dist` is the
/// square distance matrix, `dist[i][j]` between examples `i` and `j`.
pub fn mine_batch_hard(dist: &[Vec<f32>], labels: &[usize]) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    for (a, row) in dist.iter().enumerate() {
        let mut positive: Option<usize> = None;
        let mut negative: Option<usize> = None;
        for (j, &d) in row.iter().enumerate() {
            if j == a {
                continue;
            }
            if labels[j] == labels[a] {
                if positive.is_none_or(|p| d > row[p]) {
                    positive = Some(j);
                }
            } else if negative.is_none_or(|n| d < row[n]) {
                negative = Some(j);
            }
        }
        if let (Some(p), Some(n)) = (positive, negative) {
            out.push((a, p, n));
        }
    }
    out
}

/// Per (anchor `a`, positive `p`) pair (same label, `a ≠ p`), FaceNet's semi-hard negative as
/// TensorFlow's `triplet_semihard_loss` chooses it: among the negatives farther from `a` than
/// `p` is (`d(a, n) > d(a, p)`), the nearest; when no negative is that far, the farthest
/// negative. The first index wins ties. Anchors without a negative are skipped.
pub fn mine_semi_hard(dist: &[Vec<f32>], labels: &[usize]) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    for (a, row) in dist.iter().enumerate() {
        let negatives: Vec<usize> = (0..row.len()).filter(|&j| labels[j] != labels[a]).collect();
        if negatives.is_empty() {
            continue;
        }
        for p in (0..row.len()).filter(|&j| j != a && labels[j] == labels[a]) {
            let mut nearest_beyond: Option<usize> = None;
            let mut farthest: Option<usize> = None;
            for &n in &negatives {
                let d = row[n];
                if d > row[p] && nearest_beyond.is_none_or(|b| d < row[b]) {
                    nearest_beyond = Some(n);
                }
                if farthest.is_none_or(|f| d > row[f]) {
                    farthest = Some(n);
                }
            }
            if let Some(n) = nearest_beyond.or(farthest) {
                out.push((a, p, n));
            }
        }
    }
    out
}

/// A mined triplet loss and what the mining found.
#[derive(Debug, Clone)]
pub struct MinedLoss {
    /// Mean over the mined triplets of `max(d(a, p) − d(a, n) + α, 0)`; 0 (still attached to
    /// the graph) when the batch has no triplet.
    pub loss: Tensor<1>,
    /// The mined triplets.
    pub triplets: usize,
    /// Those with a positive loss (`d(a, p) + α > d(a, n)`): the ones that teach.
    pub active: usize,
}

impl MinedLoss {
    /// Fraction of the mined triplets that are active (0 without triplets).
    pub fn active_fraction(&self) -> f64 {
        if self.triplets == 0 {
            0.0
        } else {
            self.active as f64 / self.triplets as f64
        }
    }
}

/// The rows of a row-major `[n, n]` buffer.
fn square_rows(values: &[f32], n: usize) -> Vec<Vec<f32>> {
    values.chunks(n.max(1)).map(<[f32]>::to_vec).collect()
}

fn tensor_values<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, TrainError> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| TrainError::Config(format!("cannot read a tensor: {e:?}")))
}

/// The triplet loss of `emb` `[n, D]` with labels `labels` over the triplets `mining` picks
/// from the batch's squared distances.
pub fn mined_triplet_loss(
    emb: Tensor<2>,
    labels: &[usize],
    margin: f64,
    mining: Mining,
) -> Result<MinedLoss, TrainError> {
    let [n, _] = emb.dims();
    if labels.len() != n {
        return Err(TrainError::Config(format!(
            "{} labels for {n} embeddings",
            labels.len()
        )));
    }
    let device = emb.device();
    let dist = pairwise_sq_distances(emb.clone());
    let rows = square_rows(&tensor_values(dist.clone().detach())?, n);
    let triplets = match mining {
        Mining::BatchHard => mine_batch_hard(&rows, labels),
        Mining::SemiHard => mine_semi_hard(&rows, labels),
    };
    if triplets.is_empty() {
        return Ok(MinedLoss {
            loss: emb.sum().mul_scalar(0.0),
            triplets: 0,
            active: 0,
        });
    }
    let active = triplets
        .iter()
        .filter(|&&(a, p, q)| f64::from(rows[a][p]) - f64::from(rows[a][q]) + margin > 0.0)
        .count();
    let index = |pick: &dyn Fn(&(usize, usize, usize)) -> usize| {
        let flat: Vec<i64> = triplets.iter().map(|t| pick(t) as i64).collect();
        Tensor::<1, Int>::from_data(TensorData::new(flat, [triplets.len()]), &device)
    };
    let flat = dist.reshape([n * n]);
    let d_ap = flat.clone().select(0, index(&|&(a, p, _)| a * n + p));
    let d_an = flat.select(0, index(&|&(a, _, q)| a * n + q));
    Ok(MinedLoss {
        loss: (d_ap - d_an).add_scalar(margin).clamp_min(0.0).mean(),
        triplets: triplets.len(),
        active,
    })
}

/// The batch-hard triplet loss (mean over the anchors that have a positive and a negative).
pub fn batch_hard_triplet_loss(
    emb: Tensor<2>,
    labels: &[usize],
    margin: f64,
) -> Result<MinedLoss, TrainError> {
    mined_triplet_loss(emb, labels, margin, Mining::BatchHard)
}

/// The semi-hard triplet loss (mean over every (anchor, positive) pair with a negative).
pub fn semi_hard_triplet_loss(
    emb: Tensor<2>,
    labels: &[usize],
    margin: f64,
) -> Result<MinedLoss, TrainError> {
    mined_triplet_loss(emb, labels, margin, Mining::SemiHard)
}

/// Rows scaled to unit length (FaceNet's embeddings live on the unit sphere, so the margin has
/// a fixed scale); a tiny ε keeps an all-zero row finite.
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).add_scalar(1e-12).sqrt();
    x / norm
}

/// An embedding network: `backbone`'s feature layers (everything before its classifier, as
/// [`ModelSpec::without_top`] cuts it), flattened, then a dense layer to `dim` numbers named
/// `embed.fc`. The L2 normalisation is not a layer: [`embed`] applies it.
pub fn embedding_spec(backbone: &ModelSpec, dim: usize) -> Result<ModelSpec, TrainError> {
    if dim == 0 {
        return Err(TrainError::Config("--dim must be at least 1 number".into()));
    }
    let mut spec = backbone
        .without_top()?
        .named("embed.flatten", LayerConfig::Flatten)
        .named("embed.fc", LayerConfig::Dense(DenseConfig::new(dim)));
    spec.name = format!("{}-embedding", backbone.name);
    Ok(spec)
}

/// The unit-length embeddings `[N, D]` of a batch.
pub fn embed(
    model: &Sequential,
    x: impl Into<Features>,
    mode: Mode,
) -> Result<Tensor<2>, TrainError> {
    Ok(l2_normalize(model.forward(x, mode)?.into_flat()))
}

/// Embeddings of some examples, one row of `dim` numbers each, with their labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    pub dim: usize,
    /// `labels.len() * dim` numbers, row after row.
    pub values: Vec<f32>,
    pub labels: Vec<usize>,
}

impl Embeddings {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    /// The rows at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Embeddings {
        Embeddings {
            dim: self.dim,
            values: indices
                .iter()
                .flat_map(|&i| self.row(i).iter().copied())
                .collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        }
    }
}

/// The embeddings (inference mode, no augmentation) of the examples `indices` of `set`.
pub fn embed_examples(
    model: &Sequential,
    set: &dyn Examples,
    indices: &[usize],
    normalization: &Normalization,
    device: &Device,
) -> Result<Embeddings, TrainError> {
    let mut values = Vec::new();
    let mut labels = Vec::with_capacity(indices.len());
    let mut dim = 0;
    for chunk in indices.chunks(EVAL_BATCH) {
        let batch = Batch::build(set, chunk, normalization, None, 0, 0);
        let e = embed(model, batch.to_features(device), Mode::Eval)?;
        dim = e.dims()[1];
        values.extend(tensor_values(e)?);
        labels.extend(batch.labels);
    }
    Ok(Embeddings {
        dim,
        values,
        labels,
    })
}

/// `steps` batches of `classes_per_batch` (P) different classes × `per_class` (K) examples
/// each, for one epoch: the classes of a batch are a seeded random choice, and each class hands
/// out its examples in a seeded shuffled order, reshuffled when they run out (so a class with
/// fewer than K examples repeats some). Classes with fewer than two examples cannot give a
/// positive pair and are never picked. A function of `(labels, seed, epoch)` only.
pub fn balanced_batches(
    labels: &[usize],
    classes_per_batch: usize,
    per_class: usize,
    steps: usize,
    seed: u64,
    epoch: u64,
) -> Result<Vec<Vec<usize>>, TrainError> {
    if classes_per_batch < 2 || per_class < 2 {
        return Err(TrainError::Config(format!(
            "a triplet batch needs at least 2 classes of at least 2 images each, not {classes_per_batch} x {per_class}"
        )));
    }
    let num_classes = labels.iter().max().map_or(0, |&m| m + 1);
    let mut members = vec![Vec::new(); num_classes];
    for (i, &l) in labels.iter().enumerate() {
        members[l].push(i);
    }
    let usable: Vec<usize> = (0..num_classes)
        .filter(|&c| members[c].len() >= 2)
        .collect();
    if usable.len() < classes_per_batch {
        return Err(TrainError::Config(format!(
            "batches of {classes_per_batch} classes need {classes_per_batch} classes with at least 2 images each; the training set has {}",
            usable.len()
        )));
    }
    // Per class: its examples in shuffled order, one pass after another.
    let mut queues: Vec<(Vec<usize>, usize, u64)> = vec![(Vec::new(), 0, 0); num_classes];
    let mut next = |c: usize| {
        let (order, at, pass) = &mut queues[c];
        if *at >= order.len() {
            let shuffled = epoch_order(
                members[c].len(),
                true,
                seed::derive(&[seed, c as u64, *pass]),
                epoch,
            );
            *order = shuffled.into_iter().map(|i| members[c][i]).collect();
            *at = 0;
            *pass += 1;
        }
        *at += 1;
        order[*at - 1]
    };
    let mut batches = Vec::with_capacity(steps);
    for step in 0..steps {
        let pick = epoch_order(
            usable.len(),
            true,
            seed::derive(&[seed, 0xba7c, step as u64]),
            epoch,
        );
        let mut batch = Vec::with_capacity(classes_per_batch * per_class);
        for &u in &pick[..classes_per_batch] {
            for _ in 0..per_class {
                batch.push(next(usable[u]));
            }
        }
        batches.push(batch);
    }
    Ok(batches)
}

/// What an embedding run is asked to do; written to `embedding.json` in the run directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingConfig {
    /// Epochs, optimizer, schedule, seed, augmentation, validation fraction, patience, the
    /// classes trained on (`only_classes`), the backbone's name (`model`) and the data set.
    /// `batch_size` is `classes_per_batch * images_per_class`.
    pub train: TrainConfig,
    /// Numbers per embedding.
    pub dim: usize,
    /// The triplet margin α.
    pub margin: f64,
    pub mining: Mining,
    /// P: classes per batch.
    pub classes_per_batch: usize,
    /// K: images of each class per batch.
    pub images_per_class: usize,
}

impl EmbeddingConfig {
    /// FaceNet's defaults on a `backbone` (a zoo name): 64 numbers, margin 0.2, batch-hard
    /// mining, batches of 7 classes × 16 images, Adam 1e-3; 2 epochs (on Fashion-MNIST's
    /// classes 0-6, longer training fits those classes better and identifies new ones worse).
    pub fn new(backbone: impl Into<String>, dataset: impl Into<String>) -> Self {
        let mut train = TrainConfig::new(backbone, dataset);
        train.epochs = 2;
        let mut config = Self {
            train,
            dim: DEFAULT_DIM,
            margin: DEFAULT_MARGIN,
            mining: Mining::BatchHard,
            classes_per_batch: 7,
            images_per_class: 16,
        };
        config.train.batch_size = config.batch_size();
        config
    }

    /// P × K.
    pub fn batch_size(&self) -> usize {
        self.classes_per_batch * self.images_per_class
    }

    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::Config(m));
        if self.dim == 0 {
            return bad("--dim must be at least 1".into());
        }
        if !(self.margin.is_finite() && self.margin > 0.0) {
            return bad(format!(
                "--margin must be a positive number, got {}",
                self.margin
            ));
        }
        if self.classes_per_batch < 2 {
            return bad(format!(
                "--classes-per-batch must be at least 2 (negatives come from other classes), got {}",
                self.classes_per_batch
            ));
        }
        if self.images_per_class < 2 {
            return bad(format!(
                "--images-per-class must be at least 2 (positives come from the same class), got {}",
                self.images_per_class
            ));
        }
        let mut train = self.train.clone();
        train.batch_size = self.batch_size();
        train.validate()
    }

    pub fn path(run_dir: &Path) -> PathBuf {
        run_dir.join(EMBEDDING_FILE)
    }

    pub fn save(&self, run_dir: &Path) -> Result<(), TrainError> {
        let path = Self::path(run_dir);
        let json = serde_json::to_vec_pretty(self).map_err(|e| TrainError::Checkpoint {
            path: path.clone(),
            message: e.to_string(),
        })?;
        write_atomically(&path, &json)
    }

    /// The settings of the embedding run in `run_dir`; a directory without them is not one.
    pub fn load(run_dir: &Path) -> Result<Self, TrainError> {
        let path = Self::path(run_dir);
        let bytes = std::fs::read(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                TrainError::Checkpoint {
                    path: run_dir.to_path_buf(),
                    message: format!(
                        "not an embedding run: it has no {EMBEDDING_FILE} (train one with `convnet embed train --out DIR`)"
                    ),
                }
            } else {
                TrainError::Read {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        serde_json::from_slice(&bytes).map_err(|e| TrainError::Checkpoint {
            path,
            message: format!("cannot read the embedding settings: {e}"),
        })
    }
}

/// The checkpoint one-shot evaluation uses: `best` (the best validation score) when the run
/// had a validation set, else `last`.
pub fn embedding_checkpoint(run_dir: &Path) -> Result<PathBuf, TrainError> {
    let dir = run_dir.join(CHECKPOINT_DIR);
    let last = dir.join(LAST);
    let ckpt = Checkpoint::load(&last)?;
    let best = dir.join(BEST);
    if ckpt.meta.best_val_accuracy.is_some() && best.is_file() {
        Ok(best)
    } else {
        Ok(last)
    }
}

/// Trains an embedding network, `backbone` (a classifier spec) cut by [`embedding_spec`], on
/// `data` with the triplet loss: `P × K` balanced batches, the triplets mined as
/// `config.mining` says, the optimizer and schedule of `config.train`. Writes `embedding.json`,
/// `history.csv`, `curves.png` and checkpoints into `run_dir` as the classifier runs do.
///
/// In the history, `train_accuracy` is the fraction of mined triplets that already met the
/// margin (1 − the active fraction; the observer's `step` gets the same), and `val_accuracy`
/// the mean one-shot accuracy over 10 random supports on the validation images of the
/// training classes (one enrolled image per class, the rest as queries), which picks `best`.
pub fn train_embedding(
    backbone: &ModelSpec,
    data: &TrainData,
    config: &EmbeddingConfig,
    run_dir: &Path,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome, TrainError> {
    config.validate()?;
    let spec = embedding_spec(backbone, config.dim)?;
    let mut train_config = config.train.clone();
    train_config.batch_size = config.batch_size();
    let FreshRun {
        train_device,
        mut model,
        mut optimizer,
        mut scheduler,
        steps_per_epoch,
        last_path,
    } = FreshRun::start(
        &spec,
        None,
        &train_config,
        (data.train.len(), data.validation.as_ref().map(|v| v.len())),
        run_dir,
        device,
    )?;
    let stored = EmbeddingConfig {
        train: train_config.clone(),
        ..config.clone()
    };
    stored.save(run_dir)?;
    let labels: Vec<usize> = (0..data.train.len()).map(|i| data.train.label(i)).collect();
    let mut ledger = Ledger::new(
        &spec,
        &data.classes,
        &data.normalization,
        &train_config,
        run_dir,
    );
    let seed = train_config.seed;

    for epoch in 1..=train_config.epochs {
        if ledger.out_of_patience("validation one-shot accuracy", observer) {
            break;
        }
        let batches = balanced_batches(
            &labels,
            config.classes_per_batch,
            config.images_per_class,
            steps_per_epoch,
            seed,
            epoch as u64,
        )?;
        observer.epoch_start(epoch, train_config.epochs, steps_per_epoch);
        let started = Instant::now();
        let (mut loss_sum, mut steps) = (0.0f64, 0usize);
        let (mut triplets, mut active) = (0usize, 0usize);
        let mut lr = train_config.optimizer.lr;
        for (step, indices) in batches.iter().enumerate() {
            let batch = Batch::build(
                data.train.as_ref(),
                indices,
                &data.normalization,
                data.augment.as_deref(),
                seed,
                epoch as u64,
            );
            let emb = embed(&model, batch.to_features(&train_device), Mode::Train)?;
            let mined = mined_triplet_loss(emb, &batch.labels, config.margin, config.mining)?;
            let value = mined.loss.clone().into_scalar::<f64>();
            check_finite(value, epoch, step + 1, &last_path)?;
            let grads = GradientsParams::from_grads(mined.loss.backward(), &model);
            let rate = scheduler.step();
            lr = rate.base();
            model = optimizer.step(rate, model, grads);
            ledger.global_step += 1;
            loss_sum += value;
            steps += 1;
            triplets += mined.triplets;
            active += mined.active;
            observer.step(
                step + 1,
                loss_sum / steps as f64,
                1.0 - active as f64 / triplets.max(1) as f64,
            );
        }
        let seconds = started.elapsed().as_secs_f64();

        let val_accuracy = match &data.validation {
            Some(val) if val.num_classes() >= 2 && !val.is_empty() => {
                observer.validation_start(val.len());
                let all: Vec<usize> = (0..val.len()).collect();
                let emb = embed_examples(
                    &model.valid(),
                    val.as_ref(),
                    &all,
                    &data.normalization,
                    device,
                )?;
                observer.validation_progress(val.len());
                within_set_one_shot(&emb, val.num_classes(), seed)
            }
            _ => None,
        };
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / steps.max(1) as f64,
            train_accuracy: 1.0 - active as f64 / triplets.max(1) as f64,
            val_loss: None,
            val_accuracy,
            lr,
            seconds,
            val_mean_iou: None,
            val_map50: None,
            val_map: None,
        };
        ledger.end_epoch(record, val_accuracy, &model, observer)?;
    }
    Ok(ledger.finish(model.valid()))
}

/// Mean one-shot accuracy over [`VALIDATION_DRAWS`] supports drawn from `emb` itself, the
/// other examples as queries; `None` when some class has fewer than two examples.
fn within_set_one_shot(emb: &Embeddings, num_classes: usize, seed: u64) -> Option<f64> {
    let mut sum = 0.0;
    for draw in 0..VALIDATION_DRAWS {
        let support = choose_support(&emb.labels, num_classes, 1, draw_seed(seed, draw)).ok()?;
        let queries: Vec<usize> = (0..emb.len()).filter(|i| !support.contains(i)).collect();
        if queries.is_empty() {
            return None;
        }
        let result = classify(&emb.subset(&support), &emb.subset(&queries), num_classes);
        sum += result.accuracy();
    }
    Some(sum / VALIDATION_DRAWS as f64)
}

/// `shots` examples of each class `0..num_classes`, picked by a seeded shuffle of each class's
/// examples: indices into `labels`, class after class.
pub fn choose_support(
    labels: &[usize],
    num_classes: usize,
    shots: usize,
    seed: u64,
) -> Result<Vec<usize>, TrainError> {
    if shots == 0 {
        return Err(TrainError::Config("--shots must be at least 1".into()));
    }
    let mut support = Vec::with_capacity(num_classes * shots);
    for class in 0..num_classes {
        let members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        if members.len() < shots {
            return Err(TrainError::Config(format!(
                "class {class} has {} example(s) to enrol from, fewer than --shots {shots}",
                members.len()
            )));
        }
        let order = epoch_order(members.len(), true, seed, class as u64);
        support.extend(order[..shots].iter().map(|&i| members[i]));
    }
    Ok(support)
}

/// Draw `d`'s seed: draw 0 uses `seed` itself, so one draw and the first of several agree.
fn draw_seed(seed: u64, draw: usize) -> u64 {
    if draw == 0 {
        seed
    } else {
        seed::derive(&[seed, draw as u64, 0x0de5])
    }
}

/// For each query, the label of the nearest enrolled example (squared Euclidean distance; the
/// first enrolled wins ties).
pub fn nearest_support(support: &Embeddings, queries: &Embeddings) -> Vec<usize> {
    (0..queries.len())
        .map(|q| {
            let query = queries.row(q);
            let mut best = (f32::INFINITY, 0);
            for s in 0..support.len() {
                let d: f32 = support
                    .row(s)
                    .iter()
                    .zip(query)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum();
                if d < best.0 {
                    best = (d, support.labels[s]);
                }
            }
            best.1
        })
        .collect()
}

fn classify(support: &Embeddings, queries: &Embeddings, num_classes: usize) -> ConfusionMatrix {
    let mut confusion = ConfusionMatrix::new(num_classes);
    confusion.add(&queries.labels, &nearest_support(support, queries));
    confusion
}

/// One support draw: which examples were enrolled, and how the queries fared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OneShotResult {
    pub seed: u64,
    /// Indices into the pool the support was drawn from, class after class.
    pub support: Vec<usize>,
    pub accuracy: f64,
    /// `counts[true][predicted]` over the queries.
    pub confusion: ConfusionMatrix,
}

/// One-shot (or few-shot) identification over several support draws.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OneShotReport {
    /// Enrolled examples per class.
    pub shots: usize,
    pub classes: usize,
    pub queries: usize,
    /// Every draw, the first with the seed asked for.
    pub draws: Vec<OneShotResult>,
    pub mean_accuracy: f64,
    /// Sample standard deviation over the draws (0 for one draw).
    pub std_accuracy: f64,
    pub min_accuracy: f64,
    pub max_accuracy: f64,
    /// The draws' confusion matrices added up.
    pub confusion: ConfusionMatrix,
}

impl OneShotReport {
    /// The draw with the seed asked for.
    pub fn first(&self) -> &OneShotResult {
        &self.draws[0]
    }
}

/// One-shot identification with one support draw: enrol `shots` examples of each class of
/// `pool` (picked with `seed`), embed `queries` and name each after its nearest enrolled
/// example. `pool` and `queries` hold the same classes (`0..k`); enrolled examples are never
/// queries, since they come from another set (the training split of the new classes, say).
#[allow(clippy::too_many_arguments)]
pub fn one_shot_accuracy(
    model: &Sequential,
    normalization: &Normalization,
    pool: &dyn Examples,
    queries: &dyn Examples,
    shots: usize,
    seed: u64,
    device: &Device,
) -> Result<OneShotResult, TrainError> {
    let report = one_shot_report(
        model,
        normalization,
        pool,
        queries,
        shots,
        1,
        seed,
        device,
        &mut |_, _| {},
    )?;
    Ok(report.draws.into_iter().next().expect("one draw"))
}

/// [`one_shot_accuracy`] over `draws` support draws (draw 0 with `seed`, the others with seeds
/// derived from it): the queries are embedded once, each support as it is drawn.
/// `progress(done, total)` is told after each draw.
#[allow(clippy::too_many_arguments)]
pub fn one_shot_report(
    model: &Sequential,
    normalization: &Normalization,
    pool: &dyn Examples,
    queries: &dyn Examples,
    shots: usize,
    draws: usize,
    seed: u64,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<OneShotReport, TrainError> {
    let classes = pool.num_classes();
    if queries.num_classes() != classes {
        return Err(TrainError::Config(format!(
            "the support pool has {classes} classes but the queries {}",
            queries.num_classes()
        )));
    }
    if draws == 0 {
        return Err(TrainError::Config("--draws must be at least 1".into()));
    }
    if queries.is_empty() {
        return Err(TrainError::Config("there are no query images".into()));
    }
    let pool_labels: Vec<usize> = (0..pool.len()).map(|i| pool.label(i)).collect();
    let all: Vec<usize> = (0..queries.len()).collect();
    let query_emb = embed_examples(model, queries, &all, normalization, device)?;
    let mut results = Vec::with_capacity(draws);
    let mut total = ConfusionMatrix::new(classes);
    for draw in 0..draws {
        let seed = draw_seed(seed, draw);
        let support = choose_support(&pool_labels, classes, shots, seed)?;
        let support_emb = embed_examples(model, pool, &support, normalization, device)?;
        let confusion = classify(&support_emb, &query_emb, classes);
        for (row, add) in total.counts.iter_mut().zip(&confusion.counts) {
            for (c, a) in row.iter_mut().zip(add) {
                *c += a;
            }
        }
        results.push(OneShotResult {
            seed,
            support,
            accuracy: confusion.accuracy(),
            confusion,
        });
        progress(draw + 1, draws);
    }
    let accuracies: Vec<f64> = results.iter().map(|r| r.accuracy).collect();
    let n = accuracies.len() as f64;
    let mean = accuracies.iter().sum::<f64>() / n;
    let std = if accuracies.len() > 1 {
        (accuracies.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    Ok(OneShotReport {
        shots,
        classes,
        queries: queries.len(),
        mean_accuracy: mean,
        std_accuracy: std,
        min_accuracy: accuracies.iter().copied().fold(f64::INFINITY, f64::min),
        max_accuracy: accuracies.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        draws: results,
        confusion: total,
    })
}

/// The Siamese network's verification head: `ŷ = σ(Σ_k w_k |f_i,k − f_j,k| + b)`, the
/// probability that two embeddings show the same identity.
#[derive(Module, Debug)]
pub struct SiameseHead {
    /// `w`, one weight per embedding number.
    pub weight: Param<Tensor<1>>,
    /// `b`, one number.
    pub bias: Param<Tensor<1>>,
}

impl SiameseHead {
    /// `w = 0`, `b = 0`: every pair starts at probability 1/2 (the loss is convex in `w`, `b`,
    /// so no symmetry needs breaking).
    pub fn new(dim: usize, device: &Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::zeros([dim], device)),
            bias: Param::from_tensor(Tensor::zeros([1], device)),
        }
    }

    /// `Σ_k w_k |f_i,k − f_j,k| + b` for each pair of rows of `f_i`, `f_j` `[n, D]`: `[n]`.
    pub fn logits(&self, f_i: Tensor<2>, f_j: Tensor<2>) -> Tensor<1> {
        let [n, d] = f_i.dims();
        let w = self.weight.val().reshape([d, 1]);
        let z: Tensor<2> = (f_i - f_j).abs().matmul(w) + self.bias.val().reshape([1, 1]);
        z.reshape([n])
    }

    /// The probabilities `[n]` that each pair is of one identity.
    pub fn forward(&self, f_i: Tensor<2>, f_j: Tensor<2>) -> Tensor<1> {
        sigmoid(self.logits(f_i, f_j))
    }

    /// Mean binary cross-entropy against `same` (1 for a pair of one identity, 0 otherwise),
    /// computed from the logits so confident pairs do not overflow.
    pub fn loss(&self, f_i: Tensor<2>, f_j: Tensor<2>, same: &[bool]) -> Tensor<1> {
        let logits = self.logits(f_i, f_j);
        let n = same.len();
        let device = logits.device();
        let targets: Vec<i64> = same.iter().map(|&s| i64::from(s)).collect();
        let targets = Tensor::<3, Int>::from_data(TensorData::new(targets, [n, 1, 1]), &device);
        binary_cross_entropy(logits.reshape([n, 1, 1, 1]), targets)
    }
}

/// One optimizer step of the head on pairs `(f_i, f_j)` labelled `same`: returns the updated
/// head and the loss before the step. The head must live on an autodiff device; gradients
/// reach only its parameters (embeddings from a network are used as they are).
pub fn siamese_step(
    head: SiameseHead,
    optimizer: &mut ModuleOptimizer,
    lr: f64,
    f_i: Tensor<2>,
    f_j: Tensor<2>,
    same: &[bool],
) -> (SiameseHead, f64) {
    let loss = head.loss(f_i.detach(), f_j.detach(), same);
    let value = loss.clone().into_scalar::<f64>();
    let grads = GradientsParams::from_grads(loss.backward(), &head);
    (optimizer.step(lr, head, grads), value)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use burn::optim::AdamConfig;
    use convnet_data::ImageSet;

    use super::*;
    use crate::trainer::Quiet;

    /// Deterministic numbers in `[0, 1)` (splitmix64), so the tests need no RNG crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() * n as f64) as usize
        }

        /// `n` rows of `d` numbers in `[-1, 1)`.
        fn rows(&mut self, n: usize, d: usize) -> Vec<Vec<f32>> {
            (0..n)
                .map(|_| (0..d).map(|_| (2.0 * self.next() - 1.0) as f32).collect())
                .collect()
        }
    }

    fn device() -> Device {
        Device::flex()
    }

    fn tensor(rows: &[Vec<f32>], device: &Device) -> Tensor<2> {
        let (n, d) = (rows.len(), rows[0].len());
        Tensor::from_data(TensorData::new(rows.concat(), [n, d]), device)
    }

    fn scalar(t: Tensor<1>) -> f64 {
        t.into_scalar::<f64>()
    }

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol * (1.0 + b.abs()), "{a} vs {b}");
    }

    /// Squared Euclidean distance in f64, the plain way.
    fn sq(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
            .sum()
    }

    fn naive_distances(rows: &[Vec<f32>]) -> Vec<Vec<f32>> {
        rows.iter()
            .map(|a| rows.iter().map(|b| sq(a, b) as f32).collect())
            .collect()
    }

    /// Rows scaled to unit length, as the embedding network's output is.
    fn unit(rows: Vec<Vec<f32>>) -> Vec<Vec<f32>> {
        rows.into_iter()
            .map(|r| {
                let norm = r.iter().map(|v| v * v).sum::<f32>().sqrt();
                r.into_iter().map(|v| v / norm).collect()
            })
            .collect()
    }

    fn labels(rng: &mut Rng, n: usize, classes: usize) -> Vec<usize> {
        (0..n).map(|_| rng.below(classes)).collect()
    }

    /// Every valid triplet `(a, p, n)` of a batch.
    fn all_triplets(labels: &[usize]) -> Vec<(usize, usize, usize)> {
        let n = labels.len();
        let mut out = Vec::new();
        for a in 0..n {
            for p in 0..n {
                for q in 0..n {
                    if p != a && labels[p] == labels[a] && labels[q] != labels[a] {
                        out.push((a, p, q));
                    }
                }
            }
        }
        out
    }

    /// Batch-hard by brute force: per anchor, the valid triplet with the largest
    /// `d(a, p) − d(a, n)` (the max over `p` and the min over `n` at once).
    fn brute_batch_hard(dist: &[Vec<f32>], labels: &[usize]) -> Vec<(usize, usize, usize)> {
        let all = all_triplets(labels);
        (0..labels.len())
            .filter_map(|a| {
                all.iter().filter(|t| t.0 == a).copied().max_by(|x, y| {
                    let gap = |&(a, p, q): &(usize, usize, usize)| dist[a][p] - dist[a][q];
                    gap(x).total_cmp(&gap(y))
                })
            })
            .collect()
    }

    /// Semi-hard by brute force: per (anchor, positive), the negatives sorted by distance; the
    /// first one beyond the positive, else the last.
    fn brute_semi_hard(dist: &[Vec<f32>], labels: &[usize]) -> Vec<(usize, usize, usize)> {
        let all = all_triplets(labels);
        let mut pairs: Vec<(usize, usize)> = all.iter().map(|&(a, p, _)| (a, p)).collect();
        pairs.dedup();
        pairs
            .into_iter()
            .map(|(a, p)| {
                let mut negatives: Vec<usize> = all
                    .iter()
                    .filter(|t| t.0 == a && t.1 == p)
                    .map(|t| t.2)
                    .collect();
                negatives.sort_by(|&x, &y| dist[a][x].total_cmp(&dist[a][y]));
                let n = negatives
                    .iter()
                    .copied()
                    .find(|&q| dist[a][q] > dist[a][p])
                    .unwrap_or(*negatives.last().unwrap());
                (a, p, n)
            })
            .collect()
    }

    fn reference_loss(rows: &[Vec<f32>], triplets: &[(usize, usize, usize)], margin: f64) -> f64 {
        triplets
            .iter()
            .map(|&(a, p, q)| (sq(&rows[a], &rows[p]) - sq(&rows[a], &rows[q]) + margin).max(0.0))
            .sum::<f64>()
            / triplets.len() as f64
    }

    #[test]
    fn triplet_loss_matches_a_scalar_reference() {
        let d = device();
        let mut rng = Rng(1);
        for margin in [0.0, 0.2, 1.0] {
            let (a, p, n) = (rng.rows(9, 5), rng.rows(9, 5), rng.rows(9, 5));
            let want = (0..9)
                .map(|i| (sq(&a[i], &p[i]) - sq(&a[i], &n[i]) + margin).max(0.0))
                .sum::<f64>()
                / 9.0;
            let got = scalar(triplet_loss(
                tensor(&a, &d),
                tensor(&p, &d),
                tensor(&n, &d),
                margin,
            ));
            close(got, want, 1e-5);
        }
        // A satisfied triplet costs nothing; a violated one costs its violation.
        let t = |v: &[f32]| tensor(&[v.to_vec()], &d);
        let easy = triplet_loss(t(&[0.0, 0.0]), t(&[0.1, 0.0]), t(&[1.0, 0.0]), 0.2);
        close(scalar(easy), 0.0, 1e-7);
        let hard = triplet_loss(t(&[0.0, 0.0]), t(&[1.0, 0.0]), t(&[0.5, 0.0]), 0.2);
        close(scalar(hard), 1.0 - 0.25 + 0.2, 1e-6);
    }

    #[test]
    fn pairwise_distances_match_the_plain_sums_and_are_never_negative() {
        let d = device();
        let mut rng = Rng(2);
        let rows = unit(rng.rows(12, 8));
        let got = tensor_values(pairwise_sq_distances(tensor(&rows, &d))).unwrap();
        let want = naive_distances(&rows);
        for i in 0..12 {
            assert_eq!(got[i * 12 + i], 0.0);
            for j in 0..12 {
                close(f64::from(got[i * 12 + j]), f64::from(want[i][j]), 1e-5);
            }
        }
        // Identical large rows: the Gram form cancels to rounding noise, clamped at 0.
        let same = vec![vec![1000.0f32, -999.9, 1234.5]; 4];
        let got = tensor_values(pairwise_sq_distances(tensor(&same, &d))).unwrap();
        assert!(got.iter().all(|&v| v >= 0.0), "{got:?}");
    }

    #[test]
    fn mining_agrees_with_brute_force() {
        let mut rng = Rng(3);
        for trial in 0..20 {
            let n = 6 + rng.below(10);
            let classes = 2 + trial % 4;
            let rows = rng.rows(n, 3);
            let dist = naive_distances(&rows);
            // Some batches leave a class with one example (no positive) or one class only.
            let labels = if trial == 0 {
                vec![0; n]
            } else {
                labels(&mut rng, n, classes)
            };
            assert_eq!(
                mine_batch_hard(&dist, &labels),
                brute_batch_hard(&dist, &labels),
                "{labels:?}"
            );
            assert_eq!(
                mine_semi_hard(&dist, &labels),
                brute_semi_hard(&dist, &labels),
                "{labels:?}"
            );
        }
        // Anchors alone in their class, or in a batch of one class, give no triplet.
        let dist = naive_distances(&Rng(4).rows(3, 2));
        assert!(mine_batch_hard(&dist, &[0, 1, 1]).iter().all(|t| t.0 != 0));
        assert!(mine_semi_hard(&dist, &[2, 2, 2]).is_empty());
    }

    #[test]
    fn semi_hard_prefers_the_nearest_negative_beyond_the_positive() {
        // Distances from anchor 0: positive 1 at 1.0; negatives 2, 3, 4 at 0.5, 1.5, 3.0.
        let mut dist = vec![vec![0.0f32; 5]; 5];
        for (j, d) in [(1, 1.0), (2, 0.5), (3, 1.5), (4, 3.0)] {
            dist[0][j] = d;
            dist[j][0] = d;
        }
        let labels = [0, 0, 1, 1, 1];
        let mined = mine_semi_hard(&dist, &labels);
        assert!(mined.contains(&(0, 1, 3)), "{mined:?}");
        // With the positive beyond every negative: the farthest negative.
        dist[0][1] = 5.0;
        assert!(mine_semi_hard(&dist, &labels).contains(&(0, 1, 4)));
        // Batch-hard takes the nearest negative whatever the positive.
        assert!(mine_batch_hard(&dist, &labels).contains(&(0, 1, 2)));
    }

    #[test]
    fn mined_losses_match_a_scalar_reference() {
        let d = device();
        let mut rng = Rng(5);
        for trial in 0..6 {
            let rows = unit(rng.rows(14, 6));
            let labels = labels(&mut rng, 14, 3 + trial % 2);
            let dist = naive_distances(&rows);
            for (mining, brute) in [
                (Mining::BatchHard, brute_batch_hard as fn(&_, &_) -> _),
                (Mining::SemiHard, brute_semi_hard),
            ] {
                let triplets = brute(&dist, &labels);
                let margin = 0.2;
                let got = mined_triplet_loss(tensor(&rows, &d), &labels, margin, mining).unwrap();
                assert_eq!(got.triplets, triplets.len());
                close(
                    scalar(got.loss),
                    reference_loss(&rows, &triplets, margin),
                    1e-4,
                );
                let active = triplets
                    .iter()
                    .filter(|&&(a, p, q)| {
                        sq(&rows[a], &rows[p]) - sq(&rows[a], &rows[q]) + margin > 0.0
                    })
                    .count();
                assert_eq!(got.active, active, "{mining:?}");
            }
        }
        let named =
            batch_hard_triplet_loss(tensor(&unit(rng.rows(6, 4)), &d), &[0, 0, 1, 1, 2, 2], 0.2);
        assert_eq!(named.unwrap().triplets, 6);
        let named =
            semi_hard_triplet_loss(tensor(&unit(rng.rows(6, 4)), &d), &[0, 0, 1, 1, 2, 2], 0.2);
        assert_eq!(named.unwrap().triplets, 6);
        // No triplet: a zero loss that still backpropagates.
        let none = mined_triplet_loss(
            tensor(&rng.rows(3, 2), &d),
            &[1, 1, 1],
            0.2,
            Mining::BatchHard,
        )
        .unwrap();
        assert_eq!((none.triplets, none.active_fraction()), (0, 0.0));
        assert_eq!(scalar(none.loss), 0.0);
        assert!(
            mined_triplet_loss(tensor(&rng.rows(3, 2), &d), &[1, 1], 0.2, Mining::SemiHard)
                .is_err()
        );
    }

    #[test]
    fn siamese_head_follows_its_formula_and_learns_to_verify() {
        let d = device();
        let mut rng = Rng(6);
        let (fi, fj) = (rng.rows(5, 4), rng.rows(5, 4));
        let mut head = SiameseHead::new(4, &d);
        let w = [0.5f32, -1.0, 2.0, 0.25];
        head.weight = Param::from_tensor(Tensor::from_data(TensorData::new(w.to_vec(), [4]), &d));
        head.bias = Param::from_tensor(Tensor::from_data(TensorData::new(vec![-0.3f32], [1]), &d));
        let got = tensor_values(head.forward(tensor(&fi, &d), tensor(&fj, &d))).unwrap();
        let same = [true, false, true, true, false];
        let mut bce = 0.0;
        for i in 0..5 {
            let z: f64 = (0..4)
                .map(|k| f64::from(w[k]) * f64::from((fi[i][k] - fj[i][k]).abs()))
                .sum::<f64>()
                - 0.3;
            let p = 1.0 / (1.0 + (-z).exp());
            close(f64::from(got[i]), p, 1e-5);
            bce -= if same[i] { p.ln() } else { (1.0 - p).ln() };
        }
        let loss = head.loss(tensor(&fi, &d), tensor(&fj, &d), &same);
        close(scalar(loss), bce / 5.0, 1e-5);

        // Pairs of one identity differ by little, others by a lot: the head learns it.
        let train = d.clone().autodiff();
        let mut head = SiameseHead::new(4, &train);
        let mut optimizer = AdamConfig::new().init();
        let (mut a, mut b, mut same) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..32 {
            let x = rng.rows(1, 4).remove(0);
            let scale = if i % 2 == 0 { 0.05 } else { 1.0 };
            let y: Vec<f32> = x
                .iter()
                .map(|v| v + scale * (2.0 * rng.next() as f32 - 1.0))
                .collect();
            a.push(x);
            b.push(y);
            same.push(i % 2 == 0);
        }
        let mut losses = Vec::new();
        for _ in 0..60 {
            let (next, loss) = siamese_step(
                head,
                &mut optimizer,
                0.1,
                tensor(&a, &train),
                tensor(&b, &train),
                &same,
            );
            head = next;
            losses.push(loss);
        }
        assert!(losses[59] < 0.5 * losses[0], "{losses:?}");
        let p = tensor_values(head.forward(tensor(&a, &train), tensor(&b, &train))).unwrap();
        let right = p
            .iter()
            .zip(&same)
            .filter(|&(&p, &s)| (p > 0.5) == s)
            .count();
        assert!(right >= 30, "{p:?}");
    }

    /// A small conv net's spec on `[1, 12, 12]` images, as a classifier (its top is cut off).
    fn tiny_backbone() -> ModelSpec {
        ModelSpec::parse(
            r#"
name = "tiny"
input = [1, 12, 12]
[[layers]]
type = "conv2d"
filters = 8
kernel = 3
padding = "same"
activation = "relu"
[[layers]]
type = "max_pool2d"
pool = 2
[[layers]]
type = "flatten"
[[layers]]
type = "dense"
units = 10
"#,
            "tiny.toml",
        )
        .unwrap()
    }

    /// Ten classes of 12x12 images: a bright bar whose row (classes 0-4) or column (5-9) says
    /// the class, jittered by a pixel, on faint noise; `per_class` of each, class after class.
    fn bars(per_class: usize, classes: &[usize], seed: u64) -> ImageSet {
        let mut rng = Rng(seed);
        let (mut images, mut labels) = (Vec::new(), Vec::new());
        for (label, &k) in classes.iter().enumerate() {
            for _ in 0..per_class {
                let at = 1 + 2 * (k % 5) + rng.below(2);
                for y in 0..12 {
                    for x in 0..12 {
                        let on = if k < 5 { y == at } else { x == at };
                        images.push(if on {
                            200 + rng.below(56) as u8
                        } else {
                            rng.below(50) as u8
                        });
                    }
                }
                labels.push(label);
            }
        }
        let names = classes.iter().map(|k| format!("bar {k}")).collect();
        ImageSet::new(images, labels, [1, 12, 12], names).unwrap()
    }

    #[test]
    fn the_embedding_network_is_the_backbone_features_and_a_unit_vector() {
        let d = device();
        let spec = embedding_spec(&tiny_backbone(), 5).unwrap();
        assert_eq!(spec.name, "tiny-embedding");
        let names: Vec<_> = spec.layers.iter().map(|l| l.name.clone()).collect();
        assert_eq!(names.last().unwrap().as_deref(), Some("embed.fc"));
        let model = spec.build(&d).unwrap();
        let set = bars(2, &[0, 1, 2], 7);
        let all: Vec<usize> = (0..set.len()).collect();
        let emb = embed_examples(&model, &set, &all, &set.normalization(), &d).unwrap();
        assert_eq!((emb.len(), emb.dim), (6, 5));
        for i in 0..6 {
            let norm: f32 = emb.row(i).iter().map(|v| v * v).sum();
            close(f64::from(norm), 1.0, 1e-5);
        }
        assert!(embedding_spec(&tiny_backbone(), 0).is_err());
    }

    #[test]
    fn gradients_flow_through_the_mined_loss() {
        let train = device().autodiff();
        let spec = embedding_spec(&tiny_backbone(), 8).unwrap();
        let set = bars(6, &[0, 3, 6, 9], 11);
        let norm = set.normalization();
        let all: Vec<usize> = (0..set.len()).collect();
        let batch = Batch::build(&set, &all, &norm, None, 0, 0);
        // Unit vectors are at most 2 apart, so with a margin of 3 no initial weights (drawn from
        // the device RNG that tests running in parallel share) can leave the loss at 0 and
        // nothing to descend, as the usual 0.2 did for some (seeds 0-39 checked).
        for mining in [Mining::SemiHard, Mining::BatchHard] {
            let mut model = spec.build(&train).unwrap();
            let mut optimizer = AdamConfig::new().init();
            let mut losses = Vec::new();
            for _ in 0..15 {
                let emb = embed(&model, batch.to_features(&train), Mode::Train).unwrap();
                let mined = mined_triplet_loss(emb, &batch.labels, 3.0, mining).unwrap();
                losses.push(mined.loss.clone().into_scalar::<f64>());
                let grads = GradientsParams::from_grads(mined.loss.backward(), &model);
                model = optimizer.step(3e-3, model, grads);
            }
            assert!(losses[14] < losses[0], "{mining:?}: {losses:?}");
        }
    }

    #[test]
    fn balanced_batches_hold_p_classes_of_k_images() {
        // Classes 0-3 with 10, 3, 1 and 6 examples: class 2 cannot give a positive.
        let mut labels = Vec::new();
        for (c, count) in [(0, 10), (1, 3), (2, 1), (3, 6)] {
            labels.extend(std::iter::repeat_n(c, count));
        }
        let batches = balanced_batches(&labels, 3, 4, 5, 9, 1).unwrap();
        assert_eq!(batches.len(), 5);
        for batch in &batches {
            assert_eq!(batch.len(), 12);
            let classes: Vec<usize> = batch.chunks(4).map(|g| labels[g[0]]).collect();
            for (group, &c) in batch.chunks(4).zip(&classes) {
                assert!(group.iter().all(|&i| labels[i] == c));
            }
            let mut distinct = classes.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), 3, "{classes:?}");
            assert!(!classes.contains(&2));
            // Class 0 has 10 examples: 4 different ones.
            for group in batch.chunks(4).filter(|g| labels[g[0]] == 0) {
                let mut g = group.to_vec();
                g.sort_unstable();
                g.dedup();
                assert_eq!(g.len(), 4);
            }
        }
        assert_eq!(balanced_batches(&labels, 3, 4, 5, 9, 1).unwrap(), batches);
        assert_ne!(balanced_batches(&labels, 3, 4, 5, 9, 2).unwrap(), batches);
        let err = balanced_batches(&labels, 4, 4, 1, 0, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("the training set has 3"), "{err}");
        assert!(balanced_batches(&labels, 3, 1, 1, 0, 1).is_err());
    }

    #[test]
    fn supports_are_seeded_and_queries_go_to_the_nearest_enrolled_example() {
        let labels = [0, 1, 2, 0, 1, 2, 0, 1, 2, 2];
        let a = choose_support(&labels, 3, 1, 4).unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(a.iter().map(|&i| labels[i]).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(choose_support(&labels, 3, 1, 4).unwrap(), a);
        let draws: Vec<Vec<usize>> = (0..8)
            .map(|s| choose_support(&labels, 3, 1, s).unwrap())
            .collect();
        assert!(draws.iter().any(|d| *d != a), "{draws:?}");
        let two = choose_support(&labels, 3, 2, 0).unwrap();
        assert_eq!(two.len(), 6);
        assert!(choose_support(&labels, 3, 4, 0).is_err());
        assert!(choose_support(&labels, 3, 0, 0).is_err());

        let support = Embeddings {
            dim: 2,
            values: vec![0.0, 0.0, 1.0, 0.0, 0.0, 1.0],
            labels: vec![0, 1, 2],
        };
        let queries = Embeddings {
            dim: 2,
            values: vec![0.1, 0.1, 0.9, 0.2, 0.2, 0.7, 0.6, 0.1],
            labels: vec![0, 1, 2, 0],
        };
        assert_eq!(nearest_support(&support, &queries), [0, 1, 2, 1]);
        let confusion = classify(&support, &queries, 3);
        close(confusion.accuracy(), 0.75, 1e-12);
        assert_eq!(confusion.counts[0], [1, 1, 0]);
    }

    #[test]
    fn config_names_and_checks() {
        assert_eq!(Mining::parse("semi-hard").unwrap(), Mining::SemiHard);
        assert_eq!(Mining::parse("batch_hard").unwrap(), Mining::BatchHard);
        assert!(
            Mining::parse("easy")
                .unwrap_err()
                .to_string()
                .contains("semi-hard")
        );
        let config = EmbeddingConfig::new("lenet5", "fashion-mnist");
        assert_eq!(
            (config.dim, config.margin, config.batch_size()),
            (64, 0.2, 112)
        );
        assert_eq!(config.train.batch_size, 112);
        config.validate().unwrap();
        for bad in [
            EmbeddingConfig {
                margin: 0.0,
                ..config.clone()
            },
            EmbeddingConfig {
                margin: f64::NAN,
                ..config.clone()
            },
            EmbeddingConfig {
                dim: 0,
                ..config.clone()
            },
            EmbeddingConfig {
                classes_per_batch: 1,
                ..config.clone()
            },
            EmbeddingConfig {
                images_per_class: 1,
                ..config.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        let tmp = tempfile::tempdir().unwrap();
        let err = EmbeddingConfig::load(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("not an embedding run"), "{err}");
        config.save(tmp.path()).unwrap();
        assert_eq!(EmbeddingConfig::load(tmp.path()).unwrap(), config);
    }

    fn toy_data(per_class: usize) -> TrainData {
        let set = bars(per_class, &[0, 1, 2, 3, 4, 5, 6], 21);
        let (train, val) = set.split(0.2, 0).unwrap();
        TrainData {
            classes: set.classes.clone(),
            normalization: train.normalization(),
            train: Arc::new(train),
            validation: Some(Arc::new(val)),
            augment: None,
        }
    }

    fn toy_config(epochs: usize, mining: Mining) -> EmbeddingConfig {
        let mut config = EmbeddingConfig::new("tiny.toml", "bars");
        config.train.epochs = epochs;
        config.mining = mining;
        config.dim = 16;
        config.classes_per_batch = 7;
        config.images_per_class = 4;
        config.train.optimizer.lr = 3e-3;
        config
    }

    #[test]
    fn a_trained_embedding_identifies_new_classes_from_one_example() {
        let d = device();
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run");
        let data = toy_data(40);
        let config = toy_config(2, Mining::SemiHard);
        let out = train_embedding(&tiny_backbone(), &data, &config, &run, &d, &mut Quiet).unwrap();
        assert_eq!(out.history.len(), 2);
        assert!(out.history.iter().all(|r| r.val_accuracy.is_some()));
        assert!(run.join(EMBEDDING_FILE).is_file());
        assert!(run.join("history.csv").is_file());
        let stored = EmbeddingConfig::load(&run).unwrap();
        assert_eq!((stored.dim, stored.mining), (16, Mining::SemiHard));

        // The checkpoint one-shot uses gives the model the run ended with or its best epoch.
        let path = embedding_checkpoint(&run).unwrap();
        assert_eq!(path.file_name().unwrap(), BEST);
        let model = Checkpoint::load(&path).unwrap().model(&path, &d).unwrap();

        // Bars in columns the network never saw as classes: 3 classes, chance is 1/3.
        let pool = bars(10, &[7, 8, 9], 31);
        let queries = bars(20, &[7, 8, 9], 32);
        let mut calls = 0;
        let report = one_shot_report(
            &model,
            &data.normalization,
            &pool,
            &queries,
            1,
            5,
            3,
            &d,
            &mut |_, _| calls += 1,
        )
        .unwrap();
        assert_eq!(calls, 5);
        assert_eq!(
            (report.draws.len(), report.classes, report.queries),
            (5, 3, 60)
        );
        assert_eq!(report.confusion.total(), 300);
        assert!(report.mean_accuracy > 0.6, "{report:?}");
        let mean = report.draws.iter().map(|r| r.accuracy).sum::<f64>() / 5.0;
        close(report.mean_accuracy, mean, 1e-12);
        assert!(report.min_accuracy <= mean && mean <= report.max_accuracy);
        // One draw is the first of several with the same seed.
        let single =
            one_shot_accuracy(&model, &data.normalization, &pool, &queries, 1, 3, &d).unwrap();
        assert_eq!(&single, report.first());
        assert_eq!(single.support.len(), 3);
        let other = bars(5, &[7, 8], 33);
        assert!(
            one_shot_accuracy(&model, &data.normalization, &other, &queries, 1, 3, &d).is_err()
        );
    }

    #[test]
    fn a_loss_that_stops_being_a_number_stops_the_run() {
        for seed in [7, 38, 0] {
            nan_run(seed);
        }
    }

    /// Seeds 7 and 38 draw initial weights that already separate the bars at the usual margin.
    fn nan_run(seed: u64) {
        let tmp = tempfile::tempdir().unwrap();
        let mut config = toy_config(3, Mining::BatchHard);
        // Adam moves every weight by about the rate: 1e30 overflows the second forward pass.
        config.train.optimizer.lr = 1e30;
        // Unit vectors are at most 2 apart, so this margin keeps every triplet's loss and
        // gradient nonzero: with the usual one, some initial weights already separate the
        // bars, the loss is 0, Adam moves nothing and the run ends cleanly (an initialisation
        // drawn from the shared device RNG differs when tests run in parallel).
        config.margin = 3.0;
        config.train.seed = seed;
        let err = train_embedding(
            &tiny_backbone(),
            &toy_data(12),
            &config,
            &tmp.path().join("run"),
            &device(),
            &mut Quiet,
        )
        .unwrap_err();
        assert!(matches!(err, TrainError::NonFinite { .. }), "{err}");
    }
}
