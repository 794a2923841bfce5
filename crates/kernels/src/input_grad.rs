//! The input gradient of a convolution: `col2im(Wᵀ·dY)` for ungrouped ones, or for stride 1 a
//! forward convolution.
//!
//! Burn computes every input gradient as a transposed convolution, and flex's is slow (a
//! depthwise 3x3's backward took 30x its forward; an ungrouped 3x3's 1.4x our GEMM forward).
//! With stride 1 the input gradient is itself a convolution: the output gradient, padded by
//! `d(k-1) - pad`, convolved with the kernels flipped in space and with input / output channels
//! swapped inside each group, which runs on our GEMM forward or flex's depthwise path.

use burn::backend::flex::FlexTensor;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, TensorData};

use crate::gemm::{View, gemm};
use crate::im2col::{Geometry, Scratch, dims4, with_scratch};
use crate::weight_grad::output_rows;

/// `d conv2d(x, weight) / dx` of an ungrouped f32 convolution as `col2im(Wᵀ · dY)`: one GEMM
/// per block of samples into an im2col-shaped buffer, whose entries are then added back onto
/// the input pixels they came from. Any stride, dilation and padding; `None` for groups or
/// other float types.
pub(crate) fn col2im(
    x: &FlexTensor,
    weight: &FlexTensor,
    grad: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<FlexTensor> {
    if options.groups != 1 || [weight.dtype(), grad.dtype()] != [DType::F32; 2] {
        return None;
    }
    let input = dims4(x);
    let [n, c, h, w] = input;
    let [f, _, kh, kw] = dims4(weight);
    let [_, _, ho, wo] = dims4(grad);
    let geometry = Geometry::new(input, [f, c, kh, kw], [ho, wo], options);
    let (weight, grad) = (weight.to_contiguous(), grad.to_contiguous());
    let (ws, gs) = (weight.as_slice::<f32>()?, grad.as_slice::<f32>()?);
    let (plane, k) = (ho * wo, c * kh * kw);
    let mut dx = vec![0f32; n * c * h * w];
    if !dx.is_empty() && plane > 0 {
        let chunk = geometry.samples_per_block(c, n);
        for (block, dx) in dx.chunks_mut(chunk * c * h * w).enumerate() {
            let samples = block * chunk..(block * chunk + chunk).min(n);
            let len = samples.len() * plane;
            with_scratch(Scratch::Block, f * len, |dy| {
                output_rows(gs, f, plane, 0, samples, dy);
                with_scratch(Scratch::Cols, k * len, |cols| {
                    // cols [k, len] = Wᵀ [k, f] · dY [f, len]
                    let wt = View::rows(ws, k).t();
                    gemm([k, len, f], cols, len, false, wt, View::rows(dy, len));
                    geometry.col2im(cols, dx);
                });
            });
        }
    }
    Some(FlexTensor::from_data(TensorData::new(dx, input)))
}

/// Below this many output positions (`N·H'·W'`) an ungrouped convolution's input gradient stays
/// with flex's transposed convolution: rearranging the kernels costs as much as the GEMM saves
/// (a 512-channel 7x7 map ran 12x slower this way; LeNet's second conv 10% slower).
const MIN_POSITIONS: usize = 4096;

/// `d conv2d(x, weight) / dx` for the output gradient `grad`, or `None` where this route does
/// not apply (strided, or padding wider than the dilated kernel) or does not pay.
pub(crate) fn stride1(
    x: &FlexTensor,
    weight: &FlexTensor,
    grad: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<FlexTensor> {
    let groups = options.groups;
    let [n, _, ho, wo] = dims4(grad);
    let positions = n * ho * wo;
    if options.stride != [1, 1] || (groups == 1 && positions < MIN_POSITIONS) {
        return None;
    }
    let [f, cg, kh, kw] = dims4(weight);
    let (begin, end) = (options.padding_begin(), options.padding_end());
    let reach = [
        options.dilation[0] * (kh - 1),
        options.dilation[1] * (kw - 1),
    ];
    let pad = |axis: usize| -> Option<(usize, usize)> {
        Some((
            reach[axis].checked_sub(begin[axis])?,
            reach[axis].checked_sub(end[axis])?,
        ))
    };
    let (pad_h, pad_w) = (pad(0)?, pad(1)?);
    let w = swap_and_flip(weight, groups, [f, cg, kh, kw])?;
    let dx = crate::forward::conv2d(
        grad.clone(),
        w,
        ConvOptions::new_with_padding([1, 1], [pad_h, pad_w], options.dilation, groups),
    );
    debug_assert_eq!(dx.layout().shape(), x.layout().shape());
    Some(dx)
}

/// `[g·fg, cg, kh, kw] -> [g·cg, fg, kh, kw]`, each kernel flipped in space: one pass by hand,
/// as flex's strided copy of the permuted, flipped view took milliseconds for 512x512x3x3.
fn swap_and_flip(
    weight: &FlexTensor,
    groups: usize,
    [f, cg, kh, kw]: [usize; 4],
) -> Option<FlexTensor> {
    let weight = weight.to_contiguous();
    let w = weight.as_slice::<f32>()?;
    let (fg, taps) = (f / groups, kh * kw);
    let mut out = vec![0f32; w.len()];
    for (row, kernel) in out.chunks_exact_mut(fg * taps).enumerate() {
        let (g, ci) = (row / cg, row % cg);
        for (fo, dst) in kernel.chunks_exact_mut(taps).enumerate() {
            let src = &w[((g * fg + fo) * cg + ci) * taps..][..taps];
            for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                *d = *s;
            }
        }
    }
    Some(FlexTensor::from_data(TensorData::new(
        out,
        [groups * cg, fg, kh, kw],
    )))
}
