//! NumPy's `.npy` files: the way people hand over their own arrays (`np.save("x.npy", x)`).
//!
//! The format (numpy.lib.format): the magic `\x93NUMPY`, a version byte pair, the header's
//! length (2 bytes in version 1.0, 4 in 2.0 and 3.0, little-endian), then the header — a Python
//! dict literal such as `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }` padded
//! with spaces to a multiple of 64 bytes and ended by a newline — and then the raw values.
//!
//! Read: booleans, 8- to 64-bit integers and 16- to 64-bit floats, little-endian (or single
//! bytes), in C order. Big-endian and Fortran-order arrays are refused with the NumPy call that
//! converts them, rather than silently transposed or byte-swapped.

use std::path::Path;

use crate::tensor_set::first_non_finite;
use crate::{DataError, TensorSet};

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The most classes [`load_npy_set`] invents names for: a larger label is far more likely a
/// value in the wrong file than a class index.
const MAX_DEFAULT_CLASSES: usize = 1 << 20;

/// The values of an array, widened to a few types: every integer type becomes `i64` except
/// bytes (images), every float of 32 bits or fewer becomes `f32`.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    Bool(Vec<bool>),
    U8(Vec<u8>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl NpyData {
    /// The values as `f32`; a finite `f64` beyond `f32`'s range is an error (it would become
    /// an infinity silently), named by example (`per_example` values each) and position.
    pub fn into_f32(self, per_example: usize) -> Result<Vec<f32>, String> {
        Ok(match self {
            NpyData::F32(v) => v,
            NpyData::F64(v) => {
                if let Some(at) = v
                    .iter()
                    .position(|d| d.is_finite() && d.abs() > f64::from(f32::MAX))
                {
                    return Err(format!(
                        "example {} holds {:?} at position {}, beyond the range of f32",
                        at / per_example.max(1),
                        v[at],
                        at % per_example.max(1)
                    ));
                }
                v.into_iter().map(|d| d as f32).collect()
            }
            NpyData::I64(v) => v.into_iter().map(|i| i as f32).collect(),
            NpyData::U8(v) => v.into_iter().map(f32::from).collect(),
            NpyData::Bool(v) => v.into_iter().map(|b| f32::from(u8::from(b))).collect(),
        })
    }

    pub fn len(&self) -> usize {
        match self {
            NpyData::Bool(v) => v.len(),
            NpyData::U8(v) => v.len(),
            NpyData::I64(v) => v.len(),
            NpyData::F32(v) => v.len(),
            NpyData::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The NumPy type string this data is written as.
    pub fn descr(&self) -> &'static str {
        match self {
            NpyData::Bool(_) => "|b1",
            NpyData::U8(_) => "|u1",
            NpyData::I64(_) => "<i8",
            NpyData::F32(_) => "<f4",
            NpyData::F64(_) => "<f8",
        }
    }
}

/// One array: its shape (C order) and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: NpyData,
}

impl NpyArray {
    /// The `.npy` bytes of this array: version 1.0, or 2.0 when the header needs more than
    /// 65,535 bytes. Errors if the value count does not match the shape.
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        let count = element_count(&self.shape).ok_or("the shape overflows")?;
        if count != self.data.len() {
            return Err(format!(
                "shape {:?} calls for {count} values, got {}",
                self.shape,
                self.data.len()
            ));
        }
        let dims: Vec<String> = self.shape.iter().map(usize::to_string).collect();
        let shape = match dims.len() {
            1 => format!("({},)", dims[0]),
            _ => format!("({})", dims.join(", ")),
        };
        let dict = format!(
            "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
            self.data.descr()
        );
        // Pad so the values start 64-byte aligned, as NumPy does (readers may mmap them).
        let header = |prefix: usize| {
            let unpadded = prefix + dict.len() + 1;
            let mut h = dict.clone();
            h.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
            h.push('\n');
            h
        };
        let mut bytes = Vec::with_capacity(128 + count * 8);
        bytes.extend_from_slice(MAGIC);
        let h = header(10);
        if let Ok(len) = u16::try_from(h.len()) {
            bytes.extend_from_slice(&[1, 0]);
            bytes.extend_from_slice(&len.to_le_bytes());
            bytes.extend_from_slice(h.as_bytes());
        } else {
            let h = header(12);
            let len = u32::try_from(h.len()).map_err(|_| "the header is too long")?;
            bytes.extend_from_slice(&[2, 0]);
            bytes.extend_from_slice(&len.to_le_bytes());
            bytes.extend_from_slice(h.as_bytes());
        }
        match &self.data {
            NpyData::Bool(v) => bytes.extend(v.iter().map(|&b| u8::from(b))),
            NpyData::U8(v) => bytes.extend_from_slice(v),
            NpyData::I64(v) => v.iter().for_each(|x| bytes.extend(x.to_le_bytes())),
            NpyData::F32(v) => v.iter().for_each(|x| bytes.extend(x.to_le_bytes())),
            NpyData::F64(v) => v.iter().for_each(|x| bytes.extend(x.to_le_bytes())),
        }
        Ok(bytes)
    }

    /// Writes the array to `path`; the file appears complete or not at all.
    pub fn write(&self, path: &Path) -> Result<(), DataError> {
        let bytes = self
            .to_bytes()
            .map_err(|problem| npy_error(path, problem))?;
        convnet_vision::image_io::write_atomically(path, &bytes)?;
        Ok(())
    }
}

/// Writes `f32` values of shape `shape` (C order) as a `.npy` file, atomically: what
/// `np.load` reads back as a `float32` array.
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), DataError> {
    NpyArray {
        shape: shape.to_vec(),
        data: NpyData::F32(data.to_vec()),
    }
    .write(path)
}

/// Reads a `.npy` file.
pub fn read_npy(path: &Path) -> Result<NpyArray, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_npy(&bytes, path)
}

/// Parses the bytes of a `.npy` file; `path` only names it in errors.
pub fn parse_npy(bytes: &[u8], path: &Path) -> Result<NpyArray, DataError> {
    parse(bytes).map_err(|problem| npy_error(path, problem))
}

fn npy_error(path: &Path, problem: String) -> DataError {
    DataError::Npy {
        path: path.to_path_buf(),
        problem,
    }
}

fn element_count(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

fn parse(bytes: &[u8]) -> Result<NpyArray, String> {
    if bytes.is_empty() {
        return Err("the file is empty, not a .npy array".to_string());
    }
    let head = &bytes[..bytes.len().min(MAGIC.len())];
    if !MAGIC.starts_with(head) {
        return Err("not a .npy file (it does not start with \\x93NUMPY)".to_string());
    }
    if bytes.len() < 8 {
        return Err("truncated: the file ends before the format version".to_string());
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len_bytes, utf8) = match major {
        1 => (2, false),
        2 => (4, false),
        3 => (4, true),
        _ => {
            return Err(format!(
                ".npy format version {major}.{minor} is not supported (1.0, 2.0 and 3.0 are)"
            ));
        }
    };
    let start = 8 + len_bytes;
    let Some(len_field) = bytes.get(8..start) else {
        return Err("truncated: the file ends inside the header length".to_string());
    };
    let header_len = len_field
        .iter()
        .rev()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    let end = start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| {
            format!(
                "truncated: the header should be {header_len} bytes, but the file has {} after the length",
                bytes.len() - start
            )
        })?;
    let raw = &bytes[start..end];
    // Versions 1.0 and 2.0 store the header in latin-1, 3.0 in UTF-8.
    let header: String = if utf8 {
        std::str::from_utf8(raw)
            .map_err(|_| "the header is not valid UTF-8".to_string())?
            .to_string()
    } else {
        raw.iter().map(|&b| char::from(b)).collect()
    };
    let header = Header::parse(&header)?;
    let dtype = Dtype::parse(&header.descr)?;
    if header.fortran_order && header.shape.iter().filter(|&&d| d > 1).count() > 1 {
        return Err(format!(
            "the array {} is stored in Fortran (column-major) order; only C order is read: save np.ascontiguousarray(a) instead",
            shape_str(&header.shape)
        ));
    }
    let count = element_count(&header.shape)
        .ok_or_else(|| format!("shape {} overflows", shape_str(&header.shape)))?;
    let need = count
        .checked_mul(dtype.size)
        .ok_or_else(|| format!("shape {} overflows", shape_str(&header.shape)))?;
    let body = &bytes[end..];
    if body.len() < need {
        return Err(format!(
            "truncated: shape {} of '{}' needs {need} bytes of values, the file holds {}",
            shape_str(&header.shape),
            header.descr,
            body.len()
        ));
    }
    if body.len() > need {
        return Err(format!(
            "{} unexpected bytes after the {need} bytes of the array {} of '{}'",
            body.len() - need,
            shape_str(&header.shape),
            header.descr,
        ));
    }
    Ok(NpyArray {
        shape: header.shape,
        data: dtype.decode(body)?,
    })
}

/// A shape as NumPy prints it: `(3,)`, `(2, 3)`.
fn shape_str(shape: &[usize]) -> String {
    match shape {
        [d] => format!("({d},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
            format!("({})", dims.join(", "))
        }
    }
}

struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// The Python literals a header holds.
#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    Bool(bool),
    Int(i128),
    /// A tuple or a list (structured dtypes are lists of tuples).
    Seq(Vec<Literal>),
    Dict(Vec<(Literal, Literal)>),
    None,
}

impl Header {
    fn parse(text: &str) -> Result<Header, String> {
        let bad = |why: &str| format!("malformed header ({why}): {}", text.trim_end());
        let mut p = LiteralParser {
            chars: text.chars().collect(),
            at: 0,
            depth: 0,
        };
        let dict = match p.literal().map_err(|why| bad(&why))? {
            Literal::Dict(d) => d,
            _ => return Err(bad("not a dict")),
        };
        p.skip_space();
        if p.at != p.chars.len() {
            return Err(bad("text after the dict"));
        }
        let get = |key: &str| {
            dict.iter()
                .find(|(k, _)| *k == Literal::Str(key.to_string()))
                .map(|(_, v)| v)
                .ok_or_else(|| bad(&format!("no '{key}'")))
        };
        let descr = match get("descr")? {
            Literal::Str(s) => s.clone(),
            _ => {
                return Err(
                    "structured (record) arrays are not supported; save a plain numeric array"
                        .to_string(),
                );
            }
        };
        let fortran_order = match get("fortran_order")? {
            Literal::Bool(b) => *b,
            _ => return Err(bad("'fortran_order' is not True or False")),
        };
        let shape = match get("shape")? {
            Literal::Seq(dims) => dims
                .iter()
                .map(|d| match d {
                    Literal::Int(n) => usize::try_from(*n).ok(),
                    _ => None,
                })
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(|| bad("'shape' is not a tuple of sizes"))?,
            _ => return Err(bad("'shape' is not a tuple")),
        };
        Ok(Header {
            descr,
            fortran_order,
            shape,
        })
    }
}

struct LiteralParser {
    chars: Vec<char>,
    at: usize,
    /// How many brackets the parser is inside: bounded, so a header of a million `(` is an
    /// error instead of a stack overflow.
    depth: usize,
}

/// The deepest nesting a header may have (a structured dtype needs 3 or 4 levels).
const MAX_HEADER_DEPTH: usize = 32;

impl LiteralParser {
    fn skip_space(&mut self) {
        while self.chars.get(self.at).is_some_and(|c| c.is_whitespace()) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_space();
        self.chars.get(self.at).copied()
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected '{c}'"))
        }
    }

    /// Items up to `close`, separated by commas, a trailing comma allowed.
    fn items<T>(
        &mut self,
        close: char,
        mut item: impl FnMut(&mut Self) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        let mut out = Vec::new();
        loop {
            if self.peek() == Some(close) {
                self.at += 1;
                return Ok(out);
            }
            out.push(item(self)?);
            match self.peek() {
                Some(',') => self.at += 1,
                Some(c) if c == close => {}
                _ => return Err(format!("expected ',' or '{close}'")),
            }
        }
    }

    fn literal(&mut self) -> Result<Literal, String> {
        if self.depth >= MAX_HEADER_DEPTH {
            return Err(format!("nested deeper than {MAX_HEADER_DEPTH} levels"));
        }
        self.depth += 1;
        let literal = self.one_literal();
        self.depth -= 1;
        literal
    }

    fn one_literal(&mut self) -> Result<Literal, String> {
        match self.peek().ok_or("unexpected end")? {
            '{' => {
                self.at += 1;
                let pairs = self.items('}', |p| {
                    let k = p.literal()?;
                    p.expect(':')?;
                    Ok((k, p.literal()?))
                })?;
                Ok(Literal::Dict(pairs))
            }
            '(' => {
                self.at += 1;
                Ok(Literal::Seq(self.items(')', Self::literal)?))
            }
            '[' => {
                self.at += 1;
                Ok(Literal::Seq(self.items(']', Self::literal)?))
            }
            q @ ('\'' | '"') => {
                self.at += 1;
                let mut s = String::new();
                loop {
                    match self.chars.get(self.at).copied() {
                        None => return Err("unterminated string".to_string()),
                        Some(c) if c == q => {
                            self.at += 1;
                            return Ok(Literal::Str(s));
                        }
                        Some('\\') => {
                            s.extend(self.chars.get(self.at + 1));
                            self.at += 2;
                        }
                        Some(c) => {
                            s.push(c);
                            self.at += 1;
                        }
                    }
                }
            }
            c if c.is_ascii_digit() || c == '-' => {
                let begin = self.at;
                self.at += 1;
                while self.chars.get(self.at).is_some_and(char::is_ascii_digit) {
                    self.at += 1;
                }
                let digits: String = self.chars[begin..self.at].iter().collect();
                // Python 2 wrote long integers with an `L` suffix.
                if matches!(self.chars.get(self.at), Some('L' | 'l')) {
                    self.at += 1;
                }
                digits
                    .parse()
                    .map(Literal::Int)
                    .map_err(|_| format!("bad number {digits}"))
            }
            c if c.is_ascii_alphabetic() => {
                let begin = self.at;
                while self
                    .chars
                    .get(self.at)
                    .is_some_and(char::is_ascii_alphanumeric)
                {
                    self.at += 1;
                }
                let word: String = self.chars[begin..self.at].iter().collect();
                match word.as_str() {
                    "True" => Ok(Literal::Bool(true)),
                    "False" => Ok(Literal::Bool(false)),
                    "None" => Ok(Literal::None),
                    _ => Err(format!("unknown name {word}")),
                }
            }
            c => Err(format!("unexpected '{c}'")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Bool,
    Unsigned,
    Signed,
    Float,
}

#[derive(Debug, Clone, Copy)]
struct Dtype {
    kind: Kind,
    size: usize,
}

const SUPPORTED_DTYPES: &str =
    "bool (|b1), integers (|u1, |i1, <u2, <i2, <u4, <i4, <u8, <i8) and floats (<f2, <f4, <f8)";

impl Dtype {
    fn parse(descr: &str) -> Result<Dtype, String> {
        let unsupported =
            || format!("dtype '{descr}' is not supported; supported: {SUPPORTED_DTYPES}");
        let mut chars = descr.chars();
        let order = chars.next().ok_or_else(unsupported)?;
        let kind = match chars.next() {
            Some('b') => Kind::Bool,
            Some('u') => Kind::Unsigned,
            Some('i') => Kind::Signed,
            Some('f') => Kind::Float,
            _ => return Err(unsupported()),
        };
        let size: usize = chars.as_str().parse().map_err(|_| unsupported())?;
        let ok = match kind {
            Kind::Bool => size == 1,
            Kind::Unsigned | Kind::Signed => matches!(size, 1 | 2 | 4 | 8),
            Kind::Float => matches!(size, 2 | 4 | 8),
        };
        if !ok {
            return Err(unsupported());
        }
        match order {
            '|' | '<' => {}
            // Native order: every platform this runs on is little-endian.
            '=' if cfg!(target_endian = "little") => {}
            '>' if size == 1 => {}
            '>' => {
                return Err(format!(
                    "big-endian data ('{descr}') is not supported; save a.astype('<{}{size}') instead",
                    &descr[1..2]
                ));
            }
            _ => return Err(unsupported()),
        }
        Ok(Dtype { kind, size })
    }

    fn decode(self, body: &[u8]) -> Result<NpyData, String> {
        fn words<const N: usize>(body: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
            body.chunks_exact(N)
                .map(|c| c.try_into().expect("chunks_exact yields N bytes"))
        }
        Ok(match (self.kind, self.size) {
            (Kind::Bool, _) => NpyData::Bool(body.iter().map(|&b| b != 0).collect()),
            (Kind::Unsigned, 1) => NpyData::U8(body.to_vec()),
            (Kind::Signed, 1) => NpyData::I64(body.iter().map(|&b| i64::from(b as i8)).collect()),
            (Kind::Signed, 2) => NpyData::I64(
                words(body)
                    .map(|w| i64::from(i16::from_le_bytes(w)))
                    .collect(),
            ),
            (Kind::Unsigned, 2) => NpyData::I64(
                words(body)
                    .map(|w| i64::from(u16::from_le_bytes(w)))
                    .collect(),
            ),
            (Kind::Signed, 4) => NpyData::I64(
                words(body)
                    .map(|w| i64::from(i32::from_le_bytes(w)))
                    .collect(),
            ),
            (Kind::Unsigned, 4) => NpyData::I64(
                words(body)
                    .map(|w| i64::from(u32::from_le_bytes(w)))
                    .collect(),
            ),
            (Kind::Signed, 8) => NpyData::I64(words(body).map(i64::from_le_bytes).collect()),
            (Kind::Unsigned, 8) => NpyData::I64(
                words(body)
                    .enumerate()
                    .map(|(i, w)| {
                        let v = u64::from_le_bytes(w);
                        i64::try_from(v)
                            .map_err(|_| format!("value {v} at flat index {i} does not fit in i64"))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            (Kind::Float, 2) => NpyData::F32(
                words(body)
                    .map(|w| f16_to_f32(u16::from_le_bytes(w)))
                    .collect(),
            ),
            (Kind::Float, 4) => NpyData::F32(words(body).map(f32::from_le_bytes).collect()),
            (Kind::Float, 8) => NpyData::F64(words(body).map(f64::from_le_bytes).collect()),
            _ => unreachable!("Dtype::parse admits only the sizes above"),
        })
    }
}

/// IEEE half precision to single: exact, subnormals and NaN included.
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: value = frac * 2^-24.
            let v = frac as f32 * 2f32.powi(-24);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, _) => sign | 0x7fc0_0000 | (frac << 13),
        _ => sign | ((exp + 112) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

/// A labelled set from two `.npy` files: inputs `x` of shape `[N, L]` (one channel),
/// `[N, C, L]`, `[N, C, H, W]` or `[N, C, D, H, W]`, and integer class labels `y` of shape `[N]`
/// (or `[N, 1]`). Inputs of any numeric dtype become `f32` as they are (bytes are not divided by
/// 255; the set's normalisation takes care of scale). Labels may be stored as floats if they
/// are whole numbers. `classes` names the classes in label order; without it they are named
/// `"0"`, `"1"`, ... up to the largest label.
pub fn load_npy_set(
    x: &Path,
    y: &Path,
    classes: Option<Vec<String>>,
) -> Result<TensorSet, DataError> {
    let xa = read_npy(x)?;
    let ya = read_npy(y)?;
    let x_err = |problem: String| npy_error(x, problem);
    let y_err = |problem: String| npy_error(y, problem);

    let shape = match xa.shape.as_slice() {
        [_, l] => vec![1, *l],
        [_, rest @ ..] if (2..=4).contains(&rest.len()) => rest.to_vec(),
        other => {
            return Err(x_err(format!(
                "inputs of shape {} (rank {}) are not supported; expected rank 2 to 5: [N, L], [N, C, L], [N, C, H, W] or [N, C, D, H, W]",
                shape_str(other),
                other.len()
            )));
        }
    };
    let n = xa.shape[0];
    if n > 0 && shape.contains(&0) {
        return Err(x_err(format!(
            "inputs of shape {} hold empty examples",
            shape_str(&xa.shape)
        )));
    }
    let n_labels = match ya.shape.as_slice() {
        [n] | [n, 1] => *n,
        other => {
            return Err(y_err(format!(
                "labels must have shape [N] (or [N, 1]), not {}",
                shape_str(other)
            )));
        }
    };
    if n_labels != n {
        return Err(DataError::Npy {
            path: x.to_path_buf(),
            problem: format!(
                "holds {n} examples but {} holds {n_labels} labels",
                y.display()
            ),
        });
    }

    let per_example: usize = shape.iter().product();
    let data = xa.data.into_f32(per_example).map_err(x_err)?;
    if let Some(bad) = first_non_finite(&data, per_example) {
        return Err(x_err(bad.to_string()));
    }

    let labels = labels_from(&ya.data).map_err(y_err)?;
    let classes = match classes {
        Some(names) => {
            if let Some((i, &l)) = labels.iter().enumerate().find(|&(_, &l)| l >= names.len()) {
                return Err(y_err(format!(
                    "example {i} has label {l}, but there are only {} classes",
                    names.len()
                )));
            }
            names
        }
        None => {
            let k = labels.iter().max().map_or(0, |&m| m + 1);
            if k > MAX_DEFAULT_CLASSES {
                let i = labels.iter().position(|&l| l + 1 == k).unwrap_or(0);
                return Err(y_err(format!(
                    "example {i} has label {}, which would make {k} classes; labels must be class indices 0..k-1",
                    k - 1
                )));
            }
            (0..k).map(|c| c.to_string()).collect()
        }
    };
    TensorSet::new(data, labels, shape, classes).map_err(|e| x_err(e.to_string()))
}

/// Class indices from a labels array, or the first label that is not one.
fn labels_from(data: &NpyData) -> Result<Vec<usize>, String> {
    let negative = |i: usize, l: &dyn std::fmt::Display| {
        format!("example {i} has label {l}; labels are class indices, 0 or more")
    };
    match data {
        NpyData::Bool(v) => Ok(v.iter().map(|&b| usize::from(b)).collect()),
        NpyData::U8(v) => Ok(v.iter().map(|&b| usize::from(b)).collect()),
        NpyData::I64(v) => v
            .iter()
            .enumerate()
            .map(|(i, &l)| usize::try_from(l).map_err(|_| negative(i, &l)))
            .collect(),
        NpyData::F32(v) => float_labels(v.iter().map(|&f| f64::from(f)), negative),
        NpyData::F64(v) => float_labels(v.iter().copied(), negative),
    }
}

fn float_labels(
    values: impl Iterator<Item = f64>,
    negative: impl Fn(usize, &dyn std::fmt::Display) -> String,
) -> Result<Vec<usize>, String> {
    values
        .enumerate()
        .map(|(i, l)| {
            if !l.is_finite() || l.fract() != 0.0 {
                Err(format!(
                    "example {i} has label {l}, which is not a whole number (labels are class indices)"
                ))
            } else if l < 0.0 {
                Err(negative(i, &l))
            } else if l > usize::MAX as f64 / 2.0 {
                Err(format!("example {i} has label {l}, far beyond any class count"))
            } else {
                Ok(l as usize)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deeply_nested_headers_are_errors_not_stack_overflows() {
        let header = format!("{{'descr': {}", "(".repeat(1_000_000));
        let mut bytes = MAGIC.to_vec();
        bytes.extend([2, 0]);
        bytes.extend((header.len() as u32).to_le_bytes());
        bytes.extend(header.as_bytes());
        let err = parse_npy(&bytes, Path::new("deep.npy"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("nested deeper than 32"), "{err}");
    }

    proptest::proptest! {
        /// Arbitrary bytes after the magic, and well-formed headers with extreme shapes, are
        /// read or refused, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            let mut bytes = MAGIC.to_vec();
            bytes.extend(&body);
            let _ = parse_npy(&bytes, Path::new("p.npy"));
            let _ = parse_npy(&body, Path::new("p.npy"));
        }

        #[test]
        fn extreme_shapes_never_panic(
            shape in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..5),
            descr in proptest::sample::select(vec!["<f4", "<f8", "|u1", "<i8", "<U3"]),
            body in 0usize..64,
        ) {
            let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
            let header = format!(
                "{{'descr': '{descr}', 'fortran_order': False, 'shape': ({},), }}",
                dims.join(", ")
            );
            let mut bytes = MAGIC.to_vec();
            bytes.extend([1, 0]);
            bytes.extend((header.len() as u16).to_le_bytes());
            bytes.extend(header.as_bytes());
            bytes.resize(bytes.len() + body, 0);
            let _ = parse_npy(&bytes, Path::new("p.npy"));
        }
    }
}
