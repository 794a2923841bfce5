//! Ultralytics' YOLO layout: pictures in `images/{train,val,test}/` (or a flat `images/`), and
//! for each picture `labels/…/NAME.txt` with one line `class cx cy w h` per object, the centre
//! and size normalised by the picture's width and height. A picture's label file is found the
//! way Ultralytics finds it: the last `images` folder of its path replaced by `labels`, the
//! extension by `.txt` — so Roboflow's `train/images/` + `train/labels/` works too.
//!
//! Class names come from `data.yaml` (`names:` as a list or an `id: name` mapping, or `nc:`
//! alone as Ultralytics allows) or from `classes.txt`; `train:`/`val:`/`test:` in the yaml
//! point at picture folders, relative to its `path:` or to the yaml's own folder. A picture
//! without a label file has no objects (`labelled: false`), as Ultralytics treats it.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use super::layout::picture::{check_box, picture_size, pictures_under};
use super::layout::{Scan, folder_error, output, read_class_list};
use super::{DetectionDataset, LabelledBox, LabelledImage, Layout, Problem, Split, problem};
use crate::DataError;

mod yaml;

use yaml::{Value, Yaml};

/// How far a normalised coordinate may stray outside [0, 1] and still count as on the edge
/// (exporters round): such a box is clamped to the picture.
pub const TOLERANCE: f64 = 1e-6;

/// Split folders under `images/` when the yaml names none (`valid` is Roboflow's name).
const SPLIT_FOLDERS: [(&str, Split); 4] = [
    ("train", Split::Train),
    ("val", Split::Val),
    ("valid", Split::Val),
    ("test", Split::Test),
];

/// Reads the YOLO data set in `root`, configured by `yaml` when there is one.
pub(crate) fn read(root: &Path, yaml: Option<&Path>) -> Result<Scan, DataError> {
    let mut scan = Scan::new(root, Layout::Yolo);
    let config = match yaml {
        Some(file) => Some((file, read_yaml(file, &mut scan)?)),
        None => None,
    };
    let config = config.as_ref().map(|(f, y)| (*f, y));
    let names = class_names(root, config, &mut scan)?;
    let folders = split_folders(root, config, &mut scan)?;
    let class_count = names.as_ref().map(Vec::len);
    let mut claimed = HashSet::new();
    for folder in &folders {
        for picture in pictures_under(&folder.dir, &mut scan.problems)? {
            let label = label_path(&picture);
            claimed.insert(label.clone());
            if let Some(image) = read_picture(&picture, &label, class_count, &mut scan.problems)? {
                scan.push(folder.split, image);
            }
        }
    }
    orphan_labels(&folders, &claimed, &mut scan.problems)?;
    scan.dataset.classes = match names {
        Some(names) => names,
        None => {
            // No names anywhere (already a problem): number the classes the labels use, so
            // an inspection still shows them.
            let top = scan
                .dataset
                .images()
                .flat_map(|(_, i)| &i.boxes)
                .map(|b| b.class + 1);
            (0..top.max().unwrap_or(0)).map(|c| c.to_string()).collect()
        }
    };
    scan.dataset.has_splits = folders.iter().any(|f| f.named);
    Ok(scan)
}

/// A folder of pictures and the split it holds.
struct SplitFolder {
    split: Split,
    dir: PathBuf,
    /// Whether the data set named this split (a yaml key or a split folder), not the flat
    /// `images/` of a data set without splits.
    named: bool,
}

fn read_yaml(file: &Path, scan: &mut Scan) -> Result<Yaml, DataError> {
    let text = std::fs::read_to_string(file).map_err(|source| DataError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    Ok(Yaml::parse(&text).unwrap_or_else(|e| {
        scan.problem(file, Some(e.line), e.message);
        Yaml::default()
    }))
}

/// The class names: `names:` (or `nc:`) in the yaml, else `classes.txt` (in the root or in
/// `labels/`, where LabelImg writes it). `None` when there are none (a problem already).
fn class_names(
    root: &Path,
    config: Option<(&Path, &Yaml)>,
    scan: &mut Scan,
) -> Result<Option<Vec<String>>, DataError> {
    if let Some((file, yaml)) = config {
        let count = match yaml.get("nc") {
            Some(Ok(Value::Scalar(n))) => match n.parse::<usize>() {
                Ok(n) => Some(n),
                Err(_) => {
                    let line = yaml.line("nc");
                    scan.problem(file, line, format!("nc `{n}` is not a class count"));
                    None
                }
            },
            Some(Ok(_)) => {
                scan.problem(file, yaml.line("nc"), "nc must be a number");
                None
            }
            Some(Err(e)) => {
                scan.problem(file, Some(e.line), e.message);
                None
            }
            None => None,
        };
        if let Some(names) = yaml.get("names") {
            let names = names
                .map_err(|e| problem(file, Some(e.line), e.message))
                .and_then(|v| names_of(v, file, yaml.line("names").unwrap_or(1)));
            return match names {
                Err(p) => {
                    scan.problems.push(p);
                    Ok(None)
                }
                Ok(names) => {
                    if let Some(n) = count.filter(|&n| n != names.len()) {
                        let line = yaml.line("nc");
                        let msg = format!("nc is {n} but names lists {} classes", names.len());
                        scan.problem(file, line, msg);
                    }
                    Ok(Some(names))
                }
            };
        }
        if let Some(n) = count.filter(|&n| n > 0) {
            return Ok(Some((0..n).map(|i| format!("class_{i}")).collect()));
        }
    }
    for file in [
        root.join("classes.txt"),
        root.join("labels").join("classes.txt"),
    ] {
        if file.is_file() {
            return read_class_list(&file, &mut scan.problems);
        }
    }
    scan.problem(
        root,
        None,
        "no class names: give them in data.yaml (`names: [a, b]`) or in classes.txt, one per line",
    );
    Ok(None)
}

/// `names:` as a list, or as a mapping `0: a` whose ids run from 0 without a gap.
fn names_of(value: Value, file: &Path, key_line: usize) -> Result<Vec<String>, Problem> {
    let names: Vec<(usize, String)> = match value {
        Value::List(items) => items,
        Value::Map(entries) => {
            let mut slots: Vec<Option<(usize, String)>> = vec![None; entries.len()];
            for (line, key, name) in entries {
                let id = key.parse::<usize>().ok().filter(|&i| i < slots.len());
                let Some(id) = id else {
                    let n = slots.len();
                    let msg = format!("class id `{key}`: ids must run from 0 to {}", n - 1);
                    return Err(problem(file, Some(line), msg));
                };
                if slots[id].is_some() {
                    return Err(problem(
                        file,
                        Some(line),
                        format!("class id {id} given twice"),
                    ));
                }
                slots[id] = Some((line, name));
            }
            slots.into_iter().flatten().collect()
        }
        Value::Scalar(_) | Value::Empty => {
            let msg = "names must be a list (`[a, b]` or `- a` lines) or a mapping (`0: a` lines)";
            return Err(problem(file, Some(key_line), msg));
        }
    };
    if names.is_empty() {
        return Err(problem(file, Some(key_line), "names is empty"));
    }
    names
        .into_iter()
        .map(|(line, name)| match name.is_empty() {
            true => Err(problem(file, Some(line), "an empty class name")),
            false => Ok(name),
        })
        .collect()
}

/// The picture folders: the yaml's `train:`/`val:`/`test:` when it has any, else
/// `images/{train,val,test}/`, else a flat `images/` (no splits).
fn split_folders(
    root: &Path,
    config: Option<(&Path, &Yaml)>,
    scan: &mut Scan,
) -> Result<Vec<SplitFolder>, DataError> {
    if let Some((file, yaml)) = config
        && ["train", "val", "test"]
            .iter()
            .any(|k| yaml.get(k).is_some())
    {
        return Ok(yaml_folders(file, yaml, scan));
    }
    let images = root.join("images");
    if !images.is_dir() {
        return Err(folder_error(
            root,
            "no images/ folder: YOLO pictures go in images/ (or images/train/, images/val/, \
             images/test/), their labels in labels/",
        ));
    }
    let folders: Vec<SplitFolder> = SPLIT_FOLDERS
        .iter()
        .map(|&(name, split)| (images.join(name), split))
        .filter(|(dir, _)| dir.is_dir())
        .map(|(dir, split)| SplitFolder {
            split,
            dir,
            named: true,
        })
        .collect();
    if folders.is_empty() {
        return Ok(vec![SplitFolder {
            split: Split::Train,
            dir: images,
            named: false,
        }]);
    }
    // Pictures beside the split folders belong to no split: say so rather than skip them.
    let mut ignored = Vec::new();
    let loose = super::layout::picture::sorted_entries(&images)?
        .into_iter()
        .filter(|p| p.is_file() && super::layout::picture::is_picture(p))
        .count();
    if loose > 0 {
        ignored.push(problem(
            &images,
            None,
            format!(
                "{loose} pictures lie beside the split folders and belong to no split: move \
                 them into images/train/, images/val/ or images/test/"
            ),
        ));
    }
    scan.problems.extend(ignored);
    Ok(folders)
}

/// The folders `train:`, `val:` and `test:` point at, relative to `path:` (itself relative to
/// the yaml's folder) or to the yaml's folder. As in Ultralytics, `../x` that does not exist is
/// tried as `x` (Roboflow writes `../train/images` beside the yaml).
fn yaml_folders(file: &Path, yaml: &Yaml, scan: &mut Scan) -> Vec<SplitFolder> {
    let yaml_dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let base = match yaml.get("path") {
        Some(Ok(Value::Scalar(p))) if yaml_dir.join(&p).is_dir() => yaml_dir.join(p),
        _ => yaml_dir,
    };
    let mut out = Vec::new();
    for (key, split) in [
        ("train", Split::Train),
        ("val", Split::Val),
        ("test", Split::Test),
    ] {
        let line = yaml.line(key);
        let value = match yaml.get(key) {
            None | Some(Ok(Value::Empty)) => continue,
            Some(Ok(Value::Scalar(v))) if v.is_empty() || v == "null" || v == "~" => continue,
            Some(Ok(Value::Scalar(v))) => v,
            Some(Ok(_)) => {
                let msg = format!("{key}: lists of folders are not supported: give one folder");
                scan.problem(file, line, msg);
                continue;
            }
            Some(Err(e)) => {
                scan.problem(file, Some(e.line), e.message);
                continue;
            }
        };
        let mut dir = base.join(&value);
        if !dir.exists()
            && let Some(rest) = value.strip_prefix("../")
        {
            dir = base.join(rest);
        }
        if dir.is_dir() {
            out.push(SplitFolder {
                split,
                dir,
                named: true,
            });
        } else if dir.is_file() {
            let msg = format!(
                "{key}: {value} is a file: lists of picture paths are not supported, point \
                 {key}: at a folder of pictures"
            );
            scan.problem(file, line, msg);
        } else {
            let msg = format!(
                "{key}: {value}: no such folder ({})",
                base.join(&value).display()
            );
            scan.problem(file, line, msg);
        }
    }
    out
}

/// Where Ultralytics looks for a picture's labels: the last `images` folder in its path
/// replaced by `labels`, the extension by `.txt` (beside the picture when no folder is
/// called `images`).
pub fn label_path(picture: &Path) -> PathBuf {
    let parts: Vec<Component> = picture.components().collect();
    let last_images = parts[..parts.len().saturating_sub(1)]
        .iter()
        .rposition(|c| c.as_os_str() == "images");
    let mut out: PathBuf = parts
        .iter()
        .enumerate()
        .map(|(i, c)| match Some(i) == last_images {
            true => Component::Normal("labels".as_ref()),
            false => *c,
        })
        .collect();
    out.set_extension("txt");
    out
}

/// One picture and its labels; `None` when the picture cannot be read (a problem).
fn read_picture(
    picture: &Path,
    label: &Path,
    classes: Option<usize>,
    problems: &mut Vec<Problem>,
) -> Result<Option<LabelledImage>, DataError> {
    let (width, height) = match picture_size(picture) {
        Ok(size) => size,
        Err(p) => {
            problems.push(p);
            return Ok(None);
        }
    };
    let labelled = label.is_file();
    let boxes = if labelled {
        let text = std::fs::read_to_string(label).map_err(|source| DataError::Read {
            path: label.to_path_buf(),
            source,
        })?;
        parse_labels(&text, label, (width, height), classes, problems)
    } else {
        Vec::new()
    };
    Ok(Some(LabelledImage {
        path: picture.to_path_buf(),
        width,
        height,
        boxes,
        labelled,
    }))
}

/// The boxes of one label file for a `width` x `height` picture; each bad line is a problem
/// naming the file and line (and its box is not used). `classes` is how many classes have
/// names (`None`: unknown, any id goes).
pub fn parse_labels(
    text: &str,
    file: &Path,
    (width, height): (u32, u32),
    classes: Option<usize>,
    problems: &mut Vec<Problem>,
) -> Vec<LabelledBox> {
    let mut boxes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        match parse_line(&fields, (width, height), classes) {
            Ok(b) => boxes.push(b),
            Err(message) => problems.push(problem(file, Some(i + 1), message)),
        }
    }
    boxes
}

fn parse_line(
    fields: &[&str],
    (width, height): (u32, u32),
    classes: Option<usize>,
) -> Result<LabelledBox, String> {
    let n = fields.len();
    if n != 5 {
        let polygon = n >= 7 && (n - 1).is_multiple_of(2);
        return Err(match polygon {
            true => format!(
                "{n} fields: this looks like a segment polygon (class x1 y1 x2 y2 ...), which is \
                 not supported: give one box per line as `class cx cy w h`"
            ),
            false => format!("{n} fields, expected 5: `class cx cy w h`"),
        });
    }
    let class: usize = fields[0]
        .parse()
        .map_err(|_| format!("class id `{}` is not a non-negative integer", fields[0]))?;
    let mut v = [0f64; 4];
    for (k, name) in ["cx", "cy", "w", "h"].iter().enumerate() {
        let text = fields[k + 1];
        let x: f64 = text
            .parse()
            .map_err(|_| format!("{name} `{text}` is not a number"))?;
        if !x.is_finite() {
            return Err(format!("{name} `{text}` is not a finite number"));
        }
        if !(-TOLERANCE..=1.0 + TOLERANCE).contains(&x) {
            return Err(format!(
                "{name} {text} is outside [0, 1] (YOLO coordinates are fractions of the \
                 picture's size)"
            ));
        }
        v[k] = x;
    }
    let [cx, cy, w, h] = v;
    if w <= 0.0 || h <= 0.0 {
        return Err(format!(
            "zero or negative size: w {} h {}",
            fields[3], fields[4]
        ));
    }
    let (x1, x2, y1, y2) = (cx - w / 2.0, cx + w / 2.0, cy - h / 2.0, cy + h / 2.0);
    let outside = |lo: f64, hi: f64| lo < -TOLERANCE || hi > 1.0 + TOLERANCE;
    if outside(x1, x2) || outside(y1, y2) {
        return Err(format!(
            "the box reaches outside the picture: x {x1:.6}..{x2:.6}, y {y1:.6}..{y2:.6} \
             (fractions of its size)"
        ));
    }
    if let Some(count) = classes
        && class >= count
    {
        return Err(match count {
            1 => format!("class id {class} has no name: the data set names 1 class (id 0)"),
            _ => format!(
                "class id {class} has no name: the data set names {count} classes (ids 0 to {})",
                count - 1
            ),
        });
    }
    let (w_px, h_px) = (f64::from(width), f64::from(height));
    let unit = |v: f64| v.clamp(0.0, 1.0);
    let pixels = [
        unit(x1) * w_px,
        unit(y1) * h_px,
        unit(x2) * w_px,
        unit(y2) * h_px,
    ];
    let bbox = check_box(pixels, width, height)?;
    Ok(LabelledBox {
        bbox,
        class,
        difficult: false,
    })
}

/// Label files no picture claims: their boxes would be lost, so each is a problem. `classes.txt`
/// (LabelImg writes one among the labels) is not a label file.
fn orphan_labels(
    folders: &[SplitFolder],
    claimed: &HashSet<PathBuf>,
    problems: &mut Vec<Problem>,
) -> Result<(), DataError> {
    let mut walked = HashSet::new();
    for folder in folders {
        // The folder a picture directly in `dir` would have its label in.
        let labels = label_path(&folder.dir.join("x.png"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        if !labels.is_dir() || !walked.insert(labels.clone()) {
            continue;
        }
        for file in super::layout::picture::files_under(&labels)? {
            let is_label = super::layout::extension(&file) == "txt"
                && file.file_name().is_some_and(|n| n != "classes.txt");
            if is_label && !claimed.contains(&file) {
                problems.push(problem(
                    &file,
                    None,
                    format!(
                        "a label file without a picture (none named {}.png/.jpg/.jpeg where its \
                         picture would be)",
                        file.file_stem().unwrap_or_default().to_string_lossy()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Writes `ds` in Ultralytics' layout: `images/{split}/NAME.ext` and `labels/{split}/NAME.txt`
/// (flat `images/` and `labels/` for a data set without splits), and a `data.yaml` with the
/// split folders and the class names. A picture without labels gets no label file.
pub fn write(ds: &DetectionDataset, out: &Path) -> Result<(), DataError> {
    output::start(ds, out)?;
    let splits = output::splits_named(ds);
    let mut used = Vec::new();
    for placed in output::place(ds) {
        let sub = |top: &str| match splits {
            true => out.join(top).join(placed.split.name()),
            false => out.join(top),
        };
        output::link_or_copy(&placed.image.path, &sub("images").join(&placed.name))?;
        if !used.contains(&placed.split) {
            used.push(placed.split);
        }
        if placed.image.labelled {
            let labels = sub("labels");
            output::create_dir(&labels)?;
            let text = label_text(placed.image);
            output::write_text(&labels.join(format!("{}.txt", placed.stem)), &text)?;
        }
    }
    let mut yaml =
        String::from("# Ultralytics YOLO layout, written by `convnet dataset convert`.\n");
    if splits {
        for split in Split::ALL.into_iter().filter(|s| used.contains(s)) {
            let _ = writeln!(yaml, "{}: images/{}", split.name(), split.name());
        }
    }
    let _ = writeln!(yaml, "nc: {}\nnames:", ds.classes.len());
    for (i, name) in ds.classes.iter().enumerate() {
        let _ = writeln!(yaml, "  {i}: '{}'", name.replace('\'', "''"));
    }
    output::write_text(&out.join("data.yaml"), &yaml)
}

/// A picture's boxes as YOLO lines, with enough decimals that reading them back moves no
/// corner by more than 1e-5 pixels.
fn label_text(image: &LabelledImage) -> String {
    let (w, h) = (f64::from(image.width), f64::from(image.height));
    let decimals = 6 + w.max(h).log10().ceil().max(0.0) as usize;
    let mut text = String::new();
    for b in &image.boxes {
        let [x1, y1, x2, y2] = b.bbox.map(f64::from);
        let values = [
            (x1 + x2) / 2.0 / w,
            (y1 + y2) / 2.0 / h,
            (x2 - x1) / w,
            (y2 - y1) / h,
        ];
        let fields: Vec<String> = values
            .iter()
            .map(|&v| output::decimal(v, decimals))
            .collect();
        let _ = writeln!(text, "{} {}", b.class, fields.join(" "));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn parse(text: &str, classes: Option<usize>) -> (Vec<LabelledBox>, Vec<Problem>) {
        let mut problems = Vec::new();
        let boxes = parse_labels(
            text,
            Path::new("labels/a.txt"),
            (200, 100),
            classes,
            &mut problems,
        );
        (boxes, problems)
    }

    /// The single problem a one-bad-line file gives, as `file:line: message`.
    fn bad(text: &str) -> String {
        let (boxes, problems) = parse(text, Some(2));
        assert_eq!(
            boxes.len(),
            text.lines().filter(|l| !l.trim().is_empty()).count() - 1
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        problems[0].to_string()
    }

    #[test]
    fn lines_become_pixel_boxes_and_blank_lines_are_ignored() {
        let (boxes, problems) = parse("0 0.5 0.5 0.2 0.4\n\n  \n1 0.1 0.9 0.2 0.2\n", Some(2));
        assert!(problems.is_empty(), "{problems:?}");
        // Hand-computed: cx 0.5 * 200 = 100, w 0.2 * 200 = 40 → x 80..120; y 30..70.
        assert_eq!(boxes[0].bbox, [80.0, 30.0, 120.0, 70.0]);
        assert_eq!(boxes[0].class, 0);
        // A box touching two edges: x 0..40, y 80..100.
        assert_eq!(boxes[1].bbox, [0.0, 80.0, 40.0, 100.0]);
        assert_eq!(boxes[1].class, 1);
    }

    #[test]
    fn every_bad_line_names_the_file_and_line() {
        let ok = "0 0.5 0.5 0.2 0.2\n";
        let cases = [
            ("1 0.5 0.5 0.2\n", "labels/a.txt:2: 4 fields, expected 5"),
            (
                "1 0.5 0.5 0.2 0.2 0.9\n",
                "labels/a.txt:2: 6 fields, expected 5",
            ),
            (
                "0 0.1 0.1 0.2 0.1 0.2 0.2\n",
                "labels/a.txt:2: 7 fields: this looks like a segment polygon",
            ),
            (
                "x 0.5 0.5 0.2 0.2\n",
                "labels/a.txt:2: class id `x` is not a non-negative integer",
            ),
            (
                "-1 0.5 0.5 0.2 0.2\n",
                "labels/a.txt:2: class id `-1` is not",
            ),
            (
                "1.5 0.5 0.5 0.2 0.2\n",
                "labels/a.txt:2: class id `1.5` is not",
            ),
            (
                "2 0.5 0.5 0.2 0.2\n",
                "labels/a.txt:2: class id 2 has no name: the data set names 2 classes (ids 0 to 1)",
            ),
            (
                "1 0.5 abc 0.2 0.2\n",
                "labels/a.txt:2: cy `abc` is not a number",
            ),
            (
                "1 0.5 nan 0.2 0.2\n",
                "labels/a.txt:2: cy `nan` is not a finite number",
            ),
            (
                "1 0.5 0.5 inf 0.2\n",
                "labels/a.txt:2: w `inf` is not a finite number",
            ),
            (
                "1 1.2 0.5 0.2 0.2\n",
                "labels/a.txt:2: cx 1.2 is outside [0, 1]",
            ),
            (
                "1 0.5 -0.1 0.2 0.2\n",
                "labels/a.txt:2: cy -0.1 is outside [0, 1]",
            ),
            ("1 0.5 0.5 0 0.2\n", "labels/a.txt:2: zero or negative size"),
            ("1 0.5 0.5 0.2 -0.2\n", "labels/a.txt:2: h -0.2 is outside"),
            (
                "1 0.95 0.5 0.2 0.2\n",
                "labels/a.txt:2: the box reaches outside the picture",
            ),
            (
                "1 0.5 0.05 0.2 0.2\n",
                "labels/a.txt:2: the box reaches outside the picture",
            ),
        ];
        for (line, want) in cases {
            let got = bad(&format!("{ok}{line}"));
            assert!(got.starts_with(want), "{line:?}: {got}");
        }
    }

    #[test]
    fn edges_within_the_tolerance_are_clamped_not_refused() {
        let (boxes, problems) = parse("0 0.1 0.5 0.2000005 0.2\n", Some(1));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(boxes[0].bbox[0], 0.0);
    }

    #[test]
    fn without_names_any_class_id_is_read() {
        let (boxes, problems) = parse("7 0.5 0.5 0.2 0.2\n", None);
        assert!(problems.is_empty());
        assert_eq!(boxes[0].class, 7);
    }

    #[test]
    fn label_paths_follow_ultralytics() {
        let p = |s: &str| label_path(Path::new(s));
        assert_eq!(p("d/images/train/a.jpg"), Path::new("d/labels/train/a.txt"));
        assert_eq!(
            p("d/train/images/a.b.png"),
            Path::new("d/train/labels/a.b.txt")
        );
        assert_eq!(
            p("images/x/images/a.png"),
            Path::new("images/x/labels/a.txt")
        );
        assert_eq!(p("d/pics/a.png"), Path::new("d/pics/a.txt"));
    }

    fn picture(path: &Path, w: u32, h: u32) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::RgbImage::new(w, h).save(path).unwrap();
    }

    fn text(path: &Path, content: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    #[test]
    fn a_split_data_set_with_a_yaml_mapping_of_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        picture(&root.join("images/train/a.png"), 100, 50);
        picture(&root.join("images/train/b.png"), 100, 50);
        picture(&root.join("images/val/c.png"), 40, 40);
        text(&root.join("labels/train/a.txt"), "1 0.5 0.5 0.5 0.5\n");
        text(&root.join("labels/val/c.txt"), "");
        text(
            &root.join("data.yaml"),
            "path: .\ntrain: images/train\nval: images/val\ntest:  # none\nnames:\n  0: cat\n  1: dog\n",
        );
        let scan = read(root, Some(&root.join("data.yaml"))).unwrap();
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        let ds = scan.dataset;
        assert_eq!(ds.classes, ["cat", "dog"]);
        assert!(ds.has_splits);
        assert_eq!(ds.train.len(), 2);
        assert_eq!(ds.train[0].boxes[0].bbox, [25.0, 12.5, 75.0, 37.5]);
        assert!(ds.train[0].labelled);
        // b has no label file: a picture without objects, counted as unlabelled.
        assert!(!ds.train[1].labelled && ds.train[1].boxes.is_empty());
        // c's label file is empty: labelled, no objects.
        assert!(ds.val[0].labelled && ds.val[0].boxes.is_empty());
    }

    #[test]
    fn roboflow_yaml_with_dotdot_paths_and_a_flow_list() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        picture(&root.join("train/images/a.jpg"), 30, 20);
        text(&root.join("train/labels/a.txt"), "0 0.5 0.5 1 1\n");
        picture(&root.join("valid/images/b.jpg"), 30, 20);
        text(
            &root.join("data.yaml"),
            "train: ../train/images\nval: ../valid/images\nnc: 1\nnames: ['tree']\nroboflow:\n  workspace: x\n",
        );
        let scan = read(root, Some(&root.join("data.yaml"))).unwrap();
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        assert_eq!(scan.dataset.classes, ["tree"]);
        assert_eq!(scan.dataset.train[0].boxes[0].bbox, [0.0, 0.0, 30.0, 20.0]);
        assert_eq!(scan.dataset.val.len(), 1);
    }

    #[test]
    fn flat_folders_with_classes_txt_have_no_splits() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        picture(&root.join("images/a.png"), 10, 10);
        text(&root.join("labels/a.txt"), "0 0.5 0.5 0.2 0.2\n");
        text(&root.join("classes.txt"), "one\n\n");
        let scan = read(root, None).unwrap();
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        assert!(!scan.dataset.has_splits);
        assert_eq!(scan.dataset.classes, ["one"]);
        assert_eq!(scan.dataset.train.len(), 1);
    }

    #[test]
    fn problems_of_a_data_set_name_their_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        picture(&root.join("images/train/a.png"), 10, 10);
        text(&root.join("images/train/broken.png"), "not a png");
        text(
            &root.join("labels/train/a.txt"),
            "0 0.5 0.5 0.2 0.2\n3 0.5 0.5 0.2 0.2\n",
        );
        text(&root.join("labels/train/ghost.txt"), "0 0.5 0.5 0.2 0.2\n");
        text(&root.join("labels/train/classes.txt"), "a\n");
        text(&root.join("data.yaml"), "nc: 2\nnames: [a]\n");
        let scan = read(root, Some(&root.join("data.yaml"))).unwrap();
        let shown: Vec<String> = scan
            .problems
            .iter()
            .map(|p| p.to_string().replace(&root.display().to_string(), "R"))
            .collect();
        assert_eq!(shown.len(), 4, "{shown:?}");
        assert!(
            shown[0].starts_with("R/data.yaml:1: nc is 2 but names lists 1 classes"),
            "{shown:?}"
        );
        assert!(
            shown[1].starts_with("R/labels/train/a.txt:2: class id 3 has no name"),
            "{shown:?}"
        );
        assert!(
            shown[2].starts_with("R/images/train/broken.png: cannot read the picture"),
            "{shown:?}"
        );
        assert!(
            shown[3].starts_with("R/labels/train/ghost.txt: a label file without a picture"),
            "{shown:?}"
        );
        // The good line of a.txt is still read.
        assert_eq!(scan.dataset.train[0].boxes.len(), 1);
    }

    #[test]
    fn yaml_problems_name_the_yaml_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        picture(&root.join("images/a.png"), 10, 10);
        text(&root.join("data.yaml"), "names:\n  0: a\n  2: b\n");
        let scan = read(root, Some(&root.join("data.yaml"))).unwrap();
        let first = scan.problems[0].to_string();
        assert!(
            first.ends_with("data.yaml:3: class id `2`: ids must run from 0 to 1"),
            "{first}"
        );
        text(&root.join("data.yaml"), "names: [a]\ntrain: nowhere\n");
        let scan = read(root, Some(&root.join("data.yaml"))).unwrap();
        let first = scan.problems[0].to_string();
        assert!(
            first.contains("data.yaml:2: train: nowhere: no such folder"),
            "{first}"
        );
    }

    #[test]
    fn written_data_sets_read_back_box_for_box() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        picture(&src.join("a.png"), 333, 101);
        picture(&src.join("b.png"), 64, 48);
        let boxed = |bbox, class| LabelledBox {
            bbox,
            class,
            difficult: false,
        };
        let ds = DetectionDataset {
            root: src.clone(),
            layout: Layout::Csv,
            classes: vec!["it's".into(), "b: c".into()],
            train: vec![LabelledImage {
                path: src.join("a.png"),
                width: 333,
                height: 101,
                boxes: vec![
                    boxed([1.3, 2.7, 100.1, 99.9], 1),
                    boxed([0.0, 0.0, 333.0, 101.0], 0),
                ],
                labelled: true,
            }],
            val: vec![LabelledImage {
                path: src.join("b.png"),
                width: 64,
                height: 48,
                boxes: vec![],
                labelled: false,
            }],
            test: vec![],
            has_splits: true,
        };
        let out = dir.path().join("out");
        write(&ds, &out).unwrap();
        let scan = read(&out, Some(&out.join("data.yaml"))).unwrap();
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        let back = scan.dataset;
        assert_eq!(back.classes, ds.classes);
        assert!(back.has_splits);
        assert_eq!(back.val.len(), 1);
        assert!(!back.val[0].labelled);
        for (got, want) in back.train[0].boxes.iter().zip(&ds.train[0].boxes) {
            assert_eq!(got.class, want.class);
            for k in 0..4 {
                assert!(
                    (got.bbox[k] - want.bbox[k]).abs() < 1e-4,
                    "{got:?} {want:?}"
                );
            }
        }
    }
}
