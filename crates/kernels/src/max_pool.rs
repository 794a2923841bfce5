//! 2D max pooling and its backward on the flex backend.
//!
//! Flex's max pool runs a generic 3D loop that recomputes each window's valid range (with
//! divisions) per output and keeps an `i64` index tensor: about a tenth of a Fashion-MNIST CNN
//! training step (`perf`, BENCHMARKS issue 10). Here each axis's windows are worked out once per
//! call, the forward keeps the arg-max only when a backward will need it (as `u32` within the
//! plane), and the backward scatters each output gradient to its arg-max.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use burn::tensor::TensorData;
use rayon::prelude::*;

use crate::im2col::dims4;
use crate::pool::planes_per_task;

/// A 2D max pool with the same padding on both sides of each axis (Burn's backend op).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxPool2d {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub ceil_mode: bool,
}

#[backend_extension(Flex, Autodiff)]
pub trait FastMaxPool: Backend {
    fn max_pool2d_flex(x: FloatTensor<Self>, pool: MaxPool2d) -> FloatTensor<Self>;
}

impl FastMaxPool for Flex {
    fn max_pool2d_flex(x: FlexTensor, pool: MaxPool2d) -> FlexTensor {
        forward(&x, &pool, false).0
    }
}

/// Where each output's gradient goes: the input shape and, per output, the position of its
/// maximum within its plane (`u32::MAX` for a window over padding only).
#[derive(Debug, Clone)]
struct ArgMax {
    input: [usize; 4],
    at: Vec<u32>,
}

#[derive(Debug)]
struct MaxPool2dBackward;

impl Backward<Flex, 1> for MaxPool2dBackward {
    type State = ArgMax;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        if let Some(node) = node {
            grads.register::<Flex>(node.id, backward(&ops.state, &grad));
        }
    }
}

impl<C: CheckpointStrategy> FastMaxPool for Autodiff<Flex, C> {
    fn max_pool2d_flex(x: FloatTensor<Self>, pool: MaxPool2d) -> FloatTensor<Self> {
        match MaxPool2dBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let input = dims4(x.primitive());
                let (out, at) = forward(x.primitive(), &pool, true);
                let at = at.unwrap_or_default();
                prep.finish(ArgMax { input, at }, out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(Flex::max_pool2d_flex(x.into_primitive(), pool))
            }
        }
    }
}

/// One axis of the pool: per output position, the input index of its first valid tap and how
/// many taps (`dilation` apart) lie inside the input.
struct Axis {
    windows: Vec<(usize, usize)>,
    dilation: usize,
}

impl Axis {
    /// The windows along an axis of `len` ([`crate::pool::outputs`]), or `None` if the
    /// dilated kernel is longer than the padded input.
    fn new(
        len: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
        dilation: usize,
        ceil: bool,
    ) -> Option<Self> {
        let reach = dilation * (kernel - 1) + 1;
        let outputs = crate::pool::outputs(len, reach, stride, pad, ceil)?;
        let windows = (0..outputs)
            .map(|o| {
                // Tap t reads padded position o·s + t·d, i.e. input o·s + t·d - pad.
                let taps = (0..kernel).filter(|t| {
                    let at = o * stride + t * dilation;
                    at >= pad && at < len + pad
                });
                let (mut first, mut count) = (0, 0);
                for t in taps {
                    if count == 0 {
                        first = o * stride + t * dilation - pad;
                    }
                    count += 1;
                }
                (first, count)
            })
            .collect();
        Some(Self { windows, dilation })
    }

    /// Whether output `o`'s window is exactly inputs `2o` and `2o + 1` (a 2x2 stride-2 pool
    /// without padding, or with ceil mode that adds no partial window).
    fn tiles_pairs(&self) -> bool {
        let mut windows = self.windows.iter().enumerate();
        self.dilation == 1 && windows.all(|(o, &w)| w == (2 * o, 2))
    }
}

/// The pool's output sizes for an input of `h x w`, or `None` where a window is longer than
/// the padded input (callers leave those to Burn).
pub(crate) fn output_size(pool: &MaxPool2d, [h, w]: [usize; 2]) -> Option<[usize; 2]> {
    let rows = Axis::new(
        h,
        pool.kernel[0],
        pool.stride[0],
        pool.padding[0],
        pool.dilation[0],
        pool.ceil_mode,
    )?;
    let cols = Axis::new(
        w,
        pool.kernel[1],
        pool.stride[1],
        pool.padding[1],
        pool.dilation[1],
        pool.ceil_mode,
    )?;
    Some([rows.windows.len(), cols.windows.len()])
}

/// `max_pool2d(x)` and, with `keep_argmax`, each output's arg-max within its plane.
///
/// # Panics
/// If `x` is not f32 or a window is longer than the padded input ([`crate::max_pool2d`] sends
/// those to Burn).
fn forward(x: &FlexTensor, pool: &MaxPool2d, keep_argmax: bool) -> (FlexTensor, Option<Vec<u32>>) {
    let [n, c, h, w] = dims4(x);
    let axis = |i: usize, len| {
        Axis::new(
            len,
            pool.kernel[i],
            pool.stride[i],
            pool.padding[i],
            pool.dilation[i],
            pool.ceil_mode,
        )
    };
    let (rows, cols) = (axis(0, h), axis(1, w));
    let (Some(rows), Some(cols)) = (rows, cols) else {
        panic!("max_pool2d: window longer than the padded input (checked by the caller)");
    };
    let (ho, wo) = (rows.windows.len(), cols.windows.len());
    let x = x.to_contiguous();
    let xs = x
        .as_slice::<f32>()
        .expect("max_pool2d: f32 input (checked by the caller)");
    let mut out = vec![f32::NEG_INFINITY; n * c * ho * wo];
    let mut at = vec![u32::MAX; if keep_argmax { out.len() } else { 0 }];
    if !out.is_empty() && h * w > 0 {
        let per_task = planes_per_task(ho * wo);
        let tasks = out
            .par_chunks_mut(ho * wo * per_task)
            .zip(xs.par_chunks(h * w * per_task));
        // Without an arg-max to keep, undilated windows take the row-wise loop.
        let rows_first = !keep_argmax && rows.dilation == 1 && cols.dilation == 1;
        let pairs = rows.tiles_pairs() && cols.tiles_pairs();
        let pool_planes = |(out, input): (&mut [f32], &[f32]), mut at: Option<&mut [u32]>| {
            let mut row_max = Vec::new();
            for (p, (out, input)) in out
                .chunks_exact_mut(ho * wo)
                .zip(input.chunks_exact(h * w))
                .enumerate()
            {
                let at = at
                    .as_deref_mut()
                    .map(|a| &mut a[p * ho * wo..(p + 1) * ho * wo]);
                match at {
                    _ if rows_first => pool_plane_rows(input, out, w, &rows, &cols, &mut row_max),
                    Some(at) if pairs => pool_plane_2x2(input, out, at, w, wo),
                    at => pool_plane(input, out, at, w, &rows, &cols),
                }
            }
        };
        if keep_argmax {
            tasks
                .zip(at.par_chunks_mut(ho * wo * per_task))
                .for_each(|(task, at)| pool_planes(task, Some(at)));
        } else {
            tasks.for_each(|task| pool_planes(task, None));
        }
    }
    let out = FlexTensor::from_data(TensorData::new(out, [n, c, ho, wo]));
    (out, keep_argmax.then_some(at))
}

/// One plane: each output the max over its window (NaN wins, the first of equal values wins,
/// as in PyTorch), and where it was.
fn pool_plane(
    input: &[f32],
    out: &mut [f32],
    mut at: Option<&mut [u32]>,
    w: usize,
    rows: &Axis,
    cols: &Axis,
) {
    let wo = cols.windows.len();
    for (oy, &(y0, ny)) in rows.windows.iter().enumerate() {
        for (ox, &(x0, nx)) in cols.windows.iter().enumerate() {
            let (mut best, mut where_) = (f32::NEG_INFINITY, u32::MAX);
            for ty in 0..ny {
                let row = (y0 + ty * rows.dilation) * w;
                for tx in 0..nx {
                    let i = row + x0 + tx * cols.dilation;
                    let v = input[i];
                    if where_ == u32::MAX || v > best || v.is_nan() {
                        best = v;
                        where_ = i as u32;
                    }
                }
            }
            out[oy * wo + ox] = best;
            if let Some(at) = at.as_deref_mut() {
                at[oy * wo + ox] = where_;
            }
        }
    }
}

/// [`pool_plane`] for the 2x2 stride-2 pool whose windows tile the plane, the common one
/// (Tiny-YOLO, U-Net, VGG, the Fashion-MNIST CNN), without branches on the values: which tap
/// wins is a coin toss on real activations, and `pool_plane`'s mispredicted branches made this
/// pool's training forward a seventh of a Tiny-YOLO step (`perf`). Each output row reads its two
/// input rows pairwise; the taps are taken in `pool_plane`'s order, so the first of equal values
/// still wins (and the last NaN).
fn pool_plane_2x2(input: &[f32], out: &mut [f32], at: &mut [u32], w: usize, wo: usize) {
    // `b` replaces `a` as in `pool_plane`: when larger, or NaN.
    let take = |a: f32, b: f32| b > a || b.is_nan();
    for (oy, (out, at)) in out
        .chunks_exact_mut(wo)
        .zip(at.chunks_exact_mut(wo))
        .enumerate()
    {
        let top = &input[2 * oy * w..][..2 * wo];
        let bottom = &input[(2 * oy + 1) * w..][..2 * wo];
        let base = (2 * oy * w) as u32;
        let taps = top.chunks_exact(2).zip(bottom.chunks_exact(2));
        for (ox, ((o, a), (t, b))) in out.iter_mut().zip(at.iter_mut()).zip(taps).enumerate() {
            let first = base + 2 * ox as u32;
            let (mut best, mut where_) = (t[0], first);
            for (v, i) in [
                (t[1], first + 1),
                (b[0], first + w as u32),
                (b[1], first + w as u32 + 1),
            ] {
                let replace = take(best, v);
                best = if replace { v } else { best };
                where_ = if replace { i } else { where_ };
            }
            *o = best;
            *a = where_;
        }
    }
}

/// [`pool_plane`]'s values without the arg-max, for undilated windows (inference): each output
/// row first reduces its window's input rows to one row (elementwise, vectorised), then takes
/// each window across that row. `pool_plane`'s per-tap branches were 7% of ResNet-50's inference
/// for its one 3x3 pool (`perf`).
fn pool_plane_rows(
    input: &[f32],
    out: &mut [f32],
    w: usize,
    rows: &Axis,
    cols: &Axis,
    row_max: &mut Vec<f32>,
) {
    // NaN wins, as in `pool_plane`.
    let max = |a: f32, b: f32| if b > a || b.is_nan() { b } else { a };
    let wo = cols.windows.len();
    row_max.resize(w, 0.0);
    for (&(y0, ny), out) in rows.windows.iter().zip(out.chunks_exact_mut(wo)) {
        if ny == 0 {
            out.fill(f32::NEG_INFINITY); // a window over padding only
            continue;
        }
        row_max.copy_from_slice(&input[y0 * w..(y0 + 1) * w]);
        for row in input[(y0 + 1) * w..(y0 + ny) * w].chunks_exact(w) {
            for (m, &v) in row_max.iter_mut().zip(row) {
                *m = max(*m, v);
            }
        }
        for (o, &(x0, nx)) in out.iter_mut().zip(&cols.windows) {
            *o = row_max[x0..x0 + nx]
                .iter()
                .fold(f32::NEG_INFINITY, |a, &v| max(a, v));
        }
    }
}

/// The input gradient: each output's gradient added at its arg-max.
fn backward(argmax: &ArgMax, grad: &FlexTensor) -> FlexTensor {
    let [n, c, h, w] = argmax.input;
    let grad = grad.to_contiguous();
    let gs = grad.as_slice::<f32>().expect("max_pool2d: f32 gradient");
    let plane_out = gs.len() / (n * c).max(1);
    let mut dx = vec![0f32; n * c * h * w];
    if !dx.is_empty() && plane_out > 0 {
        let per_task = planes_per_task(h * w);
        dx.par_chunks_mut(h * w * per_task)
            .zip(gs.par_chunks(plane_out * per_task))
            .zip(argmax.at.par_chunks(plane_out * per_task))
            .for_each(|((dx, grad), at)| {
                for ((dx, grad), at) in dx
                    .chunks_exact_mut(h * w)
                    .zip(grad.chunks_exact(plane_out))
                    .zip(at.chunks_exact(plane_out))
                {
                    for (g, &i) in grad.iter().zip(at) {
                        if i != u32::MAX {
                            dx[i as usize] += g;
                        }
                    }
                }
            });
    }
    FlexTensor::from_data(TensorData::new(dx, argmax.input))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 2x2 loop against the generic one on planes full of ties and NaNs, where which tap
    /// wins is decided by order alone (the oracle tests' random distinct values never tie).
    #[test]
    fn the_2x2_loop_picks_the_same_taps_as_the_generic_one() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..200 {
            let (h, w) = (2 + next() as usize % 8, 2 + next() as usize % 8);
            let input: Vec<f32> = (0..h * w)
                .map(|_| match next() % 10 {
                    0 => f32::NAN,
                    r => (r % 3) as f32,
                })
                .collect();
            let axis = |len| Axis::new(len, 2, 2, 0, 1, false).unwrap();
            let (rows, cols) = (axis(h), axis(w));
            assert!(rows.tiles_pairs() && cols.tiles_pairs());
            let (ho, wo) = (rows.windows.len(), cols.windows.len());
            let run = |f: &dyn Fn(&mut [f32], &mut [u32])| {
                let (mut out, mut at) = (vec![0.0; ho * wo], vec![0; ho * wo]);
                f(&mut out, &mut at);
                (out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), at)
            };
            let want = run(&|out, at| pool_plane(&input, out, Some(at), w, &rows, &cols));
            let got = run(&|out, at| pool_plane_2x2(&input, out, at, w, wo));
            assert_eq!(got, want, "{h}x{w}: {input:?}");
        }
        // Windows that are not exactly the pairs go the generic way.
        let tiles = |len, pad, ceil| Axis::new(len, 2, 2, pad, 1, ceil).unwrap().tiles_pairs();
        assert!(tiles(6, 0, true) && tiles(7, 0, false));
        assert!(!tiles(7, 0, true) && !tiles(6, 1, false));
        assert!(!Axis::new(6, 2, 2, 0, 2, false).unwrap().tiles_pairs());
        assert!(!Axis::new(6, 3, 2, 0, 1, false).unwrap().tiles_pairs());
    }
}
