//! COCO instances JSON: `images` (`id`, `file_name`, `width`, `height`), `annotations`
//! (`image_id`, `category_id`, `bbox` as `[x, y, width, height]` in pixels, `iscrowd`) and
//! `categories` (`id`, `name`). Classes are the categories in id order, numbered from 0.
//! Crowd boxes (`iscrowd: 1`) are left out and counted, as pycocotools leaves them out of
//! scoring. Every picture is looked for beside the JSON, in `images/` beside it, and — for
//! COCO's own layout, `annotations/instances_NAME.json` — in `NAME/` or `images/` beside
//! `annotations/` (the latter is CVAT's export).
//!
//! JSON has no useful line per annotation, so problems name the file and the annotation (or
//! image) id.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::json;

use super::layout::picture::{check_box, picture_size};
use super::layout::{Scan, folder_error, output};
use super::{DetectionDataset, LabelledBox, LabelledImage, Layout, Split};
use crate::DataError;

#[derive(Deserialize)]
struct RawFile {
    images: Vec<RawImage>,
    #[serde(default)]
    annotations: Vec<RawAnnotation>,
    categories: Vec<RawCategory>,
}

#[derive(Deserialize)]
struct RawImage {
    id: u64,
    file_name: String,
    #[serde(default)]
    width: Option<f64>,
    #[serde(default)]
    height: Option<f64>,
}

#[derive(Deserialize)]
struct RawAnnotation {
    #[serde(default)]
    id: Option<u64>,
    image_id: u64,
    category_id: u64,
    #[serde(default)]
    bbox: Option<Vec<f64>>,
    /// 0/1 as COCO writes it; some exporters write a boolean.
    #[serde(default)]
    iscrowd: serde_json::Value,
}

#[derive(Deserialize)]
struct RawCategory {
    id: u64,
    name: String,
}

/// One instances file as read, and the split it holds.
struct Loaded {
    json: PathBuf,
    split: Split,
    raw: RawFile,
}

/// One instances JSON: every picture in one split, no splits named.
pub(crate) fn read_file(json: &Path) -> Result<Scan, DataError> {
    let root = json.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut scan = Scan::new(&root, Layout::Coco);
    let loaded: Vec<Loaded> = load(json, &mut scan)?
        .map(|raw| Loaded {
            json: json.to_path_buf(),
            split: Split::Train,
            raw,
        })
        .into_iter()
        .collect();
    read_loaded(&loaded, &mut scan);
    Ok(scan)
}

/// COCO's own layout: `root/annotations/instances_NAME.json`, the split named by `NAME`
/// (`train2017`, `val`...). A single file whose name names no split (CVAT's
/// `instances_default.json`) is a data set without splits.
pub(crate) fn read_folder(root: &Path) -> Result<Scan, DataError> {
    let mut scan = Scan::new(root, Layout::Coco);
    let files = instances_files(&root.join("annotations"))?;
    if files.is_empty() {
        return Err(folder_error(root, "no annotations/instances_*.json"));
    }
    let named: Vec<Option<Split>> = files.iter().map(|f| split_of(f)).collect();
    let has_splits = files.len() > 1 || named[0].is_some();
    let mut loaded = Vec::new();
    for (json, split) in files.iter().zip(named) {
        let split = match (split, has_splits) {
            (Some(split), _) => split,
            (None, false) => Split::Train,
            (None, true) => {
                let msg = "cannot tell which split this file holds: its name names none of \
                           train, val and test";
                scan.problem(json, None, msg);
                continue;
            }
        };
        if let Some(raw) = load(json, &mut scan)? {
            loaded.push(Loaded {
                json: json.clone(),
                split,
                raw,
            });
        }
    }
    read_loaded(&loaded, &mut scan);
    scan.dataset.has_splits = has_splits;
    Ok(scan)
}

/// The `instances_*.json` files in `dir`, sorted (none when `dir` does not exist).
pub(crate) fn instances_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    Ok(super::layout::picture::sorted_entries(dir)?
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with("instances_") && name.ends_with(".json") && p.is_file()
        })
        .collect())
}

/// `NAME` of `instances_NAME.json`.
fn instances_name(json: &Path) -> Option<String> {
    let stem = json.file_stem()?.to_string_lossy();
    stem.strip_prefix("instances_").map(str::to_string)
}

/// The split a file's name gives: `train` (`trainval` too), then `val`, then `test`.
fn split_of(json: &Path) -> Option<Split> {
    let name = instances_name(json)?.to_ascii_lowercase();
    [
        ("train", Split::Train),
        ("val", Split::Val),
        ("test", Split::Test),
    ]
    .into_iter()
    .find(|(word, _)| name.contains(word))
    .map(|(_, split)| split)
}

/// Where the pictures of `json` may be, in the order tried.
fn picture_dirs(json: &Path) -> Vec<PathBuf> {
    let dir = json.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut dirs = vec![dir.clone(), dir.join("images")];
    if dir.file_name().is_some_and(|n| n == "annotations") {
        let root = dir.parent().unwrap_or(Path::new(".")).to_path_buf();
        if let Some(name) = instances_name(json) {
            dirs.push(root.join(name));
        }
        dirs.push(root.join("images"));
        dirs.push(root);
    }
    dirs
}

/// The file parsed; `None` (and a problem with the line) when it is not an instances JSON.
fn load(json: &Path, scan: &mut Scan) -> Result<Option<RawFile>, DataError> {
    let text = std::fs::read_to_string(json).map_err(|source| DataError::Read {
        path: json.to_path_buf(),
        source,
    })?;
    match serde_json::from_str::<RawFile>(&text) {
        Ok(raw) => Ok(Some(raw)),
        Err(e) => {
            let line = (e.line() > 0).then_some(e.line());
            let msg = format!("not a COCO instances JSON (images, annotations, categories): {e}");
            scan.problem(json, line, msg);
            Ok(None)
        }
    }
}

fn read_loaded(files: &[Loaded], scan: &mut Scan) {
    let classes = classes(files, scan);
    scan.dataset.classes = classes.values().map(|(_, name)| name.clone()).collect();
    let index: HashMap<u64, usize> = classes.iter().map(|(&id, &(i, _))| (id, i)).collect();
    for file in files {
        read_instances(file, &index, scan);
    }
}

/// Category id → (class index, name): every file's categories, in id order. One id with two
/// names is a problem (the first name is kept).
fn classes(files: &[Loaded], scan: &mut Scan) -> BTreeMap<u64, (usize, String)> {
    let mut names: BTreeMap<u64, String> = BTreeMap::new();
    for file in files {
        for c in &file.raw.categories {
            match names.get(&c.id) {
                Some(name) if *name != c.name => {
                    let msg = format!(
                        "category id {} is `{}` here but `{name}` elsewhere",
                        c.id, c.name
                    );
                    scan.problem(&file.json, None, msg);
                }
                Some(_) => {}
                None => {
                    names.insert(c.id, c.name.clone());
                }
            }
        }
    }
    names
        .into_iter()
        .enumerate()
        .map(|(i, (id, name))| (id, (i, name)))
        .collect()
}

fn read_instances(file: &Loaded, classes: &HashMap<u64, usize>, scan: &mut Scan) {
    let json = &file.json;
    let dirs = picture_dirs(json);
    // Every listed image id; `Some` for those whose picture was read.
    let mut images: BTreeMap<u64, Option<LabelledImage>> = BTreeMap::new();
    for raw in &file.raw.images {
        if images.contains_key(&raw.id) {
            scan.problem(json, None, format!("image id {} is listed twice", raw.id));
            continue;
        }
        let picture = picture(raw, &dirs, json, scan);
        images.insert(raw.id, picture);
    }
    for (n, a) in file.raw.annotations.iter().enumerate() {
        let name = match a.id {
            Some(id) => format!("annotation id {id}"),
            None => format!("annotation #{} (no id)", n + 1),
        };
        if matches!(&a.iscrowd, serde_json::Value::Bool(true))
            || a.iscrowd.as_u64().is_some_and(|v| v != 0)
        {
            scan.crowd_ignored += 1;
            continue;
        }
        let Some(&class) = classes.get(&a.category_id) else {
            let msg = format!("{name}: category_id {} is not in categories", a.category_id);
            scan.problem(json, None, msg);
            continue;
        };
        let Some(image) = images.get_mut(&a.image_id) else {
            let msg = format!("{name}: image_id {} is not in images", a.image_id);
            scan.problem(json, None, msg);
            continue;
        };
        // A picture that could not be read is already a problem.
        let Some(image) = image.as_mut() else {
            continue;
        };
        let bbox = match a.bbox.as_deref() {
            Some(&[x, y, w, h]) => check_box([x, y, x + w, y + h], image.width, image.height)
                .map_err(|e| format!("{name}: bbox [{x}, {y}, {w}, {h}]: {e}")),
            Some(other) => Err(format!(
                "{name}: bbox has {} numbers, expected 4: [x, y, width, height]",
                other.len()
            )),
            None => Err(format!("{name}: no bbox")),
        };
        match bbox {
            Ok(bbox) => image.boxes.push(LabelledBox {
                bbox,
                class,
                difficult: false,
            }),
            Err(msg) => scan.problem(json, None, msg),
        }
    }
    for image in images.into_values().flatten() {
        scan.push(file.split, image);
    }
}

/// The picture of one image entry, its size read and checked against the JSON's.
fn picture(
    raw: &RawImage,
    dirs: &[PathBuf],
    json: &Path,
    scan: &mut Scan,
) -> Option<LabelledImage> {
    let Some(path) = dirs
        .iter()
        .map(|d| d.join(&raw.file_name))
        .find(|p| p.is_file())
    else {
        let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        let msg = format!(
            "image id {}: picture {} not found (looked in {})",
            raw.id,
            raw.file_name,
            looked.join(", ")
        );
        scan.problem(json, None, msg);
        return None;
    };
    let (width, height) = match picture_size(&path) {
        Ok(size) => size,
        Err(p) => {
            scan.problems.push(p);
            return None;
        }
    };
    let stated = (
        raw.width.unwrap_or(f64::from(width)),
        raw.height.unwrap_or(f64::from(height)),
    );
    if stated != (f64::from(width), f64::from(height)) {
        let msg = format!(
            "image id {} ({}): the JSON says {}x{} but the picture is {width}x{height}",
            raw.id, raw.file_name, stated.0, stated.1
        );
        scan.problem(json, None, msg);
    }
    Some(LabelledImage {
        path,
        width,
        height,
        boxes: Vec::new(),
        labelled: true,
    })
}

/// Writes `ds` in COCO's own layout: `annotations/instances_{split}.json` with the pictures in
/// `{split}/` (`instances_default.json` and `images/` for a data set without splits, as CVAT
/// exports). Category ids run from 1 in class order, as COCO numbers them.
pub fn write(ds: &DetectionDataset, out: &Path) -> Result<(), DataError> {
    output::start(ds, out)?;
    let splits = output::splits_named(ds);
    let placed = output::place(ds);
    let categories: Vec<_> = (1u64..)
        .zip(&ds.classes)
        .map(|(id, name)| json!({"id": id, "name": name, "supercategory": ""}))
        .collect();
    let mut annotation_id = 0u64;
    for split in Split::ALL {
        let (name, folder) = match splits {
            true => (split.name(), split.name()),
            false => ("default", "images"),
        };
        let items: Vec<_> = placed.iter().filter(|p| p.split == split).collect();
        if items.is_empty() {
            continue;
        }
        let mut images = Vec::new();
        let mut annotations = Vec::new();
        for (image_id, p) in (1u64..).zip(&items) {
            output::link_or_copy(&p.image.path, &out.join(folder).join(&p.name))?;
            images.push(json!({
                "id": image_id,
                "file_name": p.name,
                "width": p.image.width,
                "height": p.image.height,
            }));
            for b in &p.image.boxes {
                annotation_id += 1;
                let [x1, y1, x2, y2] = b.bbox.map(f64::from);
                let (w, h) = (x2 - x1, y2 - y1);
                annotations.push(json!({
                    "id": annotation_id,
                    "image_id": image_id,
                    "category_id": b.class as u64 + 1,
                    "bbox": [x1, y1, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }));
            }
        }
        let doc = json!({"images": images, "annotations": annotations, "categories": categories});
        let dir = out.join("annotations");
        output::create_dir(&dir)?;
        let text = serde_json::to_string_pretty(&doc).map_err(|e| DataError::Write {
            path: dir.clone(),
            source: std::io::Error::other(e),
        })?;
        output::write_text(&dir.join(format!("instances_{name}.json")), &text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn picture(path: &Path, w: u32, h: u32) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::RgbImage::new(w, h).save(path).unwrap();
    }

    /// A JSON with two pictures (a.png 100x50, b.png 40x40) and the given annotations.
    fn dataset(annotations: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        picture(&dir.path().join("images/a.png"), 100, 50);
        picture(&dir.path().join("images/b.png"), 40, 40);
        let json = dir.path().join("boxes.json");
        let text = format!(
            r#"{{"images": [{{"id": 1, "file_name": "a.png", "width": 100, "height": 50}},
                           {{"id": 2, "file_name": "b.png", "width": 40, "height": 40}}],
                "categories": [{{"id": 7, "name": "dog"}}, {{"id": 3, "name": "cat"}}],
                "annotations": [{annotations}]}}"#
        );
        fs::write(&json, text).unwrap();
        (dir, json)
    }

    #[test]
    fn boxes_are_read_in_pixels_with_classes_in_category_id_order() {
        let (_dir, json) = dataset(
            r#"{"id": 1, "image_id": 1, "category_id": 7, "bbox": [10, 5, 20, 30], "iscrowd": 0},
               {"id": 2, "image_id": 1, "category_id": 3, "bbox": [0, 0, 100, 50]},
               {"id": 3, "image_id": 2, "category_id": 3, "bbox": [1, 1, 2, 2], "iscrowd": 1}"#,
        );
        let scan = read_file(&json).unwrap();
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        let ds = scan.dataset;
        assert_eq!(ds.classes, ["cat", "dog"]);
        assert!(!ds.has_splits);
        assert_eq!(ds.train.len(), 2);
        let a = &ds.train[0];
        assert_eq!((a.width, a.height), (100, 50));
        assert_eq!(a.boxes[0].bbox, [10.0, 5.0, 30.0, 35.0]);
        assert_eq!(a.boxes[0].class, 1);
        assert_eq!(a.boxes[1].class, 0);
        // The crowd box is counted, not used.
        assert_eq!(scan.crowd_ignored, 1);
        assert!(ds.train[1].boxes.is_empty() && ds.train[1].labelled);
    }

    #[test]
    fn every_bad_annotation_names_the_json_and_its_id() {
        let cases = [
            (
                r#"[90, 5, 20, 30]"#,
                "annotation id 5: bbox [90, 5, 20, 30]: box x 90..110, y 5..35 reaches outside the 100x50 picture",
            ),
            (r#"[-3, 5, 20, 30]"#, "reaches outside the 100x50 picture"),
            (
                r#"[10, 5, 0, 30]"#,
                "annotation id 5: bbox [10, 5, 0, 30]: box x 10..10, y 5..35: zero or negative width",
            ),
            (r#"[10, 5, 20, -1]"#, "zero or negative height"),
            (
                r#"[10, 5, 20]"#,
                "annotation id 5: bbox has 3 numbers, expected 4",
            ),
        ];
        for (bbox, want) in cases {
            let (_dir, json) = dataset(&format!(
                r#"{{"id": 5, "image_id": 1, "category_id": 7, "bbox": {bbox}}}"#
            ));
            let scan = read_file(&json).unwrap();
            assert_eq!(scan.problems.len(), 1, "{:?}", scan.problems);
            let shown = scan.problems[0].to_string();
            assert!(shown.starts_with(&json.display().to_string()), "{shown}");
            assert!(shown.contains(want), "{want}: {shown}");
            assert!(scan.dataset.train[0].boxes.is_empty());
        }
    }

    #[test]
    fn unknown_ids_missing_and_unreadable_pictures_and_wrong_sizes_are_problems() {
        let (dir, json) = dataset(
            r#"{"id": 8, "image_id": 9, "category_id": 7, "bbox": [1, 1, 2, 2]},
               {"id": 9, "image_id": 1, "category_id": 4, "bbox": [1, 1, 2, 2]}"#,
        );
        let text = fs::read_to_string(&json).unwrap().replace(
            r#"{"id": 2, "file_name": "b.png", "width": 40, "height": 40}"#,
            r#"{"id": 2, "file_name": "b.png", "width": 41, "height": 40},
               {"id": 3, "file_name": "gone.png", "width": 4, "height": 4},
               {"id": 4, "file_name": "bad.png", "width": 4, "height": 4}"#,
        );
        fs::write(&json, text).unwrap();
        fs::write(dir.path().join("bad.png"), "not a png").unwrap();
        let scan = read_file(&json).unwrap();
        let shown: Vec<String> = scan.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(shown.len(), 5, "{shown:?}");
        assert!(
            shown[0].contains(
                "boxes.json: image id 2 (b.png): the JSON says 41x40 but the picture is 40x40"
            ),
            "{shown:?}"
        );
        assert!(
            shown[1].contains("boxes.json: image id 3: picture gone.png not found (looked in"),
            "{shown:?}"
        );
        assert!(
            shown[2].contains("bad.png: cannot read the picture"),
            "{shown:?}"
        );
        assert!(
            shown[3].contains("boxes.json: annotation id 8: image_id 9 is not in images"),
            "{shown:?}"
        );
        assert!(
            shown[4].contains("boxes.json: annotation id 9: category_id 4 is not in categories"),
            "{shown:?}"
        );
    }

    #[test]
    fn a_file_that_is_not_coco_is_a_problem_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("x.json");
        fs::write(&json, "{\n\"images\": [],\n\"categories\": [\n}").unwrap();
        let scan = read_file(&json).unwrap();
        assert_eq!(scan.problems.len(), 1);
        assert_eq!(scan.problems[0].line, Some(4));
        assert!(
            scan.problems[0]
                .message
                .contains("not a COCO instances JSON")
        );
    }

    #[test]
    fn cocos_own_layout_names_splits_by_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        picture(&root.join("train2017/a.png"), 10, 10);
        picture(&root.join("val2017/b.png"), 10, 10);
        let file = |name: &str, pic: &str| {
            let text = format!(
                r#"{{"images": [{{"id": 1, "file_name": "{pic}", "width": 10, "height": 10}}],
                    "annotations": [{{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}}],
                    "categories": [{{"id": 1, "name": "x"}}]}}"#
            );
            fs::create_dir_all(root.join("annotations")).unwrap();
            fs::write(root.join("annotations").join(name), text).unwrap();
        };
        file("instances_train2017.json", "a.png");
        file("instances_val2017.json", "b.png");
        let scan = read_folder(root).unwrap();
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        assert!(scan.dataset.has_splits);
        assert_eq!(scan.dataset.train[0].path, root.join("train2017/a.png"));
        assert_eq!(scan.dataset.val[0].boxes[0].bbox, [1.0, 2.0, 4.0, 6.0]);
        file("instances_extra.json", "a.png");
        let scan = read_folder(root).unwrap();
        assert_eq!(scan.problems.len(), 1);
        assert!(scan.problems[0].message.contains("cannot tell which split"));
    }

    #[test]
    fn written_data_sets_read_back_box_for_box() {
        let (dir, json) = dataset(
            r#"{"id": 1, "image_id": 1, "category_id": 7, "bbox": [10.3, 5.1, 20.7, 30.9]},
               {"id": 2, "image_id": 2, "category_id": 3, "bbox": [0, 0, 40, 40]}"#,
        );
        let mut ds = read_file(&json).unwrap().dataset;
        ds.split_off_val(0.5, 1);
        let out = dir.path().join("out");
        write(&ds, &out).unwrap();
        let back = read_folder(&out).unwrap();
        assert!(back.problems.is_empty(), "{:?}", back.problems);
        let back = back.dataset;
        assert_eq!(back.classes, ds.classes);
        assert!(back.has_splits);
        for split in Split::ALL {
            let boxes = |d: &DetectionDataset| -> Vec<LabelledBox> {
                d.split(split)
                    .iter()
                    .flat_map(|i| i.boxes.clone())
                    .collect()
            };
            assert_eq!(boxes(&back), boxes(&ds), "{split:?}");
        }
        // Without splits: CVAT's instances_default.json and images/.
        let ds = read_file(&json).unwrap().dataset;
        let out = dir.path().join("flat");
        write(&ds, &out).unwrap();
        assert!(out.join("annotations/instances_default.json").is_file());
        let back = read_folder(&out).unwrap();
        assert!(back.problems.is_empty(), "{:?}", back.problems);
        assert!(!back.dataset.has_splits);
        assert_eq!(back.dataset.train.len(), 2);
    }
}
