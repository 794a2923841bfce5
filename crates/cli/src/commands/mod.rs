//! One module per subcommand, and what several of them share.

pub mod anchors;
mod args;
pub mod bench;
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
pub mod load;
pub mod models;
mod onnx;
pub mod predict;
mod progress;
pub mod segment;
pub mod serve;
pub mod style;
pub mod summary;
pub mod train;
pub mod visualize;

// The application layer under the names the commands have always used.
use convnet_apps::models as pretrained;
