//! `convnet train`, `eval` and `predict` end to end on small data sets: what a run directory
//! holds, resuming, ensembles, and every kind of bad input the training issue lists.

mod common;
#[path = "common/data.rs"]
mod data;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{convnet, stderr, stdout};
use convnet_train::Checkpoint;
use serde_json::Value;

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn json(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

/// A temporary folder with a generated data set in `data/` and a run directory `run` to be.
fn generated(n_train: usize, n_test: usize, seed: u64) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let (data_dir, run) = (tmp.path().join("data"), tmp.path().join("run"));
    std::fs::create_dir(&data_dir).unwrap();
    data::write_fashion_like(&data_dir, n_train, n_test, seed);
    (tmp, data_dir, run)
}

/// The command failed with a one-line error holding every `needle`, and did not panic.
fn fails_with(out: &std::process::Output, needles: &[&str]) {
    assert!(!out.status.success());
    let err = stderr(out);
    assert!(!err.contains("panicked"), "{err}");
    // Progress lines may come before it; the error itself is the last line, and only one.
    let line = err.trim_end().lines().last().unwrap_or_default();
    assert!(line.starts_with("error: "), "{err}");
    assert_eq!(err.matches("error: ").count(), 1, "{err}");
    for needle in needles {
        assert!(line.contains(needle), "{needle:?} not in: {err}");
    }
}

/// Trains LeNet-5 on the generated set; returns the `--json` result.
fn train(data: &Path, run: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "train",
        "--model",
        "lenet5",
        "--data",
        &s(data),
        "--batch",
        "32",
        "--seed",
        "1",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    args.extend(["--out".to_string(), s(run), "--json".to_string()]);
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    json(&convnet(&args))
}

#[test]
fn train_writes_history_curves_and_checkpoints_and_eval_and_predict_use_them() {
    let (tmp, data_dir, run) = generated(600, 200, 7);

    let v = train(&data_dir, &run, &["--epochs", "3"]);
    assert_eq!(v["epochs"], 3);
    assert_eq!(v["params"], 61_706);
    assert!(v["seconds_per_epoch"].as_f64().unwrap() > 0.0);
    let test_accuracy = v["test_accuracy"].as_f64().unwrap();
    // Chance is 10%; the bars are easy to tell apart.
    assert!(test_accuracy > 0.8, "{v}");

    let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
    let rows: Vec<&str> = history.lines().collect();
    assert_eq!(rows.len(), 4, "{history}");
    assert!(rows[0].starts_with("epoch,train_loss,train_accuracy,val_loss,val_accuracy"));
    let first_loss: f64 = rows[1].split(',').nth(1).unwrap().parse().unwrap();
    let last_loss: f64 = rows[3].split(',').nth(1).unwrap().parse().unwrap();
    assert!(last_loss < first_loss, "{history}");
    let curves = image::open(run.join("curves.png")).unwrap();
    assert!(curves.width() > 200 && curves.height() > 100);

    let best = run.join("checkpoints/best.ckpt");
    let last = run.join("checkpoints/last.ckpt");
    let ckpt = Checkpoint::load(&last).unwrap();
    assert_eq!(ckpt.meta.epoch, 3);
    assert_eq!(ckpt.meta.history.len(), 3);
    assert!(ckpt.optimizer.is_some());
    assert_eq!(ckpt.meta.classes[9], "Ankle boot");
    assert!(Checkpoint::load(&best).is_ok());

    // eval on the run directory uses the best checkpoint, as train's test accuracy did.
    let e = json(&convnet(&[
        "eval",
        &s(&run),
        "--data",
        &s(&data_dir),
        "--json",
    ]));
    assert_eq!(e["examples"], 200);
    assert!(
        (e["accuracy"].as_f64().unwrap() - test_accuracy).abs() < 1e-9,
        "{e}"
    );
    let confusion: Vec<Vec<u64>> = serde_json::from_value(e["confusion"].clone()).unwrap();
    assert_eq!(confusion.iter().flatten().sum::<u64>(), 200);
    assert_eq!(e["classes"].as_array().unwrap().len(), 10);
    assert!(run.join("confusion.png").is_file());
    let table = convnet(&["eval", &s(&best), "--data", &s(&data_dir)]);
    assert!(stdout(&table).contains("precision"), "{}", stdout(&table));
    assert!(stdout(&table).contains("Ankle boot"));

    // predict: a horizontal bar in the second row band is class 1 (Trouser).
    let png = tmp.path().join("trouser.png");
    data::write_png(&png, 1, 99);
    let p = json(&convnet(&[
        "predict",
        &s(&best),
        &s(&png),
        "--top",
        "3",
        "--json",
    ]));
    let preds = p["results"][0]["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 3);
    assert_eq!(preds[0]["class"], "Trouser", "{p}");
    let probs: Vec<f64> = preds
        .iter()
        .map(|x| x["probability"].as_f64().unwrap())
        .collect();
    assert!(probs.windows(2).all(|w| w[0] >= w[1]));
    // An ensemble of a model with itself gives that model's probabilities.
    let pe = json(&convnet(&[
        "predict",
        &s(&best),
        &s(&png),
        "--top",
        "3",
        "--json",
        "--ensemble",
        &s(&best),
    ]));
    let pe0 = pe["results"][0]["predictions"][0]["probability"]
        .as_f64()
        .unwrap();
    assert!((pe0 - probs[0]).abs() < 1e-6);
    let text = stdout(&convnet(&["predict", &s(&best), &s(&png)]));
    assert!(text.contains("Trouser"), "{text}");
}

#[test]
fn resume_continues_from_the_last_checkpoint_with_its_history() {
    let (_tmp, data_dir, run) = generated(300, 100, 3);
    train(&data_dir, &run, &["--epochs", "1"]);
    let before = Checkpoint::load(&run.join("checkpoints/last.ckpt")).unwrap();
    let out = convnet(&[
        "train",
        "--resume",
        &s(&run),
        "--data",
        &s(&data_dir),
        "--epochs",
        "2",
        "--json",
    ]);
    let v = json(&out);
    assert_eq!(v["epochs"], 2);
    let after = Checkpoint::load(&run.join("checkpoints/last.ckpt")).unwrap();
    assert_eq!(after.meta.epoch, 2);
    assert_eq!(after.meta.history[0], before.meta.history[0]);
    assert_eq!(after.meta.global_step, 2 * before.meta.global_step);
    assert_eq!(
        std::fs::read_to_string(run.join("history.csv"))
            .unwrap()
            .lines()
            .count(),
        3
    );
}

#[test]
fn a_checkpoint_from_another_architecture_is_refused_with_the_tensors_that_differ() {
    let (_tmp, data_dir, run) = generated(100, 20, 3);
    train(&data_dir, &run, &["--epochs", "1", "--val-split", "0"]);
    let out = convnet(&[
        "train",
        "--model",
        "fmnist-cnn",
        "--resume",
        &s(&run),
        "--data",
        &s(&data_dir),
        "--epochs",
        "2",
    ]);
    fails_with(
        &out,
        &[
            "does not fit this model",
            "shape mismatches",
            "stack.layers.0",
        ],
    );
}

#[test]
fn a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint() {
    let (_tmp, data_dir, run) = generated(200, 20, 5);
    train(&data_dir, &run, &["--epochs", "1"]);
    let good = std::fs::read(run.join("checkpoints/last.ckpt")).unwrap();
    // A learning rate of 1e30 sends the weights to infinity within a step or two.
    let out = convnet(&[
        "train",
        "--resume",
        &s(&run),
        "--data",
        &s(&data_dir),
        "--epochs",
        "3",
        "--lr",
        "1e30",
    ]);
    fails_with(
        &out,
        &["the loss became", "at epoch 2", "last good checkpoint"],
    );
    assert_eq!(
        std::fs::read(run.join("checkpoints/last.ckpt")).unwrap(),
        good
    );
}

#[test]
fn killing_training_never_leaves_a_corrupt_checkpoint() {
    let (_tmp, data_dir, run) = generated(200, 20, 9);
    let last = run.join("checkpoints/last.ckpt");
    let mut rng = data::Rng::new(42);
    for round in 0..6 {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_convnet"));
        cmd.args(["-q", "train", "--data", &s(&data_dir), "--epochs", "1000"]);
        if round == 0 {
            cmd.args(["--model", "lenet5", "--batch", "8", "--out", &s(&run)]);
        } else {
            cmd.args(["--resume", &s(&run)]);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for a checkpoint, then kill at a random moment within the next epochs: some
        // kills land mid-epoch, some while a checkpoint is being written.
        let start = Instant::now();
        let seen = Checkpoint::load(&last).map(|c| c.meta.epoch).unwrap_or(0);
        while Checkpoint::load(&last).map(|c| c.meta.epoch).unwrap_or(0) <= seen {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "no checkpoint appeared"
            );
            assert!(child.try_wait().unwrap().is_none(), "training exited early");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        child.kill().unwrap();
        child.wait().unwrap();
        let ckpt = Checkpoint::load(&last).expect("the checkpoint survives a kill");
        assert!(ckpt.meta.epoch > seen);
        assert_eq!(ckpt.meta.history.len(), ckpt.meta.epoch);
    }
    // The run still resumes and evaluates.
    let e = convnet(&["eval", &s(&last), "--data", &s(&data_dir), "--json"]);
    assert!(e.status.success(), "{}", stderr(&e));
}

#[test]
fn bad_data_files_give_one_line_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    data::write_fashion_like(&data_dir, 50, 10, 1);
    let run = tmp.path().join("run");
    let attempt = || {
        convnet(&[
            "train",
            "--model",
            "lenet5",
            "--data",
            &s(&data_dir),
            "--epochs",
            "1",
            "--out",
            &s(&run),
        ])
    };

    // Truncated image file.
    let images = data_dir.join("train-images-idx3-ubyte");
    let full = std::fs::read(&images).unwrap();
    std::fs::write(&images, &full[..full.len() - 100]).unwrap();
    fails_with(&attempt(), &["train-images-idx3-ubyte"]);
    std::fs::write(&images, &full).unwrap();

    // A label file with another count.
    let labels = data_dir.join("train-labels-idx1-ubyte");
    let good_labels = std::fs::read(&labels).unwrap();
    convnet_data::idx::write_idx(&labels, &[49], &[0u8; 49]).unwrap();
    fails_with(&attempt(), &["50", "49"]);
    std::fs::write(&labels, &good_labels).unwrap();

    // Missing data set: says how to install it.
    let out = convnet(&[
        "train",
        "--model",
        "lenet5",
        "--data",
        &s(&tmp.path().join("nowhere")),
        "--epochs",
        "1",
        "--out",
        &s(&run),
    ]);
    fails_with(&out, &["apt-get install dataset-fashion-mnist"]);

    // An unwritable run directory (under a regular file) fails before training.
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let out = convnet(&[
        "train",
        "--model",
        "lenet5",
        "--data",
        &s(&data_dir),
        "--epochs",
        "1",
        "--out",
        &s(&file.join("run")),
    ]);
    fails_with(&out, &["cannot write", "a-file"]);

    // Truncated and corrupt checkpoints.
    train(&data_dir, &run, &["--epochs", "1"]);
    let ckpt = run.join("checkpoints/last.ckpt");
    let bytes = std::fs::read(&ckpt).unwrap();
    let cut = tmp.path().join("cut.ckpt");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = convnet(&["eval", &s(&cut), "--data", &s(&data_dir)]);
    fails_with(&out, &["truncated", "cut.ckpt"]);
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    std::fs::write(&cut, &flipped).unwrap();
    let out = convnet(&["eval", &s(&cut), "--data", &s(&data_dir)]);
    fails_with(&out, &["corrupt", "cut.ckpt"]);
    let out = convnet(&["predict", &s(&ckpt), &s(&images)]);
    fails_with(&out, &["train-images-idx3-ubyte"]);
}

/// The real data set, as CI installs it: a few hundred images are enough to beat chance by far.
#[test]
fn lenet5_learns_from_a_few_hundred_real_fashion_mnist_images() {
    let dir = Path::new(convnet_data::fashion_mnist::DEBIAN_DIR);
    if !dir.is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install Fashion-MNIST (scripts/install-data.sh)"
        );
        eprintln!("skipped: Fashion-MNIST is not installed (scripts/install-data.sh)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let out = convnet(&[
        "train",
        "--model",
        "lenet5",
        "--epochs",
        "5",
        "--batch",
        "16",
        "--limit",
        "600",
        "--test-limit",
        "300",
        "--augment",
        "flip,crop=2",
        "--out",
        &s(&run),
        "--json",
    ]);
    let v = json(&out);
    // About 0.7 here; chance is 0.1.
    assert!(v["test_accuracy"].as_f64().unwrap() > 0.55, "{v}");
}

#[test]
fn a_folder_of_images_trains_with_its_sub_folders_as_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("shapes");
    // Two classes, "rows" and "columns", as PNGs of another size than the model's input.
    for (split, n) in [("train", 40), ("test", 10)] {
        for (class, k) in [("columns", 6), ("rows", 1)] {
            let dir = root.join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..n {
                let small = dir.join(format!("{i}.png"));
                data::write_png(&small, k, i as u64 + 100 * k as u64);
                let img = image::open(&small).unwrap().resize_exact(
                    40,
                    40,
                    image::imageops::FilterType::Triangle,
                );
                img.save(&small).unwrap();
            }
        }
    }
    std::fs::write(root.join("train/README.txt"), "not an image, ignored").unwrap();
    let run = tmp.path().join("run");
    let v = json(&convnet(&[
        "train",
        "--model",
        "lenet5",
        "--dataset",
        &s(&root),
        "--size",
        "28",
        "--epochs",
        "3",
        "--batch",
        "8",
        "--out",
        &s(&run),
        "--json",
    ]));
    assert!(v["test_accuracy"].as_f64().unwrap() >= 0.9, "{v}");
    let ckpt = Checkpoint::load(&run.join("checkpoints/best.ckpt")).unwrap();
    assert_eq!(ckpt.meta.classes, ["columns", "rows"]);
    let p = json(&convnet(&[
        "predict",
        &s(&run),
        &s(&root.join("test/rows/3.png")),
        "--json",
    ]));
    assert_eq!(p["results"][0]["predictions"][0]["class"], "rows", "{p}");

    // A corrupt image is named in the error.
    std::fs::write(root.join("train/rows/broken.png"), b"\x89PNG not really").unwrap();
    let out = convnet(&[
        "train",
        "--model",
        "lenet5",
        "--dataset",
        &s(&root),
        "--size",
        "28",
        "--epochs",
        "1",
        "--out",
        &s(&run),
    ]);
    fails_with(&out, &["broken.png"]);
}
