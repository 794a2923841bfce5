//! `convnet export` end to end: a built-in model and a trained run written as ONNX files
//! (their nodes, weights and metadata read back), and bad input refused with one line.

mod common;
#[path = "common/data.rs"]
mod data;

use std::path::Path;

use common::{convnet, json, refused, s, stderr};
use convnet_graph::export::{ModelProto, parse};

fn read(path: &Path) -> ModelProto {
    parse(&std::fs::read(path).unwrap()).unwrap()
}

fn prop<'a>(m: &'a ModelProto, key: &str) -> &'a str {
    m.metadata_props
        .iter()
        .find(|p| p.key == key)
        .map(|p| p.value.as_str())
        .unwrap_or_else(|| panic!("no metadata {key}"))
}

fn ops(m: &ModelProto) -> Vec<&str> {
    m.graph.node.iter().map(|n| n.op_type.as_str()).collect()
}

#[test]
fn a_built_in_model_exports_with_its_classes_and_spec() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("lenet.onnx");
    let out = convnet(&[
        "export",
        "lenet5",
        "-o",
        &s(&path),
        "--opset",
        "13",
        "--json",
    ]);
    let j = json(&out);
    assert!(
        stderr(&out).contains("freshly initialised"),
        "{}",
        stderr(&out)
    );
    assert_eq!(j["model"], "lenet5");
    assert_eq!(j["opset"], 13);
    assert_eq!(j["input"]["shape"], serde_json::json!([1, 1, 32, 32]));
    assert_eq!(j["outputs"]["shape"], serde_json::json!([1, 10]));
    // LeNet-5's 61,706 parameters (LeCun 1998's layer sizes).
    assert_eq!(j["parameters"], 61_706);
    assert_eq!(j["bytes"], std::fs::metadata(&path).unwrap().len());

    let m = read(&path);
    assert_eq!(m.opset_import[0].version, 13);
    assert_eq!(ops(&m).iter().filter(|o| **o == "Conv").count(), 2);
    assert_eq!(ops(&m).iter().filter(|o| **o == "Gemm").count(), 3);
    let classes: Vec<String> = serde_json::from_str(prop(&m, "classes")).unwrap();
    assert_eq!(classes.len(), 10);
    assert_eq!(classes[3], "class 3");
    assert_eq!(prop(&m, "input_layout"), "NCHW");
    let spec = convnet_layers::ModelSpec::parse(prop(&m, "convnet_spec"), "meta").unwrap();
    assert_eq!(spec.input, [1, 32, 32]);
    // No temporary file is left beside the output.
    let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(names.len(), 1);

    // A built-in ImageNet model at another size, with its preprocessing recipe.
    let path = tmp.path().join("mobilenet.onnx");
    let out = convnet(&[
        "-q",
        "export",
        "mobilenet_v2",
        "--num-classes",
        "7",
        "--size",
        "64",
        "64",
        "--dynamic-batch",
        "-o",
        &s(&path),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let m = read(&path);
    assert_eq!(prop(&m, "input_shape"), r#"["N",3,64,64]"#);
    assert_eq!(prop(&m, "output_shape"), r#"["N",7]"#);
    let pre: serde_json::Value = serde_json::from_str(prop(&m, "preprocessing")).unwrap();
    assert_eq!(pre["name"], "imagenet");
    assert_eq!(pre["size"], serde_json::json!([64, 64]));
}

#[test]
fn a_trained_run_exports_its_weights_and_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let (data_dir, run) = (tmp.path().join("data"), tmp.path().join("run"));
    std::fs::create_dir(&data_dir).unwrap();
    data::write_fashion_like(&data_dir, 120, 40, 3);
    let out = convnet(&[
        "-q",
        "train",
        "--model",
        "lenet5",
        "--data",
        &s(&data_dir),
        "--batch",
        "32",
        "--epochs",
        "1",
        "--out",
        &s(&run),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let path = tmp.path().join("run.onnx");
    let out = convnet(&["export", &s(&run), "-o", &s(&path), "--dynamic-batch"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(common::stdout(&out).contains("run.onnx"));
    let m = read(&path);

    // The run's own weights, under the state dict's names.
    let ckpt_path = convnet_train::Checkpoint::resolve(&run).unwrap();
    let ckpt = convnet_train::Checkpoint::load(&ckpt_path).unwrap();
    let model = ckpt
        .model(&ckpt_path, &burn::tensor::Device::flex())
        .unwrap();
    let dict = convnet_weights::to_state_dict(&model).unwrap();
    assert!(!dict.is_empty());
    for (key, t) in dict.iter() {
        let init = m.graph.initializer.iter().find(|i| i.name == key).unwrap();
        let values: Vec<f32> = init
            .raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(values, t.data, "{key}");
    }
    // Its classes and input normalisation, and a symbolic batch.
    let classes: Vec<String> = serde_json::from_str(prop(&m, "classes")).unwrap();
    assert_eq!(classes, ckpt.meta.classes);
    let pre: serde_json::Value = serde_json::from_str(prop(&m, "preprocessing")).unwrap();
    assert_eq!(
        pre["mean"][0].as_f64().unwrap() as f32,
        ckpt.meta.normalization.mean[0]
    );
    assert_eq!(prop(&m, "input_shape"), r#"["N",1,28,28]"#);
    assert_eq!(prop(&m, "convnet_spec"), ckpt.meta.spec);

    // A checkpoint file exports too; a run brings its own weights.
    let out = convnet(&[
        "-q",
        "export",
        &s(&ckpt_path),
        "-o",
        &s(&tmp.path().join("c.onnx")),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = convnet(&[
        "export",
        &s(&run),
        "--weights",
        &s(&ckpt_path),
        "-o",
        &s(&tmp.path().join("x.onnx")),
    ]);
    refused(&out, &["brings its own weights"]);
}

#[test]
fn bad_input_is_refused_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let onnx = s(&tmp.path().join("m.onnx"));
    refused(
        &convnet(&["export", "no-such-model", "-o", &onnx]),
        &["unknown model 'no-such-model'"],
    );
    for opset in ["12", "22", "-3"] {
        refused(
            &convnet(&["export", "lenet5", "--opset", opset, "-o", &onnx]),
            &[&format!("opset {opset} is not supported"), "13 to 21"],
        );
    }
    refused(
        &convnet(&["export", "lenet5", "--opset", "x", "-o", &onnx]),
        &["--opset"],
    );
    // The folder of -o is a file: nothing can be written there.
    let file = tmp.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let inside = s(&file.join("m.onnx"));
    refused(&convnet(&["export", "lenet5", "-o", &inside]), &["m.onnx"]);
    // A spec file's dense layers take its own picture size only.
    let spec = tmp.path().join("lenet.toml");
    let toml = convnet_zoo::spec("lenet5").unwrap().to_toml().unwrap();
    std::fs::write(&spec, toml).unwrap();
    refused(
        &convnet(&["export", &s(&spec), "--size", "64", "64", "-o", &onnx]),
        &["input features"],
    );
    refused(
        &convnet(&["export", "signal-cnn", "--size", "64", "64", "-o", &onnx]),
        &["spatial axes"],
    );
    assert!(!tmp.path().join("m.onnx").exists());
}
