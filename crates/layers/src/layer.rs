//! What every layer tells about itself: its Keras-style type, its output shape, its cost.

use crate::error::LayerErrorKind;
use crate::limits::{SizeError, checked_product};
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

    /// Multiply-accumulate operations for one example, or an error when they do not fit in
    /// 64 bits.
    fn macs(&self, _input: &FeatureShape, _output: &FeatureShape) -> Result<u64, LayerErrorKind> {
        Ok(0)
    }
}

/// The product of `factors` as a multiply-accumulate count, checked.
pub(crate) fn macs_product(factors: &[usize]) -> Result<u64, LayerErrorKind> {
    let n = checked_product("multiply-adds", factors)?;
    Ok(n as u64)
}

/// `a + b` multiply-accumulates, checked.
pub(crate) fn macs_sum(a: u64, b: u64) -> Result<u64, LayerErrorKind> {
    a.checked_add(b).ok_or_else(|| {
        SizeError::Overflow {
            what: "multiply-adds".into(),
            dims: format!("{a} + {b}"),
        }
        .into()
    })
}

/// Requires `input` to be a `[C, spatial...]` map with `N` spatial axes.
pub(crate) fn spatial_input<const N: usize>(
    input: &FeatureShape,
) -> Result<[usize; N], LayerErrorKind> {
    let dims = spatial_dims(input, N)?;
    let mut out = [0; N];
    out.copy_from_slice(&dims);
    Ok(out)
}

/// Requires `input` to be a `[C, spatial...]` map with `n` spatial axes.
pub(crate) fn spatial_dims(input: &FeatureShape, n: usize) -> Result<Vec<usize>, LayerErrorKind> {
    if input.rank() != n + 1 {
        return Err(LayerErrorKind::Rank {
            expected: map_description(n),
            hint: if input.rank() == 1 {
                " (it was flattened already)"
            } else {
                ""
            },
        });
    }
    Ok(input.spatial().to_vec())
}

pub(crate) fn map_description(spatial_axes: usize) -> &'static str {
    match spatial_axes {
        1 => "a (channels, length) map",
        2 => "a (channels, height, width) map",
        _ => "a (channels, depth, height, width) map",
    }
}

/// A size per spatial axis; one number stands for every axis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SizeRepr", into = "SizeRepr")]
pub enum Size {
    All(usize),
    Each(Vec<usize>),
}

impl Size {
    /// The size of each of `n` axes.
    pub fn expand(&self, n: usize, what: &str) -> Result<Vec<usize>, LayerErrorKind> {
        match self {
            Size::All(v) => Ok(vec![*v; n]),
            Size::Each(v) if v.len() == n => Ok(v.clone()),
            Size::Each(v) => Err(LayerErrorKind::Config(format!(
                "{what} has {} values but the layer has {n} spatial axes",
                v.len()
            ))),
        }
    }

    /// [`Size::expand`] for sizes that must be at least 1 (kernels, strides, dilations).
    pub fn resolve(&self, n: usize, what: &str) -> Result<Vec<usize>, LayerErrorKind> {
        let v = self.expand(n, what)?;
        if v.contains(&0) {
            return Err(LayerErrorKind::Config(format!("{what} must be at least 1")));
        }
        Ok(v)
    }
}

impl From<usize> for Size {
    fn from(v: usize) -> Self {
        Size::All(v)
    }
}

impl<const N: usize> From<[usize; N]> for Size {
    fn from(v: [usize; N]) -> Self {
        Size::Each(v.to_vec())
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Size::All(v) => write!(f, "{v}"),
            Size::Each(v) => {
                let parts: Vec<String> = v.iter().map(|v| v.to_string()).collect();
                f.write_str(&parts.join("x"))
            }
        }
    }
}

/// `3x3` for `[3, 3]`.
pub(crate) fn dims_text(v: &[usize]) -> String {
    v.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum SizeRepr {
    Scalar(usize),
    List(Vec<usize>),
}

impl TryFrom<SizeRepr> for Size {
    type Error = String;
    fn try_from(r: SizeRepr) -> Result<Self, String> {
        match r {
            SizeRepr::Scalar(v) => Ok(Size::All(v)),
            SizeRepr::List(v) if v.is_empty() || v.len() > 3 => Err(format!(
                "expected a number or a list of 1 to 3 numbers, got {} numbers",
                v.len()
            )),
            SizeRepr::List(v) => Ok(Size::Each(v)),
        }
    }
}

impl From<Size> for SizeRepr {
    fn from(s: Size) -> Self {
        match s {
            Size::All(v) => SizeRepr::Scalar(v),
            Size::Each(v) => SizeRepr::List(v),
        }
    }
}
