//! `convnet style` end to end on a tiny VGG-like spec file: the output's size and values,
//! costs falling, snapshots, weights from a file, and bad input.

mod common;

use std::path::{Path, PathBuf};

use common::{convnet, s, stderr};
use image::{Rgb, RgbImage};
use serde_json::Value;

/// Two VGG stages with named layers, so `conv1_1` ... `conv2_2` resolve as in VGG-19.
const SPEC: &str = r#"
name = "tiny-vgg"
input = [3, 32, 32]

[[layers]]
type = "conv2d"
name = "features.0"
filters = 8
kernel = 3
padding = 1
activation = "relu"

[[layers]]
type = "max_pool2d"
name = "features.1"
pool = 2

[[layers]]
type = "conv2d"
name = "features.2"
filters = 8
kernel = 3
padding = 1

[[layers]]
type = "activation"
name = "features.3"
activation = "relu"

[[layers]]
type = "conv2d"
name = "features.4"
filters = 8
kernel = 3
padding = 1
activation = "relu"
"#;

fn picture(path: &Path, w: u32, h: u32, seed: u32) {
    RgbImage::from_fn(w, h, |x, y| {
        let v = (x * 37 + y * 91 + seed * 53) % 256;
        Rgb([v as u8, ((v * 3 + seed) % 256) as u8, (255 - v) as u8])
    })
    .save(path)
    .unwrap();
}

struct Setup {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    spec: String,
    content: String,
    style: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    std::fs::write(path.join("tiny.toml"), SPEC).unwrap();
    picture(&path.join("content.png"), 60, 40, 1);
    picture(&path.join("style.png"), 25, 50, 7);
    Setup {
        spec: s(&path.join("tiny.toml")),
        content: s(&path.join("content.png")),
        style: s(&path.join("style.png")),
        dir: path,
        _dir: dir,
    }
}

fn style_args<'a>(t: &'a Setup, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "style",
        "--content",
        &t.content,
        "--style",
        &t.style,
        "-o",
        out,
        "--model",
        &t.spec,
        "--content-layer",
        "conv2_2",
        "--style-layers",
        "conv1_1,conv2_1",
        "--size",
        "30",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn writes_a_picture_of_the_content_size_and_lowers_the_cost() {
    let t = setup();
    let out = s(&t.dir.join("out/styled.png"));
    let o = convnet(&style_args(
        &t,
        &out,
        &[
            "--untrained",
            "--iterations",
            "12",
            "--save-every",
            "5",
            "--json",
        ],
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let history = report["history"].as_array().unwrap();
    assert_eq!(history.len(), 12);
    let first = history[0]["total"].as_f64().unwrap();
    let last = report["final"]["total"].as_f64().unwrap();
    assert!(last < first, "J went from {first} to {last}");
    // 60x40 content scaled to a longer side of 30.
    let img = image::open(&out).unwrap();
    assert_eq!((img.width(), img.height()), (30, 20));
    for k in [5, 10] {
        assert!(
            t.dir.join(format!("out/styled-{k:04}.png")).is_file(),
            "snapshot {k}"
        );
    }
    assert!(!t.dir.join("out/styled-0015.png").exists());
}

#[test]
fn lbfgs_and_weights_from_a_file() {
    let t = setup();
    // The spec's own (random) weights written as a state_dict, then loaded by name.
    let device = burn::tensor::Device::flex();
    let spec = convnet_layers::ModelSpec::from_file(Path::new(&t.spec)).unwrap();
    let dict = convnet_weights::to_state_dict(&spec.build(&device).unwrap()).unwrap();
    let weights = t.dir.join("tiny.safetensors");
    convnet_weights::write_safetensors(&dict, &weights).unwrap();
    let out = s(&t.dir.join("lbfgs.png"));
    let o = convnet(&style_args(
        &t,
        &out,
        &[
            "--weights",
            &s(&weights),
            "--optimizer",
            "lbfgs",
            "--iterations",
            "5",
            "--json",
        ],
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["pretrained"], true);
    let totals: Vec<f64> = report["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["total"].as_f64().unwrap())
        .collect();
    assert!(totals.windows(2).all(|w| w[1] <= w[0]), "{totals:?}");
}

fn fails_with(args: &[&str], words: &[&str]) {
    let o = convnet(args);
    assert!(!o.status.success(), "succeeded: {args:?}");
    let err = stderr(&o);
    for w in words {
        assert!(err.contains(w), "'{w}' not in: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let t = setup();
    let out = s(&t.dir.join("bad.png"));
    fails_with(
        &style_args(&t, &out, &["--iterations", "1"]),
        &["--weights"],
    );
    let mut unknown = style_args(&t, &out, &["--untrained", "--iterations", "1"]);
    unknown[10] = "conv4_2";
    fails_with(&unknown, &["conv4_2", "conv2_2", "valid names"]);
    // Weights of another architecture.
    let device = burn::tensor::Device::flex();
    let mut other = convnet_zoo::imagenet_spec("vgg11", &Default::default()).unwrap();
    other.layers.truncate(4);
    let dict = convnet_weights::to_state_dict(&other.build(&device).unwrap()).unwrap();
    let weights = t.dir.join("vgg11.safetensors");
    convnet_weights::write_safetensors(&dict, &weights).unwrap();
    fails_with(
        &style_args(&t, &out, &["--weights", &s(&weights), "--iterations", "1"]),
        &["do not fit", "features.0.weight"],
    );
    let corrupt = t.dir.join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG not really").unwrap();
    let mut args = style_args(&t, &out, &["--untrained", "--iterations", "1"]);
    let corrupt = s(&corrupt);
    args[2] = &corrupt;
    fails_with(&args, &["corrupt.png"]);
    fails_with(
        &style_args(&t, &s(&t.dir.join("out.jpg")), &["--untrained"]),
        &["PNG"],
    );
}
