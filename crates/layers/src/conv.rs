//! Convolutions in the course's terms (filters, kernel, stride, padding, dilation, groups) over
//! 1, 2 or 3 spatial axes, plus the depthwise and separable forms MobileNet and Xception use.

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::module::conv3d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::error::LayerErrorKind;
use crate::geometry::{AxisGeometry, Padding, Rounding, window_dyn};
use crate::layer::{LayerInfo, Size, dims_text, macs_product, macs_sum, spatial_dims};
use crate::limits::checked_product;
use crate::rank::{arr, rerank};
use crate::shape::FeatureShape;

fn one() -> Size {
    Size::All(1)
}
fn one_group() -> usize {
    1
}
fn yes() -> bool {
    true
}

/// `Conv1D` / `Conv2D` / `Conv3D(filters, kernel, ...)` as Keras spells them; the weight is
/// stored as PyTorch does, `[filters, in_channels / groups, k...]`, so torchvision weights load
/// by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvConfig {
    pub filters: usize,
    #[serde(alias = "kernel_size")]
    pub kernel: Size,
    #[serde(default = "one", alias = "strides")]
    pub stride: Size,
    #[serde(default)]
    pub padding: Padding,
    #[serde(default = "one", alias = "dilation_rate")]
    pub dilation: Size,
    #[serde(default = "one_group")]
    pub groups: usize,
    #[serde(default = "yes", alias = "use_bias")]
    pub bias: bool,
    #[serde(default)]
    pub activation: Activation,
    /// Optional: when given, the input must have this many channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_channels: Option<usize>,
}

/// The 2D form most code spells out.
pub type Conv2dConfig = ConvConfig;

impl ConvConfig {
    pub fn new(filters: usize, kernel: impl Into<Size>) -> Self {
        Self {
            filters,
            kernel: kernel.into(),
            stride: Size::All(1),
            padding: Padding::Valid,
            dilation: Size::All(1),
            groups: 1,
            bias: true,
            activation: Activation::Linear,
            in_channels: None,
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
    pub fn with_dilation(mut self, dilation: impl Into<Size>) -> Self {
        self.dilation = dilation.into();
        self
    }
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }
    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// Creates the layer for inputs of `in_channels` channels; `D` is the tensor rank
    /// (3: 1D signals, 4: images, 5: volumes).
    pub fn init<const D: usize>(
        &self,
        in_channels: usize,
        device: &Device,
    ) -> Result<Conv<D>, LayerErrorKind> {
        let n = spatial_axes::<D>()?;
        if let Some(expected) = self.in_channels
            && expected != in_channels
        {
            return Err(LayerErrorKind::Channels {
                expected,
                got: in_channels,
            });
        }
        let sizes = ConvSizes::check(
            n,
            in_channels,
            self.filters,
            self.groups,
            [&self.kernel, &self.stride, &self.dilation],
        )?;
        let (shape, fan_in) = sizes.weight([self.filters, in_channels / self.groups])?;
        let (weight, bias) =
            pytorch_params::<D>(shape, fan_in, self.bias.then_some(self.filters), device);
        let ConvSizes {
            kernel,
            stride,
            dilation,
        } = sizes;
        Ok(Conv {
            weight,
            bias,
            kernel,
            stride,
            dilation,
            groups: self.groups,
            padding: self.padding.clone(),
            activation: self.activation,
        })
    }
}

/// Spatial axes of a rank-`D` batch, or an error for ranks convnet has no convolution for.
/// `y + bias` per output channel (`[N, F, H, W]`): convnet's 2D kernel takes no bias.
/// The bias added per channel in one pass (flex's broadcast add of `[1, F, 1, 1]` walks the
/// map more slowly: 18% of an imported ResNet-50's batch-16 time, whose convolutions carry
/// their folded batch norms as biases).
fn with_bias(y: Tensor<4>, bias: Option<Tensor<1>>) -> Tensor<4> {
    match bias {
        Some(b) => {
            let ones = Tensor::ones(b.dims(), &b.device());
            convnet_kernels::channel_affine(y, ones, b)
        }
        None => y,
    }
}

pub(crate) fn spatial_axes<const D: usize>() -> Result<usize, LayerErrorKind> {
    match D {
        3..=5 => Ok(D - 2),
        _ => Err(LayerErrorKind::Config(format!(
            "convolutions take 1 to 3 spatial axes, not {}",
            D.saturating_sub(2)
        ))),
    }
}

/// Kernel, stride and dilation of a convolution (plain or transposed), checked against its
/// channels and groups.
pub(crate) struct ConvSizes {
    pub kernel: Vec<usize>,
    pub stride: Vec<usize>,
    pub dilation: Vec<usize>,
}

impl ConvSizes {
    pub(crate) fn check(
        spatial_axes: usize,
        in_channels: usize,
        filters: usize,
        groups: usize,
        [kernel, stride, dilation]: [&Size; 3],
    ) -> Result<Self, LayerErrorKind> {
        if filters == 0 {
            return Err(LayerErrorKind::Config("filters must be at least 1".into()));
        }
        if groups == 0 || !in_channels.is_multiple_of(groups) || !filters.is_multiple_of(groups) {
            return Err(LayerErrorKind::Config(format!(
                "groups = {groups} must divide both the input channels ({in_channels}) and the filters ({filters})"
            )));
        }
        Ok(Self {
            kernel: kernel.resolve(spatial_axes, "kernel size")?,
            stride: stride.resolve(spatial_axes, "stride")?,
            dilation: dilation.resolve(spatial_axes, "dilation")?,
        })
    }

    /// The weight's shape, `outer` then the kernel, and its fan-in (`outer[1]` times the
    /// kernel's area), or an error when the weight's size does not fit in 64 bits.
    pub(crate) fn weight(&self, outer: [usize; 2]) -> Result<(Vec<usize>, usize), LayerErrorKind> {
        let mut shape = outer.to_vec();
        shape.extend(&self.kernel);
        checked_product("weights", &shape)?;
        // A factor of the product just checked, so it fits too.
        let fan_in = shape[1..].iter().product();
        Ok((shape, fan_in))
    }
}

/// A weight of `shape` and an optional bias of `bias_channels` values, initialised as PyTorch
/// does: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (Kaiming-uniform with a = sqrt(5)).
pub(crate) fn pytorch_params<const D: usize>(
    shape: Vec<usize>,
    fan_in: usize,
    bias_channels: Option<usize>,
    device: &Device,
) -> (Param<Tensor<D>>, Option<Param<Tensor<1>>>) {
    let init = Initializer::KaimingUniform {
        gain: 1.0 / 3f64.sqrt(),
        fan_out_only: false,
    };
    let weight = init.init_with::<D, _>(shape, Some(fan_in), None, device);
    let bias = bias_channels.map(|c| init.init_with([c], Some(fan_in), None, device));
    (weight, bias)
}

/// A convolution followed by an optional activation, over `D - 2` spatial axes.
#[derive(Module, Debug)]
pub struct Conv<const D: usize> {
    /// `[filters, in_channels / groups, k...]`
    pub weight: Param<Tensor<D>>,
    /// `[filters]`
    pub bias: Option<Param<Tensor<1>>>,
    pub kernel: Vec<usize>,
    pub stride: Vec<usize>,
    pub dilation: Vec<usize>,
    pub groups: usize,
    #[module(skip)]
    pub padding: Padding,
    #[module(skip)]
    pub activation: Activation,
}

pub type Conv1d = Conv<3>;
pub type Conv2d = Conv<4>;
pub type Conv3d = Conv<5>;

impl<const D: usize> Conv<D> {
    pub fn filters(&self) -> usize {
        self.weight.lazy_shape().dims::<D>()[0]
    }

    pub fn in_channels(&self) -> usize {
        self.weight.lazy_shape().dims::<D>()[1] * self.groups
    }

    fn geometry(&self, input: &FeatureShape) -> Result<Vec<AxisGeometry>, LayerErrorKind> {
        let spatial = spatial_dims(input, D - 2)?;
        if input.channels() != self.in_channels() {
            return Err(LayerErrorKind::Channels {
                expected: self.in_channels(),
                got: input.channels(),
            });
        }
        Ok(window_dyn(
            &spatial,
            &self.kernel,
            &self.stride,
            &self.dilation,
            &self.padding,
            Rounding::Floor,
        )?)
    }

    /// `[N, C, spatial...] -> [N, filters, spatial'...]`.
    pub fn forward(&self, x: Tensor<D>) -> Result<Tensor<D>, LayerErrorKind> {
        let geometry = self.geometry(&FeatureShape::new(x.dims()[1..].to_vec()))?;
        let pads: Vec<(usize, usize)> = geometry.iter().map(|g| (g.pad_begin, g.pad_end)).collect();
        let w = self.weight.val();
        let b = self.bias.as_ref().map(|b| b.val());
        let (s, d, g) = (&self.stride, &self.dilation, self.groups);
        let y = match D {
            // Burn 0.22's grouped conv1d returns a wrong weight gradient when the end of the
            // padded input is covered by no window (its 1D weight-grad path does not crop,
            // unlike the 2D one); the same convolution as a 1 x L image avoids it.
            3 => {
                let [n, c, l] = arr::<usize, 3>(&x.dims());
                let [f, cg, k] = arr::<usize, 3>(&w.dims());
                let y = with_bias(
                    convnet_kernels::conv2d(
                        x.reshape([n, c, 1, l]),
                        w.reshape([f, cg, 1, k]),
                        ConvOptions::new_with_padding([1, s[0]], [(0, 0), pads[0]], [1, d[0]], g),
                    ),
                    b,
                );
                let [n, f, _, l] = y.dims();
                rerank(y.reshape([n, f, l]))
            }
            4 => rerank(with_bias(
                convnet_kernels::conv2d(
                    rerank(x),
                    rerank(w),
                    ConvOptions::new_with_padding(arr(s), arr(&pads), arr(d), g),
                ),
                b,
            )),
            // Burn's conv3d takes symmetric padding only: pad the input itself otherwise.
            _ => {
                let (x, pads) = if pads.iter().any(|(b, e)| b != e) {
                    (x.pad(pads.clone(), PadMode::Constant(0.0)), vec![(0, 0); 3])
                } else {
                    (x, pads)
                };
                rerank(conv3d(
                    rerank(x),
                    rerank(w),
                    b,
                    ConvOptions::new_with_padding(arr(s), arr(&pads), arr(d), g),
                ))
            }
        };
        Ok(self.activation.apply(y))
    }
}

impl<const D: usize> LayerInfo for Conv<D> {
    fn kind(&self) -> &'static str {
        match (D, self.groups) {
            (4, g) if g > 1 && g == self.in_channels() => "DepthwiseConv2D",
            (3, _) => "Conv1D",
            (4, _) => "Conv2D",
            _ => "Conv3D",
        }
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "{} {} filters {}, stride {}, padding {}",
            self.kind(),
            self.filters(),
            dims_text(&self.kernel),
            dims_text(&self.stride),
            self.padding
        );
        if self.dilation.iter().any(|&d| d != 1) {
            s += &format!(", dilation {}", dims_text(&self.dilation));
        }
        if self.groups != 1 {
            s += &format!(", groups {}", self.groups);
        }
        s
    }

    fn output_shape(&self, input: &FeatureShape) -> Result<FeatureShape, LayerErrorKind> {
        let geometry = self.geometry(input)?;
        let mut dims = vec![self.filters()];
        dims.extend(geometry.iter().map(|g| g.output));
        Ok(FeatureShape::new(dims))
    }

    fn macs(&self, _input: &FeatureShape, output: &FeatureShape) -> Result<u64, LayerErrorKind> {
        let mut factors = output.dims().to_vec();
        factors.push(self.in_channels() / self.groups);
        factors.extend(&self.kernel);
        macs_product(&factors)
    }
}

/// `DepthwiseConv2D`: one `kernel` filter per input channel (`depth_multiplier` of them), i.e. a
/// convolution with `groups = in_channels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepthwiseConfig {
    #[serde(alias = "kernel_size")]
    pub kernel: Size,
    #[serde(default = "one_group")]
    pub depth_multiplier: usize,
    #[serde(default = "one", alias = "strides")]
    pub stride: Size,
    #[serde(default)]
    pub padding: Padding,
    #[serde(default = "one", alias = "dilation_rate")]
    pub dilation: Size,
    #[serde(default = "yes", alias = "use_bias")]
    pub bias: bool,
    #[serde(default)]
    pub activation: Activation,
}

impl DepthwiseConfig {
    pub fn new(kernel: impl Into<Size>) -> Self {
        Self {
            kernel: kernel.into(),
            depth_multiplier: 1,
            stride: Size::All(1),
            padding: Padding::Valid,
            dilation: Size::All(1),
            bias: true,
            activation: Activation::Linear,
        }
    }

    /// The equivalent grouped convolution for `in_channels` channels.
    pub fn conv(&self, in_channels: usize) -> ConvConfig {
        ConvConfig {
            filters: in_channels * self.depth_multiplier,
            kernel: self.kernel.clone(),
            stride: self.stride.clone(),
            padding: self.padding.clone(),
            dilation: self.dilation.clone(),
            groups: in_channels,
            bias: self.bias,
            activation: self.activation,
            in_channels: None,
        }
    }

    pub fn init<const D: usize>(
        &self,
        in_channels: usize,
        device: &Device,
    ) -> Result<Conv<D>, LayerErrorKind> {
        if self.depth_multiplier == 0 {
            return Err(LayerErrorKind::Config(
                "depth_multiplier must be at least 1".into(),
            ));
        }
        self.conv(in_channels).init(in_channels, device)
    }
}

/// `SeparableConv2D`: a depthwise convolution (no bias) followed by a 1x1 pointwise one, as in
/// Xception and MobileNet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeparableConfig {
    pub filters: usize,
    #[serde(alias = "kernel_size")]
    pub kernel: Size,
    #[serde(default = "one_group")]
    pub depth_multiplier: usize,
    #[serde(default = "one", alias = "strides")]
    pub stride: Size,
    #[serde(default)]
    pub padding: Padding,
    #[serde(default = "one", alias = "dilation_rate")]
    pub dilation: Size,
    #[serde(default = "yes", alias = "use_bias")]
    pub bias: bool,
    #[serde(default)]
    pub activation: Activation,
}

impl SeparableConfig {
    pub fn new(filters: usize, kernel: impl Into<Size>) -> Self {
        Self {
            filters,
            kernel: kernel.into(),
            depth_multiplier: 1,
            stride: Size::All(1),
            padding: Padding::Valid,
            dilation: Size::All(1),
            bias: true,
            activation: Activation::Linear,
        }
    }

    pub fn init<const D: usize>(
        &self,
        in_channels: usize,
        device: &Device,
    ) -> Result<SeparableConv<D>, LayerErrorKind> {
        let depthwise = DepthwiseConfig {
            kernel: self.kernel.clone(),
            depth_multiplier: self.depth_multiplier,
            stride: self.stride.clone(),
            padding: self.padding.clone(),
            dilation: self.dilation.clone(),
            bias: false,
            activation: Activation::Linear,
        }
        .init(in_channels, device)?;
        let pointwise = ConvConfig::new(self.filters, 1)
            .with_bias(self.bias)
            .with_activation(self.activation)
            .init(in_channels * self.depth_multiplier, device)?;
        Ok(SeparableConv {
            depthwise,
            pointwise,
        })
    }
}

/// Depthwise then pointwise convolution.
#[derive(Module, Debug)]
pub struct SeparableConv<const D: usize> {
    pub depthwise: Conv<D>,
    pub pointwise: Conv<D>,
}

impl<const D: usize> SeparableConv<D> {
    pub fn forward(&self, x: Tensor<D>) -> Result<Tensor<D>, LayerErrorKind> {
        self.pointwise.forward(self.depthwise.forward(x)?)
    }
}

impl<const D: usize> LayerInfo for SeparableConv<D> {
    fn kind(&self) -> &'static str {
        match D {
            3 => "SeparableConv1D",
            _ => "SeparableConv2D",
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} {} filters {}, stride {}, padding {}",
            self.kind(),
            self.pointwise.filters(),
            dims_text(&self.depthwise.kernel),
            dims_text(&self.depthwise.stride),
            self.depthwise.padding
        )
    }

    fn output_shape(&self, input: &FeatureShape) -> Result<FeatureShape, LayerErrorKind> {
        self.pointwise
            .output_shape(&self.depthwise.output_shape(input)?)
    }

    fn macs(&self, input: &FeatureShape, output: &FeatureShape) -> Result<u64, LayerErrorKind> {
        let mid = self.depthwise.output_shape(input)?;
        macs_sum(
            self.depthwise.macs(input, &mid)?,
            self.pointwise.macs(&mid, output)?,
        )
    }
}
