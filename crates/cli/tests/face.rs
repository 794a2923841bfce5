//! `convnet face` on face-api's demo photos (fetched by `scripts/fetch-pretrained.sh face-api`,
//! which CI runs): encodings, a gallery of people, verification and identification, and the
//! errors a user meets.

mod common;

use std::path::{Path, PathBuf};

use common::{convnet, face_api, json, s, stderr, stdout};
use image::RgbImage;
use serde_json::Value;

fn sample1() -> PathBuf {
    face_api("demo/sample1.jpg")
}

fn face(args: &[&str]) -> std::process::Output {
    let mut all = vec!["face"];
    all.extend_from_slice(args);
    convnet(&all)
}

/// Sample 1's faces (boxes as x1, y1, x2, y2), left to right.
fn boxes(encoded: &Value) -> Vec<[f32; 4]> {
    let mut b: Vec<[f32; 4]> = encoded["faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let b = &f["box"];
            ["x1", "y1", "x2", "y2"].map(|k| b[k].as_f64().unwrap() as f32)
        })
        .collect();
    b.sort_by(|a, b| a[0].total_cmp(&b[0]));
    b
}

/// A picture of one face: its box grown by 60 % on each side, cut from `picture`.
fn portrait(picture: &RgbImage, b: [f32; 4], path: &Path, mirror: bool) {
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    let x = (b[0] - 0.6 * w).max(0.0) as u32;
    let y = (b[1] - 0.6 * h).max(0.0) as u32;
    let cw = ((2.2 * w) as u32).min(picture.width() - x);
    let ch = ((2.2 * h) as u32).min(picture.height() - y);
    let mut crop = image::imageops::crop_imm(picture, x, y, cw, ch).to_image();
    if mirror {
        crop = image::imageops::flip_horizontal(&crop);
    }
    crop.save(path).unwrap();
}

#[test]
fn encode_reports_every_face_with_landmarks_and_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("faces.png");
    let v = json(&face(&["encode", &s(&sample1()), "--json", "-o", &s(&out)]));
    let faces = v["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 3, "{v}");
    for f in faces {
        assert_eq!(f["landmarks"].as_array().unwrap().len(), 68);
        let e: Vec<f64> = f["encoding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(e.len(), 128);
        assert!(e.iter().all(|x| x.is_finite()) && e.iter().any(|&x| x != 0.0));
        assert!(f["score"].as_f64().unwrap() >= 0.5);
    }
    assert_eq!(v["width"], 1920);
    assert!(image::open(&out).is_ok());
    // The human-readable form names the faces and prints the encodings.
    let text = face(&["encode", &s(&sample1())]);
    assert!(text.status.success(), "{}", stderr(&text));
    assert!(stdout(&text).contains("3 face(s)") && stdout(&text).contains("encoding:"));
}

#[test]
fn enrol_verify_identify_list_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let gallery = dir.path().join("people.sqlite");
    let g = s(&gallery);
    let picture = image::open(sample1()).unwrap().to_rgb8();
    let b = boxes(&json(&face(&["encode", &s(&sample1()), "--json"])));
    assert_eq!(b.len(), 3);
    let (left, middle) = (dir.path().join("left.png"), dir.path().join("middle.png"));
    let left_mirrored = dir.path().join("left-mirrored.png");
    portrait(&picture, b[0], &left, false);
    portrait(&picture, b[1], &middle, false);
    portrait(&picture, b[0], &left_mirrored, true);

    // Two people; the left one from two pictures.
    let v = json(&face(&[
        "enroll",
        "ann",
        &s(&left),
        &s(&left_mirrored),
        "--gallery",
        &g,
        "--json",
    ]));
    assert_eq!(v["encodings"], 2);
    json(&face(&[
        "enroll",
        "bea",
        &s(&middle),
        "--gallery",
        &g,
        "--json",
    ]));
    let v = json(&face(&["list", "--gallery", &g, "--json"]));
    let names: Vec<&str> = v["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ann", "bea"]);

    // 1:1 — the same face against its own name and against someone else's.
    let v = json(&face(&[
        "verify",
        &s(&left),
        "--as",
        "ann",
        "--gallery",
        &g,
        "--json",
    ]));
    assert_eq!(v["match"], true, "{v}");
    assert!(v["distance"].as_f64().unwrap() < 0.6);
    let v = json(&face(&[
        "verify",
        &s(&left),
        "--as",
        "bea",
        "--gallery",
        &g,
        "--json",
    ]));
    assert_eq!(v["match"], false, "{v}");
    assert!(v["distance"].as_f64().unwrap() >= 0.6);

    // 1:K — the group photo: ann, bea and one unknown person, drawn.
    let drawn = dir.path().join("named.png");
    let v = json(&face(&[
        "identify",
        &s(&sample1()),
        "--gallery",
        &g,
        "--json",
        "-o",
        &s(&drawn),
    ]));
    let mut found: Vec<(f64, Option<String>)> = v["faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["box"]["x1"].as_f64().unwrap(),
                f["name"].as_str().map(String::from),
            )
        })
        .collect();
    found.sort_by(|a, b| a.0.total_cmp(&b.0));
    let named: Vec<Option<&str>> = found.iter().map(|(_, n)| n.as_deref()).collect();
    assert_eq!(named, [Some("ann"), Some("bea"), None], "{v}");
    assert!(image::open(&drawn).is_ok());

    // Remove, then the name is unknown everywhere, with the known names listed.
    let v = json(&face(&["remove", "bea", "--gallery", &g, "--json"]));
    assert_eq!(v["removed"], 1);
    let out = face(&["verify", &s(&middle), "--as", "bea", "--gallery", &g]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("bea") && stderr(&out).contains("ann"),
        "{}",
        stderr(&out)
    );
    let out = face(&["remove", "bea", "--gallery", &g]);
    assert!(!out.status.success());
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let g = dir.path().join("g.sqlite");

    // No face: a plain grey picture.
    let blank = dir.path().join("blank.png");
    RgbImage::from_pixel(320, 240, image::Rgb([128, 128, 128]))
        .save(&blank)
        .unwrap();
    let out = face(&["encode", &s(&blank)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no face"), "{}", stderr(&out));

    // A corrupt picture.
    let corrupt = dir.path().join("corrupt.jpg");
    std::fs::write(&corrupt, b"\xff\xd8\xff\xe0 this is not really a JPEG").unwrap();
    let out = face(&["enroll", "x", &s(&corrupt), "--gallery", &s(&g)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("corrupt.jpg"), "{}", stderr(&out));
    assert!(
        !g.exists(),
        "a failed enrolment must not create the gallery"
    );

    // Three faces in an enrolment picture: refused unless --largest, nothing written.
    let out = face(&["enroll", "x", &s(&sample1()), "--gallery", &s(&g)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("3 faces"), "{}", stderr(&out));
    assert!(!g.exists());

    // A gallery file that is not a convnet gallery (here: a JPEG).
    let out = face(&["list", "--gallery", &s(&sample1())]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).to_lowercase().contains("gallery"),
        "{}",
        stderr(&out)
    );
    // A missing gallery.
    let out = face(&[
        "identify",
        &s(&sample1()),
        "--gallery",
        &s(&dir.path().join("none.sqlite")),
    ]);
    assert!(!out.status.success());

    // Bad thresholds.
    let out = face(&[
        "verify",
        &s(&sample1()),
        "--as",
        "x",
        "--threshold",
        "-1",
        "--gallery",
        &s(&g),
    ]);
    assert!(!out.status.success());
}
