//! `convnet embed train` and `embed one-shot` on a small generated set in Fashion-MNIST's
//! format: what a run directory holds, what one-shot reports, and the errors and warnings of
//! bad class lists, missing data and runs that are not embedding runs.

mod common;
#[path = "common/data.rs"]
mod data;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{convnet, json, s, stderr};

/// A temporary folder with a generated data set in `data/` and a run directory `run` to be.
fn generated() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let (data_dir, run) = (tmp.path().join("data"), tmp.path().join("run"));
    std::fs::create_dir(&data_dir).unwrap();
    data::write_fashion_like(&data_dir, 700, 300, 5);
    (tmp, data_dir, run)
}

/// The command failed with a one-line error holding every `needle`, and did not panic.
fn fails_with(out: &Output, needles: &[&str]) {
    assert!(!out.status.success());
    let err = stderr(out);
    assert!(!err.contains("panicked"), "{err}");
    let line = err.trim_end().lines().last().unwrap_or_default();
    assert!(line.starts_with("error: "), "{err}");
    for needle in needles {
        assert!(line.contains(needle), "{needle:?} not in: {err}");
    }
}

fn train(data: &Path, run: &Path, extra: &[&str]) -> Output {
    let (data, run) = (s(data), s(run));
    let mut args = vec![
        "embed",
        "train",
        "--data",
        &data,
        "--out",
        &run,
        "--epochs",
        "1",
        "--images-per-class",
        "8",
        "--seed",
        "1",
        "--json",
    ];
    args.extend(extra);
    convnet(&args)
}

#[test]
fn train_writes_a_run_that_one_shot_identifies_new_classes_with() {
    let (_tmp, data_dir, run) = generated();
    let v = json(&train(&data_dir, &run, &["--mining", "semi-hard"]));
    assert_eq!(v["classes"], serde_json::json!([0, 1, 2, 3, 4, 5, 6]));
    assert_eq!(v["mining"], "semi-hard");
    assert_eq!(
        (v["dim"].as_u64(), v["epochs"].as_u64()),
        (Some(64), Some(1))
    );
    assert_eq!(v["classes_per_batch"], 7);
    assert!(
        v["history"][0]["train_loss"].as_f64().unwrap().is_finite(),
        "{v}"
    );
    for file in [
        "embedding.json",
        "history.csv",
        "curves.png",
        "checkpoints/last.ckpt",
    ] {
        assert!(run.join(file).is_file(), "{file}");
    }

    let out = convnet(&[
        "embed",
        "one-shot",
        &s(&run),
        "--data",
        &s(&data_dir),
        "--classes",
        "7-9",
        "--draws",
        "4",
        "--json",
    ]);
    let r = json(&out);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    assert_eq!(r["class_names"][0], "Sneaker");
    assert_eq!(r["seen_classes"], serde_json::json!([]));
    assert_eq!(
        (r["shots"].as_u64(), r["draws"].as_u64()),
        (Some(1), Some(4))
    );
    let queries = r["queries"].as_u64().unwrap();
    assert!(queries > 60, "{r}");
    let confusion: Vec<Vec<u64>> = serde_json::from_value(r["confusion"].clone()).unwrap();
    assert_eq!(confusion.iter().flatten().sum::<u64>(), queries);
    let accuracy = r["accuracy"].as_f64().unwrap();
    let draws: Vec<f64> = serde_json::from_value(r["draw_accuracies"].clone()).unwrap();
    assert_eq!((draws.len(), draws[0]), (4, accuracy));
    let (mean, min, max) = (
        r["mean_accuracy"].as_f64().unwrap(),
        r["min_accuracy"].as_f64().unwrap(),
        r["max_accuracy"].as_f64().unwrap(),
    );
    assert!(min <= mean && mean <= max, "{r}");
    // Three classes: chance is 1/3; the bars are easy to tell apart.
    assert!(mean > 0.45, "{r}");

    // The text form says both numbers; classes trained on draw a warning.
    let out = convnet(&[
        "embed",
        "one-shot",
        &s(&run),
        "--data",
        &s(&data_dir),
        "--classes",
        "5-7",
        "--draws",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = common::stdout(&out);
    assert!(text.contains("with the support of seed 0"), "{text}");
    assert!(text.contains("over 2 support draws"), "{text}");
    let err = stderr(&out);
    assert!(
        err.contains("warning: classes 5, 6 were also trained on"),
        "{err}"
    );
}

#[test]
fn bad_class_lists_missing_data_and_foreign_runs_are_clear_errors() {
    let (tmp, data_dir, run) = generated();
    fails_with(
        &train(&data_dir, &run, &["--classes", "0-12"]),
        &["class 10 does not exist", "0-9"],
    );
    fails_with(
        &train(&data_dir, &run, &["--classes", "3"]),
        &["at least 2 classes"],
    );
    fails_with(
        &train(&data_dir, &run, &["--classes", "a-b"]),
        &["cannot read the class list"],
    );
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    fails_with(
        &train(&empty, &run, &[]),
        &[
            "scripts/install-data.sh",
            "apt-get install dataset-fashion-mnist",
        ],
    );
    let wrong = convnet(&["embed", "train", "--mining", "easy"]);
    assert!(!wrong.status.success());
    assert!(stderr(&wrong).contains("semi-hard"), "{}", stderr(&wrong));
    // A directory without embedding.json is not an embedding run.
    fails_with(
        &convnet(&["embed", "one-shot", &s(tmp.path()), "--data", &s(&data_dir)]),
        &["not an embedding run", "embed train"],
    );
}
