//! TensorFlow ops to ONNX nodes. Each takes the node and its translated inputs and returns
//! its outputs; a message (no node name: the caller adds it) when the inputs make no sense.

use std::rc::Rc;

use super::consts::{Const, broadcast, reshape_dims};
use super::graph_json::NodeDef;
use super::layout::{self, IDENTITY, Perm, perm_of, physical_axis};
use super::spatial;
use super::values::{Tx, Val};
use crate::proto::Attr;

/// The ops translated to ONNX nodes (besides `Const` and `Placeholder`, and the arithmetic
/// on constants alone that [`super::consts::fold`] evaluates).
pub const TRANSLATED: &[&str] = &[
    "Identity",
    "StopGradient",
    "Snapshot",
    "Conv2D",
    "_FusedConv2D",
    "DepthwiseConv2dNative",
    "FusedDepthwiseConv2dNative",
    "Conv2DBackpropInput",
    "MaxPool",
    "AvgPool",
    "ResizeBilinear",
    "ResizeNearestNeighbor",
    "Add",
    "AddV2",
    "BiasAdd",
    "Sub",
    "Mul",
    "RealDiv",
    "Div",
    "AddN",
    "Relu",
    "Relu6",
    "Elu",
    "LeakyRelu",
    "Prelu",
    "Sigmoid",
    "Tanh",
    "Exp",
    "Sqrt",
    "Rsqrt",
    "Neg",
    "Abs",
    "Square",
    "Softmax",
    "Mean",
    "Sum",
    "Max",
    "Min",
    "ConcatV2",
    "Pad",
    "PadV2",
    "MirrorPad",
    "Reshape",
    "ExpandDims",
    "Squeeze",
    "Transpose",
    "StridedSlice",
    "Split",
    "SplitV",
    "MatMul",
    "Cast",
];

pub fn translate(tx: &mut Tx, node: &NodeDef, ins: &[Val]) -> Result<Vec<Val>, String> {
    let one = |v: Val| Ok(vec![v]);
    let first = || ins.first().cloned().ok_or_else(|| "no input".to_string());
    match node.op.as_str() {
        "Identity" | "StopGradient" | "Snapshot" => one(first()?),
        "Conv2D" | "_FusedConv2D" | "DepthwiseConv2dNative" | "FusedDepthwiseConv2dNative" => {
            spatial::conv(tx, node, ins)
        }
        "Conv2DBackpropInput" => spatial::conv_transpose(tx, node, ins),
        "MaxPool" | "AvgPool" => spatial::pool(tx, node, ins),
        "ResizeBilinear" | "ResizeNearestNeighbor" => spatial::resize(tx, node, ins),
        "BiasAdd" if node.string("data_format").is_some_and(|f| f != "NHWC") => {
            Err("BiasAdd on channels-first data: only NHWC is translated".into())
        }
        "Add" | "AddV2" | "BiasAdd" => one(binary(tx, node, "Add", ins)?),
        "Sub" => one(binary(tx, node, "Sub", ins)?),
        "Mul" => one(binary(tx, node, "Mul", ins)?),
        "RealDiv" | "Div" => one(binary(tx, node, "Div", ins)?),
        "AddN" => {
            let mut acc = first()?;
            for v in &ins[1..] {
                acc = binary(tx, node, "Add", &[acc, v.clone()])?;
            }
            one(acc)
        }
        "Square" => {
            let x = first()?;
            one(binary(tx, node, "Mul", &[x.clone(), x])?)
        }
        "Relu" | "Relu6" | "Elu" | "LeakyRelu" | "Sigmoid" | "Tanh" | "Exp" | "Sqrt" | "Rsqrt"
        | "Neg" | "Abs" | "Prelu" => one(activation(tx, node, &node.op, first()?, &ins[1..])?),
        "Softmax" => {
            let x = first()?;
            // TensorFlow's softmax runs along the last axis, wherever the layout stores it.
            let rank = x.shape().len();
            let axis = if rank == 4 {
                physical_axis(x.perm(), 3)
            } else {
                rank.saturating_sub(1)
            };
            let name = tx.stored(&x, x.perm())?;
            let y = tx.b.node(
                "Softmax",
                &node.name,
                &[&name],
                vec![("axis", Attr::Int(axis as i64))],
            );
            one(Tx::out(y, x.shape().to_vec(), x.perm(), false))
        }
        "Mean" | "Sum" | "Max" | "Min" => one(reduce(tx, node, ins)?),
        "ConcatV2" => one(concat(tx, node, ins)?),
        "Pad" | "PadV2" | "MirrorPad" => one(pad(tx, node, ins)?),
        "Reshape" => {
            let x = first()?;
            let wanted = need_const(ins, 1, "shape")?.ints();
            let dims = reshape_dims(x.shape().iter().product(), &wanted)?;
            one(reshape(tx, node, &x, dims)?)
        }
        "ExpandDims" => {
            let x = first()?;
            let rank = x.shape().len() as i64 + 1;
            let axis = need_const(ins, 1, "dim")?
                .scalar()
                .ok_or("dim is not one value")? as i64;
            let axis = axis_in(axis, rank)?;
            let mut dims = x.shape().to_vec();
            dims.insert(axis, 1);
            one(reshape(tx, node, &x, dims)?)
        }
        "Squeeze" => {
            let x = first()?;
            let rank = x.shape().len() as i64;
            let axes = node.ints("squeeze_dims").unwrap_or_default();
            let axes: Vec<usize> = axes
                .iter()
                .map(|&a| axis_in(a, rank))
                .collect::<Result<_, _>>()?;
            if let Some(&a) = axes.iter().find(|&&a| x.shape()[a] != 1) {
                return Err(format!("axis {a} of {:?} is not 1", x.shape()));
            }
            let dims: Vec<usize> = x
                .shape()
                .iter()
                .enumerate()
                .filter(|&(i, &d)| {
                    !(if axes.is_empty() {
                        d == 1
                    } else {
                        axes.contains(&i)
                    })
                })
                .map(|(_, &d)| d)
                .collect();
            one(reshape(tx, node, &x, dims)?)
        }
        "Transpose" => one(transpose(
            tx,
            node,
            first()?,
            &need_const(ins, 1, "perm")?.ints(),
        )?),
        "StridedSlice" => one(strided_slice(tx, node, ins)?),
        "Split" | "SplitV" => split(tx, node, ins),
        "MatMul" => one(matmul(tx, node, ins)?),
        "Cast" => {
            let x = first()?;
            let int = !matches!(
                node.dtype("DstT").as_deref(),
                Some("DT_FLOAT" | "DT_HALF" | "DT_DOUBLE" | "DT_BFLOAT16")
            );
            let name = tx.stored(&x, x.perm())?;
            let to = if int {
                crate::proto::INT64
            } else {
                crate::proto::FLOAT
            };
            let y = tx.b.node(
                "Cast",
                &node.name,
                &[&name],
                vec![("to", Attr::Int(i64::from(to)))],
            );
            one(Tx::out(y, x.shape().to_vec(), x.perm(), int))
        }
        other => Err(format!("{other} has no translation")),
    }
}

/// A rank-4 input's TensorFlow shape `[n, h, w, c]`.
pub fn image(x: &Val) -> Result<[usize; 4], String> {
    x.shape()
        .try_into()
        .map_err(|_| format!("input of shape {:?} is not an NHWC image batch", x.shape()))
}

/// Input `i`, which must be a constant.
pub fn need_const<'a>(ins: &'a [Val], i: usize, what: &str) -> Result<&'a Const, String> {
    match ins.get(i) {
        Some(Val::Const(c, _)) => Ok(c),
        Some(Val::Dyn(_)) => Err(format!(
            "its {what} is computed at run time; only a constant is translated"
        )),
        None => Err(format!("no {what} input")),
    }
}

fn axis_in(axis: i64, rank: i64) -> Result<usize, String> {
    let a = if axis < 0 { axis + rank } else { axis };
    usize::try_from(a)
        .ok()
        .filter(|&a| (a as i64) < rank)
        .ok_or_else(|| format!("axis {axis} outside rank {rank}"))
}

/// An elementwise op of two inputs, in the layout of the first rank-4 input that has one.
pub fn binary(tx: &mut Tx, node: &NodeDef, op: &str, ins: &[Val]) -> Result<Val, String> {
    let [a, b] = ins else {
        return Err(format!("{} inputs; {op} takes 2", ins.len()));
    };
    let shape = broadcast(a.shape(), b.shape()).ok_or_else(|| {
        format!(
            "shapes {:?} and {:?} do not broadcast",
            a.shape(),
            b.shape()
        )
    })?;
    // Both dynamic inputs must be rank 4 for a layout other than TensorFlow's to hold.
    let dynamic: Vec<&Val> = [a, b]
        .into_iter()
        .filter(|v| matches!(v, Val::Dyn(_)))
        .collect();
    let perm = if shape.len() == 4 && dynamic.iter().all(|v| v.shape().len() == 4) {
        dynamic
            .iter()
            .map(|v| v.perm())
            .find(|&p| p != IDENTITY)
            .unwrap_or(IDENTITY)
    } else {
        IDENTITY
    };
    let name_of = |tx: &mut Tx, v: &Val| -> Result<String, String> {
        match v {
            Val::Const(c, name) if perm != IDENTITY && c.shape.len() < 4 => {
                // Written at rank 4 in the layout so it broadcasts as it did in TensorFlow.
                let rank4 = Val::Const(
                    Rc::new(Const {
                        shape: [vec![1; 4 - c.shape.len()], c.shape.clone()].concat(),
                        data: c.data.clone(),
                        int: c.int,
                    }),
                    name.clone(),
                );
                tx.stored(&rank4, perm)
            }
            _ if perm != IDENTITY => tx.stored(v, perm),
            _ => tx.tf(v),
        }
    };
    let (x, y) = (name_of(tx, a)?, name_of(tx, b)?);
    let out = tx.b.node(op, &node.name, &[&x, &y], vec![]);
    Ok(Tx::out(out, shape, perm, a.int() && b.int()))
}

/// An activation (or other elementwise op of one input), in `x`'s layout. `extra` holds
/// Prelu's slopes.
pub fn activation(
    tx: &mut Tx,
    node: &NodeDef,
    op: &str,
    x: Val,
    extra: &[Val],
) -> Result<Val, String> {
    let perm = x.perm();
    let input = tx.stored(&x, perm)?;
    let name = format!("{}/{}", node.name, op.to_lowercase());
    let y = match op {
        "Relu" | "Sigmoid" | "Tanh" | "Exp" | "Sqrt" | "Neg" | "Abs" | "Elu" => {
            tx.b.node(op, &name, &[&input], vec![])
        }
        "Relu6" => {
            let lo = tx.b.scalar_init(&format!("{name}/min"), 0.0);
            let hi = tx.b.scalar_init(&format!("{name}/max"), 6.0);
            tx.b.node("Clip", &name, &[&input, &lo, &hi], vec![])
        }
        "LeakyRelu" => {
            let alpha = node
                .float("alpha")
                .or(node.float("leakyrelu_alpha"))
                .unwrap_or(0.2);
            tx.b.node(
                "LeakyRelu",
                &name,
                &[&input],
                vec![("alpha", Attr::Float(alpha))],
            )
        }
        "Rsqrt" => {
            let s = tx.b.node("Sqrt", &name, &[&input], vec![]);
            tx.b.node("Reciprocal", &format!("{name}/reciprocal"), &[&s], vec![])
        }
        "Prelu" => {
            let slope = extra.first().ok_or("Prelu without its slopes")?;
            let y = binary_named(tx, &name, "PRelu", &x, slope)?;
            return Ok(y);
        }
        other => return Err(format!("fused {other} has no translation")),
    };
    Ok(Tx::out(y, x.shape().to_vec(), perm, x.int()))
}

fn binary_named(tx: &mut Tx, name: &str, op: &str, a: &Val, b: &Val) -> Result<Val, String> {
    let node = NodeDef {
        name: name.to_string(),
        op: op.to_string(),
        input: Vec::new(),
        attr: Default::default(),
    };
    binary(tx, &node, op, &[a.clone(), b.clone()])
}

/// Mean, Sum, Max, Min over constant axes; kept axes keep the input's layout.
fn reduce(tx: &mut Tx, node: &NodeDef, ins: &[Val]) -> Result<Val, String> {
    let x = ins.first().ok_or("no input")?;
    let rank = x.shape().len() as i64;
    let axes = need_const(ins, 1, "reduction_indices")?.ints();
    let mut axes: Vec<usize> = axes
        .iter()
        .map(|&a| axis_in(a, rank))
        .collect::<Result<_, _>>()?;
    axes.sort_unstable();
    axes.dedup();
    let keep = node.bool("keep_dims").unwrap_or(false);
    let perm = if keep { x.perm() } else { IDENTITY };
    let input = tx.stored(x, perm)?;
    let stored_axes: Vec<i64> = axes
        .iter()
        .map(|&a| if x.shape().len() == 4 { physical_axis(perm, a) } else { a } as i64)
        .collect();
    let shape: Vec<usize> = x
        .shape()
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| match (axes.contains(&i), keep) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect();
    let keepdims = ("keepdims", Attr::Int(i64::from(keep)));
    let y = if node.op == "Sum" {
        let a =
            tx.b.int64_init(&format!("{}/axes", node.name), &stored_axes)
                .map_err(|e| e.to_string())?;
        tx.b.node("ReduceSum", &node.name, &[&input, &a], vec![keepdims])
    } else {
        let op = match node.op.as_str() {
            "Mean" => "ReduceMean",
            "Max" => "ReduceMax",
            _ => "ReduceMin",
        };
        tx.b.node(
            op,
            &node.name,
            &[&input],
            vec![("axes", Attr::Ints(stored_axes)), keepdims],
        )
    };
    Ok(Tx::out(y, shape, perm, x.int()))
}

/// ConcatV2: the values, then the axis.
fn concat(tx: &mut Tx, node: &NodeDef, ins: &[Val]) -> Result<Val, String> {
    let (axis, parts) = ins.split_last().ok_or("no inputs")?;
    let first = parts.first().ok_or("nothing to concatenate")?;
    let rank = first.shape().len();
    let axis = axis_in(
        axis.as_const()
            .and_then(Const::scalar)
            .ok_or("the axis is not a constant")? as i64,
        rank as i64,
    )?;
    let mut shape = first.shape().to_vec();
    shape[axis] = 0;
    for p in parts {
        let s = p.shape();
        if s.len() != rank || (0..rank).any(|i| i != axis && s[i] != shape[i]) {
            return Err(format!(
                "cannot concatenate {:?} with {:?} on axis {axis}",
                first.shape(),
                s
            ));
        }
        shape[axis] += s[axis];
    }
    let perm = if rank == 4 {
        parts
            .iter()
            .map(Val::perm)
            .find(|&p| p != IDENTITY)
            .unwrap_or(IDENTITY)
    } else {
        IDENTITY
    };
    let names: Vec<String> = parts
        .iter()
        .map(|p| tx.stored(p, perm))
        .collect::<Result<_, _>>()?;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let stored_axis = if rank == 4 {
        physical_axis(perm, axis)
    } else {
        axis
    };
    let y = tx.b.node(
        "Concat",
        &node.name,
        &refs,
        vec![("axis", Attr::Int(stored_axis as i64))],
    );
    Ok(Tx::out(y, shape, perm, first.int()))
}

/// Pad, PadV2 (with a fill value) and MirrorPad (REFLECT), in the input's layout.
fn pad(tx: &mut Tx, node: &NodeDef, ins: &[Val]) -> Result<Val, String> {
    let x = ins.first().ok_or("no input")?;
    let rank = x.shape().len();
    let p = need_const(ins, 1, "paddings")?;
    if p.shape != [rank, 2] {
        return Err(format!(
            "paddings of shape {:?} for a rank-{rank} input",
            p.shape
        ));
    }
    let p: Vec<usize> = p
        .ints()
        .into_iter()
        .map(|v| usize::try_from(v).map_err(|_| format!("negative padding {v}")))
        .collect::<Result<_, _>>()?;
    let mode = match node.op.as_str() {
        "MirrorPad" => match node.string("mode").as_deref() {
            Some("REFLECT") => "reflect",
            other => return Err(format!("mirror mode {other:?}: only REFLECT is translated")),
        },
        _ => "constant",
    };
    let value = match node.op.as_str() {
        "PadV2" => need_const(ins, 2, "constant_values")?
            .scalar()
            .ok_or("constant_values is not one value")?,
        _ => 0.0,
    };
    let perm = x.perm();
    let order: Vec<usize> = if rank == 4 {
        layout::permute(perm, &[0, 1, 2, 3])
    } else {
        (0..rank).collect()
    };
    let mut pads: Vec<i64> = order.iter().map(|&a| p[2 * a] as i64).collect();
    pads.extend(order.iter().map(|&a| p[2 * a + 1] as i64));
    let shape: Vec<usize> = (0..rank)
        .map(|a| x.shape()[a] + p[2 * a] + p[2 * a + 1])
        .collect();
    let input = tx.stored(x, perm)?;
    let pads =
        tx.b.int64_init(&format!("{}/pads", node.name), &pads)
            .map_err(|e| e.to_string())?;
    let mut inputs = vec![input, pads];
    if mode == "constant" && !x.int() {
        inputs.push(tx.b.scalar_init(&format!("{}/value", node.name), value));
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let y =
        tx.b.node("Pad", &node.name, &refs, vec![("mode", Attr::Str(mode))]);
    Ok(Tx::out(y, shape, perm, x.int()))
}

/// `x` (in TensorFlow's layout) reshaped to `dims`.
fn reshape(tx: &mut Tx, node: &NodeDef, x: &Val, dims: Vec<usize>) -> Result<Val, String> {
    let input = tx.tf(x)?;
    let shape: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
    let s =
        tx.b.int64_init(&format!("{}/shape", node.name), &shape)
            .map_err(|e| e.to_string())?;
    let y = tx.b.node("Reshape", &node.name, &[&input, &s], vec![]);
    Ok(Tx::out(y, dims, IDENTITY, x.int()))
}

/// A rank-4 Transpose only changes the recorded layout; others are written.
fn transpose(tx: &mut Tx, node: &NodeDef, x: Val, perm: &[i64]) -> Result<Val, String> {
    let rank = x.shape().len();
    if perm.len() != rank {
        return Err(format!("perm {perm:?} for a rank-{rank} input"));
    }
    let shape: Vec<usize> = perm
        .iter()
        .map(|&a| {
            usize::try_from(a)
                .ok()
                .and_then(|a| x.shape().get(a).copied())
        })
        .collect::<Option<_>>()
        .ok_or_else(|| format!("perm {perm:?} names an axis the input lacks"))?;
    if rank == 4 {
        let p: Perm = perm_of(perm).ok_or_else(|| format!("perm {perm:?} is not a permutation"))?;
        return Ok(match x {
            Val::Dyn(mut d) => {
                // tf_out = transpose(tf_in, p); stored = transpose(tf_in, have).
                d.perm = layout::inverse(layout::compose(layout::inverse(d.perm), p));
                d.shape = shape;
                Val::Dyn(d)
            }
            Val::Const(c, name) => {
                let (shape, data) = layout::transpose_data(&c.shape, &c.data, p);
                Val::Const(
                    Rc::new(Const {
                        shape,
                        data,
                        int: c.int,
                    }),
                    format!("{name}/transposed"),
                )
            }
        });
    }
    let input = tx.tf(&x)?;
    let y = tx.b.node(
        "Transpose",
        &node.name,
        &[&input],
        vec![("perm", Attr::Ints(perm.to_vec()))],
    );
    Ok(Tx::out(y, shape, IDENTITY, x.int()))
}

/// StridedSlice with constant bounds, positive strides, and begin/end/shrink masks.
fn strided_slice(tx: &mut Tx, node: &NodeDef, ins: &[Val]) -> Result<Val, String> {
    let x = ins.first().ok_or("no input")?;
    let [begin, end, strides] = [1, 2, 3].map(|i| need_const(ins, i, "bound").map(Const::ints));
    let (begin, end, strides) = (begin?, end?, strides?);
    for mask in ["ellipsis_mask", "new_axis_mask"] {
        if node.int(mask).unwrap_or(0) != 0 {
            return Err(format!("{mask} is not translated"));
        }
    }
    let (bm, em, sm) = (
        node.int("begin_mask").unwrap_or(0),
        node.int("end_mask").unwrap_or(0),
        node.int("shrink_axis_mask").unwrap_or(0),
    );
    let dims = x.shape().to_vec();
    if begin.len() > dims.len() || begin.len() != end.len() || begin.len() != strides.len() {
        return Err(format!(
            "bounds {begin:?}..{end:?} by {strides:?} for shape {dims:?}"
        ));
    }
    let (mut starts, mut ends, mut steps, mut axes, mut shape) =
        (vec![], vec![], vec![], vec![], vec![]);
    for (i, &d) in dims.iter().enumerate() {
        if i >= begin.len() {
            shape.push(d);
            continue;
        }
        let step = strides[i];
        if step <= 0 {
            return Err(format!(
                "stride {step}: only positive strides are translated"
            ));
        }
        let clamp = |v: i64| (if v < 0 { v + d as i64 } else { v }).clamp(0, d as i64);
        let b = if bm >> i & 1 == 1 { 0 } else { clamp(begin[i]) };
        let shrink = sm >> i & 1 == 1;
        let e = if shrink {
            b + 1
        } else if em >> i & 1 == 1 {
            d as i64
        } else {
            clamp(end[i])
        };
        let len = if e > b { (e - b + step - 1) / step } else { 0 } as usize;
        starts.push(b);
        ends.push(e);
        steps.push(step);
        axes.push(i as i64);
        if !shrink {
            shape.push(len);
        }
    }
    let input = tx.tf(x)?;
    let name = &node.name;
    let mut inputs = vec![input];
    for (what, values) in [
        ("starts", &starts),
        ("ends", &ends),
        ("axes", &axes),
        ("steps", &steps),
    ] {
        let list =
            tx.b.int64_init(&format!("{name}/{what}"), values)
                .map_err(|e| e.to_string())?;
        inputs.push(list);
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let y = tx.b.node("Slice", name, &refs, vec![]);
    if sm == 0 {
        return Ok(Tx::out(y, shape, IDENTITY, x.int()));
    }
    // Shrunk axes go through a Reshape to the final shape.
    let dims: Vec<i64> = shape.iter().map(|&v| v as i64).collect();
    let sh =
        tx.b.int64_init(&format!("{name}/shape"), &dims)
            .map_err(|e| e.to_string())?;
    let r =
        tx.b.node("Reshape", &format!("{name}/shrink"), &[&y, &sh], vec![]);
    Ok(Tx::out(r, shape, IDENTITY, x.int()))
}

/// Split (axis first, `num_split` equal parts) and SplitV (sizes, one may be -1; axis last).
fn split(tx: &mut Tx, node: &NodeDef, ins: &[Val]) -> Result<Vec<Val>, String> {
    let (x, axis, sizes) = if node.op == "Split" {
        let x = ins.get(1).ok_or("no input")?;
        let n = node.int("num_split").unwrap_or(1).max(1) as usize;
        (x, need_const(ins, 0, "axis")?, vec![-1i64; n])
    } else {
        (
            ins.first().ok_or("no input")?,
            need_const(ins, 2, "axis")?,
            need_const(ins, 1, "size_splits")?.ints(),
        )
    };
    let rank = x.shape().len() as i64;
    let axis = axis_in(
        axis.scalar().ok_or("the axis is not one value")? as i64,
        rank,
    )?;
    let total = x.shape()[axis];
    let sizes: Vec<usize> = if node.op == "Split" {
        if total % sizes.len() != 0 {
            return Err(format!(
                "{total} does not split into {} equal parts",
                sizes.len()
            ));
        }
        vec![total / sizes.len(); sizes.len()]
    } else {
        let known: i64 = sizes.iter().filter(|&&s| s >= 0).sum();
        let free = sizes.iter().filter(|&&s| s < 0).count();
        if free > 1 || (free == 0 && known != total as i64) || known > total as i64 {
            return Err(format!("sizes {sizes:?} do not split {total}"));
        }
        sizes
            .iter()
            .map(|&s| {
                if s < 0 {
                    total - known as usize
                } else {
                    s as usize
                }
            })
            .collect()
    };
    let perm = x.perm();
    let input = tx.stored(x, perm)?;
    let stored_axis = if rank == 4 {
        physical_axis(perm, axis)
    } else {
        axis
    };
    let split =
        tx.b.int64_init(
            &format!("{}/split", node.name),
            &sizes.iter().map(|&s| s as i64).collect::<Vec<_>>(),
        )
        .map_err(|e| e.to_string())?;
    let outs = tx.b.node_n(
        "Split",
        &node.name,
        &[&input, &split],
        vec![("axis", Attr::Int(stored_axis as i64))],
        sizes.len(),
    );
    Ok(outs
        .into_iter()
        .zip(&sizes)
        .map(|(name, &s)| {
            let mut shape = x.shape().to_vec();
            shape[axis] = s;
            Tx::out(name, shape, perm, x.int())
        })
        .collect())
}

/// MatMul of two matrices, `transpose_a` / `transpose_b` applied.
fn matmul(tx: &mut Tx, node: &NodeDef, ins: &[Val]) -> Result<Val, String> {
    let [a, b] = ins else {
        return Err("MatMul takes two inputs".into());
    };
    let side =
        |tx: &mut Tx, v: &Val, flip: bool, tag: &str| -> Result<(String, [usize; 2]), String> {
            let &[r, c] = v.shape() else {
                return Err(format!("input of shape {:?} is not a matrix", v.shape()));
            };
            let name = tx.tf(v)?;
            if !flip {
                return Ok((name, [r, c]));
            }
            let t = tx.b.node(
                "Transpose",
                &format!("{}/{tag}", node.name),
                &[&name],
                vec![("perm", Attr::Ints(vec![1, 0]))],
            );
            Ok((t, [c, r]))
        };
    let (x, [m, k]) = side(tx, a, node.bool("transpose_a").unwrap_or(false), "a")?;
    let (y, [k2, n]) = side(tx, b, node.bool("transpose_b").unwrap_or(false), "b")?;
    if k != k2 {
        return Err(format!("cannot multiply {m}x{k} by {k2}x{n}"));
    }
    let out = tx.b.node("MatMul", &node.name, &[&x, &y], vec![]);
    Ok(Tx::out(out, vec![m, n], IDENTITY, false))
}
