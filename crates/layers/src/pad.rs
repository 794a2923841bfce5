//! Zero padding as a layer of its own (Keras' `ZeroPadding2D`).

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::ops::PadMode;
use serde::{Deserialize, Serialize};

use crate::error::LayerErrorKind;
use crate::geometry::{Padding, Rounding, window};
use crate::layer::{LayerInfo, spatial_input};
use crate::limits::checked_add;
use crate::shape::FeatureShape;

/// `padding` is `p`, `[ph, pw]` or `[[top, bottom], [left, right]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZeroPadding2dConfig {
    pub padding: Padding,
}

impl ZeroPadding2dConfig {
    pub fn new(padding: Padding) -> Self {
        Self { padding }
    }

    pub fn init(&self) -> Result<ZeroPadding2d, LayerErrorKind> {
        match &self.padding {
            Padding::Explicit(pairs) if pairs.len() == 1 || pairs.len() == 2 => Ok(ZeroPadding2d {
                padding: self.padding.clone(),
            }),
            Padding::Explicit(pairs) => Err(LayerErrorKind::Config(format!(
                "padding has {} axes, expected 1 or 2",
                pairs.len()
            ))),
            other => Err(LayerErrorKind::Config(format!(
                "zero padding needs explicit sizes, not \"{other}\""
            ))),
        }
    }
}

/// Pads height and width with zeros.
#[derive(Module, Debug)]
pub struct ZeroPadding2d {
    #[module(skip)]
    pub padding: Padding,
}

impl ZeroPadding2d {
    /// `((top, bottom), (left, right))`, resolved by the shared window rule with a 1x1 window.
    fn pads(&self, input: &FeatureShape) -> Result<[(usize, usize); 2], LayerErrorKind> {
        let hw = spatial_input::<2>(input)?;
        let g = window(hw, [1, 1], [1, 1], [1, 1], &self.padding, Rounding::Floor)?;
        Ok(g.map(|a| (a.pad_begin, a.pad_end)))
    }

    pub fn forward(&self, x: Tensor<4>) -> Result<Tensor<4>, LayerErrorKind> {
        let [_, c, h, w] = x.dims();
        let pads = self.pads(&FeatureShape::new([c, h, w]))?;
        Ok(x.pad(pads, PadMode::Constant(0.0)))
    }
}

impl LayerInfo for ZeroPadding2d {
    fn kind(&self) -> &'static str {
        "ZeroPadding2D"
    }

    fn describe(&self) -> String {
        format!("ZeroPadding2D {}", self.padding)
    }

    fn output_shape(&self, input: &FeatureShape) -> Result<FeatureShape, LayerErrorKind> {
        let [(t, b), (l, r)] = self.pads(input)?;
        let [h, w] = spatial_input::<2>(input)?;
        Ok(FeatureShape::new([
            input.channels(),
            checked_add("padded height", h, t + b)?,
            checked_add("padded width", w, l + r)?,
        ]))
    }
}
