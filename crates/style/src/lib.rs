//! Neural style transfer (Gatys, Ecker and Bethge, *A Neural Algorithm of Artistic Style*,
//! 2015), as the CNN course teaches it: a generated image G whose activations at one layer of a
//! pretrained network match the content image C's, and whose Gram matrices at several layers
//! match the style image S's. J(G) = α J_content(C, G) + β J_style(S, G) is minimised over G's
//! pixels with Adam or L-BFGS.

pub mod cost;
mod error;
pub mod features;
pub mod optim;
pub mod transfer;

pub use error::StyleError;
pub use features::{FeatureNet, LayerChoice, Normalization, layer_aliases, resolve_layer};
pub use transfer::{Costs, Optimizer, StyleConfig, StyleTransfer};
