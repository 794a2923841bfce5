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

/// Runs the binary with extra environment variables (a fixed `CONVNET_MAX_MEMORY`, so memory
/// refusals do not depend on the machine).
pub fn convnet_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_convnet"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("the convnet binary runs")
}

/// The command was refused as bad input should be (issue 32): it exited with an error status
/// of its own (1, or clap's 2 for a flag) — not a signal, not a panic's 101 — and printed
/// exactly one `error:` line, holding every needle.
pub fn refused(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert!(
        matches!(out.status.code(), Some(1 | 2)),
        "exit {:?} (success, a signal or a panic): {err}",
        out.status
    );
    assert!(!err.contains("panicked"), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    for needle in needles {
        assert!(errors[0].contains(needle), "{needle:?} not in: {err}");
    }
}
