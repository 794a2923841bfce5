//! The forward pass of an ungrouped 2D convolution as im2col + GEMM.
//!
//! Per block of samples, `Y[n] = W [F, C·kh·kw] · cols[n] [C·kh·kw, P]`, one batched GEMM whose
//! result is already NCHW.
//! Measured on every `convnet bench conv` shape it beats flex's own forward (1.0–4x: BENCHMARKS,
//! issue 10), so [`conv2d`] takes it for every ungrouped f32 convolution.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{FloatTensorOps, ModuleOps};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, TensorData};

use crate::im2col::{Geometry, dims4};

/// `conv2d(x, weight)` without bias: the GEMM kernel where it applies, else flex's own
/// (grouped convolutions, other float types).
pub(crate) fn conv2d(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
    conv2d_gemm(&x, &weight, &options).unwrap_or_else(|| Flex::conv2d(x, weight, None, options))
}

fn output_size(
    x: &FlexTensor,
    weight: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<(usize, usize)> {
    let (xs, ws) = (dims4(x), dims4(weight));
    let (begin, end) = (options.padding_begin(), options.padding_end());
    let size = |axis: usize| -> Option<usize> {
        let reach = options.dilation[axis] * (ws[2 + axis] - 1) + 1;
        let padded = xs[2 + axis] + begin[axis] + end[axis];
        Some(padded.checked_sub(reach)? / options.stride[axis] + 1)
    };
    Some((size(0)?, size(1)?))
}

/// `conv2d(x, weight)` (no bias, groups 1), or `None` where this kernel does not apply.
fn conv2d_gemm(
    x: &FlexTensor,
    weight: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<FlexTensor> {
    if options.groups != 1 || [x.dtype(), weight.dtype()] != [DType::F32; 2] {
        return None;
    }
    let (ho, wo) = output_size(x, weight, options)?;
    let [n, c, _, _] = dims4(x);
    let [f, _, kh, kw] = dims4(weight);
    let geometry = Geometry::new(dims4(x), dims4(weight), [ho, wo], options);
    let x = x.to_contiguous();
    let xs = x.as_slice::<f32>()?;
    let (plane, k) = (ho * wo, c * kh * kw);
    if n * plane == 0 {
        return Some(FlexTensor::zeros([n, f, ho, wo].into(), DType::F32));
    }
    let weight = Flex::float_reshape(weight.to_contiguous(), [1, f, k].into());
    let chunk = geometry.samples_per_block(c, n);
    let mut out = Vec::with_capacity(n * f * plane);
    for start in (0..n).step_by(chunk) {
        let samples = start..(start + chunk).min(n);
        let count = samples.len();
        let cols = geometry.im2col(xs, 0..c, samples);
        // [k, count, P] read as [count, k, P] through strides, not copied.
        let cols = FlexTensor::from_data(TensorData::new(cols, [k, count, plane]));
        let y = Flex::float_matmul(weight.clone(), cols.permute(&[1, 0, 2]));
        out.extend_from_slice(y.to_contiguous().as_slice::<f32>()?);
    }
    Some(FlexTensor::from_data(TensorData::new(out, [n, f, ho, wo])))
}
