//! Detection tools without pretrained weights: `convnet eval-detections` on the pycocotools-checked
//! fixture, `convnet anchors`, darknet cfg summaries, and bad input.

mod common;

use std::path::{Path, PathBuf};

use common::{convnet, json, s, stderr};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/detection")
        .join(name)
}

#[test]
fn reports_coco_and_voc_map() {
    let gt = s(&fixture("gt.json"));
    let pred = s(&fixture("pred.json"));
    let r = json(&convnet(&[
        "eval-detections",
        "--gt",
        &gt,
        "--pred",
        &pred,
        "--json",
    ]));
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap();
    let close = |a: &Value, b: &Value| (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-9;
    assert!(close(&r["coco"]["map"], &expected["coco"]["map"]), "{r:#}");
    assert!(close(&r["coco"]["map50"], &expected["coco"]["map50"]));
    assert!(close(&r["voc"]["map"], &expected["voc_allpoint"]["mean"]));
    assert!(close(
        &r["voc"]["map_11point"],
        &expected["voc_11point"]["mean"]
    ));
    assert_eq!(r["per_class"][0]["name"], "shirt");
    // A perfect submission: the ground truth itself, every box with score 1.
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("gt.json")).unwrap()).unwrap();
    let perfect: Vec<Value> = truth["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            serde_json::json!({"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0})
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("perfect.json");
    std::fs::write(&path, serde_json::to_string(&perfect).unwrap()).unwrap();
    let r = json(&convnet(&[
        "eval-detections",
        "--gt",
        &gt,
        "--pred",
        &s(&path),
        "--json",
    ]));
    assert!((r["coco"]["map"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    assert!((r["voc"]["map"].as_f64().unwrap() - 1.0).abs() < 1e-9);
}

#[test]
fn bad_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let gt = s(&fixture("gt.json"));
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        s(&p)
    };
    let good_gt = r#"{"images": [{"id": 1, "width": 100, "height": 80}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 10, 20, 20]}],
        "categories": [{"id": 3, "name": "bag"}]}"#;
    let cases = [
        (gt.clone(), write("empty.json", "[]"), "no detections"),
        (
            gt.clone(),
            write("broken.json", "[{\"image_id\": 1,"),
            "not COCO results",
        ),
        (
            gt.clone(),
            write(
                "img.json",
                r#"[{"image_id": 999, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5}]"#,
            ),
            "image 999",
        ),
        (
            gt.clone(),
            write(
                "neg.json",
                r#"[{"image_id": 1, "category_id": 1, "bbox": [0, 0, -5, 5], "score": 0.5}]"#,
            ),
            "negative width",
        ),
        (
            write(
                "gt-cat.json",
                &good_gt.replace("\"category_id\": 3", "\"category_id\": 4"),
            ),
            write(
                "p1.json",
                r#"[{"image_id": 1, "category_id": 3, "bbox": [0, 0, 5, 5], "score": 0.5}]"#,
            ),
            "category 4",
        ),
        (
            write(
                "gt-out.json",
                &good_gt.replace("[10, 10, 20, 20]", "[90, 10, 40, 20]"),
            ),
            write(
                "p2.json",
                r#"[{"image_id": 1, "category_id": 3, "bbox": [0, 0, 5, 5], "score": 0.5}]"#,
            ),
            "outside",
        ),
        (
            write("gt-bad.json", "{\"images\": []}"),
            write("p3.json", "[]"),
            "not COCO ground-truth",
        ),
    ];
    for (gt, pred, word) in cases {
        let o = convnet(&["eval-detections", "--gt", &gt, "--pred", &pred]);
        assert!(!o.status.success(), "{word}");
        let err = stderr(&o);
        assert!(err.contains(word), "'{word}' not in: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn anchors_from_coco_labels() {
    let gt = s(&fixture("gt.json"));
    let r = json(&convnet(&[
        "anchors", "--labels", &gt, "-k", "3", "--size", "416", "--grid", "13", "--json",
    ]));
    let anchors = r["anchors"].as_array().unwrap();
    assert_eq!(anchors.len(), 3);
    assert_eq!(r["boxes"], 45);
    let iou = r["mean_iou"].as_f64().unwrap();
    assert!(iou > 0.4 && iou <= 1.0, "{iou}");
    // In cells: pixels divided by 416 / 13 = 32.
    let px = anchors[0][0].as_f64().unwrap();
    let cells = r["anchors_in_cells"][0][0].as_f64().unwrap();
    assert!((px / 32.0 - cells).abs() < 1e-4);
    let more = json(&convnet(&["anchors", "--labels", &gt, "-k", "9", "--json"]));
    assert!(more["mean_iou"].as_f64().unwrap() > iou);
    let o = convnet(&["anchors", "--labels", &gt, "-k", "100"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("at least 100 boxes"), "{}", stderr(&o));
}

#[test]
fn darknet_cfgs_summarise_with_darknet_shapes() {
    let cfg = |name: &str| {
        s(&PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/darknet")
            .join(name))
    };
    let r = json(&convnet(&["summary", &cfg("yolov3.cfg"), "--json"]));
    let layers = r["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 107);
    assert_eq!(layers[105]["output"], serde_json::json!([255, 76, 76]));
    assert!(
        r["summary"].is_null(),
        "yolov3 is a graph: no sequential summary"
    );
    let o = convnet(&["summary", &cfg("yolov2-tiny.cfg")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = common::stdout(&o);
    assert!(
        text.contains("region") && text.contains("Total params"),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.cfg");
    std::fs::write(
        &bad,
        "[net]\nwidth=64\nheight=64\n[convolutional]\nfilters=8\n[gru]\n",
    )
    .unwrap();
    let o = convnet(&["summary", &s(&bad)]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("bad.cfg:6: unknown section [gru]"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn trains_a_tiny_yolo_on_generated_scenes_and_detects_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    // One epoch on 48 scenes, tested on 12; `extra` arguments come last.
    let train = |out: &Path, extra: &[&str]| {
        let out = s(out);
        let mut args = vec![
            "train",
            "--task",
            "detect",
            "--train-size",
            "48",
            "--test-limit",
            "12",
            "--epochs",
            "1",
            "--batch",
            "16",
            "--out",
            &out,
            "--json",
        ];
        args.extend_from_slice(extra);
        json(&convnet(&args))
    };
    let r = train(&run, &[]);
    for file in [
        "head.json",
        "history.csv",
        "curves.png",
        "test-metrics.json",
        "test-gt.json",
        "test-pred.json",
    ] {
        assert!(run.join(file).is_file(), "{file}");
    }
    let map = r["test_map50"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&map), "{r:#}");
    assert_eq!(r["classes"].as_array().unwrap().len(), 10);
    assert!(common::stdout(&convnet(&["train", "--help"])).contains("detect"));
    let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
    assert!(
        history
            .lines()
            .next()
            .unwrap()
            .ends_with("val_map50,val_map"),
        "{history}"
    );
    // The COCO files the run wrote reproduce its number through eval-detections.
    let e = json(&convnet(&[
        "eval-detections",
        "--gt",
        &s(&run.join("test-gt.json")),
        "--pred",
        &s(&run.join("test-pred.json")),
        "--json",
    ]));
    if r["test_map50"].as_f64().unwrap() > 0.0 {
        assert!(
            (e["voc"]["map"].as_f64().unwrap() - map).abs() < 1e-6,
            "{e:#} vs {r:#}"
        );
    }
    // `convnet eval` on the run scores its best checkpoint on the same test scenes again.
    let ev = json(&convnet(&["eval", &s(&run), "--limit", "12", "--json"]));
    assert_eq!(ev["test_scenes"], 12, "{ev:#}");
    assert_eq!(ev["test_objects"], r["test_objects"], "{ev:#}");
    assert!(
        (ev["test_map50"].as_f64().unwrap() - map).abs() < 1e-9,
        "{ev:#} vs {r:#}"
    );
    assert!(run.join("eval-pred.json").is_file());
    let tta = json(&convnet(&[
        "eval",
        &s(&run),
        "--limit",
        "12",
        "--flip-tta",
        "--json",
    ]));
    assert_eq!(tta["flip_tta"], true, "{tta:#}");
    assert!((0.0..=1.0).contains(&tta["test_map50"].as_f64().unwrap()));
    // An ensemble of the run with itself averages equal outputs: the same score.
    let twice = json(&convnet(&[
        "eval",
        &s(&run),
        "--ensemble",
        &s(&run),
        "--limit",
        "12",
        "--json",
    ]));
    assert_eq!(twice["checkpoints"].as_array().unwrap().len(), 2);
    assert!(
        (twice["test_map50"].as_f64().unwrap() - map).abs() < 1e-6,
        "{twice:#}"
    );
    let o = convnet(&["eval", &s(&run.join("checkpoints"))]);
    assert!(!o.status.success());
    // One of the run's checkpoint files (here its best) is scored like the run directory.
    let best = run.join("checkpoints").join("best.ckpt");
    let file = json(&convnet(&["eval", &s(&best), "--limit", "12", "--json"]));
    assert!(
        (file["test_map50"].as_f64().unwrap() - map).abs() < 1e-9,
        "{file:#} vs {r:#}"
    );
    // A second run on other scenes (another seed) starts from the first (`--init`): every
    // tensor, the head included, fits, and the head keeps the anchors it was trained for
    // rather than k-means' on the new scenes; it also saves inside its epoch (what it writes
    // there is checked in convnet-train).
    let again = train(
        &dir.path().join("again"),
        &["--init", &s(&run), "--seed", "7", "--save-every", "1"],
    );
    assert_eq!(again["init"]["loaded"], 32, "{again:#}");
    assert_eq!(again["init"]["fresh"], 0, "{again:#}");
    assert_eq!(again["anchors"], r["anchors"], "{again:#} vs {r:#}");
    let head = |run: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(run.join("head.json")).unwrap()).unwrap()
    };
    assert_eq!(
        head(&dir.path().join("again"))["anchors"],
        head(&run)["anchors"]
    );
    // The detector's convolutions start the U-Net built on them; its head stays behind.
    let seg = json(&convnet(&[
        "train",
        "--task",
        "segment",
        "--model",
        "unet-tiny-yolo",
        "--train-size",
        "32",
        "--test-limit",
        "8",
        "--epochs",
        "1",
        "--batch",
        "16",
        "--init",
        &s(&run),
        "--out",
        &s(&dir.path().join("seg")),
        "--json",
    ]));
    assert_eq!(seg["init"]["loaded"], 30, "{seg:#}");
    assert_eq!(seg["init"]["unused"], 2, "{seg:#}");
    // Refused training runs: each says why on stderr.
    let refused = |args: &[&str], why: &str| {
        let err = stderr(&convnet(args));
        assert!(err.contains(why), "{why:?} not in: {err}");
    };
    refused(
        &[
            "train",
            "--task",
            "detect",
            "--train-size",
            "48",
            "--init",
            &s(&run),
            "--anchors",
            "2",
            "--out",
            &s(&dir.path().join("x")),
        ],
        "is a detector with 3 anchors; this run asks for 2",
    );
    refused(
        &[
            "train",
            "--task",
            "detect",
            "--save-every",
            "0",
            "--out",
            &s(&dir.path().join("y")),
        ],
        "--save-every must be at least 1",
    );
    refused(
        &[
            "train",
            "--save-every",
            "10",
            "--out",
            &s(&dir.path().join("z")),
        ],
        "--save-every is for detection",
    );
    // Detect with the trained run on a picture of another size: boxes come back in its pixels.
    let picture = dir.path().join("scene.png");
    image::GrayImage::from_fn(150, 120, |x, y| {
        image::Luma([((x * 7 + y * 3) % 256) as u8])
    })
    .save(&picture)
    .unwrap();
    let out = dir.path().join("boxes.png");
    let d = json(&convnet(&[
        "detect",
        &s(&picture),
        "--model",
        &s(&run),
        "--score",
        "0.0",
        "-o",
        &s(&out),
        "--json",
    ]));
    assert_eq!(d["width"], 150.0);
    for det in d["detections"].as_array().unwrap() {
        let b: Vec<f64> = serde_json::from_value(det["box"].clone()).unwrap();
        assert!(
            b[0] >= 0.0 && b[2] <= 150.0 && b[1] >= 0.0 && b[3] <= 120.0,
            "{b:?}"
        );
    }
    assert!(out.is_file());
    let o = convnet(&[
        "train",
        "--task",
        "detect",
        "--dataset",
        "fashion-mnist",
        "--out",
        &s(&dir.path().join("x")),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("generated scenes"), "{}", stderr(&o));
}
