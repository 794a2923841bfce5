//! Data sets for convnet: the labelled images a network trains on and how they reach it.
//!
//! - [`idx`] reads the IDX files Fashion-MNIST ships in (raw or gzipped); [`fashion_mnist`]
//!   finds and loads that set; [`folder`] loads people's own images from one folder per class.
//! - [`ImageSet`] keeps pixels as `u8` in memory (a quarter of the `f32` size: all of
//!   Fashion-MNIST is 47 MB) and converts to `f32` batch by batch.
//! - [`augment`] holds seeded transforms on one image; [`Loader`] builds shuffled, augmented,
//!   normalised batches on a background thread. Every random choice is a function of
//!   `(seed, epoch, example)`, so a run repeats exactly whatever the threading.

pub mod augment;
mod error;
pub mod fashion_mnist;
pub mod folder;
pub mod idx;
pub mod loader;
pub mod pca;
pub mod seed;
pub mod set;

pub use augment::{
    Augment, AugmentRng, ColourShift, Image, PcaColour, RandomCrop, RandomHorizontalFlip,
    RandomRotation, Transform,
};
pub use error::DataError;
pub use loader::{Batch, Loader, LoaderConfig};
pub use set::{Example, ImageSet, Normalization};
