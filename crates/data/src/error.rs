//! One error type for the crate: every error about a file names the file, so a message read on
//! its own says where to look.

use std::path::PathBuf;

/// What can go wrong reading, preparing or serving data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file starts like gzip but does not decompress.
    #[error("{file}: corrupt gzip data")]
    Gzip {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a valid IDX array (`file` is the name the caller gave).
    #[error("{file}: {problem}")]
    Idx { file: String, problem: String },
    /// The image and label files of a set disagree on how many examples there are.
    #[error(
        "{} holds {images} images but {} holds {labels} labels",
        images_path.display(),
        labels_path.display()
    )]
    CountMismatch {
        images_path: PathBuf,
        labels_path: PathBuf,
        images: usize,
        labels: usize,
    },
    /// A label file names a class that does not exist.
    #[error("{}: example {index} has label {label}, but there are only {classes} classes", path.display())]
    BadLabel {
        path: PathBuf,
        index: usize,
        label: usize,
        classes: usize,
    },
    #[error(
        "Fashion-MNIST not found (looked in {searched}); install it with: sudo apt-get install dataset-fashion-mnist (or pass --data DIR / set CONVNET_DATA)"
    )]
    NotFound { searched: String },
    /// An image folder that does not hold a usable data set.
    #[error("{}: {problem}", path.display())]
    Folder { path: PathBuf, problem: String },
    /// Pixels, labels, shape and classes of an in-memory set that do not fit together, or a
    /// request the set cannot satisfy.
    #[error("image set: {0}")]
    InvalidSet(String),
    /// The values, labels, shape and classes of a [`TensorSet`](crate::TensorSet) that do not
    /// fit together, or a generator asked for something it cannot make.
    #[error("tensor set: {0}")]
    InvalidTensors(String),
    /// A `.npy` file that cannot be read, or whose array cannot serve as the inputs or labels
    /// of a data set.
    #[error("{}: {problem}", path.display())]
    Npy { path: PathBuf, problem: String },
    /// An augmentation spec that does not parse, or one the training set cannot support.
    #[error("preprocessing: {0}")]
    Preprocess(String),
    #[error("segmentation set: {0}")]
    Segmentation(String),
    #[error("class selection: {0}")]
    Classes(String),
    #[error("augmentation: {0}")]
    Augment(String),
    #[error("loader: {0}")]
    Loader(String),
    /// A set that cannot be used with another: an empty one, or a test set whose examples or
    /// classes differ from the training set's.
    #[error("{0}")]
    Sets(String),
    #[error(transparent)]
    Vision(convnet_vision::VisionError),
    /// A size past what can be counted or held in memory.
    #[error(transparent)]
    Size(#[from] convnet_layers::limits::SizeError),
}

impl From<convnet_vision::VisionError> for DataError {
    fn from(e: convnet_vision::VisionError) -> Self {
        match e {
            convnet_vision::VisionError::Write { path, source } => {
                DataError::Write { path, source }
            }
            other => DataError::Vision(other),
        }
    }
}
