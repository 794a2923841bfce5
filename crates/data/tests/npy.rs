//! `.npy` files as NumPy writes them (bytes built here by the format's rules, so no Python is
//! needed), every way such a file can be unusable, and data sets loaded from a pair of them.

use std::path::{Path, PathBuf};

use convnet_data::npy::{NpyArray, NpyData, parse_npy, read_npy, write_npy_f32};
use convnet_data::{DataError, load_npy_set};

/// A `.npy` file: magic, version, header length, the header padded with spaces so the values
/// start at a multiple of 64 bytes and ended by a newline, then `body`.
fn npy(version: u8, dict: &str, body: &[u8]) -> Vec<u8> {
    let len_bytes = if version == 1 { 2 } else { 4 };
    let prefix = 8 + len_bytes;
    let unpadded = prefix + dict.len() + 1;
    let header = format!(
        "{dict}{}\n",
        " ".repeat(unpadded.next_multiple_of(64) - unpadded)
    );
    let mut bytes = b"\x93NUMPY".to_vec();
    bytes.extend([version, 0]);
    if version == 1 {
        bytes.extend((header.len() as u16).to_le_bytes());
    } else {
        bytes.extend((header.len() as u32).to_le_bytes());
    }
    bytes.extend(header.as_bytes());
    bytes.extend(body);
    bytes
}

fn dict(descr: &str, shape: &str) -> String {
    format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}")
}

fn parse(bytes: &[u8]) -> Result<NpyArray, DataError> {
    parse_npy(bytes, Path::new("a.npy"))
}

fn parse_err(bytes: &[u8]) -> String {
    parse(bytes).unwrap_err().to_string()
}

fn le<T: Copy, const N: usize>(values: &[T], to: fn(T) -> [u8; N]) -> Vec<u8> {
    values.iter().flat_map(|&v| to(v)).collect()
}

#[test]
fn reads_what_numpy_writes() {
    // np.save(f, np.arange(6, dtype="<f4").reshape(2, 3)), byte for byte.
    let mut want = b"\x93NUMPY\x01\x00v\x00".to_vec();
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    want.extend(header.as_bytes());
    want.extend(" ".repeat(118 - header.len() - 1).as_bytes());
    want.push(b'\n');
    let values = [0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0];
    want.extend(le(&values, f32::to_le_bytes));
    assert_eq!(want.len(), 128 + 24);
    let a = parse(&want).unwrap();
    assert_eq!(a.shape, vec![2, 3]);
    assert_eq!(a.data, NpyData::F32(values.to_vec()));
    // And the writer writes exactly those bytes.
    assert_eq!(a.to_bytes().unwrap(), want);
}

#[test]
fn reads_every_supported_dtype() {
    let cases: Vec<(&str, Vec<u8>, NpyData)> = vec![
        ("|u1", vec![0, 7, 255], NpyData::U8(vec![0, 7, 255])),
        ("|i1", vec![0, 7, 255], NpyData::I64(vec![0, 7, -1])),
        ("|b1", vec![0, 1, 1], NpyData::Bool(vec![false, true, true])),
        (
            "<i2",
            le(&[-2i16, 0, 300], i16::to_le_bytes),
            NpyData::I64(vec![-2, 0, 300]),
        ),
        (
            "<u2",
            le(&[65535u16, 0, 1], u16::to_le_bytes),
            NpyData::I64(vec![65535, 0, 1]),
        ),
        (
            "<i4",
            le(&[-5i32, 0, 1 << 30], i32::to_le_bytes),
            NpyData::I64(vec![-5, 0, 1 << 30]),
        ),
        (
            "<u4",
            le(&[u32::MAX, 0, 1], u32::to_le_bytes),
            NpyData::I64(vec![i64::from(u32::MAX), 0, 1]),
        ),
        (
            "<i8",
            le(&[i64::MIN, 0, 9], i64::to_le_bytes),
            NpyData::I64(vec![i64::MIN, 0, 9]),
        ),
        (
            "<u8",
            le(&[3u64, 0, 9], u64::to_le_bytes),
            NpyData::I64(vec![3, 0, 9]),
        ),
        (
            "<f8",
            le(&[0.5f64, -1e300, 3.0], f64::to_le_bytes),
            NpyData::F64(vec![0.5, -1e300, 3.0]),
        ),
        // Half floats: 1.0, -2.0, 2^-24 (the smallest subnormal).
        (
            "<f2",
            le(&[0x3c00u16, 0xc000, 0x0001], u16::to_le_bytes),
            NpyData::F32(vec![1.0, -2.0, 2f32.powi(-24)]),
        ),
    ];
    for (descr, body, want) in cases {
        let a = parse(&npy(1, &dict(descr, "(3,)"), &body)).unwrap();
        assert_eq!(a.shape, vec![3], "{descr}");
        assert_eq!(a.data, want, "{descr}");
    }
}

#[test]
fn reads_format_versions_2_and_3_and_odd_headers() {
    let body = le(&[1i64, 2], i64::to_le_bytes);
    for version in [2, 3] {
        let a = parse(&npy(version, &dict("<i8", "(2,)"), &body)).unwrap();
        assert_eq!(a.data, NpyData::I64(vec![1, 2]));
    }
    // Keys in another order, double quotes, no trailing comma, Python 2's long suffix, and a
    // Fortran-order flag on an array where both orders are the same.
    let odd = "{\"shape\": (1L, 2L), 'fortran_order': True, 'descr': '<i8'}";
    let a = parse(&npy(1, odd, &body)).unwrap();
    assert_eq!(a.shape, vec![1, 2]);
    // A scalar has shape () and one value.
    let a = parse(&npy(1, &dict("<i8", "()"), &body[..8])).unwrap();
    assert_eq!((a.shape.len(), a.data.len()), (0, 1));
    // An empty array.
    let a = parse(&npy(1, &dict("<f4", "(0, 5)"), &[])).unwrap();
    assert!(a.data.is_empty());
}

#[test]
fn unusable_files_say_why() {
    let body = le(&[1.0f32; 6], f32::to_le_bytes);
    let good = npy(1, &dict("<f4", "(2, 3)"), &body);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"PK\x03\x04 not npy".to_vec(), "not a .npy file"),
        (vec![], "the file is empty"),
        (b"\x93NUM".to_vec(), "truncated"),
        (b"\x93NUMPY\x01".to_vec(), "truncated"),
        (b"\x93NUMPY\x01\x00\x76".to_vec(), "truncated"),
        (
            good[..60].to_vec(),
            "truncated: the header should be 118 bytes",
        ),
        (
            good[..good.len() - 3].to_vec(),
            "truncated: shape (2, 3) of '<f4' needs 24 bytes of values, the file holds 21",
        ),
        ([good.clone(), vec![0; 4]].concat(), "4 unexpected bytes"),
        (
            {
                let mut b = good.clone();
                b[6] = 4;
                b
            },
            "version 4.0 is not supported (1.0, 2.0 and 3.0 are)",
        ),
        (
            npy(
                1,
                "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
                &body,
            ),
            "Fortran (column-major) order",
        ),
        (
            npy(1, &dict(">f4", "(2, 3)"), &body),
            "big-endian data ('>f4') is not supported; save a.astype('<f4')",
        ),
        (
            npy(1, &dict("<c8", "(2, 3)"), &body),
            "dtype '<c8' is not supported",
        ),
        (
            npy(1, &dict("<U1", "(6,)"), &body),
            "dtype '<U1' is not supported",
        ),
        (
            npy(1, &dict("|O", "(6,)"), &body),
            "dtype '|O' is not supported",
        ),
        (npy(1, &dict("<f3", "(6,)"), &body), "supported: bool (|b1)"),
        (
            npy(
                1,
                "{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, 'shape': (3,), }",
                &body,
            ),
            "structured (record) arrays are not supported",
        ),
        (
            npy(1, "{'descr': '<f4', 'shape': (6,)}", &body),
            "no 'fortran_order'",
        ),
        (
            npy(
                1,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (-6,)}",
                &body,
            ),
            "'shape' is not a tuple of sizes",
        ),
        (npy(1, "{'descr': '<f4'", &body), "malformed header"),
        (npy(1, "[1, 2]", &body), "not a dict"),
        (
            npy(1, &dict("<u8", "(1,)"), &u64::MAX.to_le_bytes()),
            "does not fit in i64",
        ),
    ];
    for (bytes, says) in cases {
        let msg = parse_err(&bytes);
        assert!(msg.starts_with("a.npy: "), "{msg}");
        assert!(msg.contains(says), "wanted {says:?} in {msg:?}");
    }
}

#[test]
fn writes_atomically_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    let values: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
    write_npy_f32(&path, &[2, 3, 4], &values).unwrap();
    let a = read_npy(&path).unwrap();
    assert_eq!(a.shape, vec![2, 3, 4]);
    assert_eq!(a.data, NpyData::F32(values.clone()));
    // Overwriting leaves no temporary file behind; a bad shape writes nothing.
    write_npy_f32(&path, &[24], &values).unwrap();
    assert_eq!(read_npy(&path).unwrap().shape, vec![24]);
    let msg = write_npy_f32(&dir.path().join("y.npy"), &[5], &values)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("calls for 5 values, got 24"), "{msg}");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["x.npy"]);
    // Every data type the reader widens to round-trips through the writer.
    for data in [
        NpyData::Bool(vec![true, false]),
        NpyData::U8(vec![1, 200]),
        NpyData::I64(vec![-1, i64::MAX]),
        NpyData::F64(vec![0.25, -1e-300]),
    ] {
        let a = NpyArray {
            shape: vec![2, 1],
            data,
        };
        a.write(&path).unwrap();
        assert_eq!(read_npy(&path).unwrap(), a);
    }
    let msg = read_npy(&dir.path().join("missing.npy"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("missing.npy"), "{msg}");
}

#[test]
fn a_long_header_is_written_in_version_2() {
    let shape = vec![1usize; 30_000];
    let a = NpyArray {
        shape: shape.clone(),
        data: NpyData::F32(vec![7.0]),
    };
    let bytes = a.to_bytes().unwrap();
    assert_eq!(bytes[6], 2);
    let start = 12 + u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    assert_eq!(start % 64, 0);
    assert_eq!(parse(&bytes).unwrap(), a);
}

/// A folder with `x.npy` and `y.npy`.
struct Pair {
    dir: tempfile::TempDir,
}

impl Pair {
    fn new(x: NpyArray, y: NpyArray) -> Pair {
        let dir = tempfile::tempdir().unwrap();
        x.write(&dir.path().join("x.npy")).unwrap();
        y.write(&dir.path().join("y.npy")).unwrap();
        Pair { dir }
    }

    fn x(&self) -> PathBuf {
        self.dir.path().join("x.npy")
    }

    fn y(&self) -> PathBuf {
        self.dir.path().join("y.npy")
    }

    fn load(&self, classes: Option<Vec<String>>) -> Result<convnet_data::TensorSet, DataError> {
        load_npy_set(&self.x(), &self.y(), classes)
    }

    fn err(&self, classes: Option<Vec<String>>) -> String {
        self.load(classes).unwrap_err().to_string()
    }
}

fn f32s(shape: &[usize]) -> NpyArray {
    let n: usize = shape.iter().product();
    NpyArray {
        shape: shape.to_vec(),
        data: NpyData::F32((0..n).map(|i| i as f32).collect()),
    }
}

fn labels(values: &[i64]) -> NpyArray {
    NpyArray {
        shape: vec![values.len()],
        data: NpyData::I64(values.to_vec()),
    }
}

#[test]
fn sets_load_from_signals_images_and_volumes() {
    // [N, L] is one channel.
    let s = Pair::new(f32s(&[3, 5]), labels(&[0, 2, 1]))
        .load(None)
        .unwrap();
    assert_eq!(s.shape, vec![1, 5]);
    assert_eq!(s.example(2), &[10.0, 11.0, 12.0, 13.0, 14.0]);
    assert_eq!(s.classes, vec!["0", "1", "2"]);
    for shape in [vec![4, 2, 6], vec![4, 3, 2, 2], vec![4, 1, 2, 3, 2]] {
        let s = Pair::new(f32s(&shape), labels(&[1, 1, 0, 1]))
            .load(Some(vec!["a".into(), "b".into(), "c".into()]))
            .unwrap();
        assert_eq!(s.shape, shape[1..]);
        assert_eq!(s.labels, vec![1, 1, 0, 1]);
        assert_eq!(s.classes, vec!["a", "b", "c"]);
    }
    // Integer inputs become floats as they are; labels may be bytes, [N, 1] or whole floats.
    let x = NpyArray {
        shape: vec![2, 1, 2],
        data: NpyData::U8(vec![0, 255, 3, 4]),
    };
    let y = NpyArray {
        shape: vec![2, 1],
        data: NpyData::F64(vec![1.0, 0.0]),
    };
    let s = Pair::new(x, y).load(None).unwrap();
    assert_eq!(s.data, vec![0.0, 255.0, 3.0, 4.0]);
    assert_eq!(s.labels, vec![1, 0]);
    let y = NpyArray {
        shape: vec![2],
        data: NpyData::U8(vec![3, 0]),
    };
    assert_eq!(
        Pair::new(f32s(&[2, 3]), y)
            .load(None)
            .unwrap()
            .num_classes(),
        4
    );
}

#[test]
fn bad_sets_are_clear_errors() {
    let classes = || Some(vec!["a".to_string(), "b".to_string()]);
    let p = Pair::new(f32s(&[6]), labels(&[0; 6]));
    let msg = p.err(None);
    assert!(
        msg.contains("x.npy")
            && msg.contains("shape (6,) (rank 1) are not supported")
            && msg.contains("[N, L], [N, C, L], [N, C, H, W] or [N, C, D, H, W]"),
        "{msg}"
    );
    let msg = Pair::new(f32s(&[2, 1, 1, 1, 1, 3]), labels(&[0, 0])).err(None);
    assert!(msg.contains("(rank 6)"), "{msg}");
    let msg = Pair::new(f32s(&[2, 1, 0]), labels(&[0, 0])).err(None);
    assert!(msg.contains("empty examples"), "{msg}");

    let p = Pair::new(f32s(&[5, 2, 3]), labels(&[0, 1, 0, 1]));
    let msg = p.err(None);
    assert!(
        msg.contains("x.npy: holds 5 examples but") && msg.contains("y.npy holds 4 labels"),
        "{msg}"
    );
    let y2 = NpyArray {
        shape: vec![2, 2],
        data: NpyData::I64(vec![0; 4]),
    };
    let msg = Pair::new(f32s(&[2, 3]), y2).err(None);
    assert!(msg.contains("y.npy: labels must have shape [N]"), "{msg}");

    let msg = Pair::new(f32s(&[3, 2]), labels(&[0, -1, 1])).err(None);
    assert!(
        msg.contains("y.npy: example 1 has label -1; labels are class indices, 0 or more"),
        "{msg}"
    );
    let msg = Pair::new(f32s(&[3, 2]), labels(&[0, 1, 2])).err(classes());
    assert!(
        msg.contains("y.npy: example 2 has label 2, but there are only 2 classes"),
        "{msg}"
    );
    let msg = Pair::new(f32s(&[3, 2]), labels(&[0, 1 << 40, 2])).err(None);
    assert!(msg.contains("example 1 has label 1099511627776"), "{msg}");
    for (value, says) in [
        (0.5, "example 1 has label 0.5, which is not a whole number"),
        (
            f32::NAN,
            "example 1 has label NaN, which is not a whole number",
        ),
        (-2.0, "example 1 has label -2; labels are class indices"),
    ] {
        let y = NpyArray {
            shape: vec![3],
            data: NpyData::F32(vec![0.0, value, 1.0]),
        };
        let msg = Pair::new(f32s(&[3, 2]), y).err(None);
        assert!(msg.contains(says), "{msg}");
    }

    for (bad, says) in [
        (f32::NAN, "example 2 holds NaN at position 3"),
        (f32::INFINITY, "example 2 holds inf at position 3"),
    ] {
        let mut x = f32s(&[3, 1, 4]);
        if let NpyData::F32(v) = &mut x.data {
            v[11] = bad;
        }
        let msg = Pair::new(x, labels(&[0, 0, 0])).err(None);
        assert!(msg.contains("x.npy: ") && msg.contains(says), "{msg}");
    }
    let x = NpyArray {
        shape: vec![1, 2],
        data: NpyData::F64(vec![1.0, 1e300]),
    };
    let msg = Pair::new(x, labels(&[0])).err(None);
    assert!(
        msg.contains("example 0 holds 1e300 at position 1, beyond the range of f32"),
        "{msg}"
    );
    // A file that is not there, or not .npy, names itself.
    let p = Pair::new(f32s(&[1, 2]), labels(&[0]));
    std::fs::write(p.y(), b"0\n").unwrap();
    let msg = p.err(None);
    assert!(msg.contains("y.npy: not a .npy file"), "{msg}");
}
