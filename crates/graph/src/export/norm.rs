//! Batch norm with its running statistics (inference) and AlexNet's local response norm.

use convnet_layers::{BatchNorm, LocalResponseNorm};

use super::conv::shape_error;
use super::walk::{Emitter, Value};
use crate::GraphError;
use crate::proto::{Attr, i64_of, i64s};

/// `BatchNormalization` in inference form: `(x - running_mean) / sqrt(running_var + eps)`,
/// scaled and shifted, as convnet's layer computes it in eval mode.
pub(crate) fn batch_norm(
    e: &mut Emitter,
    bn: &BatchNorm,
    path: &str,
    x: &Value,
) -> Result<String, GraphError> {
    let inputs = [
        x.name.clone(),
        e.param(&format!("{path}.weight"))?,
        e.param(&format!("{path}.bias"))?,
        e.param(&format!("{path}.running_mean"))?,
        e.param(&format!("{path}.running_var"))?,
    ];
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    Ok(e.b.node(
        "BatchNormalization",
        path,
        &refs,
        vec![("epsilon", Attr::Float(bn.epsilon as f32))],
    ))
}

/// convnet's LRN divides by `(k + alpha · Σ x²)^beta` over `2r + 1` channels; ONNX's `LRN`
/// divides its `alpha` by the window size first, so it is given `alpha · size`. ONNX Runtime
/// takes 4D maps only: others are viewed as `[N, C, rest, 1]` around it (the window runs
/// along the channels alone, so the view changes nothing).
pub(crate) fn lrn(
    e: &mut Emitter,
    l: &LocalResponseNorm,
    path: &str,
    x: &Value,
) -> Result<String, GraphError> {
    let size = l
        .depth_radius
        .checked_mul(2)
        .and_then(|v| v.checked_add(1))
        .ok_or_else(|| shape_error(path, "the LRN window overflows"))?;
    let attrs = vec![
        ("size", Attr::Int(i64_of(size)?)),
        ("alpha", Attr::Float((l.alpha * size as f64) as f32)),
        ("beta", Attr::Float(l.beta as f32)),
        ("bias", Attr::Float(l.bias as f32)),
    ];
    if x.shape.rank() == 3 {
        return Ok(e.b.node("LRN", path, &[&x.name], attrs));
    }
    let rest = x
        .shape
        .spatial()
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| shape_error(path, "the map's size overflows"))?;
    let image = e.b.int64_init(
        &format!("{path}/image_shape"),
        &[0, i64_of(x.shape.channels())?, i64_of(rest)?, 1],
    )?;
    let viewed = e.b.node(
        "Reshape",
        &format!("{path}/image"),
        &[&x.name, &image],
        vec![],
    );
    let normed = e.b.node("LRN", &format!("{path}/lrn"), &[&viewed], attrs);
    let mut dims = vec![0];
    dims.extend(i64s(x.shape.dims())?);
    let shape = e.b.int64_init(&format!("{path}/shape"), &dims)?;
    Ok(e.b.node("Reshape", path, &[&normed, &shape], vec![]))
}
