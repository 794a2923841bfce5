//! The shape of one example as it flows through a network (the batch axis is left out).

use serde::{Serialize, Serializer};

use crate::limits::{SizeError, checked_product};
use std::fmt;

/// Channels-first feature shape without the batch axis: `[C, H, W]` for images, `[F]` after
/// `flatten`. Printed the way Keras prints shapes, with `None` for the batch: `(None, 6, 28, 28)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FeatureShape(pub Vec<usize>);

impl FeatureShape {
    pub fn new(dims: impl Into<Vec<usize>>) -> Self {
        Self(dims.into())
    }

    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// Number of axes, the batch axis excluded.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Values in one example, or an error when the axes multiply past 64 bits (a shape read
    /// from a spec or computed from one can be any size).
    pub fn num_elements(&self) -> Result<usize, SizeError> {
        checked_product(&format!("feature map {self}"), &self.0)
    }

    /// The channel axis (the first one).
    pub fn channels(&self) -> usize {
        self.0.first().copied().unwrap_or(0)
    }

    /// Spatial axes, after the channels.
    pub fn spatial(&self) -> &[usize] {
        self.0.get(1..).unwrap_or(&[])
    }

    /// With the batch axis in front, as a tensor of this shape would have.
    pub fn with_batch(&self, batch: usize) -> Vec<usize> {
        std::iter::once(batch)
            .chain(self.0.iter().copied())
            .collect()
    }
}

impl From<Vec<usize>> for FeatureShape {
    fn from(v: Vec<usize>) -> Self {
        Self(v)
    }
}

impl<const N: usize> From<[usize; N]> for FeatureShape {
    fn from(v: [usize; N]) -> Self {
        Self(v.to_vec())
    }
}

impl fmt::Display for FeatureShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(None")?;
        for d in &self.0 {
            write!(f, ", {d}")?;
        }
        f.write_str(")")
    }
}

/// Serialised as the list of axes with the batch first as `null`, as Keras reports shapes.
impl Serialize for FeatureShape {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v: Vec<Option<usize>> = std::iter::once(None)
            .chain(self.0.iter().map(|&d| Some(d)))
            .collect();
        v.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_keras() {
        let s = FeatureShape::new([6, 28, 28]);
        assert_eq!(s.to_string(), "(None, 6, 28, 28)");
        assert_eq!(serde_json::to_string(&s).unwrap(), "[null,6,28,28]");
        assert_eq!(s.with_batch(4), vec![4, 6, 28, 28]);
        assert_eq!(
            (s.channels(), s.spatial(), s.num_elements()),
            (6, &[28, 28][..], Ok(4704))
        );
    }

    #[test]
    fn element_counts_past_64_bits_are_errors() {
        let s = FeatureShape::new([3, 1 << 32, 1 << 32]);
        assert_eq!(
            s.num_elements().unwrap_err().to_string(),
            "feature map (None, 3, 4294967296, 4294967296): 3 x 4294967296 x 4294967296 overflows 64-bit arithmetic"
        );
    }
}
