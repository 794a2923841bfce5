//! `convnet train --task segment` and `convnet segment` end to end on a small image + mask
//! folder, and the bad input segmentation must refuse.

mod common;
#[path = "common/data.rs"]
mod data;

use std::path::Path;

use common::{convnet, stderr, stdout};
use image::{GrayImage, Luma};

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A dark picture with a bright square (class 1) and a mid-grey bar (class 2) at positions
/// that depend on `i`, and its mask.
fn scene(i: u32, side: u32) -> (GrayImage, GrayImage) {
    let (sx, sy) = (2 + (i * 5) % (side / 2), 2 + (i * 3) % (side / 2));
    let by = (i * 7) % (side - 4);
    let mut img = GrayImage::from_fn(side, side, |x, y| Luma([((x * 7 + y * 13 + i) % 30) as u8]));
    let mut mask = GrayImage::new(side, side);
    for y in 0..side {
        for x in 0..side {
            if (sx..sx + side / 3).contains(&x) && (sy..sy + side / 3).contains(&y) {
                img.put_pixel(x, y, Luma([230]));
                mask.put_pixel(x, y, Luma([1]));
            } else if (by..by + 3).contains(&y) && x >= side / 4 {
                img.put_pixel(x, y, Luma([120]));
                mask.put_pixel(x, y, Luma([2]));
            }
        }
    }
    (img, mask)
}

fn write_folder(dir: &Path, n: u32, side: u32) {
    std::fs::create_dir_all(dir.join("images")).unwrap();
    std::fs::create_dir_all(dir.join("masks")).unwrap();
    for i in 0..n {
        let (img, mask) = scene(i, side);
        img.save(dir.join("images").join(format!("{i:03}.png")))
            .unwrap();
        mask.save(dir.join("masks").join(format!("{i:03}.png")))
            .unwrap();
    }
    std::fs::write(dir.join("classes.txt"), "background\nsquare\nbar\n").unwrap();
}

fn fails_with(out: &std::process::Output, needles: &[&str]) {
    assert!(!out.status.success(), "{}", stdout(out));
    let err = stderr(out);
    assert!(!err.contains("panicked"), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
}

fn train(data: &Path, run: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "train",
        "--task",
        "segment",
        "--dataset",
        &s(data),
        "--epochs",
        "4",
        "--batch",
        "8",
        "--lr",
        "3e-3",
        "--seed",
        "2",
        "--out",
        &s(run),
        "--json",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    convnet(&args)
}

#[test]
fn a_mask_folder_trains_and_segment_writes_mask_and_overlay() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_folder(&data.join("train"), 48, 32);
    write_folder(&data.join("test"), 8, 32);
    let run = dir.path().join("run");
    let out = train(&data, &run, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        report["classes"],
        serde_json::json!(["background", "square", "bar"])
    );
    let miou = report["test_mean_iou"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&miou), "{report}");
    // Four epochs on 43 pictures already find the bright squares.
    let square = report["test_per_class"][1]["iou"].as_f64().unwrap();
    assert!(square > 0.5, "square IoU {square}: {report}");
    let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
    assert!(
        history.lines().next().unwrap().ends_with(",val_mean_iou"),
        "{history}"
    );
    assert_eq!(history.lines().count(), 5);
    assert!(run.join("curves.png").is_file() && run.join("test-metrics.json").is_file());

    // `convnet eval` scores the run's best checkpoint on the folder's test/ pictures again;
    // the run with itself as an ensemble averages equal maps; flip TTA gives a valid score.
    let eval = |extra: &[&str]| {
        let run_text = s(&run);
        let mut args = vec!["eval", &run_text, "--json"];
        args.extend_from_slice(extra);
        let out = convnet(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str::<serde_json::Value>(&stdout(&out)).unwrap()
    };
    let run_text = s(&run);
    for e in [eval(&[]), eval(&["--ensemble", &run_text])] {
        assert_eq!(e["test_images"], 8, "{e}");
        assert!(
            (e["test_mean_iou"].as_f64().unwrap() - miou).abs() < 1e-9,
            "{e} vs {report}"
        );
        assert_eq!(e["test_per_class"], report["test_per_class"]);
    }
    // The pixel confusion behind those numbers: every test pixel once, and the mean IoU and
    // the error split recomputed from it by hand.
    let e = eval(&[]);
    let counts: Vec<Vec<f64>> = e["test_confusion"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_f64().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(counts.iter().flatten().sum::<f64>(), 8.0 * 32.0 * 32.0);
    let iou = |tp: f64, fp: f64, fn_: f64| tp / (tp + fp + fn_);
    let column = |c: usize| counts.iter().map(|row| row[c]).sum::<f64>();
    let row = |c: usize| counts[c].iter().sum::<f64>();
    let by_hand = (0..3)
        .map(|c| {
            iou(
                counts[c][c],
                column(c) - counts[c][c],
                row(c) - counts[c][c],
            )
        })
        .sum::<f64>()
        / 3.0;
    assert!((by_hand - miou).abs() < 1e-9, "{by_hand} vs {e}");
    // Items found: squares and bars as one class against the background.
    let items = counts[1][1] + counts[1][2] + counts[2][1] + counts[2][2];
    let found = iou(
        items,
        counts[0][1] + counts[0][2],
        counts[1][0] + counts[2][0],
    );
    assert!(
        (e["test_item_iou"].as_f64().unwrap() - found).abs() < 1e-9,
        "{e}"
    );
    // Named right: a square taken for a bar counts as a square and the reverse.
    let named = (iou(
        counts[0][0],
        column(0) - counts[0][0],
        row(0) - counts[0][0],
    ) + iou(counts[1][1] + counts[1][2], counts[0][1], counts[1][0])
        + iou(counts[2][2] + counts[2][1], counts[0][2], counts[2][0]))
        / 3.0;
    let reported = e["test_mean_iou_named_right"].as_f64().unwrap();
    assert!((reported - named).abs() < 1e-9, "{named} vs {e}");
    // As text, the checkpoint is named with where in the run it was written.
    let out = convnet(&["eval", &run_text]);
    assert!(out.status.success(), "{}", stderr(&out));
    let epoch = report["best_epoch"].as_u64().unwrap();
    let line = format!("best.ckpt (after epoch {epoch}; global step ");
    assert!(
        stdout(&out).contains(&line),
        "{line:?} not in {}",
        stdout(&out)
    );
    let tta = eval(&["--flip-tta"]);
    assert_eq!(tta["flip_tta"], true);
    assert!((0.0..=1.0).contains(&tta["test_mean_iou"].as_f64().unwrap()));
    let out = convnet(&["eval", &run_text, "--limit", "3"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--limit"), "{}", stderr(&out));

    // A larger picture than the network's input: the mask comes back at the picture's size.
    let (picture, truth) = scene(3, 32);
    let big = image::imageops::resize(&picture, 64, 48, image::imageops::FilterType::Nearest);
    let big_path = dir.path().join("big.png");
    big.save(&big_path).unwrap();
    let (mask_path, overlay) = (dir.path().join("mask.png"), dir.path().join("overlay.png"));
    let out = convnet(&[
        "segment",
        &s(&run),
        &s(&big_path),
        "-o",
        &s(&mask_path),
        "--overlay",
        &s(&overlay),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mask = image::open(&mask_path).unwrap().to_luma8();
    assert_eq!(mask.dimensions(), (64, 48));
    assert!(mask.pixels().all(|p| p.0[0] < 3));
    let truth = image::imageops::resize(&truth, 64, 48, image::imageops::FilterType::Nearest);
    let agree = mask
        .pixels()
        .zip(truth.pixels())
        .filter(|(a, b)| a == b)
        .count();
    assert!(
        agree as f64 > 0.8 * 64.0 * 48.0,
        "{agree} of 3072 pixels agree"
    );
    let overlay = image::open(&overlay).unwrap().to_rgb8();
    assert!(overlay.height() > 48, "the legend goes below the picture");
}

#[test]
fn bad_masks_and_sizes_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");

    // A mask whose size differs from its picture.
    let data = dir.path().join("sizes");
    write_folder(&data, 4, 32);
    GrayImage::new(16, 16)
        .save(data.join("masks/002.png"))
        .unwrap();
    fails_with(&train(&data, &run, &[]), &["002.png", "32x32", "16x16"]);

    // A label beyond the classes named in classes.txt.
    let data = dir.path().join("labels");
    write_folder(&data, 4, 32);
    let mut mask = GrayImage::new(32, 32);
    mask.put_pixel(5, 7, Luma([9]));
    mask.save(data.join("masks/001.png")).unwrap();
    fails_with(&train(&data, &run, &[]), &["label 9", "3 classes"]);

    // A picture with no mask.
    let data = dir.path().join("missing");
    write_folder(&data, 4, 32);
    std::fs::remove_file(data.join("masks/003.png")).unwrap();
    fails_with(&train(&data, &run, &[]), &["003.png", "no mask"]);

    // Sizes a depth-3 U-Net cannot take.
    let data = dir.path().join("odd");
    write_folder(&data, 4, 30);
    fails_with(&train(&data, &run, &[]), &["divide by 8", "32"]);

    // A classifier is not a segmentation network.
    let classifier = dir.path().join("lenet");
    let fmnist = dir.path().join("fmnist");
    std::fs::create_dir(&fmnist).unwrap();
    data::write_fashion_like(&fmnist, 64, 16, 1);
    let trained = convnet(&[
        "train",
        "--model",
        "lenet5",
        "--data",
        &s(&fmnist),
        "--epochs",
        "1",
        "--out",
        &s(&classifier),
    ]);
    assert!(trained.status.success(), "{}", stderr(&trained));
    let (img, _) = scene(0, 32);
    let png = dir.path().join("x.png");
    img.save(&png).unwrap();
    let out = convnet(&[
        "segment",
        &s(&classifier),
        &s(&png),
        "-o",
        &s(&dir.path().join("m.png")),
    ]);
    fails_with(&out, &["not a segmentation network"]);
}

#[test]
fn a_pretrained_encoder_starts_the_unet_and_weights_of_other_networks_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fmnist = dir.path().join("fmnist");
    std::fs::create_dir(&fmnist).unwrap();
    data::write_fashion_like(&fmnist, 64, 16, 1);
    let pretrain = |model: &str, out: &Path| {
        let trained = convnet(&[
            "train",
            "--model",
            model,
            "--data",
            &s(&fmnist),
            "--epochs",
            "1",
            "--batch",
            "32",
            "--out",
            &s(out),
        ]);
        assert!(trained.status.success(), "{}", stderr(&trained));
    };
    let encoder = dir.path().join("encoder");
    pretrain("unet-small-encoder", &encoder);
    let data = dir.path().join("data");
    write_folder(&data, 24, 32);

    let out = train(&data, &dir.path().join("run"), &["--init", &s(&encoder)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    // The contracting path (3 blocks + bottleneck, 2 x (conv + 4 batch-norm tensors) each)
    // comes from the encoder; the expanding path and the head start fresh; the encoder's
    // classifier (weight, bias) is not used.
    assert_eq!(report["init"]["loaded"], 40, "{report}");
    assert_eq!(report["init"]["fresh"], 38, "{report}");
    assert_eq!(report["init"]["unused"], 2, "{report}");

    // Another network's weights: LeNet's layer names are too vague to place, or do not fit.
    let lenet = dir.path().join("lenet");
    pretrain("lenet5", &lenet);
    let out = train(&data, &dir.path().join("run2"), &["--init", &s(&lenet)]);
    fails_with(&out, &["lenet"]);
    // Not a weights file at all.
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"not weights").unwrap();
    fails_with(
        &train(&data, &dir.path().join("run3"), &["--init", &s(&junk)]),
        &["junk.safetensors"],
    );
    // A run directory without checkpoints.
    let empty = dir.path().join("empty-run");
    std::fs::create_dir(&empty).unwrap();
    fails_with(
        &train(&data, &dir.path().join("run5"), &["--init", &s(&empty)]),
        &["empty-run", "no checkpoint"],
    );
    // Classifiers start from pretrained weights with `convnet finetune`.
    let out = convnet(&[
        "train",
        "--data",
        &s(&fmnist),
        "--init",
        &s(&encoder),
        "--out",
        &s(&dir.path().join("run4")),
    ]);
    fails_with(&out, &["--init", "convnet finetune"]);
}
