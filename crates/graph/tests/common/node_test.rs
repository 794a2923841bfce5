//! ONNX backend node tests on disk: a folder with `model.onnx` and `test_data_set_*/` holding
//! `input_N.pb` / `output_N.pb` (serialized `TensorProto`s). ONNX's own conformance tests
//! have this layout, and so do the PyTorch fixtures of `scripts/onnx/make_fixtures.py`, so one
//! reader serves the conformance example and the CI tests (both include this file with
//! `#[path]`).
//!
//! The comparison is the ONNX backend test runner's: `|got - want| <= atol + rtol * |want|`,
//! NaN equal to NaN, shapes and element types equal, integers and booleans exact.

// Each includer uses a different part of this file.
#![allow(dead_code)]

use std::fmt;
use std::path::{Path, PathBuf};

use burn::tensor::{DType, TensorData};
use onnx_ir::{Message, ModelProto, TensorProto};

/// The ONNX backend test runner's default tolerances.
pub const RTOL: f64 = 1e-3;
pub const ATOL: f64 = 1e-7;

/// One `test_data_set_N` folder: the graph inputs and the expected outputs, in order.
pub struct DataSet {
    pub name: String,
    pub inputs: Vec<TensorData>,
    pub outputs: Vec<TensorData>,
}

/// A node-test folder, read whole.
pub struct NodeTest {
    /// The folder's name (`test_conv_with_strides_padding`).
    pub name: String,
    pub model: PathBuf,
    /// The operator types of the graph's nodes, each once, in node order.
    pub ops: Vec<String>,
    /// The default domain's opset, when the model imports it.
    pub opset: Option<i64>,
    pub data_sets: Vec<DataSet>,
}

impl NodeTest {
    /// Reads `dir`: the model's operator list and every data set. Errors are one line naming
    /// the file.
    pub fn read(dir: &Path) -> Result<NodeTest, String> {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        let model = dir.join("model.onnx");
        let (ops, opset) = model_ops(&model)?;
        let mut sets = numbered(dir, "test_data_set_", "")?
            .into_iter()
            .filter(|(_, path)| path.is_dir())
            .collect::<Vec<_>>();
        sets.sort_by_key(|(n, _)| *n);
        if sets.is_empty() {
            return Err(format!("{}: no test_data_set_* folder", dir.display()));
        }
        let data_sets = sets
            .into_iter()
            .map(|(_, path)| {
                Ok(DataSet {
                    name: file_name(&path),
                    inputs: read_all(&path, "input_")?,
                    outputs: read_all(&path, "output_")?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(NodeTest {
            name,
            model,
            ops,
            opset,
            data_sets,
        })
    }

    /// The operator a test is about: its only operator once `Constant` nodes (which node tests
    /// use to feed tensors) are left out, or `None` for a graph of several operators.
    pub fn op(&self) -> Option<&str> {
        let mut ops = self.ops.iter().filter(|o| o.as_str() != "Constant");
        match (ops.next(), ops.next()) {
            (Some(op), None) => Some(op),
            (None, None) => self.ops.first().map(String::as_str),
            _ => None,
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The entries of `dir` named `{prefix}N{suffix}`, with N.
fn numbered(dir: &Path, prefix: &str, suffix: &str) -> Result<Vec<(usize, PathBuf)>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let index = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
            .and_then(|n| n.parse::<usize>().ok());
        if let Some(index) = index {
            found.push((index, entry.path()));
        }
    }
    Ok(found)
}

/// `{prefix}0.pb`, `{prefix}1.pb`, ... of a data set, which must be numbered without gaps:
/// the position is the graph input (or output) it belongs to.
fn read_all(dir: &Path, prefix: &str) -> Result<Vec<TensorData>, String> {
    let mut files = numbered(dir, prefix, ".pb")?;
    files.sort_by_key(|(n, _)| *n);
    files
        .iter()
        .enumerate()
        .map(|(position, (index, path))| {
            if position != *index {
                return Err(format!(
                    "{}: {prefix}{position}.pb is missing",
                    dir.display()
                ));
            }
            read_tensor(path)
        })
        .collect()
}

/// The operator types of `model.onnx`'s top graph and its default-domain opset.
pub fn model_ops(path: &Path) -> Result<(Vec<String>, Option<i64>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let model = ModelProto::parse_from_bytes(&bytes)
        .map_err(|e| format!("{}: not an ONNX model: {e}", path.display()))?;
    let mut ops: Vec<String> = Vec::new();
    for node in &model.graph.node {
        if !ops.contains(&node.op_type) {
            ops.push(node.op_type.clone());
        }
    }
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version);
    Ok((ops, opset))
}

/// Reads one serialized `TensorProto`.
pub fn read_tensor(path: &Path) -> Result<TensorData, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let proto = TensorProto::parse_from_bytes(&bytes)
        .map_err(|e| format!("{}: not a TensorProto: {e}", path.display()))?;
    tensor_data(&proto).map_err(|e| format!("{}: {e}", path.display()))
}

// TensorProto.DataType codes (onnx.proto).
const FLOAT: i32 = 1;
const UINT8: i32 = 2;
const INT8: i32 = 3;
const UINT16: i32 = 4;
const INT16: i32 = 5;
const INT32: i32 = 6;
const INT64: i32 = 7;
const BOOL: i32 = 9;
const FLOAT16: i32 = 10;
const DOUBLE: i32 = 11;
const UINT32: i32 = 12;
const UINT64: i32 = 13;
const BFLOAT16: i32 = 16;

/// A `TensorProto`'s values as `TensorData` of the same element type, from `raw_data`
/// (little-endian) or from the typed field ONNX stores that type in.
pub fn tensor_data(proto: &TensorProto) -> Result<TensorData, String> {
    if !proto.external_data.is_empty() {
        return Err("the values are in an external file, which node tests do not use".into());
    }
    let mut shape = Vec::with_capacity(proto.dims.len());
    let mut count: usize = 1;
    for &d in &proto.dims {
        let d =
            usize::try_from(d).map_err(|_| format!("negative dimension in {:?}", proto.dims))?;
        count = count
            .checked_mul(d)
            .ok_or_else(|| format!("dimensions {:?} overflow", proto.dims))?;
        shape.push(d);
    }
    let raw: &[u8] = &proto.raw_data;
    // ONNX writes either raw_data or the typed field; an empty tensor has neither.
    let use_raw = !raw.is_empty() || count == 0;
    let data = match proto.data_type {
        FLOAT if use_raw => TensorData::new(decode(raw, count, f32::from_le_bytes)?, shape),
        FLOAT => TensorData::new(typed(&proto.float_data, count)?, shape),
        DOUBLE if use_raw => TensorData::new(decode(raw, count, f64::from_le_bytes)?, shape),
        DOUBLE => TensorData::new(typed(&proto.double_data, count)?, shape),
        FLOAT16 | BFLOAT16 => {
            let bits: Vec<u16> = if use_raw {
                decode(raw, count, u16::from_le_bytes)?
            } else {
                narrow(typed(&proto.int32_data, count)?)?
            };
            if proto.data_type == FLOAT16 {
                TensorData::new(
                    bits.into_iter()
                        .map(half::f16::from_bits)
                        .collect::<Vec<_>>(),
                    shape,
                )
            } else {
                TensorData::new(
                    bits.into_iter()
                        .map(half::bf16::from_bits)
                        .collect::<Vec<_>>(),
                    shape,
                )
            }
        }
        INT64 if use_raw => TensorData::new(decode(raw, count, i64::from_le_bytes)?, shape),
        INT64 => TensorData::new(typed(&proto.int64_data, count)?, shape),
        INT32 if use_raw => TensorData::new(decode(raw, count, i32::from_le_bytes)?, shape),
        INT32 => TensorData::new(typed(&proto.int32_data, count)?, shape),
        INT16 if use_raw => TensorData::new(decode(raw, count, i16::from_le_bytes)?, shape),
        INT16 => TensorData::new(narrow::<i16, _>(typed(&proto.int32_data, count)?)?, shape),
        INT8 if use_raw => TensorData::new(decode(raw, count, i8::from_le_bytes)?, shape),
        INT8 => TensorData::new(narrow::<i8, _>(typed(&proto.int32_data, count)?)?, shape),
        UINT8 if use_raw => TensorData::new(decode(raw, count, u8::from_le_bytes)?, shape),
        UINT8 => TensorData::new(narrow::<u8, _>(typed(&proto.int32_data, count)?)?, shape),
        UINT16 if use_raw => TensorData::new(decode(raw, count, u16::from_le_bytes)?, shape),
        UINT16 => TensorData::new(narrow::<u16, _>(typed(&proto.int32_data, count)?)?, shape),
        UINT32 if use_raw => TensorData::new(decode(raw, count, u32::from_le_bytes)?, shape),
        UINT32 => TensorData::new(narrow::<u32, _>(typed(&proto.uint64_data, count)?)?, shape),
        UINT64 if use_raw => TensorData::new(decode(raw, count, u64::from_le_bytes)?, shape),
        UINT64 => TensorData::new(typed(&proto.uint64_data, count)?, shape),
        BOOL => {
            let bytes: Vec<u8> = if use_raw {
                decode(raw, count, u8::from_le_bytes)?
            } else {
                narrow(typed(&proto.int32_data, count)?)?
            };
            TensorData::new(
                bytes.into_iter().map(|b| b != 0).collect::<Vec<bool>>(),
                shape,
            )
        }
        other => return Err(format!("element type {other} is not read here")),
    };
    Ok(data)
}

/// `count` little-endian values of `N` bytes each.
fn decode<T, const N: usize>(
    raw: &[u8],
    count: usize,
    from: fn([u8; N]) -> T,
) -> Result<Vec<T>, String> {
    let want = count
        .checked_mul(N)
        .ok_or_else(|| format!("{count} values overflow"))?;
    if raw.len() != want {
        return Err(format!(
            "raw_data has {} bytes, the shape needs {want}",
            raw.len()
        ));
    }
    Ok(raw
        .chunks_exact(N)
        .map(|chunk| {
            let mut bytes = [0u8; N];
            bytes.copy_from_slice(chunk);
            from(bytes)
        })
        .collect())
}

fn typed<T: Copy>(values: &[T], count: usize) -> Result<Vec<T>, String> {
    if values.len() != count {
        return Err(format!(
            "{} values stored, the shape needs {count}",
            values.len()
        ));
    }
    Ok(values.to_vec())
}

/// Values ONNX stores widened (int8 to uint16 and the 16-bit floats' bits in int32_data,
/// uint32 in uint64_data) brought back to their own type.
fn narrow<T: TryFrom<W>, W: Copy + fmt::Display>(values: Vec<W>) -> Result<Vec<T>, String> {
    values
        .into_iter()
        .map(|v| T::try_from(v).map_err(|_| format!("stored value {v} is out of its type's range")))
        .collect()
}

/// Why an output does not match.
#[derive(Debug, Clone)]
pub struct Mismatch {
    /// The largest |got - want| over the elements, where the shapes and types allowed
    /// comparing them.
    pub max_diff: Option<f64>,
    pub message: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn mismatch(message: String) -> Mismatch {
    Mismatch {
        max_diff: None,
        message,
    }
}

/// Element types that compare as equal: Burn's bool storage and its flex float are
/// representation details, not different ONNX types.
fn same_type(a: DType, b: DType) -> bool {
    match (a, b) {
        (DType::Bool(_), DType::Bool(_)) => true,
        (DType::F32 | DType::Flex32, DType::F32 | DType::Flex32) => true,
        _ => a == b,
    }
}

fn is_signed_int(d: DType) -> bool {
    matches!(d, DType::I8 | DType::I16 | DType::I32 | DType::I64)
}

fn is_unsigned_int(d: DType) -> bool {
    matches!(d, DType::U8 | DType::U16 | DType::U32 | DType::U64)
}

/// The largest |value| of a float tensor (0 for an empty one).
pub fn max_abs(data: &TensorData) -> Result<f64, String> {
    let values = data
        .try_to_vec_as::<f64>()
        .map_err(|e| format!("reading values: {e:?}"))?;
    Ok(values
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0_f64, |m, v| m.max(v.abs())))
}

/// Compares `got` with `want` by the ONNX runner's rule. `Ok` carries the largest |diff|.
pub fn compare(got: &TensorData, want: &TensorData, rtol: f64, atol: f64) -> Result<f64, Mismatch> {
    let got_shape: &[usize] = got.shape();
    let want_shape: &[usize] = want.shape();
    if got_shape != want_shape {
        return Err(mismatch(format!(
            "shape {got_shape:?}, expected {want_shape:?}"
        )));
    }
    if !same_type(got.dtype(), want.dtype()) {
        return Err(mismatch(format!(
            "element type {:?}, expected {:?}",
            got.dtype(),
            want.dtype()
        )));
    }
    let read = |d: &TensorData| {
        d.try_to_vec_as::<f64>()
            .map_err(|e| mismatch(format!("reading values: {e:?}")))
    };
    // Integers beyond 2^53 do not survive f64, so they are compared as themselves.
    let exact = if is_signed_int(want.dtype()) {
        Some(ints::<i64>(got, want)?)
    } else if is_unsigned_int(want.dtype()) {
        Some(ints::<u64>(got, want)?)
    } else if matches!(want.dtype(), DType::Bool(_)) {
        Some(ints::<bool>(got, want)?)
    } else {
        None
    };
    if let Some(first_bad) = exact {
        // Only for the report: booleans may not convert, and then the diff is left out.
        let values = read(got).and_then(|g| Ok((g, read(want)?))).ok();
        let max_diff = values.as_ref().map(|(g, w)| {
            g.iter()
                .zip(w)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0_f64, f64::max)
        });
        return match first_bad {
            None => Ok(max_diff.unwrap_or(0.0)),
            Some((bad, i)) => {
                let shown = values
                    .map(|(g, w)| format!(": got {}, expected {}", g[i], w[i]))
                    .unwrap_or_default();
                Err(Mismatch {
                    max_diff,
                    message: format!(
                        "{bad} of {} values differ, first at {:?}{shown}",
                        want.num_elements(),
                        coordinates(i, want_shape),
                    ),
                })
            }
        };
    }

    let (g, w) = (read(got)?, read(want)?);
    let mut max_diff = 0.0_f64;
    let mut bad = 0usize;
    // The element furthest outside its tolerance, reported as the example of the failure.
    let mut worst: Option<(usize, f64)> = None;
    for (i, (&a, &b)) in g.iter().zip(&w).enumerate() {
        if (a.is_nan() && b.is_nan()) || a == b {
            continue;
        }
        let diff = (a - b).abs();
        if diff.is_finite() {
            max_diff = max_diff.max(diff);
        }
        let allowed = atol + rtol * b.abs();
        // Unequal infinities (and a NaN against a number) never match, as in numpy's allclose.
        if diff.is_nan() || a.is_infinite() || b.is_infinite() || diff > allowed {
            bad += 1;
            let excess = if diff.is_finite() {
                diff - allowed
            } else {
                f64::INFINITY
            };
            if worst.is_none_or(|(_, e)| excess > e) {
                worst = Some((i, excess));
            }
        }
    }
    match worst {
        None => Ok(max_diff),
        Some((i, _)) => Err(Mismatch {
            max_diff: Some(max_diff),
            message: format!(
                "{bad} of {} values off, max |diff| {max_diff:.3e}; worst at {:?}: got {}, expected {}",
                w.len(),
                coordinates(i, want_shape),
                g[i],
                w[i]
            ),
        }),
    }
}

/// Exact comparison: the number of differing elements and the first one, or `None`.
fn ints<E: burn::tensor::Element + PartialEq>(
    got: &TensorData,
    want: &TensorData,
) -> Result<Option<(usize, usize)>, Mismatch> {
    let read = |d: &TensorData| {
        d.try_to_vec_as::<E>()
            .map_err(|e| mismatch(format!("reading values: {e:?}")))
    };
    let (g, w) = (read(got)?, read(want)?);
    let mut differing = g.iter().zip(&w).enumerate().filter(|(_, (a, b))| a != b);
    Ok(differing
        .next()
        .map(|(first, _)| (1 + differing.count(), first)))
}

/// The row-major coordinates of flat index `i` in `shape`.
fn coordinates(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut c = vec![0; shape.len()];
    for (axis, &n) in shape.iter().enumerate().rev() {
        if n > 0 {
            c[axis] = i % n;
            i /= n;
        }
    }
    c
}

/// A caught panic's message on one line: Burn's are several lines under a banner.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    let words: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("==="))
        .collect();
    words.join(" ").chars().take(400).collect()
}

/// Every folder below `root` (itself included) that holds a `model.onnx`, sorted.
pub fn test_folders(root: &Path) -> Result<Vec<PathBuf>, String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if dir.join("model.onnx").is_file() {
            found.push(dir);
            continue;
        }
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            if entry.path().is_dir() {
                stack.push(entry.path());
            }
        }
    }
    found.sort();
    Ok(found)
}
