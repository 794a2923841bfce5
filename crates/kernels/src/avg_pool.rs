//! 2D average pooling and its backward on the flex backend.
//!
//! Flex runs every average pool, forward and backward, through a generic 3D loop that recounts
//! each window's cells per output; in a LeNet-5 training epoch those two loops took about a third
//! of the CPU time (`perf`, BENCHMARKS issue 10). Windows are boxes, so here each output row sums
//! its input rows first (contiguous, vectorised adds) and then each window across that row; the
//! backward spreads each output row the same way in reverse. The divisor is separable too: the
//! product of the window's height and width, clipped as PyTorch clips them.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

use crate::im2col::dims4;
use crate::pool::planes_per_task;

/// A 2D average pool with the same padding on both sides of each axis (Burn's backend op).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvgPool2d {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub count_include_pad: bool,
    pub ceil_mode: bool,
}

#[backend_extension(Flex, Autodiff)]
pub trait FastAvgPool: Backend {
    fn avg_pool2d_flex(x: FloatTensor<Self>, pool: AvgPool2d) -> FloatTensor<Self>;
}

impl FastAvgPool for Flex {
    fn avg_pool2d_flex(x: FlexTensor, pool: AvgPool2d) -> FlexTensor {
        forward(&x, &pool).unwrap_or_else(|| {
            Flex::avg_pool2d(
                x,
                pool.kernel,
                pool.stride,
                pool.padding,
                pool.count_include_pad,
                pool.ceil_mode,
            )
        })
    }
}

#[derive(Debug)]
struct AvgPool2dBackward;

impl Backward<Flex, 1> for AvgPool2dBackward {
    /// The input's shape (the values are not needed) and the pool.
    type State = ([usize; 4], AvgPool2d);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (input, pool) = ops.state;
        if let Some(node) = node {
            let dx = backward(input, &grad, &pool).unwrap_or_else(|| {
                let x = FlexTensor::zeros(input.to_vec().into(), grad.dtype());
                Flex::avg_pool2d_backward(
                    x,
                    grad,
                    pool.kernel,
                    pool.stride,
                    pool.padding,
                    pool.count_include_pad,
                    pool.ceil_mode,
                )
            });
            grads.register::<Flex>(node.id, dx);
        }
    }
}

impl<C: CheckpointStrategy> FastAvgPool for Autodiff<Flex, C> {
    fn avg_pool2d_flex(x: FloatTensor<Self>, pool: AvgPool2d) -> FloatTensor<Self> {
        match AvgPool2dBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let input = dims4(x.primitive());
                prep.finish(
                    (input, pool),
                    Flex::avg_pool2d_flex(x.into_primitive(), pool),
                )
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(Flex::avg_pool2d_flex(x.into_primitive(), pool))
            }
        }
    }
}

/// One axis of the pool: for each output position its clipped input range and its share of the
/// divisor.
struct Axis {
    ranges: Vec<(usize, usize)>,
    divisors: Vec<usize>,
}

impl Axis {
    /// PyTorch's rule: the window `[o·s - p, o·s - p + k)` is cut at `len + p` for the padded
    /// count and at `[0, len)` for the real cells; the window count is [`crate::pool::outputs`].
    fn new(len: usize, kernel: usize, stride: usize, pad: usize, p: &AvgPool2d) -> Option<Self> {
        let outputs = crate::pool::outputs(len, kernel, stride, pad, p.ceil_mode)?;
        let mut ranges = Vec::with_capacity(outputs);
        let mut divisors = Vec::with_capacity(outputs);
        for o in 0..outputs {
            // Padded coordinates: the input occupies [pad, len + pad).
            let (start, end) = (o * stride, o * stride + kernel);
            let real = |at: usize| at.clamp(pad, len + pad) - pad;
            let (lo, hi) = (real(start), real(end));
            let count = if p.count_include_pad {
                end.min(len + 2 * pad) - start
            } else {
                hi - lo
            };
            ranges.push((lo, hi));
            divisors.push(count.max(1));
        }
        Some(Self { ranges, divisors })
    }
}

/// `avg_pool2d(x)` for f32 input, or `None` (other types, windows longer than the padded input)
/// for flex's own.
fn forward(x: &FlexTensor, pool: &AvgPool2d) -> Option<FlexTensor> {
    if x.dtype() != DType::F32 {
        return None;
    }
    let [n, c, h, w] = dims4(x);
    let rows = Axis::new(h, pool.kernel[0], pool.stride[0], pool.padding[0], pool)?;
    let cols = Axis::new(w, pool.kernel[1], pool.stride[1], pool.padding[1], pool)?;
    let (ho, wo) = (rows.ranges.len(), cols.ranges.len());
    let x = x.to_contiguous();
    let xs = x.as_slice::<f32>()?;
    let mut out = vec![0f32; n * c * ho * wo];
    if out.is_empty() || h * w == 0 {
        return Some(FlexTensor::from_data(TensorData::new(out, [n, c, ho, wo])));
    }
    let per_task = planes_per_task(ho * wo);
    let tiled = tiles(pool, [h, w]);
    out.par_chunks_mut(ho * wo * per_task)
        .zip(xs.par_chunks(h * w * per_task))
        .for_each_init(
            || vec![0f32; w],
            |row_sum, (out, input)| {
                for (out, input) in out.chunks_exact_mut(ho * wo).zip(input.chunks_exact(h * w)) {
                    match tiled {
                        Some(kernel) => pool_tiles(input, out, [w, wo], kernel, row_sum),
                        None => pool_plane(input, out, w, &rows, &cols, row_sum),
                    }
                }
            },
        );
    Some(FlexTensor::from_data(TensorData::new(out, [n, c, ho, wo])))
}

/// The kernel where the windows tile the input without padding or overlap (kernel = stride,
/// every window whole: LeNet's, VGG's and U-Net's 2x2 pools): every divisor is the window's
/// area and every cell belongs to at most one window, which [`pool_tiles`] and [`unpool_tiles`]
/// exploit (the general loops' per-output range sums and divisions were most of their time).
fn tiles(pool: &AvgPool2d, [h, w]: [usize; 2]) -> Option<[usize; 2]> {
    let [kh, kw] = pool.kernel;
    let whole = !pool.ceil_mode || (h % kh == 0 && w % kw == 0);
    (pool.kernel == pool.stride && pool.padding == [0, 0] && whole).then_some(pool.kernel)
}

fn pool_tiles(
    input: &[f32],
    out: &mut [f32],
    [w, wo]: [usize; 2],
    [kh, kw]: [usize; 2],
    sum: &mut [f32],
) {
    let scale = 1.0 / (kh * kw) as f32;
    let sum = &mut sum[..wo * kw];
    for (rows, out) in input.chunks_exact(kh * w).zip(out.chunks_exact_mut(wo)) {
        sum.copy_from_slice(&rows[..wo * kw]);
        for row in rows.chunks_exact(w).skip(1) {
            for (s, v) in sum.iter_mut().zip(row) {
                *s += v;
            }
        }
        if kw == 2 {
            for (o, pair) in out.iter_mut().zip(sum.chunks_exact(2)) {
                *o = (pair[0] + pair[1]) * scale;
            }
        } else {
            for (o, window) in out.iter_mut().zip(sum.chunks_exact(kw)) {
                *o = window.iter().sum::<f32>() * scale;
            }
        }
    }
}

fn pool_plane(input: &[f32], out: &mut [f32], w: usize, rows: &Axis, cols: &Axis, sum: &mut [f32]) {
    let wo = cols.ranges.len();
    for ((&(y0, y1), &dy), out) in rows
        .ranges
        .iter()
        .zip(&rows.divisors)
        .zip(out.chunks_exact_mut(wo))
    {
        sum.fill(0.0);
        for row in input[y0 * w..y1 * w].chunks_exact(w) {
            for (s, v) in sum.iter_mut().zip(row) {
                *s += v;
            }
        }
        for ((o, &(x0, x1)), &dx) in out.iter_mut().zip(&cols.ranges).zip(&cols.divisors) {
            *o = sum[x0..x1].iter().sum::<f32>() / (dy * dx) as f32;
        }
    }
}

/// The input gradient of `avg_pool2d` over an input of shape `input`, or `None` for flex's own.
fn backward(input: [usize; 4], grad: &FlexTensor, pool: &AvgPool2d) -> Option<FlexTensor> {
    if grad.dtype() != DType::F32 {
        return None;
    }
    let [n, c, h, w] = input;
    let rows = Axis::new(h, pool.kernel[0], pool.stride[0], pool.padding[0], pool)?;
    let cols = Axis::new(w, pool.kernel[1], pool.stride[1], pool.padding[1], pool)?;
    let (ho, wo) = (rows.ranges.len(), cols.ranges.len());
    if dims4(grad) != [n, c, ho, wo] {
        return None;
    }
    let grad = grad.to_contiguous();
    let gs = grad.as_slice::<f32>()?;
    let mut dx = vec![0f32; n * c * h * w];
    if dx.is_empty() || ho * wo == 0 {
        return Some(FlexTensor::from_data(TensorData::new(dx, input)));
    }
    let per_task = planes_per_task(h * w);
    let tiled = tiles(pool, [h, w]);
    dx.par_chunks_mut(h * w * per_task)
        .zip(gs.par_chunks(ho * wo * per_task))
        .for_each_init(
            || vec![0f32; w],
            |spread, (dx, grad)| {
                for (dx, grad) in dx.chunks_exact_mut(h * w).zip(grad.chunks_exact(ho * wo)) {
                    match tiled {
                        Some(kernel) => unpool_tiles(grad, dx, [w, wo], kernel),
                        None => unpool_plane(grad, dx, w, &rows, &cols, spread),
                    }
                }
            },
        );
    Some(FlexTensor::from_data(TensorData::new(dx, input)))
}

/// The backward of [`pool_tiles`]: each cell of a window gets its output's gradient over the
/// window's area (`dx` starts at zero; cells outside every window keep it).
fn unpool_tiles(grad: &[f32], dx: &mut [f32], [w, wo]: [usize; 2], [kh, kw]: [usize; 2]) {
    let scale = 1.0 / (kh * kw) as f32;
    for (rows, grad) in dx.chunks_exact_mut(kh * w).zip(grad.chunks_exact(wo)) {
        let (first, rest) = rows.split_at_mut(w);
        if kw == 2 {
            for (pair, g) in first.chunks_exact_mut(2).zip(grad) {
                pair.fill(g * scale);
            }
        } else {
            for (window, g) in first.chunks_exact_mut(kw).zip(grad) {
                window.fill(g * scale);
            }
        }
        for row in rest.chunks_exact_mut(w) {
            row[..wo * kw].copy_from_slice(&first[..wo * kw]);
        }
    }
}

fn unpool_plane(
    grad: &[f32],
    dx: &mut [f32],
    w: usize,
    rows: &Axis,
    cols: &Axis,
    spread: &mut [f32],
) {
    let wo = cols.ranges.len();
    for ((&(y0, y1), &dy), grad) in rows
        .ranges
        .iter()
        .zip(&rows.divisors)
        .zip(grad.chunks_exact(wo))
    {
        spread.fill(0.0);
        for ((g, &(x0, x1)), &dx) in grad.iter().zip(&cols.ranges).zip(&cols.divisors) {
            let share = g / (dy * dx) as f32;
            for s in &mut spread[x0..x1] {
                *s += share;
            }
        }
        for row in dx[y0 * w..y1 * w].chunks_exact_mut(w) {
            for (d, s) in row.iter_mut().zip(spread.iter()) {
                *d += s;
            }
        }
    }
}
