//! convnet's activations as ONNX operators. Those ONNX has no operator for are composed:
//! ReLU6 is `Clip(0, 6)`, SiLU (swish) is `x · Sigmoid(x)`; darknet's leaky ReLU is
//! `LeakyRelu` with convnet's slope; softmax runs over axis 1 as convnet's does.

use convnet_layers::Activation;
use convnet_layers::activation::LEAKY_SLOPE;

use super::walk::Emitter;
use crate::GraphError;
use crate::proto::Attr;

/// `activation` applied to value `x` of the layer at `path`; returns the output value
/// (`x` itself for the identity).
pub(crate) fn apply(
    e: &mut Emitter,
    activation: Activation,
    path: &str,
    x: &str,
) -> Result<String, GraphError> {
    let name = format!("{path}/{}", activation.name());
    Ok(match activation {
        Activation::Linear => x.to_string(),
        Activation::Relu => e.b.node("Relu", &name, &[x], vec![]),
        Activation::Relu6 => {
            let lo = e.b.scalar_init(&format!("{name}/min"), 0.0);
            let hi = e.b.scalar_init(&format!("{name}/max"), 6.0);
            e.b.node("Clip", &name, &[x, &lo, &hi], vec![])
        }
        Activation::Sigmoid => e.b.node("Sigmoid", &name, &[x], vec![]),
        Activation::Tanh => e.b.node("Tanh", &name, &[x], vec![]),
        Activation::Softmax => {
            e.b.node("Softmax", &name, &[x], vec![("axis", Attr::Int(1))])
        }
        Activation::Silu => {
            let gate =
                e.b.node("Sigmoid", &format!("{name}/sigmoid"), &[x], vec![]);
            e.b.node("Mul", &name, &[x, &gate], vec![])
        }
        Activation::Leaky => e.b.node(
            "LeakyRelu",
            &name,
            &[x],
            vec![("alpha", Attr::Float(LEAKY_SLOPE as f32))],
        ),
    })
}
