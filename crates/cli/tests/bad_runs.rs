//! Issue 32 for runs and checkpoints: training or scoring on nothing, checkpoints whose
//! contents do not hold together, test sets that do not fit the training set, and empty
//! batches are refused with one line before anything is written — never a panic, a hang or
//! an answer about nothing.

mod common;
#[path = "common/data.rs"]
mod data;

use std::path::{Path, PathBuf};

use common::{convnet, refused as fails_with, s, stderr};
use convnet_train::{Checkpoint, CheckpointMeta};

/// A temporary folder with a generated Fashion-MNIST-like set in `data/` (`n_train`
/// training, `n_test` test examples) and the path of a run directory `run` to be.
fn generated(n_train: usize, n_test: usize) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let (data_dir, run) = (tmp.path().join("data"), tmp.path().join("run"));
    std::fs::create_dir(&data_dir).unwrap();
    data::write_fashion_like(&data_dir, n_train, n_test, 3);
    (tmp, data_dir, run)
}

fn train_args<'a>(data_dir: &'a str, run: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "-q", "train", "--model", "lenet5", "--data", data_dir, "--batch", "32", "--epochs", "1",
        "--out", run,
    ];
    args.extend(extra);
    args
}

/// A run of one epoch on a small generated set; returns its last checkpoint.
fn trained() -> (tempfile::TempDir, PathBuf, PathBuf, Checkpoint) {
    let (tmp, data_dir, run) = generated(120, 40);
    let out = convnet(&train_args(&s(&data_dir), &s(&run), &[]));
    assert!(out.status.success(), "{}", stderr(&out));
    let ckpt = Checkpoint::load(&run.join("checkpoints/last.ckpt")).unwrap();
    (tmp, data_dir, run, ckpt)
}

/// `ckpt` with `edit` applied, written (with a valid checksum) as a plain checkpoint file.
fn edited(ckpt: &Checkpoint, path: &Path, edit: impl FnOnce(&mut CheckpointMeta, &mut Vec<u8>)) {
    let mut ckpt = ckpt.clone();
    edit(&mut ckpt.meta, &mut ckpt.model);
    std::fs::write(path, ckpt.to_bytes().unwrap()).unwrap();
}

#[test]
fn training_on_nothing_is_refused_before_the_run_directory_is_made() {
    let (_tmp, data_dir, run) = generated(60, 20);
    let (data_dir, run_s) = (s(&data_dir), s(&run));
    for extra in [["--limit", "0"], ["--per-class", "0"]] {
        let out = convnet(&train_args(&data_dir, &run_s, &extra));
        fails_with(&out, &["the training set is empty"]);
        assert!(!run.exists(), "{extra:?} made the run directory");
    }
}

#[test]
fn fine_tuning_on_nothing_is_refused() {
    let (tmp, data_dir, base, _) = trained();
    let run = tmp.path().join("tuned");
    let out = convnet(&[
        "-q",
        "finetune",
        "--base",
        "lenet5",
        "--weights",
        &s(&base),
        "--data",
        "fashion-mnist",
        "--fashion-mnist-dir",
        &s(&data_dir),
        "--per-class",
        "0",
        "--classes",
        "10",
        "--out",
        &s(&run),
    ]);
    fails_with(&out, &["the training set is empty"]);
    assert!(!run.exists());
}

#[test]
fn an_empty_training_file_or_test_file_is_refused_before_training() {
    let (_tmp, data_dir, run) = generated(0, 20);
    let out = convnet(&train_args(&s(&data_dir), &s(&run), &[]));
    fails_with(&out, &["the training set is empty"]);
    assert!(!run.exists());

    let (_tmp, data_dir, run) = generated(60, 0);
    let out = convnet(&train_args(&s(&data_dir), &s(&run), &[]));
    fails_with(&out, &["the test set is empty"]);
    assert!(!run.exists());
}

#[test]
fn a_test_folder_with_other_classes_is_refused_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pics");
    for (split, classes) in [("train", ["coat", "shirt"]), ("test", ["coat", "sock"])] {
        for (k, class) in classes.iter().enumerate() {
            let dir = root.join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..4 {
                data::write_png(&dir.join(format!("{i}.png")), k, i);
            }
        }
    }
    let run = tmp.path().join("run");
    let out = convnet(&[
        "-q",
        "train",
        "--model",
        "lenet5",
        "--dataset",
        &s(&root),
        "--epochs",
        "1",
        "--out",
        &s(&run),
    ]);
    fails_with(&out, &["the test set's classes", "sock", "shirt"]);
    assert!(!run.exists());
}

#[test]
fn test_examples_of_another_shape_are_refused_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let file = |name: &str| tmp.path().join(name);
    let labels: Vec<f32> = (0..8).map(|i| (i % 2) as f32).collect();
    convnet_data::write_npy_f32(&file("x.npy"), &[8, 1, 64], &vec![0.5; 8 * 64]).unwrap();
    convnet_data::write_npy_f32(&file("y.npy"), &[8], &labels).unwrap();
    convnet_data::write_npy_f32(&file("tx.npy"), &[8, 1, 32], &vec![0.5; 8 * 32]).unwrap();
    convnet_data::write_npy_f32(&file("ty.npy"), &[8], &labels).unwrap();
    let run = file("run");
    let out = convnet(&[
        "-q",
        "train",
        "--task",
        "signal",
        "--dataset",
        &s(&file("x.npy")),
        "--labels",
        &s(&file("y.npy")),
        "--test-dataset",
        &s(&file("tx.npy")),
        "--test-labels",
        &s(&file("ty.npy")),
        "--epochs",
        "1",
        "--out",
        &s(&run),
    ]);
    fails_with(&out, &["the test set's examples are [1, 32]", "[1, 64]"]);
    assert!(!run.exists());
}

#[test]
fn infer_on_an_empty_batch_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (x, y) = (tmp.path().join("x.npy"), tmp.path().join("y.npy"));
    convnet_data::write_npy_f32(&x, &[0, 1, 28, 28], &[]).unwrap();
    let out = convnet(&[
        "infer",
        "--model",
        "lenet5",
        "--weights",
        "w.pth",
        "--input",
        &s(&x),
        "--output",
        &s(&y),
    ]);
    fails_with(&out, &["x.npy", "the input batch [0, 1, 28, 28] is empty"]);
    assert!(!y.exists());
}

#[test]
fn checkpoints_that_do_not_hold_together_are_refused_by_every_reader() {
    let (tmp, data_dir, run, ckpt) = trained();
    let bad = tmp.path().join("bad.ckpt");
    let image = tmp.path().join("one.png");
    data::write_png(&image, 3, 1);
    type Edit = fn(&mut CheckpointMeta, &mut Vec<u8>);
    let cases: [(Edit, &[&str]); 7] = [
        (
            |m, _| m.classes.truncate(5),
            &["bad.ckpt", "5 classes but the model's output is [10]"],
        ),
        (
            |m, _| m.classes[3] = m.classes[0].clone(),
            &["is named twice"],
        ),
        (
            |m, _| m.normalization.std[0] = 0.0,
            &["standard deviation 0 is not a positive number"],
        ),
        (
            |m, _| m.normalization.mean = vec![0.1, 0.2, 0.3],
            &["3 means and 1 standard deviations"],
        ),
        (
            |m, _| m.epoch = 1 << 63,
            &["completed epochs of a run of 1"],
        ),
        (
            |m, _| m.best_epoch = Some(7),
            &["best epoch 7 is not one of its 1 completed epochs"],
        ),
        (
            // The last four bytes of the weights are a float of the last tensor.
            |_, model| {
                let n = model.len();
                model[n - 4..].copy_from_slice(&1e38f32.to_le_bytes());
            },
            &["holds 1e38", "at most 1e30 in magnitude"],
        ),
    ];
    for (edit, needles) in cases {
        edited(&ckpt, &bad, edit);
        let out = convnet(&["eval", &s(&bad), "--data", &s(&data_dir)]);
        fails_with(&out, needles);
        let out = convnet(&["predict", &s(&bad), &s(&image)]);
        fails_with(&out, needles);
    }
    // Resuming from a checkpoint claiming 2^63 epochs ends at once rather than spinning.
    let resumed = tmp.path().join("resumed");
    std::fs::create_dir_all(resumed.join("checkpoints")).unwrap();
    edited(&ckpt, &resumed.join("checkpoints/last.ckpt"), |m, _| {
        m.epoch = 1 << 63
    });
    let out = convnet(&[
        "train",
        "--resume",
        &s(&resumed),
        "--data",
        &s(&data_dir),
        "--epochs",
        "3",
    ]);
    fails_with(
        &out,
        &["cannot resume", "9223372036854775808 completed epochs"],
    );
    drop(run);
}

#[test]
fn evaluating_on_nothing_is_refused() {
    let (_tmp, data_dir, run, _) = trained();
    let out = convnet(&["eval", &s(&run), "--data", &s(&data_dir), "--limit", "0"]);
    fails_with(&out, &["the test", "set is empty"]);
}

#[test]
fn a_run_shows_one_commit_through_its_links() {
    let (_tmp, data_dir, run, first) = trained();
    let out = convnet(&[
        "-q",
        "train",
        "--resume",
        &s(&run),
        "--data",
        &s(&data_dir),
        "--epochs",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let last = Checkpoint::load(&run.join("checkpoints/last.ckpt")).unwrap();
    let best = Checkpoint::load(&run.join("checkpoints/best.ckpt")).unwrap();
    let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
    assert_eq!((first.meta.epoch, last.meta.epoch), (1, 2));
    assert_eq!(history.lines().count(), 3);
    assert_eq!(Some(best.meta.epoch), last.meta.best_epoch);
    for shown in [
        "checkpoints/last.ckpt",
        "checkpoints/best.ckpt",
        "history.csv",
    ] {
        let link = std::fs::read_link(run.join(shown)).unwrap();
        assert!(
            link.to_string_lossy().contains(".commits/current/"),
            "{link:?}"
        );
    }
}
