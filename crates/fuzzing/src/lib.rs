//! One function per parser that convnet exposes to files a user hands it. Each takes arbitrary
//! bytes and must return, never panic, hang or allocate past the memory limit: cargo-fuzz runs
//! them (`fuzz/fuzz_targets/*.rs` are one line each), and `tests/replay.rs` runs every committed
//! corpus input and every crash found so far through the same functions in CI.
//!
//! Parsers that read a path get the bytes through a file in a scratch directory made once per
//! process (libFuzzer runs one input at a time, so one directory serves all).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use burn::tensor::Device;

/// A target's body: takes any bytes, must return.
pub type Target = fn(&[u8]);

/// Every target, by the name cargo-fuzz and the corpus folders use.
pub const TARGETS: &[(&str, Target)] = &[
    ("image", image),
    ("idx", idx),
    ("npy", npy),
    ("spec", spec),
    ("darknet", darknet),
    ("checkpoint", checkpoint),
    ("pth", pth),
    ("safetensors", safetensors),
    ("tfjs", tfjs),
    ("coco", coco),
    ("gallery", gallery),
];

/// A picture file: decoded (refusing truncated and oversized pictures), preprocessed as
/// ImageNet classifiers take it, and loaded as a tensor.
pub fn image(data: &[u8]) {
    budget();
    let Ok(picture) = convnet_vision::image_io::decode_bytes(data, Path::new("fuzz.img")) else {
        return;
    };
    let recipe = convnet_data::Preprocess::imagenet(32, 36, convnet_data::Interpolation::Bilinear);
    let _ = recipe.apply(&picture);
    let _ = convnet_vision::load_rgb(&scratch_file("picture", data), &device());
}

/// An IDX array, raw or gzipped.
pub fn idx(data: &[u8]) {
    budget();
    let _ = convnet_data::idx::parse_idx(data, "fuzz.idx");
}

/// A NumPy `.npy` array, then its values as `f32` examples.
pub fn npy(data: &[u8]) {
    budget();
    if let Ok(a) = convnet_data::npy::parse_npy(data, Path::new("fuzz.npy")) {
        let per_example = a
            .shape
            .iter()
            .skip(1)
            .try_fold(1usize, |n, &d| n.checked_mul(d));
        if let Some(per_example) = per_example.filter(|&n| n > 0) {
            let _ = a.data.into_f32(per_example);
        }
    }
}

/// A TOML model spec: parsed, summarised and built.
pub fn spec(data: &[u8]) {
    budget();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = convnet_layers::ModelSpec::parse(text, "fuzz.toml") else {
        return;
    };
    // The summary counts without allocating; building checks the weights' memory first.
    let _ = spec.summary(&device());
    let _ = spec.build(&device());
}

/// A darknet `.cfg`: parsed, its layer shapes and darknet's table.
pub fn darknet(data: &[u8]) {
    budget();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = convnet_zoo::darknet::DarknetCfg::parse(text, "fuzz.cfg") {
        let _ = cfg.shapes();
        let _ = cfg.table();
    }
}

/// A convnet checkpoint: opened (validated whole) and its architecture rebuilt. The input's
/// last four bytes are replaced by the checksum of the rest, as a real file would carry it:
/// otherwise nearly every mutation stops at the checksum and the sections behind it (the
/// metadata's checks, the tensors) are never reached.
pub fn checkpoint(data: &[u8]) {
    budget();
    let mut bytes = data.to_vec();
    if let Some(body) = bytes.len().checked_sub(4) {
        let crc = crc32fast::hash(&bytes[..body]);
        bytes[body..].copy_from_slice(&crc.to_le_bytes());
    }
    let path = Path::new("fuzz.ckpt");
    if let Ok(ckpt) = convnet_train::checkpoint::Checkpoint::from_bytes(&bytes, path)
        && let Ok(spec) = ckpt.spec(path)
    {
        let _ = spec.build(&device());
    }
}

/// A PyTorch `.pth` state dict (pickle in a zip; nothing in it is ever run).
pub fn pth(data: &[u8]) {
    budget();
    let _ = convnet_weights::read(scratch_file("weights.pth", data));
}

/// A safetensors file.
pub fn safetensors(data: &[u8]) {
    budget();
    let _ = convnet_weights::read(scratch_file("weights.safetensors", data));
}

/// A TF.js weights manifest and its shard: the first two bytes give the manifest's length, the
/// rest of the input after it is the shard, saved under the names face-api's manifests use.
pub fn tfjs(data: &[u8]) {
    budget();
    let (manifest, shard) = split(data);
    if let Ok(text) = std::str::from_utf8(manifest) {
        let _ = convnet_weights::parse_manifest(text);
    }
    scratch_file("model-shard1", shard);
    scratch_file("group1-shard1of1", shard);
    let _ = convnet_weights::read_tfjs(&scratch_file("model-weights_manifest.json", manifest));
}

/// COCO ground truth and results (split as for [`tfjs`]).
pub fn coco(data: &[u8]) {
    budget();
    let (truth, results) = split(data);
    let (Ok(truth), Ok(results)) = (std::str::from_utf8(truth), std::str::from_utf8(results))
    else {
        return;
    };
    let path = Path::new("fuzz.json");
    if let Ok(t) = convnet_vision::coco::parse_truth(truth, path) {
        let _ = convnet_vision::coco::parse_results(results, path, &t);
    }
}

/// A face gallery (an SQLite file): opened, listed, and asked to identify a face.
pub fn gallery(data: &[u8]) {
    budget();
    let path = scratch_file("gallery.db", data);
    if let Ok(g) = convnet_face::gallery::Gallery::open(&path) {
        let _ = g.people();
        let probe = vec![0.1; g.dim().min(4096)];
        let _ = g.identify(&probe, 0.6);
    }
}

/// `data` as two parts: a big-endian `u16` length, that many bytes, and the rest.
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data {
        [a, b, rest @ ..] => {
            rest.split_at(usize::from(u16::from_be_bytes([*a, *b])).min(rest.len()))
        }
        _ => (data, &[]),
    }
}

/// The memory any one input may make convnet ask for: sizes above it must be refused before
/// allocating. libFuzzer's own RSS limit (`scripts/fuzz.sh`) sits above it, so an input that
/// reaches libFuzzer's limit is a size that escaped the checks.
pub const MEMORY_LIMIT: u64 = 1 << 30;

/// Every target starts here, so the limit is in force before any input is read.
fn budget() {
    convnet_layers::limits::set_memory_limit(MEMORY_LIMIT);
}

fn device() -> Device {
    Device::flex()
}

/// Writes `data` to `name` in this process's scratch directory, replacing what was there.
fn scratch_file(name: &str, data: &[u8]) -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("a scratch directory for fuzzing"));
    let path = dir.path().join(name);
    std::fs::write(&path, data).expect("the scratch directory is writable");
    path
}
