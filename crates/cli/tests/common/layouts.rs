//! One small labelled detection data set written by hand in each of the four layouts
//! convnet reads (YOLO, COCO, Pascal VOC, CSV), for the tests of `convnet dataset` and of
//! detection training on one's own data.
//!
//! In pixels: train a.png 64x48 with a cat [8, 6, 24, 18] and a dog [32, 24, 64, 48], train
//! b.png 32x32 without objects, val c.png 40x20 with a dog [0, 0, 20, 10]. Each picture is
//! textured, with each box filled in its class's colour, so a detector has something to learn.
#![allow(dead_code)]

use std::fs;
use std::path::Path;

/// The boxes of each picture, `(class, [x1, y1, x2, y2])`, by file name.
fn boxes_of(name: &str) -> &'static [(usize, [u32; 4])] {
    match name {
        "a.png" => &[(0, [8, 6, 24, 18]), (1, [32, 24, 64, 48])],
        "c.png" => &[(1, [0, 0, 20, 10])],
        _ => &[],
    }
}

pub fn picture(path: &Path, w: u32, h: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut img = image::RgbImage::from_fn(w, h, |x, y| {
        let v = ((x * 31 + y * 17) % 61) as u8 + 90;
        image::Rgb([v, v / 2 + 40, 60])
    });
    let name = path.file_name().unwrap().to_str().unwrap();
    for &(class, [x1, y1, x2, y2]) in boxes_of(name) {
        let colour = [image::Rgb([30, 40, 220]), image::Rgb([220, 40, 30])][class];
        for y in y1..y2.min(h) {
            for x in x1..x2.min(w) {
                img.put_pixel(x, y, colour);
            }
        }
    }
    img.save(path).unwrap();
}

pub fn text(path: &Path, content: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

pub fn yolo(root: &Path) {
    picture(&root.join("images/train/a.png"), 64, 48);
    picture(&root.join("images/train/b.png"), 32, 32);
    picture(&root.join("images/val/c.png"), 40, 20);
    text(
        &root.join("labels/train/a.txt"),
        "0 0.25 0.25 0.25 0.25\n1 0.75 0.75 0.5 0.5\n",
    );
    text(&root.join("labels/val/c.txt"), "1 0.25 0.25 0.5 0.5\n");
    text(
        &root.join("data.yaml"),
        "train: images/train\nval: images/val\nnames:\n  0: cat\n  1: dog\n",
    );
}

pub fn coco(root: &Path) {
    picture(&root.join("train/a.png"), 64, 48);
    picture(&root.join("train/b.png"), 32, 32);
    picture(&root.join("val/c.png"), 40, 20);
    let categories = r#""categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]"#;
    text(
        &root.join("annotations/instances_train.json"),
        &format!(
            r#"{{"images": [{{"id": 1, "file_name": "a.png", "width": 64, "height": 48}},
                           {{"id": 2, "file_name": "b.png", "width": 32, "height": 32}}],
                "annotations": [
                  {{"id": 1, "image_id": 1, "category_id": 1, "bbox": [8, 6, 16, 12], "iscrowd": 0}},
                  {{"id": 2, "image_id": 1, "category_id": 2, "bbox": [32, 24, 32, 24], "iscrowd": 0}},
                  {{"id": 3, "image_id": 1, "category_id": 2, "bbox": [0, 0, 64, 48], "iscrowd": 1}}],
                {categories}}}"#
        ),
    );
    text(
        &root.join("annotations/instances_val.json"),
        &format!(
            r#"{{"images": [{{"id": 1, "file_name": "c.png", "width": 40, "height": 20}}],
                "annotations": [{{"id": 1, "image_id": 1, "category_id": 2, "bbox": [0, 0, 20, 10]}}],
                {categories}}}"#
        ),
    );
}

pub fn voc_xml(file: &str, (w, h): (u32, u32), objects: &[(&str, [u32; 4])]) -> String {
    let mut xml = format!(
        "<annotation>\n  <filename>{file}</filename>\n  <size><width>{w}</width><height>{h}</height><depth>3</depth></size>\n"
    );
    for (name, [x1, y1, x2, y2]) in objects {
        xml += &format!(
            "  <object>\n    <name>{name}</name>\n    <difficult>0</difficult>\n    <bndbox>\n      <xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax>\n    </bndbox>\n  </object>\n"
        );
    }
    xml + "</annotation>\n"
}

pub fn voc(root: &Path) {
    picture(&root.join("JPEGImages/a.png"), 64, 48);
    picture(&root.join("JPEGImages/b.png"), 32, 32);
    picture(&root.join("JPEGImages/c.png"), 40, 20);
    let a = [("cat", [8, 6, 24, 18]), ("dog", [32, 24, 64, 48])];
    text(
        &root.join("Annotations/a.xml"),
        &voc_xml("a.png", (64, 48), &a),
    );
    text(
        &root.join("Annotations/b.xml"),
        &voc_xml("b.png", (32, 32), &[]),
    );
    let c = [("dog", [0, 0, 20, 10])];
    text(
        &root.join("Annotations/c.xml"),
        &voc_xml("c.png", (40, 20), &c),
    );
    text(&root.join("ImageSets/Main/train.txt"), "a\nb\n");
    text(&root.join("ImageSets/Main/val.txt"), "c\n");
}

pub fn csv(root: &Path) {
    picture(&root.join("pics/a.png"), 64, 48);
    picture(&root.join("pics/b.png"), 32, 32);
    picture(&root.join("pics/c.png"), 40, 20);
    text(
        &root.join("train.csv"),
        "image_path,xmin,ymin,xmax,ymax,label\npics/a.png,8,6,24,18,cat\npics/a.png,32,24,64,48,dog\npics/b.png,,,,,\n",
    );
    text(
        &root.join("val.csv"),
        "image_path,xmin,ymin,xmax,ymax,label\npics/c.png,0,0,20,10,dog\n",
    );
}

/// Writes the data set into a folder.
pub type Writer = fn(&Path);

/// Each layout's name (as `convnet dataset inspect` reports it) and writer.
pub const LAYOUTS: [(&str, Writer); 4] =
    [("yolo", yolo), ("coco", coco), ("voc", voc), ("csv", csv)];
