//! The weight gradient of a 2D convolution as im2col + GEMM.
//!
//! For each group, `dW[f, (c, i, j)] = sum over samples and output positions of
//! dY[n, f, p] * X[n, c, p·stride + (i, j)·dilation - pad]`: the output gradient as an
//! `[F, N·P]` matrix times the transposed im2col matrix `[C·kh·kw, N·P]`, computed as its
//! transpose `cols · dYᵀ`: one GEMM with the long `N·P` inner dimension, which flex's matmul (the
//! `gemm` crate) runs far faster than Burn's default (a convolution whose kernel is the whole
//! output gradient).

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, TensorData};

use crate::im2col::{Geometry, dims4};

/// The weight gradient of `conv2d(x, weight)` for the output gradient `grad`, or `None` where
/// this kernel does not apply (not f32) and the caller falls back to Burn's.
pub fn weight_grad(
    x: &FlexTensor,
    weight: &FlexTensor,
    grad: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<FlexTensor> {
    if [x.dtype(), weight.dtype(), grad.dtype()] != [DType::F32; 3] {
        return None;
    }
    let [n, _, _, _] = dims4(x);
    let [f, cg, kh, kw] = dims4(weight);
    let [_, _, ho, wo] = dims4(grad);
    let groups = options.groups;
    let fg = f / groups;
    let x = x.to_contiguous();
    let grad = grad.to_contiguous();
    let (xs, gs) = (x.as_slice::<f32>()?, grad.as_slice::<f32>()?);
    let geometry = Geometry::new(dims4(&x), [f, cg, kh, kw], [ho, wo], options);
    let (plane, k) = (ho * wo, cg * kh * kw);
    if n * plane == 0 {
        return Some(FlexTensor::zeros([f, cg, kh, kw].into(), DType::F32));
    }
    let chunk = geometry.samples_per_block(cg, n);
    // The GEMM runs faster with the long inner dimension `len` against the k rows of the
    // im2col matrix, and `[k, fg]` blocks are transposed once at the end; where the samples'
    // positions are fewer than k (a 512-channel 7x7 map) that transpose outweighs the gain.
    let filters_first = n * plane < k;
    let mut dw = vec![0f32; f * k];
    for group in 0..groups {
        for start in (0..n).step_by(chunk) {
            let samples = start..(start + chunk).min(n);
            let cols = geometry.im2col(xs, group * cg..(group + 1) * cg, samples.clone());
            let dy = output_rows(gs, f, plane, group * fg..(group + 1) * fg, samples.clone());
            let len = samples.len() * plane;
            let cols = FlexTensor::from_data(TensorData::new(cols, [k, len]));
            let dy = FlexTensor::from_data(TensorData::new(dy, [fg, len]));
            // Transposed views are read with strides, not copied.
            let part = if filters_first {
                Flex::float_matmul(dy, cols.transpose(0, 1)) // [fg, len] x [len, k]
            } else {
                Flex::float_matmul(cols, dy.transpose(0, 1)) // [k, len] x [len, fg]
            };
            let part = part.as_slice::<f32>()?;
            for (acc, v) in dw[group * fg * k..(group + 1) * fg * k]
                .iter_mut()
                .zip(part)
            {
                *acc += v;
            }
        }
    }
    if filters_first {
        return Some(FlexTensor::from_data(TensorData::new(dw, [f, cg, kh, kw])));
    }
    // `dw` holds each group's `[k, fg]` block: make it `[fg, k]`, i.e. `[f, cg, kh, kw]`.
    let dw = FlexTensor::from_data(TensorData::new(dw, [groups, k, fg]));
    Some(
        dw.permute(&[0, 2, 1])
            .to_contiguous()
            .reshape([f, cg, kh, kw].into()),
    )
}

/// `grad[samples, filters, :]` as a `[filters, samples·P]` matrix.
fn output_rows(
    grad: &[f32],
    f: usize,
    plane: usize,
    filters: std::ops::Range<usize>,
    samples: std::ops::Range<usize>,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(filters.len() * samples.len() * plane);
    for filter in filters {
        for s in samples.clone() {
            let at = (s * f + filter) * plane;
            out.extend_from_slice(&grad[at..at + plane]);
        }
    }
    out
}
