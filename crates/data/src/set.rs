//! An in-memory labelled image set: `u8` pixels, channels first, one image after another.

use burn::data::dataset::{Dataset, DatasetError};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand::seq::SliceRandom;

use crate::DataError;

/// Labelled images of one shape. Pixels stay `u8` until a batch is built: a quarter of the
/// memory of `f32`, and exactly what the files hold.
#[derive(Clone, Debug)]
pub struct ImageSet {
    /// `len() * C * H * W` pixels, each image `[C, H, W]` row-major.
    pub images: Vec<u8>,
    /// One class index per image, each `< classes.len()`.
    pub labels: Vec<usize>,
    /// `[C, H, W]`.
    pub shape: [usize; 3],
    pub classes: Vec<String>,
}

/// One example as Burn's dataset tools see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    /// `[C, H, W]` pixels.
    pub pixels: Vec<u8>,
    pub label: usize,
}

impl ImageSet {
    /// A set whose pieces fit together: pixel count, labels, classes.
    pub fn new(
        images: Vec<u8>,
        labels: Vec<usize>,
        shape: [usize; 3],
        classes: Vec<String>,
    ) -> Result<Self, DataError> {
        let set = Self {
            images,
            labels,
            shape,
            classes,
        };
        set.validate()?;
        Ok(set)
    }

    /// Checks that pixels, labels, shape and classes fit together (the fields are public, so a
    /// set may have been edited since [`ImageSet::new`]).
    pub fn validate(&self) -> Result<(), DataError> {
        let invalid = |m: String| Err(DataError::InvalidSet(m));
        let shape = self.shape;
        if shape.contains(&0) {
            return invalid(format!("image shape {shape:?} has a zero dimension"));
        }
        check_layout(
            &self.labels,
            self.classes.len(),
            shape.iter().product(),
            self.images.len(),
            &format!("{shape:?} images"),
            "pixels",
        )
        .or_else(invalid)?;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    pub fn channels(&self) -> usize {
        self.shape[0]
    }

    /// Pixels in one image, `C * H * W`.
    pub fn image_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The pixels of image `i`. Panics if `i >= len()`, like slice indexing.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// The examples at `indices`, in that order (repeats allowed). Panics on an index out of
    /// range, like slice indexing: indices come from this set, not from input.
    pub fn subset(&self, indices: &[usize]) -> ImageSet {
        ImageSet {
            images: gather(&self.images, self.image_len(), indices),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            shape: self.shape,
            classes: self.classes.clone(),
        }
    }

    /// The examples of some classes, relabelled `0..k` in the selection's order.
    pub fn select(&self, selection: &ClassSelection) -> Result<ImageSet, DataError> {
        let (indices, labels) = selection.pick(&self.labels, &self.classes)?;
        let mut set = self.subset(&indices);
        set.labels = labels;
        set.classes = selection.names(&self.classes);
        Ok(set)
    }

    /// The first `n` examples (all of them if there are fewer).
    pub fn take(&self, n: usize) -> ImageSet {
        let n = n.min(self.len());
        ImageSet {
            images: self.images[..n * self.image_len()].to_vec(),
            labels: self.labels[..n].to_vec(),
            shape: self.shape,
            classes: self.classes.clone(),
        }
    }

    /// Splits off `round(len * val_fraction)` examples, chosen by a shuffle seeded with `seed`,
    /// as a validation set: `(train, validation)`. Both keep the set's original order, so
    /// the split is easy to inspect and does not depend on later shuffles.
    pub fn split(&self, val_fraction: f64, seed: u64) -> Result<(ImageSet, ImageSet), DataError> {
        let (train, val) =
            split_indices(self.len(), val_fraction, seed).map_err(DataError::InvalidSet)?;
        Ok((self.subset(&train), self.subset(&val)))
    }

    /// Per-channel mean and standard deviation of the pixels on the `0..1` scale. Sums are
    /// exact integers, so the result does not drift with set size or order.
    pub fn normalization(&self) -> Normalization {
        pixel_statistics(&self.images, self.shape)
    }
}

/// Per-channel mean and standard deviation, on the `0..1` scale, of pictures `[N, C, H, W]`
/// stored as bytes. Sums are exact integers, so the result does not drift with set size or
/// order.
pub(crate) fn pixel_statistics(images: &[u8], shape: [usize; 3]) -> Normalization {
    let [c, h, w] = shape;
    let (plane, image_len) = (h * w, c * h * w);
    if images.is_empty() || image_len == 0 {
        return Normalization::identity(c);
    }
    let mut sum = vec![0u64; c];
    let mut sum_sq = vec![0u64; c];
    for image in images.chunks_exact(image_len) {
        for (ch, pixels) in image.chunks_exact(plane).enumerate() {
            for &p in pixels {
                let p = u64::from(p);
                sum[ch] += p;
                sum_sq[ch] += p * p;
            }
        }
    }
    let count = (images.len() / image_len * plane) as f64;
    let mut mean = Vec::with_capacity(c);
    let mut std = Vec::with_capacity(c);
    for ch in 0..c {
        let m = sum[ch] as f64 / count;
        let var = (sum_sq[ch] as f64 / count - m * m).max(0.0);
        mean.push((m / 255.0) as f32);
        std.push(((var.sqrt() / 255.0) as f32).max(Normalization::MIN_STD));
    }
    Normalization { mean, std }
}

/// Which classes of a set to keep, and how many examples of each: the few-labels side of
/// transfer learning ("50 labelled images per class").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassSelection {
    /// Original class indices to keep, in the order they become labels `0..k`; empty = all.
    pub classes: Vec<usize>,
    /// At most this many examples per kept class, chosen by a seeded shuffle.
    pub per_class: Option<usize>,
    pub seed: u64,
}

impl ClassSelection {
    /// Parses `5,6,7` or `5-9` (or a mix: `0-2,7`).
    pub fn parse_classes(text: &str) -> Result<Vec<usize>, DataError> {
        let bad = || {
            DataError::Classes(format!(
                "cannot read the class list '{text}': use indices like 5,6,7 or a range 5-9"
            ))
        };
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim) {
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b): (usize, usize) = (
                        a.trim().parse().map_err(|_| bad())?,
                        b.trim().parse().map_err(|_| bad())?,
                    );
                    if a > b {
                        return Err(bad());
                    }
                    out.extend(a..=b);
                }
                None => out.push(part.parse().map_err(|_| bad())?),
            }
        }
        Ok(out)
    }

    pub fn is_all(&self) -> bool {
        self.classes.is_empty() && self.per_class.is_none()
    }

    /// The kept example indices (in set order) and their new labels; checks the classes exist.
    pub(crate) fn pick(
        &self,
        labels: &[usize],
        class_names: &[String],
    ) -> Result<(Vec<usize>, Vec<usize>), DataError> {
        let keep: Vec<usize> = if self.classes.is_empty() {
            (0..class_names.len()).collect()
        } else {
            self.classes.clone()
        };
        let mut new_label = vec![None; class_names.len()];
        for (new, &old) in keep.iter().enumerate() {
            if old >= class_names.len() {
                return Err(DataError::Classes(format!(
                    "class {old} does not exist: the set has classes 0-{}",
                    class_names.len().saturating_sub(1)
                )));
            }
            if new_label[old].replace(new).is_some() {
                return Err(DataError::Classes(format!("class {old} is listed twice")));
            }
        }
        let mut order: Vec<usize> = (0..labels.len()).collect();
        if self.per_class.is_some() {
            order.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(self.seed));
        }
        let mut taken = vec![0usize; keep.len()];
        let mut picked = Vec::new();
        for i in order {
            if let Some(new) = new_label[labels[i]]
                && self.per_class.is_none_or(|n| taken[new] < n)
            {
                taken[new] += 1;
                picked.push((i, new));
            }
        }
        picked.sort_unstable();
        Ok(picked.into_iter().unzip())
    }

    /// The names of the kept classes, in their new label order.
    pub(crate) fn names(&self, class_names: &[String]) -> Vec<String> {
        if self.classes.is_empty() {
            class_names.to_vec()
        } else {
            self.classes
                .iter()
                .map(|&c| class_names[c].clone())
                .collect()
        }
    }
}

/// The `(train, validation)` indices of a seeded split of `0..n`, each in ascending order, or
/// why the fraction cannot be honoured. Every set splits through here, so a seed picks the same
/// validation examples whatever kind of set holds them.
pub(crate) fn split_indices(
    n: usize,
    val_fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), String> {
    if !(0.0..1.0).contains(&val_fraction) {
        return Err(format!(
            "validation fraction {val_fraction} is not in [0, 1)"
        ));
    }
    let n_val = (n as f64 * val_fraction).round() as usize;
    if n_val >= n && n > 0 {
        return Err(format!(
            "a validation fraction of {val_fraction} of {n} examples leaves none to train on"
        ));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(seed));
    let (val, train) = order.split_at_mut(n_val);
    val.sort_unstable();
    train.sort_unstable();
    Ok((train.to_vec(), val.to_vec()))
}

impl Dataset<Example> for ImageSet {
    /// An index out of range is an error, not the panic Burn's docs allow: it may come from
    /// outside.
    fn get(&self, index: usize) -> Result<Example, DatasetError> {
        if index >= self.len() {
            return Err(DatasetError::new(DataError::InvalidSet(format!(
                "index {index} out of range for {} examples",
                self.len()
            ))));
        }
        Ok(Example {
            pixels: self.image(index).to_vec(),
            label: self.labels[index],
        })
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

/// How examples become network inputs: `(x - mean[c]) / std[c]` for channel `c`, where `x` is a
/// pixel divided by 255 for an [`ImageSet`] and the stored value itself for a
/// [`TensorSet`](crate::TensorSet).
#[derive(Clone, Debug, PartialEq)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalization {
    /// The smallest standard deviation divided by: a constant channel (a blank border, a
    /// synthetic set) would otherwise blow up to infinities.
    pub const MIN_STD: f32 = 1e-3;

    /// Only the scaling to `0..1`.
    pub fn identity(channels: usize) -> Self {
        Self {
            mean: vec![0.0; channels],
            std: vec![1.0; channels],
        }
    }

    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    /// `value` (on the `0..1` scale) of channel `channel`, normalised.
    pub fn apply(&self, channel: usize, value: f32) -> f32 {
        (value - self.mean[channel]) / self.std[channel].max(Self::MIN_STD)
    }

    /// `[C, H, W]` pixels of one image, normalised, appended to `out`. Panics if the pixel
    /// count is not a multiple of the channel count.
    pub fn extend_normalised(&self, pixels: &[u8], out: &mut Vec<f32>) {
        let plane = pixels.len() / self.channels().max(1);
        for (ch, plane_pixels) in pixels.chunks(plane.max(1)).enumerate() {
            let scale = 1.0 / (255.0 * self.std[ch].max(Self::MIN_STD));
            let shift = self.mean[ch] / self.std[ch].max(Self::MIN_STD);
            out.extend(plane_pixels.iter().map(|&p| f32::from(p) * scale - shift));
        }
    }

    /// `[C, ...]` values of one example, taken as they are (no `/ 255`), normalised and
    /// appended to `out`. Panics if the value count is not a multiple of the channel count.
    pub fn extend_normalised_values(&self, values: &[f32], out: &mut Vec<f32>) {
        let channels = self.channels().max(1);
        assert_eq!(values.len() % channels, 0, "values vs channels");
        let plane = values.len() / channels;
        for (ch, plane_values) in values.chunks(plane.max(1)).enumerate() {
            let std = self.std[ch].max(Self::MIN_STD);
            let mean = self.mean[ch];
            out.extend(plane_values.iter().map(|&v| (v - mean) / std));
        }
    }

    /// `[C, ...]` values of one example, normalised without the `/ 255` (what a network trained
    /// on a [`TensorSet`](crate::TensorSet) is fed).
    pub fn normalise_values(&self, values: &[f32]) -> Vec<f32> {
        let mut out = Vec::with_capacity(values.len());
        self.extend_normalised_values(values, &mut out);
        out
    }

    /// `[C, H, W]` pixels of one image, normalised (what `predict` feeds a trained network).
    pub fn normalise(&self, pixels: &[u8]) -> Vec<f32> {
        let mut out = Vec::with_capacity(pixels.len());
        self.extend_normalised(pixels, &mut out);
        out
    }
}

/// The examples at `indices` (each `per_example` values long) of a flat buffer, in that order:
/// what `subset` does for every kind of set.
pub(crate) fn gather<T: Copy>(values: &[T], per_example: usize, indices: &[usize]) -> Vec<T> {
    let mut out = Vec::with_capacity(indices.len() * per_example);
    for &i in indices {
        out.extend_from_slice(&values[i * per_example..(i + 1) * per_example]);
    }
    out
}

/// The checks every labelled set shares: `labels.len()` examples of `per_example` values fill
/// `stored` values exactly, and every label names one of `classes`. `what` and `unit` word the
/// message ("[1, 28, 28] images", "pixels").
pub(crate) fn check_layout(
    labels: &[usize],
    classes: usize,
    per_example: usize,
    stored: usize,
    what: &str,
    unit: &str,
) -> Result<(), String> {
    match labels.len().checked_mul(per_example) {
        Some(n) if n == stored => {}
        _ => {
            return Err(format!(
                "{} labels of {what} call for {} {unit}, got {stored}",
                labels.len(),
                labels.len().saturating_mul(per_example),
            ));
        }
    }
    if let Some((i, &l)) = labels.iter().enumerate().find(|&(_, &l)| l >= classes) {
        return Err(format!(
            "example {i} has label {l}, but there are {classes} classes"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> ImageSet {
        let images = (0..n * 4).map(|i| (i % 256) as u8).collect();
        let labels = (0..n).map(|i| i % 3).collect();
        ImageSet::new(
            images,
            labels,
            [1, 2, 2],
            vec!["a".into(), "b".into(), "c".into()],
        )
        .unwrap()
    }

    #[test]
    fn selecting_classes_relabels_and_caps_each_class() {
        let all = set(30); // labels 0,1,2 repeating: 10 each
        let pick = ClassSelection {
            classes: vec![2, 0],
            per_class: Some(4),
            seed: 7,
        };
        let sub = all.select(&pick).unwrap();
        assert_eq!(sub.classes, vec!["c".to_string(), "a".to_string()]);
        assert_eq!(sub.len(), 8);
        for (i, &label) in sub.labels.iter().enumerate() {
            // Every picked image is the original of its class (pixels encode the index).
            let original = usize::from(sub.image(i)[0]) / 4;
            assert_eq!(original % 3, [2, 0][label]);
        }
        assert_eq!(sub.labels.iter().filter(|&&l| l == 0).count(), 4);
        // Same seed, same picks; another seed, other picks.
        assert_eq!(all.select(&pick).unwrap().images, sub.images);
        let other = all
            .select(&ClassSelection {
                seed: 8,
                ..pick.clone()
            })
            .unwrap();
        assert_ne!(other.images, sub.images);
        assert_eq!(
            ClassSelection::parse_classes("5-7,9").unwrap(),
            vec![5, 6, 7, 9]
        );
        assert!(ClassSelection::parse_classes("9-5").is_err());
        let missing = ClassSelection {
            classes: vec![3],
            ..Default::default()
        };
        assert!(
            all.select(&missing)
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
    }

    #[test]
    fn new_checks_lengths_and_labels() {
        let classes = vec!["a".to_string()];
        assert!(ImageSet::new(vec![0; 7], vec![0, 0], [1, 2, 2], classes.clone()).is_err());
        let err = ImageSet::new(vec![0; 8], vec![0, 1], [1, 2, 2], classes.clone()).unwrap_err();
        assert!(err.to_string().contains("example 1 has label 1"), "{err}");
        assert!(ImageSet::new(vec![], vec![], [1, 0, 2], classes).is_err());
    }

    #[test]
    fn subset_and_take_pick_the_right_images() {
        let s = set(5);
        let sub = s.subset(&[3, 1]);
        assert_eq!(sub.image(0), s.image(3));
        assert_eq!(sub.labels, vec![s.labels[3], s.labels[1]]);
        assert_eq!(s.take(2).images, s.images[..8]);
        assert_eq!(s.take(99).len(), 5);
    }

    #[test]
    fn split_is_seeded_and_partitions_the_set() {
        let s = set(101);
        let (train, val) = s.split(0.2, 7).unwrap();
        assert_eq!((train.len(), val.len()), (81, 20));
        let (train2, val2) = s.split(0.2, 7).unwrap();
        assert_eq!(
            (train.images, val.images.clone()),
            (train2.images, val2.images)
        );
        let (_, val3) = s.split(0.2, 8).unwrap();
        assert_ne!(val.images, val3.images);
        let (all, none) = s.split(0.0, 1).unwrap();
        assert_eq!((all.len(), none.len()), (101, 0));
        assert!(s.split(1.0, 1).is_err());
        assert!(s.split(f64::NAN, 1).is_err());
        assert!(set(1).split(0.5, 1).is_err());
    }

    #[test]
    fn normalization_is_mean_and_std_on_the_unit_scale() {
        let s = ImageSet::new(
            vec![0, 255, 0, 255, 10, 10],
            vec![0, 0, 0],
            [2, 1, 1],
            vec!["x".into()],
        )
        .unwrap();
        let n = s.normalization();
        // Channel 0 holds 0, 0, 10; channel 1 holds 255, 255, 10.
        assert!((n.mean[0] - 10.0 / 765.0).abs() < 1e-6);
        assert!((n.mean[1] - 520.0 / 765.0).abs() < 1e-6);
        let m1 = 520.0 / 765.0f64;
        let var1 = (2.0 * (1.0 - m1).powi(2) + (10.0 / 255.0 - m1).powi(2)) / 3.0;
        assert!((f64::from(n.std[1]) - var1.sqrt()).abs() < 1e-6);
        let constant = ImageSet::new(vec![7; 4], vec![0], [1, 2, 2], vec!["x".into()]).unwrap();
        let n = constant.normalization();
        assert_eq!(n.std, vec![Normalization::MIN_STD]);
        assert!(n.normalise(&[7; 4]).iter().all(|v| v.abs() < 1e-3));
    }

    #[test]
    fn normalise_matches_the_formula() {
        let n = Normalization {
            mean: vec![0.5, 0.25],
            std: vec![0.5, 2.0],
        };
        let out = n.normalise(&[255, 0, 51, 102]);
        let want = [1.0, -1.0, (0.2 - 0.25) / 2.0, (0.4 - 0.25) / 2.0];
        for (o, w) in out.iter().zip(want) {
            assert!((o - w).abs() < 1e-6, "{out:?}");
        }
        assert_eq!(Normalization::identity(1).normalise(&[255]), vec![1.0]);
    }

    #[test]
    fn burn_sees_the_examples() {
        let s = set(3);
        assert_eq!(Dataset::len(&s), 3);
        assert_eq!(s.get(1).unwrap().pixels, s.image(1));
        assert!(s.get(3).is_err());
    }
}
