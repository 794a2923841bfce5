//! Helpers shared by the integration tests (each test file uses a subset).
#![allow(dead_code)]

use burn::tensor::{Device, Tensor};
use convnet_layers::{ModelSpec, Sequential};

/// A tensor's values, row-major.
pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// Builds a spec that must be valid.
pub fn build(src: &str) -> Sequential {
    ModelSpec::parse(src, "net.toml")
        .unwrap()
        .build(&Device::flex())
        .unwrap()
}

/// The message of a spec that must fail to parse or to build.
pub fn build_err(src: &str) -> String {
    match ModelSpec::parse(src, "net.toml") {
        Err(e) => e.to_string(),
        Ok(spec) => spec.build(&Device::flex()).unwrap_err().to_string(),
    }
}
