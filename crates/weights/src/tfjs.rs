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
use std::io::Read;
use std::path::Path;

use convnet_layers::limits::{Bytes, checked_add, checked_mul, checked_product};

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
///
/// The whole manifest is checked before a shard is read: every dtype and quantisation known,
/// every shape's size computed without overflow, the values within the memory limit, and each
/// group's declared bytes equal to its shards' sizes on disk.
pub fn read_tfjs(path: &Path) -> Result<StateDict, WeightsError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let groups = parse_manifest(&text).map_err(|e| match e {
        ManifestError::Json(reason) => WeightsError::UnknownFormat {
            path: path.to_path_buf(),
            reason,
        },
        ManifestError::Invalid(message) => bad(path, message),
    })?;
    let raw: Vec<(String, Vec<usize>, Vec<f32>)> = read_groups(path, &groups)?
        .into_iter()
        .map(|t| (t.name, t.shape, t.values))
        .collect();
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

/// One tensor of a manifest as stored: TensorFlow's name and layout, values dequantised.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
    /// An int32 constant (a shape, an axis), its values exact whole floats.
    pub integer: bool,
}

/// The tensors of a manifest's text `manifest` (the JSON array of groups; a TF.js graph
/// model embeds it as `weightsManifest`), their shards beside `path`, in manifest order and
/// TensorFlow's layouts. Checked as [`read_tfjs`] checks.
pub fn read_raw(path: &Path, manifest: &str) -> Result<Vec<RawTensor>, WeightsError> {
    let groups = parse_manifest(manifest).map_err(|e| match e {
        ManifestError::Json(reason) | ManifestError::Invalid(reason) => bad(path, reason),
    })?;
    read_groups(path, &groups)
}

fn read_groups(path: &Path, groups: &[CheckedGroup]) -> Result<Vec<RawTensor>, WeightsError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut raw = Vec::new();
    for group in groups {
        let bytes = read_shards(path, dir, group)?;
        let mut offset = 0;
        for (entry, layout) in group.weights.iter().zip(&group.layouts) {
            let end = offset + layout.bytes;
            raw.push(RawTensor {
                name: entry.name.clone(),
                shape: entry.shape.clone(),
                values: decode(layout, &bytes[offset..end]),
                integer: layout.integer,
            });
            offset = end;
        }
    }
    Ok(raw)
}

fn io(p: &Path) -> impl Fn(std::io::Error) -> WeightsError + '_ {
    move |source| WeightsError::Io {
        path: p.to_path_buf(),
        source,
    }
}

/// Why a manifest's text was refused: not the JSON of a manifest at all, or a manifest whose
/// content is impossible (a shape past any memory, an unknown dtype, a shard path outside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestError {
    Json(String),
    Invalid(String),
}

/// A manifest group with each tensor's checked layout.
pub struct CheckedGroup {
    paths: Vec<String>,
    weights: Vec<Entry>,
    layouts: Vec<Layout>,
    /// The bytes all the tensors of the group take, which the shards must hold exactly.
    bytes: usize,
}

impl CheckedGroup {
    /// The group's shard files, relative to the manifest's folder.
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// The bytes the group's shards must hold, together.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// How one tensor is stored: its value count, the stored word, and its bytes in the shard.
#[derive(Debug, Clone, Copy)]
struct Layout {
    values: usize,
    word: Word,
    bytes: usize,
    /// An int32 constant (a shape, an axis), kept as exact whole floats.
    integer: bool,
}

/// A stored value's encoding.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Word {
    F32,
    I32,
    /// `q · scale + min`
    U8 {
        scale: f32,
        min: f32,
    },
    U16 {
        scale: f32,
        min: f32,
    },
    F16,
}

impl Word {
    fn width(self) -> usize {
        match self {
            Word::F32 | Word::I32 => 4,
            Word::U16 { .. } | Word::F16 => 2,
            Word::U8 { .. } => 1,
        }
    }
}

/// Parses and checks a manifest's text (no file is read): the entry point for fuzzing.
pub fn parse_manifest(text: &str) -> Result<Vec<CheckedGroup>, ManifestError> {
    let groups: Vec<Group> = serde_json::from_str(text)
        .map_err(|e| ManifestError::Json(format!("not a TensorFlow.js weights manifest ({e})")))?;
    let mut total = Bytes::ZERO;
    let mut checked = Vec::with_capacity(groups.len());
    for group in groups {
        for shard in &group.paths {
            if shard.contains("..") || Path::new(shard).is_absolute() {
                return Err(ManifestError::Invalid(format!(
                    "shard path '{shard}' leaves the manifest's folder"
                )));
            }
        }
        let mut layouts = Vec::with_capacity(group.weights.len());
        let mut bytes = 0usize;
        for entry in &group.weights {
            let layout = layout(entry)
                .map_err(|m| ManifestError::Invalid(format!("tensor '{}': {m}", entry.name)))?;
            bytes = checked_add("the manifest's shard bytes", bytes, layout.bytes)
                .map_err(|e| ManifestError::Invalid(e.to_string()))?;
            total += Bytes::f32s(&[layout.values]);
            layouts.push(layout);
        }
        checked.push(CheckedGroup {
            paths: group.paths,
            weights: group.weights,
            layouts,
            bytes,
        });
    }
    if checked.iter().all(|g| g.weights.is_empty()) {
        return Err(ManifestError::Invalid(
            "the manifest lists no tensors".into(),
        ));
    }
    total
        .check("the manifest's tensors")
        .map_err(|e| ManifestError::Invalid(e.to_string()))?;
    Ok(checked)
}

/// One entry's value count and encoding, or why it cannot be read.
fn layout(entry: &Entry) -> Result<Layout, String> {
    let values = checked_product("its shape", &entry.shape).map_err(|e| e.to_string())?;
    let (word, integer) = word(entry)?;
    let bytes = checked_mul("its bytes", values, word.width()).map_err(|e| e.to_string())?;
    Ok(Layout {
        values,
        word,
        bytes,
        integer,
    })
}

/// How `entry` is stored, and whether it is an int32 constant.
fn word(entry: &Entry) -> Result<(Word, bool), String> {
    let integer = match entry.dtype.as_str() {
        "float32" => false,
        "int32" => true,
        other => {
            return Err(format!(
                "holds {other} values; weights must be float32 (or int32 constants)"
            ));
        }
    };
    let Some(q) = &entry.quantization else {
        return Ok((if integer { Word::I32 } else { Word::F32 }, integer));
    };
    let affine = || -> Result<(f32, f32), String> {
        match (q.scale, q.min) {
            (Some(s), Some(m)) if s.is_finite() && m.is_finite() => Ok((s, m)),
            (Some(s), Some(m)) => Err(format!(
                "{} quantisation with scale {s} and min {m}: both must be finite",
                q.dtype
            )),
            _ => Err(format!("{} quantisation without scale and min", q.dtype)),
        }
    };
    let word = match q.dtype.as_str() {
        "uint8" => affine().map(|(scale, min)| Word::U8 { scale, min }),
        "uint16" => affine().map(|(scale, min)| Word::U16 { scale, min }),
        "float16" => Ok(Word::F16),
        other => Err(format!("unknown quantisation {other}")),
    }?;
    Ok((word, integer))
}

/// A group's shards, back to back, once their sizes on disk match what the manifest declares
/// (checked before reading, so a huge or short shard costs nothing).
fn read_shards(path: &Path, dir: &Path, group: &CheckedGroup) -> Result<Vec<u8>, WeightsError> {
    let mut on_disk = 0u64;
    let shards: Vec<_> = group.paths.iter().map(|s| dir.join(s)).collect();
    for shard in &shards {
        let len = std::fs::metadata(shard).map_err(io(shard))?.len();
        on_disk = on_disk.saturating_add(len);
    }
    if on_disk != group.bytes as u64 {
        let hint = if on_disk < group.bytes as u64 {
            " (truncated file?)"
        } else {
            ""
        };
        return Err(bad(
            path,
            format!(
                "the shards hold {on_disk} bytes, the manifest describes {}{hint}",
                group.bytes
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(group.bytes);
    for shard in &shards {
        let file = std::fs::File::open(shard).map_err(io(shard))?;
        // The take keeps a shard that grew since it was measured from overrunning the buffer.
        let room = (group.bytes - bytes.len()) as u64 + 1;
        file.take(room).read_to_end(&mut bytes).map_err(io(shard))?;
    }
    if bytes.len() != group.bytes {
        return Err(bad(path, "a shard changed while it was read".into()));
    }
    Ok(bytes)
}

/// One tensor's values from its bytes (exactly `layout.bytes` of them).
fn decode(layout: &Layout, bytes: &[u8]) -> Vec<f32> {
    let values = decode_words(layout.word, bytes);
    if layout.integer {
        return values.into_iter().map(f32::round).collect();
    }
    values
}

fn decode_words(word: Word, bytes: &[u8]) -> Vec<f32> {
    let width = word.width();
    let words = bytes.chunks_exact(width);
    match word {
        Word::F32 => words
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Word::I32 => words
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
            .collect(),
        Word::U8 { scale, min } => bytes.iter().map(|&b| f32::from(b) * scale + min).collect(),
        Word::U16 { scale, min } => words
            .map(|c| f32::from(u16::from_le_bytes([c[0], c[1]])) * scale + min)
            .collect(),
        Word::F16 => words
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
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

    #[test]
    fn a_shape_whose_size_overflows_is_refused_before_reading() {
        // 2^32 · 2^32 · 1 wraps to 0 in 64-bit arithmetic: an empty shard would "fit".
        let dir = tempfile::tempdir().unwrap();
        let manifest = r#"[{"paths": ["m.bin"], "weights": [
            {"name": "a/filters", "shape": [4294967296, 4294967296, 1, 1], "dtype": "float32"}]}]"#;
        let err = read_tfjs(&write(dir.path(), manifest, &[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("overflows"), "{err}");
        assert!(err.contains("a/filters"), "{err}");
        // Large but representable: refused by the memory limit, not by the allocator.
        let manifest = r#"[{"paths": ["m.bin"], "weights": [
            {"name": "a/filters", "shape": [1000000, 1000000, 1000, 1], "dtype": "float32"}]}]"#;
        let err = read_tfjs(&write(dir.path(), manifest, &[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("would need"), "{err}");
    }

    #[test]
    fn quantisation_fields_are_checked() {
        let m = |q: &str| {
            format!(
                r#"[{{"paths": ["m.bin"], "weights": [{{"name": "a/bias", "shape": [1],
                "dtype": "float32", "quantization": {q}}}]}}]"#
            )
        };
        let err = |q: &str| match parse_manifest(&m(q)) {
            Err(ManifestError::Invalid(e)) => e,
            other => panic!("{q}: {:?}", other.map(|g| g.len())),
        };
        assert!(err(r#"{"dtype": "uint8"}"#).contains("without scale"));
        assert!(err(r#"{"dtype": "uint4", "scale": 1, "min": 0}"#).contains("uint4"));
        assert!(parse_manifest(&m(r#"{"dtype": "uint8", "scale": 1, "min": 0}"#)).is_ok());
    }

    proptest::proptest! {
        /// Any manifest text, and any shapes in a well-formed one, give a value or an error.
        #[test]
        fn manifests_never_panic(text in ".{0,200}") {
            let _ = parse_manifest(&text);
        }

        #[test]
        fn extreme_shapes_never_panic(
            shape in proptest::collection::vec(proptest::prelude::any::<usize>(), 0..5),
            dtype in proptest::sample::select(vec!["float32", "int32", "bool"]),
            quant in proptest::sample::select(vec!["", "uint8", "uint16", "float16", "x"]),
        ) {
            let q = if quant.is_empty() {
                String::new()
            } else {
                format!(r#", "quantization": {{"dtype": "{quant}", "scale": 0.5, "min": -1}}"#)
            };
            let text = format!(
                r#"[{{"paths": ["m.bin"], "weights": [{{"name": "a/filters",
                "shape": {shape:?}, "dtype": "{dtype}"{q}}}]}}]"#
            );
            if let Ok(groups) = parse_manifest(&text) {
                let declared: u128 = shape.iter().map(|&d| d as u128).product();
                proptest::prop_assert!(declared <= groups[0].bytes() as u128);
            }
        }
    }
}
