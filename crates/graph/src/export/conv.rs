//! Convolutions (plain, grouped, depthwise, separable) and transposed convolutions as ONNX
//! `Conv` / `ConvTranspose`. Padding is resolved against the input size by the same rule the
//! layer uses (`geometry::window_dyn`, `transpose_axis`), so `same`'s odd pixel at the end
//! becomes explicit asymmetric `pads`.

use convnet_layers::geometry::{Rounding, transpose_axis, window_dyn};
use convnet_layers::{Conv, ConvTranspose, SeparableConv};

use super::activation;
use super::walk::{Emitter, Value};
use crate::GraphError;
use crate::proto::{Attr, i64s};

/// ONNX `pads`: every axis' begin, then every axis' end.
pub(crate) fn onnx_pads(pairs: &[(usize, usize)]) -> Result<Vec<i64>, GraphError> {
    let begins: Vec<usize> = pairs.iter().map(|p| p.0).collect();
    let ends: Vec<usize> = pairs.iter().map(|p| p.1).collect();
    Ok([i64s(&begins)?, i64s(&ends)?].concat())
}

pub(crate) fn shape_error(path: &str, e: impl std::fmt::Display) -> GraphError {
    GraphError::Export(format!("layer '{path}': {e}"))
}

/// A convolution whose parameters are `{keys}.weight` and `{keys}.bias`, then its activation.
pub(crate) fn conv<const D: usize>(
    e: &mut Emitter,
    c: &Conv<D>,
    path: &str,
    keys: &str,
    x: &Value,
) -> Result<String, GraphError> {
    let geometry = window_dyn(
        x.shape.spatial(),
        &c.kernel,
        &c.stride,
        &c.dilation,
        &c.padding,
        Rounding::Floor,
    )
    .map_err(|err| shape_error(path, err))?;
    let pairs: Vec<(usize, usize)> = geometry.iter().map(|g| (g.pad_begin, g.pad_end)).collect();
    let mut inputs = vec![x.name.clone(), e.param(&format!("{keys}.weight"))?];
    if c.bias.is_some() {
        inputs.push(e.param(&format!("{keys}.bias"))?);
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let y = e.b.node(
        "Conv",
        path,
        &refs,
        vec![
            ("kernel_shape", Attr::Ints(i64s(&c.kernel)?)),
            ("strides", Attr::Ints(i64s(&c.stride)?)),
            ("dilations", Attr::Ints(i64s(&c.dilation)?)),
            ("pads", Attr::Ints(onnx_pads(&pairs)?)),
            ("group", Attr::Int(crate::proto::i64_of(c.groups)?)),
        ],
    );
    activation::apply(e, c.activation, path, &y)
}

/// Depthwise then pointwise, the pointwise convolution carrying the bias and activation.
pub(crate) fn separable<const D: usize>(
    e: &mut Emitter,
    s: &SeparableConv<D>,
    path: &str,
    x: &Value,
) -> Result<String, GraphError> {
    let depthwise = format!("{path}.depthwise");
    let mid_name = conv(e, &s.depthwise, &depthwise, &depthwise, x)?;
    let mid_shape = {
        use convnet_layers::LayerInfo;
        s.depthwise
            .output_shape(&x.shape)
            .map_err(|err| shape_error(path, err))?
    };
    let pointwise = format!("{path}.pointwise");
    let mid = Value {
        name: mid_name,
        shape: mid_shape,
    };
    conv(e, &s.pointwise, &pointwise, &pointwise, &mid)
}

/// A transposed convolution (PyTorch's weight layout `[in, out / groups, k...]` is ONNX's).
pub(crate) fn transpose<const D: usize>(
    e: &mut Emitter,
    c: &ConvTranspose<D>,
    path: &str,
    x: &Value,
) -> Result<String, GraphError> {
    let spatial = x.shape.spatial();
    let n = spatial.len();
    let mut pads = Vec::with_capacity(n);
    let mut output_padding = Vec::with_capacity(n);
    for (i, &len) in spatial.iter().enumerate() {
        let padding = c.padding.axis(i, n).map_err(|err| shape_error(path, err))?;
        let axis = transpose_axis(
            len,
            c.kernel[i],
            c.stride[i],
            c.dilation[i],
            padding,
            c.output_padding[i],
        )
        .map_err(|err| shape_error(path, err))?;
        pads.push((axis.padding, axis.padding));
        output_padding.push(axis.output_padding);
    }
    let mut inputs = vec![x.name.clone(), e.param(&format!("{path}.weight"))?];
    if c.bias.is_some() {
        inputs.push(e.param(&format!("{path}.bias"))?);
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let y = e.b.node(
        "ConvTranspose",
        path,
        &refs,
        vec![
            ("kernel_shape", Attr::Ints(i64s(&c.kernel)?)),
            ("strides", Attr::Ints(i64s(&c.stride)?)),
            ("dilations", Attr::Ints(i64s(&c.dilation)?)),
            ("pads", Attr::Ints(onnx_pads(&pads)?)),
            ("output_padding", Attr::Ints(i64s(&output_padding)?)),
            ("group", Attr::Int(crate::proto::i64_of(c.groups)?)),
        ],
    );
    activation::apply(e, c.activation, path, &y)
}
