//! convnet's layers and blocks: the course's vocabulary (filters, kernel, stride, `same` /
//! `valid` padding...) over Burn's tensor ops, with shape inference, Keras-style summaries and a
//! TOML format for sequential models.
//!
//! Every sliding-window layer resolves its output size through [`geometry::window`], the one
//! place where `n_out = floor((n + 2p - f) / s) + 1` is written down.

pub mod activation;
pub mod conv;
pub mod dense;
pub mod error;
pub mod geometry;
pub mod layer;
pub mod ops;
pub mod pad;
pub mod pool;
pub mod reference;
pub mod sequential;
pub mod shape;
pub mod spec;
pub mod summary;

pub use activation::{Activation, ActivationLayer};
pub use conv::{Conv2d, Conv2dConfig};
pub use dense::{Dense, DenseConfig, Flatten};
pub use error::{InputError, LayerError, LayerErrorKind, ModelError};
pub use geometry::{Padding, Rounding};
pub use layer::{LayerInfo, Size};
pub use pad::{ZeroPadding2d, ZeroPadding2dConfig};
pub use pool::{Pool2d, Pool2dConfig, PoolKind};
pub use sequential::{Features, Sequential, SequentialLayer};
pub use shape::FeatureShape;
pub use spec::{LayerConfig, LayerSpec, ModelSpec, SpecError};
pub use summary::{Summarize, Summary};
