//! COCO's JSON formats for detection: ground truth (`images`, `annotations`, `categories`) and
//! results (a list of `{image_id, category_id, bbox, score}`), with `bbox` as
//! `[x, y, width, height]` in pixels. Everything is checked on the way in: an inconsistent file
//! is an error naming the entry, never a silently wrong score.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use crate::boxes::BBox;
use crate::map::{GroundTruth, Scored};

/// Why a COCO file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CocoError {
    #[error("cannot read {}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not COCO {what} JSON: {message}", path.display())]
    Format {
        path: std::path::PathBuf,
        what: &'static str,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    Inconsistent {
        path: std::path::PathBuf,
        message: String,
    },
}

#[derive(Deserialize)]
struct RawImage {
    id: u64,
    #[serde(default)]
    width: Option<f32>,
    #[serde(default)]
    height: Option<f32>,
}

#[derive(Deserialize)]
struct RawAnnotation {
    #[serde(default)]
    id: Option<u64>,
    image_id: u64,
    category_id: u64,
    bbox: [f32; 4],
    #[serde(default)]
    iscrowd: u8,
}

#[derive(Deserialize)]
struct RawCategory {
    id: u64,
    name: String,
}

#[derive(Deserialize)]
struct RawTruth {
    images: Vec<RawImage>,
    annotations: Vec<RawAnnotation>,
    categories: Vec<RawCategory>,
}

#[derive(Deserialize)]
struct RawResult {
    image_id: u64,
    category_id: u64,
    bbox: [f32; 4],
    score: f32,
}

/// A ground-truth file: the objects, the category names by id, the image ids.
#[derive(Debug, Clone)]
pub struct CocoTruth {
    pub objects: Vec<GroundTruth>,
    pub categories: BTreeMap<u64, String>,
    pub images: BTreeSet<u64>,
}

fn read(path: &Path) -> Result<String, CocoError> {
    std::fs::read_to_string(path).map_err(|source| CocoError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn inconsistent(path: &Path, message: String) -> CocoError {
    CocoError::Inconsistent {
        path: path.to_path_buf(),
        message,
    }
}

fn bbox(path: &Path, what: &str, b: [f32; 4]) -> Result<BBox, CocoError> {
    BBox::from_xywh(b[0], b[1], b[2], b[3]).map_err(|e| inconsistent(path, format!("{what}: {e}")))
}

/// Reads a ground-truth file. Crowd annotations are refused (they need COCO's ignore rules,
/// which convnet does not implement); boxes must lie in their image (1 px of slack for
/// rounding) when the image's size is given.
pub fn read_truth(path: &Path) -> Result<CocoTruth, CocoError> {
    parse_truth(&read(path)?, path)
}

/// [`read_truth`] for a file's text; `path` only names it in errors.
pub fn parse_truth(text: &str, path: &Path) -> Result<CocoTruth, CocoError> {
    let raw: RawTruth = serde_json::from_str(text).map_err(|e| CocoError::Format {
        path: path.to_path_buf(),
        what: "ground-truth",
        message: e.to_string(),
    })?;
    let mut sizes = BTreeMap::new();
    for img in &raw.images {
        if sizes.insert(img.id, (img.width, img.height)).is_some() {
            return Err(inconsistent(
                path,
                format!("image id {} appears twice", img.id),
            ));
        }
    }
    let mut categories = BTreeMap::new();
    for c in raw.categories {
        if categories.insert(c.id, c.name).is_some() {
            return Err(inconsistent(
                path,
                format!("category id {} appears twice", c.id),
            ));
        }
    }
    let mut objects = Vec::with_capacity(raw.annotations.len());
    for (i, a) in raw.annotations.iter().enumerate() {
        let what = format!(
            "annotation {}",
            a.id.map_or(format!("#{i}"), |id| format!("id {id}"))
        );
        let Some(&(w, h)) = sizes.get(&a.image_id) else {
            return Err(inconsistent(
                path,
                format!(
                    "{what} refers to image {} which is not in images",
                    a.image_id
                ),
            ));
        };
        if !categories.contains_key(&a.category_id) {
            return Err(inconsistent(
                path,
                format!(
                    "{what} has category {} which is not in categories",
                    a.category_id
                ),
            ));
        }
        if a.iscrowd != 0 {
            return Err(inconsistent(
                path,
                format!(
                    "{what} is a crowd annotation; convnet evaluates boxes without crowd regions"
                ),
            ));
        }
        let b = bbox(path, &what, a.bbox)?;
        if let (Some(w), Some(h)) = (w, h) {
            b.check_inside(w + 1.0, h + 1.0)
                .map_err(|e| inconsistent(path, format!("{what}: {e}")))?;
        }
        objects.push(GroundTruth {
            image: a.image_id,
            class: a.category_id,
            bbox: b,
        });
    }
    if objects.is_empty() {
        return Err(inconsistent(
            path,
            "the file has no annotations to evaluate against".into(),
        ));
    }
    Ok(CocoTruth {
        objects,
        categories,
        images: sizes.into_keys().collect(),
    })
}

/// Reads a results file made for `truth`: every image and category must be known to it.
pub fn read_results(path: &Path, truth: &CocoTruth) -> Result<Vec<Scored>, CocoError> {
    parse_results(&read(path)?, path, truth)
}

/// [`read_results`] for a file's text; `path` only names it in errors.
pub fn parse_results(text: &str, path: &Path, truth: &CocoTruth) -> Result<Vec<Scored>, CocoError> {
    let raw: Vec<RawResult> = serde_json::from_str(text).map_err(|e| CocoError::Format {
        path: path.to_path_buf(),
        what: "results",
        message: format!("{e} (expected a list of {{image_id, category_id, bbox, score}})"),
    })?;
    if raw.is_empty() {
        return Err(inconsistent(
            path,
            "there are no detections at all: nothing to evaluate".into(),
        ));
    }
    raw.iter()
        .enumerate()
        .map(|(i, r)| {
            let what = format!("detection #{i}");
            if !truth.images.contains(&r.image_id) {
                return Err(inconsistent(
                    path,
                    format!(
                        "{what} is for image {}, which the ground truth does not have",
                        r.image_id
                    ),
                ));
            }
            if !truth.categories.contains_key(&r.category_id) {
                return Err(inconsistent(
                    path,
                    format!(
                        "{what} has category {}, which the ground truth does not have",
                        r.category_id
                    ),
                ));
            }
            if !r.score.is_finite() {
                return Err(inconsistent(path, format!("{what} has score {}", r.score)));
            }
            Ok(Scored {
                image: r.image_id,
                class: r.category_id,
                bbox: bbox(path, &what, r.bbox)?,
                score: r.score,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::Strategy as _;

    proptest::proptest! {
        /// Arbitrary text, and well-formed files with extreme numbers, are read or refused,
        /// never a panic.
        #[test]
        fn arbitrary_coco_files_never_panic(text in ".{0,300}") {
            let path = Path::new("c.json");
            if let Ok(truth) = parse_truth(&text, path) {
                let _ = parse_results(&text, path, &truth);
            }
        }

        #[test]
        fn extreme_numbers_never_panic(
            v in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::any::<f32>().prop_map(|f| format!("{f:e}")),
                    proptest::prelude::any::<u64>().prop_map(|n| n.to_string()),
                    proptest::prelude::Just("-1".to_string()),
                    proptest::prelude::Just("1e39".to_string()),
                ],
                10,
            ),
        ) {
            let path = Path::new("c.json");
            let truth = format!(
                r#"{{"images": [{{"id": 1, "width": {}, "height": {}}}],
                "annotations": [{{"image_id": 1, "category_id": 1, "bbox": [{}, {}, {}, {}]}}],
                "categories": [{{"id": 1, "name": "a"}}]}}"#,
                v[0], v[1], v[2], v[3], v[4], v[5]
            );
            let results = format!(
                r#"[{{"image_id": 1, "category_id": 1, "bbox": [{}, {}, {}, {}], "score": {}}}]"#,
                v[6], v[7], v[8], v[9], v[0]
            );
            if let Ok(t) = parse_truth(&truth, path) {
                let _ = parse_results(&results, path, &t);
            }
        }
    }
}
