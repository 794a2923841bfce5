//! Errors that name the layer and the shapes involved.

use crate::geometry::ShapeError;
use crate::limits::SizeError;
use crate::shape::FeatureShape;

/// What went wrong inside one layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayerErrorKind {
    #[error("{0}")]
    Window(#[from] ShapeError),
    #[error("expects {expected} input{hint}")]
    Rank {
        expected: &'static str,
        hint: &'static str,
    },
    #[error("expects {expected} input channels, got {got}")]
    Channels { expected: usize, got: usize },
    #[error("expects {expected} input features, got {got}")]
    Features { expected: usize, got: usize },
    #[error("{0}")]
    Config(String),
    /// Boxed: a size error is rare and large, and every layer result carries this type.
    #[error("{0}")]
    Size(Box<SizeError>),
}

impl From<SizeError> for LayerErrorKind {
    fn from(e: SizeError) -> Self {
        LayerErrorKind::Size(Box::new(e))
    }
}

/// A layer error with the layer's name, its operation and the input shape it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("layer '{layer}' ({op}): {kind}; input shape {input}")]
pub struct LayerError {
    pub layer: String,
    pub op: String,
    pub input: FeatureShape,
    pub kind: LayerErrorKind,
}

/// A tensor handed to a model does not have the shape the model was built for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model input: expected a tensor of shape {expected} (batch first), got {got:?}")]
pub struct InputError {
    pub expected: FeatureShape,
    pub got: Vec<usize>,
}

/// Any error from building or running a layer stack.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Input(#[from] InputError),
}
