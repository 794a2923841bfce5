//! Checkpoint files: everything needed to evaluate a model or resume its training, in one file
//! (a run writes them through [`commit`](crate::commit), with its history, all at once).
//! Opening one checks its whole contents — the metadata when read, the weights and the
//! model's inputs and outputs when loaded — so every reader refuses the same bad files.
//!
//! Layout (little-endian): the magic `CNVNTCK1`; three sections, each a `u64` length then its
//! bytes — JSON metadata (architecture as a spec, classes, normalisation, progress, history),
//! the model's tensors (burnpack), the optimizer state (Burn's record bytes; empty when absent);
//! then a CRC-32 of everything before it, so truncated or damaged files are refused rather
//! than half-loaded.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use convnet_data::Normalization;
use convnet_layers::{ModelSpec, Sequential};
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::error::TrainError;
use crate::history::EpochRecord;
use crate::weights::{self, LoadError};

const MAGIC: &[u8; 8] = b"CNVNTCK1";
pub const FORMAT_VERSION: u32 = 1;

/// The largest magnitude a stored weight may have. Trained weights are many orders below it;
/// values near `f32::MAX` (3.4e38) overflow to infinity in the first multiply-add, so a
/// checkpoint holding them answers nonsense rather than failing.
pub const MAX_WEIGHT: f32 = 1e30;

/// The most optimizer steps a checkpoint may claim: resuming replays the learning-rate
/// schedule step by step up to it.
pub const MAX_GLOBAL_STEP: usize = 100_000_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    pub format: u32,
    /// The architecture, as a model spec file.
    pub spec: String,
    pub classes: Vec<String>,
    pub normalization: NormalizationMeta,
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub global_step: usize,
    /// Written inside an epoch (`--save-every`): the steps of epoch `epoch + 1` taken so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps_into_epoch: Option<usize>,
    pub best_val_accuracy: Option<f64>,
    pub best_epoch: Option<usize>,
    pub config: TrainConfig,
    pub history: Vec<EpochRecord>,
}

impl CheckpointMeta {
    /// Whether the metadata is whole and agrees with itself: valid training settings, named
    /// and distinct classes, a usable normalisation, progress the history accounts for, and a
    /// best epoch that is one of the completed epochs with the score its history row shows.
    pub fn validate(&self) -> Result<(), String> {
        self.config
            .validate()
            .map_err(|e| format!("its training settings are invalid: {e}"))?;
        check_class_names(&self.classes)?;
        check_normalization(&self.normalization)?;
        self.check_progress()?;
        self.check_best()
    }

    fn check_progress(&self) -> Result<(), String> {
        let (epoch, epochs) = (self.epoch, self.config.epochs);
        if epoch > epochs {
            return Err(format!(
                "it claims {epoch} completed epochs of a run of {epochs}"
            ));
        }
        if self.history.len() != epoch {
            return Err(format!(
                "it has {} history rows for {epoch} completed epochs",
                self.history.len()
            ));
        }
        if let Some((i, row)) = self
            .history
            .iter()
            .enumerate()
            .find(|(i, row)| row.epoch != i + 1)
        {
            return Err(format!("history row {} is for epoch {}", i + 1, row.epoch));
        }
        if self.global_step > MAX_GLOBAL_STEP {
            return Err(format!(
                "global step {} is above the limit of {MAX_GLOBAL_STEP}",
                self.global_step
            ));
        }
        // Every epoch, and every step counted into the current one, took an optimizer step.
        let into = self.steps_into_epoch.unwrap_or(0);
        if self.steps_into_epoch == Some(0) || self.global_step < epoch.saturating_add(into) {
            return Err(format!(
                "{} optimizer steps cannot cover {epoch} epochs and {into} steps into the next",
                self.global_step
            ));
        }
        Ok(())
    }

    fn check_best(&self) -> Result<(), String> {
        let Some(best) = self.best_epoch else {
            return match self.best_val_accuracy {
                Some(score) => Err(format!("best score {score} without a best epoch")),
                None => Ok(()),
            };
        };
        if best == 0 || best > self.epoch {
            return Err(format!(
                "best epoch {best} is not one of its {} completed epochs",
                self.epoch
            ));
        }
        let Some(score) = self.best_val_accuracy else {
            return Ok(());
        };
        let row = &self.history[best - 1];
        let scores = [row.val_accuracy, row.val_mean_iou, row.val_map50];
        if !scores.contains(&Some(score)) {
            return Err(format!(
                "best score {score} is not the validation score of epoch {best} in its history"
            ));
        }
        Ok(())
    }
}

fn check_class_names(classes: &[String]) -> Result<(), String> {
    if classes.is_empty() {
        return Err("it names no classes".into());
    }
    if let Some(i) = classes.iter().position(|c| c.trim().is_empty()) {
        return Err(format!("class {i} has an empty name"));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(c) = classes.iter().find(|c| !seen.insert(c.as_str())) {
        return Err(format!("class '{c}' is named twice"));
    }
    Ok(())
}

fn check_normalization(n: &NormalizationMeta) -> Result<(), String> {
    if n.mean.is_empty() || n.mean.len() != n.std.len() {
        return Err(format!(
            "its normalisation has {} means and {} standard deviations",
            n.mean.len(),
            n.std.len()
        ));
    }
    if let Some(m) = n.mean.iter().find(|m| !m.is_finite()) {
        return Err(format!("its normalisation mean {m} is not finite"));
    }
    if let Some(s) = n.std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        return Err(format!(
            "its normalisation standard deviation {s} is not a positive number"
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NormalizationMeta {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl From<&Normalization> for NormalizationMeta {
    fn from(n: &Normalization) -> Self {
        Self {
            mean: n.mean.clone(),
            std: n.std.clone(),
        }
    }
}

impl From<&NormalizationMeta> for Normalization {
    fn from(n: &NormalizationMeta) -> Self {
        Normalization {
            mean: n.mean.clone(),
            std: n.std.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub meta: CheckpointMeta,
    pub model: Vec<u8>,
    pub optimizer: Option<Vec<u8>>,
}

fn section(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

impl Checkpoint {
    /// A checkpoint of `model` (built from `spec`) before any training: epoch 0, no history, no
    /// optimizer state. What tools and tests hand to anything that opens checkpoints when the
    /// weights' values do not matter.
    pub fn untrained(
        spec: &ModelSpec,
        model: &Sequential,
        classes: Vec<String>,
        normalization: NormalizationMeta,
    ) -> Result<Self, TrainError> {
        Ok(Self {
            meta: CheckpointMeta {
                format: FORMAT_VERSION,
                spec: spec.to_toml()?,
                classes,
                normalization,
                epoch: 0,
                global_step: 0,
                steps_into_epoch: None,
                best_val_accuracy: None,
                best_epoch: None,
                config: TrainConfig::new(&spec.name, "none"),
                history: Vec::new(),
            },
            model: weights::to_bytes(model).map_err(TrainError::Config)?,
            optimizer: None,
        })
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        let meta = serde_json::to_vec(&self.meta).map_err(|e| e.to_string())?;
        let optimizer = self.optimizer.as_deref().unwrap_or(&[]);
        let mut out = Vec::with_capacity(8 + 32 + meta.len() + self.model.len() + optimizer.len());
        out.extend_from_slice(MAGIC);
        section(&mut out, &meta);
        section(&mut out, &self.model);
        section(&mut out, optimizer);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, TrainError> {
        let bad = |message: String| TrainError::Checkpoint {
            path: path.to_path_buf(),
            message,
        };
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(bad("not a convnet checkpoint (wrong magic bytes)".into()));
        }
        let mut at = MAGIC.len();
        let mut sections = Vec::with_capacity(3);
        for name in ["metadata", "model", "optimizer"] {
            let len_end = at + 8;
            let len = bytes
                .get(at..len_end)
                .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()) as usize)
                .ok_or_else(|| {
                    bad(format!(
                        "truncated: the file ends before its {name} section"
                    ))
                })?;
            let end = len_end
                .checked_add(len)
                .filter(|&e| e <= bytes.len())
                .ok_or_else(|| {
                    bad(format!(
                        "truncated: the {name} section needs {len} bytes, the file has {} left",
                        bytes.len().saturating_sub(len_end)
                    ))
                })?;
            sections.push(&bytes[len_end..end]);
            at = end;
        }
        let stored = bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()))
            .ok_or_else(|| bad("truncated: the checksum is missing".into()))?;
        if at + 4 != bytes.len() {
            return Err(bad(format!(
                "{} unexpected bytes after the checksum",
                bytes.len() - at - 4
            )));
        }
        if crc32fast::hash(&bytes[..at]) != stored {
            return Err(bad(
                "corrupt: the checksum does not match the contents".into()
            ));
        }
        let meta: CheckpointMeta = serde_json::from_slice(sections[0])
            .map_err(|e| bad(format!("unreadable metadata: {e}")))?;
        if meta.format != FORMAT_VERSION {
            return Err(bad(format!(
                "checkpoint format {} is not supported (this convnet reads format {FORMAT_VERSION})",
                meta.format
            )));
        }
        meta.validate().map_err(bad)?;
        Ok(Self {
            meta,
            model: sections[1].to_vec(),
            optimizer: (!sections[2].is_empty()).then(|| sections[2].to_vec()),
        })
    }

    /// Whether `path` is a file that starts like a convnet checkpoint (or a run directory).
    pub fn is_checkpoint(path: &Path) -> bool {
        use std::io::Read;
        let Ok(path) = Self::resolve(path) else {
            return false;
        };
        let mut head = [0u8; 8];
        std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut head))
            .is_ok_and(|()| &head == MAGIC)
    }

    pub fn load(path: &Path) -> Result<Self, TrainError> {
        let bytes = std::fs::read(path).map_err(|source| TrainError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes, path)
    }

    /// `PATH` itself when it is a file; for a run directory, its best checkpoint (else its last).
    pub fn resolve(path: &Path) -> Result<PathBuf, TrainError> {
        if path.is_dir() {
            let dir = path.join(CHECKPOINT_DIR);
            for name in [BEST, LAST] {
                if dir.join(name).is_file() {
                    return Ok(dir.join(name));
                }
            }
            return Err(TrainError::Checkpoint {
                path: path.to_path_buf(),
                message: format!(
                    "no checkpoint in this directory (looked for {CHECKPOINT_DIR}/{BEST} and {CHECKPOINT_DIR}/{LAST})"
                ),
            });
        }
        if !path.exists() {
            return Err(TrainError::Checkpoint {
                path: path.to_path_buf(),
                message: "no such file or directory".into(),
            });
        }
        Ok(path.to_path_buf())
    }

    pub fn spec(&self, path: &Path) -> Result<ModelSpec, TrainError> {
        let mut spec =
            ModelSpec::parse(&self.meta.spec, &format!("{} (model spec)", path.display()))?;
        spec.source = Some(path.display().to_string());
        Ok(spec)
    }

    /// Rebuilds the network from the stored spec and loads its weights.
    pub fn model(&self, path: &Path, device: &Device) -> Result<Sequential, TrainError> {
        let mut model = self.spec(path)?.build(device)?;
        self.load_into(&mut model, path)?;
        Ok(model)
    }

    /// Loads the stored weights into an existing network (resuming, or a model built elsewhere);
    /// a network of another architecture is refused with the list of tensors that differ.
    /// The weights must be finite and at most [`MAX_WEIGHT`] in magnitude, and the
    /// normalisation must have one mean per input channel.
    pub fn load_into(&self, model: &mut Sequential, path: &Path) -> Result<(), TrainError> {
        let bad = |message| TrainError::Checkpoint {
            path: path.to_path_buf(),
            message,
        };
        let source = format!("checkpoint {}", path.display());
        weights::load_bytes(model, &self.model, &source).map_err(|e| match e {
            LoadError::Mismatch(m) => TrainError::Mismatch(m),
            LoadError::Format(message) => bad(message),
        })?;
        weights::check_values(model, MAX_WEIGHT).map_err(bad)?;
        let channels = model.input_shape().dims().first().copied().unwrap_or(0);
        let stats = self.meta.normalization.mean.len();
        if stats != channels {
            return Err(bad(format!(
                "its normalisation has {stats} channels but the model takes {channels}"
            )));
        }
        Ok(())
    }

    /// [`model`](Self::model) for a classifier (or a segmentation network): its output must
    /// hold one score (or score map) per class, `[classes]` (or `[classes, H, W]`).
    pub fn classifier(&self, path: &Path, device: &Device) -> Result<Sequential, TrainError> {
        let model = self.model(path, device)?;
        let outputs = model
            .output_shape()
            .map_err(convnet_layers::ModelError::from)?;
        let classes = self.meta.classes.len();
        if outputs.dims().first() != Some(&classes) {
            return Err(TrainError::Checkpoint {
                path: path.to_path_buf(),
                message: format!(
                    "{classes} classes but the model's output is {:?}",
                    outputs.dims()
                ),
            });
        }
        Ok(model)
    }
}

/// Where a run directory keeps its checkpoints.
pub const CHECKPOINT_DIR: &str = "checkpoints";
pub const LAST: &str = "last.ckpt";
pub const BEST: &str = "best.ckpt";

/// A valid checkpoint's metadata after `scores.len()` epochs of 10 steps whose validation
/// accuracies were `scores` (the best is the latest of the highest), for tests.
#[cfg(test)]
pub(crate) fn meta_with_scores(scores: &[f64]) -> CheckpointMeta {
    let history: Vec<EpochRecord> = (1..=scores.len())
        .map(|epoch| EpochRecord {
            epoch,
            train_loss: 1.0,
            train_accuracy: 0.5,
            val_loss: Some(1.0),
            val_accuracy: Some(scores[epoch - 1]),
            lr: 1e-3,
            seconds: 1.0,
            val_mean_iou: None,
            val_map50: None,
            val_map: None,
        })
        .collect();
    let best = (1..=scores.len())
        .rev()
        .max_by(|&a, &b| scores[a - 1].total_cmp(&scores[b - 1]));
    let mut config = TrainConfig::new("lenet5", "test");
    config.epochs = 100;
    CheckpointMeta {
        format: FORMAT_VERSION,
        spec: String::new(),
        classes: vec!["a".into(), "b".into()],
        normalization: NormalizationMeta {
            mean: vec![0.5],
            std: vec![0.25],
        },
        epoch: scores.len(),
        global_step: scores.len() * 10,
        steps_into_epoch: None,
        best_val_accuracy: best.map(|b| scores[b - 1]),
        best_epoch: best,
        config,
        history,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> CheckpointMeta {
        let mut meta = meta_with_scores(&[0.25, 0.5]);
        meta.config.epochs = 5;
        meta
    }

    /// `meta` written as a checkpoint and opened again: the error, if any.
    fn reopened(meta: CheckpointMeta) -> Result<(), String> {
        let ckpt = Checkpoint {
            meta,
            model: vec![0; 4],
            optimizer: None,
        };
        let bytes = ckpt.to_bytes().unwrap();
        Checkpoint::from_bytes(&bytes, Path::new("x.ckpt"))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_valid_checkpoint_opens() {
        assert_eq!(reopened(valid()), Ok(()));
    }

    #[test]
    fn inconsistent_metadata_is_refused_when_opened() {
        type Edit = fn(&mut CheckpointMeta);
        let cases: [(Edit, &str); 16] = [
            (|m| m.classes.clear(), "names no classes"),
            (|m| m.classes[1] = " ".into(), "class 1 has an empty name"),
            (|m| m.classes[1] = "a".into(), "class 'a' is named twice"),
            (|m| m.normalization.std = vec![], "1 means and 0 standard"),
            // JSON has no NaN: the writer stores null, which the reader refuses.
            (
                |m| m.normalization.mean[0] = f32::NAN,
                "unreadable metadata",
            ),
            (
                |m| m.normalization.std[0] = 0.0,
                "deviation 0 is not a positive",
            ),
            (
                |m| m.normalization.std[0] = -1.0,
                "deviation -1 is not a positive",
            ),
            (|m| m.epoch = 1 << 63, "completed epochs of a run of 5"),
            (
                |m| m.config.epochs = usize::MAX,
                "above the limit of 1000000",
            ),
            (
                |m| m.history.pop().map(drop).unwrap_or(()),
                "1 history rows for 2",
            ),
            (|m| m.history[1].epoch = 7, "history row 2 is for epoch 7"),
            (
                |m| m.global_step = 1,
                "1 optimizer steps cannot cover 2 epochs",
            ),
            (
                |m| m.global_step = usize::MAX,
                "above the limit of 100000000",
            ),
            (
                |m| m.best_epoch = Some(3),
                "best epoch 3 is not one of its 2",
            ),
            (
                |m| m.best_epoch = Some(1),
                "not the validation score of epoch 1",
            ),
            (|m| m.best_epoch = None, "without a best epoch"),
        ];
        for (edit, expected) in cases {
            let mut meta = valid();
            edit(&mut meta);
            let err = reopened(meta).expect_err(expected);
            assert!(err.starts_with("x.ckpt: "), "{err}");
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }

    #[test]
    fn steps_into_an_epoch_must_be_covered_by_the_global_step() {
        let mut meta = valid();
        meta.steps_into_epoch = Some(18);
        assert_eq!(reopened(meta.clone()), Ok(()));
        meta.steps_into_epoch = Some(19);
        assert!(reopened(meta.clone()).is_err());
        meta.steps_into_epoch = Some(0);
        assert!(reopened(meta).is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// A checkpoint's bytes with the section lengths (or the checksum) replaced.
        fn with_header(lengths: [u64; 3], fix_crc: bool) -> Vec<u8> {
            let good = Checkpoint {
                meta: valid(),
                model: vec![7; 16],
                optimizer: None,
            }
            .to_bytes()
            .unwrap();
            let mut bytes = good.clone();
            let mut at = MAGIC.len();
            for len in lengths {
                let old = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
                bytes[at..at + 8].copy_from_slice(&len.to_le_bytes());
                at = at.saturating_add(8).saturating_add(old as usize);
            }
            if fix_crc {
                let n = bytes.len() - 4;
                let crc = crc32fast::hash(&bytes[..n]);
                bytes[n..].copy_from_slice(&crc.to_le_bytes());
            }
            bytes
        }

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
                let mut with_magic = MAGIC.to_vec();
                with_magic.extend_from_slice(&bytes);
                for b in [&bytes, &with_magic] {
                    let _ = Checkpoint::from_bytes(b, Path::new("x.ckpt"));
                }
            }

            #[test]
            fn extreme_section_lengths_are_refused(
                lengths in proptest::array::uniform3(prop_oneof![
                    any::<u64>(),
                    Just(u64::MAX),
                    Just(u64::MAX - 7),
                    0u64..4096,
                ]),
                fix_crc in any::<bool>(),
            ) {
                let bytes = with_header(lengths, fix_crc);
                let _ = Checkpoint::from_bytes(&bytes, Path::new("x.ckpt"));
            }

            #[test]
            fn extreme_progress_is_refused_not_trusted(
                epoch in any::<usize>(),
                global_step in any::<usize>(),
                best in proptest::option::of(any::<usize>()),
            ) {
                let mut meta = valid();
                (meta.epoch, meta.global_step, meta.best_epoch) = (epoch, global_step, best);
                let sane = epoch == 2 && (2..=MAX_GLOBAL_STEP).contains(&global_step)
                    && best == Some(2);
                let opened = reopened(meta);
                prop_assert!(opened.is_ok() == sane, "{:?}", opened);
            }
        }
    }
}
