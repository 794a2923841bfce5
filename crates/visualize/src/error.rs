use convnet_layers::LayerErrorKind;

/// Why a picture could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VisualizeError {
    /// The units of this layer see the whole input: there is no window to cut.
    #[error(
        "{layer} turns the maps into a vector ({kind}): units from there on see the whole input and have no receptive field to cut out; pick a convolution or pooling layer before it"
    )]
    NotSpatial { layer: String, kind: &'static str },
    /// The walk met a layer whose window it cannot follow.
    #[error("cannot follow the receptive field through {layer}: {reason}")]
    Unsupported { layer: String, reason: String },
    /// A layer's settings do not fit its input (the spec would not build either).
    #[error("{layer}: {source}")]
    Layer {
        layer: String,
        #[source]
        source: LayerErrorKind,
    },
    #[error("{0}")]
    Invalid(String),
}
