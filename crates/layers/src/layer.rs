//! What every layer tells about itself: its Keras-style type, its output shape, its cost.

use crate::error::LayerErrorKind;
use crate::shape::FeatureShape;
use serde::{Deserialize, Serialize};

/// Shape inference and cost of a layer, without running it.
pub trait LayerInfo {
    /// Keras' class name, shown in summaries (`Conv2D`, `Dense`, ...).
    fn kind(&self) -> &'static str;

    /// A short description of the layer's settings, used in error messages.
    fn describe(&self) -> String {
        self.kind().to_string()
    }

    /// The output shape for one example of `input` shape, or why the layer cannot take it.
    fn output_shape(&self, input: &FeatureShape) -> Result<FeatureShape, LayerErrorKind>;

    /// Multiply-accumulate operations for one example.
    fn macs(&self, _input: &FeatureShape, _output: &FeatureShape) -> u64 {
        0
    }
}

/// Requires `input` to be a `[C, spatial...]` map with `N` spatial axes.
pub(crate) fn spatial_input<const N: usize>(
    input: &FeatureShape,
) -> Result<[usize; N], LayerErrorKind> {
    if input.rank() != N + 1 {
        return Err(LayerErrorKind::Rank {
            expected: match N {
                1 => "a (channels, length) map",
                2 => "a (channels, height, width) map",
                _ => "a (channels, depth, height, width) map",
            },
            hint: if input.rank() == 1 {
                " (it was flattened already)"
            } else {
                ""
            },
        });
    }
    let mut out = [0; N];
    out.copy_from_slice(input.spatial());
    Ok(out)
}

/// A size per spatial axis; a spec file may give one number for all axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SizeRepr", into = "SizeRepr")]
pub struct Size<const N: usize>(pub [usize; N]);

impl<const N: usize> Size<N> {
    pub fn all(v: usize) -> Self {
        Self([v; N])
    }
}

impl<const N: usize> From<usize> for Size<N> {
    fn from(v: usize) -> Self {
        Self::all(v)
    }
}

impl<const N: usize> From<[usize; N]> for Size<N> {
    fn from(v: [usize; N]) -> Self {
        Self(v)
    }
}

impl<const N: usize> std::fmt::Display for Size<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|v| v.to_string()).collect();
        f.write_str(&parts.join("x"))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum SizeRepr {
    Scalar(usize),
    List(Vec<usize>),
}

impl<const N: usize> TryFrom<SizeRepr> for Size<N> {
    type Error = String;
    fn try_from(r: SizeRepr) -> Result<Self, String> {
        match r {
            SizeRepr::Scalar(v) => Ok(Self::all(v)),
            SizeRepr::List(v) => <[usize; N]>::try_from(v.as_slice()).map(Self).map_err(|_| {
                format!(
                    "expected a number or a list of {N} numbers, got {} numbers",
                    v.len()
                )
            }),
        }
    }
}

impl<const N: usize> From<Size<N>> for SizeRepr {
    fn from(s: Size<N>) -> Self {
        SizeRepr::List(s.0.to_vec())
    }
}
