//! From labelled pictures on disk to the square pictures a detector trains on: each picture
//! (or each tile of it, for pictures far larger than the network's input) letterboxed to the
//! input side, its boxes moved with it, and where every square came from, so detections can be
//! taken back to the picture.

use std::path::PathBuf;

use convnet_layers::limits::{Bytes, checked_mul};
use rayon::prelude::*;
use serde::Serialize;

use super::letterbox::{Letterbox, letterbox};
use super::tile::{MIN_FRACTION, tiles_and_lost, tiles_of};
use super::{LabelledBox, LabelledImage};
use crate::DataError;
use crate::synthetic::{DetectionObject, DetectionSet};

/// Tiles to cut pictures into: `tile` pixels square, neighbours overlapping by `overlap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Tiling {
    pub tile: u32,
    pub overlap: u32,
}

/// Where a square of a prepared set came from: a picture, the tile's place and size in it
/// (the whole picture when untiled), and how the tile was letterboxed into the square.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Source {
    pub picture: PathBuf,
    /// `[x0, y0]` of the tile in the picture.
    pub origin: [u32; 2],
    /// `[width, height]` of the tile.
    pub size: [u32; 2],
    pub letterbox: Letterbox,
    /// How many of the picture's boxes touched this tile but were left out of it (less than
    /// half inside).
    pub dropped: usize,
}

/// Pictures ready for a detector: the squares and where each came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub set: DetectionSet,
    pub sources: Vec<Source>,
    /// Boxes no tile keeps (too large for any tile to hold half of them): lost to a tiled
    /// set, counted so the caller can say so.
    pub lost: usize,
}

/// One picture's squares: the letterboxed tiles (or the whole picture), their boxes (in
/// square pixels) and their sources; and how many of its boxes no tile keeps.
type Squares = (Vec<(Vec<u8>, Vec<LabelledBox>, Source)>, usize);

/// Decodes `images`, cuts them into `tiling`'s tiles when given, and letterboxes each piece
/// into an RGB square of `side` pixels. Refuses an empty list, and sets that would not fit in
/// memory, before decoding anything it can count first.
pub fn prepare(
    images: &[LabelledImage],
    classes: &[String],
    side: usize,
    tiling: Option<Tiling>,
) -> Result<Prepared, DataError> {
    if images.is_empty() {
        return Err(DataError::Sets("no pictures to prepare".into()));
    }
    let square = checked_mul("a square's values", 3, checked_mul("a square", side, side)?)?;
    let pieces: usize = images
        .iter()
        .map(|image| match tiling {
            Some(t) => tiles_of(image, t.tile, t.overlap, MIN_FRACTION).map(|v| v.len()),
            None => Ok(1),
        })
        .sum::<Result<usize, DataError>>()?;
    Bytes::of(&[pieces, square], 1).check(&format!(
        "{pieces} pictures of {side}x{side} (--size {side})"
    ))?;
    let per_picture: Vec<Squares> = images
        .par_iter()
        .map(|image| squares(image, side, tiling))
        .collect::<Result<_, _>>()?;
    let mut set = DetectionSet {
        images: Vec::with_capacity(pieces * square),
        objects: Vec::with_capacity(pieces),
        size: side,
        channels: 3,
        classes: classes.to_vec(),
    };
    let mut sources = Vec::with_capacity(pieces);
    let lost = per_picture.iter().map(|(_, lost)| lost).sum();
    for (pixels, boxes, source) in per_picture.into_iter().flat_map(|(squares, _)| squares) {
        set.images.extend_from_slice(&pixels);
        set.objects.push(
            boxes
                .iter()
                .map(|b| DetectionObject {
                    bbox: b.bbox,
                    class: b.class,
                })
                .collect(),
        );
        sources.push(source);
    }
    Ok(Prepared { set, sources, lost })
}

fn squares(
    image: &LabelledImage,
    side: usize,
    tiling: Option<Tiling>,
) -> Result<Squares, DataError> {
    let picture = convnet_vision::image_io::decode_image(&image.path)?.to_rgb8();
    if (picture.width(), picture.height()) != (image.width, image.height) {
        return Err(DataError::Folder {
            path: image.path.clone(),
            problem: format!(
                "decodes to {}x{} pixels, but its header said {}x{}",
                picture.width(),
                picture.height(),
                image.width,
                image.height
            ),
        });
    }
    let (tiles, lost) = match tiling {
        Some(t) => tiles_and_lost(image, t.tile, t.overlap, MIN_FRACTION)?,
        None => (
            vec![super::tile::Tile {
                x0: 0,
                y0: 0,
                width: image.width,
                height: image.height,
                boxes: image.boxes.clone(),
                dropped: 0,
            }],
            0,
        ),
    };
    let squares = tiles
        .into_iter()
        .map(|t| {
            let piece = if (t.width, t.height) == picture.dimensions() {
                picture.clone()
            } else {
                image::imageops::crop_imm(&picture, t.x0, t.y0, t.width, t.height).to_image()
            };
            let (pixels, fit) = letterbox(&piece, side);
            let boxes = t
                .boxes
                .iter()
                .map(|b| LabelledBox {
                    bbox: fit.to_input(b.bbox),
                    ..*b
                })
                .collect();
            let source = Source {
                picture: image.path.clone(),
                origin: [t.x0, t.y0],
                size: [t.width, t.height],
                letterbox: fit,
                dropped: t.dropped,
            };
            (pixels, boxes, source)
        })
        .collect();
    Ok((squares, lost))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 100x60 picture, grey but for a white 20x10 rectangle at (70, 40), which is labelled.
    fn picture(dir: &std::path::Path) -> LabelledImage {
        let path = dir.join("p.png");
        let mut img = image::RgbImage::from_pixel(100, 60, image::Rgb([50, 50, 50]));
        for y in 40..50 {
            for x in 70..90 {
                img.put_pixel(x, y, image::Rgb([255, 255, 255]));
            }
        }
        img.save(&path).unwrap();
        LabelledImage {
            path,
            width: 100,
            height: 60,
            boxes: vec![LabelledBox {
                bbox: [70.0, 40.0, 90.0, 50.0],
                class: 1,
                difficult: false,
            }],
            labelled: true,
        }
    }

    /// The square's pixel at `(x, y)`, channel 0.
    fn at(set: &DetectionSet, i: usize, x: f32, y: f32) -> u8 {
        set.image(i)[y as usize * set.size + x as usize]
    }

    #[test]
    fn a_whole_picture_is_letterboxed_with_its_box() {
        let dir = tempfile::tempdir().unwrap();
        let p = prepare(&[picture(dir.path())], &["a".into(), "b".into()], 50, None).unwrap();
        assert_eq!((p.set.len(), p.set.channels, p.lost), (1, 3, 0));
        // Scale 0.5: 50x30 centred, 10 grey rows above; the box lands at (35, 30)-(45, 35).
        let [x1, y1, x2, y2] = p.set.objects[0][0].bbox;
        assert_eq!([x1, y1, x2, y2], [35.0, 30.0, 45.0, 35.0]);
        assert_eq!(p.set.objects[0][0].class, 1);
        assert_eq!(at(&p.set, 0, 40.0, 32.0), 255);
        assert_eq!(at(&p.set, 0, 10.0, 2.0), super::super::letterbox::PAD);
        assert_eq!(p.sources[0].origin, [0, 0]);
        assert_eq!(p.sources[0].size, [100, 60]);
    }

    #[test]
    fn tiles_carry_the_boxes_mostly_inside_them() {
        let dir = tempfile::tempdir().unwrap();
        let tiling = Tiling {
            tile: 64,
            overlap: 16,
        };
        let p = prepare(
            &[picture(dir.path())],
            &["a".into(), "b".into()],
            64,
            Some(tiling),
        )
        .unwrap();
        // Origins x 0, 36 (flush with the edge), y 0: two 64x60 tiles, letterboxed with 2 rows
        // of padding above. The box (70..90) lies wholly in the second tile only.
        assert_eq!(p.set.len(), 2);
        assert_eq!(p.sources[1].origin, [36, 0]);
        assert!(p.set.objects[0].is_empty());
        assert_eq!(p.set.objects[1][0].bbox, [34.0, 42.0, 54.0, 52.0]);
        assert_eq!(at(&p.set, 1, 44.0, 47.0), 255);
        assert!(prepare(&[], &[], 64, None).is_err());
    }
}
