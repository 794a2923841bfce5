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

    /// The im2col matrix `[channels·kh·kw, samples·P]` in `cols` (every element written):
    /// row `(c, i, j)` holds, for every sample and output position, the input pixel under kernel
    /// tap `(i, j)` (0 in padding).
    pub(crate) fn im2col(
        &self,
        x: &[f32],
        channels: std::ops::Range<usize>,
        samples: std::ops::Range<usize>,
        cols: &mut [f32],
    ) {
        let plane = self.ho * self.wo;
        let len = samples.len() * plane;
        let taps = self.kh * self.kw;
        let cols = &mut cols[..channels.len() * taps * len];
        cols.par_chunks_mut(len).enumerate().for_each(|(row, out)| {
            let channel = channels.start + row / taps;
            let tap = self.tap((row % taps) / self.kw, row % self.kw);
            for (s, out) in samples.clone().zip(out.chunks_mut(plane)) {
                let input = &x[(s * self.c + channel) * self.h * self.w..][..self.h * self.w];
                self.fill(input, &tap, out);
            }
        });
    }

    /// Where kernel tap `(i, j)` reads: the output rows and columns that see the input, not
    /// padding, and the input position under the first of them.
    fn tap(&self, i: usize, j: usize) -> Tap {
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
        let (ox1, oy1) = if ox0 == ox1 || oy0 == oy1 {
            (ox0, oy0) // this tap only ever sees padding
        } else {
            (ox1, oy1)
        };
        Tap {
            cols: ox0..ox1,
            rows: oy0..oy1,
            // Only read for a tap that sees the input, where these do not underflow.
            first: [
                (oy0 * self.stride[0] + i * self.dilation[0]).saturating_sub(self.pad[0]),
                (ox0 * self.stride[1] + j * self.dilation[1]).saturating_sub(self.pad[1]),
            ],
        }
    }

    /// One sample's row of the im2col matrix for `tap`, padding included.
    fn fill(&self, input: &[f32], tap: &Tap, out: &mut [f32]) {
        let (rows, cols) = (&tap.rows, &tap.cols);
        if rows.is_empty() {
            out.fill(0.0);
            return;
        }
        // Zero fills only where there is padding: most taps of a valid convolution have none,
        // and LeNet's rows are so short that a call per empty fill showed in profiles.
        if rows.start > 0 {
            out[..rows.start * self.wo].fill(0.0);
        }
        if rows.end < self.ho {
            out[rows.end * self.wo..].fill(0.0);
        }
        let (sy, sx) = (self.stride[0], self.stride[1]);
        for (step, oy) in rows.clone().enumerate() {
            let iy = tap.first[0] + step * sy;
            let src = &input[iy * self.w + tap.first[1]..(iy + 1) * self.w];
            let dst = &mut out[oy * self.wo..][..self.wo];
            if cols.start > 0 {
                dst[..cols.start].fill(0.0);
            }
            if cols.end < self.wo {
                dst[cols.end..].fill(0.0);
            }
            let dst = &mut dst[cols.clone()];
            if sx == 1 {
                copy_row(dst, src);
            } else {
                for (o, v) in dst.iter_mut().zip(src.iter().step_by(sx)) {
                    *o = *v;
                }
            }
        }
    }
}

impl Geometry {
    /// The adjoint of [`Geometry::im2col`]: adds each element of `cols` (`[C·kh·kw, samples·P]`,
    /// all channels) back onto the input pixel it was read from, into `dx` (the block's samples,
    /// `[samples, C, H, W]`). Planes are independent, so they run in parallel without races.
    pub(crate) fn col2im(&self, cols: &[f32], dx: &mut [f32]) {
        let (plane_in, plane) = (self.h * self.w, self.ho * self.wo);
        let samples = dx.len() / (self.c * plane_in);
        let len = samples * plane;
        let taps: Vec<Tap> = (0..self.kh * self.kw)
            .map(|t| self.tap(t / self.kw, t % self.kw))
            .collect();
        let (sy, sx) = (self.stride[0], self.stride[1]);
        dx.par_chunks_mut(plane_in)
            .enumerate()
            .for_each(|(index, out)| {
                let (s, channel) = (index / self.c, index % self.c);
                for (t, tap) in taps.iter().enumerate() {
                    let row = channel * taps.len() + t;
                    let src = &cols[row * len + s * plane..][..plane];
                    for (step, oy) in tap.rows.clone().enumerate() {
                        let iy = tap.first[0] + step * sy;
                        let dst = &mut out[iy * self.w..(iy + 1) * self.w];
                        let src = &src[oy * self.wo..][tap.cols.clone()];
                        if sx == 1 {
                            for (d, v) in dst[tap.first[1]..].iter_mut().zip(src) {
                                *d += v;
                            }
                        } else {
                            for (d, v) in dst[tap.first[1]..].iter_mut().step_by(sx).zip(src) {
                                *d += v;
                            }
                        }
                    }
                }
            });
    }
}

/// `dst.copy_from_slice(&src[..dst.len()])`, for short rows without a libc call: a small map's
/// im2col is tens of thousands of 5–16-float copies (LeNet's second convolution: 10), where
/// `memmove`'s call and size dispatch cost more than the copy. Two overlapping fixed-size blocks
/// cover such a row with inline vector moves; longer rows are bandwidth-bound and keep `memcpy`.
#[inline(always)]
fn copy_row(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    let src = &src[..n];
    match n {
        8..=16 => copy_ends::<8>(dst, src),
        4..8 => copy_ends::<4>(dst, src),
        _ => dst.copy_from_slice(src),
    }
}

/// A row of `N..=2N` floats as its first and last `N` (overlapping when shorter than `2N`).
#[inline(always)]
fn copy_ends<const N: usize>(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    for at in [0, n - N] {
        let block: &mut [f32; N] = (&mut dst[at..at + N]).try_into().expect("N elements");
        *block = *<&[f32; N]>::try_from(&src[at..at + N]).expect("N elements");
    }
}

/// The part of the output one kernel tap reads from the input (see [`Geometry::tap`]).
struct Tap {
    cols: std::ops::Range<usize>,
    rows: std::ops::Range<usize>,
    /// Input `[row, column]` under output `(rows.start, cols.start)`.
    first: [usize; 2],
}

/// Which of a thread's two reusable buffers: the im2col matrix, or a product / gradient block
/// used while the im2col matrix is alive.
#[derive(Clone, Copy)]
pub(crate) enum Scratch {
    Cols = 0,
    Block = 1,
}

/// Runs `f` on one of this thread's reusable buffers, at least `len` long: the multi-MB im2col
/// matrices are not allocated (and their pages faulted in and zeroed by the kernel) per call.
/// Its contents on entry are arbitrary.
pub(crate) fn with_scratch<R>(which: Scratch, len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    thread_local! {
        static SCRATCH: [std::cell::RefCell<Vec<f32>>; 2] =
            const { [std::cell::RefCell::new(Vec::new()), std::cell::RefCell::new(Vec::new())] };
    }
    let slot = which as usize;
    // Taken out while in use, so a nested call for the same buffer gets a fresh one.
    let mut buffer = SCRATCH.with(|s| std::mem::take(&mut *s[slot].borrow_mut()));
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    let result = f(&mut buffer[..len]);
    SCRATCH.with(|s| {
        let mut kept = s[slot].borrow_mut();
        if kept.len() < buffer.len() {
            *kept = buffer;
        }
    });
    result
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
