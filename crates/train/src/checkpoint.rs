//! Checkpoint files: everything needed to evaluate a model or resume its training, in one file
//! written atomically.
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
use crate::fs::write_atomically;
use crate::history::EpochRecord;
use crate::weights::{self, LoadError};

const MAGIC: &[u8; 8] = b"CNVNTCK1";
pub const FORMAT_VERSION: u32 = 1;

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
        Ok(Self {
            meta,
            model: sections[1].to_vec(),
            optimizer: (!sections[2].is_empty()).then(|| sections[2].to_vec()),
        })
    }

    /// Writes the checkpoint atomically to each of `paths` (serialised once): a crash leaves
    /// each file as it was before or as it is now.
    pub fn save(&self, paths: &[&Path]) -> Result<(), TrainError> {
        let Some(first) = paths.first() else {
            return Ok(());
        };
        let bytes = self.to_bytes().map_err(|message| TrainError::Checkpoint {
            path: first.to_path_buf(),
            message,
        })?;
        for path in paths {
            write_atomically(path, &bytes)?;
        }
        Ok(())
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
    pub fn load_into(&self, model: &mut Sequential, path: &Path) -> Result<(), TrainError> {
        let source = format!("checkpoint {}", path.display());
        weights::load_bytes(model, &self.model, &source).map_err(|e| match e {
            LoadError::Mismatch(m) => TrainError::Mismatch(m),
            LoadError::Format(message) => TrainError::Checkpoint {
                path: path.to_path_buf(),
                message,
            },
        })
    }
}

/// Where a run directory keeps its checkpoints.
pub const CHECKPOINT_DIR: &str = "checkpoints";
pub const LAST: &str = "last.ckpt";
pub const BEST: &str = "best.ckpt";
