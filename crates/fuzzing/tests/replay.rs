//! Replays every committed fuzzing input (`fuzz/corpus/TARGET/*`, and the crashes once found in
//! `fuzz/regressions/TARGET/*`) through its target: each must return without a panic. A crash
//! that cargo-fuzz finds is fixed, then its input is committed to `fuzz/regressions/`, so this
//! test keeps it fixed.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries.filter_map(|e| e.ok()).map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    };
    files.retain(|p| p.is_file());
    files.sort();
    files
}

#[test]
fn every_target_has_a_committed_corpus() {
    for (target, _) in convnet_fuzzing::TARGETS {
        assert!(
            !inputs("corpus", target).is_empty(),
            "fuzz/corpus/{target} is empty: run scripts/fuzz.sh {target} and commit its corpus"
        );
        assert!(
            fuzz_dir()
                .join(format!("fuzz_targets/{target}.rs"))
                .is_file(),
            "no cargo-fuzz target for {target}"
        );
    }
}

#[test]
fn committed_inputs_never_panic() {
    let mut replayed = 0;
    for (target, run) in convnet_fuzzing::TARGETS {
        for kind in ["corpus", "regressions"] {
            for path in inputs(kind, target) {
                let data = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| run(&data));
                assert!(outcome.is_ok(), "{target} panicked on {}", path.display());
                replayed += 1;
            }
        }
    }
    assert!(replayed > 0);
    println!("replayed {replayed} inputs");
}
