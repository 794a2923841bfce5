//! Generated data sets for 1D and 3D networks: nothing to download or commit, the same examples
//! for the same seed, and classes a small network can learn but not by reading one value.
//!
//! - [`ecg_set`]: single-lead ECG-like signals, `[1, L]` at 250 Hz; four rhythms.
//! - [`motion_set`]: clips `[1, T, S, S]` of a Fashion-MNIST item moving in one of four
//!   directions.
//! - [`shapes_set`]: noisy volumes `[1, S, S, S]` holding a sphere, a cube or a cylinder.
//! - [`segmentation_scenes`]: Fashion-MNIST items on textured backgrounds with per-pixel masks.
//! - [`detection_scenes`]: the same kind of scenes with up to four items, each with its box.
//!
//! Every example draws from its own generator seeded by `(seed, generator, index)`, so an
//! example does not change when `n` does: the first 100 of a 2,000-example set are the
//! 100-example set.

mod detection;
mod ecg;
mod motion;
mod scenes;
mod shapes;

pub use detection::{DetectionObject, DetectionSet, detection_scenes};
pub use ecg::{ECG_CLASSES, ECG_MIN_LENGTH, ECG_SAMPLE_RATE, ecg_set};
pub use motion::{MOTION_CLASSES, motion_set};
pub use scenes::segmentation_scenes;
pub use shapes::{SHAPE_CLASSES, shapes_set};

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

use crate::AugmentRng;

/// The generator for example `index` of the set `tag` (one tag per generator, so the ECG and
/// shapes sets of one seed are unrelated).
fn example_rng(seed: u64, tag: u64, index: usize) -> AugmentRng {
    AugmentRng::seed_from_u64(crate::seed::derive(&[seed, tag, index as u64]))
}

/// Label of each of `n` examples: a fresh shuffle of the `k` classes for every run of `k`
/// examples, so every class appears `n / k` or `n / k + 1` times and a longer set extends a
/// shorter one. Drawn independently per example, class counts would wander by `sqrt(n)`.
fn balanced_labels(n: usize, k: usize, seed: u64, tag: u64) -> Vec<usize> {
    let mut labels = Vec::with_capacity(n);
    for block in 0..n.div_ceil(k.max(1)) {
        let mut classes: Vec<usize> = (0..k).collect();
        let block_seed = crate::seed::derive(&[seed, tag, block as u64, 0x1ab]);
        classes.shuffle(&mut AugmentRng::seed_from_u64(block_seed));
        labels.extend(classes);
    }
    labels.truncate(n);
    labels
}

/// A uniform value in `[lo, hi)`.
fn uniform(rng: &mut AugmentRng, lo: f32, hi: f32) -> f32 {
    lo + rng.random::<f32>() * (hi - lo)
}

fn normal(rng: &mut AugmentRng) -> f32 {
    rng.sample::<f32, _>(StandardNormal)
}

fn class_names(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Two 8x8 items for the scene generators' tests: a filled square (class 0) and a two-pixel
/// horizontal bar (class 1).
#[cfg(test)]
fn two_items() -> crate::ImageSet {
    let square: Vec<u8> = (0..64)
        .map(|p| {
            if (2..6).contains(&(p / 8)) && (2..6).contains(&(p % 8)) {
                200
            } else {
                0
            }
        })
        .collect();
    let bar: Vec<u8> = (0..64)
        .map(|p| if (3..5).contains(&(p / 8)) { 250 } else { 0 })
        .collect();
    crate::ImageSet::new(
        [square, bar].concat(),
        vec![0, 1],
        [1, 8, 8],
        vec!["square".into(), "bar".into()],
    )
    .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_balanced_and_shuffled() {
        let labels = balanced_labels(103, 4, 1, 2);
        let counts: Vec<usize> = (0..4)
            .map(|c| labels.iter().filter(|&&l| l == c).count())
            .collect();
        assert!(counts.iter().all(|&c| c == 25 || c == 26), "{counts:?}");
        assert_eq!(counts.iter().sum::<usize>(), 103);
        assert_ne!(labels, (0..103).map(|i| i % 4).collect::<Vec<_>>());
        assert_eq!(labels, balanced_labels(103, 4, 1, 2));
        assert_eq!(labels[..50], balanced_labels(50, 4, 1, 2));
        assert_ne!(labels, balanced_labels(103, 4, 2, 2));
    }
}
