//! The IDX format of MNIST and Fashion-MNIST: a 4-byte magic number (two zero bytes, a type
//! code, the number of dimensions), one big-endian `u32` per dimension, then the values in
//! row-major order.
//!
//! Files are read raw or gzipped; the first two bytes decide (`1f 8b`), not the name, because
//! copies of these files are often unpacked without renaming or renamed without unpacking.
//! Only unsigned bytes (type `0x08`) are supported: every MNIST-like set uses them.

use flate2::read::GzDecoder;
use std::fs::File;
use std::io::{self, BufReader, Cursor, Read};
use std::path::Path;

use convnet_layers::limits::{Bytes, checked_product};

use crate::DataError;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const UNSIGNED_BYTE: u8 = 0x08;

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    /// `dims.iter().product()` values, row-major.
    pub data: Vec<u8>,
}

/// Reads the IDX file at `path`, checking that it holds exactly what its header says.
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    read_idx_limit(path, None)
}

/// Reads the header and the first `limit` entries along the first dimension (all of them for
/// `None`). `dims[0]` stays as the header has it, so callers can still compare counts across
/// files. With a limit the rest of the file is not read, so damage past it goes unnoticed: the
/// point is that a test or a quick look need not decompress 26 MB.
pub fn read_idx_limit(path: &Path, limit: Option<usize>) -> Result<IdxArray, DataError> {
    let file = File::open(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path.display().to_string();
    read_from(BufReader::new(file), &name, limit).map_err(|e| match e {
        // A raw file that fails to read is an I/O problem of that path.
        ReadError::Io(source) => DataError::Read {
            path: path.to_path_buf(),
            source,
        },
        ReadError::Data(e) => e,
    })
}

/// Parses IDX bytes (raw or gzipped); `name` is what errors call them.
pub fn parse_idx(bytes: &[u8], name: &str) -> Result<IdxArray, DataError> {
    read_from(bytes, name, None).map_err(|e| match e {
        ReadError::Io(source) => idx_error(name, format!("cannot read: {source}")),
        ReadError::Data(e) => e,
    })
}

/// Writes `data` with shape `dims` as an unsigned-byte IDX file, gzipped when `path` ends in
/// `.gz`. The file appears complete or not at all.
pub fn write_idx(path: &Path, dims: &[usize], data: &[u8]) -> Result<(), DataError> {
    let name = path.display().to_string();
    let bytes = encode(dims, data).map_err(|problem| idx_error(&name, problem))?;
    let gz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let bytes = if gz {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&bytes)
            .and_then(|()| enc.finish())
            .map_err(|source| DataError::Write {
                path: path.to_path_buf(),
                source,
            })?
    } else {
        bytes
    };
    convnet_vision::image_io::write_atomically(path, &bytes)?;
    Ok(())
}

/// The IDX bytes for `data` shaped `dims`, or what makes them unrepresentable.
pub fn encode(dims: &[usize], data: &[u8]) -> Result<Vec<u8>, String> {
    let ndim = u8::try_from(dims.len())
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("IDX arrays have 1 to 255 dimensions, not {}", dims.len()))?;
    let count = element_count(dims).ok_or("the dimensions overflow")?;
    if count != data.len() {
        return Err(format!(
            "dimensions {dims:?} call for {count} values, got {}",
            data.len()
        ));
    }
    let mut bytes = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    bytes.extend_from_slice(&[0, 0, UNSIGNED_BYTE, ndim]);
    for &d in dims {
        let d = u32::try_from(d).map_err(|_| format!("dimension {d} does not fit in 32 bits"))?;
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    Ok(bytes)
}

enum ReadError {
    /// Reading the underlying raw bytes failed.
    Io(io::Error),
    Data(DataError),
}

impl From<DataError> for ReadError {
    fn from(e: DataError) -> Self {
        ReadError::Data(e)
    }
}

fn idx_error(name: &str, problem: String) -> DataError {
    DataError::Idx {
        file: name.to_string(),
        problem,
    }
}

/// The byte count `dims` declare, once it is known to fit in memory (checked as soon as the
/// header is read, before any data is).
fn checked_size(dims: &[usize]) -> Result<usize, String> {
    let total = checked_product("the IDX dimensions", dims).map_err(|e| e.to_string())?;
    Bytes::of(dims, 1)
        .check(&format!("an IDX array of dimensions {dims:?}"))
        .map_err(|e| e.to_string())?;
    Ok(total)
}

fn element_count(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Reads up to `want` bytes (fewer only at the end of the stream).
fn read_up_to(reader: &mut impl Read, want: usize) -> io::Result<Vec<u8>> {
    // Grow as the bytes arrive: a corrupt header may claim terabytes.
    let mut buf = Vec::with_capacity(want.min(1 << 26));
    reader.take(want as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

fn read_from(mut raw: impl Read, name: &str, limit: Option<usize>) -> Result<IdxArray, ReadError> {
    let magic = read_up_to(&mut raw, 2).map_err(ReadError::Io)?;
    let mut stream = Cursor::new(magic.clone()).chain(raw);
    if magic == GZIP_MAGIC {
        // Every read error from the decoder means the compressed stream is damaged.
        let gzip = |source: io::Error| {
            ReadError::Data(DataError::Gzip {
                file: name.to_string(),
                source,
            })
        };
        read_array(&mut GzDecoder::new(stream), name, limit, gzip)
    } else {
        read_array(&mut stream, name, limit, ReadError::Io)
    }
}

fn read_array(
    r: &mut impl Read,
    name: &str,
    limit: Option<usize>,
    io_err: impl Fn(io::Error) -> ReadError,
) -> Result<IdxArray, ReadError> {
    let bad = |problem: String| ReadError::Data(idx_error(name, problem));
    let head = read_up_to(r, 4).map_err(&io_err)?;
    if head.len() < 4 {
        return Err(bad(format!(
            "{} bytes is too short for an IDX header (4 bytes of magic number)",
            head.len()
        )));
    }
    if head[0] != 0 || head[1] != 0 {
        return Err(bad(format!(
            "bad magic number 0x{:02x}{:02x}{:02x}{:02x}: not an IDX file",
            head[0], head[1], head[2], head[3]
        )));
    }
    if head[2] != UNSIGNED_BYTE {
        return Err(bad(format!(
            "IDX data type 0x{:02x} ({}) is not supported; only 0x08 (unsigned byte) is",
            head[2],
            type_name(head[2])
        )));
    }
    let ndim = usize::from(head[3]);
    if ndim == 0 {
        return Err(bad("the IDX header declares 0 dimensions".to_string()));
    }
    let dim_bytes = read_up_to(r, 4 * ndim).map_err(&io_err)?;
    if dim_bytes.len() < 4 * ndim {
        return Err(bad(format!(
            "the header declares {ndim} dimensions but the file ends after {} of their sizes",
            dim_bytes.len() / 4
        )));
    }
    let dims: Vec<usize> = dim_bytes
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let total = checked_size(&dims).map_err(bad)?;
    let item = element_count(&dims[1..]).unwrap_or(usize::MAX);
    let wanted_items = limit.map_or(dims[0], |l| l.min(dims[0]));
    let want = if wanted_items == dims[0] {
        total
    } else {
        wanted_items * item
    };
    // Never more than the header declares: a gzip bomb stops at the declared size.
    let data = read_up_to(r, want).map_err(&io_err)?;
    if data.len() < want {
        return Err(bad(format!(
            "truncated: expected {want} bytes of {} data for dimensions {dims:?}, found {}",
            what(&dims),
            data.len()
        )));
    }
    // One byte past the declared data is enough to know there is more: the rest of a huge
    // tail is never decompressed.
    if limit.is_none() && !read_up_to(r, 1).map_err(&io_err)?.is_empty() {
        return Err(bad(format!(
            "trailing data after the {total} bytes that dimensions {dims:?} call for"
        )));
    }
    Ok(IdxArray { dims, data })
}

/// What the values probably are, to make a truncation message concrete.
fn what(dims: &[usize]) -> &'static str {
    match dims.len() {
        1 => "label",
        3 | 4 => "pixel",
        _ => "array",
    }
}

fn type_name(code: u8) -> &'static str {
    match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0b => "16-bit integer",
        0x0c => "32-bit integer",
        0x0d => "32-bit float",
        0x0e => "64-bit float",
        _ => "unknown type code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<usize>, Vec<u8>) {
        (vec![3, 2, 2], (0..12).collect())
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn problem(r: Result<IdxArray, DataError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn raw_and_gzipped_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (dims, data) = sample();
        for name in ["a-idx3-ubyte", "a-idx3-ubyte.gz"] {
            let path = dir.path().join(name);
            write_idx(&path, &dims, &data).unwrap();
            let back = read_idx(&path).unwrap();
            assert_eq!(
                back,
                IdxArray {
                    dims: dims.clone(),
                    data: data.clone()
                }
            );
        }
        let gz = std::fs::read(dir.path().join("a-idx3-ubyte.gz")).unwrap();
        assert_eq!(gz[..2], GZIP_MAGIC);
    }

    #[test]
    fn gzip_is_detected_by_content_not_name() {
        let (dims, data) = sample();
        let bytes = gzip(&encode(&dims, &data).unwrap());
        assert_eq!(parse_idx(&bytes, "no-extension").unwrap().data, data);
    }

    #[test]
    fn limit_reads_a_prefix_and_keeps_the_header_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gz");
        let (dims, data) = sample();
        write_idx(&path, &dims, &data).unwrap();
        let head = read_idx_limit(&path, Some(2)).unwrap();
        assert_eq!(head.dims, dims);
        assert_eq!(head.data, data[..8]);
        assert_eq!(read_idx_limit(&path, Some(10)).unwrap().data, data);
    }

    #[test]
    fn truncated_data_says_how_much_is_missing() {
        let (dims, data) = sample();
        let bytes = encode(&dims, &data).unwrap();
        let msg = problem(parse_idx(&bytes[..bytes.len() - 5], "t.idx"));
        assert!(msg.starts_with("t.idx: "), "{msg}");
        assert!(msg.contains("expected 12 bytes of pixel data"), "{msg}");
        assert!(msg.contains("found 7"), "{msg}");
        let msg = problem(parse_idx(&bytes[..10], "t.idx"));
        assert!(msg.contains("3 dimensions"), "{msg}");
        assert!(problem(parse_idx(&[], "t.idx")).contains("too short"));
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let (dims, data) = sample();
        let gz = gzip(&encode(&dims, &data).unwrap());
        let msg = problem(parse_idx(&gz[..gz.len() - 12], "t.gz"));
        assert!(msg.starts_with("t.gz: "), "{msg}");
    }

    #[test]
    fn bad_magic_and_other_types_are_named() {
        let msg = problem(parse_idx(b"PK\x03\x04rest", "z.zip"));
        assert!(msg.contains("bad magic number 0x504b0304"), "{msg}");
        let msg = problem(parse_idx(&[0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0], "f.idx"));
        assert!(msg.contains("0x0d (32-bit float)"), "{msg}");
    }

    #[test]
    fn trailing_garbage_is_an_error() {
        let (dims, data) = sample();
        let mut bytes = encode(&dims, &data).unwrap();
        bytes.extend_from_slice(b"junk");
        let msg = problem(parse_idx(&bytes, "g.idx"));
        assert!(msg.contains("trailing data after the 12 bytes"), "{msg}");
    }

    #[test]
    fn corrupt_gzip_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.gz");
        let mut bytes = gzip(&encode(&[4], &[1, 2, 3, 4]).unwrap());
        for b in &mut bytes[10..] {
            *b ^= 0x5a;
        }
        std::fs::write(&path, &bytes).unwrap();
        let msg = problem(read_idx(&path));
        assert!(msg.contains("broken.gz"), "{msg}");
        assert!(msg.contains("corrupt gzip"), "{msg}");
    }

    #[test]
    fn missing_file_names_the_file() {
        let msg = problem(read_idx(Path::new("/nonexistent/labels-idx1-ubyte")));
        assert!(msg.contains("/nonexistent/labels-idx1-ubyte"), "{msg}");
    }

    #[test]
    fn write_rejects_a_length_that_does_not_fit_the_dims() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_idx(&dir.path().join("w"), &[2, 2], &[0; 3]).unwrap_err();
        assert!(
            err.to_string().contains("call for 4 values, got 3"),
            "{err}"
        );
    }

    #[test]
    fn a_header_past_the_memory_limit_is_refused_before_any_data() {
        // (2^32-1)^2 bytes: fits in 64 bits, not in any memory.
        let mut bytes = vec![0, 0, UNSIGNED_BYTE, 2];
        for d in [u32::MAX, u32::MAX] {
            bytes.extend(d.to_be_bytes());
        }
        let msg = problem(parse_idx(&gzip(&bytes), "bomb.gz"));
        assert!(msg.contains("would need"), "{msg}");
        assert!(msg.contains("bomb.gz"), "{msg}");
    }

    #[test]
    fn a_huge_tail_is_not_decompressed() {
        // 64 MiB of zeros past a 12-byte array compress to ~64 KiB: refused after one byte.
        let (dims, data) = sample();
        let mut bytes = encode(&dims, &data).unwrap();
        bytes.resize(bytes.len() + (64 << 20), 0);
        let msg = problem(parse_idx(&gzip(&bytes), "tail.gz"));
        assert!(msg.contains("trailing data"), "{msg}");
    }

    #[test]
    fn an_empty_array_reads_as_zero_items() {
        let bytes = encode(&[0, 28, 28], &[]).unwrap();
        assert_eq!(parse_idx(&bytes, "e.idx").unwrap().dims, vec![0, 28, 28]);
    }

    proptest::proptest! {
        /// Arbitrary bytes, raw or gzipped, are read or refused, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            zipped in proptest::prelude::any::<bool>(),
        ) {
            let input = if zipped { gzip(&bytes) } else { bytes };
            let _ = parse_idx(&input, "p.idx");
        }

        /// Well-formed headers with extreme dimensions and little data never panic and never
        /// read past what the data holds.
        #[test]
        fn extreme_headers_never_panic(
            dims in proptest::collection::vec(proptest::prelude::any::<u32>(), 1..5),
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let mut bytes = vec![0, 0, UNSIGNED_BYTE, dims.len() as u8];
            for d in &dims {
                bytes.extend(d.to_be_bytes());
            }
            bytes.extend(&data);
            if let Ok(a) = parse_idx(&bytes, "p.idx") {
                proptest::prop_assert_eq!(a.data, data);
            }
        }
    }
}
