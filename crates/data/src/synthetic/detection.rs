//! Scenes for object detection: Fashion-MNIST items pasted at random positions and scales,
//! several per picture and sometimes overlapping, on textured backgrounds, each with its box
//! (the tight extent of the item's pixels) and class.

use std::path::Path;

use super::example_rng;
use super::scenes::{background, paste, to_pixels};
use super::uniform;
use crate::{DataError, ImageSet};
use rand::RngExt;
use rayon::prelude::*;

const TAG: u64 = 0xde7;

/// Two placements overlap by at most this IoU (of their squares), so an item is never hidden.
const MAX_OVERLAP: f32 = 0.3;

/// An object: its box `[x1, y1, x2, y2]` in pixels and its class (an index into `classes`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct DetectionObject {
    pub bbox: [f32; 4],
    pub class: usize,
}

/// Square pictures `[C, S, S]` (planes of `u8`, grey or RGB) with their objects: the form a
/// detector trains on, whether the scenes were generated or read from people's own data
/// (letterboxed to the input side, see [`crate::detection::prepare`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionSet {
    pub images: Vec<u8>,
    pub objects: Vec<Vec<DetectionObject>>,
    pub size: usize,
    pub channels: usize,
    pub classes: Vec<String>,
}

fn square_iou(a: [f32; 3], b: [f32; 3]) -> f32 {
    // (cx, cy, side) squares.
    let overlap = |c1: f32, c2: f32, s1: f32, s2: f32| {
        ((c1 + s1 / 2.0).min(c2 + s2 / 2.0) - (c1 - s1 / 2.0).max(c2 - s2 / 2.0)).max(0.0)
    };
    let inter = overlap(a[0], b[0], a[2], b[2]) * overlap(a[1], b[1], a[2], b[2]);
    inter / (a[2] * a[2] + b[2] * b[2] - inter)
}

/// `n` scenes of `size` x `size` pixels with 1 to 4 items of `items` each, scaled so their
/// longer side is 25–50% of the picture and placed wholly inside it; two items' squares overlap
/// by an IoU of at most 0.3 (an item that finds no such place in 10 tries is left out). The
/// same seed gives the same scenes, and scene `i` does not depend on `n`.
pub fn detection_scenes(
    items: &ImageSet,
    n: usize,
    size: usize,
    seed: u64,
) -> Result<DetectionSet, DataError> {
    if items.is_empty() {
        return Err(DataError::Segmentation(
            "scenes need at least one item image".into(),
        ));
    }
    items.validate()?;
    if !(32..=1024).contains(&size) {
        return Err(DataError::Segmentation(format!(
            "detection scenes must be 32 to 1024 pixels wide, not {size}"
        )));
    }
    // Scene `i` draws only from its own generator, so the scenes are made in parallel, each
    // straight into its place.
    let mut images = vec![0u8; n * size * size];
    let objects = images
        .par_chunks_mut(size * size)
        .enumerate()
        .map(|(i, out)| {
            let (pixels, scene) = scene(items, size, &mut example_rng(seed, TAG, i));
            out.copy_from_slice(&pixels);
            scene
        })
        .collect();
    Ok(DetectionSet {
        images,
        objects,
        size,
        channels: 1,
        classes: items.classes.clone(),
    })
}

/// One scene: its pixels and its objects.
fn scene(
    items: &ImageSet,
    size: usize,
    rng: &mut crate::AugmentRng,
) -> (Vec<u8>, Vec<DetectionObject>) {
    let mut value = background(size, rng);
    let mut placed: Vec<[f32; 3]> = Vec::new();
    let mut scene = Vec::new();
    let count = rng.random_range(1..=4);
    for _ in 0..count {
        let index = rng.random_range(0..items.len());
        let side = uniform(rng, 0.25, 0.5) * size as f32;
        let half = side / 2.0;
        let spot = (0..10).find_map(|_| {
            let c = [
                uniform(rng, half, size as f32 - half),
                uniform(rng, half, size as f32 - half),
                side,
            ];
            placed
                .iter()
                .all(|&p| square_iou(p, c) <= MAX_OVERLAP)
                .then_some(c)
        });
        let Some(spot) = spot else { continue };
        placed.push(spot);
        if let Some(bbox) = paste(
            &mut value,
            size,
            items,
            index,
            [spot[0], spot[1]],
            side,
            rng,
            |_| {},
        ) {
            scene.push(DetectionObject {
                bbox,
                class: items.labels[index],
            });
        }
    }
    (to_pixels(value), scene)
}

impl DetectionSet {
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Values in one picture, `C x S x S`.
    pub fn image_len(&self) -> usize {
        self.channels * self.size * self.size
    }

    pub fn image(&self, i: usize) -> &[u8] {
        let len = self.image_len();
        &self.images[i * len..(i + 1) * len]
    }

    /// Splits off the scenes from `at` on as a set of their own, keeping the first `at` here
    /// without copying them (a million scenes are ~9 GB, which a copy would double; only the
    /// tail is copied, and the head keeps its capacity, as shrinking it could copy it too).
    pub fn split_off(&mut self, at: usize) -> Result<DetectionSet, DataError> {
        if at > self.len() {
            return Err(DataError::Segmentation(format!(
                "cannot split {} scenes at {at}",
                self.len()
            )));
        }
        let images = self.images.split_off(at * self.image_len());
        Ok(DetectionSet {
            images,
            objects: self.objects.split_off(at),
            size: self.size,
            channels: self.channels,
            classes: self.classes.clone(),
        })
    }

    /// The pictures `indices` as values in [0, 1], `[B, C, S, S]` row-major.
    pub fn batch(&self, indices: &[usize]) -> Vec<f32> {
        indices
            .iter()
            .flat_map(|&i| self.image(i).iter().map(|&p| f32::from(p) / 255.0))
            .collect()
    }

    /// Writes the ground truth as COCO JSON (`images` named `{i}.png`, categories numbered
    /// from 1 as COCO does: category `c + 1` is class `c`), for `convnet eval-detections` and
    /// `convnet anchors`.
    pub fn write_coco(&self, path: &Path) -> Result<(), DataError> {
        let images: Vec<_> = (0..self.len())
            .map(|i| serde_json::json!({"id": i, "file_name": format!("{i}.png"), "width": self.size, "height": self.size}))
            .collect();
        let mut annotations = Vec::new();
        for (i, objects) in self.objects.iter().enumerate() {
            for o in objects {
                let [x1, y1, x2, y2] = o.bbox;
                annotations.push(serde_json::json!({
                    "id": annotations.len() + 1, "image_id": i, "category_id": o.class + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0,
                }));
            }
        }
        let categories: Vec<_> = self
            .classes
            .iter()
            .enumerate()
            .map(|(c, name)| serde_json::json!({"id": c + 1, "name": name}))
            .collect();
        let text = serde_json::json!({"images": images, "annotations": annotations, "categories": categories});
        std::fs::write(path, text.to_string()).map_err(|source| DataError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::two_items;
    use super::*;

    #[test]
    fn scenes_are_seeded_and_boxes_hold_their_items() {
        let set = detection_scenes(&two_items(), 30, 64, 3).unwrap();
        assert_eq!(set, detection_scenes(&two_items(), 30, 64, 3).unwrap());
        assert_ne!(set, detection_scenes(&two_items(), 30, 64, 4).unwrap());
        assert_eq!(
            set.objects[..5],
            detection_scenes(&two_items(), 5, 64, 3).unwrap().objects[..]
        );
        let mut several = 0;
        for i in 0..set.len() {
            let objects = &set.objects[i];
            assert!(!objects.is_empty() && objects.len() <= 4);
            several += usize::from(objects.len() > 1);
            for o in objects {
                let [x1, y1, x2, y2] = o.bbox;
                assert!(0.0 <= x1 && x1 < x2 && x2 <= 64.0 && 0.0 <= y1 && y1 < y2 && y2 <= 64.0);
                // The square item fills half its 8x8 cell: its box is square; the bar is wide.
                let (w, h) = (x2 - x1, y2 - y1);
                match o.class {
                    0 => assert!((w / h - 1.0).abs() < 0.35, "square {w}x{h}"),
                    _ => assert!(w > 2.0 * h, "bar {w}x{h}"),
                }
                // Inside the box the picture is brighter than the scene on average.
                let image = set.image(i);
                let mean_in = {
                    let mut v = Vec::new();
                    for y in y1 as usize..y2 as usize {
                        for x in x1 as usize..x2 as usize {
                            v.push(f64::from(image[y * 64 + x]));
                        }
                    }
                    v.iter().sum::<f64>() / v.len() as f64
                };
                let mean_all =
                    image.iter().map(|&p| f64::from(p)).sum::<f64>() / image.len() as f64;
                assert!(mean_in > mean_all, "scene {i}");
            }
        }
        assert!(several > 10, "{several} scenes with several items");
    }

    #[test]
    fn parallel_scenes_are_the_sequential_ones_in_order() {
        let items = two_items();
        let set = detection_scenes(&items, 40, 32, 5).unwrap();
        for i in 0..40 {
            let (pixels, objects) = scene(&items, 32, &mut example_rng(5, TAG, i));
            assert_eq!(set.image(i), &pixels[..], "scene {i}");
            assert_eq!(set.objects[i], objects, "scene {i}");
        }
    }

    #[test]
    fn split_off_keeps_each_scene_with_its_boxes() {
        let whole = detection_scenes(&two_items(), 7, 32, 1).unwrap();
        let mut head = whole.clone();
        let tail = head.split_off(5).unwrap();
        assert_eq!((head.len(), tail.len()), (5, 2));
        for i in 0..7 {
            let (set, j) = if i < 5 { (&head, i) } else { (&tail, i - 5) };
            assert_eq!(set.image(j), whole.image(i));
            assert_eq!(set.objects[j], whole.objects[i]);
        }
        assert_eq!(head.images.len(), 5 * 32 * 32);
        assert!(head.clone().split_off(8).is_err());
        assert!(head.clone().split_off(5).unwrap().is_empty());
    }
}
