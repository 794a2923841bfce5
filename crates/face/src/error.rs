use std::path::PathBuf;

use convnet_weights::WeightsError;

/// Why a face operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FaceError {
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error("{path}: weight '{name}' is missing (is this the right model's manifest?)")]
    MissingWeight { path: PathBuf, name: String },
    #[error("{path}: weight '{name}' has shape {found:?}, expected {expected:?}")]
    WeightShape {
        path: PathBuf,
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("{0}")]
    Input(String),
}
