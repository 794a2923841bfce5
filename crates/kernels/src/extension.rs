//! The backend extension: the forward on flex (`forward.rs`), and on autodiff-over-flex a
//! backward whose weight gradient is [`crate::weight_grad`] and whose input gradient is
//! `input_grad.rs`'s where it applies, else Burn's.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use burn::tensor::ops::ConvOptions;

use crate::im2col::dims4;

#[backend_extension(Flex, Autodiff)]
pub trait FastConv: Backend {
    fn conv2d_flex(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;
}

impl FastConv for Flex {
    fn conv2d_flex(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        crate::forward::conv2d(x, weight, options)
    }
}

#[derive(Debug)]
struct Conv2dBackward;

impl Backward<Flex, 2> for Conv2dBackward {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, weight_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let weight = checkpointer.retrieve_node_output::<FlexTensor>(weight_state);
        if let Some(node) = node_x {
            // col2im(Wᵀ·dY) fills a buffer of the input's channels per tap, the forward-conv
            // route one of the output's: it wins where the input has fewer channels (LeNet's
            // 1 -> 6 and 6 -> 16: 0.8 -> 0.3 ms and 0.76 -> 0.52 ms for the bench's fwd+bwd) and
            // where the stride rules the forward-conv route out.
            let ([_, c, _, _], [f, _, _, _]) = (dims4(&x), dims4(&weight));
            let try_col2im = c < f || options.stride != [1, 1];
            let dx = try_col2im
                .then(|| crate::input_grad::col2im(&x, &weight, &grad, &options))
                .flatten()
                .or_else(|| crate::input_grad::stride1(&x, &weight, &grad, &options))
                .unwrap_or_else(|| {
                    Flex::conv2d_x_backward(
                        x.clone(),
                        weight.clone(),
                        grad.clone(),
                        options.clone(),
                    )
                });
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_weight {
            let dw = crate::weight_grad(&x, &weight, &grad, &options)
                .unwrap_or_else(|| Flex::conv2d_weight_backward(x, weight, grad, options));
            grads.register::<Flex>(node.id, dw);
        }
    }
}

impl<C: CheckpointStrategy> FastConv for Autodiff<Flex, C> {
    fn conv2d_flex(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        match Conv2dBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let out = crate::forward::conv2d(
                    x.into_primitive(),
                    weight.into_primitive(),
                    options.clone(),
                );
                prep.finish((x_state, weight_state, options), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(crate::forward::conv2d(
                x.into_primitive(),
                weight.into_primitive(),
                options,
            )),
        }
    }
}
