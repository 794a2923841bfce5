//! Running the `convnet` binary from the integration tests (each file uses a subset).
#![allow(dead_code)]

use std::process::{Command, Output};

pub fn convnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_convnet"))
        .args(args)
        .output()
        .expect("the convnet binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A path as a command-line argument.
pub fn s(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// A file of the committed PyTorch weights fixture (`fixtures/torch/weights`).
pub fn torch_fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/torch/weights")
        .join(name)
}

/// A successful run's stdout as JSON.
pub fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

/// A file of face-api's npm package (fetched by `scripts/fetch-pretrained.sh face-api`, as CI
/// does).
pub fn face_api(relative: &str) -> std::path::PathBuf {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../third_party/face-api")
        .join(relative);
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-pretrained.sh face-api",
        path.display()
    );
    path
}
