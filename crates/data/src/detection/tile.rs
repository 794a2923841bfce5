//! Tiles of pictures far larger than a detector's input (aerial, microscope and document
//! scans): overlapping squares cut at full resolution, each with the boxes mostly inside it,
//! and the way back: detections found tile by tile merged into one list for the picture.
//!
//! The tiling is the one the tree-crown peer (`bench/trees/make_tiles.py`, `--edge shift`)
//! uses, so both train and score on the same tiles: origins `0, stride, 2 stride, …` while the
//! tile fits, then one tile flush with the far edge; a box is kept in a tile when at least
//! `min_fraction` of its area lies inside, then clipped to the tile.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use convnet_layers::limits::checked_mul;
use convnet_vision::boxes::{BBox, Detection, nms_per_class};
use convnet_vision::image_io::{decode_image, write_atomically};
use serde::Serialize;

use super::{DetectionDataset, LabelledBox, LabelledImage, Split};
use crate::DataError;

/// The share of a box's area that must lie inside a tile for the box to belong to it.
pub const MIN_FRACTION: f32 = 0.5;

/// Where tiles of `tile` pixels start along a side of `length` pixels, `stride` apart: `0,
/// stride, 2 stride, …` while a tile fits, then one last tile flush with the edge
/// (`length - tile`) when the grid leaves the edge uncovered. A side no longer than a tile
/// gives `[0]` (that tile is the whole side). A `tile` or `stride` of 0 is taken as 1;
/// [`tiles_of`] refuses them.
pub fn origins(length: u32, tile: u32, stride: u32) -> Vec<u32> {
    let (tile, stride) = (tile.max(1), stride.max(1));
    if length <= tile {
        return vec![0];
    }
    let last = length - tile;
    // `step_by` stops before passing `last`, without ever adding past `u32::MAX`.
    let mut xs: Vec<u32> = (0..=last).step_by(stride as usize).collect();
    if xs.last().is_some_and(|&x| x < last) {
        xs.push(last);
    }
    xs
}

/// One tile of a picture and the boxes that belong to it, in tile pixels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tile {
    pub x0: u32,
    pub y0: u32,
    /// The tile's size: `tile`, or the picture's side where the picture is smaller.
    pub width: u32,
    pub height: u32,
    pub boxes: Vec<LabelledBox>,
    /// Boxes that overlap the tile but have less than the minimum fraction inside it: left out
    /// of this tile (a neighbouring tile holds most of them), counted so reports can say so.
    pub dropped: usize,
}

/// The tiles of `image`, row by row (as `make_tiles.py` orders them): `tile` pixels square,
/// overlapping their neighbours by `overlap`, each with the boxes that have at least
/// `min_fraction` of their area inside it, clipped to it. Refuses a tile of 0, an overlap not
/// smaller than the tile, a fraction outside `0..=1`, an empty picture, and boxes without area
/// or outside the picture.
pub fn tiles_of(
    image: &LabelledImage,
    tile: u32,
    overlap: u32,
    min_fraction: f32,
) -> Result<Vec<Tile>, DataError> {
    tiles_and_lost(image, tile, overlap, min_fraction).map(|(tiles, _)| tiles)
}

/// [`tiles_of`], and how many of the picture's boxes no tile keeps: boxes too large for any
/// tile to hold `min_fraction` of them. They are lost to training on tiles, so a caller should
/// say how many (a larger tile keeps them).
pub fn tiles_and_lost(
    image: &LabelledImage,
    tile: u32,
    overlap: u32,
    min_fraction: f32,
) -> Result<(Vec<Tile>, usize), DataError> {
    check_tiling(tile, overlap, min_fraction)?;
    let bad = |problem: String| DataError::Folder {
        path: image.path.clone(),
        problem,
    };
    if image.width == 0 || image.height == 0 {
        return Err(bad(format!(
            "is {}x{} pixels: nothing to tile",
            image.width, image.height
        )));
    }
    let (width, height) = (f64::from(image.width), f64::from(image.height));
    for b in &image.boxes {
        let [x1, y1, x2, y2] = b.bbox.map(f64::from);
        if !(b.bbox.iter().all(|v| v.is_finite()) && x2 > x1 && y2 > y1) {
            return Err(bad(format!(
                "box {:?} has no area; it cannot be placed in a tile",
                b.bbox
            )));
        }
        if x2 <= 0.0 || y2 <= 0.0 || x1 >= width || y1 >= height {
            return Err(bad(format!(
                "box {:?} lies outside the {}x{} picture; no tile could hold it",
                b.bbox, image.width, image.height
            )));
        }
    }
    let stride = tile - overlap;
    let xs = origins(image.width, tile, stride);
    let ys = origins(image.height, tile, stride);
    let mut tiles = Vec::with_capacity(checked_mul("tiles of one picture", xs.len(), ys.len())?);
    let mut placed = vec![false; image.boxes.len()];
    for &y0 in &ys {
        for &x0 in &xs {
            let (tw, th) = (tile.min(image.width - x0), tile.min(image.height - y0));
            let (left, top) = (f64::from(x0), f64::from(y0));
            let (right, bottom) = (
                (left + f64::from(tw)).min(width),
                (top + f64::from(th)).min(height),
            );
            let mut kept = Vec::new();
            let mut dropped = 0;
            for (b, placed) in image.boxes.iter().zip(&mut placed) {
                let [x1, y1, x2, y2] = b.bbox.map(f64::from);
                let (cx1, cy1) = (x1.max(left), y1.max(top));
                let (cx2, cy2) = (x2.min(right), y2.min(bottom));
                if cx2 <= cx1 || cy2 <= cy1 {
                    continue; // does not touch this tile
                }
                let area = (x2 - x1) * (y2 - y1);
                // In f64, as the peer's Python computes it, so a box exactly at the fraction
                // falls the same way in both.
                if (cx2 - cx1) * (cy2 - cy1) >= f64::from(min_fraction) * area {
                    kept.push(LabelledBox {
                        bbox: [cx1 - left, cy1 - top, cx2 - left, cy2 - top].map(|v| v as f32),
                        ..*b
                    });
                    *placed = true;
                } else {
                    dropped += 1;
                }
            }
            tiles.push(Tile {
                x0,
                y0,
                width: tw,
                height: th,
                boxes: kept,
                dropped,
            });
        }
    }
    let lost = placed.iter().filter(|&&p| !p).count();
    Ok((tiles, lost))
}

fn check_tiling(tile: u32, overlap: u32, min_fraction: f32) -> Result<(), DataError> {
    if tile == 0 {
        return Err(DataError::Sets("a tile must be at least 1 pixel".into()));
    }
    if overlap >= tile {
        return Err(DataError::Sets(format!(
            "tiles of {tile} pixels cannot overlap by {overlap}: the overlap must be smaller \
             than the tile"
        )));
    }
    if !(0.0..=1.0).contains(&min_fraction) {
        return Err(DataError::Sets(format!(
            "the share of a box that must lie inside a tile is {min_fraction}; it must be from \
             0 to 1"
        )));
    }
    Ok(())
}

/// What [`write_yolo_tiles`] wrote, split by split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TileSummary {
    pub splits: Vec<SplitTiles>,
}

/// One split's tiles: from how many pictures, how many boxes they hold (a box in two tiles
/// counts twice), how many times a box touched a tile without enough of it inside, and how
/// many of the pictures' boxes no tile holds at all.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitTiles {
    pub split: Split,
    pub pictures: usize,
    pub tiles: usize,
    pub boxes: usize,
    pub dropped: usize,
    pub lost: usize,
}

/// Cuts every picture of `ds` into tiles and writes them as a YOLO data set under `out`, as
/// `make_tiles.py` does: `images/{split}/{stem}_{x0:04}_{y0:04}.png`, the matching
/// `labels/{split}/….txt`, `data.yaml`, and `coco_{split}.json` (the tiles' ground truth, so
/// predictions on the tiles can be scored by COCO tools). Only splits with pictures are
/// written. Refuses to write into tile folders that already hold files (stale tiles would join
/// the data set) and two pictures of one split with the same file stem (their tiles would
/// overwrite each other).
pub fn write_yolo_tiles(
    ds: &DetectionDataset,
    tile: u32,
    overlap: u32,
    min_fraction: f32,
    out: &Path,
) -> Result<TileSummary, DataError> {
    check_tiling(tile, overlap, min_fraction)?;
    let splits: Vec<Split> = Split::ALL
        .into_iter()
        .filter(|&s| !ds.split(s).is_empty())
        .collect();
    if splits.is_empty() {
        return Err(DataError::Folder {
            path: ds.root.clone(),
            problem: "holds no pictures to tile".into(),
        });
    }
    for &split in &splits {
        check_stems(ds.split(split))?;
        for kind in ["images", "labels"] {
            make_empty_dir(&out.join(kind).join(split.name()))?;
        }
    }
    let mut summary = TileSummary { splits: Vec::new() };
    for &split in &splits {
        summary
            .splits
            .push(write_split(ds, split, tile, overlap, min_fraction, out)?);
    }
    let root = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    write_text(
        &out.join("data.yaml"),
        &data_yaml(&root, &splits, &ds.classes),
    )?;
    Ok(summary)
}

fn write_split(
    ds: &DetectionDataset,
    split: Split,
    tile: u32,
    overlap: u32,
    min_fraction: f32,
    out: &Path,
) -> Result<SplitTiles, DataError> {
    let (images_dir, labels_dir) = (
        out.join("images").join(split.name()),
        out.join("labels").join(split.name()),
    );
    let mut coco = CocoTruth {
        images: Vec::new(),
        annotations: Vec::new(),
        categories: (1..)
            .zip(&ds.classes)
            .map(|(id, name)| CocoCategory { id, name })
            .collect(),
    };
    let mut counts = SplitTiles {
        split,
        pictures: 0,
        tiles: 0,
        boxes: 0,
        dropped: 0,
        lost: 0,
    };
    for image in ds.split(split) {
        let (tiles, lost) = tiles_and_lost(image, tile, overlap, min_fraction)?;
        let picture = decode_image(&image.path)?.to_rgb8();
        if picture.dimensions() != (image.width, image.height) {
            return Err(DataError::Folder {
                path: image.path.clone(),
                problem: format!(
                    "decodes to {}x{} pixels, but its labels were read for {}x{}",
                    picture.width(),
                    picture.height(),
                    image.width,
                    image.height
                ),
            });
        }
        let stem = stem(&image.path);
        for t in &tiles {
            let name = format!("{stem}_{:04}_{:04}", t.x0, t.y0);
            let png = images_dir.join(format!("{name}.png"));
            let crop = image::imageops::crop_imm(&picture, t.x0, t.y0, t.width, t.height);
            write_atomically(&png, &encode_png(&crop.to_image(), &png)?)?;
            write_text(
                &labels_dir.join(format!("{name}.txt")),
                &yolo_lines(&t.boxes, t.width, t.height),
            )?;
            let image_id = coco.images.len() + 1;
            coco.images.push(CocoImage {
                id: image_id,
                file_name: format!("{name}.png"),
                width: t.width,
                height: t.height,
            });
            for b in &t.boxes {
                let [x1, y1, x2, y2] = b.bbox.map(f64::from);
                coco.annotations.push(CocoAnnotation {
                    id: coco.annotations.len() + 1,
                    image_id,
                    category_id: b.class + 1,
                    bbox: [x1, y1, x2 - x1, y2 - y1],
                    area: (x2 - x1) * (y2 - y1),
                    iscrowd: 0,
                });
            }
            counts.boxes += t.boxes.len();
            counts.dropped += t.dropped;
        }
        counts.pictures += 1;
        counts.tiles += tiles.len();
        counts.lost += lost;
    }
    let json = serde_json::to_string(&coco).map_err(|e| DataError::Sets(e.to_string()))?;
    write_text(&out.join(format!("coco_{}.json", split.name())), &json)?;
    Ok(counts)
}

/// A picture's file name without its extension: the start of its tiles' names.
fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn check_stems(images: &[LabelledImage]) -> Result<(), DataError> {
    let mut seen: HashMap<String, &PathBuf> = HashMap::new();
    for image in images {
        if let Some(first) = seen.insert(stem(&image.path), &image.path) {
            return Err(DataError::Folder {
                path: image.path.clone(),
                problem: format!(
                    "has the same file stem as {}, so their tiles would have the same names; \
                     rename one",
                    first.display()
                ),
            });
        }
    }
    Ok(())
}

/// Creates `dir`, refusing one that already holds anything.
fn make_empty_dir(dir: &Path) -> Result<(), DataError> {
    std::fs::create_dir_all(dir).map_err(|source| DataError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut entries = std::fs::read_dir(dir).map_err(|source| DataError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    if entries.next().is_some() {
        return Err(DataError::Folder {
            path: dir.to_path_buf(),
            problem: "already holds files; tiles are written only into an empty folder, so no \
                      stale tile joins the data set (remove it or choose another output)"
                .into(),
        });
    }
    Ok(())
}

fn write_text(path: &Path, text: &str) -> Result<(), DataError> {
    Ok(write_atomically(path, text.as_bytes())?)
}

fn encode_png(picture: &image::RgbImage, path: &Path) -> Result<Vec<u8>, DataError> {
    let mut bytes = Vec::new();
    picture
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|source| convnet_vision::VisionError::Encode {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(bytes)
}

/// YOLO label lines, `class cx cy w h` normalised to the tile, six decimals (as
/// `make_tiles.py` writes them).
fn yolo_lines(boxes: &[LabelledBox], width: u32, height: u32) -> String {
    let (w, h) = (f64::from(width), f64::from(height));
    boxes
        .iter()
        .map(|b| {
            let [x1, y1, x2, y2] = b.bbox.map(f64::from);
            format!(
                "{} {:.6} {:.6} {:.6} {:.6}\n",
                b.class,
                (x1 + x2) / 2.0 / w,
                (y1 + y2) / 2.0 / h,
                (x2 - x1) / w,
                (y2 - y1) / h
            )
        })
        .collect()
}

fn data_yaml(root: &Path, splits: &[Split], classes: &[String]) -> String {
    let mut text = format!("path: {}\n", yaml_scalar(&root.to_string_lossy()));
    for split in splits {
        text += &format!("{0}: images/{0}\n", split.name());
    }
    let names: Vec<String> = classes.iter().map(|c| yaml_scalar(c)).collect();
    text += &format!("nc: {}\nnames: [{}]\n", classes.len(), names.join(", "));
    text
}

/// `s` as a YAML scalar that reads back as the same string inside a flow list: plain when it
/// is a simple word or path that YAML would not take for a number, boolean or null; otherwise
/// double-quoted (a JSON string is a valid YAML double-quoted scalar).
fn yaml_scalar(s: &str) -> String {
    let simple = s
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '/')
        && !s.ends_with(' ')
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ' '));
    let special = matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "nan" | "inf"
    );
    if simple && !special {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
    }
}

#[derive(Serialize)]
struct CocoTruth<'a> {
    images: Vec<CocoImage>,
    annotations: Vec<CocoAnnotation>,
    categories: Vec<CocoCategory<'a>>,
}

#[derive(Serialize)]
struct CocoImage {
    id: usize,
    file_name: String,
    width: u32,
    height: u32,
}

#[derive(Serialize)]
struct CocoAnnotation {
    id: usize,
    image_id: usize,
    category_id: usize,
    bbox: [f64; 4],
    area: f64,
    iscrowd: u8,
}

#[derive(Serialize)]
struct CocoCategory<'a> {
    id: usize,
    name: &'a String,
}

/// Detections found tile by tile (each list in its tile's pixels, with the tile's origin `x0,
/// y0`) moved to picture pixels and merged by per-class non-max suppression at `iou`, as
/// DeepForest and SAHI merge tiles: an object in the overlap of two tiles is found twice, and
/// the better-scored copy stays. A picture that fits one tile gives that tile's detections
/// after the same suppression.
pub fn merge_tiles(per_tile: Vec<(u32, u32, Vec<Detection>)>, iou: f32) -> Vec<Detection> {
    let all: Vec<Detection> = per_tile
        .into_iter()
        .flat_map(|(x0, y0, detections)| {
            let (dx, dy) = (x0 as f32, y0 as f32);
            detections.into_iter().map(move |d| Detection {
                bbox: BBox {
                    x1: d.bbox.x1 + dx,
                    y1: d.bbox.y1 + dy,
                    x2: d.bbox.x2 + dx,
                    y2: d.bbox.y2 + dy,
                },
                ..d
            })
        })
        .collect();
    // No score threshold here: the detector already applied its own.
    nms_per_class(&all, f32::NEG_INFINITY, iou)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(width: u32, height: u32, boxes: Vec<LabelledBox>) -> LabelledImage {
        LabelledImage {
            path: PathBuf::from("pic.png"),
            width,
            height,
            boxes,
            labelled: true,
        }
    }

    #[test]
    fn origins_match_the_peers_worked_by_hand() {
        // 416 px tiles at stride 384: 0..=1883 in steps of 384 is 0..1536, then 2299 - 416.
        assert_eq!(origins(2299, 416, 384), vec![0, 384, 768, 1152, 1536, 1883]);
        // 2472 - 416 = 2056: the grid reaches 1920, then the flush tile.
        assert_eq!(
            origins(2472, 416, 384),
            vec![0, 384, 768, 1152, 1536, 1920, 2056]
        );
        assert_eq!(origins(1035, 416, 384), vec![0, 384, 619]);
        assert_eq!(origins(1249, 416, 384), vec![0, 384, 768, 833]);
        assert_eq!(origins(416, 416, 384), vec![0]);
        assert_eq!(origins(300, 416, 384), vec![0]);
        // The grid landing exactly on the edge needs no extra tile: 800 = 384 + 416.
        assert_eq!(origins(800, 416, 384), vec![0, 384]);
        assert_eq!(origins(10, 4, 3), vec![0, 3, 6]);
        // Degenerate arguments never loop forever or overflow.
        assert_eq!(origins(3, 0, 0), vec![0, 1, 2]);
        assert_eq!(
            *origins(u32::MAX, 1 << 31, 1 << 31).last().unwrap(),
            (1 << 31) - 1
        );
    }

    #[test]
    fn the_peers_tile_counts() {
        // The numbers: 42 training tiles from 2299x2472, 12 held out from 1249x1035.
        let tiles = |w, h| tiles_of(&picture(w, h, vec![]), 416, 32, MIN_FRACTION).unwrap();
        assert_eq!(tiles(2299, 2472).len(), 42);
        assert_eq!(tiles(1249, 1035).len(), 12);
        // 1000x700: x at 0, 384, 584; y at 0, 284: six full tiles, row by row.
        let t = tiles(1000, 700);
        let places: Vec<(u32, u32, u32, u32)> =
            t.iter().map(|t| (t.x0, t.y0, t.width, t.height)).collect();
        assert_eq!(
            places,
            vec![
                (0, 0, 416, 416),
                (384, 0, 416, 416),
                (584, 0, 416, 416),
                (0, 284, 416, 416),
                (384, 284, 416, 416),
                (584, 284, 416, 416),
            ]
        );
        // A picture smaller than a tile is one tile of its own size, not padded.
        let small = tiles(300, 200);
        assert_eq!(
            (small.len(), small[0].width, small[0].height),
            (1, 300, 200)
        );
    }

    #[test]
    fn a_box_exactly_half_inside_is_kept_and_just_under_half_is_dropped() {
        // Tiles of 10 at stride 6 over 16 px: x0 = 0 and 6. The box spans 7..11 (4 wide):
        // in the first tile (0..10) 3/4 of it, in the second (6..16) all of it.
        let t = tiles_of(
            &picture(16, 10, vec![LabelledBox::new([7.0, 2.0, 11.0, 4.0], 0)]),
            10,
            4,
            0.5,
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].boxes[0].bbox, [7.0, 2.0, 10.0, 4.0]);
        assert_eq!(t[1].boxes[0].bbox, [1.0, 2.0, 5.0, 4.0]);
        // 8..12: exactly half (8..10) inside the first tile: kept.
        let t = tiles_of(
            &picture(16, 10, vec![LabelledBox::new([8.0, 2.0, 12.0, 4.0], 0)]),
            10,
            4,
            0.5,
        )
        .unwrap();
        assert_eq!(t[0].boxes, vec![LabelledBox::new([8.0, 2.0, 10.0, 4.0], 0)]);
        assert_eq!(t[0].dropped, 0);
        // 8.01..12.01: just under half inside the first tile: dropped there, counted.
        let t = tiles_of(
            &picture(16, 10, vec![LabelledBox::new([8.01, 2.0, 12.01, 4.0], 1)]),
            10,
            4,
            0.5,
        )
        .unwrap();
        assert!(t[0].boxes.is_empty());
        assert_eq!(t[0].dropped, 1);
        assert_eq!(t[1].boxes.len(), 1);
        assert_eq!(t[1].dropped, 0);
        // A box touching a tile only along an edge neither belongs to it nor counts as
        // dropped from it: 10..14 meets the first tile at x = 10.
        let t = tiles_of(
            &picture(16, 10, vec![LabelledBox::new([10.0, 2.0, 14.0, 4.0], 0)]),
            10,
            4,
            0.5,
        )
        .unwrap();
        assert_eq!((t[0].boxes.len(), t[0].dropped), (0, 0));
    }

    #[test]
    fn boxes_too_large_for_any_tile_are_counted_as_lost() {
        // Tiles of 10 at stride 6 over 16x16: 0..10 and 6..16 on each axis. A 14x14 box at
        // 1..15 has 9x9 = 81 of its 196 px (0.41) in each tile: at 0.6 no tile keeps it, and
        // each of the four counts it as dropped.
        let p = picture(
            16,
            16,
            vec![
                LabelledBox::new([1.0, 1.0, 15.0, 15.0], 0),
                LabelledBox::new([0.0, 0.0, 3.0, 3.0], 1),
            ],
        );
        let (tiles, lost) = tiles_and_lost(&p, 10, 4, 0.6).unwrap();
        assert_eq!(lost, 1);
        assert!(tiles.iter().all(|t| t.dropped == 1));
        assert_eq!(
            tiles[0].boxes,
            vec![LabelledBox::new([0.0, 0.0, 3.0, 3.0], 1)]
        );
        // Still lost at 0.5; at 0.4 every tile keeps it.
        assert_eq!(tiles_and_lost(&p, 10, 4, 0.5).unwrap().1, 1);
        let (tiles, lost) = tiles_and_lost(&p, 10, 4, 0.4).unwrap();
        assert_eq!(lost, 0);
        assert!(tiles.iter().all(|t| t.boxes.iter().any(|b| b.class == 0)));
    }

    #[test]
    fn kept_boxes_are_clipped_and_moved_to_tile_pixels() {
        // 20x20 in tiles of 12 overlapping by 4: origins 0 and 8 on both axes.
        let b = LabelledBox::new([6.0, 9.0, 13.0, 14.0], 2);
        let t = tiles_of(&picture(20, 20, vec![b]), 12, 4, 0.25).unwrap();
        let got: Vec<(u32, u32, Vec<[f32; 4]>)> = t
            .iter()
            .map(|t| (t.x0, t.y0, t.boxes.iter().map(|b| b.bbox).collect()))
            .collect();
        // Area 35. Tile (0,0): 6..12 x 9..12 = 18 >= 8.75. Tile (8,0): 8..13 x 9..12 = 15.
        // Tile (0,8): 6..12 x 9..14 = 30. Tile (8,8): 8..13 x 9..14 = 25.
        assert_eq!(
            got,
            vec![
                (0, 0, vec![[6.0, 9.0, 12.0, 12.0]]),
                (8, 0, vec![[0.0, 9.0, 5.0, 12.0]]),
                (0, 8, vec![[6.0, 1.0, 12.0, 6.0]]),
                (8, 8, vec![[0.0, 1.0, 5.0, 6.0]]),
            ]
        );
        assert!(t.iter().all(|t| t.boxes[0].class == 2));
    }

    #[test]
    fn bad_tilings_and_boxes_are_refused() {
        let p = picture(100, 100, vec![]);
        for (tile, overlap, frac, says) in [
            (0, 0, 0.5, "at least 1 pixel"),
            (416, 416, 0.5, "overlap must be smaller"),
            (416, 500, 0.5, "overlap must be smaller"),
            (416, 32, 1.5, "from 0 to 1"),
            (416, 32, f32::NAN, "from 0 to 1"),
        ] {
            let msg = tiles_of(&p, tile, overlap, frac).unwrap_err().to_string();
            assert!(msg.contains(says), "{msg}");
        }
        let msg = tiles_of(&picture(0, 5, vec![]), 4, 0, 0.5)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("pic.png") && msg.contains("0x5"), "{msg}");
        let flat = picture(10, 10, vec![LabelledBox::new([1.0, 1.0, 1.0, 5.0], 0)]);
        let msg = tiles_of(&flat, 4, 0, 0.5).unwrap_err().to_string();
        assert!(msg.contains("pic.png") && msg.contains("no area"), "{msg}");
        let away = picture(10, 10, vec![LabelledBox::new([10.0, 1.0, 12.0, 5.0], 0)]);
        let msg = tiles_of(&away, 4, 0, 0.5).unwrap_err().to_string();
        assert!(
            msg.contains("pic.png") && msg.contains("outside the 10x10"),
            "{msg}"
        );
    }

    fn det(x1: f32, y1: f32, x2: f32, y2: f32, score: f32, class: usize) -> Detection {
        Detection {
            bbox: BBox { x1, y1, x2, y2 },
            score,
            class,
        }
    }

    #[test]
    fn merge_moves_detections_to_the_picture_and_removes_cross_tile_duplicates() {
        // One tree in the overlap of the tiles at x0 = 0 and x0 = 384: found by both, at
        // 390..410 in the picture. The second tile's copy scores higher and stays.
        let left = vec![
            det(390.0, 10.0, 410.0, 30.0, 0.7, 0),
            det(5.0, 5.0, 25.0, 25.0, 0.9, 0),
        ];
        let right = vec![
            det(6.0, 10.0, 26.0, 30.0, 0.8, 0),
            // Same place, another class: not suppressed by the tree.
            det(6.0, 10.0, 26.0, 30.0, 0.6, 1),
        ];
        let below = vec![det(0.0, 0.0, 10.0, 10.0, 0.5, 0)];
        let merged = merge_tiles(vec![(0, 0, left), (384, 0, right), (384, 200, below)], 0.5);
        assert_eq!(
            merged,
            vec![
                det(5.0, 5.0, 25.0, 25.0, 0.9, 0),
                det(390.0, 10.0, 410.0, 30.0, 0.8, 0),
                det(390.0, 10.0, 410.0, 30.0, 0.6, 1),
                det(384.0, 200.0, 394.0, 210.0, 0.5, 0),
            ]
        );
        assert!(merge_tiles(vec![], 0.5).is_empty());
    }

    #[test]
    fn one_tile_gives_its_own_detections_after_the_same_suppression() {
        let found = vec![
            det(1.0, 1.0, 11.0, 11.0, 0.4, 0),
            det(0.0, 0.0, 10.0, 10.0, 0.9, 0),
            det(50.0, 50.0, 70.0, 60.0, 0.6, 2),
        ];
        assert_eq!(
            merge_tiles(vec![(0, 0, found.clone())], 0.45),
            nms_per_class(&found, f32::NEG_INFINITY, 0.45)
        );
        assert_eq!(merge_tiles(vec![(0, 0, found.clone())], 0.45).len(), 2);
    }

    /// A 20x12 picture whose pixel (x, y) is (x, y, 7), saved as PNG in `dir`.
    fn save_gradient(dir: &Path, name: &str, width: u32, height: u32) -> PathBuf {
        let path = dir.join(name);
        image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 7]))
            .save(&path)
            .unwrap();
        path
    }

    fn dataset(
        root: &Path,
        train: Vec<LabelledImage>,
        val: Vec<LabelledImage>,
    ) -> DetectionDataset {
        DetectionDataset {
            root: root.to_path_buf(),
            layout: super::super::Layout::Voc,
            classes: vec!["Tree".into(), "big: rock".into()],
            train,
            val,
            test: vec![],
            has_splits: true,
        }
    }

    #[test]
    fn tiles_are_written_as_a_yolo_and_coco_data_set() {
        let dir = tempfile::tempdir().unwrap();
        let big = LabelledImage {
            path: save_gradient(dir.path(), "big.png", 20, 12),
            width: 20,
            height: 12,
            // Tiles of 12 overlapping by 4: x at 0 and 8, y at 0. The first box lies in both
            // tiles; the second has 1/4 of it in the first tile (dropped there).
            boxes: vec![
                LabelledBox::new([8.0, 2.0, 12.0, 6.0], 0),
                LabelledBox::new([9.0, 4.0, 17.0, 10.0], 1),
            ],
            labelled: true,
        };
        let small = LabelledImage {
            path: save_gradient(dir.path(), "small.png", 6, 5),
            width: 6,
            height: 5,
            boxes: vec![LabelledBox::new([1.0, 1.0, 4.0, 3.0], 1)],
            labelled: true,
        };
        let ds = dataset(dir.path(), vec![big], vec![small]);
        let out = dir.path().join("tiles");
        let summary = write_yolo_tiles(&ds, 12, 4, MIN_FRACTION, &out).unwrap();
        let split = |split, pictures, tiles, boxes, dropped| SplitTiles {
            split,
            pictures,
            tiles,
            boxes,
            dropped,
            lost: 0,
        };
        assert_eq!(
            summary.splits,
            vec![
                split(Split::Train, 1, 2, 3, 1),
                split(Split::Val, 1, 1, 1, 0)
            ]
        );
        let read = |p: &str| std::fs::read_to_string(out.join(p)).unwrap();
        // Box 1 in tile (0, 0): 8..12 x 2..6 -> centre (10, 4) / 12, size 4 / 12.
        assert_eq!(
            read("labels/train/big_0000_0000.txt"),
            "0 0.833333 0.333333 0.333333 0.333333\n"
        );
        // In tile (8, 0): box 1 at 0..4, box 2 at 1..9 x 4..10.
        assert_eq!(
            read("labels/train/big_0008_0000.txt"),
            "0 0.166667 0.333333 0.333333 0.333333\n1 0.416667 0.583333 0.666667 0.500000\n"
        );
        // A picture smaller than the tile is one tile of its own size, normalised to it.
        assert_eq!(
            read("labels/val/small_0000_0000.txt"),
            "1 0.416667 0.400000 0.500000 0.400000\n"
        );
        let tile = image::open(out.join("images/train/big_0008_0000.png"))
            .unwrap()
            .to_rgb8();
        assert_eq!(tile.dimensions(), (12, 12));
        assert_eq!(tile.get_pixel(3, 5).0, [11, 5, 7]);
        assert_eq!(
            image::open(out.join("images/val/small_0000_0000.png"))
                .unwrap()
                .to_rgb8()
                .dimensions(),
            (6, 5)
        );
        let root = std::path::absolute(&out).unwrap();
        assert_eq!(
            read("data.yaml"),
            format!(
                "path: {}\ntrain: images/train\nval: images/val\nnc: 2\nnames: [Tree, \"big: rock\"]\n",
                yaml_scalar(&root.to_string_lossy())
            )
        );
        // COCO truth that the evaluator reads: two images, three boxes, classes from 1.
        let truth =
            convnet_vision::coco::parse_truth(&read("coco_train.json"), Path::new("t")).unwrap();
        assert_eq!(truth.images.len(), 2);
        assert_eq!(
            truth.categories.get(&2).map(String::as_str),
            Some("big: rock")
        );
        let mut objects: Vec<(u64, u64, [f32; 4])> = truth
            .objects
            .iter()
            .map(|o| {
                (
                    o.image,
                    o.class,
                    [o.bbox.x1, o.bbox.y1, o.bbox.x2, o.bbox.y2],
                )
            })
            .collect();
        objects.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(
            objects,
            vec![
                (1, 1, [8.0, 2.0, 12.0, 6.0]),
                (2, 1, [0.0, 2.0, 4.0, 6.0]),
                (2, 2, [1.0, 4.0, 9.0, 10.0]),
            ]
        );
        let coco: serde_json::Value = serde_json::from_str(&read("coco_train.json")).unwrap();
        assert_eq!(coco["images"][1]["file_name"], "big_0008_0000.png");
        assert_eq!(coco["annotations"][2]["area"], 48.0);
        assert!(!out.join("coco_test.json").exists());
        // Writing again over the same tiles is refused, naming the folder.
        let msg = write_yolo_tiles(&ds, 12, 4, MIN_FRACTION, &out)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("images") && msg.contains("already holds files"),
            "{msg}"
        );
    }

    #[test]
    fn tiling_refuses_clashing_names_and_pictures_that_are_not_what_the_labels_say() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        let one = save_gradient(dir.path(), "p.png", 8, 8);
        let two = save_gradient(&dir.path().join("a"), "p.png", 8, 8);
        let image = |path: &PathBuf, width| LabelledImage {
            path: path.clone(),
            width,
            height: 8,
            boxes: vec![],
            labelled: false,
        };
        let clash = dataset(dir.path(), vec![image(&one, 8), image(&two, 8)], vec![]);
        let msg = write_yolo_tiles(&clash, 4, 0, 0.5, &dir.path().join("o1"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("same file stem"), "{msg}");
        let wrong = dataset(dir.path(), vec![image(&one, 9)], vec![]);
        let msg = write_yolo_tiles(&wrong, 4, 0, 0.5, &dir.path().join("o2"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("p.png") && msg.contains("8x8") && msg.contains("9x8"),
            "{msg}"
        );
        let empty = dataset(dir.path(), vec![], vec![]);
        let msg = write_yolo_tiles(&empty, 4, 0, 0.5, &dir.path().join("o3"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("no pictures"), "{msg}");
    }

    #[test]
    fn yaml_names_are_quoted_only_when_needed() {
        assert_eq!(yaml_scalar("Tree"), "Tree");
        assert_eq!(yaml_scalar("traffic light"), "traffic light");
        assert_eq!(yaml_scalar("/tmp/trees/ds"), "/tmp/trees/ds");
        for (raw, quoted) in [
            ("a, b", "\"a, b\""),
            ("yes", "\"yes\""),
            ("12", "\"12\""),
            ("", "\"\""),
            ("it's", "\"it's\""),
            ("say \"hi\"", "\"say \\\"hi\\\"\""),
            ("k: v", "\"k: v\""),
        ] {
            assert_eq!(yaml_scalar(raw), quoted);
        }
    }
}
