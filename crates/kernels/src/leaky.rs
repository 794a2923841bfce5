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
        let mut x = owned(x);
        let len = x.layout().shape().num_elements();
        let xs = x
            .try_storage_mut::<f32>()
            .expect("leaky_relu: owned f32 input");
        xs[..len].par_chunks_mut(CHUNK).for_each(|chunk| {
            for v in chunk {
                *v = if *v >= 0.0 { *v } else { *v * slope };
            }
        });
        x
    }
}

/// `t` itself when it is contiguous and not shared, so that it can be rewritten in place (the
/// usual case: a layer's fresh output), else a contiguous copy.
fn owned(t: FlexTensor) -> FlexTensor {
    let len = t.layout().shape().num_elements();
    if t.is_unique() && t.layout().contiguous_offsets() == Some((0, len)) {
        return t;
    }
    let dims = t.layout().shape().to_vec();
    let t = t.to_contiguous();
    let values = t
        .as_slice::<f32>()
        .expect("leaky_relu: f32 tensor")
        .to_vec();
    FlexTensor::from_data(TensorData::new(values, dims))
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
        let mut grad = owned(grad);
        let gs = grad
            .try_storage_mut::<f32>()
            .expect("leaky_relu: owned f32 gradient");
        gs[..ys.len()]
            .par_chunks_mut(CHUNK)
            .zip(ys.par_chunks(CHUNK))
            .for_each(|(gs, ys)| {
                for (g, &y) in gs.iter_mut().zip(ys) {
                    if y < 0.0 {
                        *g *= slope;
                    }
                }
            });
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
