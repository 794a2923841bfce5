//! What the [`Loader`](crate::Loader) needs from a data set, so one loader serves images,
//! signals and volumes alike.

use std::sync::Arc;

use crate::augment::{Augment, AugmentRng, Image};
use crate::{DataError, ImageSet, Normalization, TensorSet};

/// A labelled set the [`Loader`](crate::Loader) can batch: every example has the same shape,
/// channels first.
pub trait Examples: Send + Sync {
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One example's shape, channels first: `[C, L]`, `[C, H, W]` or `[C, D, H, W]`.
    fn example_shape(&self) -> Vec<usize>;

    fn channels(&self) -> usize {
        self.example_shape().first().copied().unwrap_or(0)
    }

    /// The class of example `i`. Panics if `i >= len()`, like slice indexing.
    fn label(&self, i: usize) -> usize;

    fn num_classes(&self) -> usize;

    fn classes(&self) -> &[String];

    /// Appends example `i`, augmented (drawing from `rng` only) and normalised, to `out`.
    fn write_normalised(
        &self,
        i: usize,
        norm: &Normalization,
        augment: Option<&Augment>,
        rng: &mut AugmentRng,
        out: &mut Vec<f32>,
    );

    /// Whether [`Examples::write_normalised`] applies an [`Augment`]; the loader refuses
    /// augmentation for a set that would silently ignore it.
    fn augments(&self) -> bool {
        false
    }

    /// Checks that the set's pieces fit together (sets with public fields may have been edited
    /// since they were built).
    fn validate(&self) -> Result<(), DataError> {
        Ok(())
    }
}

/// Refuses an empty `set` ("training", "test", ...): learning from or scoring on nothing
/// would report numbers about nothing.
pub fn check_not_empty(set: &str, examples: usize) -> Result<(), DataError> {
    if examples == 0 {
        return Err(DataError::Sets(format!(
            "the {set} set is empty (no examples)"
        )));
    }
    Ok(())
}

/// Checks that `other` (the `what` set: "test", "validation") can be scored by a model
/// trained on `train`: not empty, examples of the same shape, labels naming the same classes. Run
/// before training, so a mismatch does not surface only after it.
pub fn check_matches(
    train: &dyn Examples,
    other: &dyn Examples,
    what: &str,
) -> Result<(), DataError> {
    check_not_empty(what, other.len())?;
    let (shape, other_shape) = (train.example_shape(), other.example_shape());
    if shape != other_shape {
        return Err(DataError::Sets(format!(
            "the {what} set's examples are {other_shape:?}, the training set's {shape:?}"
        )));
    }
    // A label must name the same class in both; a set may lack the last classes (a `.npy`
    // set names classes up to its largest label).
    if !train.classes().starts_with(other.classes()) {
        return Err(DataError::Sets(format!(
            "the {what} set's classes {:?} are not the training set's {:?} (in label order)",
            other.classes(),
            train.classes()
        )));
    }
    Ok(())
}

impl Examples for ImageSet {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn example_shape(&self) -> Vec<usize> {
        self.shape.to_vec()
    }

    fn label(&self, i: usize) -> usize {
        self.labels[i]
    }

    fn num_classes(&self) -> usize {
        self.classes.len()
    }

    fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Pixels divided by 255, augmented, then normalised.
    fn write_normalised(
        &self,
        i: usize,
        norm: &Normalization,
        augment: Option<&Augment>,
        rng: &mut AugmentRng,
        out: &mut Vec<f32>,
    ) {
        match augment.filter(|a| !a.is_empty()) {
            None => norm.extend_normalised(self.image(i), out),
            Some(a) => {
                let mut image = Image::from_pixels(self.image(i), self.shape);
                a.apply(&mut image, rng);
                let [_, h, w] = self.shape;
                for (ch, plane) in image.data.chunks_exact((h * w).max(1)).enumerate() {
                    out.extend(plane.iter().map(|&v| norm.apply(ch, v)));
                }
            }
        }
    }

    fn augments(&self) -> bool {
        true
    }

    fn validate(&self) -> Result<(), DataError> {
        ImageSet::validate(self)
    }
}

impl Examples for TensorSet {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn example_shape(&self) -> Vec<usize> {
        self.shape.clone()
    }

    fn label(&self, i: usize) -> usize {
        self.labels[i]
    }

    fn num_classes(&self) -> usize {
        self.classes.len()
    }

    fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Values as stored, normalised. The image augmentations (flips, crops, rotations, colour)
    /// have no meaning for signals and volumes, so `augment` is not applied; the loader
    /// rejects one up front (see [`Examples::augments`]).
    fn write_normalised(
        &self,
        i: usize,
        norm: &Normalization,
        _augment: Option<&Augment>,
        _rng: &mut AugmentRng,
        out: &mut Vec<f32>,
    ) {
        norm.extend_normalised_values(self.example(i), out);
    }

    fn validate(&self) -> Result<(), DataError> {
        TensorSet::validate(self)
    }
}

/// A set the [`Loader`](crate::Loader) can share with its worker thread: an `Arc` of any
/// [`Examples`], or one already erased to `Arc<dyn Examples>`.
pub trait IntoExamples {
    fn into_examples(self) -> Arc<dyn Examples>;
}

impl<E: Examples + 'static> IntoExamples for Arc<E> {
    fn into_examples(self) -> Arc<dyn Examples> {
        self
    }
}

impl IntoExamples for Arc<dyn Examples> {
    fn into_examples(self) -> Arc<dyn Examples> {
        self
    }
}
