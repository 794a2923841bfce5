//! Anchor box shapes by k-means on the training boxes' widths and heights, with 1 − IoU as the
//! distance (Redmon and Farhadi, *YOLO9000*): boxes are compared as if they shared a centre, so
//! the clusters follow shape and size, and large boxes do not dominate as they would under
//! Euclidean distance.

/// IoU of two boxes `(w, h)` placed on the same centre.
pub fn shape_iou(a: (f32, f32), b: (f32, f32)) -> f32 {
    let inter = a.0.min(b.0) * a.1.min(b.1);
    let union = a.0 * a.1 + b.0 * b.1 - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// The result of [`kmeans_anchors`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Anchors {
    /// `(w, h)` of each cluster centre (the median of its members), smallest area first.
    pub shapes: Vec<(f32, f32)>,
    /// Mean over the boxes of the IoU with their best anchor (YOLO9000's "Avg IOU").
    pub mean_iou: f32,
    pub iterations: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnchorError {
    #[error("k must be at least 1")]
    ZeroK,
    #[error(
        "{k} anchors need at least {k} boxes with a positive width and height, there are {boxes}"
    )]
    TooFewBoxes { k: usize, boxes: usize },
}

/// A small deterministic generator (SplitMix64), so the same boxes and seed give the same
/// anchors everywhere.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn median(mut v: Vec<f32>) -> f32 {
    v.sort_by(f32::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// k-means with d = 1 − IoU: k-means++ seeding, then alternate assignment and the medians of
/// each cluster (robust to a few odd boxes) until no box changes cluster. Boxes with a zero
/// side are left out.
pub fn kmeans_anchors(boxes: &[(f32, f32)], k: usize, seed: u64) -> Result<Anchors, AnchorError> {
    if k == 0 {
        return Err(AnchorError::ZeroK);
    }
    let boxes: Vec<(f32, f32)> = boxes
        .iter()
        .copied()
        .filter(|&(w, h)| w > 0.0 && h > 0.0 && w.is_finite() && h.is_finite())
        .collect();
    if boxes.len() < k {
        return Err(AnchorError::TooFewBoxes {
            k,
            boxes: boxes.len(),
        });
    }
    let mut rng = SplitMix(seed);
    let nearest = |b: (f32, f32), centres: &[(f32, f32)]| -> (usize, f32) {
        centres
            .iter()
            .enumerate()
            .map(|(i, &c)| (i, 1.0 - shape_iou(b, c)))
            .min_by(|x, y| x.1.total_cmp(&y.1))
            .expect("at least one centre")
    };
    // k-means++: each next centre drawn with probability proportional to d².
    let mut centres = vec![boxes[(rng.next() * boxes.len() as f64) as usize % boxes.len()]];
    while centres.len() < k {
        let d2: Vec<f64> = boxes
            .iter()
            .map(|&b| f64::from(nearest(b, &centres).1).powi(2))
            .collect();
        let total: f64 = d2.iter().sum();
        let pick = if total > 0.0 {
            let mut r = rng.next() * total;
            d2.iter()
                .position(|&d| {
                    r -= d;
                    r <= 0.0
                })
                .unwrap_or(boxes.len() - 1)
        } else {
            (rng.next() * boxes.len() as f64) as usize % boxes.len()
        };
        centres.push(boxes[pick]);
    }
    let mut assignment = vec![usize::MAX; boxes.len()];
    let mut iterations = 0;
    loop {
        iterations += 1;
        let mut changed = false;
        for (a, &b) in assignment.iter_mut().zip(&boxes) {
            let (c, _) = nearest(b, &centres);
            if *a != c {
                *a = c;
                changed = true;
            }
        }
        if !changed || iterations > 1000 {
            break;
        }
        for (c, centre) in centres.iter_mut().enumerate() {
            let members: Vec<(f32, f32)> = boxes
                .iter()
                .zip(&assignment)
                .filter(|(_, a)| **a == c)
                .map(|(b, _)| *b)
                .collect();
            if !members.is_empty() {
                *centre = (
                    median(members.iter().map(|m| m.0).collect()),
                    median(members.iter().map(|m| m.1).collect()),
                );
            }
        }
    }
    let mean_iou = boxes
        .iter()
        .map(|&b| 1.0 - nearest(b, &centres).1)
        .sum::<f32>()
        / boxes.len() as f32;
    centres.sort_by(|a, b| (a.0 * a.1).total_cmp(&(b.0 * b.1)));
    Ok(Anchors {
        shapes: centres,
        mean_iou,
        iterations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Boxes scattered around three shapes: tall, wide and large square.
    fn three_shapes() -> Vec<(f32, f32)> {
        let mut rng = SplitMix(3);
        let mut out = Vec::new();
        for &(w, h) in &[(10.0f32, 30.0f32), (40.0, 12.0), (80.0, 80.0)] {
            for _ in 0..40 {
                let j = |v: f32, r: &mut SplitMix| v * (0.9 + 0.2 * r.next() as f32);
                out.push((j(w, &mut rng), j(h, &mut rng)));
            }
        }
        out
    }

    #[test]
    fn finds_the_three_shapes() {
        let a = kmeans_anchors(&three_shapes(), 3, 0).unwrap();
        let expected = [(10.0, 30.0), (40.0, 12.0), (80.0, 80.0)];
        for e in expected {
            let best = a
                .shapes
                .iter()
                .map(|&s| shape_iou(s, e))
                .fold(0.0, f32::max);
            assert!(best > 0.9, "{e:?} not found in {:?}", a.shapes);
        }
        assert!(a.mean_iou > 0.85, "{}", a.mean_iou);
        // Sorted by area.
        assert!(
            a.shapes
                .windows(2)
                .all(|w| w[0].0 * w[0].1 <= w[1].0 * w[1].1)
        );
    }

    #[test]
    fn more_anchors_fit_better_and_bad_requests_are_errors() {
        let boxes = three_shapes();
        let one = kmeans_anchors(&boxes, 1, 0).unwrap().mean_iou;
        let three = kmeans_anchors(&boxes, 3, 0).unwrap().mean_iou;
        assert!(three > one + 0.2, "{one} → {three}");
        assert_eq!(
            kmeans_anchors(&boxes, 3, 5).unwrap(),
            kmeans_anchors(&boxes, 3, 5).unwrap()
        );
        assert_eq!(kmeans_anchors(&boxes, 0, 0), Err(AnchorError::ZeroK));
        assert!(matches!(
            kmeans_anchors(&[(1.0, 1.0), (0.0, 3.0)], 2, 0),
            Err(AnchorError::TooFewBoxes { boxes: 1, .. })
        ));
        assert!((shape_iou((2.0, 2.0), (1.0, 4.0)) - 2.0 / 6.0).abs() < 1e-6);
    }
}
