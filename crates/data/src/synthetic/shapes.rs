//! Noisy volumes holding one solid — a sphere, a cube or a cylinder — to tell apart by shape
//! alone: sizes and positions overlap between the classes, and the noise is strong enough that
//! single voxels say little.

use rand::RngExt;

use super::{balanced_labels, class_names, example_rng, normal, uniform};
use crate::{AugmentRng, DataError, TensorSet};

/// Class names in label order.
pub const SHAPE_CLASSES: [&str; 3] = ["sphere", "cube", "cylinder"];

const TAG: u64 = 0x5a9;

/// `n` volumes of shape `[1, size, size, size]`, classes [`SHAPE_CLASSES`] in equal numbers.
///
/// Each holds one solid of radius (cube: half side; cylinder: radius and half length)
/// 0.2-0.35 of `size`, wholly inside the volume at a random position, axis-aligned (a cylinder
/// along a random one of the three axes), of brightness 0.6-1.0 on a background of 0, with
/// Gaussian noise of sigma 0.15-0.25 everywhere. Edges are anti-aliased (a voxel's value is the
/// fraction of it inside, roughly), so a solid's size is not rounded to whole voxels. Values are
/// not clamped: the noise stays zero-mean, and normalisation handles the scale.
pub fn shapes_set(n: usize, size: usize, seed: u64) -> Result<TensorSet, DataError> {
    if !(8..=256).contains(&size) {
        return Err(DataError::InvalidTensors(format!(
            "shape volumes must be 8 to 256 voxels wide, not {size}"
        )));
    }
    let labels = balanced_labels(n, SHAPE_CLASSES.len(), seed, TAG);
    let mut data = Vec::with_capacity(n * size * size * size);
    for (i, &label) in labels.iter().enumerate() {
        let mut rng = example_rng(seed, TAG, i);
        let solid = Solid::random(Kind::ALL[label], size, &mut rng);
        let start = data.len();
        data.resize(start + size * size * size, 0.0);
        let volume = &mut data[start..];
        solid.render(volume, size);
        let sigma = uniform(&mut rng, 0.15, 0.25);
        for v in volume {
            *v += sigma * normal(&mut rng);
        }
    }
    TensorSet::new(
        data,
        labels,
        vec![1, size, size, size],
        class_names(&SHAPE_CLASSES),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Sphere,
    Cube,
    /// Along axis 0 (depth), 1 (height) or 2 (width).
    Cylinder(usize),
}

impl Kind {
    /// In label order (the cylinder's axis is drawn later).
    const ALL: [Kind; 3] = [Kind::Sphere, Kind::Cube, Kind::Cylinder(0)];
}

/// A solid in voxel coordinates (voxel `i` is centred at `i`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Solid {
    pub kind: Kind,
    pub centre: [f32; 3],
    pub radius: f32,
    pub intensity: f32,
}

impl Solid {
    fn random(kind: Kind, size: usize, rng: &mut AugmentRng) -> Solid {
        let s = size as f32;
        let radius = uniform(rng, 0.2, 0.35) * s;
        // Keep the solid, its anti-aliased rim included, inside the volume.
        let lo = radius;
        let hi = s - 1.0 - radius;
        let centre = std::array::from_fn(|_| uniform(rng, lo, hi.max(lo)));
        let kind = match kind {
            Kind::Cylinder(_) => Kind::Cylinder(rng.random_range(0..3)),
            k => k,
        };
        Solid {
            kind,
            centre,
            radius,
            intensity: uniform(rng, 0.6, 1.0),
        }
    }

    /// How far `p` is outside the surface (negative inside), exactly for the sphere and
    /// everywhere near the faces for the cube and cylinder, which is what the edge needs.
    fn signed_distance(&self, p: [f32; 3]) -> f32 {
        let d: [f32; 3] = std::array::from_fn(|a| p[a] - self.centre[a]);
        match self.kind {
            Kind::Sphere => (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt() - self.radius,
            Kind::Cube => d.iter().map(|x| x.abs()).fold(f32::MIN, f32::max) - self.radius,
            Kind::Cylinder(axis) => {
                let radial: f32 = (0..3).filter(|&a| a != axis).map(|a| d[a] * d[a]).sum();
                (radial.sqrt() - self.radius).max(d[axis].abs() - self.radius)
            }
        }
    }

    /// Adds the solid to a `size³` volume: `intensity` inside, a one-voxel linear ramp across
    /// the surface.
    pub(crate) fn render(&self, volume: &mut [f32], size: usize) {
        let span = |a: usize| {
            let lo = (self.centre[a] - self.radius - 1.0).floor().max(0.0) as usize;
            let hi = ((self.centre[a] + self.radius + 1.0).ceil().max(0.0) as usize).min(size - 1);
            lo..=hi
        };
        for z in span(0) {
            for y in span(1) {
                for x in span(2) {
                    let sd = self.signed_distance([z as f32, y as f32, x as f32]);
                    let inside = (0.5 - sd).clamp(0.0, 1.0);
                    volume[(z * size + y) * size + x] += self.intensity * inside;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::f32::consts::PI;

    fn occupancy(kind: Kind, radius: f32, size: usize) -> f32 {
        let c = size as f32 / 2.0 - 0.3;
        let solid = Solid {
            kind,
            centre: [c, c + 0.1, c - 0.2],
            radius,
            intensity: 1.0,
        };
        let mut v = vec![0.0; size * size * size];
        solid.render(&mut v, size);
        v.iter().sum()
    }

    #[test]
    fn solids_have_their_volumes() {
        let r = 7.0;
        let close = |got: f32, want: f32| (got / want - 1.0).abs() < 0.04;
        let sphere = occupancy(Kind::Sphere, r, 24);
        let cube = occupancy(Kind::Cube, r, 24);
        assert!(close(sphere, 4.0 / 3.0 * PI * r * r * r), "{sphere}");
        assert!(close(cube, 8.0 * r * r * r), "{cube}");
        for axis in 0..3 {
            let cylinder = occupancy(Kind::Cylinder(axis), r, 24);
            assert!(close(cylinder, 2.0 * PI * r * r * r), "{cylinder}");
        }
    }

    #[test]
    fn a_cylinder_is_round_across_its_axis_and_square_along_it() {
        let size = 24;
        let mut rng = AugmentRng::seed_from_u64(0);
        for _ in 0..10 {
            let solid = Solid::random(Kind::Cylinder(0), size, &mut rng);
            let Kind::Cylinder(axis) = solid.kind else {
                unreachable!()
            };
            let mut v = vec![0.0; size * size * size];
            solid.render(&mut v, size);
            // Every slice across the axis through the solid holds the same disc.
            let index = |p: [usize; 3]| (p[0] * size + p[1]) * size + p[2];
            let c = solid.centre.map(|x| x.round() as usize);
            let slice_area = |at: usize| {
                let mut area = 0.0;
                for i in 0..size {
                    for j in 0..size {
                        let mut p = [0; 3];
                        let others: Vec<usize> = (0..3).filter(|&a| a != axis).collect();
                        p[axis] = at;
                        p[others[0]] = i;
                        p[others[1]] = j;
                        area += v[index(p)];
                    }
                }
                area / solid.intensity
            };
            let r = solid.radius;
            let middle = slice_area(c[axis]);
            assert!((middle / (PI * r * r) - 1.0).abs() < 0.1, "{middle} {r}");
            let near_end = slice_area((solid.centre[axis] + r - 1.0).floor() as usize);
            assert!((near_end / middle - 1.0).abs() < 0.02);
        }
    }

    #[test]
    fn solids_stay_inside_the_volume() {
        let size = 16;
        let mut rng = AugmentRng::seed_from_u64(1);
        for k in 0..60 {
            let solid = Solid::random(Kind::ALL[k % 3], size, &mut rng);
            let mut v = vec![0.0; size * size * size];
            solid.render(&mut v, size);
            let total: f32 = v.iter().sum();
            let mut bigger = vec![0.0; 18 * 18 * 18];
            let shifted = Solid {
                centre: solid.centre.map(|x| x + 1.0),
                ..solid
            };
            shifted.render(&mut bigger, 18);
            let whole: f32 = bigger.iter().sum();
            assert!((total - whole).abs() < 1e-3, "{solid:?}");
        }
    }

    #[test]
    fn set_is_seeded_balanced_and_noisy() {
        let a = shapes_set(9, 12, 2).unwrap();
        assert_eq!(a.shape, vec![1, 12, 12, 12]);
        assert_eq!(a.data.len(), 9 * 12 * 12 * 12);
        assert_eq!(a.class_counts(), vec![3; 3]);
        assert_eq!(a.classes, SHAPE_CLASSES);
        assert!(a.data.iter().all(|v| v.is_finite()));
        assert_eq!(a.data, shapes_set(9, 12, 2).unwrap().data);
        assert_ne!(a.data, shapes_set(9, 12, 3).unwrap().data);
        // A corner voxel is background: noise around 0 with sigma 0.15-0.25.
        let corners: Vec<f32> = a.data.chunks(1728).map(|v| v[0]).collect();
        assert!(corners.iter().any(|&v| v < 0.0), "{corners:?}");
        let msg = shapes_set(3, 4, 0).unwrap_err().to_string();
        assert!(msg.contains("8 to 256 voxels"), "{msg}");
    }
}
