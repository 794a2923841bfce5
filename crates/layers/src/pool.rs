//! Max and average pooling over 2D maps.

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::module::{avg_pool2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};
use serde::{Deserialize, Serialize};

use crate::error::LayerErrorKind;
use crate::geometry::{AxisGeometry, Padding, Rounding, window};
use crate::layer::{LayerInfo, Size, spatial_input};
use crate::shape::FeatureShape;

/// Which statistic a pooling window takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolKind {
    Max,
    Avg,
}

fn yes() -> bool {
    true
}

/// `MaxPooling2D` / `AveragePooling2D`: window `pool`, stride defaulting to the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool2dConfig {
    #[serde(alias = "pool_size", alias = "kernel")]
    pub pool: Size<2>,
    #[serde(default, alias = "strides")]
    pub stride: Option<Size<2>>,
    #[serde(default)]
    pub padding: Padding,
    /// Keep a last partial window (PyTorch's `ceil_mode`).
    #[serde(default)]
    pub ceil_mode: bool,
    /// Average pooling: count padded zeros in the mean (PyTorch's default; Keras' `same`
    /// pooling does not).
    #[serde(default = "yes")]
    pub count_include_pad: bool,
}

impl Pool2dConfig {
    pub fn new(pool: impl Into<Size<2>>) -> Self {
        Self {
            pool: pool.into(),
            stride: None,
            padding: Padding::Valid,
            ceil_mode: false,
            count_include_pad: true,
        }
    }
    pub fn with_stride(mut self, stride: impl Into<Size<2>>) -> Self {
        self.stride = Some(stride.into());
        self
    }
    pub fn with_padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }
    pub fn with_ceil_mode(mut self, ceil_mode: bool) -> Self {
        self.ceil_mode = ceil_mode;
        self
    }

    pub fn init(&self, kind: PoolKind) -> Result<Pool2d, LayerErrorKind> {
        let stride = self.stride.unwrap_or(self.pool);
        if self.pool.0.contains(&0) || stride.0.contains(&0) {
            return Err(LayerErrorKind::Config(
                "pool size and stride must be at least 1".into(),
            ));
        }
        Ok(Pool2d {
            kind,
            pool: self.pool.0,
            stride: stride.0,
            padding: self.padding.clone(),
            rounding: if self.ceil_mode {
                Rounding::Ceil
            } else {
                Rounding::Floor
            },
            count_include_pad: self.count_include_pad,
        })
    }
}

/// A 2D pooling layer (no parameters).
#[derive(Module, Debug)]
pub struct Pool2d {
    #[module(skip)]
    pub kind: PoolKind,
    pub pool: [usize; 2],
    pub stride: [usize; 2],
    #[module(skip)]
    pub padding: Padding,
    #[module(skip)]
    pub rounding: Rounding,
    pub count_include_pad: bool,
}

impl Pool2d {
    fn geometry(&self, input: &FeatureShape) -> Result<[AxisGeometry; 2], LayerErrorKind> {
        let hw = spatial_input::<2>(input)?;
        let g = window(
            hw,
            self.pool,
            self.stride,
            [1, 1],
            &self.padding,
            self.rounding,
        )?;
        // A window made only of padding has no maximum and no meaningful mean.
        if g.iter()
            .zip(self.pool)
            .any(|(a, k)| a.pad_begin >= k || a.pad_end >= k)
        {
            return Err(LayerErrorKind::Config(format!(
                "padding must be smaller than the pool size {}x{}",
                self.pool[0], self.pool[1]
            )));
        }
        Ok(g)
    }

    pub fn forward(&self, x: Tensor<4>) -> Result<Tensor<4>, LayerErrorKind> {
        let [_, c, h, w] = x.dims();
        let [gh, gw] = self.geometry(&FeatureShape::new([c, h, w]))?;
        let pads = [(gh.pad_begin, gh.pad_end), (gw.pad_begin, gw.pad_end)];
        let ceil = self.rounding == Rounding::Ceil;
        Ok(match self.kind {
            PoolKind::Max => max_pool2d(
                x,
                MaxPoolOptions::new(self.pool)
                    .with_stride(self.stride)
                    .with_padding_pairs(pads)
                    .with_ceil_mode(ceil),
            ),
            PoolKind::Avg => avg_pool2d(
                x,
                AvgPoolOptions::new(self.pool)
                    .with_stride(self.stride)
                    .with_padding_pairs(pads)
                    .with_count_include_pad(self.count_include_pad)
                    .with_ceil_mode(ceil),
            ),
        })
    }
}

impl LayerInfo for Pool2d {
    fn kind(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "MaxPooling2D",
            PoolKind::Avg => "AveragePooling2D",
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} {}x{}, stride {}x{}, padding {}",
            self.kind(),
            self.pool[0],
            self.pool[1],
            self.stride[0],
            self.stride[1],
            self.padding
        )
    }

    fn output_shape(&self, input: &FeatureShape) -> Result<FeatureShape, LayerErrorKind> {
        let [gh, gw] = self.geometry(input)?;
        Ok(FeatureShape::new([input.channels(), gh.output, gw.output]))
    }
}
