//! 2D convolution in the course's terms: filters, kernel, stride, padding, dilation, groups.

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::error::LayerErrorKind;
use crate::geometry::{AxisGeometry, Padding, Rounding, window};
use crate::layer::{LayerInfo, Size, spatial_input};
use crate::shape::FeatureShape;

fn one<const N: usize>() -> Size<N> {
    Size::all(1)
}
fn one_group() -> usize {
    1
}
fn yes() -> bool {
    true
}

/// `Conv2D(filters, kernel, ...)` as Keras spells it; the weight is stored as PyTorch does,
/// `[filters, in_channels / groups, kh, kw]`, so torchvision weights load by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv2dConfig {
    pub filters: usize,
    #[serde(alias = "kernel_size")]
    pub kernel: Size<2>,
    #[serde(default = "one")]
    pub stride: Size<2>,
    #[serde(default)]
    pub padding: Padding,
    #[serde(default = "one")]
    pub dilation: Size<2>,
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

impl Conv2dConfig {
    pub fn new(filters: usize, kernel: impl Into<Size<2>>) -> Self {
        Self {
            filters,
            kernel: kernel.into(),
            stride: Size::all(1),
            padding: Padding::Valid,
            dilation: Size::all(1),
            groups: 1,
            bias: true,
            activation: Activation::Linear,
            in_channels: None,
        }
    }
    pub fn with_stride(mut self, stride: impl Into<Size<2>>) -> Self {
        self.stride = stride.into();
        self
    }
    pub fn with_padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }
    pub fn with_dilation(mut self, dilation: impl Into<Size<2>>) -> Self {
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

    /// Creates the layer for inputs of `in_channels` channels.
    pub fn init(&self, in_channels: usize, device: &Device) -> Result<Conv2d, LayerErrorKind> {
        if let Some(expected) = self.in_channels
            && expected != in_channels
        {
            return Err(LayerErrorKind::Channels {
                expected,
                got: in_channels,
            });
        }
        if self.filters == 0 {
            return Err(LayerErrorKind::Config("filters must be at least 1".into()));
        }
        if self.groups == 0
            || !in_channels.is_multiple_of(self.groups)
            || !self.filters.is_multiple_of(self.groups)
        {
            return Err(LayerErrorKind::Config(format!(
                "groups = {} must divide both the input channels ({in_channels}) and the filters ({})",
                self.groups, self.filters
            )));
        }
        for (what, v) in [
            ("kernel size", self.kernel),
            ("stride", self.stride),
            ("dilation", self.dilation),
        ] {
            if v.0.contains(&0) {
                return Err(LayerErrorKind::Config(format!("{what} must be at least 1")));
            }
        }
        let [kh, kw] = self.kernel.0;
        let fan_in = in_channels / self.groups * kh * kw;
        let fan_out = self.filters / self.groups * kh * kw;
        // PyTorch's default: Kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        let init = Initializer::KaimingUniform {
            gain: 1.0 / 3f64.sqrt(),
            fan_out_only: false,
        };
        let weight = init.init_with(
            [self.filters, in_channels / self.groups, kh, kw],
            Some(fan_in),
            Some(fan_out),
            device,
        );
        let bias = self
            .bias
            .then(|| init.init_with([self.filters], Some(fan_in), Some(fan_out), device));
        Ok(Conv2d {
            weight,
            bias,
            kernel: self.kernel.0,
            stride: self.stride.0,
            dilation: self.dilation.0,
            groups: self.groups,
            padding: self.padding.clone(),
            activation: self.activation,
        })
    }
}

/// A 2D convolution followed by an optional activation.
#[derive(Module, Debug)]
pub struct Conv2d {
    /// `[filters, in_channels / groups, kh, kw]`
    pub weight: Param<Tensor<4>>,
    /// `[filters]`
    pub bias: Option<Param<Tensor<1>>>,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
    #[module(skip)]
    pub padding: Padding,
    #[module(skip)]
    pub activation: Activation,
}

impl Conv2d {
    pub fn filters(&self) -> usize {
        self.weight.lazy_shape().dims::<4>()[0]
    }

    pub fn in_channels(&self) -> usize {
        self.weight.lazy_shape().dims::<4>()[1] * self.groups
    }

    fn geometry(&self, input: &FeatureShape) -> Result<[AxisGeometry; 2], LayerErrorKind> {
        let hw = spatial_input::<2>(input)?;
        if input.channels() != self.in_channels() {
            return Err(LayerErrorKind::Channels {
                expected: self.in_channels(),
                got: input.channels(),
            });
        }
        Ok(window(
            hw,
            self.kernel,
            self.stride,
            self.dilation,
            &self.padding,
            Rounding::Floor,
        )?)
    }

    /// `[N, C, H, W] -> [N, filters, H', W']`.
    pub fn forward(&self, x: Tensor<4>) -> Result<Tensor<4>, LayerErrorKind> {
        let [_, c, h, w] = x.dims();
        let [gh, gw] = self.geometry(&FeatureShape::new([c, h, w]))?;
        let options = ConvOptions::new_with_padding(
            self.stride,
            [(gh.pad_begin, gh.pad_end), (gw.pad_begin, gw.pad_end)],
            self.dilation,
            self.groups,
        );
        let y = conv2d(
            x,
            self.weight.val(),
            self.bias.as_ref().map(|b| b.val()),
            options,
        );
        Ok(self.activation.apply(y))
    }
}

impl LayerInfo for Conv2d {
    fn kind(&self) -> &'static str {
        "Conv2D"
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "Conv2D {} filters {}x{}, stride {}x{}, padding {}",
            self.filters(),
            self.kernel[0],
            self.kernel[1],
            self.stride[0],
            self.stride[1],
            self.padding
        );
        if self.dilation != [1, 1] {
            s += &format!(", dilation {}x{}", self.dilation[0], self.dilation[1]);
        }
        if self.groups != 1 {
            s += &format!(", groups {}", self.groups);
        }
        s
    }

    fn output_shape(&self, input: &FeatureShape) -> Result<FeatureShape, LayerErrorKind> {
        let [gh, gw] = self.geometry(input)?;
        Ok(FeatureShape::new([self.filters(), gh.output, gw.output]))
    }

    fn macs(&self, _input: &FeatureShape, output: &FeatureShape) -> u64 {
        let per_output =
            (self.in_channels() / self.groups * self.kernel[0] * self.kernel[1]) as u64;
        output.num_elements() as u64 * per_output
    }
}
