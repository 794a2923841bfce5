//! `convnet detect` with face-api's Tiny Face Detector on the package's own photos (fetched by
//! `scripts/fetch-pretrained.sh face-api`, which CI runs).

mod common;

use common::{convnet, face_api, stderr};
use serde_json::Value;

fn weights() -> String {
    face_api("model/tiny_face_detector_model-weights_manifest.json")
        .display()
        .to_string()
}

fn detect(image: &str, extra: &[&str]) -> Value {
    let w = weights();
    let mut args = vec!["detect", image, "--weights", &w, "--json"];
    args.extend_from_slice(extra);
    let o = convnet(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn finds_the_three_faces_of_sample1_and_draws_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("faces.png");
    let image = face_api("demo/sample1.jpg");
    let r = detect(
        &image.display().to_string(),
        &["-o", &out.display().to_string()],
    );
    let dets = r["detections"].as_array().unwrap();
    assert_eq!(dets.len(), 3, "{r:#}");
    let (w, h) = (r["width"].as_f64().unwrap(), r["height"].as_f64().unwrap());
    let mut centres: Vec<f64> = Vec::new();
    for d in dets {
        assert_eq!(d["class"], "face");
        assert!(d["score"].as_f64().unwrap() > 0.5);
        let b: Vec<f64> = serde_json::from_value(d["box"].clone()).unwrap();
        assert!(
            b[0] >= 0.0 && b[1] >= 0.0 && b[2] <= w && b[3] <= h,
            "{b:?}"
        );
        // A face, not the whole picture nor a speck: a tenth to a third of the width.
        let bw = b[2] - b[0];
        assert!(bw > w / 10.0 && bw < w / 3.0, "{b:?}");
        centres.push((b[0] + b[2]) / 2.0);
    }
    // Three people side by side: the faces are far apart.
    centres.sort_by(f64::total_cmp);
    assert!(
        centres.windows(2).all(|p| p[1] - p[0] > w / 6.0),
        "{centres:?}"
    );
    let drawn = image::open(&out).unwrap();
    assert_eq!((drawn.width() as f64, drawn.height() as f64), (w, h));
}

#[test]
fn every_demo_photo_has_faces_and_a_high_threshold_keeps_fewer() {
    for i in 1..=6 {
        let image = face_api(&format!("demo/sample{i}.jpg"))
            .display()
            .to_string();
        let all = detect(&image, &[]);
        let n = all["detections"].as_array().unwrap().len();
        assert!(n >= 1, "sample{i}: no face found");
        let strict = detect(&image, &["--score", "0.8"]);
        assert!(strict["detections"].as_array().unwrap().len() <= n);
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.jpg");
    std::fs::write(&broken, b"not a jpeg").unwrap();
    let w = weights();
    let o = convnet(&["detect", &broken.display().to_string(), "--weights", &w]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("broken.jpg"), "{}", stderr(&o));
    let image = face_api("demo/sample1.jpg").display().to_string();
    for (args, word) in [
        (vec!["--size", "100"], "multiple of 32"),
        (vec!["--model", "resnet50"], "not a detector"),
        (vec!["--score", "1.5"], "--score"),
    ] {
        let mut all = vec!["detect", image.as_str(), "--weights", w.as_str()];
        all.extend(args);
        let o = convnet(&all);
        assert!(!o.status.success());
        assert!(stderr(&o).contains(word), "{}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"));
    }
    // Truncated weights: the manifest's shard cut short.
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    let manifest = face_api("model/tiny_face_detector_model-weights_manifest.json");
    std::fs::copy(&manifest, model.join("m.json")).unwrap();
    let bin = std::fs::read(face_api("model/tiny_face_detector_model.bin")).unwrap();
    std::fs::write(
        model.join("tiny_face_detector_model.bin"),
        &bin[..bin.len() / 2],
    )
    .unwrap();
    let m = model.join("m.json").display().to_string();
    let o = convnet(&["detect", &image, "--weights", &m]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("truncated"), "{}", stderr(&o));
}
