//! Hostile shapes (issue 32): spec files, darknet cfgs and filter kernels whose sizes are huge,
//! multiply past 64 bits or contradict each other end in one clear error line, or in the right
//! answer, never in a panic, a hang or an allocation abort.

mod common;
#[path = "common/data.rs"]
mod data;

use std::path::Path;
use std::process::Output;

use common::{convnet_env, refused as fails_with, s, stderr, stdout};

/// Runs the binary with a fixed memory limit, so the refusals do not depend on the machine.
fn convnet(args: &[&str]) -> Output {
    convnet_env(args, &[("CONVNET_MAX_MEMORY", "4G")])
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    s(&path)
}

/// A spec of `input` and one `[[layers]]` table per item.
fn spec(input: &str, layers: &[&str]) -> String {
    let mut text = format!("input = {input}\n");
    for layer in layers {
        text += &format!("\n[[layers]]\n{layer}\n");
    }
    text
}

#[test]
fn a_spec_of_200k_layers_is_summarised_in_linear_time() {
    let dir = tempfile::tempdir().unwrap();
    let layers = vec!["type = \"relu\""; 200_000];
    let path = write(dir.path(), "deep.toml", &spec("[1, 8]", &layers));
    let out = convnet(&["summary", &path]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("relu_200000 (ReLU)"), "{}", &text[..500]);
    assert!(text.contains("Total params: 0"));
}

#[test]
fn a_billion_filters_are_counted_by_summary_and_refused_by_training() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "wide.toml",
        &spec(
            "[1, 28, 28]",
            &[
                "type = \"conv2d\"\nfilters = 1000000000\nkernel = 3",
                "type = \"global_avg_pool\"",
            ],
        ),
    );
    // Summary counts from shapes: 10^9 x (1 x 3 x 3 + 1) parameters, nothing allocated.
    let out = convnet(&["summary", &path, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["total_params"], 10_000_000_000u64);
    assert_eq!(v["total_macs"], 9_000_000_000u64 * 26 * 26);

    // Training would allocate the weights: refused first, with the size named.
    let data_dir = dir.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    data::write_fashion_like(&data_dir, 20, 10, 1);
    let run = dir.path().join("run");
    let out = convnet(&[
        "train",
        "--model",
        &path,
        "--data",
        &s(&data_dir),
        "--out",
        &s(&run),
    ]);
    fails_with(
        &out,
        &[
            "wide.toml",
            "10,000,000,000 parameters",
            "would need 37.3 GiB",
            "limit 4.0 GiB",
        ],
    );
}

#[test]
fn sizes_past_64_bits_are_errors_not_wrapped_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let huge_input = write(
        dir.path(),
        "huge-input.toml",
        &spec(
            "[3, 4294967296, 4294967296]",
            &["type = \"flatten\"", "type = \"dense\"\nunits = 10"],
        ),
    );
    fails_with(
        &convnet(&["summary", &huge_input]),
        &[
            "huge-input.toml",
            "input: 3 x 4294967296 x 4294967296 overflows 64-bit arithmetic",
        ],
    );

    // Each size fits; the dense layer's weights do not.
    let huge_dense = write(
        dir.path(),
        "huge-dense.toml",
        &spec(
            "[1, 4294967296, 4]",
            &["type = \"flatten\"", "type = \"dense\"\nunits = 4294967296"],
        ),
    );
    fails_with(
        &convnet(&["summary", &huge_dense]),
        &[
            "huge-dense.toml:6",
            "layer 'dense_1'",
            "weights: 17179869184 x 4294967296 overflows 64-bit arithmetic",
        ],
    );

    // The parameters fit; the multiply-adds of a huge map do not.
    let huge_macs = write(
        dir.path(),
        "huge-macs.toml",
        &spec(
            "[1, 2147483648, 2147483648]",
            &["type = \"conv2d\"\nfilters = 4096\nkernel = 1"],
        ),
    );
    fails_with(
        &convnet(&["summary", &huge_macs]),
        &[
            "layer 'conv2d_1'",
            "multiply-adds",
            "overflows 64-bit arithmetic",
        ],
    );

    // Kernel, dilation and padding too large to add up.
    let huge_kernel = write(
        dir.path(),
        "huge-kernel.toml",
        &spec(
            "[1, 8, 8]",
            &[
                "type = \"conv2d\"\nfilters = 1\nkernel = [4294967296, 1]\ndilation = [8589934592, 1]",
            ],
        ),
    );
    fails_with(
        &convnet(&["summary", &huge_kernel]),
        &[
            "layer 'conv2d_1'",
            "kernel 4294967296 with dilation 8589934592 overflows 64-bit arithmetic",
        ],
    );
}

#[test]
fn built_in_models_at_a_large_size_count_consistently() {
    // ResNet-50's parameters do not depend on the input size (global pooling); its
    // multiply-adds grow with the pixels, (8192 / 224)^2 ~ 1337 times, without wrapping.
    let summary = |size: &str| {
        let out = convnet(&["summary", "resnet50", "--size", size, "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str::<serde_json::Value>(&stdout(&out)).unwrap()
    };
    let (small, large) = (summary("224"), summary("8192"));
    assert_eq!(small["total_params"], large["total_params"]);
    let (m_small, m_large) = (
        small["total_macs"].as_u64().unwrap(),
        large["total_macs"].as_u64().unwrap(),
    );
    let ratio = m_large as f64 / m_small as f64;
    assert!((1300.0..1380.0).contains(&ratio), "{m_small} -> {m_large}");
}

const NET: &str = "[net]\nwidth=8\nheight=8\nchannels=3\n";

#[test]
fn darknet_groups_are_counted_as_darknet_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    // 9 filters of 3x3 over 3 channels in 3 groups: 9 x (1 x 3 x 3) weights + 9 biases = 90
    // (252 if groups were ignored).
    let cfg = write(
        dir.path(),
        "grouped.cfg",
        &format!(
            "{NET}[convolutional]\nfilters=9\nsize=3\nstride=1\npad=1\ngroups=3\nactivation=linear\n"
        ),
    );
    let out = convnet(&["summary", &cfg, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["total_params"], 90);
    assert_eq!(v["summary"]["total_params"], 90);
}

#[test]
fn bad_darknet_settings_name_the_section_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let conv = |extra: &str| format!("{NET}[convolutional]\nfilters=6\nsize=1\n{extra}");
    let yolo = |head: &str| {
        format!("{NET}[convolutional]\nfilters=18\nsize=1\nactivation=linear\n\n[yolo]\n{head}")
    };
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            conv("groups=0\n"),
            vec!["grouped.cfg:5: [convolutional] groups must be positive, not 0"],
        ),
        (
            conv("groups=4\n"),
            vec!["[convolutional] groups=4 must divide both the input channels (3) and filters=6"],
        ),
        (
            yolo("mask=0,1,7\nanchors=1,1,2,2,3,3\nclasses=1\nnum=3\n"),
            vec!["grouped.cfg:10: [yolo] mask=0,1,7: 7 is not one of the num=3 anchors"],
        ),
        (
            yolo("mask=0,x\nnum=3\nclasses=1\n"),
            vec!["[yolo] mask=0,x: 'x' is not a number"],
        ),
        (
            yolo("mask=0,1,2\nnum=3\nclasses=0\n"),
            vec!["[yolo] classes must be positive, not 0"],
        ),
        (
            yolo("mask=0,1,2\nnum=3\nclasses=-4\n"),
            vec!["[yolo] classes must be positive, not -4"],
        ),
        (
            yolo("mask=0,1,2\nnum=3\nclasses=2\n"),
            vec![
                "[yolo] classes: the layer before gives 18 channels but (classes=2 + 5) x 3 masks needs 21",
            ],
        ),
        (
            format!("{NET}[convolutional]\nfilters=18\nsize=1\n[region]\nclasses=2\nnum=3\n"),
            vec![
                "[region] classes: the layer before gives 18 channels but num=3 x (classes=2 + coords=4 + 1) needs 21",
            ],
        ),
        (
            format!(
                "{NET}[convolutional]\nfilters=4294967296\nsize=1\n[upsample]\nstride=4294967296\n"
            ),
            vec!["[upsample]", "overflows 64-bit arithmetic"],
        ),
    ];
    for (text, needles) in cases {
        let cfg = write(dir.path(), "grouped.cfg", &text);
        fails_with(&convnet(&["summary", &cfg]), &needles);
    }
    // The same heads with consistent settings are accepted.
    for text in [
        yolo("mask=0,1,2\nanchors=1,1,2,2,3,3\nnum=3\nclasses=1\n"),
        format!("{NET}[convolutional]\nfilters=18\nsize=1\n[region]\nclasses=1\nnum=3\n"),
    ] {
        let cfg = write(dir.path(), "good.cfg", &text);
        let out = convnet(&["summary", &cfg]);
        assert!(out.status.success(), "{text}\n{}", stderr(&out));
    }
}

/// A `side x side` greyscale PNG.
fn png(dir: &Path, name: &str, side: u32) -> String {
    let path = dir.join(name);
    image::GrayImage::from_fn(side, side, |x, y| image::Luma([((x + y) % 256) as u8]))
        .save(&path)
        .unwrap();
    s(&path)
}

/// A JSON kernel of `side x side` zeros.
fn kernel(dir: &Path, side: usize) -> String {
    let row = format!("[{}]", vec!["0"; side].join(","));
    write(
        dir,
        "k.json",
        &format!("[{}]", vec![row.as_str(); side].join(",")),
    )
}

#[test]
fn a_1200_square_kernel_is_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let k = kernel(dir.path(), 1200);
    let out_png = dir.path().join("out.png");
    // Larger than the image.
    let small = png(dir.path(), "small.png", 64);
    fails_with(
        &convnet(&["filter", &small, "--kernel", &k, "-o", &s(&out_png)]),
        &["the 1200x1200 kernel is larger than the 64x64 image"],
    );
    // Fits the image, but the im2col matrix would be 1300^2 x 1440000 values.
    let large = png(dir.path(), "large.png", 1300);
    fails_with(
        &convnet(&[
            "filter",
            &large,
            "--kernel",
            &k,
            "--padding",
            "same",
            "-o",
            &s(&out_png),
        ]),
        &[
            "filtering a 1300x1300 image with a 1200x1200 kernel",
            "would need 8.9 TiB",
            "limit 4.0 GiB",
        ],
    );
    assert!(!out_png.exists());
}
