//! Naming a data set on the command line: `fashion-mnist`, a folder of images, the generated
//! sets or a `.npy` array with its labels. The names are the application layer's
//! ([`convnet_apps::data`]), shared by the commands that read such sets.

pub use convnet_apps::data::{AnySet, DataSource, Locations};
