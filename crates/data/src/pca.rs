//! Principal components of pixel colour, for AlexNet's PCA colour augmentation.
//!
//! The matrices are tiny (3x3) and symmetric, so the cyclic Jacobi method is the right tool:
//! a few dozen rotations give eigenvalues to machine precision and orthonormal eigenvectors,
//! with no dependency on a linear-algebra crate.

use crate::{DataError, ImageSet};

/// Eigenvalues (largest first) and eigenvectors of a symmetric matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Eigen<const N: usize> {
    pub values: [f64; N],
    /// Column `i` (`vectors[row][i]`) is the unit eigenvector of `values[i]`.
    pub vectors: [[f64; N]; N],
}

/// Eigen-decomposition of the symmetric matrix `a` by cyclic Jacobi rotations. Only the upper
/// triangle's symmetric counterpart matters: `a` is assumed symmetric.
pub fn symmetric_eigen<const N: usize>(mut a: [[f64; N]; N]) -> Eigen<N> {
    let mut v = [[0.0; N]; N];
    for (i, row) in v.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    let scale: f64 = a.iter().flatten().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..64 {
        let off: f64 = (0..N)
            .flat_map(|p| (p + 1..N).map(move |q| (p, q)))
            .map(|(p, q)| a[p][q] * a[p][q])
            .sum();
        if off.sqrt() <= f64::EPSILON * scale || off == 0.0 {
            break;
        }
        for p in 0..N {
            for q in p + 1..N {
                if a[p][q] == 0.0 {
                    continue;
                }
                // The rotation that zeroes a[p][q] (Golub and Van Loan, algorithm 8.4.1).
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // A <- Jᵀ A J, V <- V J: columns p and q, then rows p and q.
                rotate_columns(&mut a, p, q, c, s);
                let (upper, lower) = a.split_at_mut(q);
                for (apk, aqk) in upper[p].iter_mut().zip(lower[0].iter_mut()) {
                    (*apk, *aqk) = (c * *apk - s * *aqk, s * *apk + c * *aqk);
                }
                rotate_columns(&mut v, p, q, c, s);
            }
        }
    }
    let mut order: [usize; N] = std::array::from_fn(|i| i);
    order.sort_by(|&i, &j| a[j][j].total_cmp(&a[i][i]));
    Eigen {
        values: order.map(|i| a[i][i]),
        vectors: std::array::from_fn(|row| order.map(|i| v[row][i])),
    }
}

fn rotate_columns<const N: usize>(m: &mut [[f64; N]; N], p: usize, q: usize, c: f64, s: f64) {
    for row in m.iter_mut() {
        (row[p], row[q]) = (c * row[p] - s * row[q], s * row[p] + c * row[q]);
    }
}

/// Covariance of the RGB values (on the `0..1` scale) over every pixel of a 3-channel set.
pub fn rgb_covariance(set: &ImageSet) -> Result<[[f64; 3]; 3], DataError> {
    if set.channels() != 3 {
        return Err(DataError::Augment(format!(
            "PCA colour needs RGB images, and these have {} channel{}",
            set.channels(),
            if set.channels() == 1 { "" } else { "s" }
        )));
    }
    if set.is_empty() {
        return Err(DataError::Augment(
            "PCA colour needs a non-empty training set".to_string(),
        ));
    }
    let plane = set.shape[1] * set.shape[2];
    // Exact integer sums: no loss of precision over tens of millions of pixels.
    let mut sum = [0u64; 3];
    let mut prod = [[0u64; 3]; 3];
    for image in set.images.chunks_exact(set.image_len()) {
        let (r, rest) = image.split_at(plane);
        let (g, b) = rest.split_at(plane);
        for ((&r, &g), &b) in r.iter().zip(g).zip(b) {
            let px = [u64::from(r), u64::from(g), u64::from(b)];
            for i in 0..3 {
                sum[i] += px[i];
                for j in i..3 {
                    prod[i][j] += px[i] * px[j];
                }
            }
        }
    }
    let n = (set.len() * plane) as f64;
    let mut cov = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in i..3 {
            let c = (prod[i][j] as f64 / n - (sum[i] as f64 / n) * (sum[j] as f64 / n))
                / (255.0 * 255.0);
            cov[i][j] = c;
            cov[j][i] = c;
        }
    }
    Ok(cov)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mul<const N: usize>(a: &[[f64; N]; N], x: &[f64; N]) -> [f64; N] {
        std::array::from_fn(|i| (0..N).map(|k| a[i][k] * x[k]).sum())
    }

    fn column<const N: usize>(e: &Eigen<N>, i: usize) -> [f64; N] {
        std::array::from_fn(|r| e.vectors[r][i])
    }

    fn check<const N: usize>(a: [[f64; N]; N]) -> Eigen<N> {
        let e = symmetric_eigen(a);
        for i in 0..N {
            let v = column(&e, i);
            let av = mul(&a, &v);
            for k in 0..N {
                assert!(
                    (av[k] - e.values[i] * v[k]).abs() < 1e-10,
                    "A v != λ v: {e:?}"
                );
            }
            for j in 0..N {
                let dot: f64 = (0..N).map(|k| v[k] * column(&e, j)[k]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-12, "not orthonormal: {e:?}");
            }
        }
        assert!(e.values.windows(2).all(|w| w[0] >= w[1]));
        e
    }

    #[test]
    fn diagonal_matrices_are_their_own_eigenvalues() {
        let e = check([[1.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 2.0]]);
        assert_eq!(e.values, [3.0, 2.0, 1.0]);
    }

    #[test]
    fn known_two_by_two_and_three_by_three() {
        let e = check([[2.0, 1.0], [1.0, 2.0]]);
        assert!((e.values[0] - 3.0).abs() < 1e-12 && (e.values[1] - 1.0).abs() < 1e-12);
        // [[2,-1,0],[-1,2,-1],[0,-1,2]] has eigenvalues 2 + sqrt2, 2, 2 - sqrt2.
        let e = check([[2.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 2.0]]);
        let s = 2f64.sqrt();
        for (got, want) in e.values.iter().zip([2.0 + s, 2.0, 2.0 - s]) {
            assert!((got - want).abs() < 1e-12, "{e:?}");
        }
        check([[4.0, 1.0, -2.0], [1.0, 2.0, 0.5], [-2.0, 0.5, 3.0]]);
        check([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]);
        check([[0.0; 3]; 3]);
    }

    #[test]
    fn covariance_of_a_set_with_known_colours() {
        // Half the pixels (0,0,0), half (255,255,0): red and green vary together, blue is flat.
        let mut images = Vec::new();
        for on in [0u8, 255] {
            images.extend([on; 4]);
            images.extend([on; 4]);
            images.extend([0; 4]);
        }
        let set = ImageSet::new(images, vec![0, 0], [3, 2, 2], vec!["x".into()]).unwrap();
        let cov = rgb_covariance(&set).unwrap();
        let want = [[0.25, 0.25, 0.0], [0.25, 0.25, 0.0], [0.0, 0.0, 0.0]];
        for i in 0..3 {
            for j in 0..3 {
                assert!((cov[i][j] - want[i][j]).abs() < 1e-12, "{cov:?}");
            }
        }
        let e = check(cov);
        assert!((e.values[0] - 0.5).abs() < 1e-12);
        let p = column(&e, 0);
        let h = 0.5f64.sqrt();
        assert!((p[0].abs() - h).abs() < 1e-12 && (p[1].abs() - h).abs() < 1e-12);
        assert!(p[0] * p[1] > 0.0);
    }

    #[test]
    fn grey_sets_are_refused() {
        let set = ImageSet::new(vec![0; 4], vec![0], [1, 2, 2], vec!["x".into()]).unwrap();
        let msg = rgb_covariance(&set).unwrap_err().to_string();
        assert!(msg.contains("needs RGB images"), "{msg}");
    }
}
