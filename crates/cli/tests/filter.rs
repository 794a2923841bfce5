//! `convnet filter` as people use it: an image file in, a response image out, one-line errors.

mod common;

use common::{convnet, stderr};
use std::path::Path;

/// A `w x h` greyscale PNG: bright on the left half, dark on the right.
fn write_step_png(path: &Path, w: u32, h: u32) {
    let img =
        image::GrayImage::from_fn(w, h, |x, _| image::Luma([if x < w / 2 { 200 } else { 20 }]));
    img.save(path).unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn filter_writes_a_valid_response_two_pixels_smaller() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("step.png");
    write_step_png(&input, 12, 9);
    let out = dir.path().join("edges.png");
    let o = convnet(&["filter", s(&input), "--kernel", "sobel-x", "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("min 0, max 720"), "{text}");
    let img = image::open(&out).unwrap();
    // valid: (H - 2) x (W - 2)
    assert_eq!((img.width(), img.height()), (10, 7));
    // The edge is the brightest column.
    let grey = img.to_luma8();
    assert_eq!(grey.get_pixel(4, 3).0, [255]);
    assert_eq!(grey.get_pixel(0, 3).0, [0]);
}

#[test]
fn filter_same_padding_keeps_the_size_and_json_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("step.png");
    write_step_png(&input, 8, 6);
    let kernel = dir.path().join("diag.json");
    std::fs::write(&kernel, "[[0, 1], [-1, 0]]").unwrap();
    let out = dir.path().join("out.png");
    let o = convnet(&[
        "filter",
        s(&input),
        "--kernel",
        s(&kernel),
        "--padding",
        "same",
        "-o",
        s(&out),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["output"], serde_json::json!([6, 8]));
    assert_eq!(v["kernel"]["size"], serde_json::json!([2, 2]));
    let img = image::open(&out).unwrap();
    assert_eq!((img.width(), img.height()), (8, 6));
}

#[test]
fn a_missing_image_is_exit_1_with_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.png");
    let out = dir.path().join("out.png");
    let o = convnet(&["filter", s(&missing), "--kernel", "vertical", "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("missing.png"), "{err}");
    assert!(!out.exists());
}

#[test]
fn a_corrupt_image_or_a_bad_kernel_is_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let good = dir.path().join("good.png");
    write_step_png(&good, 6, 6);
    let ragged = dir.path().join("ragged.json");
    std::fs::write(&ragged, "[[1, 0, -1], [1]]").unwrap();
    let out = dir.path().join("out.png");
    for (args, says) in [
        (vec![s(&corrupt), "--kernel", "vertical"], "corrupt.png"),
        (vec![s(&good), "--kernel", s(&ragged)], "ragged.json"),
        (vec![s(&good), "--kernel", "laplace"], "unknown kernel"),
    ] {
        let mut full = vec!["filter"];
        full.extend(args);
        full.extend(["-o", s(&out)]);
        let o = convnet(&full);
        assert_eq!(o.status.code(), Some(1), "{full:?}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: ") && err.contains(says), "{err}");
    }
    assert!(!out.exists());
}
