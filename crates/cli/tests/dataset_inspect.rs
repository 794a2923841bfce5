//! `convnet dataset`: one small data set written by hand in each of the four layouts is read
//! the same by every reader; a bad label in each is named by file and line; tiles and
//! conversions come out as counted by hand.

mod common;

use std::fs;

use common::{convnet, json, refused, s, stdout};
use layouts::{LAYOUTS, Writer, coco, csv, picture, text, voc, voc_xml, yolo};

#[path = "common/layouts.rs"]
mod layouts;

#[test]
fn the_four_layouts_of_one_data_set_inspect_alike() {
    let dir = tempfile::tempdir().unwrap();
    let mut box_stats = Vec::new();
    for (name, write) in LAYOUTS {
        let root = dir.path().join(name);
        write(&root);
        let report = json(&convnet(&["dataset", "inspect", &s(&root), "--json"]));
        assert_eq!(report["layout"], name, "{report}");
        assert_eq!(
            report["classes"],
            serde_json::json!(["cat", "dog"]),
            "{name}"
        );
        assert_eq!(report["has_splits"], true, "{name}");
        let splits = report["splits"].as_array().unwrap();
        assert_eq!(splits.len(), 2, "{name}");
        assert_eq!(splits[0]["split"], "train");
        assert_eq!(splits[0]["images"], 2, "{name}");
        assert_eq!(splits[0]["boxes"], 2, "{name}");
        assert_eq!(splits[0]["without_boxes"], 1, "{name}");
        assert_eq!(
            splits[0]["boxes_per_class"],
            serde_json::json!([1, 1]),
            "{name}"
        );
        assert_eq!(splits[1]["split"], "val");
        assert_eq!(
            splits[1]["boxes_per_class"],
            serde_json::json!([0, 1]),
            "{name}"
        );
        assert_eq!(report["problems"], serde_json::json!([]), "{name}");
        // Widths 16, 32, 20: min 16, median 20, max 32; aspects 16/12, 32/24, 20/10.
        let width = &report["boxes"]["width"];
        assert_eq!(
            (
                width["min"].as_f64(),
                width["median"].as_f64(),
                width["max"].as_f64()
            ),
            (Some(16.0), Some(20.0), Some(32.0)),
            "{name}"
        );
        box_stats.push(report["boxes"].clone());
        // Only YOLO can say a picture has no label file; only COCO has crowd boxes.
        let unlabelled = report["unlabelled"].as_array().unwrap().len();
        assert_eq!(unlabelled, usize::from(name == "yolo"), "{name}");
        assert_eq!(report["crowd_ignored"], u64::from(name == "coco"), "{name}");
    }
    assert!(box_stats.windows(2).all(|w| w[0] == w[1]), "{box_stats:?}");
}

#[test]
fn the_text_report_names_layout_counts_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("voc");
    voc(&root);
    let png = dir.path().join("plots.png");
    let out = convnet(&["dataset", "inspect", &s(&root), "--plots", &s(&png)]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = stdout(&out);
    for needle in [
        "Pascal VOC layout, 2 classes",
        "train",
        "val",
        "no problems",
        "3 boxes",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    let class_row = text.lines().find(|l| l.starts_with("dog")).unwrap();
    let counts: Vec<&str> = class_row.split_whitespace().collect();
    assert_eq!(counts, ["dog", "1", "1", "2"], "{text}");
    let img = image::open(&png).unwrap();
    assert!(img.width() > 500 && img.height() > 300);
}

#[test]
fn a_bad_label_in_each_layout_is_named_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, Writer, &str, &str, &str); 4] = [
        (
            "yolo",
            yolo,
            "labels/train/a.txt",
            "0 0.25 0.25 0.25 0.25\n1 0.75 0.75 0.5\n",
            "labels/train/a.txt:2: 4 fields, expected 5",
        ),
        (
            "voc",
            voc,
            "Annotations/a.xml",
            &voc_xml(
                "a.png",
                (64, 48),
                &[("cat", [8, 6, 24, 18]), ("dog", [32, 24, 65, 48])],
            ),
            "Annotations/a.xml:14: box x 32..65, y 24..48 reaches outside the 64x48 picture",
        ),
        (
            "csv",
            csv,
            "train.csv",
            "image_path,xmin,ymin,xmax,ymax,label\npics/a.png,8,6,24,18,cat\npics/a.png,32,24,32,48,dog\n",
            "train.csv:3: box x 32..32, y 24..48: zero or negative width",
        ),
        (
            "coco",
            coco,
            "annotations/instances_val.json",
            r#"{"images": [{"id": 1, "file_name": "c.png", "width": 40, "height": 20}],
                "annotations": [{"id": 7, "image_id": 1, "category_id": 3, "bbox": [0, 0, 20, 10]}],
                "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}"#,
            "annotations/instances_val.json: annotation id 7: category_id 3 is not in categories",
        ),
    ];
    for (name, write, file, bad, want) in cases {
        let root = dir.path().join(name);
        write(&root);
        text(&root.join(file), bad);
        let out = convnet(&["dataset", "inspect", &s(&root)]);
        refused(&out, &["1 problem in"]);
        let report = stdout(&out);
        let expected = format!("{}/{want}", root.display());
        assert!(report.contains(&expected), "{expected}\n{report}");
        // Training-side reading refuses the same data set with the same message.
        let out = convnet(&[
            "dataset",
            "convert",
            &s(&root),
            "--to",
            "csv",
            "-o",
            &s(&dir.path().join(format!("{name}-out"))),
        ]);
        refused(&out, &[&expected]);
    }
}

#[test]
fn no_data_set_and_a_missing_path_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = convnet(&["dataset", "inspect", &s(dir.path())]);
    refused(&out, &["no detection data set found", "YOLO", "COCO"]);
    let out = convnet(&["dataset", "inspect", &s(&dir.path().join("nowhere"))]);
    refused(&out, &["nowhere"]);
}

#[test]
fn a_1000x700_picture_cuts_into_six_tiles_of_416() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("big");
    picture(&root.join("big.png"), 1000, 700);
    // Origins at stride 416 - 32 = 384: x 0, 384 and 584 (flush with the edge), y 0 and 284.
    text(
        &root.join("boxes.csv"),
        "big.png,10,10,60,60,tree\nbig.png,900,600,990,690,tree\n",
    );
    let out_dir = dir.path().join("tiles");
    let out = convnet(&[
        "dataset",
        "tile",
        &s(&root),
        "--tile",
        "416",
        "--overlap",
        "32",
        "-o",
        &s(&out_dir),
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(
        stdout(&out).contains("1 pictures -> 6 tiles"),
        "{}",
        stdout(&out)
    );
    let tiles = fs::read_dir(out_dir.join("images/train")).unwrap().count();
    assert_eq!(tiles, 6);
    // The tiles are a YOLO data set that inspects cleanly: the first box lies in the tile at
    // (0, 0) only; the second in the tiles at x 584 whose y range holds it (284).
    let report = json(&convnet(&["dataset", "inspect", &s(&out_dir), "--json"]));
    assert_eq!(report["layout"], "yolo");
    assert_eq!(report["splits"][0]["images"], 6);
    assert_eq!(report["splits"][0]["boxes"], 2);
}

#[test]
fn converting_keeps_every_box_and_split() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("voc");
    voc(&root);
    let before = json(&convnet(&["dataset", "inspect", &s(&root), "--json"]));
    for to in ["yolo", "coco", "voc", "csv"] {
        let out_dir = dir.path().join(format!("as-{to}"));
        let out = convnet(&[
            "dataset",
            "convert",
            &s(&root),
            "--to",
            to,
            "-o",
            &s(&out_dir),
        ]);
        assert!(out.status.success(), "{to}: {}", common::stderr(&out));
        assert!(
            stdout(&out).contains("3 pictures, 3 boxes, 2 classes"),
            "{}",
            stdout(&out)
        );
        let after = json(&convnet(&["dataset", "inspect", &s(&out_dir), "--json"]));
        assert_eq!(after["layout"], to);
        assert_eq!(after["classes"], before["classes"], "{to}");
        for k in 0..2 {
            assert_eq!(
                after["splits"][k]["boxes_per_class"], before["splits"][k]["boxes_per_class"],
                "{to}"
            );
        }
        for stat in ["width", "height", "aspect"] {
            for q in ["min", "median", "max"] {
                let (a, b) = (
                    after["boxes"][stat][q].as_f64().unwrap(),
                    before["boxes"][stat][q].as_f64().unwrap(),
                );
                assert!((a - b).abs() < 1e-3, "{to} {stat} {q}: {a} vs {b}");
            }
        }
        // Writing into a folder that holds files is refused.
        let again = convnet(&[
            "dataset",
            "convert",
            &s(&root),
            "--to",
            to,
            "-o",
            &s(&out_dir),
        ]);
        refused(&again, &["not empty"]);
    }
}
