//! The `convnet` binary as people use it: exit codes, one-line errors, `--json`, `--help`.

mod common;

use common::{convnet, stderr, stdout};
use std::path::PathBuf;

fn spec(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../specs")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn summary_lenet5_prints_the_table_with_61706_parameters() {
    let out = convnet(&["summary", "lenet5"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Total params: 61,706"), "{text}");
    assert!(text.contains("conv1 (Conv2D)"), "{text}");
    assert!(text.contains("(None, 16, 5, 5)"), "{text}");
}

#[test]
fn summary_json_has_layers_and_total_params() {
    let out = convnet(&["summary", "lenet5", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["total_params"], 61706);
    assert_eq!(v["layers"].as_array().unwrap().len(), 8);
    assert_eq!(
        v["layers"][0]["output_shape"],
        serde_json::json!([null, 6, 28, 28])
    );
}

#[test]
fn summary_reads_spec_files() {
    for (file, total) in [
        ("lenet5.toml", 61_706),
        ("dense-on-image.toml", 19_660_900),
        ("conv-on-image.toml", 18_944),
        // 1*8*7+8 + 8*16*7+16 + 16*32*5+32 + 32*4+4
        ("ecg-1d.toml", 3_700),
        // 27*8+8 + 27*8*16+16 + 16*4+4
        ("video-3d.toml", 3_764),
    ] {
        let out = convnet(&["summary", &spec(file), "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(v["total_params"], total, "{file}");
    }
}

#[test]
fn user_errors_are_one_line_with_a_failing_status() {
    let dir = std::env::temp_dir().join(format!("convnet-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "input = [1, 8, 8]\n[[layers]]\ntype = \"conv2d\"\nfilters = 2\nkernel = [3, 3, 3]\n",
    )
    .unwrap();
    let small = dir.join("small.toml");
    std::fs::write(
        &small,
        "input = [1, 4, 4]\n[[layers]]\ntype = \"conv2d\"\nfilters = 2\nkernel = 5\n",
    )
    .unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["summary".into(), "resnet9000".into()],
            "unknown model 'resnet9000'",
        ),
        (
            vec!["summary".into(), bad.display().to_string()],
            "bad.toml:2: layer 'conv2d_1' (conv2d 2 filters 3x3x3): kernel size has 3 values but the layer has 2 spatial axes",
        ),
        (
            vec!["summary".into(), small.display().to_string()],
            "kernel 5 (after dilation) is larger than the padded input 4",
        ),
        (
            vec![
                "summary".into(),
                dir.join("missing.toml").display().to_string(),
            ],
            "cannot read the spec file",
        ),
        (
            vec![
                "--device".into(),
                "gpu".into(),
                "summary".into(),
                "lenet5".into(),
            ],
            "GPU",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = convnet(&args);
        let err = stderr(&out);
        if args[0] == "--device" && cfg!(feature = "gpu") {
            continue;
        }
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(expected),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn help_and_version_everywhere() {
    for args in [
        vec!["--help"],
        vec!["summary", "--help"],
        vec!["models", "--help"],
        vec!["help", "summary"],
    ] {
        let out = convnet(&args);
        assert!(out.status.success(), "{args:?}");
        assert!(stdout(&out).contains("Usage:"), "{args:?}");
    }
    let out = convnet(&["--version"]);
    assert_eq!(
        stdout(&out).trim(),
        format!("convnet {}", env!("CARGO_PKG_VERSION"))
    );
    let out = convnet(&["models", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(v.as_array().unwrap().iter().any(|m| m["name"] == "lenet5"));
}

#[test]
fn summary_prints_the_zoo_with_published_counts_with_and_without_top() {
    let total = |args: &[&str]| {
        let out = convnet(args);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        (
            v["trainable_params"].as_u64().unwrap(),
            v["output_shape"].clone(),
        )
    };
    assert_eq!(
        total(&["summary", "resnet50", "--json"]).0,
        25_557_032,
        "torchvision's count"
    );
    // Without the top: everything up to layer4's maps; fc's 2048*1000+1000 weights are gone.
    let (params, shape) = total(&["summary", "resnet50", "--no-top", "--json"]);
    assert_eq!(params, 25_557_032 - 2_049_000);
    assert_eq!(shape, serde_json::json!([null, 2048, 7, 7]));
    // Another head and input size.
    let (params, shape) = total(&[
        "summary",
        "resnet50",
        "--classes",
        "10",
        "--size",
        "96",
        "--json",
    ]);
    assert_eq!(params, 25_557_032 - 2_049_000 + 20_490);
    assert_eq!(shape, serde_json::json!([null, 10]));
    let out = convnet(&["summary", "efficientnet_b0"]);
    assert!(stdout(&out).contains("Total params: "), "{}", stderr(&out));
    let out = convnet(&["summary", &spec("lenet5.toml"), "--classes", "3"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("spec file"), "{}", stderr(&out));
}

/// `bench infer` builds the named network at 224x224, checks its logits' shape and reports
/// both timings; an unknown model is a one-line error.
#[test]
fn bench_infer_json_reports_both_batch_sizes() {
    let out = convnet(&[
        "bench",
        "infer",
        "--model",
        "lenet5",
        "--iters1",
        "1",
        "--iters16",
        "1",
        "--warmup",
        "0",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let r = &v["results"][0];
    assert_eq!(r["model"], "lenet5");
    assert!(r["params"].as_u64().unwrap() > 0, "{v}");
    assert!(r["b1_median_ms"].as_f64().unwrap() > 0.0, "{v}");
    assert!(r["b16_img_per_s"].as_f64().unwrap() > 0.0, "{v}");

    let out = convnet(&["bench", "infer", "--model", "no-such-net"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no-such-net"), "{}", stderr(&out));
}
