//! Detection on people's own labelled photos: one small data set written by hand in each of
//! the four layouts (YOLO, COCO, Pascal VOC, CSV) trains, with a fixed seed, to identical
//! weights — the four readers agree box for box — and a trained run detects on a picture,
//! whole and tile by tile.

mod common;

use std::path::Path;

use common::{convnet, json, s, stderr};
use layouts::{LAYOUTS, yolo};

#[path = "common/layouts.rs"]
mod layouts;

fn train(dataset: &Path, run: &Path) -> serde_json::Value {
    json(&convnet(&[
        "train",
        "--task",
        "detect",
        "--dataset",
        &s(dataset),
        "--size",
        "32",
        "--epochs",
        "2",
        "--batch",
        "2",
        "--augment",
        "default",
        "--seed",
        "7",
        "--anchors",
        "2",
        "--out",
        &s(run),
        "--json",
    ]))
}

/// The trained tensors (by name), which the checkpoint's bytes are not a fair comparison of:
/// they also hold each parameter's random id.
fn weights(run: &Path) -> convnet_weights::StateDict {
    let path = run.join("checkpoints").join("last.ckpt");
    let model = convnet_train::Checkpoint::load(&path)
        .unwrap()
        .model(&path, &burn::tensor::Device::flex())
        .unwrap();
    let mut dict = convnet_weights::to_state_dict(&model).unwrap();
    assert!(dict.len() > 10);
    // Compared as values: the dictionaries' origins name their files.
    dict = dict
        .iter()
        .fold(convnet_weights::StateDict::new("run"), |mut d, (k, t)| {
            d.insert(k, t.clone());
            d
        });
    dict
}

#[test]
fn four_layouts_train_to_identical_weights() {
    let dir = tempfile::tempdir().unwrap();
    let mut first: Option<(convnet_weights::StateDict, serde_json::Value)> = None;
    for (name, write) in LAYOUTS {
        let root = dir.path().join(name);
        write(&root);
        let run = dir.path().join(format!("run-{name}"));
        let r = train(&root, &run);
        assert_eq!(
            r["classes"],
            serde_json::json!(["cat", "dog"]),
            "{name}: {r:#}"
        );
        let w = weights(&run);
        let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
        let losses: Vec<String> = history
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(1).unwrap().to_string())
            .collect();
        match &first {
            None => first = Some((w, serde_json::json!(losses))),
            Some((w0, l0)) => {
                assert_eq!(&serde_json::json!(losses), l0, "{name}: training losses");
                assert!(
                    w == *w0,
                    "{name}: the weights differ from the YOLO layout's"
                );
            }
        }
        // The held-out picture (the validation split: c.png and its dog) was scored.
        assert_eq!(
            (&r["test_scenes"], &r["test_objects"]),
            (&1.into(), &1.into()),
            "{name}: {r:#}"
        );
        for file in [
            "test-gt.json",
            "test-pred.json",
            "test-pr.png",
            "curves.png",
        ] {
            assert!(run.join(file).is_file(), "{name}: {file}");
        }
    }
}

#[test]
fn a_trained_run_detects_whole_and_tile_by_tile() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("yolo");
    yolo(&root);
    let run = dir.path().join("run");
    train(&root, &run);
    let picture = root.join("images/train/a.png");
    let detect = |extra: &[&str]| {
        let mut args = vec![
            "detect",
            "--model",
            run.to_str().unwrap(),
            picture.to_str().unwrap(),
            "--score",
            "0.001",
            "--json",
        ];
        args.extend_from_slice(extra);
        json(&convnet(&args))
    };
    let whole = detect(&[]);
    // A picture that fits one tile gives the same boxes with and without tiling.
    let tiled = detect(&["--tile", "64", "--overlap", "16"]);
    assert_eq!(whole["detections"], tiled["detections"]);
    assert!(
        !whole["detections"].as_array().unwrap().is_empty(),
        "{whole:#}"
    );
    for d in whole["detections"].as_array().unwrap() {
        let b: Vec<f64> = serde_json::from_value(d["box"].clone()).unwrap();
        assert!(
            b[0] >= 0.0 && b[1] >= 0.0 && b[2] <= 64.0 && b[3] <= 48.0,
            "{d}"
        );
    }
    // YOLO-format predictions, and several pictures (a folder) at once.
    let txt = dir.path().join("txt");
    let out = dir.path().join("drawn");
    let several = json(&convnet(&[
        "detect",
        "--model",
        &s(&run),
        &s(&root.join("images/train")),
        "--score",
        "0.001",
        "--save-txt",
        &s(&txt),
        "-o",
        &s(&out),
        "--json",
    ]));
    assert_eq!(several.as_array().unwrap().len(), 2);
    let a = std::fs::read_to_string(txt.join("a.txt")).unwrap();
    assert_eq!(
        a.lines().count(),
        whole["detections"].as_array().unwrap().len()
    );
    for line in a.lines() {
        let fields: Vec<f64> = line.split(' ').map(|f| f.parse().unwrap()).collect();
        assert_eq!(fields.len(), 5);
        assert!(
            fields[1..].iter().all(|v| (0.0..=1.0).contains(v)),
            "{line}"
        );
    }
    assert!(out.join("b.png").is_file());
    // A checkpoint file names the run as well as its directory does.
    let best = json(&convnet(&[
        "detect",
        "--model",
        &s(&run.join("checkpoints/best.ckpt")),
        &s(&picture),
        "--score",
        "0.001",
        "--json",
    ]));
    assert_eq!(best["detections"], whole["detections"]);
    // `convnet eval RUN` scores the same held-out pictures the run scored.
    let e = json(&convnet(&["eval", &s(&run), "--json"]));
    let t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("test-metrics.json")).unwrap())
            .unwrap();
    assert_eq!(e["test_map50"], t["test_map50"]);
    // A bad label line names the file and the line.
    std::fs::write(root.join("labels/train/a.txt"), "1 0.5 0.5 0.2\n").unwrap();
    let o = convnet(&[
        "train",
        "--task",
        "detect",
        "--dataset",
        &s(&root),
        "--epochs",
        "1",
        "--out",
        &s(&dir.path().join("bad")),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("a.txt:1"), "{}", stderr(&o));
}

#[test]
fn a_resnet_trunk_starts_from_torchvision_named_weights() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("yolo");
    yolo(&root);
    // An ImageNet ResNet-18 as torchvision names it (random weights stand in for a user's).
    let options = convnet_zoo::ZooOptions {
        image_size: Some(64),
        ..Default::default()
    };
    let resnet = convnet_zoo::imagenet_spec("resnet18", &options)
        .unwrap()
        .build(&burn::tensor::Device::flex())
        .unwrap();
    let weights = dir.path().join("resnet18.safetensors");
    convnet_weights::write_safetensors(&convnet_weights::to_state_dict(&resnet).unwrap(), &weights)
        .unwrap();
    let run = dir.path().join("run");
    let r = json(&convnet(&[
        "train",
        "--task",
        "detect",
        "--dataset",
        &s(&root),
        "--model",
        "yolo-resnet18",
        "--init",
        &s(&weights),
        "--size",
        "64",
        "--epochs",
        "1",
        "--batch",
        "2",
        "--anchors",
        "2",
        "--out",
        &s(&run),
        "--json",
    ]));
    // torchvision's 102 tensors: the stem and layers 1-3 (75) fill the trunk; layer4 (25) and
    // fc (2) are not used; the neck's convolution and batch norm (5) and the head (2) start
    // fresh.
    assert_eq!(
        (
            &r["init"]["loaded"],
            &r["init"]["unused"],
            &r["init"]["fresh"]
        ),
        (&75.into(), &27.into(), &7.into()),
        "{r:#}"
    );
    assert_eq!(r["model"], "yolo-resnet18");
}
