//! Train or inference behaviour, chosen by the caller rather than guessed from the device.

/// Batch norm and dropout behave differently while training. Burn switches on whether the
/// device records gradients; convnet passes the mode explicitly, so a network can be evaluated
/// on an autodiff device (validation inside a training loop) and frozen parts stay frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Batch statistics, running-statistics updates, dropout on.
    Train,
    /// Running statistics, no dropout.
    #[default]
    Eval,
}
