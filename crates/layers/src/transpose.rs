//! Transposed convolutions ("up-convolutions"), as U-Net and FCNs upsample with them.

use burn::module::{Module, Param};
use burn::tensor::module::{conv_transpose1d, conv_transpose2d, conv_transpose3d};
use burn::tensor::ops::ConvTransposeOptions;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::conv::{ConvSizes, pytorch_params, spatial_axes};
use crate::error::LayerErrorKind;
use crate::geometry::{Padding, TransposeAxis, transpose_axis};
use crate::layer::{LayerInfo, Size, dims_text, macs_product, spatial_dims};
use crate::rank::{arr, rerank};
use crate::shape::FeatureShape;

fn one() -> Size {
    Size::All(1)
}
fn zero() -> Size {
    Size::All(0)
}
fn one_group() -> usize {
    1
}
fn yes() -> bool {
    true
}

/// `ConvTranspose{1,2,3}d`: output length `(n - 1) s - 2p + d (f - 1) + output_padding + 1`
/// (PyTorch's rule); `padding = "same"` gives `n s`. The weight is stored as PyTorch does,
/// `[in_channels, filters / groups, k...]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvTransposeConfig {
    pub filters: usize,
    #[serde(alias = "kernel_size")]
    pub kernel: Size,
    #[serde(default = "one", alias = "strides")]
    pub stride: Size,
    #[serde(default)]
    pub padding: Padding,
    #[serde(default = "zero")]
    pub output_padding: Size,
    #[serde(default = "one", alias = "dilation_rate")]
    pub dilation: Size,
    #[serde(default = "one_group")]
    pub groups: usize,
    #[serde(default = "yes", alias = "use_bias")]
    pub bias: bool,
    #[serde(default)]
    pub activation: Activation,
}

impl ConvTransposeConfig {
    pub fn new(filters: usize, kernel: impl Into<Size>) -> Self {
        Self {
            filters,
            kernel: kernel.into(),
            stride: Size::All(1),
            padding: Padding::Valid,
            output_padding: Size::All(0),
            dilation: Size::All(1),
            groups: 1,
            bias: true,
            activation: Activation::Linear,
        }
    }
    pub fn with_stride(mut self, stride: impl Into<Size>) -> Self {
        self.stride = stride.into();
        self
    }
    pub fn with_padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }
    pub fn with_output_padding(mut self, output_padding: impl Into<Size>) -> Self {
        self.output_padding = output_padding.into();
        self
    }
    pub fn with_dilation(mut self, dilation: impl Into<Size>) -> Self {
        self.dilation = dilation.into();
        self
    }
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    pub fn init<const D: usize>(
        &self,
        in_channels: usize,
        device: &Device,
    ) -> Result<ConvTranspose<D>, LayerErrorKind> {
        let n = spatial_axes::<D>()?;
        let sizes = ConvSizes::check(
            n,
            in_channels,
            self.filters,
            self.groups,
            [&self.kernel, &self.stride, &self.dilation],
        )?;
        let output_padding = self.output_padding.expand(n, "output_padding")?;
        // PyTorch computes the fan-in of a transposed weight from its dim 1 (filters / groups).
        let (shape, fan_in) = sizes.weight([in_channels, self.filters / self.groups])?;
        let (weight, bias) =
            pytorch_params::<D>(shape, fan_in, self.bias.then_some(self.filters), device);
        let ConvSizes {
            kernel,
            stride,
            dilation,
        } = sizes;
        Ok(ConvTranspose {
            weight,
            bias,
            kernel,
            stride,
            dilation,
            output_padding,
            groups: self.groups,
            padding: self.padding.clone(),
            activation: self.activation,
        })
    }
}

/// A transposed convolution followed by an optional activation.
#[derive(Module, Debug)]
pub struct ConvTranspose<const D: usize> {
    /// `[in_channels, filters / groups, k...]`
    pub weight: Param<Tensor<D>>,
    pub bias: Option<Param<Tensor<1>>>,
    pub kernel: Vec<usize>,
    pub stride: Vec<usize>,
    pub dilation: Vec<usize>,
    pub output_padding: Vec<usize>,
    pub groups: usize,
    #[module(skip)]
    pub padding: Padding,
    #[module(skip)]
    pub activation: Activation,
}

pub type ConvTranspose1d = ConvTranspose<3>;
pub type ConvTranspose2d = ConvTranspose<4>;
pub type ConvTranspose3d = ConvTranspose<5>;

impl<const D: usize> ConvTranspose<D> {
    pub fn in_channels(&self) -> usize {
        self.weight.lazy_shape().dims::<D>()[0]
    }

    pub fn filters(&self) -> usize {
        self.weight.lazy_shape().dims::<D>()[1] * self.groups
    }

    fn geometry(&self, input: &FeatureShape) -> Result<Vec<TransposeAxis>, LayerErrorKind> {
        let spatial = spatial_dims(input, D - 2)?;
        if input.channels() != self.in_channels() {
            return Err(LayerErrorKind::Channels {
                expected: self.in_channels(),
                got: input.channels(),
            });
        }
        let n = spatial.len();
        (0..n)
            .map(|i| {
                let padding = self.padding.axis(i, n)?;
                transpose_axis(
                    spatial[i],
                    self.kernel[i],
                    self.stride[i],
                    self.dilation[i],
                    padding,
                    self.output_padding[i],
                )
                .map_err(LayerErrorKind::Config)
            })
            .collect()
    }

    pub fn forward(&self, x: Tensor<D>) -> Result<Tensor<D>, LayerErrorKind> {
        let geometry = self.geometry(&FeatureShape::new(x.dims()[1..].to_vec()))?;
        let pads: Vec<usize> = geometry.iter().map(|g| g.padding).collect();
        let outs: Vec<usize> = geometry.iter().map(|g| g.output_padding).collect();
        let w = self.weight.val();
        let b = self.bias.as_ref().map(|b| b.val());
        let (s, d, g) = (&self.stride, &self.dilation, self.groups);
        let y = match D {
            3 => rerank(conv_transpose1d(
                rerank(x),
                rerank(w),
                b,
                ConvTransposeOptions::new(arr(s), arr(&pads), arr(&outs), arr(d), g),
            )),
            4 => rerank(conv_transpose2d(
                rerank(x),
                rerank(w),
                b,
                ConvTransposeOptions::new(arr(s), arr(&pads), arr(&outs), arr(d), g),
            )),
            _ => rerank(conv_transpose3d(
                rerank(x),
                rerank(w),
                b,
                ConvTransposeOptions::new(arr(s), arr(&pads), arr(&outs), arr(d), g),
            )),
        };
        Ok(self.activation.apply(y))
    }
}

impl<const D: usize> LayerInfo for ConvTranspose<D> {
    fn kind(&self) -> &'static str {
        match D {
            3 => "Conv1DTranspose",
            4 => "Conv2DTranspose",
            _ => "Conv3DTranspose",
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} {} filters {}, stride {}, padding {}",
            self.kind(),
            self.filters(),
            dims_text(&self.kernel),
            dims_text(&self.stride),
            self.padding
        )
    }

    fn output_shape(&self, input: &FeatureShape) -> Result<FeatureShape, LayerErrorKind> {
        let geometry = self.geometry(input)?;
        let mut dims = vec![self.filters()];
        dims.extend(geometry.iter().map(|g| g.output));
        Ok(FeatureShape::new(dims))
    }

    /// Every input element is multiplied by each of its `filters / groups x k...` weights.
    fn macs(&self, input: &FeatureShape, _output: &FeatureShape) -> Result<u64, LayerErrorKind> {
        let mut factors = input.dims().to_vec();
        factors.push(self.filters() / self.groups);
        factors.extend(&self.kernel);
        macs_product(&factors)
    }
}
