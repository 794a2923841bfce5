//! The training loop on a small in-memory set: it learns, resuming is the same as never
//! stopping (weights, optimizer state and step count all come back), checkpoints round-trip
//! exactly, and damaged ones are refused.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use burn::tensor::Device;
use convnet_data::{ImageSet, Normalization};
use convnet_layers::ModelSpec;
use convnet_train::{
    Checkpoint, Quiet, TrainConfig, TrainData, TrainError, checkpoint, train, weights,
};

/// Four classes of 12x12 images: a bright quadrant on noise.
fn quadrants(n: usize, seed: u64) -> ImageSet {
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for i in 0..n {
        let k = i % 4;
        for y in 0..12 {
            for x in 0..12 {
                let inside = (y < 6) == (k < 2) && (x < 6) == (k % 2 == 0);
                images.push(if inside {
                    180 + (next() % 70) as u8
                } else {
                    (next() % 60) as u8
                });
            }
        }
        labels.push(k);
    }
    let classes = ["a", "b", "c", "d"].map(String::from).to_vec();
    ImageSet::new(images, labels, [1, 12, 12], classes).unwrap()
}

fn spec() -> ModelSpec {
    ModelSpec::parse(
        r#"
name = "tiny"
input = [1, 12, 12]
[[layers]]
type = "conv2d"
filters = 4
kernel = 3
activation = "relu"
[[layers]]
type = "max_pool2d"
pool = 2
[[layers]]
type = "flatten"
[[layers]]
type = "dense"
units = 4
"#,
        "tiny.toml",
    )
    .unwrap()
}

fn data() -> TrainData {
    let set = quadrants(96, 1);
    let (train, val) = set.split(0.25, 3).unwrap();
    TrainData {
        classes: set.classes.clone(),
        normalization: train.normalization(),
        train: Arc::new(train),
        validation: Some(Arc::new(val)),
        augment: None,
    }
}

/// Burn seeds one global generator per device: tests that train take turns, so each run's
/// initialisation comes from its own seed alone.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn config(epochs: usize) -> TrainConfig {
    let mut c = TrainConfig::new("tiny.toml", "quadrants");
    c.epochs = epochs;
    c.batch_size = 8;
    c.optimizer.lr = 0.01;
    c
}

/// Trains one epoch into `dir/run`; its last checkpoint and where it is.
fn one_epoch(dir: &Path) -> (PathBuf, Checkpoint) {
    let run = dir.join("run");
    train(
        &spec(),
        &data(),
        &config(1),
        &run,
        None,
        &Device::flex(),
        &mut Quiet,
    )
    .unwrap();
    let path = run.join("checkpoints/last.ckpt");
    let ckpt = Checkpoint::load(&path).unwrap();
    (path, ckpt)
}

fn last(run: &Path) -> Checkpoint {
    Checkpoint::load(&run.join(checkpoint::CHECKPOINT_DIR).join(checkpoint::LAST)).unwrap()
}

#[test]
fn it_learns_and_resuming_matches_an_uninterrupted_run() {
    let _turn = serial();
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let (straight, split) = (tmp.path().join("straight"), tmp.path().join("split"));
    let data = data();

    let out = train(
        &spec(),
        &data,
        &config(3),
        &straight,
        None,
        &device,
        &mut Quiet,
    )
    .unwrap();
    assert_eq!(out.history.len(), 3);
    assert!(out.history[2].train_loss < out.history[0].train_loss);
    assert!(
        out.history[2].val_accuracy.unwrap() > 0.9,
        "{:?}",
        out.history
    );

    train(
        &spec(),
        &data,
        &config(1),
        &split,
        None,
        &device,
        &mut Quiet,
    )
    .unwrap();
    let first = last(&split);
    let path = split.join("checkpoints/last.ckpt");
    train(
        &spec(),
        &data,
        &config(3),
        &split,
        Some((&first, &path)),
        &device,
        &mut Quiet,
    )
    .unwrap();

    let (a, b) = (last(&straight), last(&split));
    assert_eq!(b.meta.epoch, 3);
    assert_eq!(a.meta.global_step, b.meta.global_step);
    // Same shuffles, same Adam moments, same steps: the same weights, bit for bit.
    let values = |c: &Checkpoint, p: &Path| {
        let model = c.model(p, &device).unwrap();
        weights::tensor_bytes(&model).unwrap()
    };
    let (pa, pb) = (
        straight.join("checkpoints/last.ckpt"),
        split.join("checkpoints/last.ckpt"),
    );
    let (va, vb) = (values(&a, &pa), values(&b, &pb));
    assert_eq!(va.len(), 4);
    assert_eq!(va, vb);
    let losses = |c: &Checkpoint| {
        c.meta
            .history
            .iter()
            .map(|r| r.train_loss)
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&a), losses(&b));
}

#[test]
fn checkpoints_round_trip_exactly_and_refuse_damage() {
    let _turn = serial();
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let (path, ckpt) = one_epoch(tmp.path());

    // Rebuilt from its own spec, the model saves to the same bytes it was loaded from.
    let model = ckpt.model(&path, &device).unwrap();
    assert_eq!(weights::to_bytes(&model).unwrap(), ckpt.model);
    assert_eq!(
        Checkpoint::from_bytes(&ckpt.to_bytes().unwrap(), &path)
            .unwrap()
            .model,
        ckpt.model
    );
    let norm: Normalization = (&ckpt.meta.normalization).into();
    assert_eq!(norm.channels(), 1);

    let bytes = std::fs::read(&path).unwrap();
    let err = |b: &[u8]| Checkpoint::from_bytes(b, &path).unwrap_err().to_string();
    assert!(err(&bytes[..bytes.len() - 3]).contains("truncated"));
    assert!(err(&bytes[..20]).contains("truncated"));
    assert!(err(b"PK\x03\x04 not ours").contains("not a convnet checkpoint"));
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 3] ^= 1;
    assert!(err(&flipped).contains("corrupt"));
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(err(&longer).contains("unexpected bytes"));
    for e in [err(&bytes[..20]), err(&flipped)] {
        assert!(e.contains("last.ckpt"), "{e}");
    }
}

#[test]
fn weights_of_another_architecture_are_listed_not_loaded() {
    let _turn = serial();
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let (path, ckpt) = one_epoch(tmp.path());
    let wider = ModelSpec::parse(
        &spec()
            .to_toml()
            .unwrap()
            .replace("filters = 4", "filters = 6"),
        "wider.toml",
    )
    .unwrap();
    let mut model = wider.build(&device).unwrap();
    let err = ckpt.load_into(&mut model, &path).unwrap_err();
    let TrainError::Mismatch(m) = &err else {
        panic!("{err}")
    };
    // conv weight, conv bias and the dense weight all change shape.
    assert_eq!(m.mismatched.len(), 3, "{err}");
    assert!(err.to_string().contains("stack.layers.0"), "{err}");
}

#[test]
fn bad_settings_are_refused_before_training() {
    let _turn = serial();
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let mut c = config(1);
    c.batch_size = 0;
    let e = train(&spec(), &data(), &c, tmp.path(), None, &device, &mut Quiet).unwrap_err();
    assert!(e.to_string().contains("--batch"), "{e}");
    let mut c = config(1);
    c.optimizer.lr = f64::NAN;
    let e = train(&spec(), &data(), &c, tmp.path(), None, &device, &mut Quiet).unwrap_err();
    assert!(e.to_string().contains("--lr"), "{e}");
}

#[test]
fn early_stopping_waits_patience_epochs_after_the_best() {
    let _turn = serial();
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let mut c = config(6);
    c.patience = Some(2);
    let out = train(&spec(), &data(), &c, tmp.path(), None, &device, &mut Quiet).unwrap();
    // The quadrants are learnt within the first epoch (validation accuracy 1.0 cannot be
    // beaten), so the run stops after two more epochs.
    let best = out.best_epoch.unwrap();
    assert_eq!(
        out.history[best - 1].val_accuracy,
        Some(1.0),
        "{:?}",
        out.history
    );
    assert!(out.stopped_early);
    assert_eq!(out.history.len(), best + 2);
    assert!(
        Checkpoint::load(&tmp.path().join("checkpoints/best.ckpt"))
            .unwrap()
            .meta
            .epoch
            == best
    );
}
