//! Pascal VOC XML: `Annotations/NAME.xml` with the pictures in `JPEGImages/` (the file named
//! by `<filename>`, else `NAME.jpg|png`), or each XML beside its picture (same stem, else
//! `<filename>`) as LabelImg and DeepForest keep them. Each `<object>` has a `<name>` and a
//! `<bndbox>` (`xmin`, `ymin`, `xmax`, `ymax`, floats allowed) and may be `<difficult>1`:
//! kept for training and marked, so evaluation may leave it out as VOC's does.
//!
//! Coordinates are taken as continuous pixels, with no ±1 correction: a box must satisfy
//! `0 <= xmin < xmax <= width` of the picture as it is on disk. Splits come from
//! `ImageSets/Main/{train,val,test}.txt` when they exist (`trainval.txt` stands for train when
//! there is no `train.txt`). Class names are those of `classes.txt` or `labels.txt` in the root
//! when there is one, else every name used, sorted.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::layout::picture::{check_box, picture_size, picture_with_stem, sorted_entries};
use super::layout::{Scan, extension, output, read_class_list};
use super::{DetectionDataset, LabelledBox, LabelledImage, Layout, Problem, Split, problem};
use crate::DataError;

/// One annotation file as parsed, before its picture is read.
#[derive(Debug, Clone, PartialEq)]
struct VocFile {
    filename: Option<String>,
    /// `<size>`'s width and height when both are given and positive, and its line.
    size: Option<(f64, f64, usize)>,
    objects: Vec<VocObject>,
}

#[derive(Debug, Clone, PartialEq)]
struct VocObject {
    name: String,
    name_line: usize,
    bbox: [f64; 4],
    bbox_line: usize,
    difficult: bool,
}

/// Reads the VOC data set in `root`.
pub(crate) fn read(root: &Path) -> Result<Scan, DataError> {
    let mut scan = Scan::new(root, Layout::Voc);
    let annotations = root.join("Annotations");
    let (xml_dir, pictures) = match annotations.is_dir() {
        true => (annotations, Pictures::In(root.join("JPEGImages"))),
        false => (root.to_path_buf(), Pictures::Beside),
    };
    let xmls: Vec<PathBuf> = sorted_entries(&xml_dir)?
        .into_iter()
        .filter(|p| extension(p) == "xml" && p.is_file())
        .collect();
    let stems: HashMap<String, &PathBuf> = xmls.iter().map(|x| (stem(x), x)).collect();
    let lists = split_lists(root, &stems, &mut scan.problems)?;
    let mut parsed = Vec::new();
    for xml in &xmls {
        let text = std::fs::read_to_string(xml).map_err(|source| DataError::Read {
            path: xml.clone(),
            source,
        })?;
        if let Some(file) = parse_xml(&text, xml, &mut scan.problems) {
            parsed.push((xml, file));
        }
    }
    let class_file = ["classes.txt", "labels.txt"]
        .map(|n| root.join(n))
        .into_iter()
        .find(|p| p.is_file());
    let (classes, fixed) = match class_file {
        Some(file) => match read_class_list(&file, &mut scan.problems)? {
            Some(names) => (names, Some(file)),
            None => (Vec::new(), Some(file)),
        },
        None => {
            let names: BTreeSet<&str> = parsed
                .iter()
                .flat_map(|(_, f)| f.objects.iter().map(|o| o.name.as_str()))
                .collect();
            (names.into_iter().map(str::to_string).collect(), None)
        }
    };
    let index: HashMap<&str, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    for (xml, file) in parsed {
        let split = match &lists {
            None => Split::Train,
            Some(lists) => match lists.get(&stem(xml)) {
                Some(&split) => split,
                None => {
                    scan.unlisted.push(xml.clone());
                    continue;
                }
            },
        };
        let Some(picture) = find_picture(&pictures, xml, &file, &mut scan.problems) else {
            continue;
        };
        let (width, height) = match picture_size(&picture) {
            Ok(size) => size,
            Err(p) => {
                scan.problems.push(p);
                continue;
            }
        };
        if let Some((w, h, line)) = file.size
            && (w, h) != (f64::from(width), f64::from(height))
        {
            let msg = format!("<size> says {w}x{h} but the picture is {width}x{height}");
            scan.problem(xml, Some(line), msg);
        }
        let mut boxes = Vec::new();
        for o in &file.objects {
            let Some(&class) = index.get(o.name.as_str()) else {
                let list = fixed.as_deref().unwrap_or(Path::new("the class list"));
                let msg = format!("class `{}` is not in {}", o.name, list.display());
                scan.problem(xml, Some(o.name_line), msg);
                continue;
            };
            match check_box(o.bbox, width, height) {
                Ok(bbox) => boxes.push(LabelledBox {
                    bbox,
                    class,
                    difficult: o.difficult,
                }),
                Err(msg) => scan.problem(xml, Some(o.bbox_line), msg),
            }
        }
        scan.push(
            split,
            LabelledImage {
                path: picture,
                width,
                height,
                boxes,
                labelled: true,
            },
        );
    }
    scan.dataset.classes = classes;
    scan.dataset.has_splits = lists.is_some();
    Ok(scan)
}

/// Where a data set keeps its pictures.
enum Pictures {
    In(PathBuf),
    Beside,
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// An XML's picture: `JPEGImages/<filename>` then `JPEGImages/STEM.*`, or beside the XML
/// `STEM.*` then `<filename>`.
fn find_picture(
    pictures: &Pictures,
    xml: &Path,
    file: &VocFile,
    problems: &mut Vec<Problem>,
) -> Option<PathBuf> {
    let stem = stem(xml);
    let named = |dir: &Path| {
        file.filename
            .as_deref()
            .map(|f| dir.join(f))
            .filter(|p| p.is_file())
    };
    let (found, dir) = match pictures {
        Pictures::In(dir) => (
            named(dir).or_else(|| picture_with_stem(dir, &stem)),
            dir.clone(),
        ),
        Pictures::Beside => {
            let dir = xml.parent().unwrap_or(Path::new(".")).to_path_buf();
            (picture_with_stem(&dir, &stem).or_else(|| named(&dir)), dir)
        }
    };
    if found.is_none() {
        let filename = file
            .filename
            .as_deref()
            .map(|f| format!("{f} or "))
            .unwrap_or_default();
        let msg = format!(
            "picture not found: looked for {filename}{stem}.png/.jpg/.jpeg in {}",
            dir.display()
        );
        problems.push(problem(xml, None, msg));
    }
    found
}

/// `ImageSets/Main/{train,val,test}.txt` as picture id → split; `None` when there are none.
/// `trainval.txt` stands for train when there is no `train.txt`, less the ids of the other
/// lists (VOC's trainval is train and val together).
fn split_lists(
    root: &Path,
    xmls: &HashMap<String, &PathBuf>,
    problems: &mut Vec<Problem>,
) -> Result<Option<HashMap<String, Split>>, DataError> {
    let main = root.join("ImageSets").join("Main");
    let list = |name: &str| Some(main.join(name)).filter(|p| p.is_file());
    let train = list("train.txt")
        .map(|p| (p, false))
        .or_else(|| list("trainval.txt").map(|p| (p, true)));
    let files: Vec<(PathBuf, Split, bool)> = [
        list("val.txt").map(|p| (p, Split::Val, false)),
        list("test.txt").map(|p| (p, Split::Test, false)),
        train.map(|(p, both)| (p, Split::Train, both)),
    ]
    .into_iter()
    .flatten()
    .collect();
    if files.is_empty() {
        return Ok(None);
    }
    let mut splits: HashMap<String, Split> = HashMap::new();
    for (file, split, trainval) in files {
        let text = std::fs::read_to_string(&file).map_err(|source| DataError::Read {
            path: file.clone(),
            source,
        })?;
        for (i, line) in text.lines().enumerate() {
            // Per-class lists add a flag after the id (`2008_000002  1`): the id comes first.
            let Some(id) = line.split_whitespace().next() else {
                continue;
            };
            if !xmls.contains_key(id) {
                problems.push(problem(
                    &file,
                    Some(i + 1),
                    format!("no annotation {id}.xml"),
                ));
                continue;
            }
            match splits.get(id) {
                Some(_) if trainval => {}
                Some(other) => problems.push(problem(
                    &file,
                    Some(i + 1),
                    format!("{id} is in the {} list too", other.name()),
                )),
                None => {
                    splits.insert(id.to_string(), split);
                }
            }
        }
    }
    Ok(Some(splits))
}

/// One XML's objects; each bad object is a problem at its element's line (and is left out). An
/// XML that does not parse is one problem, and `None`.
fn parse_xml(text: &str, xml: &Path, problems: &mut Vec<Problem>) -> Option<VocFile> {
    let doc = match roxmltree::Document::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let line = e.pos().row as usize;
            problems.push(problem(xml, Some(line), format!("not valid XML: {e}")));
            return None;
        }
    };
    let line = |node: roxmltree::Node| doc.text_pos_at(node.range().start).row as usize;
    let root = doc.root_element();
    if !root.has_tag_name("annotation") {
        let msg = format!(
            "not a Pascal VOC annotation: the root element is <{}>, not <annotation>",
            root.tag_name().name()
        );
        problems.push(problem(xml, Some(line(root)), msg));
        return None;
    }
    let text_of = |node: roxmltree::Node| node.text().unwrap_or("").trim().to_string();
    let size = child(root, "size").and_then(|s| {
        let dim = |n| child(s, n).and_then(|d| text_of(d).parse::<f64>().ok());
        match (dim("width"), dim("height")) {
            (Some(w), Some(h)) if w > 0.0 && h > 0.0 => Some((w, h, line(s))),
            _ => None,
        }
    });
    let mut objects = Vec::new();
    for object in root.children().filter(|c| c.has_tag_name("object")) {
        let result = (|| {
            let name = child(object, "name")
                .map(|n| (text_of(n), line(n)))
                .filter(|(n, _)| !n.is_empty())
                .ok_or((line(object), "an <object> without a <name>".to_string()))?;
            let bndbox = child(object, "bndbox")
                .ok_or((line(object), "an <object> without a <bndbox>".to_string()))?;
            let mut bbox = [0f64; 4];
            for (k, tag) in ["xmin", "ymin", "xmax", "ymax"].iter().enumerate() {
                let node = child(bndbox, tag)
                    .ok_or((line(bndbox), format!("<bndbox> without <{tag}>")))?;
                let text = text_of(node);
                bbox[k] = text
                    .parse::<f64>()
                    .map_err(|_| (line(node), format!("<{tag}> `{text}` is not a number")))?;
            }
            let difficult = match child(object, "difficult").map(|d| (text_of(d), line(d))) {
                None => false,
                Some((t, _)) if t == "0" || t.is_empty() => false,
                Some((t, _)) if t == "1" => true,
                Some((t, l)) => return Err((l, format!("<difficult> `{t}`: expected 0 or 1"))),
            };
            Ok(VocObject {
                name: name.0,
                name_line: name.1,
                bbox,
                bbox_line: line(bndbox),
                difficult,
            })
        })();
        match result {
            Ok(o) => objects.push(o),
            Err((l, msg)) => problems.push(problem(xml, Some(l), msg)),
        }
    }
    Some(VocFile {
        filename: child(root, "filename")
            .map(text_of)
            .filter(|f| !f.is_empty()),
        size,
        objects,
    })
}

/// The first child element of `node` named `name`.
fn child<'a, 'input>(
    node: roxmltree::Node<'a, 'input>,
    name: &str,
) -> Option<roxmltree::Node<'a, 'input>> {
    node.children().find(|c| c.has_tag_name(name))
}

/// Writes `ds` in VOC's layout: `Annotations/NAME.xml`, the pictures in `JPEGImages/` (in
/// their own format; `<filename>` names them), `ImageSets/Main/{split}.txt` when the data set
/// has splits, and `classes.txt` so the class order survives. A picture without labels gets
/// an XML without objects (VOC cannot say "not labelled").
pub fn write(ds: &DetectionDataset, out: &Path) -> Result<(), DataError> {
    output::start(ds, out)?;
    let splits = output::splits_named(ds);
    let annotations = out.join("Annotations");
    output::create_dir(&annotations)?;
    let mut lists: Vec<(Split, String)> = Vec::new();
    for placed in output::place(ds) {
        output::link_or_copy(
            &placed.image.path,
            &out.join("JPEGImages").join(&placed.name),
        )?;
        let xml = annotation_xml(&placed.name, placed.image, &ds.classes);
        output::write_text(&annotations.join(format!("{}.xml", placed.stem)), &xml)?;
        lists.push((placed.split, placed.stem));
    }
    if splits {
        let main = out.join("ImageSets").join("Main");
        output::create_dir(&main)?;
        for split in Split::ALL {
            let ids: Vec<&str> = lists
                .iter()
                .filter(|l| l.0 == split)
                .map(|l| l.1.as_str())
                .collect();
            if !ids.is_empty() {
                let text = ids.join("\n") + "\n";
                output::write_text(&main.join(format!("{}.txt", split.name())), &text)?;
            }
        }
    }
    output::write_text(&out.join("classes.txt"), &(ds.classes.join("\n") + "\n"))
}

fn annotation_xml(filename: &str, image: &LabelledImage, classes: &[String]) -> String {
    let mut xml = String::from("<annotation>\n  <folder>JPEGImages</folder>\n");
    let _ = writeln!(xml, "  <filename>{}</filename>", escape(filename));
    let _ = writeln!(
        xml,
        "  <size>\n    <width>{}</width>\n    <height>{}</height>\n    <depth>3</depth>\n  </size>",
        image.width, image.height
    );
    for b in &image.boxes {
        let name = classes
            .get(b.class)
            .map_or_else(|| b.class.to_string(), |n| escape(n));
        let [x1, y1, x2, y2] = b.bbox;
        let _ = writeln!(
            xml,
            "  <object>\n    <name>{name}</name>\n    <difficult>{}</difficult>\n    <bndbox>\n      \
             <xmin>{x1}</xmin>\n      <ymin>{y1}</ymin>\n      <xmax>{x2}</xmax>\n      \
             <ymax>{y2}</ymax>\n    </bndbox>\n  </object>",
            u8::from(b.difficult)
        );
    }
    xml.push_str("</annotation>\n");
    xml
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn picture(path: &Path, w: u32, h: u32) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::RgbImage::new(w, h).save(path).unwrap();
    }

    fn object(name: &str, bbox: [&str; 4], difficult: &str) -> String {
        format!(
            "  <object>\n    <name>{name}</name>\n    <difficult>{difficult}</difficult>\n    <bndbox>\n      <xmin>{}</xmin>\n      <ymin>{}</ymin>\n      <xmax>{}</xmax>\n      <ymax>{}</ymax>\n    </bndbox>\n  </object>\n",
            bbox[0], bbox[1], bbox[2], bbox[3]
        )
    }

    /// An XML beside a 100x50 picture: `<annotation>` on line 1, the size on lines 3-6,
    /// then the objects, 10 lines each (the first's `<object>` on line 7, `<name>` on 8,
    /// `<difficult>` on 9, `<bndbox>` on 10, `<xmin>` to `<ymax>` on 11-14).
    fn xml(objects: &str) -> String {
        format!(
            "<annotation>\n  <filename>a.png</filename>\n  <size>\n    <width>100</width>\n    <height>50</height>\n  </size>\n{objects}</annotation>\n"
        )
    }

    fn beside(objects: &str) -> (tempfile::TempDir, Scan) {
        let dir = tempfile::tempdir().unwrap();
        picture(&dir.path().join("a.png"), 100, 50);
        fs::write(dir.path().join("a.xml"), xml(objects)).unwrap();
        let scan = read(dir.path()).unwrap();
        (dir, scan)
    }

    #[test]
    fn objects_become_boxes_with_sorted_class_names_and_difficult_marked() {
        let (_dir, scan) = beside(&format!(
            "{}{}",
            object("tree", ["10", "5.5", "30", "45"], "0"),
            object("bush", ["0", "0", "100", "50"], "1")
        ));
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        let ds = scan.dataset;
        assert_eq!(ds.classes, ["bush", "tree"]);
        assert!(!ds.has_splits);
        let boxes = &ds.train[0].boxes;
        assert_eq!(boxes[0].bbox, [10.0, 5.5, 30.0, 45.0]);
        assert_eq!((boxes[0].class, boxes[0].difficult), (1, false));
        assert_eq!((boxes[1].class, boxes[1].difficult), (0, true));
    }

    #[test]
    fn every_bad_object_names_the_xml_and_the_elements_line() {
        let ok = object("tree", ["1", "1", "5", "5"], "0");
        let cases = [
            (object("tree", ["10", "5", "101", "45"], "0"), 20, "box x 10..101, y 5..45 reaches outside the 100x50 picture"),
            (object("tree", ["-1", "5", "10", "45"], "0"), 20, "reaches outside"),
            (object("tree", ["10", "5", "10", "45"], "0"), 20, "zero or negative width"),
            (object("tree", ["10", "45", "20", "5"], "0"), 20, "zero or negative height"),
            (object("tree", ["10", "x", "20", "45"], "0"), 22, "<ymin> `x` is not a number"),
            (object("tree", ["10", "5", "20", "45"], "2"), 19, "<difficult> `2`: expected 0 or 1"),
            (
                "  <object>\n    <name>tree</name>\n  </object>\n".to_string(),
                17,
                "an <object> without a <bndbox>",
            ),
            (
                "  <object>\n    <bndbox><xmin>1</xmin></bndbox>\n  </object>\n".to_string(),
                17,
                "an <object> without a <name>",
            ),
            (
                "  <object>\n    <name>tree</name>\n    <bndbox><xmin>1</xmin></bndbox>\n  </object>\n".to_string(),
                19,
                "<bndbox> without <ymin>",
            ),
        ];
        for (bad, line, want) in cases {
            let (dir, scan) = beside(&format!("{ok}{bad}"));
            assert_eq!(scan.problems.len(), 1, "{want}: {:?}", scan.problems);
            let p = &scan.problems[0];
            assert_eq!(p.file, dir.path().join("a.xml"));
            assert_eq!(p.line, Some(line), "{want}: {p}");
            assert!(p.message.contains(want), "{want}: {p}");
            assert_eq!(
                scan.dataset.train[0].boxes.len(),
                1,
                "the good object stays"
            );
        }
    }

    #[test]
    fn a_class_missing_from_classes_txt_is_named_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        picture(&dir.path().join("a.png"), 100, 50);
        let objects = format!(
            "{}{}",
            object("tree", ["1", "1", "5", "5"], "0"),
            object("car", ["1", "1", "5", "5"], "0")
        );
        fs::write(dir.path().join("a.xml"), xml(&objects)).unwrap();
        fs::write(dir.path().join("classes.txt"), "tree\nbush\n").unwrap();
        let scan = read(dir.path()).unwrap();
        assert_eq!(scan.dataset.classes, ["tree", "bush"]);
        assert_eq!(scan.problems.len(), 1);
        let shown = scan.problems[0].to_string();
        assert!(shown.contains("a.xml:18: class `car` is not in"), "{shown}");
    }

    #[test]
    fn unreadable_pictures_bad_xml_and_wrong_sizes_are_problems() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("a.png"), "not a png").unwrap();
        fs::write(root.join("a.xml"), xml("")).unwrap();
        fs::write(
            root.join("b.xml"),
            "<annotation>\n  <object>\n</annotation>\n",
        )
        .unwrap();
        picture(&root.join("c.png"), 100, 60);
        fs::write(root.join("c.xml"), xml("")).unwrap();
        fs::write(root.join("d.xml"), xml("").replace("a.png", "gone.png")).unwrap();
        let scan = read(root).unwrap();
        let shown: Vec<String> = scan.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(shown.len(), 4, "{shown:?}");
        assert!(shown[0].contains("b.xml:3: not valid XML"), "{shown:?}");
        assert!(
            shown[1].contains("a.png: cannot read the picture"),
            "{shown:?}"
        );
        assert!(
            shown[2].contains("c.xml:3: <size> says 100x50 but the picture is 100x60"),
            "{shown:?}"
        );
        assert!(
            shown[3].contains("d.xml: picture not found: looked for gone.png or d.png/.jpg/.jpeg"),
            "{shown:?}"
        );
    }

    #[test]
    fn the_voc_layout_with_split_lists() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for id in ["x", "y", "z", "w"] {
            picture(&root.join(format!("JPEGImages/{id}.jpg")), 100, 50);
            let text = xml(&object("tree", ["1", "1", "5", "5"], "0"))
                .replace("a.png", &format!("{id}.jpg"));
            fs::create_dir_all(root.join("Annotations")).unwrap();
            fs::write(root.join(format!("Annotations/{id}.xml")), text).unwrap();
        }
        let main = root.join("ImageSets/Main");
        fs::create_dir_all(&main).unwrap();
        fs::write(main.join("trainval.txt"), "x\ny\n").unwrap();
        fs::write(main.join("val.txt"), "y\n").unwrap();
        fs::write(main.join("test.txt"), "z\nq\n").unwrap();
        let scan = read(root).unwrap();
        let ds = &scan.dataset;
        assert!(ds.has_splits);
        let names =
            |s: &[LabelledImage]| -> Vec<String> { s.iter().map(|i| stem(&i.path)).collect() };
        assert_eq!(names(&ds.train), ["x"]);
        assert_eq!(names(&ds.val), ["y"]);
        assert_eq!(names(&ds.test), ["z"]);
        assert_eq!(scan.unlisted, [root.join("Annotations/w.xml")]);
        assert_eq!(scan.problems.len(), 1);
        assert!(
            scan.problems[0]
                .to_string()
                .contains("test.txt:2: no annotation q.xml")
        );
    }

    #[test]
    fn written_data_sets_read_back_box_for_box() {
        let dir = tempfile::tempdir().unwrap();
        let (_d, scan) = beside(&format!(
            "{}{}",
            object("b &amp; &lt;c&gt;", ["10.25", "5.5", "30.1", "45"], "1"),
            object("a", ["0", "0", "100", "50"], "0")
        ));
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        let mut ds = scan.dataset;
        assert_eq!(ds.classes, ["a", "b & <c>"]);
        ds.classes.reverse();
        for b in &mut ds.train[0].boxes {
            b.class = 1 - b.class;
        }
        ds.has_splits = true;
        let out = dir.path().join("out");
        write(&ds, &out).unwrap();
        let back = read(&out).unwrap();
        assert!(back.problems.is_empty(), "{:?}", back.problems);
        assert_eq!(back.dataset.classes, ds.classes);
        assert!(back.dataset.has_splits);
        assert_eq!(back.dataset.train[0].boxes, ds.train[0].boxes);
    }
}
