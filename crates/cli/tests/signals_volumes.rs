//! `convnet train --task signal|volume`: 1D and 3D networks on the generated sets and on
//! people's own `.npy` arrays, with the same run directory as image training, and clear errors
//! for arrays that do not fit.

mod common;

use std::path::Path;

use common::{convnet, stderr, stdout};
use convnet_data::synthetic::ecg_set;
use convnet_data::write_npy_f32;
use serde_json::Value;

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn ok_json(args: &[&str]) -> Value {
    let out = convnet(args);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn fails_with(args: &[&str], needles: &[&str]) {
    let out = convnet(args);
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    let line = err.trim_end().lines().last().unwrap_or_default();
    for needle in needles {
        assert!(line.contains(needle), "{needle:?} not in: {err}");
    }
}

#[test]
fn signals_train_evaluate_and_predict_from_npy() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let v = ok_json(&[
        "train",
        "--task",
        "signal",
        "--train-size",
        "200",
        "--test-limit",
        "80",
        "--epochs",
        "1",
        "--batch",
        "32",
        "--out",
        &s(&run),
        "--json",
    ]);
    assert_eq!(v["model"], "signal-cnn");
    assert_eq!(v["epochs"], 1);
    assert!(v["test_accuracy"].as_f64().is_some(), "{v}");
    assert!(run.join("curves.png").is_file() && run.join("history.csv").is_file());

    // eval regenerates the same held-out signals.
    let e = ok_json(&["eval", &s(&run), "--limit", "80", "--json"]);
    assert_eq!(e["examples"], 80);
    assert!((e["accuracy"].as_f64().unwrap() - v["test_accuracy"].as_f64().unwrap()).abs() < 1e-9);

    // predict takes .npy arrays: one example, or a batch of them.
    let ecg = ecg_set(3, 1000, 11).unwrap();
    let one = tmp.path().join("one.npy");
    write_npy_f32(&one, &[1, 1000], ecg.example(0)).unwrap();
    let batch = tmp.path().join("batch.npy");
    write_npy_f32(&batch, &[3, 1, 1000], &ecg.data).unwrap();
    let p = ok_json(&[
        "predict",
        &s(&run),
        &s(&one),
        &s(&batch),
        "--top",
        "4",
        "--json",
    ]);
    let results = p["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[3]["image"], format!("{}[2]", batch.display()));
    let probs: f64 = results[0]["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["probability"].as_f64().unwrap())
        .sum();
    assert!((probs - 1.0).abs() < 1e-4);
    // The first example of the batch is the single example.
    assert_eq!(results[0]["predictions"], results[1]["predictions"]);

    let wrong = tmp.path().join("wrong.npy");
    write_npy_f32(&wrong, &[1, 500], &[0.0; 500]).unwrap();
    fails_with(
        &["predict", &s(&run), &s(&wrong)],
        &["wrong.npy", "[1, 1000]"],
    );
}

#[test]
fn volumes_train_on_generated_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let v = ok_json(&[
        "train",
        "--task",
        "volume",
        "--dataset",
        "shapes",
        "--train-size",
        "48",
        "--test-limit",
        "24",
        "--epochs",
        "1",
        "--batch",
        "16",
        "--out",
        &s(&run),
        "--json",
    ]);
    assert_eq!(v["model"], "volume-cnn");
    let ckpt = convnet_train::Checkpoint::load(&run.join("checkpoints/last.ckpt")).unwrap();
    assert_eq!(ckpt.meta.classes, ["sphere", "cube", "cylinder"]);
}

#[test]
fn npy_data_sets_train_and_bad_arrays_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (x, y) = (tmp.path().join("x.npy"), tmp.path().join("y.npy"));
    // Two classes of 64-sample signals: a rising or a falling ramp.
    let n = 64;
    let mut data = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        let up = i % 2 == 0;
        data.extend((0..64).map(|t| {
            if up {
                t as f32 / 64.0
            } else {
                1.0 - t as f32 / 64.0
            }
        }));
        labels.push(if up { 0.0 } else { 1.0 });
    }
    write_npy_f32(&x, &[n, 1, 64], &data).unwrap();
    write_npy_f32(&y, &[n], &labels).unwrap();
    let run = tmp.path().join("run");
    let v = ok_json(&[
        "train",
        "--task",
        "signal",
        "--dataset",
        &s(&x),
        "--labels",
        &s(&y),
        "--epochs",
        "3",
        "--batch",
        "8",
        "--lr",
        "0.01",
        "--out",
        &s(&run),
        "--json",
    ]);
    assert!(v["best_val_accuracy"].as_f64().unwrap() >= 0.99, "{v}");
    let e = ok_json(&[
        "eval",
        &s(&run),
        "--dataset",
        &s(&x),
        "--labels",
        &s(&y),
        "--json",
    ]);
    assert!(e["accuracy"].as_f64().unwrap() >= 0.99, "{e}");

    let run_s = s(&run);
    let train_on = |x: &Path, y: &Path, needles: &[&str]| {
        let (x, y) = (s(x), s(y));
        fails_with(
            &[
                "train",
                "--task",
                "signal",
                "--dataset",
                &x,
                "--labels",
                &y,
                "--epochs",
                "1",
                "--out",
                &run_s,
            ],
            needles,
        )
    };

    // Labels of another count.
    let short = tmp.path().join("short.npy");
    write_npy_f32(&short, &[n - 1], &labels[1..]).unwrap();
    train_on(&x, &short, &["64", "63"]);

    // A NaN in the input, named by example.
    let mut nan = data.clone();
    nan[5 * 64 + 3] = f32::NAN;
    let bad = tmp.path().join("nan.npy");
    write_npy_f32(&bad, &[n, 1, 64], &nan).unwrap();
    train_on(&bad, &y, &["nan.npy", "example 5"]);

    // An array of the wrong rank.
    let flat = tmp.path().join("flat.npy");
    write_npy_f32(&flat, &[n * 64], &data).unwrap();
    train_on(&flat, &y, &["flat.npy"]);

    // Labels out of range for the classes a checkpoint knows.
    let big = tmp.path().join("big.npy");
    write_npy_f32(&big, &[n], &vec![7.0; n]).unwrap();
    fails_with(
        &["eval", &s(&run), "--dataset", &s(&x), "--labels", &s(&big)],
        &["classes"],
    );

    // Wrong task for the data, and augmentation on signals.
    fails_with(
        &[
            "train",
            "--task",
            "volume",
            "--dataset",
            "ecg",
            "--epochs",
            "1",
            "--out",
            &s(&run),
        ],
        &["rank 4"],
    );
    fails_with(
        &[
            "train",
            "--task",
            "signal",
            "--augment",
            "flip",
            "--train-size",
            "20",
            "--epochs",
            "1",
            "--out",
            &s(&run),
        ],
        &["images only"],
    );
}
