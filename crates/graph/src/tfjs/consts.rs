//! Constants: the weights, and what TensorFlow computes from constants alone (shape
//! arithmetic such as NanoDet's `SparseToDense` + `AddV2` that builds a Reshape's shape),
//! evaluated here so the ONNX graph receives plain initializers.

use super::layout::{Perm, transpose_data};

/// A constant tensor in TensorFlow's layout. Integer constants (shapes, axes) are held as
/// exact whole floats, as the weights reader gives them.
#[derive(Debug, Clone, PartialEq)]
pub struct Const {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
    pub int: bool,
}

impl Const {
    pub fn ints(&self) -> Vec<i64> {
        self.data.iter().map(|&v| v as i64).collect()
    }

    /// The one value of a scalar (or one-element) constant.
    pub fn scalar(&self) -> Option<f32> {
        (self.data.len() == 1).then(|| self.data[0])
    }

    /// The tensor with its shape padded to rank 4 (leading ones, as broadcasting aligns it)
    /// and stored under `perm`; `None` above rank 4.
    pub fn permuted(&self, perm: Perm) -> Option<Const> {
        if self.shape.len() > 4 {
            return None;
        }
        let mut dims = vec![1; 4 - self.shape.len()];
        dims.extend_from_slice(&self.shape);
        let (shape, data) = transpose_data(&dims, &self.data, perm);
        Some(Const {
            shape,
            data,
            int: self.int,
        })
    }
}

/// The broadcast of two shapes (NumPy's rule), or `None` when they do not broadcast.
pub fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let at = |s: &[usize], i: usize| {
        let pad = rank - s.len();
        if i < pad { 1 } else { s[i - pad] }
    };
    (0..rank)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// The ops [`fold`] evaluates when all their inputs are constants.
pub const FOLDABLE: &[&str] = &[
    "Identity",
    "StopGradient",
    "Snapshot",
    "Add",
    "AddV2",
    "Sub",
    "Mul",
    "RealDiv",
    "Div",
    "FloorDiv",
    "FloorMod",
    "Maximum",
    "Minimum",
    "Cast",
    "SparseToDense",
    "Reshape",
    "Shape",
    "Pack",
];

/// `op` of constant `inputs`, where it is arithmetic on constants convnet evaluates here;
/// `None` for every other op (which is then translated to a node). An error for inputs that
/// make no sense (shapes that do not broadcast, an index out of range).
pub fn fold(
    op: &str,
    inputs: &[&Const],
    node: &super::graph_json::NodeDef,
) -> Option<Result<Const, String>> {
    let result = match (op, inputs) {
        ("Identity" | "StopGradient" | "Snapshot", [x]) => Ok((*x).clone()),
        (
            "Add" | "AddV2" | "Sub" | "Mul" | "RealDiv" | "Div" | "FloorDiv" | "FloorMod"
            | "Maximum" | "Minimum",
            [a, b],
        ) => elementwise(op, a, b),
        ("Cast", [x]) => {
            let int = !matches!(
                node.dtype("DstT").as_deref(),
                Some("DT_FLOAT" | "DT_HALF" | "DT_DOUBLE" | "DT_BFLOAT16")
            );
            Ok(Const {
                shape: x.shape.clone(),
                data: if int {
                    x.data.iter().map(|v| v.trunc()).collect()
                } else {
                    x.data.clone()
                },
                int,
            })
        }
        ("SparseToDense", [indices, shape, values, default]) => {
            sparse_to_dense(indices, shape, values, default)
        }
        ("Reshape", [x, shape]) => reshape_dims(x.data.len(), &shape.ints()).map(|shape| Const {
            shape,
            data: x.data.clone(),
            int: x.int,
        }),
        ("Shape", [x]) => Ok(Const {
            shape: vec![x.shape.len()],
            data: x.shape.iter().map(|&d| d as f32).collect(),
            int: true,
        }),
        ("Pack", parts)
            if !parts.is_empty()
                && parts
                    .iter()
                    .all(|p| p.data.len() == 1 && p.shape.is_empty()) =>
        {
            Ok(Const {
                shape: vec![parts.len()],
                data: parts.iter().map(|p| p.data[0]).collect(),
                int: parts[0].int,
            })
        }
        _ => return None,
    };
    Some(result)
}

fn elementwise(op: &str, a: &Const, b: &Const) -> Result<Const, String> {
    let shape = broadcast(&a.shape, &b.shape)
        .ok_or_else(|| format!("shapes {:?} and {:?} do not broadcast", a.shape, b.shape))?;
    let n: usize = shape.iter().product();
    let int = a.int && b.int;
    let out_strides = strides(&shape);
    let at = |c: &Const, i: usize| -> f32 {
        // Index into `c` broadcast to `shape`: axes of size one repeat.
        let pad = shape.len() - c.shape.len();
        let own = strides(&c.shape);
        let idx: usize = (pad..shape.len())
            .filter(|&axis| c.shape[axis - pad] != 1)
            .map(|axis| (i / out_strides[axis]) % shape[axis] * own[axis - pad])
            .sum();
        c.data.get(idx).copied().unwrap_or(0.0)
    };
    let data = (0..n)
        .map(|i| {
            let (x, y) = (at(a, i), at(b, i));
            match op {
                "Sub" => x - y,
                "Mul" => x * y,
                "RealDiv" | "Div" if int => (x / y).trunc(),
                "RealDiv" | "Div" => x / y,
                "FloorDiv" => (x / y).floor(),
                "FloorMod" => x - (x / y).floor() * y,
                "Maximum" => x.max(y),
                "Minimum" => x.min(y),
                _ => x + y,
            }
        })
        .collect();
    Ok(Const { shape, data, int })
}

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut out = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        out[i] = out[i + 1] * shape[i + 1];
    }
    out
}

fn sparse_to_dense(
    indices: &Const,
    shape: &Const,
    values: &Const,
    default: &Const,
) -> Result<Const, String> {
    let dims: Vec<usize> = shape
        .ints()
        .into_iter()
        .map(|d| usize::try_from(d).map_err(|_| format!("negative dimension {d}")))
        .collect::<Result<_, _>>()?;
    let n: usize = dims.iter().product();
    if n > 1 << 20 {
        return Err(format!("a dense shape of {n} values from constants"));
    }
    let fill = default
        .scalar()
        .ok_or("the default value is not a scalar")?;
    let mut data = vec![fill; n];
    let rank = dims.len();
    let count = if indices.shape.len() == 2 {
        indices.shape[0]
    } else {
        indices.data.len()
    };
    let width = if indices.shape.len() == 2 {
        indices.shape[1]
    } else {
        1
    };
    if width != rank.max(1) {
        return Err(format!("indices of width {width} for a rank-{rank} shape"));
    }
    for k in 0..count {
        let mut at = 0usize;
        for j in 0..width {
            let i = indices.data[k * width + j] as i64;
            let d = dims.get(j).copied().unwrap_or(1);
            let i = usize::try_from(i)
                .ok()
                .filter(|&i| i < d)
                .ok_or(format!("index {i} outside {dims:?}"))?;
            at = at * d + i;
        }
        let v = if values.data.len() == 1 {
            values.data[0]
        } else {
            *values.data.get(k).ok_or("fewer values than indices")?
        };
        data[at] = v;
    }
    Ok(Const {
        shape: dims,
        data,
        int: values.int,
    })
}

/// A Reshape's target dims for `count` values: one `-1` takes what is left; `0`s are kept
/// as TensorFlow reads them (a dimension of zero).
pub fn reshape_dims(count: usize, wanted: &[i64]) -> Result<Vec<usize>, String> {
    let mut free = None;
    let mut known = 1usize;
    let mut dims = Vec::with_capacity(wanted.len());
    for (i, &d) in wanted.iter().enumerate() {
        if d == -1 {
            if free.replace(i).is_some() {
                return Err(format!("shape {wanted:?} has two -1 dimensions"));
            }
            dims.push(0);
        } else {
            let d = usize::try_from(d)
                .map_err(|_| format!("shape {wanted:?} has a negative dimension"))?;
            known = known
                .checked_mul(d)
                .ok_or_else(|| format!("shape {wanted:?} overflows"))?;
            dims.push(d);
        }
    }
    match free {
        Some(i) if known > 0 && count.is_multiple_of(known) => dims[i] = count / known,
        None if known == count => {}
        _ => return Err(format!("cannot reshape {count} values to {wanted:?}")),
    }
    Ok(dims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tfjs::graph_json::NodeDef;

    fn c(shape: &[usize], data: &[f32], int: bool) -> Const {
        Const {
            shape: shape.to_vec(),
            data: data.to_vec(),
            int,
        }
    }

    fn node(op: &str) -> NodeDef {
        serde_json::from_value(serde_json::json!({"name": "n", "op": op})).unwrap()
    }

    #[test]
    fn nanodets_reshape_shape_folds() {
        // SparseToDense(no indices, [3], no values, 0) + [1, 80, -1] = [1, 80, -1]
        let zeros = fold(
            "SparseToDense",
            &[
                &c(&[0, 1], &[], true),
                &c(&[1], &[3.0], true),
                &c(&[0], &[], true),
                &c(&[], &[0.0], true),
            ],
            &node("SparseToDense"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(zeros, c(&[3], &[0.0; 3], true));
        let shape = fold(
            "AddV2",
            &[&c(&[3], &[1.0, 80.0, -1.0], true), &zeros],
            &node("AddV2"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(shape.ints(), [1, 80, -1]);
    }

    #[test]
    fn elementwise_folding_broadcasts() {
        let a = c(&[2, 2], &[1.0, 2.0, 3.0, 4.0], false);
        let b = c(&[2], &[10.0, 20.0], false);
        let s = fold("Add", &[&a, &b], &node("Add")).unwrap().unwrap();
        assert_eq!(s.data, [11.0, 22.0, 13.0, 24.0]);
        let m = fold(
            "FloorMod",
            &[&c(&[], &[-7.0], true), &c(&[], &[3.0], true)],
            &node("FloorMod"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(m.data, [2.0]);
        assert!(
            fold("Add", &[&a, &c(&[3], &[0.0; 3], false)], &node("Add"))
                .unwrap()
                .is_err()
        );
        assert!(fold("Conv2D", &[&a, &b], &node("Conv2D")).is_none());
    }

    #[test]
    fn reshape_dims_fill_the_free_axis() {
        assert_eq!(reshape_dims(12, &[1, -1, 4]).unwrap(), [1, 3, 4]);
        assert!(reshape_dims(12, &[5, -1]).is_err());
        assert!(reshape_dims(12, &[-1, -1]).is_err());
        assert!(reshape_dims(12, &[2, 2]).is_err());
    }

    #[test]
    fn constants_broadcast_into_a_layout() {
        let bias = c(&[3], &[1.0, 2.0, 3.0], false);
        let p = bias.permuted(crate::tfjs::layout::TO_NCHW).unwrap();
        assert_eq!(p.shape, [1, 3, 1, 1]);
        assert_eq!(p.data, [1.0, 2.0, 3.0]);
    }
}
