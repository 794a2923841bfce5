//! convnet's applications, one module per task: each loads a model with its input recipe, runs
//! it on decoded pictures and returns typed results. The command line and the server are thin
//! faces over these modules: they parse, call one function and present the result, so the same
//! request gives the same answer through both.

pub mod catalog;
pub mod classify;
pub mod data;
pub mod detect;
pub mod embed;
pub mod errors;
pub mod faces;
pub mod models;
pub mod onnx;
pub mod run;
pub mod segment;
pub mod style;
pub mod visualize;

pub use classify::{Classifier, ClassifierSource, ClassifyOptions, Prediction};
pub use detect::{DetectOptions, Detector};
pub use segment::{Segmentation, Segmenter, SegmenterSource};
