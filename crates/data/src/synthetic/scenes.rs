//! Scenes for semantic segmentation: Fashion-MNIST items pasted at random positions and
//! scales, sometimes overlapping, on textured backgrounds, with a mask giving every pixel its
//! item's class (1 + the Fashion-MNIST label) or background (0).

use super::motion::Item;
use super::{example_rng, normal, uniform};
use crate::{DataError, ImageSet, SegmentationSet};
use rand::RngExt;
use rayon::prelude::*;

const TAG: u64 = 0x5c3;

/// An item's pixel counts as the item above this grey level (0–1): Fashion-MNIST's own
/// background is 0, and faint anti-aliased edges stay background.
const ITEM_LEVEL: f32 = 0.08;

/// `n` greyscale scenes of `size`x`size` pixels, each with 1 to 3 random items of `items`
/// scaled to 35–60% of the side (a later item covers an earlier one where they overlap) on a
/// background of random brightness with sinusoidal stripes of random angle and period and
/// Gaussian noise. Classes: `background`, then `items`' classes. The same seed gives the same
/// scenes, and scene `i` does not depend on `n`.
pub fn segmentation_scenes(
    items: &ImageSet,
    n: usize,
    size: usize,
    seed: u64,
) -> Result<SegmentationSet, DataError> {
    if items.is_empty() {
        return Err(DataError::Segmentation(
            "scenes need at least one item image".into(),
        ));
    }
    items.validate()?;
    if !(16..=1024).contains(&size) {
        return Err(DataError::Segmentation(format!(
            "scenes must be 16 to 1024 pixels wide, not {size}"
        )));
    }
    if items.num_classes() > 255 {
        return Err(DataError::Segmentation(
            "at most 255 item classes fit in a mask".into(),
        ));
    }
    let plane = size * size;
    // Scene `i` draws only from its own generator, so the scenes are made in parallel.
    let (mut images, mut masks) = (vec![0u8; n * plane], vec![0u8; n * plane]);
    images
        .par_chunks_mut(plane)
        .zip(masks.par_chunks_mut(plane))
        .enumerate()
        .for_each(|(i, (image_out, mask_out))| {
            let (image, mask) = scene(items, size, &mut example_rng(seed, TAG, i));
            image_out.copy_from_slice(&image);
            mask_out.copy_from_slice(&mask);
        });
    let mut classes = vec!["background".to_string()];
    classes.extend(items.classes.iter().cloned());
    SegmentationSet::new(images, masks, [1, size, size], classes)
}

fn scene(items: &ImageSet, size: usize, rng: &mut crate::AugmentRng) -> (Vec<u8>, Vec<u8>) {
    let mut value = background(size, rng);
    let mut mask = vec![0u8; size * size];
    let count = rng.random_range(1..=3);
    for _ in 0..count {
        let index = rng.random_range(0..items.len());
        let class = items.labels[index] as u8 + 1;
        let side = uniform(rng, 0.35, 0.6) * size as f32;
        // The item's centre stays far enough in that at least ~70% of it is in the picture.
        let margin = 0.35 * side;
        let cx = uniform(rng, margin, size as f32 - margin);
        let cy = uniform(rng, margin, size as f32 - margin);
        paste(&mut value, size, items, index, [cx, cy], side, rng, |p| {
            mask[p] = class
        });
    }
    (to_pixels(value), mask)
}

/// A background of random brightness with sinusoidal stripes of random angle and period and
/// Gaussian noise, as grey levels 0–1.
pub(super) fn background(size: usize, rng: &mut crate::AugmentRng) -> Vec<f32> {
    let base = uniform(rng, 0.05, 0.35);
    let amplitude = uniform(rng, 0.03, 0.15);
    let period = uniform(rng, 4.0, 16.0);
    let angle = uniform(rng, 0.0, std::f32::consts::PI);
    let phase = uniform(rng, 0.0, std::f32::consts::TAU);
    let sigma = uniform(rng, 0.02, 0.06);
    let (ca, sa) = (angle.cos(), angle.sin());
    (0..size * size)
        .map(|p| {
            let (y, x) = ((p / size) as f32, (p % size) as f32);
            let stripe = (std::f32::consts::TAU * (x * ca + y * sa) / period + phase).sin();
            base + amplitude * stripe + sigma * normal(rng)
        })
        .collect()
}

/// Draws item `index` of `items` scaled so its longer side is `side` pixels, centred at
/// `centre` (x, y), over `value` (`size` x `size`); `covered` is called with each pixel the item
/// covers. Returns the covered pixels' bounding box `[x1, y1, x2, y2]` (pixel edges), if any.
#[allow(clippy::too_many_arguments)]
pub(super) fn paste(
    value: &mut [f32],
    size: usize,
    items: &ImageSet,
    index: usize,
    centre: [f32; 2],
    side: f32,
    rng: &mut crate::AugmentRng,
    mut covered: impl FnMut(usize),
) -> Option<[f32; 4]> {
    let item = Item::grey(items, index);
    let scale = side / item.height.max(item.width) as f32;
    let contrast = uniform(rng, 0.75, 1.0);
    let (top, left) = (
        centre[1] - item.height as f32 * scale / 2.0,
        centre[0] - item.width as f32 * scale / 2.0,
    );
    let mut extent: Option<[usize; 4]> = None;
    for y in 0..size {
        let v = (y as f32 + 0.5 - top) / scale - 0.5;
        for x in 0..size {
            let u = (x as f32 + 0.5 - left) / scale - 0.5;
            let level = item.sample(v, u);
            if level > ITEM_LEVEL {
                value[y * size + x] = contrast * level + 0.02 * normal(rng);
                covered(y * size + x);
                extent = Some(match extent {
                    None => [x, y, x, y],
                    Some([x1, y1, x2, y2]) => [x1.min(x), y1.min(y), x2.max(x), y2.max(y)],
                });
            }
        }
    }
    extent.map(|[x1, y1, x2, y2]| [x1 as f32, y1 as f32, (x2 + 1) as f32, (y2 + 1) as f32])
}

pub(super) fn to_pixels(value: Vec<f32>) -> Vec<u8> {
    value
        .into_iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::two_items;
    use super::*;

    #[test]
    fn scenes_are_seeded_and_masks_follow_the_items() {
        let set = segmentation_scenes(&two_items(), 20, 32, 5).unwrap();
        assert_eq!(set.len(), 20);
        assert_eq!(set.classes, vec!["background", "square", "bar"]);
        assert_eq!(set, segmentation_scenes(&two_items(), 20, 32, 5).unwrap());
        assert_eq!(
            set.subset(&[0, 1, 2]),
            segmentation_scenes(&two_items(), 3, 32, 5).unwrap()
        );
        assert_ne!(set, segmentation_scenes(&two_items(), 20, 32, 6).unwrap());
        for i in 0..set.len() {
            let (image, mask) = (set.image(i), set.mask(i));
            assert!(mask.iter().any(|&m| m > 0), "scene {i} has an item");
            // Items (200 and 250 grey, contrast >= 0.75) stand out from the background on
            // average; their anti-aliased edges are dimmer.
            let mean = |item: bool| {
                let v: Vec<f64> = image
                    .iter()
                    .zip(mask)
                    .filter(|(_, m)| (**m > 0) == item)
                    .map(|(&p, _)| f64::from(p))
                    .collect();
                v.iter().sum::<f64>() / v.len().max(1) as f64
            };
            assert!(
                mean(true) > mean(false) + 20.0,
                "scene {i}: {} vs {}",
                mean(true),
                mean(false)
            );
        }
        let background = set.masks.iter().filter(|&&m| m == 0).count();
        assert!(background > set.masks.len() / 2);
    }
}
