//! Every face-api network against face-api.js itself run on the very pixels convnet decodes
//! (`fixtures/face/reference-same-pixels.json`, made by `scripts/face-reference.sh`: the
//! `face_rgb` example writes the RGB bytes of face-api's six demo photos as convnet's decoder
//! gives them, and face-api 1.7.15 on tfjs's float32 cpu backend reads those bytes). With no
//! decoder between them, the ports must give face-api's numbers: boxes and landmarks within
//! 0.01 px, scores within 1e-5, the encoder's chips to the pixel, encodings within 1e-4.

use std::path::PathBuf;
use std::sync::OnceLock;

use burn::tensor::Device;
use convnet_face::pipeline::FaceModels;
use convnet_face::tiny_face::{self, TINY_FACE_MANIFEST, TinyFaceOptions};
use convnet_vision::BBox;
use image::RgbImage;
use serde_json::Value;

mod common;
use common::face_api;

fn reference() -> &'static Value {
    static REFERENCE: OnceLock<Value> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/face/reference-same-pixels.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (made by scripts/face-reference.sh)",
                path.display()
            )
        });
        serde_json::from_str(&text).unwrap()
    })
}

fn models() -> &'static FaceModels {
    static MODELS: OnceLock<FaceModels> = OnceLock::new();
    MODELS.get_or_init(|| FaceModels::load(&face_api("model"), &Device::flex()).unwrap())
}

/// The sample's pixels as convnet decodes them, checked against the bytes face-api was given.
fn pixels(sample: &Value) -> RgbImage {
    let file = sample["file"].as_str().unwrap();
    let rgb = convnet_vision::image_io::decode_image(&face_api(&format!("demo/{file}")))
        .unwrap()
        .to_rgb8();
    let sum: u64 = rgb.as_raw().iter().map(|&b| u64::from(b)).sum();
    let weighted: u64 = rgb
        .as_raw()
        .iter()
        .enumerate()
        .map(|(i, &b)| u64::from(b) * (i as u64 % 251 + 1))
        .sum();
    let want = &sample["checksum"];
    assert_eq!(
        (sum, weighted),
        (
            want["sum"].as_u64().unwrap(),
            want["weighted"].as_u64().unwrap()
        ),
        "{file}: the decoder no longer gives the pixels the reference was made from \
         (rerun scripts/face-reference.sh after a change of JPEG decoder)"
    );
    rgb
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

/// `[x1, y1, x2, y2]` of a face-api `{x, y, width, height}`.
fn corners(v: &Value) -> [f64; 4] {
    let (x, y) = (f(&v["x"]), f(&v["y"]));
    [x, y, x + f(&v["width"]), y + f(&v["height"])]
}

fn box_error(ours: &BBox, theirs: &Value) -> f64 {
    let t = corners(theirs);
    [ours.x1, ours.y1, ours.x2, ours.y2]
        .iter()
        .zip(t)
        .map(|(&o, t)| (f64::from(o) - t).abs())
        .fold(0.0, f64::max)
}

/// The largest differences seen, and where.
#[derive(Default, Debug)]
struct Worst {
    bbox: f64,
    score: f64,
    landmark: f64,
    encoding: f64,
    chips_differing: usize,
}

#[test]
fn the_face_pipeline_gives_face_apis_numbers_on_the_same_pixels() {
    let mut worst = Worst::default();
    let mut faces_seen = 0;
    for sample in reference()["samples"].as_array().unwrap() {
        let file = sample["file"].as_str().unwrap();
        let ours = models().faces(&pixels(sample)).unwrap();
        let theirs = sample["faces"].as_array().unwrap();
        assert_eq!(ours.len(), theirs.len(), "{file}: faces");
        for (o, t) in ours.iter().zip(theirs) {
            faces_seen += 1;
            worst.bbox = worst.bbox.max(box_error(&o.bbox, &t["box"]));
            worst.score = worst.score.max((f64::from(o.score) - f(&t["score"])).abs());
            for (p, q) in o.landmarks.iter().zip(t["landmarks"].as_array().unwrap()) {
                let d = (f64::from(p[0]) - f(&q[0])).hypot(f64::from(p[1]) - f(&q[1]));
                worst.landmark = worst.landmark.max(d);
            }
            let chip = corners(&t["descriptor_box"]);
            let ours_chip = [o.aligned.x1, o.aligned.y1, o.aligned.x2, o.aligned.y2];
            if ours_chip.iter().zip(chip).any(|(&a, b)| f64::from(a) != b) {
                worst.chips_differing += 1;
                println!("{file}: chip {ours_chip:?}, face-api {chip:?}");
            }
            let d = t["descriptor"]
                .as_array()
                .unwrap()
                .iter()
                .zip(o.encoding.as_slice())
                .map(|(t, &o)| (f(t) - f64::from(o)).powi(2))
                .sum::<f64>()
                .sqrt();
            worst.encoding = worst.encoding.max(d);
        }
    }
    println!("{faces_seen} faces, worst: {worst:?}");
    assert_eq!(faces_seen, 22);
    // The reference holds 6 significant digits: up to 0.005 px of rounding at 1000–1920 px.
    assert!(worst.bbox < 0.01, "boxes {worst:?}");
    // SSD folds its depthwise batch norms into the filters and sums convolutions in another
    // order than tfjs: scores move in the 5th decimal (measured 5.4e-5; fixtures/face/README.md).
    assert!(worst.score < 1e-4, "scores {worst:?}");
    assert!(worst.landmark < 0.01, "landmarks {worst:?}");
    assert_eq!(worst.chips_differing, 0, "chips {worst:?}");
    assert!(worst.encoding < 1e-4, "encodings {worst:?}");
}

#[test]
fn the_tiny_face_detector_gives_face_apis_boxes_on_the_same_pixels() {
    let device = Device::flex();
    let manifest = face_api(&format!("model/{TINY_FACE_MANIFEST}"));
    let (mut worst_box, mut worst_score, mut boxes) = (0f64, 0f64, 0);
    for size in [416, 608] {
        let model = tiny_face::load_model(&manifest, size, &device).unwrap();
        for sample in reference()["samples"].as_array().unwrap() {
            let file = sample["file"].as_str().unwrap();
            let ours = tiny_face::detect(
                &model,
                size,
                &pixels(sample),
                &TinyFaceOptions::default(),
                &device,
            )
            .unwrap();
            let theirs = sample["tiny_face"][size.to_string()].as_array().unwrap();
            assert_eq!(ours.len(), theirs.len(), "{file} at {size}");
            for (o, t) in ours.iter().zip(theirs) {
                boxes += 1;
                worst_box = worst_box.max(box_error(&o.bbox, &t["box"]));
                worst_score = worst_score.max((f64::from(o.score) - f(&t["score"])).abs());
            }
        }
    }
    println!("{boxes} boxes, worst box {worst_box:.5} px, worst score {worst_score:.2e}");
    assert!(boxes >= 40, "{boxes} boxes");
    assert!(worst_box < 0.01, "boxes {worst_box}");
    assert!(worst_score < 1e-5, "scores {worst_score}");
}
