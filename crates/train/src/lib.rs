//! Training for convnet: Burn's optimizers and schedules behind names, the training loop with
//! validation, early stopping and resuming, metrics, checkpoints written atomically, and the
//! history and curves of a run.

pub mod checkpoint;
pub mod commit;
pub mod config;
pub mod detect;
pub mod embedding;
pub mod error;
pub mod evaluate;
mod fs;
pub mod history;
pub mod localize;
pub mod metrics;
pub mod optim;
pub mod segment;
pub mod trainer;
pub mod weights;

pub use checkpoint::{Checkpoint, CheckpointMeta};
pub use config::TrainConfig;
pub use embedding::{
    EmbeddingConfig, Embeddings, Mining, OneShotReport, OneShotResult, SiameseHead, train_embedding,
};
pub use error::TrainError;
pub use evaluate::{Evaluation, evaluate, probabilities};
pub use fs::{ensure_writable_dir, write_atomically};
pub use history::EpochRecord;
pub use metrics::{ClassReport, ConfusionMatrix};
pub use optim::{OptimizerKind, OptimizerSettings, Schedule};
pub use segment::{
    SegmentationData, SegmentationLoss, SegmentationMetrics, evaluate_segmentation,
    train_segmentation,
};
pub use trainer::{Observer, Quiet, TrainData, TrainOutcome, train, train_from};
pub use weights::WeightMismatch;
