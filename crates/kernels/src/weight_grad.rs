//! The weight gradient of a 2D convolution as im2col + GEMM.
//!
//! For each group, `dW[f, (c, i, j)] = sum over samples and output positions of
//! dY[n, f, p] * X[n, c, p·stride + (i, j)·dilation - pad]`: the output gradient as an
//! `[F, N·P]` matrix times the transposed im2col matrix `[C·kh·kw, N·P]`: one GEMM per block of
//! samples with the long `N·P` inner dimension, far faster than Burn's default (a convolution
//! whose kernel is the whole output gradient).

use burn::backend::flex::FlexTensor;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, TensorData};

use crate::gemm::{View, gemm};
use crate::im2col::{Geometry, Scratch, dims4, with_scratch};

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
    // The GEMM crate re-packs whichever operand is not contiguous along the long `len` axis in
    // the orientation the result is stored in; storing each group's block as `[k, fg]` (and
    // transposing it once at the end) makes that the output gradient's `fg` rows rather than
    // the im2col matrix's `k` rows. With few filters (a U-Net's 16–64) packing the im2col matrix
    // took longer than the arithmetic. The final transpose costs ~`fg·k` strided copies, which
    // outweighs the packing saved where positions are few (a 512-channel 7x7 map: 2.4 -> 9 ms).
    let transposed = fg < k && (k - fg) * n * plane > 4 * fg * k;
    let mut dw = vec![0f32; f * k];
    for group in 0..groups {
        let dw = &mut dw[group * fg * k..(group + 1) * fg * k];
        for start in (0..n).step_by(chunk) {
            let samples = start..(start + chunk).min(n);
            let len = samples.len() * plane;
            with_scratch(Scratch::Cols, k * len, |cols| {
                geometry.im2col(xs, group * cg..(group + 1) * cg, samples.clone(), cols);
                with_scratch(Scratch::Block, fg * len, |dy| {
                    output_rows(gs, f, plane, group * fg, samples, dy);
                    let (dy, cols) = (View::rows(dy, len), View::rows(cols, len));
                    if transposed {
                        // dW_gᵀ [k, fg] += cols [k, len] · dYᵀ [len, fg]
                        gemm([k, fg, len], dw, fg, true, cols, dy.t());
                    } else {
                        // dW_g [fg, k] += dY [fg, len] · colsᵀ [len, k]
                        gemm([fg, k, len], dw, k, true, dy, cols.t());
                    }
                });
            });
        }
        if transposed {
            let block: Vec<f32> = dw.to_vec();
            for (i, row) in dw.chunks_exact_mut(k).enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = block[j * fg + i];
                }
            }
        }
    }
    Some(FlexTensor::from_data(TensorData::new(dw, [f, cg, kh, kw])))
}

/// `grad[samples, first..first + filters, :]` as a `[filters, samples·P]` matrix in `out`.
pub(crate) fn output_rows(
    grad: &[f32],
    f: usize,
    plane: usize,
    first: usize,
    samples: std::ops::Range<usize>,
    out: &mut [f32],
) {
    let len = samples.len() * plane;
    for (filter, row) in out.chunks_exact_mut(len).enumerate() {
        for (s, dst) in samples.clone().zip(row.chunks_exact_mut(plane)) {
            dst.copy_from_slice(&grad[(s * f + first + filter) * plane..][..plane]);
        }
    }
}
