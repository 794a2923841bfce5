//! Data sets for convnet: the labelled images, signals and volumes a network trains on, and how
//! they reach it.
//!
//! - [`idx`] reads the IDX files Fashion-MNIST ships in (raw or gzipped); [`fashion_mnist`]
//!   finds and loads that set; [`folder`] loads people's own images from one folder per class.
//! - [`ImageSet`] keeps pixels as `u8` in memory (a quarter of the `f32` size: all of
//!   Fashion-MNIST is 47 MB) and converts to `f32` batch by batch.
//! - [`TensorSet`] holds `f32` examples of any layout a convolution takes (signals `[C, L]`,
//!   volumes `[C, D, H, W]`); [`npy`] reads and writes NumPy's `.npy` arrays and loads a set
//!   from an inputs file and a labels file; [`synthetic`] generates seeded signal and volume
//!   sets (ECG rhythms, moving clothes, 3D shapes).
//! - [`augment`] holds seeded transforms on one image; [`Loader`] builds shuffled, augmented,
//!   normalised batches from any [`Examples`] on a background thread. Every random choice is a
//!   function of `(seed, epoch, example)`, so a run repeats exactly whatever the threading.

pub mod augment;
pub mod detection;
mod error;
pub mod examples;
pub mod faceapi;
pub mod fashion_mnist;
pub mod folder;
pub mod idx;
pub mod loader;
pub mod npy;
pub mod pca;
pub mod preprocess;
pub mod seed;
pub mod segmentation;
pub mod set;
pub mod synthetic;
pub mod tensor_set;

pub use augment::{
    Augment, AugmentRng, ColourShift, Image, PcaColour, RandomCrop, RandomHorizontalFlip,
    RandomRotation, Transform,
};
pub use error::DataError;
pub use examples::{Examples, IntoExamples, check_matches, check_not_empty};
pub use loader::{Batch, Loader, LoaderConfig};
pub use npy::{NpyArray, NpyData, load_npy_set, read_npy, write_npy_f32};
pub use preprocess::{Interpolation, Preprocess, Resize};
pub use segmentation::{JointAugment, SegmentationBatch, SegmentationSet};
pub use set::{ClassSelection, Example, ImageSet, Normalization};
pub use tensor_set::TensorSet;
