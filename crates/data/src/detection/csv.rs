//! Box lists in CSV, the keras-retinanet and DeepForest layout: one row per box,
//! `image_path,xmin,ymin,xmax,ymax,label`, pixels, with or without that header row. Image
//! paths are relative to the CSV's folder. A row with the coordinates empty
//! (`img.png,,,,,`) is a picture without objects (keras-retinanet's convention). With a header,
//! columns are found by name and others are ignored; without one, a row has exactly the six.
//!
//! Class names: `classes.csv` beside the CSV (keras-retinanet's `name,id` rows) or
//! `classes.txt` (one per line), else every label used, sorted. A data set split by file has
//! `train.csv`, `val.csv` and `test.csv` side by side.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::layout::picture::{check_box, picture_size};
use super::layout::{Scan, output, read_class_list};
use super::{DetectionDataset, LabelledBox, LabelledImage, Layout, Problem, Split, problem};
use crate::DataError;

/// The columns, in the order of a header-less row.
const COLUMNS: [&str; 6] = ["image_path", "xmin", "ymin", "xmax", "ymax", "label"];

/// One box row (or one picture-without-objects row) as read.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    line: usize,
    picture: PathBuf,
    /// `None` for a row that lists a picture without objects.
    object: Option<([f64; 4], String)>,
}

/// One CSV: every picture in one split, no splits named.
pub(crate) fn read_file(file: &Path) -> Result<Scan, DataError> {
    let root = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut scan = Scan::new(&root, Layout::Csv);
    read_all(&root, &[(Split::Train, file.to_path_buf())], &mut scan)?;
    Ok(scan)
}

/// `train.csv`, `val.csv`, `test.csv` in `root`.
pub(crate) fn read_splits(root: &Path, files: &[(Split, PathBuf)]) -> Result<Scan, DataError> {
    let mut scan = Scan::new(root, Layout::Csv);
    read_all(root, files, &mut scan)?;
    scan.dataset.has_splits = true;
    Ok(scan)
}

fn read_all(root: &Path, files: &[(Split, PathBuf)], scan: &mut Scan) -> Result<(), DataError> {
    let mut parsed = Vec::new();
    for (split, file) in files {
        parsed.push((*split, file, parse_rows(file, &mut scan.problems)?));
    }
    let (classes, list) = class_names(root, &parsed, &mut scan.problems)?;
    let index: HashMap<&str, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    for (split, file, rows) in &parsed {
        // Rows of one picture need not be adjacent; pictures keep the order they first appear.
        let mut order: Vec<&PathBuf> = Vec::new();
        let mut by_picture: HashMap<&PathBuf, Vec<&Row>> = HashMap::new();
        for row in rows {
            by_picture
                .entry(&row.picture)
                .or_insert_with(|| {
                    order.push(&row.picture);
                    Vec::new()
                })
                .push(row);
        }
        for picture in order {
            let (width, height) = match picture_size(picture) {
                Ok(size) => size,
                Err(p) => {
                    // Named at the first row that lists it, so the message has a line too.
                    let line = by_picture[picture][0].line;
                    scan.problem(
                        file,
                        Some(line),
                        format!("{}: {}", picture.display(), p.message),
                    );
                    continue;
                }
            };
            let mut boxes = Vec::new();
            for row in &by_picture[picture] {
                let Some((bbox, label)) = &row.object else {
                    continue;
                };
                let Some(&class) = index.get(label.as_str()) else {
                    let msg = format!("label `{label}` is not in {}", list.display());
                    scan.problem(file, Some(row.line), msg);
                    continue;
                };
                match check_box(*bbox, width, height) {
                    Ok(bbox) => boxes.push(LabelledBox {
                        bbox,
                        class,
                        difficult: false,
                    }),
                    Err(msg) => scan.problem(file, Some(row.line), msg),
                }
            }
            scan.push(
                *split,
                LabelledImage {
                    path: picture.clone(),
                    width,
                    height,
                    boxes,
                    labelled: true,
                },
            );
        }
    }
    scan.dataset.classes = classes;
    Ok(())
}

/// Class names from `classes.csv` or `classes.txt` in `root`, else the labels used, sorted;
/// with the file they came from (for messages).
fn class_names(
    root: &Path,
    parsed: &[(Split, &PathBuf, Vec<Row>)],
    problems: &mut Vec<Problem>,
) -> Result<(Vec<String>, PathBuf), DataError> {
    let csv = root.join("classes.csv");
    if csv.is_file() {
        return Ok((read_classes_csv(&csv, problems)?, csv));
    }
    let txt = root.join("classes.txt");
    if txt.is_file() {
        return Ok((read_class_list(&txt, problems)?.unwrap_or_default(), txt));
    }
    let used: BTreeSet<&str> = parsed
        .iter()
        .flat_map(|(_, _, rows)| {
            rows.iter()
                .filter_map(|r| r.object.as_ref().map(|o| o.1.as_str()))
        })
        .collect();
    Ok((
        used.into_iter().map(str::to_string).collect(),
        PathBuf::from("the labels used"),
    ))
}

/// keras-retinanet's class file: `name,id` rows, ids from 0 without a gap (a header row
/// `name,id` or `class,id` is skipped).
fn read_classes_csv(file: &Path, problems: &mut Vec<Problem>) -> Result<Vec<String>, DataError> {
    let mut slots: Vec<(usize, usize, String)> = Vec::new();
    for (line, record) in records(file, problems)? {
        let fields: Vec<&str> = record.iter().collect();
        let [name, id] = fields.as_slice() else {
            let msg = format!("{} fields, expected 2: name,id", fields.len());
            problems.push(problem(file, Some(line), msg));
            continue;
        };
        match id.parse::<usize>() {
            Ok(id) if !name.is_empty() => slots.push((id, line, name.to_string())),
            Ok(_) => problems.push(problem(file, Some(line), "an empty class name")),
            Err(_) if line == 1 => {}
            Err(_) => {
                let msg = format!("class id `{id}` is not a non-negative integer");
                problems.push(problem(file, Some(line), msg));
            }
        }
    }
    slots.sort();
    let mut names = Vec::new();
    for (want, (id, line, name)) in slots.into_iter().enumerate() {
        if id != want {
            let msg = format!(
                "class id {id}: ids must run from 0 without a gap or a repeat (expected {want})"
            );
            problems.push(problem(file, Some(line), msg));
            return Ok(Vec::new());
        }
        names.push(name);
    }
    if names.is_empty() {
        problems.push(problem(file, None, "the class list is empty"));
    }
    Ok(names)
}

/// The records of a CSV with their 1-based lines; a record that cannot be read (bad UTF-8) is
/// a problem.
fn records(
    file: &Path,
    problems: &mut Vec<Problem>,
) -> Result<Vec<(usize, csv::StringRecord)>, DataError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(file)
        .map_err(|e| DataError::Read {
            path: file.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
    let mut out = Vec::new();
    for record in reader.records() {
        match record {
            Ok(r) => {
                let line = r.position().map_or(0, |p| p.line() as usize);
                out.push((line, r));
            }
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize);
                let io = matches!(e.kind(), csv::ErrorKind::Io(_));
                problems.push(problem(file, line, format!("cannot read this row: {e}")));
                if io {
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// Where each column is: by the header's names, or in [`COLUMNS`] order.
struct Columns {
    index: [usize; 6],
    /// How many fields every row has: the header's count, or 6.
    count: usize,
    header: bool,
}

fn columns(first: &csv::StringRecord) -> Result<Columns, String> {
    let names: Vec<String> = first.iter().map(|f| f.to_ascii_lowercase()).collect();
    let position = |c: &str| names.iter().position(|n| n == c);
    let found: Vec<Option<usize>> = COLUMNS.iter().map(|c| position(c)).collect();
    if found.iter().all(Option::is_none) {
        return Ok(Columns {
            index: [0, 1, 2, 3, 4, 5],
            count: COLUMNS.len(),
            header: false,
        });
    }
    let missing: Vec<&str> = COLUMNS
        .iter()
        .zip(&found)
        .filter(|(_, f)| f.is_none())
        .map(|(c, _)| *c)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the header row has no {} column",
            missing.join(", ")
        ));
    }
    Ok(Columns {
        index: std::array::from_fn(|k| found[k].unwrap_or(k)),
        count: names.len(),
        header: true,
    })
}

/// Every row of one CSV; each bad row is a problem at its line (and is left out).
fn parse_rows(file: &Path, problems: &mut Vec<Problem>) -> Result<Vec<Row>, DataError> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let records = records(file, problems)?;
    let Some((first_line, first)) = records.first() else {
        problems.push(problem(file, None, "no rows"));
        return Ok(Vec::new());
    };
    let columns = match columns(first) {
        Ok(c) => c,
        Err(msg) => {
            problems.push(problem(file, Some(*first_line), msg));
            return Ok(Vec::new());
        }
    };
    let mut rows = Vec::new();
    for (line, record) in records.iter().skip(usize::from(columns.header)) {
        match parse_row(record, &columns, *line) {
            Ok((path, object)) => rows.push(Row {
                line: *line,
                picture: dir.join(path),
                object,
            }),
            Err(msg) => problems.push(problem(file, Some(*line), msg)),
        }
    }
    Ok(rows)
}

type Object = Option<([f64; 4], String)>;

fn parse_row(
    record: &csv::StringRecord,
    columns: &Columns,
    line: usize,
) -> Result<(String, Object), String> {
    let n = record.len();
    if n != columns.count {
        return Err(match columns.header {
            true => format!("{n} fields, but the header row has {}", columns.count),
            false => format!(
                "{n} fields, expected 6: image_path,xmin,ymin,xmax,ymax,label (a header row \
                 naming the columns lets rows carry more)"
            ),
        });
    }
    let field = |k: usize| record.get(columns.index[k]).unwrap_or("");
    let path = field(0);
    if path.is_empty() {
        return Err("empty image_path".into());
    }
    let coords: Vec<&str> = (1..5).map(field).collect();
    if coords.iter().all(|c| c.is_empty()) {
        return Ok((path.to_string(), None));
    }
    if coords.iter().any(|c| c.is_empty()) {
        return Err(
            "some coordinates are empty: leave all four empty for a picture without objects".into(),
        );
    }
    let mut bbox = [0f64; 4];
    for k in 0..4 {
        bbox[k] = coords[k].parse().map_err(|_| {
            let hint = match line == 1 && !columns.header {
                true => {
                    " (a header row must name the columns image_path,xmin,ymin,xmax,ymax,label)"
                }
                false => "",
            };
            format!("{} `{}` is not a number{hint}", COLUMNS[k + 1], coords[k])
        })?;
    }
    let label = field(5);
    if label.is_empty() {
        return Err("a box without a label".into());
    }
    Ok((path.to_string(), Some((bbox, label.to_string()))))
}

/// Writes `ds` as box lists: `train.csv`/`val.csv`/`test.csv` (or `annotations.csv` for a data
/// set without splits) with a header row, the pictures in `images/`, and `classes.csv`
/// (`name,id`) so the class order survives.
pub fn write(ds: &DetectionDataset, out: &Path) -> Result<(), DataError> {
    output::start(ds, out)?;
    let splits = output::splits_named(ds);
    let placed = output::place(ds);
    let write_error = |path: &Path, e: csv::Error| DataError::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    };
    for split in Split::ALL {
        let items: Vec<_> = placed.iter().filter(|p| p.split == split).collect();
        if items.is_empty() {
            continue;
        }
        let name = match splits {
            true => format!("{}.csv", split.name()),
            false => "annotations.csv".to_string(),
        };
        let path = out.join(name);
        let mut writer = csv::Writer::from_path(&path).map_err(|e| write_error(&path, e))?;
        writer
            .write_record(COLUMNS)
            .map_err(|e| write_error(&path, e))?;
        for p in items {
            output::link_or_copy(&p.image.path, &out.join("images").join(&p.name))?;
            let image_path = format!("images/{}", p.name);
            if p.image.boxes.is_empty() {
                let row = [image_path.as_str(), "", "", "", "", ""];
                writer
                    .write_record(row)
                    .map_err(|e| write_error(&path, e))?;
            }
            for b in &p.image.boxes {
                let label = ds
                    .classes
                    .get(b.class)
                    .cloned()
                    .unwrap_or_else(|| b.class.to_string());
                let [x1, y1, x2, y2] = b.bbox.map(|v| v.to_string());
                let row = [image_path.clone(), x1, y1, x2, y2, label];
                writer
                    .write_record(&row)
                    .map_err(|e| write_error(&path, e))?;
            }
        }
        writer.flush().map_err(|source| DataError::Write {
            path: path.clone(),
            source,
        })?;
    }
    let classes = out.join("classes.csv");
    let mut writer = csv::Writer::from_path(&classes).map_err(|e| write_error(&classes, e))?;
    for (i, name) in ds.classes.iter().enumerate() {
        writer
            .write_record([name.as_str(), &i.to_string()])
            .map_err(|e| write_error(&classes, e))?;
    }
    writer.flush().map_err(|source| DataError::Write {
        path: classes.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn picture(path: &Path, w: u32, h: u32) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::RgbImage::new(w, h).save(path).unwrap();
    }

    /// A CSV beside a 100x50 `a.png` and a 40x40 `b.png`.
    fn csv(text: &str) -> (tempfile::TempDir, Scan) {
        let dir = tempfile::tempdir().unwrap();
        picture(&dir.path().join("a.png"), 100, 50);
        picture(&dir.path().join("b.png"), 40, 40);
        let file = dir.path().join("boxes.csv");
        fs::write(&file, text).unwrap();
        let scan = read_file(&file).unwrap();
        (dir, scan)
    }

    #[test]
    fn rows_with_a_header_and_extra_columns_and_empty_pictures() {
        let (_dir, scan) = csv("label,image_path,xmin,ymin,xmax,ymax,score\n\
             tree,a.png,10,5,30.5,45,0.9\n\
             bush,b.png,0,0,40,40,1\n\
             tree,a.png,0,0,100,50,1\n");
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        let ds = scan.dataset;
        assert_eq!(ds.classes, ["bush", "tree"]);
        assert_eq!(ds.train.len(), 2);
        let a = &ds.train[0];
        assert_eq!(a.boxes.len(), 2);
        assert_eq!(
            (a.boxes[0].bbox, a.boxes[0].class),
            ([10.0, 5.0, 30.5, 45.0], 1)
        );
        let (_dir, scan) = csv("a.png,1,2,3,4,x\nb.png,,,,,\n");
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        assert_eq!(scan.dataset.train[1].boxes, []);
        assert!(scan.dataset.train[1].labelled);
    }

    #[test]
    fn every_bad_row_names_the_csv_and_the_line() {
        let header = "image_path,xmin,ymin,xmax,ymax,label\n";
        let ok = "a.png,1,1,5,5,tree\n";
        let cases = [
            ("a.png,1,1,5,5\n", "5 fields, "),
            ("a.png,1,1,5,5,tree,0.9\n", "7 fields, "),
            ("a.png,1,x,5,5,tree\n", "ymin `x` is not a number"),
            ("a.png,1,1,,5,tree\n", "some coordinates are empty"),
            ("a.png,1,1,5,5,\n", "a box without a label"),
            (",1,1,5,5,tree\n", "empty image_path"),
            (
                "a.png,10,5,101,45,tree\n",
                "box x 10..101, y 5..45 reaches outside the 100x50 picture",
            ),
            ("a.png,-1,5,10,45,tree\n", "reaches outside"),
            ("a.png,10,5,10,45,tree\n", "zero or negative width"),
            ("a.png,10,45,20,44,tree\n", "zero or negative height"),
            ("a.png,nan,5,10,45,tree\n", "must be finite"),
        ];
        for (with_header, first) in [(false, 1), (true, 2)] {
            for (bad, want) in cases {
                let text = format!("{}{ok}{bad}", if with_header { header } else { "" });
                let (dir, scan) = csv(&text);
                assert_eq!(scan.problems.len(), 1, "{bad}: {:?}", scan.problems);
                let shown = scan.problems[0].to_string();
                let place = format!("{}:{}: ", dir.path().join("boxes.csv").display(), first + 1);
                assert!(shown.starts_with(&place), "{bad}: {shown}");
                assert!(shown.contains(want), "{want}: {shown}");
                assert_eq!(scan.dataset.train[0].boxes.len(), 1, "the good row stays");
                if want.ends_with("fields, ") {
                    let reason = match with_header {
                        true => "but the header row has 6",
                        false => "expected 6: image_path,xmin,ymin,xmax,ymax,label",
                    };
                    assert!(shown.contains(reason), "{shown}");
                }
            }
        }
    }

    #[test]
    fn labels_missing_from_the_class_file_and_unreadable_pictures_are_problems() {
        let dir = tempfile::tempdir().unwrap();
        picture(&dir.path().join("a.png"), 100, 50);
        fs::write(dir.path().join("bad.png"), "not a png").unwrap();
        fs::write(dir.path().join("classes.csv"), "tree,0\nbush,1\n").unwrap();
        let file = dir.path().join("boxes.csv");
        fs::write(
            &file,
            "a.png,1,1,5,5,bush\na.png,1,1,5,5,car\nbad.png,1,1,2,2,tree\n",
        )
        .unwrap();
        let scan = read_file(&file).unwrap();
        assert_eq!(scan.dataset.classes, ["tree", "bush"]);
        let shown: Vec<String> = scan.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert!(
            shown[0].contains("boxes.csv:2: label `car` is not in"),
            "{shown:?}"
        );
        assert!(shown[1].contains("boxes.csv:3: "), "{shown:?}");
        assert!(
            shown[1].contains("bad.png: cannot read the picture"),
            "{shown:?}"
        );
    }

    #[test]
    fn class_files_with_gaps_or_bad_ids_are_problems_at_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("classes.csv");
        let read = |text: &str| {
            fs::write(&file, text).unwrap();
            let mut problems = Vec::new();
            let names = read_classes_csv(&file, &mut problems).unwrap();
            (
                names,
                problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            read("name,id\nb,1\na,0\n"),
            (vec!["a".to_string(), "b".to_string()], vec![])
        );
        let (_, p) = read("a,0\nc,2\n");
        assert!(
            p[0].contains("classes.csv:2: class id 2: ids must run from 0"),
            "{p:?}"
        );
        let (_, p) = read("a,0\nb,x\n");
        assert!(p[0].contains("classes.csv:2: class id `x`"), "{p:?}");
        let (_, p) = read("a,0,1\n");
        assert!(
            p[0].contains("classes.csv:1: 3 fields, expected 2"),
            "{p:?}"
        );
    }

    #[test]
    fn a_header_missing_columns_is_one_problem() {
        let (_dir, scan) = csv("image_path,xmin,ymin,label\na.png,1,1,tree\n");
        assert_eq!(scan.problems.len(), 1);
        assert!(
            scan.problems[0]
                .to_string()
                .contains("boxes.csv:1: the header row has no xmax, ymax column")
        );
    }

    #[test]
    fn written_data_sets_read_back_box_for_box() {
        let (dir, scan) = csv("a.png,10.25,5.5,30.1,45,\"b, c\"\nb.png,,,,,\na.png,0,0,100,50,a\n");
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        let mut ds = scan.dataset;
        ds.split_off_val(0.5, 3);
        let out = dir.path().join("out");
        write(&ds, &out).unwrap();
        let files: Vec<(Split, PathBuf)> = Split::ALL
            .into_iter()
            .map(|s| (s, out.join(format!("{}.csv", s.name()))))
            .filter(|(_, p)| p.is_file())
            .collect();
        let back = read_splits(&out, &files).unwrap();
        assert!(back.problems.is_empty(), "{:?}", back.problems);
        assert_eq!(back.dataset.classes, ds.classes);
        for split in Split::ALL {
            let boxes = |d: &DetectionDataset| -> Vec<Vec<LabelledBox>> {
                d.split(split).iter().map(|i| i.boxes.clone()).collect()
            };
            assert_eq!(boxes(&back.dataset), boxes(&ds), "{split:?}");
        }
    }
}
