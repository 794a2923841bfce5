//! face-api.js's SSD-MobileNetV1 face detector on the package's own photos (fetched by
//! `scripts/fetch-pretrained.sh face-api`, which CI runs).
//!
//! The faces were counted by eye, and the detections drawn and looked at: every face of the six
//! photos is found at the default options, and nothing else. Set `CONVNET_SSD_DRAW=<folder>` to
//! write the pictures with their boxes drawn.
//!
//! face-api.js's own outputs (`fixtures/face/reference.json`) check the port: the raw network on
//! a synthetic picture (no JPEG decoder involved) to float rounding, and the detections on the
//! photos to the tolerance that two JPEG decoders leave (IoU ≥ 0.9, scores within 0.02).

use std::path::PathBuf;
use std::sync::OnceLock;

use burn::tensor::{Device, Tensor};
use convnet_face::FaceError;
use convnet_face::detector::{FaceBox, SsdMobilenetV1, SsdOptions};
use image::{Rgb, RgbImage};
use serde_json::Value;

mod common;
use common::{face_api, reference};

fn detector() -> &'static SsdMobilenetV1 {
    static NET: OnceLock<SsdMobilenetV1> = OnceLock::new();
    NET.get_or_init(|| {
        SsdMobilenetV1::load(
            &face_api("model/ssd_mobilenetv1_model-weights_manifest.json"),
            &Device::flex(),
        )
        .unwrap()
    })
}

fn sample(i: usize) -> RgbImage {
    image::open(face_api(&format!("demo/sample{i}.jpg")))
        .unwrap()
        .to_rgb8()
}

/// The centre of every face in each photo (pixels, by eye on the drawn detections; the boxes
/// are 145–220 pixels wide, so a centre off by a few pixels still falls inside its box).
const FACES: [&[(f32, f32)]; 6] = [
    // sample1: three women at a bar.
    &[(503.0, 475.0), (931.0, 535.0), (1578.0, 320.0)],
    // sample2: three women on a sofa, two looking down, the left one in profile.
    &[(1544.0, 275.0), (977.0, 336.0), (437.0, 256.0)],
    // sample3: three women on a leather bench.
    &[(685.0, 465.0), (1599.0, 431.0), (1186.0, 364.0)],
    // sample4: four women standing, one half turned away.
    &[
        (758.0, 182.0),
        (338.0, 308.0),
        (1073.0, 294.0),
        (1349.0, 266.0),
    ],
    // sample5: five women on a staircase.
    &[
        (865.0, 215.0),
        (1192.0, 316.0),
        (681.0, 539.0),
        (1489.0, 525.0),
        (463.0, 1010.0),
    ],
    // sample6: four women by a window.
    &[
        (761.0, 474.0),
        (1275.0, 445.0),
        (1593.0, 411.0),
        (355.0, 613.0),
    ],
];

fn draw(i: usize, image: &RgbImage, faces: &[FaceBox]) {
    let Some(dir) = std::env::var_os("CONVNET_SSD_DRAW") else {
        return;
    };
    let mut out = image.clone();
    for f in faces {
        let label = format!("{:.2}", f.score);
        convnet_vision::draw::draw_box(&mut out, &f.bbox, &label, Rgb([0, 255, 0]), 4);
    }
    let path = PathBuf::from(dir).join(format!("ssd_sample{i}.png"));
    out.save(&path).unwrap();
    println!("wrote {}", path.display());
}

fn check_sample(i: usize) {
    let image = sample(i);
    let (w, h) = (image.width() as f32, image.height() as f32);
    let faces = detector().detect(&image, &SsdOptions::default()).unwrap();
    println!("sample{i}.jpg ({w}x{h}): {} faces", faces.len());
    for f in &faces {
        let b = f.bbox;
        println!(
            "  score {:.4}  x {:.1}..{:.1}  y {:.1}..{:.1}  ({:.0}x{:.0})",
            f.score,
            b.x1,
            b.x2,
            b.y1,
            b.y2,
            b.width(),
            b.height()
        );
    }
    draw(i, &image, &faces);
    let expected = FACES[i - 1];
    assert_eq!(faces.len(), expected.len(), "sample{i}: {faces:#?}");
    for (k, f) in faces.iter().enumerate() {
        let b = f.bbox;
        assert!(f.score > 0.5 && f.score <= 1.0, "sample{i}: {f:?}");
        if k > 0 {
            assert!(faces[k - 1].score >= f.score, "not best first: {faces:?}");
        }
        assert!(
            b.x1 >= 0.0 && b.y1 >= 0.0 && b.x2 <= w && b.y2 <= h,
            "sample{i}: {b:?} leaves the {w}x{h} picture"
        );
        // A face in these group photos: 5–15 % of the width, a little taller than wide.
        assert!(
            b.width() > 0.05 * w && b.width() < 0.15 * w,
            "sample{i}: {b:?}"
        );
        let aspect = b.height() / b.width();
        assert!((1.0..2.0).contains(&aspect), "sample{i}: {b:?}");
        // Exactly one of the faces looked at is inside this box.
        let inside = expected
            .iter()
            .filter(|&&(x, y)| b.x1 <= x && x <= b.x2 && b.y1 <= y && y <= b.y2)
            .count();
        assert_eq!(inside, 1, "sample{i}: box {b:?} holds {inside} faces");
    }
    // And every face looked at is in some box.
    for &(x, y) in expected {
        assert!(
            faces
                .iter()
                .any(|f| f.bbox.x1 <= x && x <= f.bbox.x2 && f.bbox.y1 <= y && y <= f.bbox.y2),
            "sample{i}: the face at ({x}, {y}) was missed: {faces:#?}"
        );
    }
}

#[test]
fn sample1_three_faces() {
    check_sample(1);
}

#[test]
fn sample2_three_faces() {
    check_sample(2);
}

#[test]
fn sample3_three_faces() {
    check_sample(3);
}

#[test]
fn sample4_four_faces() {
    check_sample(4);
}

#[test]
fn sample5_five_faces() {
    check_sample(5);
}

#[test]
fn sample6_four_faces() {
    check_sample(6);
}

#[test]
fn forward_gives_5118_boxes_and_scores_per_image_of_a_batch() {
    let net = detector();
    assert_eq!(net.input_size(), 512);
    let one = net.preprocess(&sample(1));
    assert_eq!(one.dims(), [1, 3, 512, 512]);
    let grey = Tensor::<4>::zeros([1, 3, 512, 512], &Device::flex());
    let (boxes, scores) = net.forward(Tensor::cat(vec![one.clone(), grey], 0));
    assert_eq!(boxes.dims(), [2, 5118, 4]);
    assert_eq!(scores.dims(), [2, 5118]);
    // The first image of the batch gives what it gives alone.
    let (alone_boxes, alone_scores) = net.forward(one);
    let first = |t: Tensor<2>| t.narrow(0, 0, 1).into_data().try_to_vec::<f32>().unwrap();
    let (a, b) = (first(scores.clone()), first(alone_scores));
    assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-4));
    let a = boxes
        .narrow(0, 0, 1)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let b = alone_boxes.into_data().try_to_vec::<f32>().unwrap();
    assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-4));
    // Scores are probabilities; a uniform grey picture has no face.
    let grey = scores
        .narrow(0, 1, 1)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(grey.iter().all(|s| (0.0..=1.0).contains(s)));
    assert!(grey.iter().all(|&s| s < 0.5), "a face in a grey picture");
}

#[test]
fn options_and_pictures_out_of_range_are_refused() {
    let net = detector();
    let empty = RgbImage::new(0, 0);
    let err = net.detect(&empty, &SsdOptions::default()).unwrap_err();
    assert!(matches!(err, FaceError::Input(_)), "{err}");
    let image = RgbImage::from_pixel(64, 48, Rgb([128, 128, 128]));
    for options in [
        SsdOptions {
            min_confidence: 1.0,
            ..SsdOptions::default()
        },
        SsdOptions {
            iou_threshold: 0.0,
            ..SsdOptions::default()
        },
    ] {
        let err = net.detect(&image, &options).unwrap_err();
        assert!(matches!(err, FaceError::Input(_)), "{err}");
    }
    // A small flat picture is fine, and has no face.
    assert!(
        net.detect(&image, &SsdOptions::default())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn fewer_results_and_a_lower_threshold_behave() {
    let net = detector();
    let image = sample(5);
    let all = net.detect(&image, &SsdOptions::default()).unwrap();
    let two = net
        .detect(
            &image,
            &SsdOptions {
                max_results: 2,
                ..SsdOptions::default()
            },
        )
        .unwrap();
    assert_eq!(two, all[..2]);
    let lower = net
        .detect(
            &image,
            &SsdOptions {
                min_confidence: 0.1,
                ..SsdOptions::default()
            },
        )
        .unwrap();
    assert!(lower.len() >= all.len());
    assert_eq!(lower[..all.len()], all[..]);
}

#[test]
fn another_models_manifest_is_refused_by_name() {
    let err = match SsdMobilenetV1::load(
        &face_api("model/tiny_face_detector_model-weights_manifest.json"),
        &Device::flex(),
    ) {
        Ok(_) => panic!("the tiny face detector's weights loaded as SSD-MobileNetV1"),
        Err(e) => e,
    };
    assert!(
        matches!(&err, FaceError::MissingWeight { name, .. } if name.starts_with("MobilenetV1.")),
        "{err}"
    );
    assert!(err.to_string().contains("right model"), "{err}");
}

// ---------- face-api.js itself (fixtures/face/reference.json, made by
// fixtures/face/make_reference.mjs: face-api 1.7.15 on tfjs 4.22's float32 cpu backend) ----------

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// The reference's synthetic picture: `floor(127.5 + 127.5 sin(0.05 x (c + 1) + 0.07 y + 0.3 c))`
/// in float64, with its checksums.
fn synthetic(size: u32) -> (RgbImage, u64, u64) {
    let mut image = RgbImage::new(size, size);
    let (mut sum, mut weighted) = (0u64, 0u64);
    for y in 0..size {
        for x in 0..size {
            let mut p = [0u8; 3];
            for (c, v) in p.iter_mut().enumerate() {
                let angle =
                    0.05 * f64::from(x) * (c as f64 + 1.0) + 0.07 * f64::from(y) + 0.3 * c as f64;
                *v = (127.5 + 127.5 * angle.sin()).floor() as u8;
                let i = (u64::from(y) * u64::from(size) + u64::from(x)) * 3 + c as u64;
                sum += u64::from(*v);
                weighted += u64::from(*v) * ((i % 251) + 1);
            }
            image.put_pixel(x, y, Rgb(p));
        }
    }
    (image, sum, weighted)
}

#[test]
fn the_network_matches_face_api_on_the_synthetic_picture() {
    let want = &reference()["synthetic"]["ssd_512"];
    let (image, sum, weighted) = synthetic(512);
    assert_eq!(sum, want["input"]["sum"].as_u64().unwrap());
    assert_eq!(weighted, want["input"]["weighted"].as_u64().unwrap());
    let net = detector();
    let (boxes, scores) = net.forward(net.preprocess(&image));
    assert_eq!(want["num_anchors"].as_u64().unwrap(), 5118);
    let boxes = boxes.into_data().try_to_vec::<f32>().unwrap();
    let scores = scores.into_data().try_to_vec::<f32>().unwrap();
    let (mut worst_box, mut worst_score) = (0.0f32, 0.0f32);
    for list in ["first", "top"] {
        for e in want[list].as_array().unwrap() {
            let i = e["index"].as_u64().unwrap() as usize;
            let b = floats(&e["box"]);
            for (k, v) in b.iter().enumerate() {
                worst_box = worst_box.max((boxes[i * 4 + k] - v).abs());
            }
            worst_score = worst_score.max((scores[i] - e["score"].as_f64().unwrap() as f32).abs());
        }
    }
    println!("largest difference from face-api: box {worst_box:e}, score {worst_score:e}");
    assert!(
        worst_box < 2e-4,
        "boxes differ from face-api by {worst_box}"
    );
    assert!(
        worst_score < 5e-5,
        "scores differ from face-api by {worst_score}"
    );
    // The reference's ten best anchors are ours too, in the same order.
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let top: Vec<usize> = want["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap() as usize)
        .collect();
    assert_eq!(order[..top.len()], top[..]);
}

#[test]
fn the_detections_match_face_api_on_the_samples() {
    let samples = reference()["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 6);
    let net = detector();
    for s in samples {
        let file = s["file"].as_str().unwrap();
        let image = image::open(face_api(&format!("demo/{file}")))
            .unwrap()
            .to_rgb8();
        assert_eq!(u64::from(image.width()), s["width"].as_u64().unwrap());
        assert_eq!(u64::from(image.height()), s["height"].as_u64().unwrap());
        let ours = net.detect(&image, &SsdOptions::default()).unwrap();
        let theirs = s["ssd"].as_array().unwrap();
        assert_eq!(ours.len(), theirs.len(), "{file}: {ours:#?}");
        for t in theirs {
            let b = &t["box"];
            let num = |k: &str| b[k].as_f64().unwrap() as f32;
            let want = convnet_vision::boxes::BBox::from_xywh(
                num("x"),
                num("y"),
                num("width"),
                num("height"),
            )
            .unwrap();
            let score = t["score"].as_f64().unwrap() as f32;
            let (iou, found) = ours
                .iter()
                .map(|f| (f.bbox.iou(&want), f))
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .unwrap();
            println!(
                "{file}: face-api {score:.4} {want:?}\n    ours {:.4} {:?}  IoU {iou:.4}",
                found.score, found.bbox
            );
            assert!(
                iou >= 0.9,
                "{file}: face-api's {want:?} best matches {found:?}, IoU {iou}"
            );
            assert!(
                (found.score - score).abs() <= 0.02,
                "{file}: score {} vs face-api's {score}",
                found.score
            );
        }
    }
}
