//! face-api.js's landmark and recognition networks over their real TF.js weights
//! (`third_party/face-api`, fetched by `scripts/fetch-pretrained.sh face-api`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use convnet_face::FaceError;
use convnet_face::landmarks::{FaceLandmark68Net, Landmarks68};
use convnet_face::recognition::{ENCODING_SIZE, Encoding, FaceRecognitionNet, residual_down_merge};
use convnet_weights::read_tfjs;
use image::RgbImage;
use image::imageops::{self, FilterType};

mod common;
use common::{face_api, reference};

fn landmark_manifest() -> PathBuf {
    face_api("model/face_landmark_68_model-weights_manifest.json")
}

fn recognition_manifest() -> PathBuf {
    face_api("model/face_recognition_model-weights_manifest.json")
}

fn landmark_net() -> FaceLandmark68Net {
    FaceLandmark68Net::load(&landmark_manifest(), &Device::flex()).unwrap()
}

fn recognition_net() -> FaceRecognitionNet {
    FaceRecognitionNet::load(&recognition_manifest(), &Device::flex()).unwrap()
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

/// The number of values a manifest lists (shape products, before any conversion).
fn manifest_values(path: &Path) -> usize {
    let groups: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    groups
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["weights"].as_array().unwrap())
        .map(|w| {
            w["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .product::<usize>()
        })
        .sum()
}

/// Every tensor of the manifest is used, none twice, none left over.
fn check_uses_every_tensor(manifest: &Path, names: &[String], num_values: usize) {
    let dict = read_tfjs(manifest).unwrap();
    let keys: BTreeSet<&str> = dict.keys().collect();
    let used: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(used.len(), names.len(), "a tensor is loaded twice");
    let unused: Vec<_> = keys.difference(&used).collect();
    let unknown: Vec<_> = used.difference(&keys).collect();
    assert!(
        unused.is_empty() && unknown.is_empty(),
        "unused {unused:?}, not in the file {unknown:?}"
    );
    assert_eq!(num_values, dict.num_values());
    assert_eq!(num_values, manifest_values(manifest));
}

#[test]
fn landmark_net_uses_every_weight_of_its_manifest() {
    let net = landmark_net();
    check_uses_every_tensor(&landmark_manifest(), net.weight_names(), net.num_values());
    // 49 tensors: dense0 = conv + 3 separable (2 + 3·3), dense1..3 = 4 separable (12 each), fc.
    assert_eq!(net.weight_names().len(), 49);
    assert_eq!(net.num_values(), 356_840);
}

#[test]
fn recognition_net_uses_every_weight_of_its_manifest() {
    let net = recognition_net();
    check_uses_every_tensor(
        &recognition_manifest(),
        net.weight_names(),
        net.num_values(),
    );
    // 117 tensors: conv32_down (4) + 14 residual blocks × 2 conv layers × 4 + fc.
    assert_eq!(net.weight_names().len(), 117);
    assert_eq!(net.num_values(), 5_614_592);
}

#[test]
fn another_models_manifest_is_a_missing_weight() {
    let device = Device::flex();
    let err = FaceLandmark68Net::load(&recognition_manifest(), &device)
        .err()
        .unwrap();
    assert!(
        matches!(&err, FaceError::MissingWeight { name, .. } if name == "dense0.conv0.weight"),
        "{err}"
    );
    assert!(err.to_string().contains("right model's manifest"), "{err}");
    let err = FaceRecognitionNet::load(&landmark_manifest(), &device)
        .err()
        .unwrap();
    assert!(
        matches!(&err, FaceError::MissingWeight { name, .. } if name == "conv32_down.conv.weight"),
        "{err}"
    );
    let detector = face_api("model/ssd_mobilenetv1_model-weights_manifest.json");
    let err = FaceRecognitionNet::load(&detector, &device).err().unwrap();
    assert!(matches!(err, FaceError::MissingWeight { .. }), "{err}");
}

#[test]
fn empty_crops_are_input_errors() {
    let lm = landmark_net();
    let empty = RgbImage::new(0, 10);
    assert!(matches!(lm.detect(&empty), Err(FaceError::Input(_))));
    assert!(matches!(lm.preprocess(&[]), Err(FaceError::Input(_))));
    let rec = recognition_net();
    let ok = RgbImage::new(5, 5);
    assert!(matches!(
        rec.encode(&[ok, RgbImage::new(7, 0)]),
        Err(FaceError::Input(_))
    ));
    assert!(rec.encode(&[]).unwrap().is_empty());
    assert!(Encoding::new(vec![0.0; 3]).is_err());
}

#[test]
fn output_shapes() {
    let device = Device::flex();
    let lm = landmark_net();
    let y = lm.forward(Tensor::zeros([2, 3, 112, 112], &device));
    assert_eq!(y.dims(), [2, 136]);
    let rec = recognition_net();
    let y = rec.forward(Tensor::zeros([2, 3, 150, 150], &device));
    assert_eq!(y.dims(), [2, ENCODING_SIZE]);
    // See recognition.rs: 150 → 72 (7x7/2 valid) → 35 (3x3/2 max pool) → 17 → 8 → 4 → 2, the
    // last two residualDown blocks padding their main path (3 → 4, 1 → 2).
    let shapes = rec.stage_shapes(Tensor::zeros([1, 3, 150, 150], &device));
    assert_eq!(
        shapes,
        vec![
            ("conv32_down", [1, 32, 72, 72]),
            ("max_pool", [1, 32, 35, 35]),
            ("conv32", [1, 32, 35, 35]),
            ("conv64", [1, 64, 17, 17]),
            ("conv128", [1, 128, 8, 8]),
            ("conv256", [1, 256, 4, 4]),
            ("conv256_out", [1, 256, 2, 2]),
        ]
    );
}

/// A small deterministic generator of values in [-1, 1).
fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// `residualDown`'s shortcut and sum written as loops: 2x2 stride-2 average pool, zero channels
/// after the pooled ones, the main path's missing bottom rows / right columns as zeros, relu.
fn naive_down_merge(
    input: &[f32],
    [n, c, h, w]: [usize; 4],
    main: &[f32],
    [_, mc, mh, mw]: [usize; 4],
) -> (Vec<f32>, [usize; 4]) {
    let (ph, pw) = ((h - 2) / 2 + 1, (w - 2) / 2 + 1);
    let mut out = vec![0.0; n * mc * ph * pw];
    for b in 0..n {
        for ch in 0..mc {
            for i in 0..ph {
                for j in 0..pw {
                    let mut shortcut = 0.0;
                    if ch < c {
                        for dy in 0..2 {
                            for dx in 0..2 {
                                shortcut += input[((b * c + ch) * h + 2 * i + dy) * w + 2 * j + dx];
                            }
                        }
                        shortcut /= 4.0;
                    }
                    let m = if i < mh && j < mw {
                        main[((b * mc + ch) * mh + i) * mw + j]
                    } else {
                        0.0
                    };
                    out[((b * mc + ch) * ph + i) * pw + j] = f32::max(shortcut + m, 0.0);
                }
            }
        }
    }
    (out, [n, mc, ph, pw])
}

#[test]
fn residual_down_shortcut_matches_a_loop() {
    let device = Device::flex();
    // (input, main): even input (main one pixel short, padded), odd input (same size), the
    // network's last block (4 → pool 2, main 1), and one without new channels.
    let cases = [
        ([2, 3, 8, 8], [2, 6, 3, 3]),
        ([1, 4, 7, 7], [1, 8, 3, 3]),
        ([2, 2, 4, 4], [2, 4, 1, 1]),
        ([1, 5, 6, 6], [1, 5, 2, 2]),
    ];
    for (k, (is, ms)) in cases.into_iter().enumerate() {
        let input = random(is.iter().product(), 2 * k as u64 + 1);
        let main = random(ms.iter().product(), 2 * k as u64 + 2);
        let (want, shape) = naive_down_merge(&input, is, &main, ms);
        let got = residual_down_merge(
            Tensor::from_data(TensorData::new(input, is), &device),
            Tensor::from_data(TensorData::new(main, ms), &device),
        );
        assert_eq!(got.dims(), shape, "case {k}");
        let got = to_vec(got);
        let diff = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 1e-6, "case {k}: max diff {diff}");
        assert!(want.iter().any(|&v| v > 0.0) && want.contains(&0.0));
    }
}

// ---------- real photos ----------

fn sample(k: usize) -> RgbImage {
    image::open(face_api(&format!("demo/sample{k}.jpg")))
        .unwrap()
        .to_rgb8()
}

/// Faces picked by eye, `(x, y, width, height)`. sample1.jpg (1920x1280) holds three women
/// side by side; LEFT_FACE (clown make-up, near frontal) is the main test face.
const LEFT_FACE: (u32, u32, u32, u32) = (385, 365, 240, 250);
const MIDDLE_FACE: (u32, u32, u32, u32) = (820, 400, 220, 240);
const RIGHT_FACE: (u32, u32, u32, u32) = (1440, 190, 250, 260);
/// Clearly different people from LEFT_FACE: the woman at the top of the stairs in sample5.jpg
/// and the second woman from the left in sample6.jpg.
const SAMPLE5_TOP_FACE: (u32, u32, u32, u32) = (755, 85, 225, 255);
const SAMPLE6_SECOND_FACE: (u32, u32, u32, u32) = (625, 325, 260, 290);

fn crop(img: &RgbImage, (x, y, w, h): (u32, u32, u32, u32)) -> RgbImage {
    imageops::crop_imm(img, x, y, w, h).to_image()
}

/// The points lie in the crop, the eyes above the nose above the mouth, the left eye left of
/// the right one. For a tilted head (`upright = false`) only the eyes' midpoint has to be above
/// the nose: one eye may drop to the nose's height.
fn check_face_layout(lm: &Landmarks68, crop: &RgbImage, what: &str, upright: bool) {
    assert_eq!(lm.points.len(), 68);
    let (w, h) = (crop.width() as f32, crop.height() as f32);
    for (i, p) in lm.points.iter().enumerate() {
        assert!(
            (0.0..=w).contains(&p[0]) && (0.0..=h).contains(&p[1]),
            "{what}: landmark {i} {p:?} outside the {w}x{h} crop"
        );
    }
    let (le, re) = (lm.left_eye_centre(), lm.right_eye_centre());
    let nose = lm.nose_centre();
    let mouth = lm.mouth_centre();
    eprintln!(
        "{what}: left eye {le:?}, right eye {re:?}, nose {nose:?}, mouth {mouth:?}, bounds {:?}",
        lm.bounds()
    );
    if upright {
        assert!(
            le[1] < nose[1] && re[1] < nose[1],
            "{what}: eyes not above the nose"
        );
    }
    assert!(
        (le[1] + re[1]) / 2.0 < nose[1],
        "{what}: eyes not above the nose"
    );
    assert!(nose[1] < mouth[1], "{what}: nose not above the mouth");
    assert!(le[0] < re[0], "{what}: left eye not left of the right eye");
    // The groups are the documented slices.
    assert_eq!(lm.jaw().len(), 17);
    assert_eq!(lm.nose().len(), 9);
    assert_eq!(lm.mouth().len(), 20);
    assert_eq!(lm.left_eye()[0], lm.points[36]);
    assert_eq!(lm.right_eye()[5], lm.points[47]);
}

#[test]
fn landmarks_on_real_faces() {
    let net = landmark_net();
    let img = sample(1);
    // The right face leans its head to one side.
    for (name, b, upright) in [
        ("left face", LEFT_FACE, true),
        ("right face", RIGHT_FACE, false),
    ] {
        let c = crop(&img, b);
        let lm = net.detect(&c).unwrap();
        check_face_layout(&lm, &c, name, upright);
        // Mapped back to the picture, the points lie in the face box.
        let whole = lm.translate(b.0 as f32, b.1 as f32);
        let [x0, y0, x1, y1] = whole.bounds();
        assert!(x0 >= b.0 as f32 && y0 >= b.1 as f32);
        assert!(x1 <= (b.0 + b.2) as f32 && y1 <= (b.1 + b.3) as f32);
        // serde round trip
        let json = serde_json::to_string(&lm).unwrap();
        assert_eq!(serde_json::from_str::<Landmarks68>(&json).unwrap(), lm);
    }
    // A non-square crop: the batch path and the padding removal agree with the single path.
    let wide = crop(
        &img,
        (LEFT_FACE.0 - 40, LEFT_FACE.1, LEFT_FACE.2 + 80, LEFT_FACE.3),
    );
    let batch = net
        .detect_batch(&[wide.clone(), crop(&img, LEFT_FACE)])
        .unwrap();
    let single = net.detect(&wide).unwrap();
    check_face_layout(&single, &wide, "wide left face", true);
    for (a, b) in batch[0].points.iter().zip(&single.points) {
        assert!((a[0] - b[0]).abs() < 1e-3 && (a[1] - b[1]).abs() < 1e-3);
    }
    // The same face in the wide crop sits 40 px further right: its landmarks agree with the
    // square crop's, shifted, to within a few pixels on average (the network sees the face
    // smaller in the wide crop, so the points move a little, the jaw most).
    let shifted = batch[1].translate(40.0, 0.0);
    let gaps: Vec<f32> = shifted
        .points
        .iter()
        .zip(&batch[0].points)
        .map(|(a, b)| (a[0] - b[0]).hypot(a[1] - b[1]))
        .collect();
    let mean = gaps.iter().sum::<f32>() / gaps.len() as f32;
    let worst = gaps.iter().copied().fold(0.0f32, f32::max);
    eprintln!("wide vs square crop: landmark distance mean {mean:.2} px, worst {worst:.2} px");
    assert!(mean < 8.0 && worst < 25.0, "{mean} {worst}");
}

#[test]
fn encodings_of_real_faces() {
    let net = recognition_net();
    let img = sample(1);
    let left = crop(&img, LEFT_FACE);
    let mirror = imageops::flip_horizontal(&left);
    let small = imageops::resize(
        &left,
        (left.width() as f32 * 0.7).round() as u32,
        (left.height() as f32 * 0.7).round() as u32,
        FilterType::Triangle,
    );
    let other5 = crop(&sample(5), SAMPLE5_TOP_FACE);
    let other6 = crop(&sample(6), SAMPLE6_SECOND_FACE);
    let middle = crop(&img, MIDDLE_FACE);
    let right = crop(&img, RIGHT_FACE);
    let e = net
        .encode(&[left.clone(), mirror, small, other5, other6, middle, right])
        .unwrap();
    assert_eq!(e.len(), 7);
    assert!(e.iter().all(|v| v.0.len() == ENCODING_SIZE));
    let d = |a: usize, b: usize| e[a].distance(&e[b]);
    let (mirror_d, small_d) = (d(0, 1), d(0, 2));
    let (l5, l6, d56) = (d(0, 3), d(0, 4), d(3, 4));
    eprintln!(
        "left face vs its mirror {mirror_d:.4}, vs 0.7x {small_d:.4}; vs sample5 top {l5:.4}, \
         vs sample6 second {l6:.4}; sample5 top vs sample6 second {d56:.4}; \
         sample1 left-middle {:.4}, left-right {:.4}, middle-right {:.4}",
        d(0, 5),
        d(0, 6),
        d(5, 6)
    );
    assert!(mirror_d < 0.6, "{mirror_d}");
    assert!(small_d < 0.6, "{small_d}");
    assert!(l5 > 0.6 && l6 > 0.6 && d56 > 0.6, "{l5} {l6} {d56}");
    // Batched and one-by-one encodings agree; the distance is symmetric and zero on itself.
    let one = net.encode_one(&left).unwrap();
    assert!(one.distance(&e[0]) < 1e-4, "{}", one.distance(&e[0]));
    assert_eq!(d(1, 3), d(3, 1));
    assert_eq!(d(2, 2), 0.0);
    let json = serde_json::to_string(&e[0]).unwrap();
    assert_eq!(serde_json::from_str::<Encoding>(&json).unwrap(), e[0]);
}

// ---------- face-api.js itself (fixtures/face/reference.json) ----------

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// make_reference.mjs's synthetic picture:
/// `v(y, x, c) = floor(127.5 + 127.5 * sin(0.05 * x * (c + 1) + 0.07 * y + 0.3 * c))`,
/// checked against the checksums the reference recorded.
fn synthetic(input: &serde_json::Value) -> RgbImage {
    let h = input["height"].as_u64().unwrap() as u32;
    let w = input["width"].as_u64().unwrap() as u32;
    let mut img = RgbImage::new(w, h);
    let (mut sum, mut weighted) = (0u64, 0u64);
    for y in 0..h {
        for x in 0..w {
            let mut px = [0u8; 3];
            for c in 0..3 {
                let a = 0.05 * f64::from(x) * f64::from(c + 1)
                    + 0.07 * f64::from(y)
                    + 0.3 * f64::from(c);
                let v = (127.5 + 127.5 * a.sin()).floor() as u64;
                let i = u64::from((y * w + x) * 3 + c);
                sum += v;
                weighted += v * ((i % 251) + 1);
                px[c as usize] = v as u8;
            }
            img.put_pixel(x, y, image::Rgb(px));
        }
    }
    assert_eq!(sum, input["sum"].as_u64().unwrap());
    assert_eq!(weighted, input["weighted"].as_u64().unwrap());
    img
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn landmark_net_matches_face_api_on_the_synthetic_picture() {
    let r = reference();
    let entry = &r["synthetic"]["landmark_raw_112"];
    let img = synthetic(&entry["input"]);
    let net = landmark_net();
    let got = to_vec(net.forward(net.preprocess(&[img]).unwrap()));
    let want = floats(&entry["values"]);
    let diff = max_abs_diff(&got, &want);
    eprintln!("landmark net vs face-api: max abs diff {diff:e} over 136 values");
    assert!(diff <= 1e-3, "{diff}");
}

#[test]
fn recognition_net_matches_face_api_on_the_synthetic_picture() {
    let r = reference();
    let entry = &r["synthetic"]["descriptor_150"];
    let img = synthetic(&entry["input"]);
    let net = recognition_net();
    let got = net.encode(&[img]).unwrap().remove(0);
    let want = floats(&entry["values"]);
    let diff = max_abs_diff(&got.0, &want);
    eprintln!(
        "recognition net vs face-api: max abs diff {diff:e} over 128 values, distance {}",
        got.distance(&Encoding(want.clone()))
    );
    assert!(diff <= 2e-3, "{diff}");
}

fn rect(v: &serde_json::Value) -> (u32, u32, u32, u32) {
    let f = |k: &str| v[k].as_u64().unwrap() as u32;
    (f("x"), f("y"), f("width"), f("height"))
}

/// face-api's own crops of the demo faces (its SSD detection box for the landmarks, its dlib
/// alignment box for the descriptor), run through our networks. The pictures are decoded by
/// different JPEG decoders (the `image` crate here, jpeg-js there: here every channel's mean
/// comes out about 0.45 higher), so this agrees less tightly than the synthetic picture does.
#[test]
fn sample_faces_match_face_api() {
    let r = reference();
    let (lm_net, rec_net) = (landmark_net(), recognition_net());
    let (mut worst_px, mut worst_rel, mut worst_d, mut worst_dd) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
    for s in r["samples"].as_array().unwrap() {
        let file = s["file"].as_str().unwrap();
        let k: usize = file["sample".len()..file.len() - 4].parse().unwrap();
        let img = sample(k);
        let mean = floats(&s["decoded_mean_rgb"]);
        let n = f64::from(img.width() * img.height());
        let ours: Vec<f32> = (0..3)
            .map(|c| (img.pixels().map(|p| f64::from(p.0[c])).sum::<f64>() / n) as f32)
            .collect();
        eprintln!("{file}: decoded mean rgb ours {ours:?}, jpeg-js {mean:?}");
        assert!(
            max_abs_diff(&ours, &mean) < 1.0,
            "{file}: not the same picture?"
        );
        for (i, f) in s["faces"].as_array().unwrap().iter().enumerate() {
            let b = rect(&f["landmark_crop"]);
            let c = crop(&img, b);
            let lm = lm_net.detect(&c).unwrap();
            let want: Vec<[f32; 2]> = f["landmarks_in_crop"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    let p = floats(p);
                    [p[0], p[1]]
                })
                .collect();
            let px = lm
                .points
                .iter()
                .zip(&want)
                .map(|(a, b)| (a[0] - b[0]).hypot(a[1] - b[1]))
                .fold(0.0f32, f32::max);
            let rel = px / b.2.max(b.3) as f32;
            let d = rec_net
                .encode_one(&crop(&img, rect(&f["descriptor_crop"])))
                .unwrap();
            let want_d = Encoding(floats(&f["descriptor"]));
            let dist = d.distance(&want_d);
            let dd = max_abs_diff(&d.0, &want_d.0);
            eprintln!(
                "{file} face {i}: landmarks max {px:.3} px ({rel:.5} of the crop), descriptor distance {dist:.5}, max abs diff {dd:.5}"
            );
            worst_px = worst_px.max(px);
            worst_rel = worst_rel.max(rel);
            worst_d = worst_d.max(dist);
            worst_dd = worst_dd.max(dd);
        }
    }
    eprintln!(
        "worst: {worst_px:.3} px ({worst_rel:.5}), distance {worst_d:.5}, max abs diff {worst_dd:.5}"
    );
    assert!(worst_px < 2.0, "landmarks {worst_px} px from face-api's");
    assert!(worst_d < 0.05, "descriptor {worst_d} from face-api's");
}
