//! Model graphs that cross framework borders.
//!
//! [`onnx`] opens an `.onnx` file a user hands over at run time: the file is checked whole
//! ([`onnx::check`]), parsed by `onnx-ir` (the parser inside Burn's own importer: typed nodes,
//! shape inference, constant folding), every operator is matched to an implementation before
//! anything runs, and the graph executes on Burn tensors through convnet's layers and kernels,
//! on any device. [`export`] writes a convnet model out as ONNX from its layer description.

pub mod error;
pub mod export;
pub mod onnx;
mod proto;
pub mod tfjs;

pub use error::GraphError;
pub use onnx::{OnnxModel, TensorInfo};
