//! Reading a weights file into a [`StateDict`]: the format is told by the content, not the
//! extension.
//!
//! - PyTorch checkpoints (`torch.save`: the zip format of PyTorch 1.6 and later, the legacy
//!   pickle stream and the old tar format) go through `pytorch-reader`, a pickle reader of its
//!   own that builds plain values and never imports or runs anything the file names.
//! - safetensors files: an 8-byte little-endian header length, a JSON header, the raw values.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use pytorch_reader::{DType, PickleValue, PytorchReader};
use safetensors::{Dtype, SafeTensors};

use crate::dict::{StateDict, WeightTensor};
use crate::error::WeightsError;

/// Entries of a training checkpoint that hold the model's state dict, tried in this order
/// (`{"state_dict": ..., "epoch": 3}`, `{"model": ..., "optimizer": ...}`).
const WRAPPERS: [&str; 3] = ["state_dict", "model_state_dict", "model"];

/// The prefix `nn.DataParallel` puts on every key.
const DATA_PARALLEL: &str = "module.";

/// Batch-norm batch counters: integers, no weights, left out.
const COUNTER: &str = "num_batches_tracked";

/// The formats [`read`] tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Pytorch,
    Safetensors,
}

/// Reads a PyTorch state dict (`.pth` / `.pt`) or a safetensors file.
///
/// - The format comes from the content, whatever the extension.
/// - float16, bfloat16 and float64 tensors become `f32`; integer `*.num_batches_tracked`
///   counters are left out; any other non-float tensor is an error naming it.
/// - A training checkpoint that keeps the weights under a `state_dict`, `model_state_dict` or
///   `model` entry is unwrapped; a `module.` prefix on every key (`nn.DataParallel`) is
///   stripped.
/// - A full-model save (`torch.save(model)`) is read as the module's state dict, from the
///   pickle's data alone: the module's class is never imported or run.
/// - Keys come in natural order (`layer1.2` before `layer1.10`).
pub fn read(path: impl AsRef<Path>) -> Result<StateDict, WeightsError> {
    let path = path.as_ref();
    let dict = match detect(path)? {
        Format::Pytorch => read_pytorch(path)?,
        Format::Safetensors => read_safetensors(path)?,
    };
    let mut dict = strip_data_parallel(dict);
    if dict.is_empty() {
        return Err(not_a_state_dict(path, "it holds no tensors".into()));
    }
    dict.sort_naturally();
    Ok(dict)
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> WeightsError + '_ {
    move |source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn not_a_state_dict(path: &Path, message: String) -> WeightsError {
    WeightsError::NotAStateDict {
        path: path.to_path_buf(),
        message,
    }
}

/// The largest JSON header the safetensors format allows.
const SAFETENSORS_MAX_HEADER: u64 = 100_000_000;

/// The magic number a legacy (PyTorch 0.1.10 to 1.5) checkpoint opens with, as protocol 2
/// writes it (little-endian bytes of a `LONG1`) and as protocols 0 and 1 do (decimal text).
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const LEGACY_MAGIC_TEXT: &[u8] = b"119547037146038801333356";

fn detect(path: &Path) -> Result<Format, WeightsError> {
    let mut head = Vec::with_capacity(512);
    File::open(path)
        .and_then(|f| f.take(512).read_to_end(&mut head))
        .map_err(io_error(path))?;
    let unknown = |reason: &str| WeightsError::UnknownFormat {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    if head.is_empty() {
        return Err(unknown("the file is empty"));
    }
    let contains = |needle: &[u8]| {
        head[..head.len().min(64)]
            .windows(needle.len())
            .any(|w| w == needle)
    };
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Ok(Format::Pytorch);
    }
    if head.get(257..262) == Some(b"ustar") {
        return Ok(Format::Pytorch);
    }
    if let Some(len) = head.first_chunk::<8>().map(|b| u64::from_le_bytes(*b))
        && len <= SAFETENSORS_MAX_HEADER
        && head.get(8) == Some(&b'{')
    {
        return Ok(Format::Safetensors);
    }
    if head[0] == 0x80 || contains(&LEGACY_MAGIC) || contains(LEGACY_MAGIC_TEXT) {
        // A pickle (protocol 2 or later, which every torch.save writes) or a legacy stream.
        return Ok(Format::Pytorch);
    }
    Err(unknown(if head.starts_with(b"\x89HDF\r\n\x1a\n") {
        "an HDF5 file, as Keras writes .h5 weights"
    } else if head.starts_with(&[0x1f, 0x8b]) {
        "a gzip-compressed file: decompress it first"
    } else if head.len() < 8 {
        "too short to be either format"
    } else {
        "neither a zip, pickle or tar PyTorch checkpoint nor a safetensors header"
    }))
}

// -------------------------------------------------------------------------------------------
// PyTorch
// -------------------------------------------------------------------------------------------

fn read_pytorch(path: &Path) -> Result<StateDict, WeightsError> {
    let reader = PytorchReader::new(path).map_err(|e| pytorch_error(path, e))?;
    let tensors = reader.into_tensors();
    let prefix = wrapper_prefix(path, tensors.keys().map(String::as_str));
    let mut dict = StateDict::new(path.display().to_string());
    for (name, tensor) in tensors {
        let key = match &prefix {
            Some(p) => match name.strip_prefix(p.as_str()) {
                Some(k) => k.to_string(),
                None => continue,
            },
            None => name,
        };
        let dtype = tensor.dtype();
        let kind = match dtype {
            DType::F32 => Float::F32,
            DType::F64 => Float::F64,
            DType::F16 => Float::F16,
            DType::BF16 => Float::BF16,
            _ if key.ends_with(COUNTER) => continue,
            other => {
                return Err(WeightsError::Dtype {
                    path: path.to_path_buf(),
                    key,
                    dtype: torch_dtype_name(other).to_string(),
                });
            }
        };
        let bytes = tensor.read().map_err(|e| WeightsError::Pytorch {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let data = decode(&bytes, kind, Endian::Native).ok_or_else(|| bad_length(path, &key))?;
        let tensor = filled(path, &key, tensor.shape().to_vec(), data)?;
        dict.insert(key, tensor);
    }
    Ok(dict)
}

/// Turns a reader error into ours: a file that parses but whose root is no dict (a pickled
/// list, a number) is "not a state dict"; anything else is a damaged or refused checkpoint.
fn pytorch_error(path: &Path, err: pytorch_reader::PytorchError) -> WeightsError {
    match PytorchReader::read_pickle_data(path, None) {
        Ok(PickleValue::Dict(_)) | Err(_) => WeightsError::Pytorch {
            path: path.to_path_buf(),
            message: err.to_string(),
        },
        Ok(other) => not_a_state_dict(
            path,
            format!(
                "it holds {}, not a dict of tensors (save model.state_dict())",
                describe(&other)
            ),
        ),
    }
}

/// A few words on a pickled value, for messages.
fn describe(v: &PickleValue) -> String {
    match v {
        PickleValue::None => "None".into(),
        PickleValue::Bool(_) => "a bool".into(),
        PickleValue::Int(_) => "an int".into(),
        PickleValue::Float(_) => "a float".into(),
        PickleValue::String(_) => "a string".into(),
        PickleValue::Bytes(_) => "bytes".into(),
        PickleValue::List(items) => format!("a list of {} items", items.len()),
        PickleValue::Dict(d) => format!("a dict of {} entries", d.len()),
        PickleValue::Unsupported(name) => format!("a {name} object"),
    }
}

/// `"state_dict."` when the file is a checkpoint keeping the weights under `state_dict`
/// (or another of [`WRAPPERS`]); `None` for a plain state dict. A plain state dict's keys are
/// flat strings even when they start with `model.`, so the file's structure decides, not the
/// key names.
fn wrapper_prefix<'a>(path: &Path, keys: impl Iterator<Item = &'a str>) -> Option<String> {
    let firsts: Vec<&str> = keys.filter_map(|k| k.split('.').next()).collect();
    if !WRAPPERS.iter().any(|w| firsts.contains(w)) {
        return None;
    }
    let Ok(PickleValue::Dict(root)) = PytorchReader::read_pickle_data(path, None) else {
        return None;
    };
    WRAPPERS
        .iter()
        .find(|w| matches!(root.get(**w), Some(PickleValue::Dict(_))))
        .map(|w| format!("{w}."))
}

fn torch_dtype_name(d: DType) -> &'static str {
    match d {
        DType::F64 => "float64",
        DType::F32 => "float32",
        DType::F16 => "float16",
        DType::BF16 => "bfloat16",
        DType::I64 => "int64",
        DType::I32 => "int32",
        DType::I16 => "int16",
        DType::I8 => "int8",
        DType::U64 => "uint64",
        DType::U32 => "uint32",
        DType::U16 => "uint16",
        DType::U8 => "uint8",
        DType::Bool => "bool",
    }
}

// -------------------------------------------------------------------------------------------
// safetensors
// -------------------------------------------------------------------------------------------

fn read_safetensors(path: &Path) -> Result<StateDict, WeightsError> {
    let bytes = std::fs::read(path).map_err(io_error(path))?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| WeightsError::Safetensors {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut dict = StateDict::new(path.display().to_string());
    for (key, view) in file.iter() {
        let kind = match view.dtype() {
            Dtype::F32 => Float::F32,
            Dtype::F64 => Float::F64,
            Dtype::F16 => Float::F16,
            Dtype::BF16 => Float::BF16,
            Dtype::I64 | Dtype::I32 | Dtype::U64 | Dtype::U32 if key.ends_with(COUNTER) => {
                continue;
            }
            other => {
                return Err(WeightsError::Dtype {
                    path: path.to_path_buf(),
                    key: key.to_string(),
                    dtype: format!("{other:?}").to_lowercase(),
                });
            }
        };
        let data =
            decode(view.data(), kind, Endian::Little).ok_or_else(|| bad_length(path, key))?;
        dict.insert(key, filled(path, key, view.shape().to_vec(), data)?);
    }
    Ok(dict)
}

// -------------------------------------------------------------------------------------------
// Values
// -------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Float {
    F16,
    BF16,
    F32,
    F64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Endian {
    /// pytorch-reader hands bytes over in the machine's order.
    Native,
    /// safetensors stores little-endian values.
    Little,
}

fn bad_length(path: &Path, key: &str) -> WeightsError {
    WeightsError::BadTensor {
        origin: path.display().to_string(),
        message: format!("tensor '{key}': its bytes do not fill its shape"),
    }
}

/// A tensor whose values fill its shape exactly (the shape's size computed without
/// overflow), whichever reader produced them: a file whose shape and storage disagree is an
/// error naming the tensor, never a tensor that fails later or reads past its values.
fn filled(
    path: &Path,
    key: &str,
    shape: Vec<usize>,
    data: Vec<f32>,
) -> Result<WeightTensor, WeightsError> {
    let bad = |message: String| WeightsError::BadTensor {
        origin: path.display().to_string(),
        message: format!("tensor '{key}': {message}"),
    };
    let n = convnet_layers::limits::checked_product("its shape", &shape)
        .map_err(|e| bad(e.to_string()))?;
    if n != data.len() {
        return Err(bad(format!(
            "shape {shape:?} calls for {n} values, the file holds {}",
            data.len()
        )));
    }
    Ok(WeightTensor::new(shape, data))
}

/// The values as `f32`, or `None` when the bytes are not a whole number of values.
fn decode(bytes: &[u8], kind: Float, endian: Endian) -> Option<Vec<f32>> {
    fn words<const N: usize, T>(
        bytes: &[u8],
        endian: Endian,
        ne: fn([u8; N]) -> T,
        le: fn([u8; N]) -> T,
        to_f32: fn(T) -> f32,
    ) -> Option<Vec<f32>> {
        if !bytes.len().is_multiple_of(N) {
            return None;
        }
        let from = if endian == Endian::Native { ne } else { le };
        Some(
            bytes
                .chunks_exact(N)
                .map(|c| {
                    let mut word = [0u8; N];
                    word.copy_from_slice(c);
                    to_f32(from(word))
                })
                .collect(),
        )
    }
    match kind {
        Float::F32 => words(bytes, endian, f32::from_ne_bytes, f32::from_le_bytes, |v| v),
        Float::F64 => words(bytes, endian, f64::from_ne_bytes, f64::from_le_bytes, |v| {
            v as f32
        }),
        Float::F16 => words(bytes, endian, u16::from_ne_bytes, u16::from_le_bytes, |b| {
            half::f16::from_bits(b).to_f32()
        }),
        Float::BF16 => words(bytes, endian, u16::from_ne_bytes, u16::from_le_bytes, |b| {
            half::bf16::from_bits(b).to_f32()
        }),
    }
}

/// Drops the `module.` that `nn.DataParallel` puts on every key, when every key has it.
fn strip_data_parallel(dict: StateDict) -> StateDict {
    if dict.is_empty() || !dict.keys().all(|k| k.starts_with(DATA_PARALLEL)) {
        return dict;
    }
    dict.rename(|k| k[DATA_PARALLEL.len()..].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_values_widen_exactly() {
        let f16 = half::f16::from_f32(-1.5).to_bits().to_le_bytes();
        let bf16 = half::bf16::from_f32(3.0).to_bits().to_le_bytes();
        assert_eq!(decode(&f16, Float::F16, Endian::Little), Some(vec![-1.5]));
        assert_eq!(decode(&bf16, Float::BF16, Endian::Little), Some(vec![3.0]));
        let f64s = 0.25f64.to_ne_bytes();
        assert_eq!(decode(&f64s, Float::F64, Endian::Native), Some(vec![0.25]));
        assert_eq!(decode(&[0, 0, 0], Float::F32, Endian::Little), None);
    }

    #[test]
    fn data_parallel_prefix_goes_only_when_every_key_has_it() {
        let t = || WeightTensor::new(vec![1], vec![0.0]);
        let mut d = StateDict::new("x");
        d.insert("module.a", t());
        d.insert("module.b", t());
        let d = strip_data_parallel(d);
        assert_eq!(d.keys().collect::<Vec<_>>(), ["a", "b"]);
        let mut d = StateDict::new("x");
        d.insert("module.a", t());
        d.insert("b", t());
        let d = strip_data_parallel(d);
        assert_eq!(d.keys().collect::<Vec<_>>(), ["module.a", "b"]);
    }

    fn read_bytes(dir: &Path, name: &str, bytes: &[u8]) -> Result<StateDict, WeightsError> {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        read(&path)
    }

    fn safetensors_file(header: &str, body: &[u8]) -> Vec<u8> {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header.as_bytes());
        bytes.extend(body);
        bytes
    }

    #[test]
    fn safetensors_shapes_past_their_bytes_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        for header in [
            r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#,
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8000]}}"#,
            r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
        ] {
            let bytes = safetensors_file(header, &[0; 8]);
            let err = read_bytes(dir.path(), "w.safetensors", &bytes).unwrap_err();
            assert!(err.to_string().contains("w.safetensors"), "{err}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Arbitrary bytes behind each format's magic are read or refused, never a panic.
        #[test]
        fn arbitrary_files_never_panic(
            magic in proptest::sample::select(vec![&b"PK\x03\x04"[..], b"\x80\x02", b""]),
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut bytes = magic.to_vec();
            bytes.extend(&body);
            let _ = read_bytes(dir.path(), "w.pth", &bytes);
        }

        /// Valid safetensors headers with extreme shapes and offsets never panic.
        #[test]
        fn extreme_safetensors_headers_never_panic(
            shape in proptest::collection::vec(proptest::prelude::any::<usize>(), 0..4),
            start in proptest::prelude::any::<usize>(),
            end in proptest::prelude::any::<usize>(),
            body in 0usize..64,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let header = format!(
                r#"{{"a":{{"dtype":"F32","shape":{shape:?},"data_offsets":[{start},{end}]}}}}"#
            );
            let _ = read_bytes(dir.path(), "w.safetensors", &safetensors_file(&header, &vec![0; body]));
        }
    }
}
