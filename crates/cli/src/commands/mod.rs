//! One module per subcommand, and what several of them share.

pub mod anchors;
mod args;
pub mod bench;
mod classifier;
mod dataset;
pub mod datasets;
pub mod detect;
pub mod embed;
pub mod eval;
pub mod eval_detections;
pub mod export;
pub mod face;
pub mod filter;
pub mod finetune;
pub mod infer;
pub mod models;
mod onnx;
pub mod predict;
mod pretrained;
mod progress;
pub mod segment;
pub mod style;
pub mod summary;
pub mod train;
pub mod visualize;
