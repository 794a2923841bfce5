//! An in-memory labelled set of `f32` examples of any layout a convolution takes: signals
//! `[C, L]`, images `[C, H, W]`, volumes `[C, D, H, W]`.

use crate::set::split_indices;
use crate::{DataError, Normalization};

/// The example ranks a set may hold: those a network's feature maps come in (1D, 2D, 3D maps
/// with a channel axis first).
pub const SUPPORTED_RANKS: std::ops::RangeInclusive<usize> = 2..=4;

/// Labelled `f32` examples of one shape, channels first. Unlike an [`ImageSet`](crate::ImageSet)
/// the values are used as they are (no division by 255): signals and volumes have no fixed
/// scale, and the set's [`Normalization`] brings them to one.
#[derive(Clone, Debug)]
pub struct TensorSet {
    /// `len() * prod(shape)` values, one example after another, each row-major.
    pub data: Vec<f32>,
    /// One class index per example, each `< classes.len()`.
    pub labels: Vec<usize>,
    /// One example: `[C, L]`, `[C, H, W]` or `[C, D, H, W]`.
    pub shape: Vec<usize>,
    pub classes: Vec<String>,
}

impl TensorSet {
    /// A set whose pieces fit together: rank, value count, labels, finite values.
    pub fn new(
        data: Vec<f32>,
        labels: Vec<usize>,
        shape: Vec<usize>,
        classes: Vec<String>,
    ) -> Result<Self, DataError> {
        let set = Self {
            data,
            labels,
            shape,
            classes,
        };
        set.validate()?;
        Ok(set)
    }

    /// Checks what [`TensorSet::new`] checks (the fields are public, so a set may have been
    /// edited since). A NaN or infinity is named by example and position: one bad value would
    /// otherwise turn the whole training loss into NaN epochs later.
    pub fn validate(&self) -> Result<(), DataError> {
        let invalid = |m: String| Err(DataError::InvalidTensors(m));
        let shape = &self.shape;
        if !SUPPORTED_RANKS.contains(&shape.len()) {
            return invalid(format!(
                "example shape {shape:?} has rank {}; supported: [C, L], [C, H, W], [C, D, H, W]",
                shape.len()
            ));
        }
        if shape.contains(&0) {
            return invalid(format!("example shape {shape:?} has a zero dimension"));
        }
        crate::set::check_layout(
            &self.labels,
            self.classes.len(),
            self.example_len(),
            self.data.len(),
            &format!("{shape:?} examples"),
            "values",
        )
        .or_else(invalid)?;
        if let Some(bad) = first_non_finite(&self.data, self.example_len()) {
            return invalid(bad.to_string());
        }
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
        self.shape.first().copied().unwrap_or(0)
    }

    /// Values in one example, the product of the shape.
    pub fn example_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The values of example `i`. Panics if `i >= len()`, like slice indexing.
    pub fn example(&self, i: usize) -> &[f32] {
        let n = self.example_len();
        &self.data[i * n..(i + 1) * n]
    }

    /// The examples at `indices`, in that order (repeats allowed). Panics on an index out of
    /// range, like slice indexing.
    pub fn subset(&self, indices: &[usize]) -> TensorSet {
        TensorSet {
            data: crate::set::gather(&self.data, self.example_len(), indices),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            shape: self.shape.clone(),
            classes: self.classes.clone(),
        }
    }

    /// The examples of some classes, relabelled `0..k` in the selection's order.
    pub fn select(&self, selection: &crate::ClassSelection) -> Result<TensorSet, DataError> {
        let (indices, labels) = selection.pick(&self.labels, &self.classes)?;
        let mut set = self.subset(&indices);
        set.labels = labels;
        set.classes = selection.names(&self.classes);
        Ok(set)
    }

    /// The first `n` examples (all of them if there are fewer).
    pub fn take(&self, n: usize) -> TensorSet {
        let n = n.min(self.len());
        TensorSet {
            data: self.data[..n * self.example_len()].to_vec(),
            labels: self.labels[..n].to_vec(),
            shape: self.shape.clone(),
            classes: self.classes.clone(),
        }
    }

    /// `(train, validation)` as [`ImageSet::split`](crate::ImageSet::split) makes them: the
    /// same seed holds out the same example indices.
    pub fn split(&self, val_fraction: f64, seed: u64) -> Result<(TensorSet, TensorSet), DataError> {
        let (train, val) =
            split_indices(self.len(), val_fraction, seed).map_err(DataError::InvalidTensors)?;
        Ok((self.subset(&train), self.subset(&val)))
    }

    /// How many examples of each class, in class order.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes()];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l) {
                *c += 1;
            }
        }
        counts
    }

    /// Per-channel mean and standard deviation of the values as stored. Two passes in `f64`:
    /// signals may sit on a large offset, where a sum of squares would cancel away the variance.
    pub fn normalization(&self) -> Normalization {
        let c = self.channels();
        if self.is_empty() || c == 0 {
            return Normalization::identity(c);
        }
        let plane = self.example_len() / c;
        let planes = || {
            self.data
                .chunks_exact(self.example_len())
                .flat_map(|e| e.chunks_exact(plane).enumerate())
        };
        let mut sum = vec![0f64; c];
        for (ch, values) in planes() {
            sum[ch] += values.iter().map(|&v| f64::from(v)).sum::<f64>();
        }
        let count = (self.len() * plane) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / count).collect();
        let mut sum_sq = vec![0f64; c];
        for (ch, values) in planes() {
            let m = mean[ch];
            sum_sq[ch] += values
                .iter()
                .map(|&v| (f64::from(v) - m).powi(2))
                .sum::<f64>();
        }
        Normalization {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std: sum_sq
                .iter()
                .map(|&s| ((s / count).sqrt() as f32).max(Normalization::MIN_STD))
                .collect(),
        }
    }
}

/// Where a NaN or infinity sits in a run of examples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NonFinite {
    pub example: usize,
    pub offset: usize,
    pub value: f32,
}

impl std::fmt::Display for NonFinite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "example {} holds {} at position {}; inputs must be finite numbers",
            self.example, self.value, self.offset
        )
    }
}

/// The first value that is not finite, by example and position within it.
pub(crate) fn first_non_finite(data: &[f32], per_example: usize) -> Option<NonFinite> {
    let at = data.iter().position(|v| !v.is_finite())?;
    let per_example = per_example.max(1);
    Some(NonFinite {
        example: at / per_example,
        offset: at % per_example,
        value: data[at],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(k: usize) -> Vec<String> {
        (0..k).map(|i| i.to_string()).collect()
    }

    /// `n` examples `[2, 3]`; example `i` holds `i * 10 + j`.
    fn set(n: usize) -> TensorSet {
        let data = (0..n)
            .flat_map(|i| (0..6).map(move |j| (i * 10 + j) as f32))
            .collect();
        TensorSet::new(
            data,
            (0..n).map(|i| i % 3).collect(),
            vec![2, 3],
            classes(3),
        )
        .unwrap()
    }

    #[test]
    fn new_checks_rank_length_labels_and_values() {
        let err = |d: Vec<f32>, l: Vec<usize>, s: Vec<usize>| {
            TensorSet::new(d, l, s, classes(2)).unwrap_err().to_string()
        };
        let msg = err(vec![0.0; 4], vec![0], vec![4]);
        assert!(
            msg.contains("rank 1") && msg.contains("[C, D, H, W]"),
            "{msg}"
        );
        let msg = err(vec![0.0; 32], vec![0], vec![1, 2, 2, 2, 2]);
        assert!(msg.contains("rank 5"), "{msg}");
        let msg = err(vec![0.0; 7], vec![0, 0], vec![1, 4]);
        assert!(msg.contains("call for 8 values, got 7"), "{msg}");
        assert!(err(vec![], vec![], vec![1, 0]).contains("zero dimension"));
        let msg = err(vec![0.0; 8], vec![0, 2], vec![1, 4]);
        assert!(msg.contains("example 1 has label 2"), "{msg}");
        let mut data = vec![0.0; 12];
        data[9] = f32::NAN;
        let msg = err(data, vec![0, 1, 0], vec![1, 4]);
        assert!(msg.contains("example 2 holds NaN at position 1"), "{msg}");
        let mut data = vec![0.0; 4];
        data[0] = f32::NEG_INFINITY;
        let msg = err(data, vec![0], vec![1, 2, 2]);
        assert!(msg.contains("example 0 holds -inf"), "{msg}");
        assert!(msg.starts_with("tensor set: "), "{msg}");
    }

    #[test]
    fn subset_take_and_example_agree() {
        let s = set(5);
        assert_eq!(s.example(3), &[30.0, 31.0, 32.0, 33.0, 34.0, 35.0]);
        let sub = s.subset(&[4, 1]);
        assert_eq!(sub.example(0), s.example(4));
        assert_eq!(sub.labels, vec![1, 1]);
        assert_eq!(s.take(2).data, s.data[..12]);
        assert_eq!(s.take(9).len(), 5);
        assert_eq!(s.class_counts(), vec![2, 2, 1]);
    }

    #[test]
    fn split_holds_out_the_same_indices_as_an_image_set() {
        let s = set(57);
        let (train, val) = s.split(0.25, 11).unwrap();
        assert_eq!((train.len(), val.len()), (43, 14));
        let images = crate::ImageSet::new(
            (0..57).map(|i| i as u8).collect(),
            vec![0; 57],
            [1, 1, 1],
            classes(1),
        )
        .unwrap();
        let (_, image_val) = images.split(0.25, 11).unwrap();
        let held_out: Vec<f32> = image_val
            .images
            .iter()
            .map(|&i| f32::from(i) * 10.0)
            .collect();
        let firsts: Vec<f32> = val.data.chunks(6).map(|e| e[0]).collect();
        assert_eq!(firsts, held_out);
        let msg = s.split(1.0, 0).unwrap_err().to_string();
        assert!(msg.starts_with("tensor set: validation fraction"), "{msg}");
    }

    #[test]
    fn normalization_is_per_channel_on_raw_values() {
        // Channel 0 holds 1000 ± 1, channel 1 holds 0 and 4: no /255, no cancellation.
        let s = TensorSet::new(
            vec![999.0, 1001.0, 0.0, 0.0, 1001.0, 999.0, 4.0, 4.0],
            vec![0, 0],
            vec![2, 2],
            classes(1),
        )
        .unwrap();
        let n = s.normalization();
        assert_eq!(n.mean, vec![1000.0, 2.0]);
        assert_eq!(n.std, vec![1.0, 2.0]);
        assert_eq!(
            n.normalise_values(s.example(0)),
            vec![-1.0, 1.0, -1.0, -1.0]
        );
        let constant = TensorSet::new(vec![3.0; 4], vec![0], vec![1, 4], classes(1)).unwrap();
        assert_eq!(constant.normalization().std, vec![Normalization::MIN_STD]);
    }
}
