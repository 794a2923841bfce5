//! Matrix products on slices through the `gemm` crate (flex's own GEMM), called directly: flex's
//! `float_matmul` allocates its output twice (the second time to re-align it, with a copy) and
//! needs its operands as tensors, so every product cost an im2col-sized allocation, a copy and
//! a zero fill besides the arithmetic (`perf`, BENCHMARKS issue 10).

/// A read-only matrix view: element `(i, j)` is `data[i·rs + j·cs]`.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    /// A row-major `rows x cols` matrix.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of this view (no copy).
    pub fn t(self) -> Self {
        Self {
            data: self.data,
            rs: self.cs,
            cs: self.rs,
        }
    }

    /// Whether every element of an `m x n` view lies inside `data`.
    fn holds(&self, m: usize, n: usize) -> bool {
        m == 0 || n == 0 || (m - 1) * self.rs + (n - 1) * self.cs < self.data.len()
    }
}

/// Products below this many multiply-adds run on the calling thread (flex's threshold).
pub(crate) const PARALLEL_MACS: usize = 192 * 192 * 192;

/// `dst (+)= a · b` for `a: m x k`, `b: k x n`, `dst` row-major `m x n` with row stride
/// `dst_rs`: accumulates into `dst` when `accumulate`, else overwrites it without reading it.
///
/// # Panics
/// If a view or `dst` is too short for its shape.
#[allow(unsafe_code)] // the crate's only unsafe: see the SAFETY note
pub(crate) fn gemm(
    [m, n, k]: [usize; 3],
    dst: &mut [f32],
    dst_rs: usize,
    accumulate: bool,
    a: View,
    b: View,
) {
    assert!(
        a.holds(m, k)
            && b.holds(k, n)
            && (m == 0 || n == 0 || (m - 1) * dst_rs + n <= dst.len())
            && (m <= 1 || dst_rs >= n),
        "gemm: an operand is shorter than its {m}x{k} x {k}x{n} shape"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for row in dst.chunks_mut(dst_rs).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    let parallelism = if m.saturating_mul(n).saturating_mul(k) >= PARALLEL_MACS {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // Strides fit in isize: every index is below a slice's length.
    let s = |v: usize| v as isize;
    // SAFETY: the assert above keeps every element of `a`, `b` and `dst` that the product
    // touches inside its slice; `dst` is borrowed mutably, so nothing else reads or writes it,
    // and with `accumulate` false the crate writes `dst` without reading it.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            s(dst_rs),
            accumulate,
            a.data.as_ptr(),
            s(a.cs),
            s(a.rs),
            b.data.as_ptr(),
            s(b.cs),
            s(b.rs),
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook triple loop.
    fn naive([m, n, k]: [usize; 3], a: View, b: View) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k)
                    .map(|p| a.data[i * a.rs + p * a.cs] * b.data[p * b.rs + j * b.cs])
                    .sum();
            }
        }
        out
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| ((i.wrapping_mul(2654435761) ^ seed) % 17) as f32 - 8.0)
            .collect()
    }

    #[test]
    fn products_match_the_triple_loop_in_every_orientation() {
        for [m, n, k] in [[3, 5, 4], [1, 7, 9], [40, 33, 70], [200, 190, 200]] {
            let (a, b) = (values(m * k, 1), values(k * n, 2));
            let a_t: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
            let b_t: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            let expected = naive([m, n, k], View::rows(&a, k), View::rows(&b, n));
            for (av, bv) in [
                (View::rows(&a, k), View::rows(&b, n)),
                (View::rows(&a_t, m).t(), View::rows(&b_t, k).t()),
            ] {
                let mut dst = vec![f32::NAN; m * n];
                gemm([m, n, k], &mut dst, n, false, av, bv);
                assert_eq!(dst, expected, "{m}x{n}x{k}");
                // Accumulating adds a second product.
                gemm([m, n, k], &mut dst, n, true, av, bv);
                let doubled: Vec<f32> = expected.iter().map(|v| 2.0 * v).collect();
                assert_eq!(dst, doubled, "{m}x{n}x{k} accumulated");
            }
        }
    }

    #[test]
    #[should_panic(expected = "shorter than")]
    fn short_operands_are_refused() {
        let a = vec![1.0; 5];
        let mut dst = vec![0.0; 4];
        gemm(
            [2, 2, 3],
            &mut dst,
            2,
            false,
            View::rows(&a, 3),
            View::rows(&a, 2),
        );
    }
}
