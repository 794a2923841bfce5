use convnet_layers::ModelError;
use convnet_weights::WeightsError;

/// Why style transfer cannot run (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum StyleError {
    #[error("{model} has no layer '{name}'; valid names: {}", .valid.join(", "))]
    UnknownLayer {
        name: String,
        model: String,
        valid: Vec<String>,
    },
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Weights(String),
    #[error(transparent)]
    Load(#[from] WeightsError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(
        "the cost is not finite at iteration {iteration} ({value}); lower the learning rate or the style weight"
    )]
    NotFinite { iteration: usize, value: f64 },
}
