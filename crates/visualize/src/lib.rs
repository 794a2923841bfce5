//! Seeing what conv layers learn, as pictures:
//!
//! - [`filters`]: convolution kernels as tiles (colour for a first layer, greyscale beyond);
//! - [`patches`]: the image patches that excite a unit most, cut along its receptive field
//!   ([`receptive`]);
//! - [`maps`]: a layer's feature maps for one image.
//!
//! Everything here works on plain values (kernels, maps, images); running networks over images
//! is the caller's part (`convnet visualize`).

pub mod error;
pub mod filters;
pub mod grid;
pub mod maps;
pub mod patches;
pub mod receptive;

pub use error::VisualizeError;
pub use filters::{
    Convolution, FilterOptions, FilterPicture, Kernels, convolutions, filter_picture,
};
pub use maps::{MapPicture, feature_maps};
pub use patches::{MAX_IOU, Pick, TopPatches, cut, patch_grid, tile_for};
pub use receptive::{AxisField, Field, Rect, receptive_field};
