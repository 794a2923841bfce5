//! Finding which layout a path holds and reading it: [`scan`] reads everything it can and
//! collects every problem (for `convnet dataset inspect`); [`open`] is the strict form training
//! uses, refusing a data set with any problem.
//!
//! Detection order, first match wins:
//! 1. a `.csv` file → CSV; a `.json` file → COCO; a `.yaml`/`.yml` file → YOLO (its `data.yaml`);
//! 2. a folder with `data.yaml`, or with `images/` and `labels/` → YOLO;
//! 3. a folder with `Annotations/` or `*.xml` files → Pascal VOC;
//! 4. a folder with `train.csv`/`val.csv`/`test.csv` (one per split), or exactly one other
//!    `*.csv` (beside a `classes.csv` or not) → CSV;
//! 5. a folder with `annotations/instances_*.json` (COCO's own layout) → COCO, splits named by
//!    the files;
//! 6. a folder with `classes.txt` → YOLO.
//!
//! `classes.txt` comes last because VOC and CSV data sets keep their class list in one too.

use std::path::{Path, PathBuf};

use super::{
    DetectionDataset, LabelledImage, Layout, Problem, Split, coco, csv, problem, voc, yolo,
};
use crate::DataError;

pub(crate) mod output;
pub mod picture;

/// What a reader found: the data set, every problem, and what it left out on purpose (reported,
/// never silently).
#[derive(Debug, Clone)]
pub struct Scan {
    pub dataset: DetectionDataset,
    pub problems: Vec<Problem>,
    /// COCO boxes marked `iscrowd: 1`: left out of training, as pycocotools leaves them out
    /// of scoring.
    pub crowd_ignored: usize,
    /// VOC annotation files that no `ImageSets/Main` list names: the data set's own split
    /// lists leave them out.
    pub unlisted: Vec<PathBuf>,
}

impl Scan {
    pub(crate) fn new(root: &Path, layout: Layout) -> Self {
        Scan {
            dataset: DetectionDataset {
                root: root.to_path_buf(),
                layout,
                classes: Vec::new(),
                train: Vec::new(),
                val: Vec::new(),
                test: Vec::new(),
                has_splits: false,
            },
            problems: Vec::new(),
            crowd_ignored: 0,
            unlisted: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, split: Split, image: LabelledImage) {
        match split {
            Split::Train => self.dataset.train.push(image),
            Split::Val => self.dataset.val.push(image),
            Split::Test => self.dataset.test.push(image),
        }
    }

    pub(crate) fn problem(&mut self, file: &Path, line: Option<usize>, message: impl Into<String>) {
        self.problems.push(problem(file, line, message));
    }
}

/// Reads the data set at `path` and refuses it when anything in it is wrong: the error is the
/// first problem (`file:line: message`) and how many more there are.
pub fn open(path: &Path) -> Result<DetectionDataset, DataError> {
    let (dataset, problems) = scan(path)?;
    match problems.split_first() {
        None => Ok(dataset),
        Some((first, rest)) => Err(problems_error(first, rest.len(), path)),
    }
}

/// Reads the data set at `path`, whatever its layout, collecting every problem instead of
/// stopping at the first. Err only when nothing can be read: no such path, or no layout found.
pub fn scan(path: &Path) -> Result<(DetectionDataset, Vec<Problem>), DataError> {
    let scan = survey(path)?;
    Ok((scan.dataset, scan.problems))
}

/// [`scan`] with what the reader left out on purpose (crowd boxes, unlisted files).
pub fn survey(path: &Path) -> Result<Scan, DataError> {
    let mut scan = match detect(path)? {
        Found::Yolo { root, yaml } => yolo::read(&root, yaml.as_deref())?,
        Found::CocoFile(json) => coco::read_file(&json)?,
        Found::CocoFolder(root) => coco::read_folder(&root)?,
        Found::Voc(root) => voc::read(&root)?,
        Found::CsvFile(file) => csv::read_file(&file)?,
        Found::CsvSplits { root, files } => csv::read_splits(&root, &files)?,
    };
    // One order whatever the layout stores, so the four readers give the same data set from the
    // same pictures (and training on them the same weights).
    for split in Split::ALL {
        let images = match split {
            Split::Train => &mut scan.dataset.train,
            Split::Val => &mut scan.dataset.val,
            Split::Test => &mut scan.dataset.test,
        };
        images.sort_by(|a, b| a.path.cmp(&b.path));
    }
    let pictures = scan.dataset.images().count();
    if pictures == 0 && scan.problems.is_empty() {
        return Err(folder_error(
            path,
            format!(
                "no pictures found in this {} data set",
                scan.dataset.layout.name()
            ),
        ));
    }
    if scan.dataset.classes.is_empty() && pictures > 0 {
        scan.problem(
            path,
            None,
            "no classes: the data set names no class and holds no box",
        );
    }
    Ok(scan)
}

/// The error [`open`] gives for a data set with problems. `DataError::Folder` prints
/// `{path}: {problem}`, so the path carries the line to print exactly `file:line: message`.
fn problems_error(first: &Problem, more: usize, path: &Path) -> DataError {
    let place = match first.line {
        Some(line) => PathBuf::from(format!("{}:{line}", first.file.display())),
        None => first.file.clone(),
    };
    let tail = if more > 0 {
        format!(
            " (and {more} more problem{}; `convnet dataset inspect {}` lists them)",
            if more == 1 { "" } else { "s" },
            path.display()
        )
    } else {
        String::new()
    };
    DataError::Folder {
        path: place,
        problem: format!("{}{tail}", first.message),
    }
}

pub(crate) fn folder_error(path: &Path, problem: impl Into<String>) -> DataError {
    DataError::Folder {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// Which reader a path is for.
#[derive(Debug, Clone, PartialEq)]
enum Found {
    Yolo {
        root: PathBuf,
        yaml: Option<PathBuf>,
    },
    CocoFile(PathBuf),
    CocoFolder(PathBuf),
    Voc(PathBuf),
    CsvFile(PathBuf),
    CsvSplits {
        root: PathBuf,
        files: Vec<(Split, PathBuf)>,
    },
}

/// The CSV files of a data set split by file: `valid.csv` is Roboflow's name for `val.csv`.
const CSV_SPLITS: [(&str, Split); 4] = [
    ("train.csv", Split::Train),
    ("val.csv", Split::Val),
    ("valid.csv", Split::Val),
    ("test.csv", Split::Test),
];

/// CSV files that hold class lists, not boxes (keras-retinanet's `classes.csv`).
const CSV_CLASS_FILES: [&str; 1] = ["classes.csv"];

fn detect(path: &Path) -> Result<Found, DataError> {
    let meta = std::fs::metadata(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_file() {
        let parent = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        return match extension(path).as_str() {
            "csv" => Ok(Found::CsvFile(path.to_path_buf())),
            "json" => Ok(Found::CocoFile(path.to_path_buf())),
            "yaml" | "yml" => Ok(Found::Yolo {
                root: parent,
                yaml: Some(path.to_path_buf()),
            }),
            _ => Err(folder_error(
                path,
                "not a detection data set: expected a folder, a .csv box list, a COCO .json or \
                 a YOLO data.yaml",
            )),
        };
    }
    let root = path.to_path_buf();
    let entries = entries(path)?;
    let has_file = |name: &str| entries.iter().any(|e| !e.1 && e.0 == name);
    let has_dir = |name: &str| entries.iter().any(|e| e.1 && e.0 == name);
    let files_with = |ext: &str| -> Vec<&String> {
        entries
            .iter()
            .filter(|e| !e.1 && extension(Path::new(&e.0)) == ext)
            .map(|e| &e.0)
            .collect()
    };
    for yaml in ["data.yaml", "data.yml"] {
        if has_file(yaml) {
            return Ok(Found::Yolo {
                yaml: Some(root.join(yaml)),
                root,
            });
        }
    }
    if has_dir("images") && has_dir("labels") {
        return Ok(Found::Yolo { root, yaml: None });
    }
    if has_dir("Annotations") || !files_with("xml").is_empty() {
        return Ok(Found::Voc(root));
    }
    let split_csvs: Vec<(Split, PathBuf)> = CSV_SPLITS
        .iter()
        .filter(|(name, _)| has_file(name))
        .map(|&(name, split)| (split, root.join(name)))
        .collect();
    if !split_csvs.is_empty() {
        return Ok(Found::CsvSplits {
            root,
            files: split_csvs,
        });
    }
    let csvs: Vec<&String> = files_with("csv")
        .into_iter()
        .filter(|n| !CSV_CLASS_FILES.contains(&n.to_ascii_lowercase().as_str()))
        .collect();
    if let [one] = csvs.as_slice() {
        return Ok(Found::CsvFile(root.join(one)));
    }
    if has_dir("annotations") && !coco::instances_files(&root.join("annotations"))?.is_empty() {
        return Ok(Found::CocoFolder(root));
    }
    if has_file("classes.txt") {
        return Ok(Found::Yolo { root, yaml: None });
    }
    let csv_hint = if csvs.len() > 1 {
        format!(
            " ({} .csv files: name them train.csv/val.csv/test.csv, or pass one)",
            csvs.len()
        )
    } else {
        String::new()
    };
    Err(folder_error(
        path,
        format!(
            "no detection data set found: looked for YOLO (data.yaml, or images/ with labels/), \
             Pascal VOC (Annotations/ or *.xml), CSV (train.csv/val.csv/test.csv or one *.csv){csv_hint} \
             and COCO (annotations/instances_*.json, or pass the .json)"
        ),
    ))
}

/// The entries of a folder as `(name, is_dir)`.
fn entries(dir: &Path) -> Result<Vec<(String, bool)>, DataError> {
    let read_error = |source| DataError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        let is_dir = entry.path().is_dir();
        out.push((entry.file_name().to_string_lossy().into_owned(), is_dir));
    }
    Ok(out)
}

/// A class list file: one name per line; trailing blank lines are ignored, others are a
/// problem (they would shift every class id after them).
pub(crate) fn read_class_list(
    file: &Path,
    problems: &mut Vec<Problem>,
) -> Result<Option<Vec<String>>, DataError> {
    let text = std::fs::read_to_string(file).map_err(|source| DataError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let used = lines
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(0, |i| i + 1);
    let before = problems.len();
    for (i, line) in lines[..used].iter().enumerate() {
        if line.is_empty() {
            problems.push(problem(
                file,
                Some(i + 1),
                "a blank line among the class names",
            ));
        }
    }
    if used == 0 {
        problems.push(problem(file, None, "the class list is empty"));
    }
    let names = lines[..used].iter().map(|l| l.to_string()).collect();
    Ok((problems.len() == before).then_some(names))
}

/// A path's extension, lower-cased ("" when it has none).
pub(crate) fn extension(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn touch(path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "").unwrap();
    }

    #[test]
    fn each_layout_is_recognised_by_its_marks() {
        let dir = tempfile::tempdir().unwrap();
        let case = |name: &str, files: &[&str]| {
            let root = dir.path().join(name);
            fs::create_dir_all(&root).unwrap();
            for f in files {
                if f.ends_with('/') {
                    fs::create_dir_all(root.join(f)).unwrap();
                } else {
                    touch(&root.join(f));
                }
            }
            detect(&root).unwrap()
        };
        let root = |name: &str| dir.path().join(name);
        assert_eq!(
            case("y1", &["data.yaml", "images/"]),
            Found::Yolo {
                root: root("y1"),
                yaml: Some(root("y1").join("data.yaml"))
            }
        );
        assert_eq!(
            case("y2", &["images/", "labels/", "classes.txt"]),
            Found::Yolo {
                root: root("y2"),
                yaml: None
            }
        );
        assert_eq!(
            case("v1", &["Annotations/", "JPEGImages/"]),
            Found::Voc(root("v1"))
        );
        // A VOC folder's classes.txt does not make it YOLO.
        assert_eq!(
            case("v2", &["a.xml", "a.png", "classes.txt"]),
            Found::Voc(root("v2"))
        );
        assert_eq!(
            case("c1", &["boxes.csv", "classes.csv", "a.png"]),
            Found::CsvFile(root("c1").join("boxes.csv"))
        );
        assert_eq!(
            case("c2", &["train.csv", "test.csv", "other.csv"]),
            Found::CsvSplits {
                root: root("c2"),
                files: vec![
                    (Split::Train, root("c2").join("train.csv")),
                    (Split::Test, root("c2").join("test.csv"))
                ]
            }
        );
        assert_eq!(
            case("k1", &["annotations/instances_val2017.json", "val2017/"]),
            Found::CocoFolder(root("k1"))
        );
        assert_eq!(
            case("y3", &["classes.txt", "images/"]),
            Found::Yolo {
                root: root("y3"),
                yaml: None
            }
        );
        let file = root("k1").join("annotations/instances_val2017.json");
        assert_eq!(detect(&file).unwrap(), Found::CocoFile(file.clone()));
    }

    #[test]
    fn unrecognised_folders_say_what_was_looked_for() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("a.csv"));
        touch(&dir.path().join("b.csv"));
        let err = detect(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no detection data set found"), "{err}");
        for needle in ["YOLO", "Pascal VOC", "CSV", "COCO", "2 .csv files"] {
            assert!(err.contains(needle), "{needle}: {err}");
        }
        let missing = dir.path().join("nothing");
        let err = scan(&missing).unwrap_err().to_string();
        assert!(err.contains("nothing"), "{err}");
    }

    #[test]
    fn open_reports_the_first_problem_with_its_line_and_how_many_more() {
        let first = problem(Path::new("labels/a.txt"), Some(3), "bad");
        let err = problems_error(&first, 2, Path::new("data")).to_string();
        assert_eq!(
            err,
            "labels/a.txt:3: bad (and 2 more problems; `convnet dataset inspect data` lists them)"
        );
        let err = problems_error(&first, 0, Path::new("data")).to_string();
        assert_eq!(err, "labels/a.txt:3: bad");
        let no_line = problem(Path::new("a.json"), None, "annotation id 4: bad");
        let err = problems_error(&no_line, 1, Path::new("d")).to_string();
        assert_eq!(
            err,
            "a.json: annotation id 4: bad (and 1 more problem; `convnet dataset inspect d` lists them)"
        );
    }
}
