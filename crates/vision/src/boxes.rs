//! Bounding boxes: corner and centre formats, intersection over union, and non-max suppression
//! exactly as the course states it.
//!
//! Coordinates are `f32` in any consistent unit (pixels, or fractions of the image); `x` grows to
//! the right and `y` downwards. A box's area is `(x2 − x1)(y2 − y1)`: continuous coordinates,
//! no "+1" pixel convention.

use serde::{Deserialize, Serialize};

/// Why a box cannot be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BoxError {
    #[error("box {0:?} has a coordinate that is not a finite number")]
    NotFinite([f32; 4]),
    #[error("box {0:?} has a negative width or height (x2 < x1 or y2 < y1)")]
    NegativeSize([f32; 4]),
    #[error("box {bbox:?} lies outside the {width}x{height} image")]
    Outside {
        bbox: [f32; 4],
        width: f32,
        height: f32,
    },
}

/// A box by its corners: top-left `(x1, y1)`, bottom-right `(x2, y2)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

/// A box by its centre and size, as YOLO predicts them: `(b_x, b_y, b_w, b_h)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CenterBox {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

impl BBox {
    /// A checked box: finite coordinates, `x1 ≤ x2`, `y1 ≤ y2`.
    pub fn new(x1: f32, y1: f32, x2: f32, y2: f32) -> Result<Self, BoxError> {
        let c = [x1, y1, x2, y2];
        if c.iter().any(|v| !v.is_finite()) {
            return Err(BoxError::NotFinite(c));
        }
        if x2 < x1 || y2 < y1 {
            return Err(BoxError::NegativeSize(c));
        }
        Ok(Self { x1, y1, x2, y2 })
    }

    /// From COCO's `[x, y, width, height]` (top-left corner and size).
    pub fn from_xywh(x: f32, y: f32, w: f32, h: f32) -> Result<Self, BoxError> {
        Self::new(x, y, x + w, y + h)
    }

    pub fn width(&self) -> f32 {
        self.x2 - self.x1
    }

    pub fn height(&self) -> f32 {
        self.y2 - self.y1
    }

    pub fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }

    pub fn center(&self) -> CenterBox {
        CenterBox {
            x: (self.x1 + self.x2) / 2.0,
            y: (self.y1 + self.y2) / 2.0,
            w: self.width(),
            h: self.height(),
        }
    }

    /// Intersection over union; 0 when both boxes are empty.
    pub fn iou(&self, other: &BBox) -> f32 {
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }

    /// The box with both axes scaled (back from a network's input to the original picture).
    pub fn scale(&self, sx: f32, sy: f32) -> BBox {
        BBox {
            x1: self.x1 * sx,
            y1: self.y1 * sy,
            x2: self.x2 * sx,
            y2: self.y2 * sy,
        }
    }

    /// The part of the box inside a `width` x `height` image.
    pub fn clip(&self, width: f32, height: f32) -> BBox {
        BBox {
            x1: self.x1.clamp(0.0, width),
            y1: self.y1.clamp(0.0, height),
            x2: self.x2.clamp(0.0, width),
            y2: self.y2.clamp(0.0, height),
        }
    }

    /// An error unless the box lies within a `width` x `height` image (labels must).
    pub fn check_inside(&self, width: f32, height: f32) -> Result<(), BoxError> {
        if self.x1 < 0.0 || self.y1 < 0.0 || self.x2 > width || self.y2 > height {
            return Err(BoxError::Outside {
                bbox: [self.x1, self.y1, self.x2, self.y2],
                width,
                height,
            });
        }
        Ok(())
    }
}

impl CenterBox {
    pub fn corners(&self) -> BBox {
        BBox {
            x1: self.x - self.w / 2.0,
            y1: self.y - self.h / 2.0,
            x2: self.x + self.w / 2.0,
            y2: self.y + self.h / 2.0,
        }
    }
}

/// IoU of every box of `a` with every box of `b`: `[a.len()][b.len()]`.
pub fn pairwise_iou(a: &[BBox], b: &[BBox]) -> Vec<Vec<f32>> {
    a.iter()
        .map(|x| b.iter().map(|y| x.iou(y)).collect())
        .collect()
}

/// A scored, labelled box.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub bbox: BBox,
    pub score: f32,
    pub class: usize,
}

/// Non-max suppression over boxes of one class, as the course states it: drop every box with
/// score ≤ `score_threshold`; then, while boxes remain, output the one with the highest score
/// and drop the remaining boxes whose IoU with it is ≥ `iou_threshold`. Returns indices into
/// `boxes`, best first.
pub fn nms_indices(
    boxes: &[BBox],
    scores: &[f32],
    score_threshold: f32,
    iou_threshold: f32,
) -> Vec<usize> {
    let mut remaining: Vec<usize> = (0..boxes.len().min(scores.len()))
        .filter(|&i| scores[i] > score_threshold)
        .collect();
    // Highest score first; ties keep their input order, so the result is deterministic.
    remaining.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut kept = Vec::new();
    while let Some((&best, rest)) = remaining.split_first() {
        kept.push(best);
        remaining = rest
            .iter()
            .copied()
            .filter(|&i| boxes[i].iou(&boxes[best]) < iou_threshold)
            .collect();
    }
    kept
}

/// [`nms_indices`] run separately for each class: a box only suppresses boxes of its own class.
/// The result is sorted by score, best first.
pub fn nms_per_class(
    detections: &[Detection],
    score_threshold: f32,
    iou_threshold: f32,
) -> Vec<Detection> {
    let mut classes: Vec<usize> = detections.iter().map(|d| d.class).collect();
    classes.sort_unstable();
    classes.dedup();
    let mut out = Vec::new();
    for class in classes {
        let members: Vec<&Detection> = detections.iter().filter(|d| d.class == class).collect();
        let boxes: Vec<BBox> = members.iter().map(|d| d.bbox).collect();
        let scores: Vec<f32> = members.iter().map(|d| d.score).collect();
        out.extend(
            nms_indices(&boxes, &scores, score_threshold, iou_threshold)
                .into_iter()
                .map(|i| *members[i]),
        );
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x1: f32, y1: f32, x2: f32, y2: f32) -> BBox {
        BBox::new(x1, y1, x2, y2).unwrap()
    }

    #[test]
    fn iou_matches_the_course_example() {
        // The course's check: (2, 1, 4, 3) and (1, 2, 3, 4) overlap in a 1x1 square: 1 / 7.
        assert!((b(2.0, 1.0, 4.0, 3.0).iou(&b(1.0, 2.0, 3.0, 4.0)) - 1.0 / 7.0).abs() < 1e-6);
        // No overlap, touching edges, a box inside another, identical boxes.
        assert_eq!(b(1.0, 2.0, 3.0, 4.0).iou(&b(5.0, 6.0, 7.0, 8.0)), 0.0);
        assert_eq!(b(1.0, 1.0, 2.0, 2.0).iou(&b(2.0, 1.0, 3.0, 2.0)), 0.0);
        assert!((b(0.0, 0.0, 4.0, 4.0).iou(&b(1.0, 1.0, 3.0, 3.0)) - 0.25).abs() < 1e-6);
        assert_eq!(b(0.0, 0.0, 2.0, 3.0).iou(&b(0.0, 0.0, 2.0, 3.0)), 1.0);
        assert_eq!(b(1.0, 1.0, 1.0, 1.0).iou(&b(1.0, 1.0, 1.0, 1.0)), 0.0);
    }

    #[test]
    fn formats_convert_both_ways() {
        let c = CenterBox {
            x: 5.0,
            y: 4.0,
            w: 4.0,
            h: 2.0,
        };
        assert_eq!(c.corners(), b(3.0, 3.0, 7.0, 5.0));
        assert_eq!(c.corners().center(), c);
        assert_eq!(
            BBox::from_xywh(1.0, 2.0, 3.0, 4.0).unwrap(),
            b(1.0, 2.0, 4.0, 6.0)
        );
        assert_eq!(b(1.0, 2.0, 3.0, 4.0).scale(2.0, 0.5), b(2.0, 1.0, 6.0, 2.0));
        assert_eq!(
            b(-1.0, 2.0, 30.0, 4.0).clip(20.0, 10.0),
            b(0.0, 2.0, 20.0, 4.0)
        );
    }

    #[test]
    fn bad_boxes_are_errors() {
        assert!(matches!(
            BBox::new(3.0, 0.0, 1.0, 1.0),
            Err(BoxError::NegativeSize(_))
        ));
        assert!(matches!(
            BBox::new(0.0, f32::NAN, 1.0, 1.0),
            Err(BoxError::NotFinite(_))
        ));
        assert!(BBox::from_xywh(0.0, 0.0, -1.0, 1.0).is_err());
        assert!(b(0.0, 0.0, 11.0, 5.0).check_inside(10.0, 10.0).is_err());
        assert!(b(0.0, 0.0, 10.0, 10.0).check_inside(10.0, 10.0).is_ok());
    }

    /// NMS written the slow, literal way: repeatedly scan for the best remaining box.
    fn naive_nms(boxes: &[BBox], scores: &[f32], st: f32, it: f32) -> Vec<usize> {
        let mut alive: Vec<bool> = scores.iter().map(|&s| s > st).collect();
        let mut out = Vec::new();
        loop {
            let mut best: Option<usize> = None;
            for i in 0..boxes.len() {
                if alive[i] && best.is_none_or(|b| scores[i] > scores[b]) {
                    best = Some(i);
                }
            }
            let Some(best) = best else { return out };
            out.push(best);
            alive[best] = false;
            for i in 0..boxes.len() {
                if alive[i] && boxes[i].iou(&boxes[best]) >= it {
                    alive[i] = false;
                }
            }
        }
    }

    #[test]
    fn nms_keeps_the_best_of_each_cluster() {
        let boxes = [
            b(0.0, 0.0, 10.0, 10.0),
            b(1.0, 1.0, 11.0, 11.0),   // IoU 0.68 with the first
            b(20.0, 20.0, 30.0, 30.0), // separate
            b(0.0, 0.0, 10.0, 10.0),   // a duplicate with a low score
            b(21.0, 21.0, 29.0, 29.0), // inside the third: IoU 0.64
        ];
        let scores = [0.9, 0.95, 0.8, 0.3, 0.5];
        assert_eq!(nms_indices(&boxes, &scores, 0.6, 0.5), vec![1, 2]);
        // A lower score threshold lets nothing new through: the rest overlap kept boxes.
        assert_eq!(nms_indices(&boxes, &scores, 0.0, 0.5), vec![1, 2]);
        // With a high IoU threshold the overlapping boxes survive, but not the exact duplicate.
        assert_eq!(nms_indices(&boxes, &scores, 0.0, 0.7), vec![1, 0, 2, 4]);
        assert!(nms_indices(&[], &[], 0.5, 0.5).is_empty());
    }

    #[test]
    fn nms_agrees_with_the_literal_version_on_random_boxes() {
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        for _ in 0..50 {
            let n = 1 + (next() * 30.0) as usize;
            let boxes: Vec<BBox> = (0..n)
                .map(|_| {
                    let (x, y) = (next() * 50.0, next() * 50.0);
                    b(x, y, x + 5.0 + next() * 20.0, y + 5.0 + next() * 20.0)
                })
                .collect();
            let scores: Vec<f32> = (0..n).map(|_| next()).collect();
            for (st, it) in [(0.3, 0.5), (0.0, 0.3), (0.6, 0.7)] {
                assert_eq!(
                    nms_indices(&boxes, &scores, st, it),
                    naive_nms(&boxes, &scores, st, it)
                );
            }
        }
    }

    #[test]
    fn nms_per_class_does_not_suppress_across_classes() {
        let d = |x: f32, score: f32, class: usize| Detection {
            bbox: b(x, 0.0, x + 10.0, 10.0),
            score,
            class,
        };
        let dets = [
            d(0.0, 0.9, 0),
            d(1.0, 0.8, 1),
            d(2.0, 0.7, 0),
            d(50.0, 0.6, 1),
        ];
        let kept = nms_per_class(&dets, 0.5, 0.5);
        assert_eq!(kept, vec![dets[0], dets[1], dets[3]]);
        assert!(nms_per_class(&[], 0.5, 0.5).is_empty());
    }
}
