//! Convolutions, pools and resizes: NHWC in TensorFlow, written as ONNX's NCHW nodes with
//! kernels moved into ONNX's layouts (HWIO → OIHW; a depthwise `[h, w, C, M]` → `[C·M, 1, h,
//! w]` with `group = C`; a transposed convolution's `[h, w, out, in]` → `[in, out, h, w]`).
//! SAME padding is written as the explicit pads TensorFlow computes (the extra pixel after,
//! as ONNX's `SAME_UPPER`), the sizes being known.

use super::consts::Const;
use super::graph_json::NodeDef;
use super::layout::{TO_NCHW, transpose_data};
use super::ops::{activation, image, need_const};
use super::values::{Tx, Val};
use crate::proto::Attr;

/// One spatial axis: output size and the pads before and after.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub out: usize,
    pub before: usize,
    pub after: usize,
}

/// TensorFlow's output size and padding for an input of `size`, a kernel of `k` dilated by
/// `d`, stride `s`.
pub fn window(
    size: usize,
    k: usize,
    s: usize,
    d: usize,
    padding: &Padding,
) -> Result<Window, String> {
    if k == 0 || s == 0 || d == 0 {
        return Err(format!(
            "kernel {k}, stride {s}, dilation {d}: each must be at least 1"
        ));
    }
    let eff = (k - 1) * d + 1;
    match padding {
        Padding::Same => {
            let out = size.div_ceil(s);
            let total = ((out.max(1) - 1) * s + eff).saturating_sub(size);
            Ok(Window {
                out,
                before: total / 2,
                after: total - total / 2,
            })
        }
        Padding::Valid => {
            if size < eff {
                return Err(format!(
                    "a {eff}-wide kernel does not fit an input {size} wide (VALID)"
                ));
            }
            Ok(Window {
                out: (size - eff) / s + 1,
                before: 0,
                after: 0,
            })
        }
        Padding::Explicit(before, after) => {
            let padded = size + before + after;
            if padded < eff {
                return Err(format!(
                    "a {eff}-wide kernel does not fit an input {padded} wide"
                ));
            }
            Ok(Window {
                out: (padded - eff) / s + 1,
                before: *before,
                after: *after,
            })
        }
    }
}

pub enum Padding {
    Same,
    Valid,
    Explicit(usize, usize),
}

/// The padding of `node` for spatial axis `axis` (1: height, 2: width).
fn padding(node: &NodeDef, axis: usize) -> Result<Padding, String> {
    match node.string("padding").as_deref() {
        Some("SAME") => Ok(Padding::Same),
        Some("VALID") => Ok(Padding::Valid),
        Some("EXPLICIT") => {
            let pads = node.ints("explicit_paddings").unwrap_or_default();
            let at = |i: usize| pads.get(i).and_then(|&p| usize::try_from(p).ok());
            match (at(2 * axis), at(2 * axis + 1)) {
                (Some(b), Some(a)) => Ok(Padding::Explicit(b, a)),
                _ => Err(format!(
                    "explicit_paddings {pads:?} do not give axis {axis}"
                )),
            }
        }
        other => Err(format!(
            "padding {other:?}: only SAME, VALID and EXPLICIT exist"
        )),
    }
}

/// `[1, a, b, 1]` attributes (strides, dilations, ksize) as `[a, b]`.
fn hw_of(node: &NodeDef, key: &str) -> Result<[usize; 2], String> {
    let Some(v) = node.ints(key) else {
        return Ok([1, 1]);
    };
    match v.as_slice() {
        [] => Ok([1, 1]),
        &[1, a, b, 1] if a > 0 && b > 0 => Ok([a as usize, b as usize]),
        _ => Err(format!("{key} {v:?}: only [1, h, w, 1] is translated")),
    }
}

fn check_nhwc(node: &NodeDef) -> Result<(), String> {
    match node.string("data_format").as_deref() {
        None | Some("NHWC") => Ok(()),
        Some(other) => Err(format!("data_format {other}: only NHWC is translated")),
    }
}

/// The two spatial windows and the ONNX attributes they give.
fn windows(
    node: &NodeDef,
    hw: [usize; 2],
    k: [usize; 2],
    s: [usize; 2],
    d: [usize; 2],
) -> Result<[Window; 2], String> {
    Ok([
        window(hw[0], k[0], s[0], d[0], &padding(node, 1)?)?,
        window(hw[1], k[1], s[1], d[1], &padding(node, 2)?)?,
    ])
}

fn pads(w: &[Window; 2]) -> Attr {
    Attr::Ints(vec![
        w[0].before as i64,
        w[1].before as i64,
        w[0].after as i64,
        w[1].after as i64,
    ])
}

fn ints(v: [usize; 2]) -> Attr {
    Attr::Ints(v.iter().map(|&x| x as i64).collect())
}

/// Conv2D, DepthwiseConv2dNative and their fused forms (`_FusedConv2D`,
/// `FusedDepthwiseConv2dNative`: BiasAdd or FusedBatchNorm, then an activation).
pub fn conv(tx: &mut Tx, node: &NodeDef, ins: &[Val]) -> Result<Vec<Val>, String> {
    check_nhwc(node)?;
    let depthwise = node.op.contains("Depthwise");
    let x = ins.first().ok_or("no input")?;
    let [n, h, w, c] = image(x)?;
    let f = need_const(ins, 1, "filter")?;
    let &[kh, kw, ci, m] = f.shape.as_slice() else {
        return Err(format!(
            "filter of shape {:?}: a 2-D convolution's is [h, w, in, out]",
            f.shape
        ));
    };
    let group = if depthwise {
        if ci != c {
            return Err(format!(
                "depthwise filter {:?} takes {ci} channels, the input has {c}",
                f.shape
            ));
        }
        c
    } else {
        if ci == 0 || c % ci != 0 {
            return Err(format!(
                "filter {:?} takes {ci} channels, the input has {c}",
                f.shape
            ));
        }
        c / ci
    };
    let out_c = if depthwise { c * m } else { m };
    let (s, d) = (hw_of(node, "strides")?, hw_of(node, "dilations")?);
    let win = windows(node, [h, w], [kh, kw], s, d)?;
    let mut weight = if depthwise {
        // [h, w, C, M] → [C·M, 1, h, w]: output channel c·M + j, as TensorFlow orders them.
        let (_, data) = transpose_data(&f.shape, &f.data, [2, 3, 0, 1]);
        Const {
            shape: vec![c * m, 1, kh, kw],
            data,
            int: false,
        }
    } else {
        let (shape, data) = transpose_data(&f.shape, &f.data, [3, 2, 0, 1]);
        Const {
            shape,
            data,
            int: false,
        }
    };
    let fused = if node.op.starts_with("Fused") || node.op.starts_with("_Fused") {
        node.strings("fused_ops").unwrap_or_default()
    } else {
        Vec::new()
    };
    let args = &ins[2.min(ins.len())..];
    let mut bias: Option<Vec<f32>> = None;
    let mut rest: &[String] = &fused;
    match fused.first().map(String::as_str) {
        Some("BiasAdd") => {
            let b = arg(args, 0, "bias")?;
            if b.data.len() != out_c {
                return Err(format!(
                    "bias of {} values for {out_c} output channels",
                    b.data.len()
                ));
            }
            bias = Some(b.data.clone());
            rest = &fused[1..];
        }
        Some("FusedBatchNorm") => {
            let eps = node.float("epsilon").unwrap_or(1e-3);
            let [scale, offset, mean, var] =
                [0, 1, 2, 3].map(|i| arg(args, i, "batch norm statistic"));
            let (scale, offset, mean, var) = (scale?, offset?, mean?, var?);
            if [scale, offset, mean, var]
                .iter()
                .any(|t| t.data.len() != out_c)
            {
                return Err(format!("batch norm statistics do not have {out_c} values"));
            }
            // Folded into the kernel (one OIHW row per output channel) and a bias.
            let per = weight.data.len() / out_c;
            let b = weight
                .data
                .chunks_mut(per)
                .enumerate()
                .map(|(o, row)| {
                    let k = scale.data[o] / (var.data[o] + eps).sqrt();
                    row.iter_mut().for_each(|v| *v *= k);
                    offset.data[o] - mean.data[o] * k
                })
                .collect();
            bias = Some(b);
            rest = &fused[1..];
        }
        _ => {}
    }
    let wname =
        tx.b.float_const(
            &format!("{}/weight", node.name),
            &weight.shape,
            &weight.data,
        )
        .map_err(|e| e.to_string())?;
    let bname = bias
        .map(|b| {
            tx.b.float_const(&format!("{}/bias", node.name), &[out_c], &b)
        })
        .transpose()
        .map_err(|e| e.to_string())?;
    let xin = tx.stored(x, TO_NCHW)?;
    let mut inputs = vec![xin.as_str(), wname.as_str()];
    if let Some(b) = &bname {
        inputs.push(b);
    }
    let y = tx.b.node(
        "Conv",
        &node.name,
        &inputs,
        vec![
            ("kernel_shape", ints([kh, kw])),
            ("strides", ints(s)),
            ("dilations", ints(d)),
            ("group", Attr::Int(group as i64)),
            ("pads", pads(&win)),
        ],
    );
    let mut out = Tx::out(y, vec![n, win[0].out, win[1].out, out_c], TO_NCHW, false);
    for op in rest {
        // Prelu's slopes follow the bias among the fused arguments.
        let extra: Vec<Val> = args.get(1).cloned().into_iter().collect();
        out = activation(tx, node, op, out, &extra)?;
    }
    Ok(vec![out])
}

fn arg<'a>(args: &'a [Val], i: usize, what: &str) -> Result<&'a Const, String> {
    args.get(i)
        .and_then(Val::as_const)
        .ok_or_else(|| format!("the fused {what} is not a constant"))
}

/// Conv2DBackpropInput (a transposed convolution): inputs are the output's size, the filter
/// `[h, w, out, in]` and the data.
pub fn conv_transpose(tx: &mut Tx, node: &NodeDef, ins: &[Val]) -> Result<Vec<Val>, String> {
    check_nhwc(node)?;
    let size = need_const(ins, 0, "input_sizes")?.ints();
    let f = need_const(ins, 1, "filter")?;
    let x = ins.get(2).ok_or("no data input")?;
    let [n, h, w, c] = image(x)?;
    let &[kh, kw, co, ci] = f.shape.as_slice() else {
        return Err(format!(
            "filter of shape {:?}: a transposed convolution's is [h, w, out, in]",
            f.shape
        ));
    };
    if ci != c {
        return Err(format!(
            "filter {:?} takes {ci} channels, the input has {c}",
            f.shape
        ));
    }
    let out: Vec<usize> = size
        .iter()
        .map(|&v| usize::try_from(v).unwrap_or(0))
        .collect();
    let &[on, oh, ow, oc] = out.as_slice() else {
        return Err(format!("input_sizes {size:?} is not [n, h, w, c]"));
    };
    if on != n || oc != co {
        return Err(format!(
            "input_sizes {size:?} do not match batch {n} and filter {:?}",
            f.shape
        ));
    }
    let (s, d) = (hw_of(node, "strides")?, hw_of(node, "dilations")?);
    // The forward convolution from the output back to the input fixes the pads.
    let win = windows(node, [oh, ow], [kh, kw], s, d)?;
    if [win[0].out, win[1].out] != [h, w] {
        return Err(format!(
            "input {h}x{w} is not what a stride-{s:?} convolution makes of {oh}x{ow}"
        ));
    }
    let extra: Vec<i64> = (0..2)
        .map(|i| {
            let (k, st, dl, o, inp) = ([kh, kw][i], s[i], d[i], [oh, ow][i], [h, w][i]);
            let natural =
                ((inp - 1) * st + (k - 1) * dl + 1) as i64 - (win[i].before + win[i].after) as i64;
            o as i64 - natural
        })
        .collect();
    if extra.iter().any(|&e| e < 0 || e >= s[0].max(s[1]) as i64) {
        return Err(format!("output {oh}x{ow} cannot come from input {h}x{w}"));
    }
    let (shape, data) = transpose_data(&f.shape, &f.data, [3, 2, 0, 1]);
    let wname =
        tx.b.float_const(&format!("{}/weight", node.name), &shape, &data)
            .map_err(|e| e.to_string())?;
    let xin = tx.stored(x, TO_NCHW)?;
    let y = tx.b.node(
        "ConvTranspose",
        &node.name,
        &[&xin, &wname],
        vec![
            ("kernel_shape", ints([kh, kw])),
            ("strides", ints(s)),
            ("dilations", ints(d)),
            ("pads", pads(&win)),
            ("output_padding", Attr::Ints(extra)),
        ],
    );
    Ok(vec![Tx::out(y, vec![n, oh, ow, co], TO_NCHW, false)])
}

/// MaxPool and AvgPool (TensorFlow's SAME average leaves the padding out of the count, as
/// ONNX's default `count_include_pad = 0` does).
pub fn pool(tx: &mut Tx, node: &NodeDef, ins: &[Val]) -> Result<Vec<Val>, String> {
    check_nhwc(node)?;
    let x = ins.first().ok_or("no input")?;
    let [n, h, w, c] = image(x)?;
    let k = hw_of(node, "ksize")?;
    let s = hw_of(node, "strides")?;
    let win = windows(node, [h, w], k, s, [1, 1])?;
    let xin = tx.stored(x, TO_NCHW)?;
    let op = if node.op == "MaxPool" {
        "MaxPool"
    } else {
        "AveragePool"
    };
    let y = tx.b.node(
        op,
        &node.name,
        &[&xin],
        vec![
            ("kernel_shape", ints(k)),
            ("strides", ints(s)),
            ("pads", pads(&win)),
        ],
    );
    Ok(vec![Tx::out(
        y,
        vec![n, win[0].out, win[1].out, c],
        TO_NCHW,
        false,
    )])
}

/// ResizeBilinear and ResizeNearestNeighbor, their `align_corners` / `half_pixel_centers`
/// as ONNX coordinate modes (TensorFlow's legacy mode, neither flag, is `asymmetric`).
pub fn resize(tx: &mut Tx, node: &NodeDef, ins: &[Val]) -> Result<Vec<Val>, String> {
    let x = ins.first().ok_or("no input")?;
    let [n, _, _, c] = image(x)?;
    let size = need_const(ins, 1, "size")?.ints();
    let &[oh, ow] = size.as_slice() else {
        return Err(format!("size {size:?} is not [height, width]"));
    };
    let (Ok(oh), Ok(ow)) = (usize::try_from(oh), usize::try_from(ow)) else {
        return Err(format!("size {size:?} is negative"));
    };
    if oh == 0 || ow == 0 {
        return Err(format!("size {size:?} is empty"));
    }
    let nearest = node.op == "ResizeNearestNeighbor";
    let align = node.bool("align_corners").unwrap_or(false);
    let half = node.bool("half_pixel_centers").unwrap_or(false);
    let mode = match (align, half, nearest) {
        (true, _, _) => "align_corners",
        (false, true, true) => "tf_half_pixel_for_nn",
        (false, true, false) => "half_pixel",
        (false, false, _) => "asymmetric",
    };
    let mut attrs = vec![
        (
            "mode",
            Attr::Str(if nearest { "nearest" } else { "linear" }),
        ),
        ("coordinate_transformation_mode", Attr::Str(mode)),
    ];
    if nearest {
        // TensorFlow rounds half up with align_corners and floors otherwise.
        attrs.push((
            "nearest_mode",
            Attr::Str(if align { "round_prefer_ceil" } else { "floor" }),
        ));
    }
    let sizes =
        tx.b.int64_init(
            &format!("{}/sizes", node.name),
            &[n as i64, c as i64, oh as i64, ow as i64],
        )
        .map_err(|e| e.to_string())?;
    let xin = tx.stored(x, TO_NCHW)?;
    let y =
        tx.b.node("Resize", &node.name, &[&xin, "", "", &sizes], attrs);
    Ok(vec![Tx::out(y, vec![n, oh, ow, c], TO_NCHW, false)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_puts_the_extra_pixel_after() {
        let w = window(7, 3, 2, 1, &Padding::Same).unwrap();
        assert_eq!(
            w,
            Window {
                out: 4,
                before: 1,
                after: 1
            }
        );
        let w = window(8, 3, 2, 1, &Padding::Same).unwrap();
        assert_eq!(
            w,
            Window {
                out: 4,
                before: 0,
                after: 1
            }
        );
        let w = window(8, 1, 1, 1, &Padding::Same).unwrap();
        assert_eq!(
            w,
            Window {
                out: 8,
                before: 0,
                after: 0
            }
        );
        // A 5x5 kernel dilated by 2 spans 9 pixels.
        let w = window(10, 5, 1, 2, &Padding::Same).unwrap();
        assert_eq!(
            w,
            Window {
                out: 10,
                before: 4,
                after: 4
            }
        );
    }

    #[test]
    fn valid_padding_needs_the_kernel_to_fit() {
        assert_eq!(window(418, 3, 2, 1, &Padding::Valid).unwrap().out, 208);
        assert!(window(2, 3, 1, 1, &Padding::Valid).is_err());
        assert!(window(2, 3, 0, 1, &Padding::Valid).is_err());
    }
}
