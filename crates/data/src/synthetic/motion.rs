//! Short clips of a Fashion-MNIST item crossing the frame: the class is the direction of motion,
//! which no single frame shows (the item and its start position are random), so a network has
//! to compare frames — what 3D convolutions over `[time, height, width]` are for.

use super::{balanced_labels, class_names, example_rng, normal, uniform};
use crate::{AugmentRng, DataError, ImageSet, TensorSet};
use rand::RngExt;

/// Class names in label order. "up" is towards row 0.
pub const MOTION_CLASSES: [&str; 4] = ["left", "right", "up", "down"];

const TAG: u64 = 0x30f;

/// `(dx, dy)` per frame for each class, in pixels per unit speed.
const DIRECTIONS: [(f32, f32); 4] = [(-1.0, 0.0), (1.0, 0.0), (0.0, -1.0), (0.0, 1.0)];

/// `n` clips of shape `[1, frames, size, size]`, values in `0..1`, classes [`MOTION_CLASSES`] in
/// equal numbers. Each clip shows a random item of `items` (its channels averaged to grey),
/// scaled to 50-62% of the frame, moving 0.7-1.5 px a frame in the class's direction with up
/// to half a pixel of jitter, its path's midpoint within 10% of the frame centre (so a fast one
/// is partly out of the frame at the start or end, though its centre never leaves it), on a background of random brightness (0-0.15) with
/// per-pixel Gaussian noise (sigma 0.03-0.1) that changes every frame.
pub fn motion_set(
    items: &ImageSet,
    n: usize,
    frames: usize,
    size: usize,
    seed: u64,
) -> Result<TensorSet, DataError> {
    let invalid = |m: String| Err(DataError::InvalidTensors(m));
    if items.is_empty() {
        return invalid("motion clips need at least one item image".to_string());
    }
    items.validate()?;
    if frames < 2 {
        return invalid(format!(
            "a motion clip needs at least 2 frames, not {frames}"
        ));
    }
    if !(8..=1024).contains(&size) {
        return invalid(format!(
            "motion frames must be 8 to 1024 pixels wide, not {size}"
        ));
    }
    let labels = balanced_labels(n, MOTION_CLASSES.len(), seed, TAG);
    let per_clip = frames * size * size;
    let mut data = Vec::with_capacity(n * per_clip);
    for (i, &label) in labels.iter().enumerate() {
        let mut rng = example_rng(seed, TAG, i);
        let item = Item::grey(items, rng.random_range(0..items.len()));
        data.extend(clip(&item, label, frames, size, &mut rng, true));
    }
    TensorSet::new(
        data,
        labels,
        vec![1, frames, size, size],
        class_names(&MOTION_CLASSES),
    )
}

/// A greyscale image on the `0..1` scale.
pub(crate) struct Item {
    pub height: usize,
    pub width: usize,
    pub pixels: Vec<f32>,
}

impl Item {
    pub(crate) fn grey(set: &ImageSet, i: usize) -> Item {
        let [c, h, w] = set.shape;
        let image = set.image(i);
        let pixels = (0..h * w)
            .map(|p| {
                let sum: u32 = (0..c).map(|ch| u32::from(image[ch * h * w + p])).sum();
                sum as f32 / (255.0 * c as f32)
            })
            .collect();
        Item {
            height: h,
            width: w,
            pixels,
        }
    }

    /// Bilinear sample at `(y, x)` in pixel units (pixel centres at integers), zero outside.
    pub(crate) fn sample(&self, y: f32, x: f32) -> f32 {
        let (y0, x0) = (y.floor(), x.floor());
        let (fy, fx) = (y - y0, x - x0);
        let at = |yy: f32, xx: f32| {
            if yy < 0.0 || xx < 0.0 || yy >= self.height as f32 || xx >= self.width as f32 {
                0.0
            } else {
                self.pixels[yy as usize * self.width + xx as usize]
            }
        };
        let top = at(y0, x0) * (1.0 - fx) + at(y0, x0 + 1.0) * fx;
        let bottom = at(y0 + 1.0, x0) * (1.0 - fx) + at(y0 + 1.0, x0 + 1.0) * fx;
        top * (1.0 - fy) + bottom * fy
    }
}

/// One clip, `frames * size * size` values; without `noise` the background is flat (what the
/// tests track the item on). The draws are the same either way until the noise.
pub(crate) fn clip(
    item: &Item,
    label: usize,
    frames: usize,
    size: usize,
    rng: &mut AugmentRng,
    noise: bool,
) -> Vec<f32> {
    let s = size as f32;
    let side = uniform(rng, 0.5, 0.625) * s;
    let scale = side / item.height.max(item.width) as f32;
    let speed = uniform(rng, 0.7, 1.5);
    let (dx, dy) = DIRECTIONS[label];
    let mid_x = s / 2.0 + uniform(rng, -0.1, 0.1) * s;
    let mid_y = s / 2.0 + uniform(rng, -0.1, 0.1) * s;
    let background = uniform(rng, 0.0, 0.15);
    let contrast = uniform(rng, 0.7, 1.0);
    let sigma = uniform(rng, 0.03, 0.1);
    let half_path = speed * (frames - 1) as f32 / 2.0;
    let (half_h, half_w) = (
        item.height as f32 * scale / 2.0,
        item.width as f32 * scale / 2.0,
    );

    let mut out = Vec::with_capacity(frames * size * size);
    for f in 0..frames {
        let along = speed * f as f32 - half_path;
        let cx = mid_x + dx * along + uniform(rng, -0.5, 0.5);
        let cy = mid_y + dy * along + uniform(rng, -0.5, 0.5);
        // The item's pixel (u, v) covers frame pixels left + u * scale .. + scale.
        let (top, left) = (cy - half_h, cx - half_w);
        for y in 0..size {
            let v = (y as f32 + 0.5 - top) / scale - 0.5;
            for x in 0..size {
                let u = (x as f32 + 0.5 - left) / scale - 0.5;
                let value = background + contrast * item.sample(v, u);
                out.push(value);
            }
        }
    }
    if noise {
        for v in &mut out {
            *v = (*v + sigma * normal(rng)).clamp(0.0, 1.0);
        }
    } else {
        for v in &mut out {
            *v = v.clamp(0.0, 1.0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Items with a bright block near the middle of each 28x28 image, a different one each.
    fn items(n: usize) -> ImageSet {
        let mut images = vec![0u8; n * 28 * 28];
        for i in 0..n {
            for y in 8 + i..20 {
                for x in 8..20 - i {
                    images[i * 784 + y * 28 + x] = 255;
                }
            }
        }
        ImageSet::new(images, vec![0; n], [1, 28, 28], vec!["x".into()]).unwrap()
    }

    /// The brightness-weighted centre `(x, y)` of one frame above its background.
    fn centroid(frame: &[f32], size: usize) -> (f32, f32) {
        let floor = frame.iter().copied().fold(f32::MAX, f32::min);
        let (mut sx, mut sy, mut sw) = (0.0, 0.0, 0.0);
        for (p, &v) in frame.iter().enumerate() {
            let w = v - floor;
            sx += w * (p % size) as f32;
            sy += w * (p / size) as f32;
            sw += w;
        }
        (sx / sw, sy / sw)
    }

    #[test]
    fn the_item_moves_in_the_class_direction() {
        let set = items(4);
        let (frames, size) = (16, 32);
        for (label, &(dx, dy)) in DIRECTIONS.iter().enumerate() {
            for k in 0..10u64 {
                let mut rng = AugmentRng::seed_from_u64(k);
                let item = Item::grey(&set, k as usize % 4);
                let c = clip(&item, label, frames, size, &mut rng, false);
                let plane = size * size;
                let track: Vec<(f32, f32)> = c.chunks(plane).map(|f| centroid(f, size)).collect();
                let (x0, y0) = track[0];
                let (x1, y1) = track[frames - 1];
                // At least 0.7 px a frame for 15 frames, less what leaves the frame.
                let along = (x1 - x0) * dx + (y1 - y0) * dy;
                let across = ((x1 - x0) * dy + (y1 - y0) * dx).abs();
                assert!(along > 5.0, "{label} {k}: {track:?}");
                assert!(across < 1.5, "{label} {k}: {track:?}");
                // The motion is steady, not one jump: every 5 frames it gets further (the
                // jitter may set it back a pixel between neighbouring frames).
                for (a, b) in track.iter().zip(&track[5..]) {
                    let step = (b.0 - a.0) * dx + (b.1 - a.1) * dy;
                    assert!(step > 1.0, "{label} {k}: {track:?}");
                }
            }
        }
    }

    #[test]
    fn set_is_seeded_balanced_and_in_range() {
        let set = items(3);
        let a = motion_set(&set, 12, 16, 16, 5).unwrap();
        assert_eq!(a.shape, vec![1, 16, 16, 16]);
        assert_eq!(a.data.len(), 12 * 16 * 16 * 16);
        assert_eq!(a.class_counts(), vec![3; 4]);
        assert_eq!(a.classes, MOTION_CLASSES);
        assert!(a.data.iter().all(|v| (0.0..=1.0).contains(v)));
        assert_eq!(a.data, motion_set(&set, 12, 16, 16, 5).unwrap().data);
        assert_ne!(a.data, motion_set(&set, 12, 16, 16, 6).unwrap().data);
        let empty = set.take(0);
        for (msg, result) in [
            ("at least one item", motion_set(&empty, 4, 16, 16, 0)),
            ("at least 2 frames", motion_set(&set, 4, 1, 16, 0)),
            ("8 to 1024 pixels", motion_set(&set, 4, 16, 4, 0)),
        ] {
            let err = result.unwrap_err().to_string();
            assert!(err.contains(msg), "{err}");
        }
    }

    #[test]
    fn colour_items_are_averaged_to_grey() {
        let set = ImageSet::new(vec![255, 0, 0], vec![0], [3, 1, 1], vec!["x".into()]).unwrap();
        let item = Item::grey(&set, 0);
        assert!((item.pixels[0] - 1.0 / 3.0).abs() < 1e-6);
        assert!((item.sample(0.0, 0.0) - 1.0 / 3.0).abs() < 1e-6);
        assert!((item.sample(0.0, 0.5) - 1.0 / 6.0).abs() < 1e-6);
        assert_eq!(item.sample(-1.0, 0.0), 0.0);
    }
}
