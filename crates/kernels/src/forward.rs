//! The forward pass of an ungrouped 2D convolution as im2col + GEMM.
//!
//! Per block of samples, `Y[n] = W [F, C·kh·kw] · cols[n] [C·kh·kw, P]`, written straight into
//! the NCHW output; for LeNet-sized products one GEMM over the block's samples instead. A 1x1
//! convolution with stride 1 and no padding multiplies the input itself (its im2col matrix).
//! Measured on every `convnet bench conv` shape it beats flex's own forward (1.0–4x: BENCHMARKS,
//! issue 10), so [`conv2d`] takes it for every ungrouped f32 convolution.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

use crate::gemm::{PARALLEL_MACS, View, gemm};
use crate::im2col::{Geometry, Scratch, dims4, with_scratch};

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

/// Whether a block of `count` samples runs as one `[F, K] x [K, count·P]` GEMM (its
/// `[F, count, P]` result then reordered) rather than one GEMM per sample: with small maps
/// (LeNet's, the Fashion-MNIST CNN's 14x14 and 7x7) per-call overhead and re-packing the weights
/// for every sample dominated; on large maps the reordering pass costs more than it saves.
fn one_gemm(f: usize, plane: usize, count: usize) -> bool {
    count > 1 && f * plane < 1 << 16
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
    let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
    let (xs, ws) = (x.as_slice::<f32>()?, weight.as_slice::<f32>()?);
    let (plane, k) = (ho * wo, c * kh * kw);
    let mut out = vec![0f32; n * f * plane];
    // 1x1, stride 1 and no padding at either end: each output position is its input position.
    let pointwise = [kh, kw] == [1, 1]
        && options.stride == [1, 1]
        && geometry.pad == [0, 0]
        && [ho, wo] == [geometry.h, geometry.w];
    if pointwise && !one_gemm(f, plane, n) && !out.is_empty() {
        // A 1x1 convolution's im2col matrix is each sample's input as it is (ResNet-50's and
        // MobileNet's most common layer): multiply it in place instead of copying it.
        multiply(ws, xs, &mut out, [f, k, plane], Samples::Whole);
    } else if !out.is_empty() {
        let chunk = geometry.samples_per_block(c, n);
        for (block, out) in out.chunks_mut(chunk * f * plane).enumerate() {
            let samples = block * chunk..(block * chunk + chunk).min(n);
            with_scratch(Scratch::Cols, k * samples.len() * plane, |cols| {
                geometry.im2col(xs, 0..c, samples, cols);
                multiply(ws, cols, out, [f, k, plane], Samples::Interleaved);
            });
        }
    }
    Some(FlexTensor::from_data(TensorData::new(out, [n, f, ho, wo])))
}

/// How a block's `[k, P]` matrices lie in the `cols` given to [`multiply`].
#[derive(Clone, Copy, PartialEq)]
enum Samples {
    /// One im2col matrix `[k, count·P]`: sample `s` is columns `s·P..(s+1)·P`.
    Interleaved,
    /// One `[k, P]` matrix after another (NCHW input of a 1x1 convolution).
    Whole,
}

/// `out[s] = W [f, k] · (sample s's [k, P] matrix in cols)` for every sample `s` of the block.
fn multiply(ws: &[f32], cols: &[f32], out: &mut [f32], [f, k, plane]: [usize; 3], layout: Samples) {
    let count = out.len() / (f * plane);
    let len = count * plane;
    let w = View::rows(ws, k);
    let sample = |s: usize| match layout {
        Samples::Interleaved => View::rows(&cols[s * plane..], len),
        Samples::Whole => View::rows(&cols[s * k * plane..], plane),
    };
    if layout == Samples::Interleaved && one_gemm(f, plane, count) {
        with_scratch(Scratch::Block, f * len, |product| {
            gemm([f, len, k], product, len, false, w, View::rows(cols, len));
            out.par_chunks_exact_mut(f * plane)
                .enumerate()
                .for_each(|(s, out)| {
                    for (filter, out) in out.chunks_exact_mut(plane).enumerate() {
                        out.copy_from_slice(&product[filter * len + s * plane..][..plane]);
                    }
                });
        });
    } else if count == 1 || f * plane * k >= PARALLEL_MACS {
        // Large products: one at a time, each spread over the threads by the GEMM.
        for (s, out) in out.chunks_exact_mut(f * plane).enumerate() {
            gemm([f, plane, k], out, plane, false, w, sample(s));
        }
    } else {
        out.par_chunks_exact_mut(f * plane)
            .enumerate()
            .for_each(|(s, out)| gemm([f, plane, k], out, plane, false, w, sample(s)));
    }
}
