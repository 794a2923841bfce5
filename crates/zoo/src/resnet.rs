//! (to be written)

use convnet_layers::ModelSpec;

use crate::{ZooEntry, ZooOptions};

pub const VARIANTS: &[ZooEntry] = &[];

pub fn spec(_name: &str, _options: &ZooOptions) -> Option<ModelSpec> {
    None
}
