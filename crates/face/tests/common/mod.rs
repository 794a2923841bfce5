//! What the face tests share: face-api's package (fetched by `scripts/fetch-pretrained.sh
//! face-api`, as CI does) and face-api's own outputs (`fixtures/face/reference.json`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::Value;

/// A file of face-api's npm package, e.g. `model/…-weights_manifest.json` or `demo/sample1.jpg`.
pub fn face_api(relative: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../third_party/face-api")
        .join(relative);
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-pretrained.sh face-api",
        path.display()
    );
    path
}

/// face-api.js 1.7.15's outputs on tfjs 4.22's float32 cpu backend (made by
/// `scripts/face-reference.sh`; see fixtures/face/README.md).
pub fn reference() -> &'static Value {
    static REFERENCE: OnceLock<Value> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/face/reference.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (made by scripts/face-reference.sh)",
                path.display()
            )
        });
        serde_json::from_str(&text).unwrap()
    })
}
