//! TensorFlow.js weights: a `*-weights_manifest.json` naming each tensor (name, shape, dtype,
//! optional quantisation) and the binary shards beside it holding their values back to back.
//! face-api.js ships its models this way, most tensors quantised to uint8 with a per-tensor
//! affine map `value = q · scale + min`.
//!
//! Tensors come out under PyTorch's names and layouts, so the usual [`crate::load`] applies:
//! `conv1/filters` (TensorFlow's `[h, w, in, out]`) becomes `conv1.weight` `[out, in, h, w]`;
//! a separable convolution's `conv1/depthwise_filter` `[h, w, in, multiplier]`,
//! `conv1/pointwise_filter` and `conv1/bias` become `conv1.depthwise.weight`
//! `[in · multiplier, 1, h, w]`, `conv1.pointwise.weight` and `conv1.pointwise.bias`; `/`
//! becomes `.` elsewhere.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use crate::dict::{StateDict, WeightTensor};
use crate::error::WeightsError;

#[derive(Deserialize)]
struct Group {
    paths: Vec<String>,
    weights: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    shape: Vec<usize>,
    dtype: String,
    #[serde(default)]
    quantization: Option<Quantization>,
}

#[derive(Deserialize)]
struct Quantization {
    dtype: String,
    #[serde(default)]
    scale: Option<f32>,
    #[serde(default)]
    min: Option<f32>,
}

/// Whether `path` looks like a TF.js weights manifest (a JSON file).
pub fn is_manifest(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "json")
}

fn bad(path: &Path, message: String) -> WeightsError {
    WeightsError::BadTensor {
        origin: path.display().to_string(),
        message,
    }
}

/// Reads a TF.js weights manifest and its shards into PyTorch names and layouts.
pub fn read_tfjs(path: &Path) -> Result<StateDict, WeightsError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| WeightsError::Io { path: p, source }
    };
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let groups: Vec<Group> =
        serde_json::from_str(&text).map_err(|e| WeightsError::UnknownFormat {
            path: path.to_path_buf(),
            reason: format!("not a TensorFlow.js weights manifest ({e})"),
        })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut raw = Vec::new();
    for group in &groups {
        let mut bytes = Vec::new();
        for shard in &group.paths {
            if shard.contains("..") || Path::new(shard).is_absolute() {
                return Err(bad(
                    path,
                    format!("shard path '{shard}' leaves the manifest's folder"),
                ));
            }
            let shard = dir.join(shard);
            bytes.extend(std::fs::read(&shard).map_err(io(&shard))?);
        }
        let mut offset = 0;
        for entry in &group.weights {
            let (values, used) = decode(entry, &bytes[offset.min(bytes.len())..])
                .map_err(|m| bad(path, format!("tensor '{}': {m}", entry.name)))?;
            offset += used;
            raw.push((entry.name.clone(), entry.shape.clone(), values));
        }
        if offset != bytes.len() {
            return Err(bad(
                path,
                format!(
                    "the shards hold {} bytes, the manifest describes {offset}",
                    bytes.len()
                ),
            ));
        }
    }
    if raw.is_empty() {
        return Err(bad(path, "the manifest lists no tensors".into()));
    }
    let separable: BTreeSet<String> = raw
        .iter()
        .filter_map(|(n, _, _)| n.strip_suffix("/depthwise_filter").map(String::from))
        .collect();
    let mut dict = StateDict::new(path.display().to_string());
    for (name, shape, values) in raw {
        let (key, tensor) = to_torch(&name, shape, values, &separable)
            .map_err(|m| bad(path, format!("tensor '{name}': {m}")))?;
        if let Some(i) = tensor.data.iter().position(|v| !v.is_finite()) {
            return Err(bad(
                path,
                format!("tensor '{name}' value {i} is not finite"),
            ));
        }
        dict.insert(key, tensor);
    }
    dict.sort_naturally();
    Ok(dict)
}

/// One tensor's values from the front of `bytes`, and how many bytes it took.
fn decode(entry: &Entry, bytes: &[u8]) -> Result<(Vec<f32>, usize), String> {
    let n: usize = entry.shape.iter().product();
    // int32 tensors are graph constants (shapes, axes); they are kept as exact small floats.
    let integer = match entry.dtype.as_str() {
        "float32" => false,
        "int32" => true,
        other => {
            return Err(format!(
                "holds {other} values; weights must be float32 (or int32 constants)"
            ));
        }
    };
    let (values, used) = decode_float(entry, bytes, n, integer)?;
    if integer {
        return Ok((values.into_iter().map(f32::round).collect(), used));
    }
    Ok((values, used))
}

/// The values of `entry` as floats: raw float32 or int32, or dequantised.
fn decode_float(
    entry: &Entry,
    bytes: &[u8],
    n: usize,
    integer: bool,
) -> Result<(Vec<f32>, usize), String> {
    let take = |width: usize| -> Result<&[u8], String> {
        bytes.get(..n * width).ok_or_else(|| {
            format!(
                "the shards end after {} of its {} bytes (truncated file?)",
                bytes.len(),
                n * width
            )
        })
    };
    let Some(q) = &entry.quantization else {
        let b = take(4)?;
        let v = b
            .chunks_exact(4)
            .map(|c| {
                let c = [c[0], c[1], c[2], c[3]];
                if integer {
                    i32::from_le_bytes(c) as f32
                } else {
                    f32::from_le_bytes(c)
                }
            })
            .collect();
        return Ok((v, n * 4));
    };
    let affine = || -> Result<(f32, f32), String> {
        match (q.scale, q.min) {
            (Some(s), Some(m)) => Ok((s, m)),
            _ => Err(format!("{} quantisation without scale and min", q.dtype)),
        }
    };
    match q.dtype.as_str() {
        "uint8" => {
            let (s, m) = affine()?;
            Ok((take(1)?.iter().map(|&b| f32::from(b) * s + m).collect(), n))
        }
        "uint16" => {
            let (s, m) = affine()?;
            let v = take(2)?
                .chunks_exact(2)
                .map(|c| f32::from(u16::from_le_bytes([c[0], c[1]])) * s + m)
                .collect();
            Ok((v, n * 2))
        }
        "float16" => {
            let v = take(2)?
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect();
            Ok((v, n * 2))
        }
        other => Err(format!("unknown quantisation {other}")),
    }
}

/// `[a, b, c, d]` → `[d, c, a, b]` (TensorFlow's HWIO kernel → PyTorch's OIHW).
fn hwio_to_oihw(shape: &[usize], values: &[f32]) -> (Vec<usize>, Vec<f32>) {
    let (h, w, i, o) = (shape[0], shape[1], shape[2], shape[3]);
    let mut out = vec![0.0; values.len()];
    for y in 0..h {
        for x in 0..w {
            for ci in 0..i {
                for co in 0..o {
                    out[((co * i + ci) * h + y) * w + x] = values[((y * w + x) * i + ci) * o + co];
                }
            }
        }
    }
    (vec![o, i, h, w], out)
}

fn to_torch(
    name: &str,
    shape: Vec<usize>,
    values: Vec<f32>,
    separable: &BTreeSet<String>,
) -> Result<(String, WeightTensor), String> {
    let (prefix, leaf) = name.rsplit_once('/').unwrap_or(("", name));
    let dotted = prefix.replace('/', ".");
    let key = |suffix: &str| {
        if dotted.is_empty() {
            suffix.to_string()
        } else {
            format!("{dotted}.{suffix}")
        }
    };
    let kernel = |suffix: &str| -> Result<(String, WeightTensor), String> {
        if shape.len() != 4 {
            return Err(format!(
                "a convolution kernel must have 4 axes, this one is {shape:?}"
            ));
        }
        let (s, v) = hwio_to_oihw(&shape, &values);
        Ok((key(suffix), WeightTensor::new(s, v)))
    };
    match leaf {
        "filters" | "filter" => kernel("weight"),
        "pointwise_filter" => kernel("pointwise.weight"),
        "depthwise_filter" => {
            // [h, w, in, multiplier] → [in · multiplier, 1, h, w]: output channel
            // c · multiplier + m reads input channel c.
            if shape.len() != 4 {
                return Err(format!(
                    "a depthwise kernel must have 4 axes, this one is {shape:?}"
                ));
            }
            let (h, w, i, m) = (shape[0], shape[1], shape[2], shape[3]);
            let mut out = vec![0.0; values.len()];
            for y in 0..h {
                for x in 0..w {
                    for c in 0..i {
                        for k in 0..m {
                            out[(c * m + k) * h * w + y * w + x] =
                                values[((y * w + x) * i + c) * m + k];
                        }
                    }
                }
            }
            Ok((
                key("depthwise.weight"),
                WeightTensor::new(vec![i * m, 1, h, w], out),
            ))
        }
        "bias" | "biases" if separable.contains(prefix) => {
            Ok((key("pointwise.bias"), WeightTensor::new(shape, values)))
        }
        "bias" | "biases" => Ok((key("bias"), WeightTensor::new(shape, values))),
        "weights" if shape.len() == 2 => {
            // A dense layer's [in, out] → PyTorch's [out, in].
            let (i, o) = (shape[0], shape[1]);
            let mut out = vec![0.0; values.len()];
            for a in 0..i {
                for b in 0..o {
                    out[b * i + a] = values[a * o + b];
                }
            }
            Ok((key("weight"), WeightTensor::new(vec![o, i], out)))
        }
        "weights" if shape.len() == 4 => kernel("weight"),
        other => Ok((key(other), WeightTensor::new(shape, values))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, manifest: &str, bin: &[u8]) -> std::path::PathBuf {
        std::fs::write(dir.join("m.bin"), bin).unwrap();
        let path = dir.join("m-weights_manifest.json");
        std::fs::write(&path, manifest).unwrap();
        path
    }

    #[test]
    fn dequantises_and_converts_layouts() {
        let dir = tempfile::tempdir().unwrap();
        // conv0/filters [1, 2, 1, 2] (h, w, in, out) as uint8 with scale 0.5, min -1;
        // conv1 separable: depthwise [1, 1, 2, 1], pointwise [1, 1, 2, 1], bias [1] float32.
        let manifest = r#"[{"paths": ["m.bin"], "weights": [
            {"name": "conv0/filters", "shape": [1, 2, 1, 2], "dtype": "float32",
             "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}},
            {"name": "conv1/depthwise_filter", "shape": [1, 1, 2, 1], "dtype": "float32"},
            {"name": "conv1/pointwise_filter", "shape": [1, 1, 2, 1], "dtype": "float32"},
            {"name": "conv1/bias", "shape": [1], "dtype": "float32"}]}]"#;
        let mut bin = vec![0u8, 1, 2, 3];
        for v in [1.5f32, -2.0, 0.25, 4.0, 9.0] {
            bin.extend(v.to_le_bytes());
        }
        let dict = read_tfjs(&write(dir.path(), manifest, &bin)).unwrap();
        // HWIO values (w=0: out0 -1, out1 -0.5; w=1: out0 0, out1 0.5) → OIHW.
        let k = dict.get("conv0.weight").unwrap();
        assert_eq!(k.shape, vec![2, 1, 1, 2]);
        assert_eq!(k.data, vec![-1.0, 0.0, -0.5, 0.5]);
        assert_eq!(
            dict.get("conv1.depthwise.weight").unwrap().data,
            vec![1.5, -2.0]
        );
        assert_eq!(
            dict.get("conv1.depthwise.weight").unwrap().shape,
            vec![2, 1, 1, 1]
        );
        assert_eq!(
            dict.get("conv1.pointwise.weight").unwrap().shape,
            vec![1, 2, 1, 1]
        );
        assert_eq!(dict.get("conv1.pointwise.bias").unwrap().data, vec![9.0]);
    }

    #[test]
    fn int32_constants_read_as_exact_floats() {
        // SSD manifests carry graph constants: raw int32 and uint8-quantised int32.
        let dir = tempfile::tempdir().unwrap();
        let manifest = r#"[{"paths": ["m.bin"], "weights": [
            {"name": "Preprocessor/ResizeImage/size", "shape": [2], "dtype": "int32"},
            {"name": "concat_1/axis", "shape": [], "dtype": "int32",
             "quantization": {"dtype": "uint8", "scale": 1.0, "min": 0.0}},
            {"name": "x/y", "shape": [1], "dtype": "string"}]}]"#;
        let mut bin = Vec::new();
        for v in [512i32, -7] {
            bin.extend(v.to_le_bytes());
        }
        bin.push(2);
        let ok = manifest.replace(
            r#",
            {"name": "x/y", "shape": [1], "dtype": "string"}"#,
            "",
        );
        let dict = read_tfjs(&write(dir.path(), &ok, &bin)).unwrap();
        assert_eq!(
            dict.get("Preprocessor.ResizeImage.size").unwrap().data,
            vec![512.0, -7.0]
        );
        assert_eq!(dict.get("concat_1.axis").unwrap().data, vec![2.0]);
        let err = read_tfjs(&write(dir.path(), manifest, &bin))
            .unwrap_err()
            .to_string();
        assert!(err.contains("string"), "{err}");
    }

    #[test]
    fn truncated_and_malformed_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = r#"[{"paths": ["m.bin"], "weights": [
            {"name": "a/filters", "shape": [1, 1, 1, 4], "dtype": "float32"}]}]"#;
        let err = read_tfjs(&write(dir.path(), manifest, &[0; 10]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("truncated"), "{err}");
        let err = read_tfjs(&write(dir.path(), manifest, &[0; 20]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("20 bytes"), "{err}");
        let err = read_tfjs(&write(dir.path(), "{\"not\": 1}", &[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("TensorFlow.js"), "{err}");
        let escape = r#"[{"paths": ["../x.bin"], "weights": []}]"#;
        assert!(read_tfjs(&write(dir.path(), escape, &[])).is_err());
    }
}
