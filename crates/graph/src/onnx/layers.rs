//! ONNX's convolutions, pools and local response normalisation as convnet's own layers, built
//! once per device from the node's settings and weights, so an imported network runs the same
//! kernels as the zoo's.

use burn::module::Param;
use burn::tensor::Tensor;
use convnet_layers::{
    Activation, Conv, ConvTranspose, LocalResponseNorm, Padding, Pool, PoolKind, Rounding,
};
use onnx_ir::node::padding::{AutoPad, PaddingConfig1d, PaddingConfig2d, PaddingConfig3d};

use super::value::Float;
use crate::GraphError;

/// A convolution or transposed convolution of 1, 2 or 3 spatial axes.
#[derive(Debug, Clone)]
pub enum ConvLayer {
    C1(Conv<3>),
    C2(Conv<4>),
    C3(Conv<5>),
    T1(ConvTranspose<3>),
    T2(ConvTranspose<4>),
    T3(ConvTranspose<5>),
}

/// Settings shared by the 1D, 2D and 3D forms, one entry per spatial axis.
#[derive(Debug, Clone)]
pub struct Window {
    pub kernel: Vec<usize>,
    pub stride: Vec<usize>,
    pub dilation: Vec<usize>,
    pub padding: Padding,
}

pub fn padding1(p: &PaddingConfig1d, auto: &AutoPad) -> Padding {
    match p {
        PaddingConfig1d::Explicit(b, e) => Padding::Explicit(vec![(*b, *e)]),
        PaddingConfig1d::Valid => auto_padding(auto),
    }
}

pub fn padding2(p: &PaddingConfig2d, auto: &AutoPad) -> Padding {
    match p {
        PaddingConfig2d::Explicit(t, l, b, r) => Padding::Explicit(vec![(*t, *b), (*l, *r)]),
        PaddingConfig2d::Valid => auto_padding(auto),
    }
}

pub fn padding3(p: &PaddingConfig3d, auto: &AutoPad) -> Padding {
    match p {
        PaddingConfig3d::Explicit(f, t, l, bk, b, r) => {
            Padding::Explicit(vec![(*f, *bk), (*t, *b), (*l, *r)])
        }
        PaddingConfig3d::Valid => auto_padding(auto),
    }
}

/// `onnx-ir` resolves `SAME_*` to explicit pads when the spatial sizes are known; otherwise
/// SAME_UPPER is TensorFlow's rule, which convnet's `Same` follows (SAME_LOWER is refused by
/// the parser in that case).
fn auto_padding(auto: &AutoPad) -> Padding {
    match auto {
        AutoPad::SameUpper | AutoPad::SameLower => Padding::Same,
        _ => Padding::Valid,
    }
}

fn param<const D: usize>(t: Tensor<D>) -> Param<Tensor<D>> {
    Param::from_tensor(t)
}

impl ConvLayer {
    pub fn conv(
        w: Float,
        bias: Option<Tensor<1>>,
        win: Window,
        groups: usize,
    ) -> Result<Self, GraphError> {
        let bias = bias.map(param);
        macro_rules! build {
            ($t:expr) => {
                Conv {
                    weight: param($t),
                    bias,
                    kernel: win.kernel,
                    stride: win.stride,
                    dilation: win.dilation,
                    groups,
                    padding: win.padding,
                    activation: Activation::Linear,
                }
            };
        }
        Ok(match w {
            Float::R3(t) => ConvLayer::C1(build!(t)),
            Float::R4(t) => ConvLayer::C2(build!(t)),
            Float::R5(t) => ConvLayer::C3(build!(t)),
            other => return Err(weight_rank(&other.dims())),
        })
    }

    pub fn transpose(
        w: Float,
        bias: Option<Tensor<1>>,
        win: Window,
        output_padding: Vec<usize>,
        groups: usize,
    ) -> Result<Self, GraphError> {
        let bias = bias.map(param);
        macro_rules! build {
            ($t:expr) => {
                ConvTranspose {
                    weight: param($t),
                    bias,
                    kernel: win.kernel,
                    stride: win.stride,
                    dilation: win.dilation,
                    output_padding,
                    groups,
                    padding: win.padding,
                    activation: Activation::Linear,
                }
            };
        }
        Ok(match w {
            Float::R3(t) => ConvLayer::T1(build!(t)),
            Float::R4(t) => ConvLayer::T2(build!(t)),
            Float::R5(t) => ConvLayer::T3(build!(t)),
            other => return Err(weight_rank(&other.dims())),
        })
    }

    pub fn forward(&self, x: Float) -> Result<Float, String> {
        let e = |e: convnet_layers::LayerErrorKind| e.to_string();
        Ok(match (self, x) {
            (ConvLayer::C1(c), Float::R3(x)) => Float::R3(c.forward(x).map_err(e)?),
            (ConvLayer::C2(c), Float::R4(x)) => Float::R4(c.forward(x).map_err(e)?),
            (ConvLayer::C3(c), Float::R5(x)) => Float::R5(c.forward(x).map_err(e)?),
            (ConvLayer::T1(c), Float::R3(x)) => Float::R3(c.forward(x).map_err(e)?),
            (ConvLayer::T2(c), Float::R4(x)) => Float::R4(c.forward(x).map_err(e)?),
            (ConvLayer::T3(c), Float::R5(x)) => Float::R5(c.forward(x).map_err(e)?),
            (_, x) => {
                return Err(format!(
                    "input of shape {:?} does not fit the weight",
                    x.dims()
                ));
            }
        })
    }
}

fn weight_rank(dims: &[usize]) -> GraphError {
    GraphError::invalid(format!(
        "a convolution weight of shape {dims:?}: convnet runs 1D, 2D and 3D convolutions"
    ))
}

/// A max or average pool of 1, 2 or 3 spatial axes.
#[derive(Debug, Clone)]
pub enum PoolLayer {
    P1(Pool<3>),
    P2(Pool<4>),
    P3(Pool<5>),
}

impl PoolLayer {
    pub fn new(
        kind: PoolKind,
        win: Window,
        ceil: bool,
        count_include_pad: bool,
    ) -> Result<Self, GraphError> {
        let spatial = win.kernel.len();
        macro_rules! build {
            () => {
                Pool {
                    kind,
                    pool: win.kernel,
                    stride: win.stride,
                    dilation: win.dilation,
                    padding: win.padding,
                    rounding: if ceil {
                        Rounding::Ceil
                    } else {
                        Rounding::Floor
                    },
                    count_include_pad,
                }
            };
        }
        Ok(match spatial {
            1 => PoolLayer::P1(build!()),
            2 => PoolLayer::P2(build!()),
            3 => PoolLayer::P3(build!()),
            n => {
                return Err(GraphError::invalid(format!(
                    "a pool over {n} axes: convnet pools over 1, 2 or 3"
                )));
            }
        })
    }

    pub fn forward(&self, x: Float) -> Result<Float, String> {
        let e = |e: convnet_layers::LayerErrorKind| e.to_string();
        Ok(match (self, x) {
            (PoolLayer::P1(p), Float::R3(x)) => Float::R3(p.forward(x).map_err(e)?),
            (PoolLayer::P2(p), Float::R4(x)) => Float::R4(p.forward(x).map_err(e)?),
            (PoolLayer::P3(p), Float::R5(x)) => Float::R5(p.forward(x).map_err(e)?),
            (_, x) => {
                return Err(format!(
                    "input of shape {:?} does not fit the pool",
                    x.dims()
                ));
            }
        })
    }
}

/// ONNX's LRN (`alpha` divided by `size`, a window of `size` channels centred on each) as
/// convnet's layer (`alpha` on the plain sum over `2r+1` channels).
pub fn lrn(size: i64, alpha: f32, beta: f32, bias: f32) -> Result<LocalResponseNorm, GraphError> {
    if size < 1 || size % 2 == 0 {
        return Err(GraphError::invalid(format!(
            "LRN size {size}: convnet runs odd window sizes (a window centred on each channel)"
        )));
    }
    Ok(LocalResponseNorm {
        depth_radius: ((size - 1) / 2) as usize,
        bias: f64::from(bias),
        alpha: f64::from(alpha) / size as f64,
        beta: f64::from(beta),
    })
}
