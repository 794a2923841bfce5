//! Images with a class for every pixel, for semantic segmentation: the set, joint augmentation
//! (a flip or crop moves image and mask together), and an image + mask folder reader.

use std::path::Path;

use rand::{RngExt, SeedableRng};

use crate::augment::{AugmentRng, example_rng};
use crate::set::{pixel_statistics, split_indices};
use crate::{DataError, Normalization};

/// `N` images `[C, H, W]` (pixels 0–255) and their masks `[H, W]` of class indices, class 0
/// usually being the background.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentationSet {
    pub images: Vec<u8>,
    pub masks: Vec<u8>,
    pub shape: [usize; 3],
    pub classes: Vec<String>,
}

/// How a training batch is augmented: the same random flip and shift for image and mask.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct JointAugment {
    /// Probability of a left-right flip.
    pub flip: f32,
    /// Shift by up to this many pixels each way (a crop of the zero-padded image; the uncovered
    /// border is background).
    pub shift: usize,
}

/// A batch: normalised images `[N, C, H, W]` and masks `[N, H, W]` as class indices.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentationBatch {
    pub images: Vec<f32>,
    pub masks: Vec<i64>,
    pub shape: [usize; 4],
}

impl SegmentationSet {
    pub fn new(
        images: Vec<u8>,
        masks: Vec<u8>,
        shape: [usize; 3],
        classes: Vec<String>,
    ) -> Result<Self, DataError> {
        let set = Self {
            images,
            masks,
            shape,
            classes,
        };
        set.validate()?;
        Ok(set)
    }

    /// Checks that images, masks and classes fit together.
    pub fn validate(&self) -> Result<(), DataError> {
        let bad = |m: String| Err(DataError::Segmentation(m));
        let [c, h, w] = self.shape;
        if c == 0 || h == 0 || w == 0 {
            return bad(format!("images must have a size, not {:?}", self.shape));
        }
        if self.classes.len() < 2 || self.classes.len() > 256 {
            return bad(format!(
                "a segmentation set needs 2 to 256 classes, not {}",
                self.classes.len()
            ));
        }
        let n = self.masks.len() / (h * w);
        if self.masks.len() != n * h * w || self.images.len() != n * c * h * w {
            return bad(format!(
                "{} image values and {} mask values do not make whole {c}x{h}x{w} examples",
                self.images.len(),
                self.masks.len()
            ));
        }
        if let Some(p) = self
            .masks
            .iter()
            .position(|&m| usize::from(m) >= self.classes.len())
        {
            return bad(format!(
                "example {}, pixel ({}, {}) has label {}, but there are only {} classes",
                p / (h * w),
                p % (h * w) / w,
                p % w,
                self.masks[p],
                self.classes.len()
            ));
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.masks.len() / (self.shape[1] * self.shape[2]).max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    fn image_len(&self) -> usize {
        self.shape.iter().product()
    }

    fn mask_len(&self) -> usize {
        self.shape[1] * self.shape[2]
    }

    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * self.image_len()..(i + 1) * self.image_len()]
    }

    pub fn mask(&self, i: usize) -> &[u8] {
        &self.masks[i * self.mask_len()..(i + 1) * self.mask_len()]
    }

    pub fn subset(&self, indices: &[usize]) -> Self {
        let mut images = Vec::with_capacity(indices.len() * self.image_len());
        let mut masks = Vec::with_capacity(indices.len() * self.mask_len());
        for &i in indices {
            images.extend_from_slice(self.image(i));
            masks.extend_from_slice(self.mask(i));
        }
        Self {
            images,
            masks,
            shape: self.shape,
            classes: self.classes.clone(),
        }
    }

    /// `(train, validation)`, as [`ImageSet::split`] splits.
    pub fn split(&self, val_fraction: f64, seed: u64) -> Result<(Self, Self), DataError> {
        let (train, val) =
            split_indices(self.len(), val_fraction, seed).map_err(DataError::Segmentation)?;
        Ok((self.subset(&train), self.subset(&val)))
    }

    /// The same images with two classes: background (class 0) and everything else.
    pub fn binary(&self) -> Self {
        Self {
            images: self.images.clone(),
            masks: self.masks.iter().map(|&m| u8::from(m > 0)).collect(),
            shape: self.shape,
            classes: vec![self.classes[0].clone(), "object".to_string()],
        }
    }

    /// Per-channel statistics of the images, as for an [`ImageSet`].
    pub fn normalization(&self) -> Normalization {
        pixel_statistics(&self.images, self.shape)
    }

    /// The examples `indices`, normalised; with `augment`, each flipped and shifted by its own
    /// generator seeded by `(seed, epoch, index)`, image and mask alike.
    pub fn batch(
        &self,
        indices: &[usize],
        norm: &Normalization,
        augment: Option<&JointAugment>,
        seed: u64,
        epoch: u64,
    ) -> SegmentationBatch {
        let [c, h, w] = self.shape;
        let mut images = Vec::with_capacity(indices.len() * c * h * w);
        let mut masks = Vec::with_capacity(indices.len() * h * w);
        for &i in indices {
            let (image, mask) = (self.image(i), self.mask(i));
            let (flip, dx, dy) = match augment {
                Some(a) => {
                    let mut rng = example_rng(seed, epoch, i);
                    let flip = rng.random::<f32>() < a.flip;
                    let s = a.shift as i64;
                    let dx = rng.random_range(-s..=s);
                    let dy = rng.random_range(-s..=s);
                    (flip, dx, dy)
                }
                None => (false, 0, 0),
            };
            // Output pixel (y, x) comes from source (y - dy, x' - dx), x' flipped or not.
            let source = |y: usize, x: usize| -> Option<usize> {
                let sy = y as i64 - dy;
                let sx = x as i64 - dx;
                if sy < 0 || sx < 0 || sy >= h as i64 || sx >= w as i64 {
                    return None;
                }
                let sx = if flip {
                    w - 1 - sx as usize
                } else {
                    sx as usize
                };
                Some(sy as usize * w + sx)
            };
            for ch in 0..c {
                let plane = &image[ch * h * w..(ch + 1) * h * w];
                for y in 0..h {
                    for x in 0..w {
                        let v = source(y, x).map_or(0, |p| plane[p]);
                        images.push(norm.apply(ch, f32::from(v) / 255.0));
                    }
                }
            }
            for y in 0..h {
                for x in 0..w {
                    masks.push(source(y, x).map_or(0, |p| i64::from(mask[p])));
                }
            }
        }
        SegmentationBatch {
            images,
            masks,
            shape: [indices.len(), c, h, w],
        }
    }
}

/// A seeded shuffle of `0..n` for epoch `epoch`.
pub fn epoch_order(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    use rand::seq::SliceRandom;
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut AugmentRng::seed_from_u64(crate::seed::derive(&[
        seed, epoch, 0x5e9,
    ])));
    order
}

/// Reads a folder holding `images/` and `masks/` with the same file names (the mask may be a
/// `.png` whatever the image's format): masks are greyscale PNGs whose values are class
/// indices. Images are converted to `channels` (1 or 3) and must have their mask's size;
/// `size` resizes both (the mask by nearest neighbour). Class names come from `classes.txt`
/// (one per line, background first) when present, else from the largest label.
pub fn load_mask_folder(
    dir: &Path,
    channels: usize,
    size: Option<[usize; 2]>,
) -> Result<SegmentationSet, DataError> {
    let folder = |problem: String| DataError::Folder {
        path: dir.to_path_buf(),
        problem,
    };
    if !(channels == 1 || channels == 3) {
        return Err(folder(format!("channels must be 1 or 3, not {channels}")));
    }
    let (image_dir, mask_dir) = (dir.join("images"), dir.join("masks"));
    let mut files: Vec<_> = std::fs::read_dir(&image_dir)
        .map_err(|_| {
            folder("expected an images/ folder and a masks/ folder with the same file names".into())
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(folder("images/ holds no .png/.jpg/.jpeg files".into()));
    }
    let open = crate::folder::decode_image;
    let (mut images, mut masks) = (Vec::new(), Vec::new());
    let mut shape = None;
    for file in &files {
        let stem = file.file_stem().unwrap_or_default();
        let mask_path = mask_dir.join(stem).with_extension("png");
        if !mask_path.is_file() {
            return Err(folder(format!(
                "{} has no mask {}",
                file.display(),
                mask_path.display()
            )));
        }
        let img = open(file)?;
        let mask = open(&mask_path)?.to_luma8();
        if (img.width(), img.height()) != mask.dimensions() {
            return Err(folder(format!(
                "{} is {}x{} but its mask {} is {}x{}",
                file.display(),
                img.width(),
                img.height(),
                mask_path.display(),
                mask.width(),
                mask.height()
            )));
        }
        let [h, w] = size.unwrap_or([img.height() as usize, img.width() as usize]);
        let here = [channels, h, w];
        if *shape.get_or_insert(here) != here {
            return Err(folder(format!(
                "{} is {w}x{h}, the first image {}x{}: pass a size to resize them all",
                file.display(),
                shape.unwrap()[2],
                shape.unwrap()[1]
            )));
        }
        let (tw, th) = (w as u32, h as u32);
        let img = img.resize_exact(tw, th, image::imageops::FilterType::Triangle);
        let mask = image::imageops::resize(&mask, tw, th, image::imageops::FilterType::Nearest);
        if channels == 1 {
            images.extend_from_slice(img.to_luma8().as_raw());
        } else {
            let rgb = img.to_rgb8();
            for ch in 0..3 {
                images.extend(rgb.pixels().map(|p| p.0[ch]));
            }
        }
        masks.extend_from_slice(mask.as_raw());
    }
    let names_file = dir.join("classes.txt");
    let classes: Vec<String> = if names_file.is_file() {
        std::fs::read_to_string(&names_file)
            .map_err(|source| DataError::Read {
                path: names_file.clone(),
                source,
            })?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    } else {
        let top = masks.iter().copied().max().unwrap_or(0);
        (0..=usize::from(top).max(1))
            .map(|c| {
                if c == 0 {
                    "background".to_string()
                } else {
                    format!("class {c}")
                }
            })
            .collect()
    };
    let shape = shape.expect("at least one file");
    SegmentationSet::new(images, masks, shape, classes).map_err(|e| match e {
        DataError::Segmentation(m) => folder(m),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> SegmentationSet {
        // Two 1x2x3 images; pixel value = 10 * position, mask = position % 3.
        let images: Vec<u8> = (0..12).map(|i| (i * 10) as u8).collect();
        let masks: Vec<u8> = (0..12).map(|i| (i % 3) as u8).collect();
        SegmentationSet::new(
            images,
            masks,
            [1, 2, 3],
            vec!["bg".into(), "a".into(), "b".into()],
        )
        .unwrap()
    }

    #[test]
    fn labels_beyond_the_classes_and_ragged_data_are_refused() {
        let mut s = tiny();
        s.masks[4] = 3;
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("example 0, pixel (1, 1) has label 3"), "{err}");
        let ragged = SegmentationSet::new(vec![0; 5], vec![0; 6], [1, 2, 3], tiny().classes);
        assert!(ragged.is_err());
    }

    #[test]
    fn flips_and_shifts_move_image_and_mask_together() {
        let s = tiny();
        let norm = Normalization::identity(1);
        for seed in 0..20 {
            let a = JointAugment {
                flip: 0.5,
                shift: 1,
            };
            let b = s.batch(&[0, 1], &norm, Some(&a), seed, 1);
            for (k, (&v, &m)) in b.images.iter().zip(&b.masks).enumerate() {
                let value = (v * 255.0).round() as i64;
                if value == 0 {
                    // Uncovered border (or the one pixel whose value is 0) is background.
                    assert!(m == 0, "seed {seed}, pixel {k}");
                } else {
                    // Each moved pixel keeps its own label: value / 10 is its source position.
                    assert_eq!(m, (value / 10) % 3, "seed {seed}, pixel {k}");
                }
            }
        }
        let plain = s.batch(&[1], &norm, None, 0, 0);
        assert_eq!(plain.masks, vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(plain.shape, [1, 1, 2, 3]);
    }

    #[test]
    fn binary_keeps_background_and_merges_the_rest() {
        let b = tiny().binary();
        assert_eq!(b.classes, vec!["bg".to_string(), "object".to_string()]);
        assert_eq!(&b.masks[..6], &[0, 1, 1, 0, 1, 1]);
    }
}
