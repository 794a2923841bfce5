//! Max and average pooling over 1, 2 or 3 spatial axes, global pooling, and max pooling along
//! the channel axis.

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::module::{adaptive_avg_pool2d, avg_pool1d, max_pool1d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};
use serde::{Deserialize, Serialize};

use crate::conv::spatial_axes;
use crate::error::LayerErrorKind;
use crate::geometry::{AxisGeometry, Padding, Rounding, window_dyn};
use crate::layer::{LayerInfo, Size, dims_text, macs_product, spatial_dims};
use crate::ops::{Pool3dOptions, avg_pool3d, max_pool3d};
use crate::rank::{arr, rerank};
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

/// `MaxPooling{1,2,3}D` / `AveragePooling{1,2,3}D`: window `pool`, stride defaulting to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    #[serde(alias = "pool_size", alias = "kernel")]
    pub pool: Size,
    #[serde(default, alias = "strides")]
    pub stride: Option<Size>,
    #[serde(default)]
    pub padding: Padding,
    /// Max pooling only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dilation: Option<Size>,
    /// Keep a last partial window (PyTorch's `ceil_mode`).
    #[serde(default)]
    pub ceil_mode: bool,
    /// Average pooling: count padded zeros in the mean (PyTorch's default; Keras' `same`
    /// pooling does not).
    #[serde(default = "yes")]
    pub count_include_pad: bool,
}

/// The 2D form most code spells out.
pub type Pool2dConfig = PoolConfig;

impl PoolConfig {
    pub fn new(pool: impl Into<Size>) -> Self {
        Self {
            pool: pool.into(),
            stride: None,
            padding: Padding::Valid,
            dilation: None,
            ceil_mode: false,
            count_include_pad: true,
        }
    }
    pub fn with_stride(mut self, stride: impl Into<Size>) -> Self {
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
    pub fn with_count_include_pad(mut self, count_include_pad: bool) -> Self {
        self.count_include_pad = count_include_pad;
        self
    }

    /// A pooling layer for rank-`D` batches (3: 1D, 4: 2D, 5: 3D).
    pub fn init<const D: usize>(&self, kind: PoolKind) -> Result<Pool<D>, LayerErrorKind> {
        let n = spatial_axes::<D>()?;
        let pool = self.pool.resolve(n, "pool size")?;
        let stride = match &self.stride {
            Some(s) => s.resolve(n, "stride")?,
            None => pool.clone(),
        };
        let dilation = match (&self.dilation, kind) {
            (None, _) => vec![1; n],
            (Some(d), PoolKind::Max) => d.resolve(n, "dilation")?,
            (Some(_), PoolKind::Avg) => {
                return Err(LayerErrorKind::Config(
                    "average pooling takes no dilation".into(),
                ));
            }
        };
        Ok(Pool {
            kind,
            pool,
            stride,
            dilation,
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

/// A pooling layer over `D - 2` spatial axes (no parameters).
#[derive(Module, Debug)]
pub struct Pool<const D: usize> {
    #[module(skip)]
    pub kind: PoolKind,
    pub pool: Vec<usize>,
    pub stride: Vec<usize>,
    pub dilation: Vec<usize>,
    #[module(skip)]
    pub padding: Padding,
    #[module(skip)]
    pub rounding: Rounding,
    pub count_include_pad: bool,
}

pub type Pool1d = Pool<3>;
pub type Pool2d = Pool<4>;
pub type Pool3d = Pool<5>;

impl<const D: usize> Pool<D> {
    fn geometry(&self, input: &FeatureShape) -> Result<Vec<AxisGeometry>, LayerErrorKind> {
        let spatial = spatial_dims(input, D - 2)?;
        let g = window_dyn(
            &spatial,
            &self.pool,
            &self.stride,
            &self.dilation,
            &self.padding,
            self.rounding,
        )?;
        // A window made only of padding has no maximum and no meaningful mean.
        if g.iter()
            .zip(&self.pool)
            .any(|(a, &k)| a.pad_begin >= k || a.pad_end >= k)
        {
            return Err(LayerErrorKind::Config(format!(
                "padding must be smaller than the pool size {}",
                dims_text(&self.pool)
            )));
        }
        Ok(g)
    }

    pub fn forward(&self, x: Tensor<D>) -> Result<Tensor<D>, LayerErrorKind> {
        let g = self.geometry(&FeatureShape::new(x.dims()[1..].to_vec()))?;
        let pads: Vec<(usize, usize)> = g.iter().map(|a| (a.pad_begin, a.pad_end)).collect();
        let ceil = self.rounding == Rounding::Ceil;
        let (k, s, d) = (&self.pool, &self.stride, &self.dilation);
        Ok(match (D, self.kind) {
            (3, PoolKind::Max) => rerank(max_pool1d(
                rerank(x),
                MaxPoolOptions::new(arr::<usize, 1>(k))
                    .with_stride(arr(s))
                    .with_padding_pairs(arr(&pads))
                    .with_dilation(arr(d))
                    .with_ceil_mode(ceil),
            )),
            (3, PoolKind::Avg) => rerank(avg_pool1d(
                rerank(x),
                AvgPoolOptions::new(arr::<usize, 1>(k))
                    .with_stride(arr(s))
                    .with_padding_pairs(arr(&pads))
                    .with_count_include_pad(self.count_include_pad)
                    .with_ceil_mode(ceil),
            )),
            (4, PoolKind::Max) => rerank(convnet_kernels::max_pool2d(
                rerank(x),
                MaxPoolOptions::new(arr::<usize, 2>(k))
                    .with_stride(arr(s))
                    .with_padding_pairs(arr(&pads))
                    .with_dilation(arr(d))
                    .with_ceil_mode(ceil),
            )),
            (4, PoolKind::Avg) => rerank(convnet_kernels::avg_pool2d(
                rerank(x),
                AvgPoolOptions::new(arr::<usize, 2>(k))
                    .with_stride(arr(s))
                    .with_padding_pairs(arr(&pads))
                    .with_count_include_pad(self.count_include_pad)
                    .with_ceil_mode(ceil),
            )),
            (_, kind) => {
                let options = Pool3dOptions {
                    kernel: arr(k),
                    stride: arr(s),
                    padding: arr(&pads),
                    dilation: arr(d),
                    ceil_mode: ceil,
                    count_include_pad: self.count_include_pad,
                };
                let x = rerank(x);
                rerank(match kind {
                    PoolKind::Max => max_pool3d(x, &options),
                    PoolKind::Avg => avg_pool3d(x, &options),
                })
            }
        })
    }
}

impl<const D: usize> LayerInfo for Pool<D> {
    fn kind(&self) -> &'static str {
        match (D, self.kind) {
            (3, PoolKind::Max) => "MaxPooling1D",
            (3, PoolKind::Avg) => "AveragePooling1D",
            (4, PoolKind::Max) => "MaxPooling2D",
            (4, PoolKind::Avg) => "AveragePooling2D",
            (_, PoolKind::Max) => "MaxPooling3D",
            (_, PoolKind::Avg) => "AveragePooling3D",
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} {}, stride {}, padding {}",
            self.kind(),
            dims_text(&self.pool),
            dims_text(&self.stride),
            self.padding
        )
    }

    fn output_shape(&self, input: &FeatureShape) -> Result<FeatureShape, LayerErrorKind> {
        let g = self.geometry(input)?;
        let mut dims = vec![input.channels()];
        dims.extend(g.iter().map(|a| a.output));
        Ok(FeatureShape::new(dims))
    }
}

/// `GlobalAveragePooling` / `GlobalMaxPooling`: one value per channel, `[C, ...] -> [C]`.
#[derive(Module, Debug)]
pub struct GlobalPool {
    #[module(skip)]
    pub kind: PoolKind,
}

impl GlobalPool {
    pub fn new(kind: PoolKind) -> Self {
        Self { kind }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<2> {
        let [n, c] = [x.dims()[0], x.dims()[1]];
        let flat: Tensor<3> = x.flatten(2, D - 1);
        let pooled = match self.kind {
            PoolKind::Max => flat.max_dim(2),
            PoolKind::Avg => flat.mean_dim(2),
        };
        pooled.reshape([n, c])
    }
}

impl LayerInfo for GlobalPool {
    fn kind(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "GlobalMaxPooling",
            PoolKind::Avg => "GlobalAveragePooling",
        }
    }

    fn output_shape(&self, input: &FeatureShape) -> Result<FeatureShape, LayerErrorKind> {
        if input.rank() < 2 {
            return Err(LayerErrorKind::Rank {
                expected: "a (channels, spatial...) map",
                hint: " (it was flattened already)",
            });
        }
        Ok(FeatureShape::new([input.channels()]))
    }
}

/// PyTorch's `AdaptiveAvgPool2d`: average windows chosen so the map comes out `output` in
/// size whatever its input size (AlexNet and VGG pool to 6×6 and 7×7 before their dense layers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptivePoolConfig {
    #[serde(alias = "output_size")]
    pub output: Size,
}

impl AdaptivePoolConfig {
    pub fn new(output: usize) -> Self {
        Self {
            output: Size::All(output),
        }
    }

    pub fn init(&self) -> Result<AdaptiveAvgPool2d, LayerErrorKind> {
        let out = self.output.expand(2, "output")?;
        if out.contains(&0) {
            return Err(LayerErrorKind::Config(
                "the output size must be at least 1".into(),
            ));
        }
        Ok(AdaptiveAvgPool2d {
            output: [out[0], out[1]],
        })
    }
}

#[derive(Module, Debug)]
pub struct AdaptiveAvgPool2d {
    #[module(skip)]
    pub output: [usize; 2],
}

impl AdaptiveAvgPool2d {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        if [h, w] == self.output {
            return x;
        }
        adaptive_avg_pool2d(x, self.output)
    }
}

impl LayerInfo for AdaptiveAvgPool2d {
    fn kind(&self) -> &'static str {
        "AdaptiveAvgPool2d"
    }

    fn describe(&self) -> String {
        format!(
            "adaptive_avg_pool2d to {}x{}",
            self.output[0], self.output[1]
        )
    }

    fn output_shape(&self, input: &FeatureShape) -> Result<FeatureShape, LayerErrorKind> {
        spatial_dims(input, 2)?;
        Ok(FeatureShape::new([
            input.channels(),
            self.output[0],
            self.output[1],
        ]))
    }

    fn macs(&self, input: &FeatureShape, _output: &FeatureShape) -> Result<u64, LayerErrorKind> {
        macs_product(input.dims())
    }
}

/// Max pooling along the channel axis (depthwise max pooling): windows of `pool` channels every
/// `stride` channels, so `C -> (C - pool) / stride + 1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelPoolConfig {
    #[serde(alias = "pool_size", alias = "kernel")]
    pub pool: usize,
    #[serde(default, alias = "strides")]
    pub stride: Option<usize>,
}

impl ChannelPoolConfig {
    pub fn new(pool: usize) -> Self {
        Self { pool, stride: None }
    }

    pub fn init(&self) -> Result<ChannelPool, LayerErrorKind> {
        let stride = self.stride.unwrap_or(self.pool);
        if self.pool == 0 || stride == 0 {
            return Err(LayerErrorKind::Config(
                "pool size and stride must be at least 1".into(),
            ));
        }
        Ok(ChannelPool {
            pool: self.pool,
            stride,
        })
    }
}

#[derive(Module, Debug)]
pub struct ChannelPool {
    pub pool: usize,
    pub stride: usize,
}

impl ChannelPool {
    fn out_channels(&self, channels: usize) -> Result<usize, LayerErrorKind> {
        if channels < self.pool || !(channels - self.pool).is_multiple_of(self.stride) {
            return Err(LayerErrorKind::Config(format!(
                "channel pooling {} with stride {} does not tile the depth of {channels} channels",
                self.pool, self.stride
            )));
        }
        Ok((channels - self.pool) / self.stride + 1)
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Result<Tensor<D>, LayerErrorKind> {
        let dims = x.dims();
        let out = self.out_channels(dims[1])?;
        let rest: usize = dims[2..].iter().product();
        // Channels become the height of a one-channel image; a `pool x 1` window slides down it.
        let image = x.reshape([dims[0], 1, dims[1], rest]);
        let pooled = max_pool2d(
            image,
            MaxPoolOptions::new([self.pool, 1]).with_stride([self.stride, 1]),
        );
        let mut shape = dims;
        shape[1] = out;
        Ok(pooled.reshape(shape))
    }
}

impl LayerInfo for ChannelPool {
    fn kind(&self) -> &'static str {
        "ChannelMaxPooling"
    }

    fn describe(&self) -> String {
        format!("ChannelMaxPooling {}, stride {}", self.pool, self.stride)
    }

    fn output_shape(&self, input: &FeatureShape) -> Result<FeatureShape, LayerErrorKind> {
        if input.rank() < 2 {
            return Err(LayerErrorKind::Rank {
                expected: "a (channels, spatial...) map",
                hint: " (it was flattened already)",
            });
        }
        let mut dims = input.0.clone();
        dims[0] = self.out_channels(input.channels())?;
        Ok(FeatureShape::new(dims))
    }
}
