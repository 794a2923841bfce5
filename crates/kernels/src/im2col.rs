//! The im2col matrix shared by the forward GEMM and the weight gradient.

use burn::backend::flex::FlexTensor;
use burn::tensor::ops::ConvOptions;
use rayon::prelude::*;

/// At most this many f32 in one im2col block (16 MB); larger batches run in chunks of samples:
/// 4x larger blocks measured slower (fresh pages), 4x smaller no faster.
const MAX_COLS: usize = 4 << 20;

/// A 2D convolution's sizes: input `c x h x w`, kernel `kh x kw`, output `ho x wo`.
pub(crate) struct Geometry {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub ho: usize,
    pub wo: usize,
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    /// Padding before the first row and column (the end padding only shows in `ho`, `wo`).
    pub pad: [usize; 2],
}

impl Geometry {
    /// The geometry of `conv2d` from the input's `[N, C, H, W]`, the weight's
    /// `[F, C/groups, kh, kw]` and the output's `[H', W']`; `c` is the whole input's channels.
    pub(crate) fn new(
        [_, c, h, w]: [usize; 4],
        [_, _, kh, kw]: [usize; 4],
        [ho, wo]: [usize; 2],
        options: &ConvOptions<2>,
    ) -> Self {
        Self {
            c,
            h,
            w,
            kh,
            kw,
            ho,
            wo,
            stride: options.stride,
            dilation: options.dilation,
            pad: options.padding_begin(),
        }
    }

    /// How many of `n` samples go in one im2col block of `channels` input channels.
    pub(crate) fn samples_per_block(&self, channels: usize, n: usize) -> usize {
        let per_sample = channels * self.kh * self.kw * self.ho * self.wo;
        (MAX_COLS / per_sample.max(1)).clamp(1, n.max(1))
    }

    /// The im2col matrix `[channels·kh·kw, samples·P]`: row `(c, i, j)` holds, for every
    /// sample and output position, the input pixel under kernel tap `(i, j)` (0 in padding).
    pub(crate) fn im2col(
        &self,
        x: &[f32],
        channels: std::ops::Range<usize>,
        samples: std::ops::Range<usize>,
    ) -> Vec<f32> {
        let plane = self.ho * self.wo;
        let len = samples.len() * plane;
        let taps = self.kh * self.kw;
        let mut cols = vec![0f32; channels.len() * taps * len];
        cols.par_chunks_mut(len).enumerate().for_each(|(row, out)| {
            let channel = channels.start + row / taps;
            let (i, j) = ((row % taps) / self.kw, row % self.kw);
            for (s, out) in samples.clone().zip(out.chunks_mut(plane)) {
                let input = &x[(s * self.c + channel) * self.h * self.w..][..self.h * self.w];
                self.tap(input, i, j, out);
            }
        });
        cols
    }

    /// One sample's row of the im2col matrix for kernel tap `(i, j)`; `out` starts zeroed.
    fn tap(&self, input: &[f32], i: usize, j: usize, out: &mut [f32]) {
        let (ox0, ox1) = valid(
            self.wo,
            self.w,
            self.stride[1],
            j * self.dilation[1],
            self.pad[1],
        );
        let (oy0, oy1) = valid(
            self.ho,
            self.h,
            self.stride[0],
            i * self.dilation[0],
            self.pad[0],
        );
        if ox0 == ox1 {
            return; // this tap only ever sees padding
        }
        for oy in oy0..oy1 {
            let iy = oy * self.stride[0] + i * self.dilation[0] - self.pad[0];
            let row = &input[iy * self.w..][..self.w];
            let out = &mut out[oy * self.wo..][..self.wo];
            let ix0 = ox0 * self.stride[1] + j * self.dilation[1] - self.pad[1];
            if self.stride[1] == 1 {
                out[ox0..ox1].copy_from_slice(&row[ix0..ix0 + (ox1 - ox0)]);
            } else {
                for (o, v) in out[ox0..ox1]
                    .iter_mut()
                    .zip(row[ix0..].iter().step_by(self.stride[1]))
                {
                    *o = *v;
                }
            }
        }
    }
}

/// The output positions `o` in `0..outputs` whose input index `o·stride + offset - pad` lies in
/// `0..inputs`, as a range.
fn valid(
    outputs: usize,
    inputs: usize,
    stride: usize,
    offset: usize,
    pad: usize,
) -> (usize, usize) {
    // o·stride + offset >= pad  and  o·stride + offset < inputs + pad
    let lo = pad.saturating_sub(offset).div_ceil(stride);
    let hi = (inputs + pad).saturating_sub(offset).div_ceil(stride);
    (lo.min(outputs), hi.clamp(lo.min(outputs), outputs))
}

/// The four dimensions of a rank-4 tensor.
pub(crate) fn dims4(t: &FlexTensor) -> [usize; 4] {
    let shape = t.layout().shape();
    [shape[0], shape[1], shape[2], shape[3]]
}
