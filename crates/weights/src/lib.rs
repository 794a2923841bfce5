//! PyTorch weights for convnet models, by torchvision's names.
//!
//! - [`read`] a `.pth` / `.pt` state dict (`torch.save(model.state_dict())`, any of PyTorch's
//!   container formats) or a `.safetensors` file into a [`StateDict`]. Checkpoints are read by
//!   a pickle reader that only builds data: nothing in the file is imported or run.
//! - [`read_tfjs`] a TensorFlow.js weights manifest and its shards (face-api.js's models),
//!   uint8/uint16/float16-quantised tensors dequantised, kernels turned into PyTorch layouts.
//! - [`expected`]: the keys and shapes a model wants; [`load`] them by name, strictly or
//!   partially, with a [`LoadReport`] (or a [`Mismatch`] listing every tensor that does not fit).
//! - [`nest_into`]: a part trained on its own (a backbone) placed into a model that nests
//!   its layers deeper (`down2.conv1.weight` → `skip1.down2.conv1.weight`).
//! - [`to_state_dict`] and [`write_safetensors`]: export a model for PyTorch.
//! - [`fully_convolutional`]: a classifier's dense layers as convolutions with the same
//!   weights (sliding windows, FCN).
//!
//! A layer's parameters are named as PyTorch names them, after the layer's path: a conv layer
//! `conv1` inside a residual block `layer1.0` owns `layer1.0.conv1.weight` and
//! `layer1.0.conv1.bias`; a batch norm also `running_mean` and `running_var`. Layouts are
//! PyTorch's in the files: convolution kernels are stored that way in convnet already, dense
//! weights are transposed (Burn keeps `[in, out]`), squeeze-and-excitation weights take the
//! `[out, in, 1, 1]` of torchvision's 1x1 convolutions.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use convnet_layers::ModelSpec;
//! use convnet_weights::{LoadOptions, load, read};
//!
//! let device = burn::tensor::Device::flex();
//! let model = ModelSpec::from_file("net.toml".as_ref())?.build(&device)?;
//! let dict = read("net.pth")?;
//! let (model, report) = load(model, &dict, &LoadOptions::default())?;
//! println!("{} tensors loaded", report.loaded.len());
//! # Ok(())
//! # }
//! ```

mod convolutional;
mod dict;
mod error;
mod export;
mod load;
mod nest;
mod read;
mod tfjs;
mod walk;

pub use convolutional::fully_convolutional;
pub use dict::{StateDict, WeightTensor};
pub use error::WeightsError;
pub use export::{to_state_dict, write_safetensors};
pub use load::{LoadOptions, LoadReport, Mismatch, ShapeMismatch, expected, load};
pub use nest::nest_into;
pub use read::read;
pub use tfjs::{
    CheckedGroup, ManifestError, RawTensor, is_manifest, parse_manifest, read_raw, read_tfjs,
};
