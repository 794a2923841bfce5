//! Issue 32, files and flags: crafted weights manifests, truncated pictures, gzip bombs, size
//! and batch flags out of range, broken galleries. Each run must fail with exit code 1 (not a
//! signal, not a panic's 101), one `error:` line naming the problem, and no output written.

mod common;
#[path = "common/data.rs"]
mod data;

use std::path::{Path, PathBuf};

use common::{convnet, convnet_env, face_api, refused as assert_refused, s, stderr};

fn sample_jpeg() -> PathBuf {
    face_api("demo/sample1.jpg")
}

/// The first `keep` of `from`'s bytes, as `name` in `dir`.
fn truncated(dir: &Path, from: &Path, keep: f64, name: &str) -> PathBuf {
    let bytes = std::fs::read(from).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, &bytes[..(bytes.len() as f64 * keep) as usize]).unwrap();
    path
}

#[test]
fn a_tfjs_shape_that_overflows_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // 2^32 · 2^32 wraps to 0 in 64 bits: an empty shard would have "matched".
    let manifest = dir.path().join("m-weights_manifest.json");
    std::fs::write(
        &manifest,
        r#"[{"paths": ["m.bin"], "weights": [{"name": "conv0/filters",
            "shape": [4294967296, 4294967296, 3, 16], "dtype": "float32"}]}]"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("m.bin"), b"").unwrap();
    let out_png = dir.path().join("out.png");
    let out = convnet(&[
        "detect",
        &s(&sample_jpeg()),
        "--weights",
        &s(&manifest),
        "-o",
        &s(&out_png),
    ]);
    assert_refused(
        &out,
        &["m-weights_manifest.json", "conv0/filters", "overflows"],
    );
    assert!(!out_png.exists());
}

#[test]
fn size_flags_state_their_range() {
    let dir = tempfile::tempdir().unwrap();
    let img = sample_jpeg();
    let out = convnet(&["detect", &s(&img), "--size", "32000"]);
    assert_refused(
        &out,
        &["'32000'", "--size", "an image side must be 1 to 8192"],
    );
    let styled = dir.path().join("s.png");
    let out = convnet(&[
        "style",
        "--content",
        &s(&img),
        "--style",
        &s(&img),
        "-o",
        &s(&styled),
        "--size",
        "100000",
        "--untrained",
    ]);
    assert_refused(&out, &["'100000'", "--size", "1 to 8192"]);
    let out = convnet(&[
        "train",
        "--model",
        "lenet5",
        "--data",
        &s(dir.path()),
        "--size",
        "100000",
    ]);
    assert_refused(&out, &["'100000'", "--size"]);
    // Inside the range but past memory: refused by the estimate, naming the size.
    let out = convnet_env(
        &[
            "style",
            "--content",
            &s(&img),
            "--style",
            &s(&img),
            "-o",
            &s(&styled),
            "--size",
            "8192",
            "--untrained",
        ],
        &[("CONVNET_MAX_MEMORY", "2G")],
    );
    assert_refused(&out, &["style transfer at", "--size 8192", "would need"]);
    let out = convnet_env(
        &["detect", &s(&img), "--size", "8192"],
        &[("CONVNET_MAX_MEMORY", "1G")],
    );
    assert_refused(&out, &["detection at 8192x8192", "would need"]);
    assert!(!styled.exists());
}

#[test]
fn negative_and_huge_batches_are_values_with_a_range() {
    let dir = tempfile::tempdir().unwrap();
    for batch in ["-5", "0", "1000000"] {
        let out = convnet(&[
            "train",
            "--model",
            "lenet5",
            "--data",
            &s(dir.path()),
            "--batch",
            batch,
        ]);
        assert_refused(
            &out,
            &[
                &format!("'{batch}'"),
                "--batch",
                "a batch size must be 1 to 65536",
            ],
        );
    }
    assert!(!dir.path().join("runs").exists());
}

#[test]
fn truncated_pictures_are_refused_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let jpeg = truncated(dir.path(), &sample_jpeg(), 0.6, "cut.jpg");
    let drawn = dir.path().join("drawn.png");
    let (jpeg, drawn_text) = (s(&jpeg), s(&drawn));
    let (jpeg, drawn_text) = (jpeg.as_str(), drawn_text.as_str());
    for args in [
        ["detect", jpeg, "-o", drawn_text].as_slice(),
        &["filter", jpeg, "-k", "vertical", "-o", drawn_text],
        &["face", "encode", jpeg, "-o", drawn_text],
    ] {
        let out = convnet(args);
        assert_refused(&out, &["cut.jpg", "truncated"]);
        assert!(!drawn.exists());
    }
    // A truncated PNG too.
    let png = dir.path().join("whole.png");
    data::write_png(&png, 3, 1);
    let cut = truncated(dir.path(), &png, 0.5, "cut.png");
    let out = convnet(&["filter", &s(&cut), "-k", "vertical", "-o", &s(&drawn)]);
    assert_refused(&out, &["cut.png"]);
    assert!(!drawn.exists());
}

#[test]
fn a_gzip_bomb_stops_at_its_header() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    data::write_fashion_like(dir.path(), 20, 10, 1);
    // 4,000,000 images of 28x28 declared (3 GiB), then 32 MiB of zeros: refused once the
    // header is read, under a 256 MiB limit.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&[0, 0, 8, 3]).unwrap();
    for d in [4_000_000u32, 28, 28] {
        enc.write_all(&d.to_be_bytes()).unwrap();
    }
    enc.write_all(&vec![0u8; 32 << 20]).unwrap();
    let images = dir.path().join("train-images-idx3-ubyte");
    std::fs::write(&images, enc.finish().unwrap()).unwrap();
    let run = dir.path().join("run");
    let out = convnet_env(
        &[
            "train",
            "--model",
            "lenet5",
            "--data",
            &s(dir.path()),
            "--out",
            &s(&run),
        ],
        &[("CONVNET_MAX_MEMORY", "256M")],
    );
    assert_refused(&out, &["train-images-idx3-ubyte", "4000000", "would need"]);
    assert!(!run.exists());
}

#[test]
fn galleries_with_bad_rows_or_no_content_are_refused_alike() {
    let dir = tempfile::tempdir().unwrap();
    let gallery = dir.path().join("g.sqlite");
    std::fs::write(&gallery, b"").unwrap();
    let list = convnet(&["face", "list", "--gallery", &s(&gallery)]);
    assert_refused(&list, &["g.sqlite", "empty"]);
    let enroll = convnet(&[
        "face",
        "enroll",
        "ann",
        &s(&sample_jpeg()),
        "--largest",
        "--gallery",
        &s(&gallery),
    ]);
    assert_refused(&enroll, &["g.sqlite", "empty"]);
    assert_eq!(std::fs::metadata(&gallery).unwrap().len(), 0);
}

#[test]
fn os_errors_print_once() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("x.png");
    data::write_png(&png, 1, 1);
    let out = convnet(&[
        "detect",
        &s(&png),
        "--weights",
        "/nonexistent/w-weights_manifest.json",
    ]);
    assert_refused(&out, &["/nonexistent/w-weights_manifest.json"]);
    assert_eq!(
        stderr(&out).matches("No such file or directory").count(),
        1,
        "{}",
        stderr(&out)
    );
    let out = convnet(&[
        "predict",
        "--model",
        "resnet18",
        "--weights",
        "/nonexistent.pth",
        &s(&png),
    ]);
    assert_eq!(
        stderr(&out).matches("os error 2").count(),
        1,
        "{}",
        stderr(&out)
    );
}
