//! Training errors: each says what failed and, for files, which file.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Checkpoint { path: PathBuf, message: String },
    #[error("{0}")]
    Mismatch(#[from] crate::weights::WeightMismatch),
    #[error(
        "the loss became {value} at epoch {epoch}, step {step}: training stopped{}",
        match last_good {
            Some(p) => format!("; the last good checkpoint is {}", p.display()),
            None => String::from(" (no checkpoint had been written yet)"),
        }
    )]
    NonFinite {
        value: f64,
        epoch: usize,
        step: usize,
        last_good: Option<PathBuf>,
    },
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Model(#[from] convnet_layers::ModelError),
    #[error(transparent)]
    Spec(#[from] convnet_layers::SpecError),
    #[error(transparent)]
    Data(#[from] convnet_data::DataError),
    #[error(transparent)]
    Vision(#[from] convnet_vision::VisionError),
}
