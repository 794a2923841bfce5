//! Leaky ReLU, `y = x` for `x >= 0` and `s·x` below, and its backward on flex.
//!
//! Burn's autodiff has no leaky ReLU of its own: it records the default composition (a
//! comparison into a mask, a scaled copy and a `mask_where`) and differentiates each piece, and
//! flex's `mask_where` is a scalar loop on one thread. That was a fifth of a Tiny-YOLO training
//! step (`perf`, BENCHMARKS issue 10). Here the forward is one parallel pass, in place where the
//! input is not shared, and the backward one pass over the output gradient.
//!
//! The backward reads the sign of the *output*, which is that of the input for a slope in
//! (0, 1], so the input need not be kept: only where `s·x` underflows to `-0.0` (|x| below
//! ~1e-44) does it take the gradient `g` instead of `s·g`. Callers send other slopes to Burn.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use burn::tensor::TensorData;
use rayon::prelude::*;

/// Elements handed to one rayon task.
const CHUNK: usize = 1 << 14;

#[backend_extension(Flex, Autodiff)]
pub trait FastLeaky: Backend {
    /// Leaky ReLU with `slope` in (0, 1] (f32 only: callers check).
    fn leaky_relu_flex(x: FloatTensor<Self>, slope: f32) -> FloatTensor<Self>;
}

impl FastLeaky for Flex {
    fn leaky_relu_flex(x: FlexTensor, slope: f32) -> FlexTensor {
        map(x, |v| if v >= 0.0 { v } else { v * slope })
    }
}

/// `f` applied to every element, in place when `x` is contiguous and not shared.
fn map(mut x: FlexTensor, f: impl Fn(f32) -> f32 + Sync) -> FlexTensor {
    let dims = x.layout().shape().to_vec();
    let len: usize = dims.iter().product();
    if len == 0 {
        return x;
    }
    // `try_storage_mut` refuses a buffer another tensor shares.
    let in_place = x.layout().contiguous_offsets() == Some((0, len));
    if in_place && let Some(storage) = x.try_storage_mut::<f32>() {
        storage[..len]
            .par_chunks_mut(CHUNK)
            .for_each(|chunk| chunk.iter_mut().for_each(|v| *v = f(*v)));
        return x;
    }
    let x = x.to_contiguous();
    let input = x.as_slice::<f32>().expect("leaky_relu: f32 input");
    let mut out = vec![0f32; len];
    out.par_chunks_mut(CHUNK)
        .zip(input.par_chunks(CHUNK))
        .for_each(|(out, input)| {
            for (o, &v) in out.iter_mut().zip(input) {
                *o = f(v);
            }
        });
    FlexTensor::from_data(TensorData::new(out, dims))
}

#[derive(Debug)]
struct LeakyBackward;

impl Backward<Flex, 1> for LeakyBackward {
    /// The output and the slope.
    type State = (FlexTensor, f32);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let Some(node) = node else { return };
        let (output, slope) = ops.state;
        let output = output.to_contiguous();
        let ys = output.as_slice::<f32>().expect("leaky_relu: f32 output");
        let scale = |gs: &mut [f32], ys: &[f32]| {
            for (g, &y) in gs.iter_mut().zip(ys) {
                if y < 0.0 {
                    *g *= slope;
                }
            }
        };
        let mut grad = grad;
        let len = ys.len();
        let in_place = grad.layout().contiguous_offsets() == Some((0, len));
        match grad.try_storage_mut::<f32>().filter(|_| in_place) {
            Some(gs) => gs[..len]
                .par_chunks_mut(CHUNK)
                .zip(ys.par_chunks(CHUNK))
                .for_each(|(gs, ys)| scale(gs, ys)),
            None => {
                let grad_in = grad.to_contiguous();
                let mut dx = grad_in
                    .as_slice::<f32>()
                    .expect("leaky_relu: f32 gradient")
                    .to_vec();
                dx.par_chunks_mut(CHUNK)
                    .zip(ys.par_chunks(CHUNK))
                    .for_each(|(gs, ys)| scale(gs, ys));
                let dims = grad.layout().shape().to_vec();
                grad = FlexTensor::from_data(TensorData::new(dx, dims));
            }
        }
        grads.register::<Flex>(node.id, grad);
    }
}

impl<C: CheckpointStrategy> FastLeaky for Autodiff<Flex, C> {
    fn leaky_relu_flex(x: FloatTensor<Self>, slope: f32) -> FloatTensor<Self> {
        match LeakyBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = Flex::leaky_relu_flex(x.into_primitive(), slope);
                prep.finish((out.clone(), slope), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(Flex::leaky_relu_flex(x.into_primitive(), slope))
            }
        }
    }
}
