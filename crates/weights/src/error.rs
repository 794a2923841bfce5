//! What can go wrong reading, loading and writing weights; every message names the file (or
//! the model) it is about.

use std::io;
use std::path::PathBuf;

use crate::load::Mismatch;

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The file could not be opened or read at all.
    #[error("cannot read {}", path.display())]
    Io { path: PathBuf, source: io::Error },

    /// Neither a PyTorch checkpoint nor a safetensors file.
    #[error(
        "{}: not a weights file ({reason}); convnet reads PyTorch state dicts (.pth / .pt, as torch.save(model.state_dict()) writes them) and safetensors files",
        path.display()
    )]
    UnknownFormat { path: PathBuf, reason: String },

    /// A PyTorch checkpoint that is damaged or holds something the reader refuses.
    #[error("{}: cannot read the PyTorch checkpoint: {message}", path.display())]
    Pytorch { path: PathBuf, message: String },

    /// A safetensors file that is damaged (truncated, a bad header...).
    #[error("{}: cannot read the safetensors file: {message}", path.display())]
    Safetensors { path: PathBuf, message: String },

    /// A readable file whose content is not a state dict (a list, a dict of plain values...).
    #[error("{}: not a state dict: {message}", path.display())]
    NotAStateDict { path: PathBuf, message: String },

    /// A tensor of a type that cannot be a weight (integers other than batch-norm counters,
    /// booleans, complex numbers, 8-bit floats...).
    #[error(
        "{}: tensor '{key}' holds {dtype} values; weights must be floating point (float16, bfloat16, float32 or float64)",
        path.display()
    )]
    Dtype {
        path: PathBuf,
        key: String,
        dtype: String,
    },

    /// A tensor whose values do not match its shape, or whose values are not finite.
    #[error("{origin}: {message}")]
    BadTensor { origin: String, message: String },

    /// The weights and the model disagree on names or shapes (the whole account).
    #[error("{0}")]
    Mismatch(Box<Mismatch>),

    /// Two parameters of the model would get the same PyTorch name (two layers with the same
    /// name inside one block, e.g. in two branches of a concat).
    #[error(
        "model '{model}' has two parameters named '{key}': rename one of the layers so every parameter has its own name"
    )]
    DuplicateKey { model: String, key: String },

    /// A model tensor could not be read back from its device.
    #[error("model '{model}': cannot read tensor '{key}': {message}")]
    Read {
        model: String,
        key: String,
        message: String,
    },

    /// Writing a safetensors file failed; the target is left as it was.
    #[error("cannot write {}: {message}", path.display())]
    Write { path: PathBuf, message: String },
}

impl From<Mismatch> for WeightsError {
    fn from(m: Mismatch) -> Self {
        WeightsError::Mismatch(Box::new(m))
    }
}
