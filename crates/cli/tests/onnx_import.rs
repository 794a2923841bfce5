//! ONNX files through the command line: `summary`, `infer` (several inputs and outputs),
//! `predict` and `segment --model M.onnx`, and files convnet cannot run refused in one line.
//! The files are convnet's own exports of small spec files (weights as initialised), and the
//! committed PyTorch fixture with ONNX Runtime's output (`fixtures/onnx/models`).

mod common;

use std::path::{Path, PathBuf};

use common::{convnet, json, refused, s, stdout};
use convnet_data::{NpyData, read_npy, write_npy_f32};
use convnet_graph::export::parse;
use onnx_ir::Message;

const CLASSIFIER: &str = r#"
name = "tiny-classifier"
input = [3, 16, 16]

[[layers]]
type = "conv2d"
filters = 4
kernel = 3
padding = "same"
activation = "relu"

[[layers]]
type = "global_avg_pool"

[[layers]]
type = "dense"
units = 5
"#;

const SEGMENTER: &str = r#"
name = "tiny-segmenter"
input = [3, 16, 16]

[[layers]]
type = "conv2d"
filters = 3
kernel = 3
padding = "same"
"#;

/// A spec file exported as ONNX (free batch axis), in `dir`.
fn exported(dir: &Path, name: &str, spec: &str) -> PathBuf {
    let toml = dir.join(format!("{name}.toml"));
    std::fs::write(&toml, spec).unwrap();
    let onnx = dir.join(format!("{name}.onnx"));
    let out = convnet(&["export", &s(&toml), "--dynamic-batch", "-o", &s(&onnx)]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    onnx
}

/// A 40x24 picture with a bright square.
fn picture(dir: &Path) -> PathBuf {
    let path = dir.join("picture.png");
    let img = image::RgbImage::from_fn(40, 24, |x, y| {
        if (10..20).contains(&x) && (5..15).contains(&y) {
            image::Rgb([250, 240, 230])
        } else {
            image::Rgb([20, 40, 60])
        }
    });
    img.save(&path).unwrap();
    path
}

#[test]
fn summary_lists_nodes_shapes_and_parameters() {
    let tmp = tempfile::tempdir().unwrap();
    let model = exported(tmp.path(), "c", CLASSIFIER);
    let out = convnet(&["summary", &s(&model)]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("(Conv2d)") && text.contains("[1, 4, 16, 16]"),
        "{text}"
    );
    // 3*4*9 + 4 weights and biases in the convolution, 4*5 + 5 in the dense layer.
    assert!(text.contains("Total params: 137"), "{text}");
    let j = json(&convnet(&["summary", &s(&model), "--json"]));
    assert_eq!(j["total_params"], 137);
    assert_eq!(j["inputs"][0][0], "input");
}

#[test]
fn infer_runs_the_pytorch_fixture_to_onnx_runtimes_output() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/onnx/models/classifier_opset17");
    let tmp = tempfile::tempdir().unwrap();
    // The fixture's tensors are ONNX TensorProto files; this test hands `infer` .npy arrays.
    let tensor = |name: &str| {
        let bytes = std::fs::read(dir.join("test_data_set_0").join(name)).unwrap();
        let t = onnx_ir::TensorProto::parse_from_bytes(&bytes).unwrap();
        let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
        let values: Vec<f32> = if t.raw_data.is_empty() {
            t.float_data.clone()
        } else {
            t.raw_data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        };
        (dims, values)
    };
    let (dims, x) = tensor("input_0.pb");
    let (want_dims, want) = tensor("output_0.pb");
    let xin = tmp.path().join("x.npy");
    write_npy_f32(&xin, &dims, &x).unwrap();
    let yout = tmp.path().join("y.npy");
    let j = json(&convnet(&[
        "infer",
        "--model",
        &s(&dir.join("model.onnx")),
        "--input",
        &s(&xin),
        "--output",
        &s(&yout),
        "--json",
    ]));
    assert_eq!(j["outputs"][0]["shape"], serde_json::json!(want_dims));
    let got = read_npy(&yout).unwrap();
    let NpyData::F32(got) = got.data else {
        panic!("float32 output expected")
    };
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = got
        .iter()
        .zip(&want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        diff <= 1e-4 * scale,
        "max |diff| {diff} against max |ref| {scale}"
    );
    // One --output per graph output.
    refused(
        &convnet(&[
            "infer",
            "--model",
            &s(&dir.join("model.onnx")),
            "--input",
            &s(&xin),
            "--output",
            &s(&yout),
            "--output",
            &s(&tmp.path().join("z.npy")),
        ]),
        &["gives 1 output"],
    );
}

#[test]
fn predict_and_segment_take_onnx_models() {
    let tmp = tempfile::tempdir().unwrap();
    let pic = picture(tmp.path());
    let classifier = exported(tmp.path(), "c", CLASSIFIER);
    let j = json(&convnet(&[
        "predict",
        "--model",
        &s(&classifier),
        &s(&pic),
        "--top",
        "2",
        "--json",
    ]));
    let best = j["results"][0]["predictions"].as_array().unwrap();
    assert_eq!(best.len(), 2);
    let p0 = best[0]["probability"].as_f64().unwrap();
    let p1 = best[1]["probability"].as_f64().unwrap();
    assert!(p0 >= p1 && p0 + p1 <= 1.0 + 1e-6, "{j}");

    let segmenter = exported(tmp.path(), "s", SEGMENTER);
    let mask = tmp.path().join("mask.png");
    let overlay = tmp.path().join("overlay.png");
    let j = json(&convnet(&[
        "segment",
        "--model",
        &s(&segmenter),
        &s(&pic),
        "-o",
        &s(&mask),
        "--overlay",
        &s(&overlay),
        "--json",
    ]));
    assert_eq!(j["size"], serde_json::json!([40, 24]));
    let m = image::open(&mask).unwrap();
    assert_eq!((m.width(), m.height()), (40, 24));
    let counted: u64 = j["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["pixels"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 40 * 24);
    assert!(overlay.exists());
}

#[test]
fn an_unsupported_operator_is_named_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let model = exported(tmp.path(), "c", CLASSIFIER);
    let mut proto = parse(&std::fs::read(&model).unwrap()).unwrap();
    let Some(graph) = proto.graph.as_mut() else {
        panic!("no graph")
    };
    graph.node[0].op_type = "Einsum".into();
    let name = graph.node[0].name.clone();
    let bad = tmp.path().join("bad.onnx");
    std::fs::write(&bad, proto.write_to_bytes().unwrap()).unwrap();
    refused(
        &convnet(&["summary", &s(&bad)]),
        &["unsupported operator", "Einsum", &name],
    );
    let truncated = tmp.path().join("truncated.onnx");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    refused(&convnet(&["summary", &s(&truncated)]), &["truncated.onnx"]);
}
