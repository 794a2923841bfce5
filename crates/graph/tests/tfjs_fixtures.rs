//! The TF.js graph-model translator on `fixtures/tfjs/tiny` (a small model written in the
//! converter's format, float16 and uint8 weights, with tfjs's outputs: `make_tiny.mjs`), then
//! files a user could get wrong: each a one-line error, never a panic.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, TensorData};
use convnet_graph::{GraphError, OnnxModel, tfjs};
use serde_json::Value;

fn tiny() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tfjs/tiny")
}

/// The synthetic 8x8 input of the fixture, channels first as the translated model takes it.
fn input() -> TensorData {
    let mut x = vec![0.0f32; 3 * 64];
    for c in 0..3 {
        for y in 0..8 {
            for xx in 0..8 {
                let a = 0.05 * xx as f64 * (c as f64 + 1.0) + 0.07 * y as f64 + 0.3 * c as f64;
                x[(c * 8 + y) * 8 + xx] = (127.5 + 127.5 * a.sin()).floor() as f32 / 255.0;
            }
        }
    }
    TensorData::new(x, [1, 3, 8, 8])
}

fn values(d: &TensorData) -> Vec<f32> {
    d.clone().convert::<f32>().try_to_vec::<f32>().unwrap()
}

#[test]
fn tiny_model_matches_tfjs() {
    let model = tfjs::open(tiny().join("model.json")).unwrap();
    assert_eq!(
        model.inputs()[0].shape,
        [Some(1), Some(3), Some(8), Some(8)]
    );
    let outs = model.run(&[input()], &Device::default()).unwrap();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(tiny().join("expected.json")).unwrap())
            .unwrap();
    let names: Vec<&str> = model.outputs().iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["out1:0", "out2:0", "out3:0"]);
    // out1, channels first: TF index (y, x, c) of [1, 5, 5, 4] is at (c, y, x).
    let want = |k: usize| -> (Vec<f64>, f64) {
        let v: Vec<f64> = expected["outputs"][k]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let max = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        (v, max)
    };
    let out1 = values(&outs[0]);
    let (want1, max1) = want(0);
    let mut worst = 0.0f64;
    for y in 0..5 {
        for x in 0..5 {
            for c in 0..4 {
                let (g, w) = (
                    f64::from(out1[(c * 5 + y) * 5 + x]),
                    want1[(y * 5 + x) * 4 + c],
                );
                assert!(
                    (g - w).abs() <= 1e-4 * max1,
                    "out1 ({y}, {x}, {c}): {g} vs tfjs {w}"
                );
                worst = worst.max((g - w).abs());
            }
        }
    }
    // out2 (a Transpose then Reshape) and out3 (StridedSlice, SplitV, MatMul, Softmax...) are
    // not images: the same order in both.
    for k in [1, 2] {
        let got = values(&outs[k]);
        let (want, max) = want(k);
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let diff = (f64::from(*g) - w).abs();
            assert!(diff <= 1e-4 * max, "out{}[{i}]: {g} vs tfjs {w}", k + 1);
            worst = worst.max(diff);
        }
    }
    eprintln!("max |diff| {worst:.2e}; max |tfjs| {max1:.3} (out1)");
}

/// A copy of the tiny model in a temporary folder, `edit` applied to its JSON and `bin` to
/// its shard.
fn edited(
    edit: impl FnOnce(&mut Value),
    bin: impl FnOnce(&mut Vec<u8>),
) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mut json: Value =
        serde_json::from_str(&std::fs::read_to_string(tiny().join("model.json")).unwrap()).unwrap();
    edit(&mut json);
    let mut bytes = std::fs::read(tiny().join("model.bin")).unwrap();
    bin(&mut bytes);
    let path = dir.path().join("model.json");
    std::fs::write(&path, json.to_string()).unwrap();
    std::fs::write(dir.path().join("model.bin"), bytes).unwrap();
    (dir, path)
}

fn node<'a>(json: &'a mut Value, name: &str) -> &'a mut Value {
    json["modelTopology"]["node"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|n| n["name"] == name)
        .unwrap()
}

fn weight<'a>(json: &'a mut Value, name: &str) -> &'a mut Value {
    json["weightsManifest"][0]["weights"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|n| n["name"] == name)
        .unwrap()
}

/// Opening (and, when that works, running) fails with one line containing every `words`.
fn refused(path: &Path, words: &[&str]) -> GraphError {
    let result = std::panic::catch_unwind(|| {
        tfjs::open(path).and_then(|m: OnnxModel| m.run(&[input()], &Device::default()).map(|_| m))
    })
    .expect("a panic instead of an error");
    let e = result.expect_err("the model was accepted");
    let text = e.to_string();
    eprintln!("{text}");
    assert!(!text.contains('\n'), "not one line: {text}");
    for w in words {
        assert!(text.contains(w), "{text:?} does not say {w:?}");
    }
    e
}

#[test]
fn missing_and_short_shards_are_refused() {
    let (_d, p) = edited(
        |j| j["weightsManifest"][0]["paths"][0] = "gone.bin".into(),
        |_| {},
    );
    refused(&p, &["gone.bin"]);
    let full = std::fs::metadata(tiny().join("model.bin")).unwrap().len();
    let (_d, p) = edited(|_| {}, |b| b.truncate(b.len() - 10));
    refused(
        &p,
        &[
            &format!("{} bytes", full - 10),
            &full.to_string(),
            "truncated",
        ],
    );
}

#[test]
fn shapes_that_do_not_match_the_weights_are_refused() {
    // The manifest and the node disagree.
    let (_d, p) = edited(
        |j| weight(j, "w1")["shape"] = serde_json::json!([3, 3, 4, 3]),
        |_| {},
    );
    refused(&p, &["w1", "[3, 3, 4, 3]", "[3, 3, 3, 4]"]);
    // Both say a filter for 4 input channels; the picture has 3.
    let (_d, p) = edited(
        |j| {
            weight(j, "w1")["shape"] = serde_json::json!([3, 3, 4, 3]);
            node(j, "w1")["attr"]["value"]["tensor"]["tensorShape"] = serde_json::json!({"dim": [{"size": "3"}, {"size": "3"}, {"size": "4"}, {"size": "3"}]});
        },
        |_| {},
    );
    refused(&p, &["c1", "takes 4 channels", "has 3"]);
}

#[test]
fn unknown_dtypes_are_refused() {
    let (_d, p) = edited(|j| weight(j, "b1")["dtype"] = "complex64".into(), |_| {});
    refused(&p, &["b1", "complex64"]);
    let (_d, p) = edited(
        |j| weight(j, "w1")["quantization"]["dtype"] = "int4".into(),
        |_| {},
    );
    refused(&p, &["w1", "int4"]);
}

#[test]
fn cycles_are_refused() {
    let (_d, p) = edited(|j| node(j, "c1")["input"][0] = "lr".into(), |_| {});
    refused(&p, &["cycle", "c1", "lr"]);
}

#[test]
fn untranslated_ops_are_all_named_before_anything_runs() {
    let (_d, p) = edited(
        |j| {
            node(j, "sig")["op"] = "Erf".into();
            node(j, "m1")["op"] = "Cumprod".into();
        },
        |_| {},
    );
    // out2 and out3 need Cumprod (through m1), out1 both: nothing is left to run.
    let e = refused(
        &p,
        &[
            "2 unsupported operators",
            "Erf (node \"sig\")",
            "Cumprod (node \"m1\")",
        ],
    );
    assert!(matches!(e, GraphError::Unsupported { count: 2, .. }));
    // Only out1 needs Erf: out2 and out3 are kept and the model says what it left out.
    let (_d, p) = edited(|j| node(j, "sig")["op"] = "Erf".into(), |_| {});
    let model = tfjs::open(&p).unwrap();
    assert_eq!(model.outputs().len(), 2);
    let left = model
        .metadata()
        .iter()
        .find(|(k, _)| k == "left_out")
        .unwrap();
    assert_eq!(left.1, "out1:0 (needs Erf)");
    // Asked for by name, it is an error.
    let options = tfjs::Options {
        outputs: Some(vec!["out1:0".into()]),
        ..Default::default()
    };
    let e = tfjs::open_with(&p, &options).unwrap_err();
    assert_eq!(e.to_string(), "1 unsupported operator: Erf (node \"sig\")");
}

#[test]
fn wrong_input_sizes_and_formats_are_refused() {
    let model = tfjs::open(tiny().join("model.json")).unwrap();
    let e = model
        .run(
            &[TensorData::new(vec![0.0f32; 3 * 81], [1, 3, 9, 9])],
            &Device::default(),
        )
        .unwrap_err()
        .to_string();
    assert!(
        !e.contains('\n') && e.contains("x:0") && e.contains("[1, 3, 8, 8]"),
        "{e}"
    );
    let (_d, p) = edited(|j| j["format"] = "layers-model".into(), |_| {});
    refused(&p, &["layers-model", "graph-model"]);
    let (_d, p) = edited(
        |j| j["modelTopology"] = serde_json::json!({"node": "x"}),
        |_| {},
    );
    refused(&p, &["not a TF.js graph model"]);
    let (_d, p) = edited(|j| node(j, "pad")["input"][0] = "ghost".into(), |_| {});
    refused(&p, &["\"ghost\""]);
}

#[test]
fn graph_models_are_told_from_weight_manifests() {
    assert!(tfjs::is_graph_model(&tiny().join("model.json")));
    assert!(!tfjs::is_graph_model(&tiny().join("expected.json")));
    assert!(!tfjs::is_graph_model(&tiny().join("model.bin")));
}
