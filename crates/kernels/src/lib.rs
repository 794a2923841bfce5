//! Kernels Burn's CPU backend lacks, as backend-extension ops with their own backward.
//!
//! [`conv2d`] is the convolution every convnet layer runs. On the flex backend: the forward of an
//! ungrouped convolution is im2col + GEMM (`forward.rs`); the weight gradient is im2col + GEMM
//! ([`weight_grad`]) instead of Burn's default, a convolution whose kernel is the whole output
//! gradient (3/4 of a 3x3 convolution's backward time); the input gradient is `col2im(Wᵀ·dY)`
//! or, for stride 1, a forward convolution (`input_grad.rs`). Flex keeps grouped forwards and
//! grouped strided input gradients. [`avg_pool2d`] and [`max_pool2d`] replace flex's generic 3D
//! pooling loops; [`channel_affine`] is batch norm's per-channel `x · scale + shift` in one pass;
//! [`leaky_relu`] replaces the mask-and-select composition Burn's autodiff records.
//! The GEMMs call the `gemm` crate directly on reusable buffers (`gemm.rs`). Other backends
//! (the `gpu` feature's Vulkan) run Burn's own ops unchanged. Measurements: `BENCHMARKS.md`,
//! issue 10.

mod affine;
mod avg_pool;
mod extension;
mod forward;
mod gemm;
mod im2col;
mod input_grad;
mod leaky;
mod max_pool;
mod pool;
mod weight_grad;

pub use weight_grad::weight_grad;

use burn::backend::DispatchDevice;
use burn::tensor::DType;
use burn::tensor::module;
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor};

/// A 2D convolution without bias, `[N, C, H, W] x [F, C/groups, kh, kw] -> [N, F, H', W']`,
/// with the same semantics and results (to rounding) as `burn::tensor::module::conv2d`.
///
/// # Panics
/// If the channels do not fit the weight and groups (callers validate shapes first, as
/// convnet's layers do).
pub fn conv2d(x: Tensor<4>, weight: Tensor<4>, options: ConvOptions<2>) -> Tensor<4> {
    if !on_flex(&x.device()) {
        return module::conv2d(x, weight, None, options);
    }
    let ([_, c, ..], [f, cg, ..]) = (x.dims(), weight.dims());
    assert!(
        options.groups > 0 && f % options.groups == 0 && c == cg * options.groups,
        "conv2d: input channels {c}, weight {:?} and groups {} do not fit",
        weight.dims(),
        options.groups
    );
    let out = <burn::backend::Dispatch as extension::FastConv>::conv2d_flex(
        x.into_dispatch(),
        weight.into_dispatch(),
        options,
    );
    Tensor::from_dispatch(out)
}

/// 2D average pooling, `[N, C, H, W] -> [N, C, H', W']`, with the semantics of
/// `burn::tensor::module::avg_pool2d` (PyTorch's): on flex with padding equal on both sides of
/// each axis, `avg_pool.rs`'s kernels forward and backward; otherwise Burn's own.
pub fn avg_pool2d(x: Tensor<4>, options: AvgPoolOptions<2>) -> Tensor<4> {
    if !on_flex(&x.device()) || !symmetric(&options.padding) {
        return module::avg_pool2d(x, options);
    }
    let pool = avg_pool::AvgPool2d {
        kernel: options.kernel_size,
        stride: options.stride,
        padding: options.padding.map(|(begin, _)| begin),
        count_include_pad: options.count_include_pad,
        ceil_mode: options.ceil_mode,
    };
    let out = <burn::backend::Dispatch as avg_pool::FastAvgPool>::avg_pool2d_flex(
        x.into_dispatch(),
        pool,
    );
    Tensor::from_dispatch(out)
}

/// 2D max pooling, `[N, C, H, W] -> [N, C, H', W']`, with the semantics of
/// `burn::tensor::module::max_pool2d` (PyTorch's): on flex for f32 with padding equal on both
/// sides of each axis, `max_pool.rs`'s kernels forward and backward; otherwise Burn's own.
pub fn max_pool2d(x: Tensor<4>, options: MaxPoolOptions<2>) -> Tensor<4> {
    let pool = max_pool::MaxPool2d {
        kernel: options.kernel_size,
        stride: options.stride,
        padding: options.padding.map(|(begin, _)| begin),
        dilation: options.dilation,
        ceil_mode: options.ceil_mode,
    };
    let [_, _, h, w] = x.dims();
    let fits = max_pool::output_size(&pool, [h, w]).is_some();
    if !on_flex(&x.device()) || !symmetric(&options.padding) || !fits || x.dtype() != DType::F32 {
        return module::max_pool2d(x, options);
    }
    let out = <burn::backend::Dispatch as max_pool::FastMaxPool>::max_pool2d_flex(
        x.into_dispatch(),
        pool,
    );
    Tensor::from_dispatch(out)
}

/// `x · scale + shift` with one value per channel (dimension 1 of `[N, C, ...]`): batch norm's
/// normalisation once its statistics are folded into `scale` and `shift`. On flex for f32,
/// `affine.rs`'s single parallel pass (and its backward); otherwise Burn's broadcast ops.
///
/// # Panics
/// If `scale` or `shift` does not have one value per channel (callers check the channels).
pub fn channel_affine<const D: usize>(
    x: Tensor<D>,
    scale: Tensor<1>,
    shift: Tensor<1>,
) -> Tensor<D> {
    let dims = x.dims();
    assert!(
        D >= 2 && scale.dims() == [dims[1]] && shift.dims() == [dims[1]],
        "channel_affine: scale {:?} and shift {:?} for input {dims:?}",
        scale.dims(),
        shift.dims()
    );
    let f32s = [x.dtype(), scale.dtype(), shift.dtype()] == [DType::F32; 3];
    if !on_flex(&x.device()) || !f32s {
        let mut shape = [1; D];
        shape[1] = dims[1];
        return x * scale.reshape(shape) + shift.reshape(shape);
    }
    let out = <burn::backend::Dispatch as affine::FastAffine>::channel_affine_flex(
        x.into_dispatch(),
        scale.into_dispatch(),
        shift.into_dispatch(),
    );
    Tensor::from_dispatch(out)
}

/// Leaky ReLU, `x` for `x >= 0` and `slope · x` below (Burn's `leaky_relu`): on flex for f32
/// with a slope in (0, 1], `leaky.rs`'s single pass and its backward; otherwise Burn's own.
pub fn leaky_relu<const D: usize>(x: Tensor<D>, slope: f64) -> Tensor<D> {
    if !on_flex(&x.device()) || x.dtype() != DType::F32 || !(slope > 0.0 && slope <= 1.0) {
        return burn::tensor::activation::leaky_relu(x, slope);
    }
    let out = <burn::backend::Dispatch as leaky::FastLeaky>::leaky_relu_flex(
        x.into_dispatch(),
        slope as f32,
    );
    Tensor::from_dispatch(out)
}

/// Whether each axis is padded the same on both sides (what the pooling ops of Burn's backends
/// take; other paddings go through Burn's front end, which pads explicitly).
fn symmetric(padding: &[(usize, usize); 2]) -> bool {
    padding.iter().all(|(begin, end)| begin == end)
}

/// Whether `device` is (autodiff over) the flex CPU backend.
fn on_flex(device: &Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        DispatchDevice::Flex(_)
    )
}
