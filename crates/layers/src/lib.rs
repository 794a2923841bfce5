//! convnet's layers and blocks: the course's vocabulary (filters, kernel, stride, `same` /
//! `valid` padding...) over Burn's tensor ops, with shape inference, Keras-style summaries and a
//! TOML format for sequential models.
//!
//! Every sliding-window layer resolves its output size through [`geometry::window`], the one
//! place where `n_out = floor((n + 2p - f) / s) + 1` is written down.

pub mod activation;
pub mod blocks;
pub mod conv;
pub mod dense;
pub mod error;
pub mod geometry;
pub mod layer;
pub mod limits;
pub mod mode;
pub mod norm;
pub mod ops;
pub mod pad;
pub mod pool;
mod rank;
pub mod reference;
pub mod sequential;
pub mod shape;
pub mod spec;
pub mod summary;
pub mod transpose;

pub use activation::{Activation, ActivationLayer};
pub use blocks::{Concat, Residual, SqueezeExcitation, SqueezeExcitationConfig};
pub use conv::{
    Conv, Conv1d, Conv2d, Conv2dConfig, Conv3d, ConvConfig, DepthwiseConfig, SeparableConfig,
    SeparableConv,
};
pub use dense::{Dense, DenseConfig, Flatten};
pub use error::{InputError, LayerError, LayerErrorKind, ModelError};
pub use geometry::{Padding, Rounding};
pub use layer::{LayerInfo, Size};
pub use limits::{Bytes, SizeError};
pub use mode::Mode;
pub use norm::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, LocalResponseNorm, LrnConfig};
pub use pad::{ZeroPadding2d, ZeroPadding2dConfig};
pub use pool::{
    AdaptiveAvgPool2d, AdaptivePoolConfig, ChannelPool, ChannelPoolConfig, GlobalPool, Pool,
    Pool1d, Pool2d, Pool2dConfig, Pool3d, PoolConfig, PoolKind,
};
pub use sequential::{Features, Sequential, SequentialLayer, Stack};
pub use shape::FeatureShape;
pub use spec::{Branch, HEAD_START, LayerConfig, LayerSpec, ModelSpec, SpecError};
pub use summary::{LayerRow, ParamCount, Summarize, Summary, SummaryBuilder};
pub use transpose::{
    ConvTranspose, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d, ConvTransposeConfig,
};
