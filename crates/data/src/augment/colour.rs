//! Transforms that change colour, not geometry: lighting and white balance vary between photos
//! of the same object.

use rand::RngExt;
use rand_distr::StandardNormal;

use super::{AugmentRng, Image, Transform, symmetric};
use crate::pca::{rgb_covariance, symmetric_eigen};
use crate::{DataError, ImageSet};

/// Adds one offset, uniform in `[-max_offset, max_offset]`, to every pixel of each channel
/// (a different offset per channel), then clamps to `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColourShift {
    pub max_offset: f32,
}

impl Transform for ColourShift {
    fn apply(&self, image: &mut Image, rng: &mut AugmentRng) {
        for plane in image.planes_mut() {
            let offset = symmetric(rng, self.max_offset);
            if !offset.is_finite() {
                continue; // A NaN bound would turn the whole channel into NaN.
            }
            for v in plane {
                *v = (*v + offset).clamp(0.0, 1.0);
            }
        }
    }

    fn name(&self) -> String {
        format!("shift={}", self.max_offset)
    }
}

/// AlexNet's colour augmentation (Krizhevsky, Sutskever and Hinton, 2012, section 4.1): add
/// `Σ αᵢ λᵢ pᵢ` to every RGB pixel, where `pᵢ, λᵢ` are the eigenvectors and eigenvalues of the
/// training set's RGB covariance and `αᵢ ~ N(0, sigma)` is drawn once per image. The change
/// follows the directions in which natural colours actually vary, so the object's identity is
/// kept while its illumination changes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PcaColour {
    /// `λᵢ`, largest first, of the `0..1`-scale covariance.
    pub eigenvalues: [f32; 3],
    /// Column `i` (`eigenvectors[row][i]`) is `pᵢ`.
    pub eigenvectors: [[f32; 3]; 3],
    pub sigma: f32,
}

impl PcaColour {
    /// Fits the principal colour components of `set` (which must be RGB), with `sigma` 0.1 as in
    /// the paper.
    pub fn fit(set: &ImageSet) -> Result<Self, DataError> {
        let eigen = symmetric_eigen(rgb_covariance(set)?);
        Ok(Self {
            // Rounding can leave a flat direction a hair below zero.
            eigenvalues: eigen.values.map(|v| v.max(0.0) as f32),
            eigenvectors: eigen.vectors.map(|row| row.map(|v| v as f32)),
            sigma: 0.1,
        })
    }

    pub fn with_sigma(self, sigma: f32) -> Self {
        Self { sigma, ..self }
    }

    /// The RGB offset for weights `alpha`: `Σ αᵢ λᵢ pᵢ`.
    pub fn offset(&self, alpha: [f32; 3]) -> [f32; 3] {
        std::array::from_fn(|c| {
            (0..3)
                .map(|i| self.eigenvectors[c][i] * alpha[i] * self.eigenvalues[i])
                .sum()
        })
    }
}

impl Transform for PcaColour {
    /// Leaves images that are not RGB alone: [`Augment::parse`](super::Augment::parse) refuses
    /// PCA colour for such sets up front.
    fn apply(&self, image: &mut Image, rng: &mut AugmentRng) {
        let alpha: [f32; 3] =
            std::array::from_fn(|_| rng.sample::<f32, _>(StandardNormal) * self.sigma);
        if image.channels != 3 {
            return;
        }
        let offset = self.offset(alpha);
        if !offset.iter().all(|v| v.is_finite()) {
            return;
        }
        for (plane, off) in image.planes_mut().zip(offset) {
            for v in plane {
                *v = (*v + off).clamp(0.0, 1.0);
            }
        }
    }

    fn name(&self) -> String {
        format!("pca={}", self.sigma)
    }
}
