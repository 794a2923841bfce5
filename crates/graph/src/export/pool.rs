//! Pooling layers and zero padding: `MaxPool` / `AveragePool` with the layer's resolved pads,
//! global pools, adaptive average pooling, max pooling along the channels, `Pad`.

use convnet_layers::geometry::{Rounding, window, window_dyn};
use convnet_layers::{AdaptiveAvgPool2d, ChannelPool, GlobalPool, Pool, PoolKind, ZeroPadding2d};

use super::conv::{onnx_pads, shape_error};
use super::walk::{Emitter, Value};
use crate::GraphError;
use crate::proto::{Attr, i64_of, i64s};

/// A max or average pool. ONNX's ceil mode keeps a last window that starts in the end padding,
/// which PyTorch (and convnet) drop, so ceil mode is written as floor mode over a longer end
/// pad wherever that changes nothing: max pooling never reads padding, and an average that does
/// not count it divides by the same count. An average that counts padding keeps ONNX's
/// `ceil_mode`.
pub(crate) fn pool<const D: usize>(
    e: &mut Emitter,
    p: &Pool<D>,
    path: &str,
    x: &Value,
) -> Result<String, GraphError> {
    let spatial = x.shape.spatial();
    let fail = |err| shape_error(path, err);
    let geometry = window_dyn(
        spatial,
        &p.pool,
        &p.stride,
        &p.dilation,
        &p.padding,
        p.rounding,
    )
    .map_err(fail)?;
    let mut pairs: Vec<(usize, usize)> =
        geometry.iter().map(|g| (g.pad_begin, g.pad_end)).collect();
    let mut ceil = false;
    if p.rounding == Rounding::Ceil {
        let floor = window_dyn(
            spatial,
            &p.pool,
            &p.stride,
            &p.dilation,
            &p.padding,
            Rounding::Floor,
        )
        .map_err(fail)?;
        let counts_pads = p.kind == PoolKind::Avg && p.count_include_pad;
        for (i, (g, f)) in geometry.iter().zip(&floor).enumerate() {
            if g.output == f.output {
                continue;
            }
            // Enough extra end padding for floor mode to reach the ceil-mode count.
            let extra = (g.output - f.output) * p.stride[i];
            let end = pairs[i].1 + extra;
            if counts_pads || end >= p.pool[i] {
                ceil = true;
            } else {
                pairs[i].1 = end;
            }
        }
        if ceil {
            pairs = geometry.iter().map(|g| (g.pad_begin, g.pad_end)).collect();
        }
    }
    let mut attrs = vec![
        ("kernel_shape", Attr::Ints(i64s(&p.pool)?)),
        ("strides", Attr::Ints(i64s(&p.stride)?)),
        ("pads", Attr::Ints(onnx_pads(&pairs)?)),
    ];
    if ceil {
        attrs.push(("ceil_mode", Attr::Int(1)));
    }
    let op = match p.kind {
        PoolKind::Max => {
            attrs.push(("dilations", Attr::Ints(i64s(&p.dilation)?)));
            "MaxPool"
        }
        PoolKind::Avg => {
            attrs.push((
                "count_include_pad",
                Attr::Int(i64::from(p.count_include_pad)),
            ));
            "AveragePool"
        }
    };
    Ok(e.b.node(op, path, &[&x.name], attrs))
}

/// Global average or max pooling, then the `[N, C]` vector convnet's layer returns.
pub(crate) fn global(
    e: &mut Emitter,
    g: &GlobalPool,
    path: &str,
    x: &Value,
) -> Result<String, GraphError> {
    let op = match g.kind {
        PoolKind::Max => "GlobalMaxPool",
        PoolKind::Avg => "GlobalAveragePool",
    };
    let pooled = e.b.node(op, &format!("{path}/pool"), &[&x.name], vec![]);
    Ok(e.b.node("Flatten", path, &[&pooled], vec![("axis", Attr::Int(1))]))
}

/// PyTorch's adaptive average pooling at the input size the export is for: the identity at
/// the output size, a plain average pool when the output divides the input, and otherwise
/// PyTorch's overlapping windows (`[floor(i n / o), ceil((i + 1) n / o))`) as two products
/// with averaging matrices, rows then columns.
pub(crate) fn adaptive(
    e: &mut Emitter,
    a: &AdaptiveAvgPool2d,
    path: &str,
    x: &Value,
) -> Result<String, GraphError> {
    let [h, w] = match x.shape.spatial() {
        &[h, w] => [h, w],
        other => {
            return Err(shape_error(
                path,
                format!("adaptive pooling takes 2D maps, got {other:?}"),
            ));
        }
    };
    let [oh, ow] = a.output;
    if [h, w] == a.output {
        return Ok(x.name.clone());
    }
    if a.output == [1, 1] {
        return Ok(e.b.node("GlobalAveragePool", path, &[&x.name], vec![]));
    }
    if h.is_multiple_of(oh) && w.is_multiple_of(ow) {
        let kernel = [h / oh, w / ow];
        return Ok(e.b.node(
            "AveragePool",
            path,
            &[&x.name],
            vec![
                ("kernel_shape", Attr::Ints(i64s(&kernel)?)),
                ("strides", Attr::Ints(i64s(&kernel)?)),
            ],
        ));
    }
    // rows [oh, h] · x [N, C, h, w] -> [N, C, oh, w]; that · cols [w, ow] -> [N, C, oh, ow].
    let rows = averaging(oh, h, false);
    let cols = averaging(ow, w, true);
    let rows =
        e.b.float_const(&format!("{path}/rows_avg"), &[oh, h], &rows)?;
    let cols =
        e.b.float_const(&format!("{path}/cols_avg"), &[w, ow], &cols)?;
    let y =
        e.b.node("MatMul", &format!("{path}/rows"), &[&rows, &x.name], vec![]);
    Ok(e.b.node("MatMul", path, &[&y, &cols], vec![]))
}

/// The `[out, n]` matrix whose row `i` averages PyTorch's adaptive window `i` of `n` inputs,
/// or its transpose `[n, out]`.
fn averaging(out: usize, n: usize, transposed: bool) -> Vec<f32> {
    let mut m = vec![0.0f32; out * n];
    for i in 0..out {
        let start = i * n / out;
        let end = ((i + 1) * n).div_ceil(out);
        let weight = 1.0 / (end - start) as f32;
        for j in start..end {
            let at = if transposed { j * out + i } else { i * n + j };
            m[at] = weight;
        }
    }
    m
}

/// Max pooling along the channels: the channels become the height of a one-channel image, a
/// `pool x 1` window slides down it, as convnet's layer computes it.
pub(crate) fn channel(
    e: &mut Emitter,
    c: &ChannelPool,
    path: &str,
    x: &Value,
) -> Result<String, GraphError> {
    let channels = x.shape.channels();
    let rest = x
        .shape
        .spatial()
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d));
    let rest = rest.ok_or_else(|| shape_error(path, "the map's size overflows"))?;
    // `0` copies the batch axis, so the graph keeps a symbolic batch.
    let image = e.b.int64_init(
        &format!("{path}/image_shape"),
        &[0, 1, i64_of(channels)?, i64_of(rest)?],
    )?;
    let flat = e.b.node(
        "Reshape",
        &format!("{path}/image"),
        &[&x.name, &image],
        vec![],
    );
    let pooled = e.b.node(
        "MaxPool",
        &format!("{path}/pool"),
        &[&flat],
        vec![
            ("kernel_shape", Attr::Ints(vec![i64_of(c.pool)?, 1])),
            ("strides", Attr::Ints(vec![i64_of(c.stride)?, 1])),
        ],
    );
    let out = {
        use convnet_layers::LayerInfo;
        c.output_shape(&x.shape)
            .map_err(|err| shape_error(path, err))?
    };
    let mut dims = vec![0];
    dims.extend(i64s(out.dims())?);
    let shape = e.b.int64_init(&format!("{path}/shape"), &dims)?;
    Ok(e.b.node("Reshape", path, &[&pooled, &shape], vec![]))
}

/// Zero padding of the height and width.
pub(crate) fn zero_padding(
    e: &mut Emitter,
    z: &ZeroPadding2d,
    path: &str,
    x: &Value,
) -> Result<String, GraphError> {
    let hw = match x.shape.spatial() {
        &[h, w] => [h, w],
        other => {
            return Err(shape_error(
                path,
                format!("zero padding takes 2D maps, got {other:?}"),
            ));
        }
    };
    let g = window(hw, [1, 1], [1, 1], [1, 1], &z.padding, Rounding::Floor)
        .map_err(|err| shape_error(path, err))?;
    let [(t, b), (l, r)] = g.map(|a| (a.pad_begin, a.pad_end));
    let pads = e.b.int64_init(
        &format!("{path}/pads"),
        &[0, 0, i64_of(t)?, i64_of(l)?, 0, 0, i64_of(b)?, i64_of(r)?],
    )?;
    Ok(e.b.node("Pad", path, &[&x.name, &pads], vec![]))
}
