//! The walk over a model's layers: each layer, in the order `Sequential::forward` runs it in
//! [`Mode::Eval`](convnet_layers::Mode), becomes the ONNX nodes that compute the same thing.
//! Parameters come from the model's state dict (`convnet_weights::to_state_dict`), so the
//! initializers carry the torchvision names and PyTorch layouts convnet's weight files use.

use convnet_layers::{FeatureShape, LayerError, LayerErrorKind, LayerInfo, SequentialLayer, Stack};
use convnet_weights::StateDict;

use super::{activation, blocks, conv, norm, pool};
use crate::GraphError;
use crate::proto::{Attr, GraphBuilder};

/// A value flowing between nodes: its name and the shape of one example (batch left out).
#[derive(Debug, Clone)]
pub(crate) struct Value {
    pub name: String,
    pub shape: FeatureShape,
}

pub(crate) struct Emitter<'d> {
    pub b: GraphBuilder,
    dict: &'d StateDict,
}

impl<'d> Emitter<'d> {
    pub fn new(b: GraphBuilder, dict: &'d StateDict) -> Self {
        Self { b, dict }
    }

    /// The state-dict tensor `key` as an initializer of its own shape.
    pub fn param(&mut self, key: &str) -> Result<String, GraphError> {
        let t = self.tensor(key)?;
        self.b.float_init(key, &t.shape, &t.data)
    }

    /// The state-dict tensor `key` as an initializer of shape `dims` (same values, same order):
    /// a squeeze-and-excitation weight `[out, in, 1, 1]` used on 1D or 3D maps.
    pub fn param_reshaped(&mut self, key: &str, dims: &[usize]) -> Result<String, GraphError> {
        let t = self.tensor(key)?;
        self.b.float_init(key, dims, &t.data)
    }

    fn tensor(&self, key: &str) -> Result<&'d convnet_weights::WeightTensor, GraphError> {
        self.dict.get(key).ok_or_else(|| {
            GraphError::Export(format!("the model's weights have no tensor '{key}'"))
        })
    }

    /// Emits `stack` applied to `x`; the layers' names are prefixed by `prefix` (`layer1.0.`
    /// inside a block), as the state dict's keys are.
    pub fn stack(&mut self, stack: &Stack, prefix: &str, x: Value) -> Result<Value, GraphError> {
        let mut x = x;
        for (name, layer) in stack.names.iter().zip(&stack.layers) {
            let path = format!("{prefix}{name}");
            let fail = |kind: LayerErrorKind| {
                GraphError::Export(
                    LayerError {
                        layer: path.clone(),
                        op: layer.describe(),
                        input: x.shape.clone(),
                        kind,
                    }
                    .to_string(),
                )
            };
            let out_shape = layer.output_shape(&x.shape).map_err(fail)?;
            let name = self.layer(layer, &path, &x)?;
            x = Value {
                name,
                shape: out_shape,
            };
        }
        Ok(x)
    }

    /// The nodes of one layer; returns the name of its output value.
    fn layer(
        &mut self,
        layer: &SequentialLayer,
        path: &str,
        x: &Value,
    ) -> Result<String, GraphError> {
        use SequentialLayer as L;
        match layer {
            L::Conv1d(c) => conv::conv(self, c, path, path, x),
            L::Conv2d(c) => conv::conv(self, c, path, path, x),
            L::Conv3d(c) => conv::conv(self, c, path, path, x),
            L::SeparableConv2d(s) => conv::separable(self, s, path, x),
            L::ConvTranspose1d(c) => conv::transpose(self, c, path, x),
            L::ConvTranspose2d(c) => conv::transpose(self, c, path, x),
            L::ConvTranspose3d(c) => conv::transpose(self, c, path, x),
            L::Pool1d(p) => pool::pool(self, p, path, x),
            L::Pool2d(p) => pool::pool(self, p, path, x),
            L::Pool3d(p) => pool::pool(self, p, path, x),
            L::GlobalPool(g) => pool::global(self, g, path, x),
            L::AdaptivePool(a) => pool::adaptive(self, a, path, x),
            L::ChannelPool(c) => pool::channel(self, c, path, x),
            L::ZeroPadding2d(z) => pool::zero_padding(self, z, path, x),
            L::Flatten(_) if x.shape.rank() == 1 => Ok(x.name.clone()),
            L::Flatten(_) => {
                Ok(self
                    .b
                    .node("Flatten", path, &[&x.name], vec![("axis", Attr::Int(1))]))
            }
            L::Dense(d) => {
                let mut inputs = vec![x.name.clone(), self.param(&format!("{path}.weight"))?];
                if d.linear.bias.is_some() {
                    inputs.push(self.param(&format!("{path}.bias"))?);
                }
                let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
                let y = self
                    .b
                    .node("Gemm", path, &refs, vec![("transB", Attr::Int(1))]);
                activation::apply(self, d.activation, path, &y)
            }
            L::Activation(a) => activation::apply(self, a.activation, path, &x.name),
            L::BatchNorm(bn) => norm::batch_norm(self, bn, path, x),
            // Eval mode: dropout is the identity.
            L::Dropout(_) => Ok(x.name.clone()),
            L::LocalResponseNorm(l) => norm::lrn(self, l, path, x),
            L::SqueezeExcitation(se) => blocks::squeeze_excitation(self, se, path, x),
            L::Residual(r) => blocks::residual(self, r, path, x),
            L::Concat(c) => blocks::concat(self, c, path, x),
            // An auxiliary head runs only in training; on the main path it is the identity.
            L::Aux(_) => Ok(x.name.clone()),
        }
    }
}
