//! Batch norm's per-channel affine map `y = x·scale[c] + shift[c]` and its backward on flex.
//!
//! Burn writes it as two broadcast binary ops, each a pass over the activations on one thread
//! (about 7% of MobileNet v2's inference, `perf`); here it is one pass over the planes in
//! parallel, in place where the input is not shared. The backward reduces `dscale` and `dshift`
//! in one pass per channel.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use burn::tensor::TensorData;
use rayon::prelude::*;

use crate::pool::planes_per_task;

#[backend_extension(Flex, Autodiff)]
pub trait FastAffine: Backend {
    /// `x [N, C, ...] · scale [C] + shift [C]`, per channel (f32 only: callers check).
    fn channel_affine_flex(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

impl FastAffine for Flex {
    fn channel_affine_flex(x: FlexTensor, scale: FlexTensor, shift: FlexTensor) -> FlexTensor {
        let shift = shift.to_contiguous();
        let shift = shift.as_slice::<f32>().expect("channel_affine: f32 shift");
        affine(x, &scale, Some(shift))
    }
}

/// `x · scale[c] (+ shift[c])`, in place when `x` is contiguous and not shared.
fn affine(mut x: FlexTensor, scale: &FlexTensor, shift: Option<&[f32]>) -> FlexTensor {
    let scale = scale.to_contiguous();
    let scale = scale.as_slice::<f32>().expect("channel_affine: f32 scale");
    let dims = x.layout().shape().to_vec();
    let (n, c) = (dims[0], dims[1]);
    let plane: usize = dims[2..].iter().product();
    assert_eq!(
        scale.len(),
        c,
        "channel_affine: {c} channels, {} scales",
        scale.len()
    );
    // Writes `out` from `input`, or rewrites `out` itself when there is no separate input.
    let per_task = planes_per_task(plane);
    let apply = |out: &mut [f32], input: Option<&[f32]>| {
        let tasks = out.par_chunks_mut(plane * per_task).enumerate();
        tasks.for_each(|(task, out)| {
            for (i, out) in out.chunks_exact_mut(plane).enumerate() {
                let p = task * per_task + i;
                let (a, b) = (scale[p % c], shift.map_or(0.0, |s| s[p % c]));
                match input {
                    Some(input) => {
                        for (o, v) in out.iter_mut().zip(&input[p * plane..][..plane]) {
                            *o = v * a + b;
                        }
                    }
                    None => out.iter_mut().for_each(|o| *o = *o * a + b),
                }
            }
        });
    };
    if n * c * plane == 0 {
        return x;
    }
    // `try_storage_mut` refuses a buffer another tensor shares.
    let in_place = x.layout().contiguous_offsets() == Some((0, n * c * plane));
    if in_place && let Some(storage) = x.try_storage_mut::<f32>() {
        apply(&mut storage[..n * c * plane], None);
        return x;
    }
    let x = x.to_contiguous();
    let input = x.as_slice::<f32>().expect("channel_affine: f32 input");
    let mut out = vec![0f32; input.len()];
    apply(&mut out, Some(input));
    FlexTensor::from_data(TensorData::new(out, dims))
}

#[derive(Debug)]
struct AffineBackward;

impl Backward<Flex, 3> for AffineBackward {
    /// The input and the scale (the shift is not needed).
    type State = (NodeId, NodeId);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_scale, node_shift] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (x_state, scale_state) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let scale = checkpointer.retrieve_node_output::<FlexTensor>(scale_state);
        if node_scale.is_some() || node_shift.is_some() {
            let (dscale, dshift) = reduce(&x, &grad);
            if let Some(node) = node_scale {
                grads.register::<Flex>(node.id, dscale);
            }
            if let Some(node) = node_shift {
                grads.register::<Flex>(node.id, dshift);
            }
        }
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, affine(grad, &scale, None));
        }
    }
}

/// `(Σ g·x, Σ g)` per channel over the batch and every position.
fn reduce(x: &FlexTensor, grad: &FlexTensor) -> (FlexTensor, FlexTensor) {
    let dims = grad.layout().shape().to_vec();
    let (n, c) = (dims[0], dims[1]);
    let plane: usize = dims[2..].iter().product();
    let x = x.to_contiguous();
    let xs = x.as_slice::<f32>().expect("channel_affine: f32 input");
    let gs = grad
        .as_slice::<f32>()
        .expect("channel_affine: f32 gradient");
    let sums: Vec<(f32, f32)> = (0..c)
        .into_par_iter()
        .map(|channel| {
            let (mut gx, mut g) = (0f32, 0f32);
            for s in 0..n {
                let at = (s * c + channel) * plane;
                let (xr, gr) = (&xs[at..at + plane], &gs[at..at + plane]);
                gx += xr.iter().zip(gr).map(|(x, g)| x * g).sum::<f32>();
                g += gr.iter().sum::<f32>();
            }
            (gx, g)
        })
        .collect();
    let (dscale, dshift): (Vec<f32>, Vec<f32>) = sums.into_iter().unzip();
    (
        FlexTensor::from_data(TensorData::new(dscale, [c])),
        FlexTensor::from_data(TensorData::new(dshift, [c])),
    )
}

impl<C: CheckpointStrategy> FastAffine for Autodiff<Flex, C> {
    fn channel_affine_flex(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        match AffineBackward
            .prepare::<C>([x.node(), scale.node(), shift.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&scale));
                let out = Flex::channel_affine_flex(
                    x.into_primitive(),
                    scale.into_primitive(),
                    shift.into_primitive(),
                );
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::channel_affine_flex(
                x.into_primitive(),
                scale.into_primitive(),
                shift.into_primitive(),
            )),
        }
    }
}
