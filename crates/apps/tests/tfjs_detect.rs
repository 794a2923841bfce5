//! CenterNet and NanoDet (TF.js graph models of the human package) in `convnet detect`'s
//! decoder against the package's own JavaScript decoding run by `scripts/tfjs-reference.sh`
//! on tfjs's outputs for the same network inputs: on face-api's demo photos (fetched in CI),
//! every box before NMS must be within 0.5 px. The models are `third_party/human-models`
//! (`scripts/fetch-pretrained.sh human`); where they are absent the test says so and checks
//! nothing else.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use convnet_apps::detect::graph::{DEFAULT_SCORE, GraphDetector};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

#[test]
fn detectors_decode_as_the_human_package_does() {
    let models = repo("third_party/human-models/models");
    let photos = repo("third_party/face-api/demo");
    if !models.join("nanodet.json").exists() || !photos.join("sample1.jpg").exists() {
        eprintln!(
            "note: {} or {} is missing (scripts/fetch-pretrained.sh human, face-api); the box parity test checks nothing",
            models.display(),
            photos.display()
        );
        return;
    }
    let text = std::fs::read_to_string(repo("fixtures/tfjs/reference.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let device = Device::default();
    let mut checked = 0;
    for name in ["centernet", "nanodet"] {
        let detector = GraphDetector::open(&models.join(format!("{name}.json")), &device).unwrap();
        for run in reference["runs"].as_array().unwrap() {
            let id = run["input"].as_str().unwrap();
            if run["model"] != name || !id.starts_with("sample") {
                continue;
            }
            let picture = convnet_data::folder::decode_image(&photos.join(format!("{id}.jpg")))
                .unwrap()
                .to_rgb8();
            let size = picture.dimensions();
            let x = detector.input(&picture).unwrap();
            let ours = detector
                .candidates(x, size, DEFAULT_SCORE, &device)
                .unwrap();
            let js = run["boxes"].as_array().unwrap();
            // Scores within 1e-4 of the threshold may fall either side of it.
            let near = |s: f32| (s - DEFAULT_SCORE).abs() < 1e-4;
            let ours_kept = ours.iter().filter(|d| !near(d.score)).count();
            let js_kept = js
                .iter()
                .filter(|b| !near(b["score"].as_f64().unwrap() as f32))
                .count();
            assert_eq!(ours_kept, js_kept, "{name} {id}: box counts");
            for b in js {
                let class = b["class"].as_u64().unwrap() as usize;
                let score = b["score"].as_f64().unwrap() as f32;
                if near(score) {
                    continue;
                }
                let v: Vec<f32> = b["box"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap() as f32)
                    .collect();
                let want = [v[0], v[1], v[0] + v[2], v[1] + v[3]];
                let distance = ours
                    .iter()
                    .filter(|d| d.class == class && (d.score - score).abs() < 1e-4)
                    .map(|d| {
                        [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2]
                            .iter()
                            .zip(want)
                            .map(|(g, w)| (g - w).abs())
                            .fold(0.0f32, f32::max)
                    })
                    .fold(f32::INFINITY, f32::min);
                assert!(
                    distance <= 0.5,
                    "{name} {id}: class {class} score {score} box {want:?}: nearest is {distance} px away"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 0, "no boxes compared");
    eprintln!("{checked} boxes within 0.5 px of the package's decoding");
}
