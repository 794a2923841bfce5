//! A network's score maps brought to the picture's size before each pixel's class is decided:
//! every map resized bilinearly with half-pixel centres (PyTorch's `interpolate(...,
//! mode="bilinear", align_corners=False)`, what torchvision's segmentation references do), then
//! the best class per pixel. Deciding first and enlarging the decision (nearest) would draw the
//! map's coarse grid as staircase edges; this way the edges follow the scores.

/// How a pixel's class comes from its scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decide {
    /// K maps: the class with the highest score.
    Argmax,
    /// One map: foreground (1) where the probability reaches `at`; `logits` says the values
    /// are logits, a sigmoid away from probabilities.
    Threshold { at: f32, logits: bool },
}

/// For each output index along an axis of `n_in -> n_out`: the two source indices and the
/// weight of the second.
fn axis(n_in: usize, n_out: usize) -> Vec<(usize, usize, f32)> {
    let scale = n_in as f64 / n_out as f64;
    let last = n_in.saturating_sub(1);
    (0..n_out)
        .map(|i| {
            let s = ((i as f64 + 0.5) * scale - 0.5).clamp(0.0, last as f64);
            let lo = s.floor() as usize;
            (lo, (lo + 1).min(last), (s - lo as f64) as f32)
        })
        .collect()
}

/// The class of every pixel of an `out = [height, width]` picture from `k` score maps of
/// `size = [h, w]`, row-major, map after map. `scores` must hold `k * h * w` values; `k` is at
/// most 256 (a class is one byte of the mask).
pub fn labels(
    scores: &[f32],
    k: usize,
    [h, w]: [usize; 2],
    [oh, ow]: [usize; 2],
    decide: Decide,
) -> Vec<u8> {
    debug_assert_eq!(scores.len(), k * h * w);
    let plane = h * w;
    let (rows, cols) = (axis(h, oh), axis(w, ow));
    let mut out = Vec::with_capacity(oh * ow);
    // One output row's maps interpolated between their two source rows, class after class.
    let mut row = vec![0f32; k * w];
    for &(y0, y1, wy) in &rows {
        for c in 0..k {
            let (a, b) = (&scores[c * plane + y0 * w..], &scores[c * plane + y1 * w..]);
            for x in 0..w {
                row[c * w + x] = a[x] + (b[x] - a[x]) * wy;
            }
        }
        for &(x0, x1, wx) in &cols {
            let at = |c: usize| {
                let r = &row[c * w..];
                r[x0] + (r[x1] - r[x0]) * wx
            };
            let class = match decide {
                Decide::Argmax => (0..k)
                    .map(at)
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .map_or(0, |(c, _)| c),
                Decide::Threshold { at: t, logits } => {
                    let v = at(0);
                    let p = if logits { 1.0 / (1.0 + (-v).exp()) } else { v };
                    usize::from(p >= t)
                }
            };
            out.push(class as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same resize written the slow way: each output pixel from the bilinear formula.
    fn naive(
        scores: &[f32],
        [h, w]: [usize; 2],
        [oh, ow]: [usize; 2],
        c: usize,
        y: usize,
        x: usize,
    ) -> f32 {
        let src = |i: usize, n_in: usize, n_out: usize| {
            (((i as f64 + 0.5) * n_in as f64 / n_out as f64) - 0.5).clamp(0.0, (n_in - 1) as f64)
        };
        let (sy, sx) = (src(y, h, oh), src(x, w, ow));
        let (y0, x0) = (sy.floor() as usize, sx.floor() as usize);
        let (y1, x1) = ((y0 + 1).min(h - 1), (x0 + 1).min(w - 1));
        let (fy, fx) = (sy - y0 as f64, sx - x0 as f64);
        let v = |yy: usize, xx: usize| f64::from(scores[c * h * w + yy * w + xx]);
        ((1.0 - fy) * ((1.0 - fx) * v(y0, x0) + fx * v(y0, x1))
            + fy * ((1.0 - fx) * v(y1, x0) + fx * v(y1, x1))) as f32
    }

    #[test]
    fn argmax_of_the_resized_maps_matches_the_formula() {
        let (k, h, w, oh, ow) = (3, 4, 5, 11, 13);
        let scores: Vec<f32> = (0..k * h * w)
            .map(|i| ((i * 37 % 17) as f32 * 0.7).sin())
            .collect();
        let got = labels(&scores, k, [h, w], [oh, ow], Decide::Argmax);
        for y in 0..oh {
            for x in 0..ow {
                let want = (0..k)
                    .max_by(|&a, &b| {
                        naive(&scores, [h, w], [oh, ow], a, y, x).total_cmp(&naive(
                            &scores,
                            [h, w],
                            [oh, ow],
                            b,
                            y,
                            x,
                        ))
                    })
                    .unwrap_or(0);
                assert_eq!(usize::from(got[y * ow + x]), want, "pixel ({y}, {x})");
            }
        }
    }

    #[test]
    fn a_threshold_splits_a_ramp_where_it_crosses() {
        // One map rising from 0 to 1 across 2 columns; enlarged to 8 columns, half-pixel
        // centres put 0.5 between output columns 3 and 4.
        let got = labels(
            &[0.0, 1.0],
            1,
            [1, 2],
            [1, 8],
            Decide::Threshold {
                at: 0.5,
                logits: false,
            },
        );
        assert_eq!(got, [0, 0, 0, 0, 1, 1, 1, 1]);
        // Logits: 0 is a probability of one half.
        let got = labels(
            &[-1.0, 1.0],
            1,
            [1, 2],
            [1, 4],
            Decide::Threshold {
                at: 0.5,
                logits: true,
            },
        );
        assert_eq!(got, [0, 0, 1, 1]);
    }

    #[test]
    fn the_same_size_keeps_each_pixels_own_decision() {
        let scores = [0.2, 0.9, 0.8, 0.1];
        let got = labels(&scores, 2, [1, 2], [1, 2], Decide::Argmax);
        assert_eq!(got, [1, 0]);
    }
}
