//! Blocks: squeeze-and-excitation, residual connections and channel concatenation (their
//! inner layers walked with the block's name as prefix, as the state dict names them).

use convnet_layers::{Concat, Residual, SqueezeExcitation};

use super::activation;
use super::walk::{Emitter, Value};
use crate::GraphError;
use crate::proto::Attr;

/// `x · sigmoid(fc2(act(fc1(mean(x)))))`: the mean over the map is `GlobalAveragePool`
/// (`[N, C, 1...]`), the two dense layers 1x1 convolutions over it (the `[out, in, 1, 1]`
/// weights torchvision's SE blocks store), the gate broadcast over the map by `Mul`.
pub(crate) fn squeeze_excitation(
    e: &mut Emitter,
    se: &SqueezeExcitation,
    path: &str,
    x: &Value,
) -> Result<String, GraphError> {
    let axes = x.shape.spatial().len();
    let pooled = e.b.node(
        "GlobalAveragePool",
        &format!("{path}/squeeze"),
        &[&x.name],
        vec![],
    );
    let mut h = pooled;
    for (fc, linear) in [("fc1", &se.fc1), ("fc2", &se.fc2)] {
        let key = format!("{path}.{fc}");
        let [i, o] = linear.weight.lazy_shape().dims::<2>();
        let mut dims = vec![o, i];
        dims.extend(std::iter::repeat_n(1, axes));
        let mut inputs = vec![
            h.clone(),
            e.param_reshaped(&format!("{key}.weight"), &dims)?,
        ];
        if linear.bias.is_some() {
            inputs.push(e.param(&format!("{key}.bias"))?);
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let kernel = vec![1i64; axes];
        h = e.b.node(
            "Conv",
            &key,
            &refs,
            vec![("kernel_shape", Attr::Ints(kernel))],
        );
        if fc == "fc1" {
            h = activation::apply(e, se.activation, &key, &h)?;
        }
    }
    let gate = e.b.node("Sigmoid", &format!("{path}/gate"), &[&h], vec![]);
    Ok(e.b.node("Mul", path, &[&x.name, &gate], vec![]))
}

/// `activation(body(x) + shortcut(x))`; an empty shortcut is `x` itself.
pub(crate) fn residual(
    e: &mut Emitter,
    r: &Residual,
    path: &str,
    x: &Value,
) -> Result<String, GraphError> {
    let inner = format!("{path}.");
    let body = e.stack(&r.body, &inner, x.clone())?;
    let shortcut = e.stack(&r.shortcut, &inner, x.clone())?;
    let sum = e.b.node("Add", path, &[&body.name, &shortcut.name], vec![]);
    activation::apply(e, r.activation, path, &sum)
}

/// Every branch on the same input, concatenated along the channels.
pub(crate) fn concat(
    e: &mut Emitter,
    c: &Concat,
    path: &str,
    x: &Value,
) -> Result<String, GraphError> {
    let inner = format!("{path}.");
    let mut parts = Vec::with_capacity(c.branches.len());
    for branch in &c.branches {
        parts.push(e.stack(branch, &inner, x.clone())?.name);
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    Ok(e.b.node("Concat", path, &refs, vec![("axis", Attr::Int(1))]))
}
