//! YOLO (v2) output decoding: an S×S grid, A anchors per cell, and per anchor
//! `(t_x, t_y, t_w, t_h, t_o, class logits…)`. The box centre is the cell's corner plus
//! `σ(t_x), σ(t_y)` cells, its size the anchor's times `e^{t_w}, e^{t_h}`, the objectness
//! `σ(t_o)`; class probabilities are the softmax of the logits (none for a one-class model),
//! and a box scores objectness × probability for each class (Redmon and Farhadi, *YOLO9000*,
//! 2017). As in darknet, a box is a detection of every class whose score passes the threshold,
//! not only of its most likely one: at a high threshold that is at most one class (the
//! probabilities sum to 1), at mAP's low one a box the network is unsure about is ranked as a
//! weaker detection of each candidate class instead of a miss for all but one.

use crate::boxes::{BBox, CenterBox, Detection, nms_per_class};

/// What a YOLO head predicts per cell.
#[derive(Debug, Clone, PartialEq)]
pub struct YoloHead {
    /// Anchor `(width, height)` in grid cells.
    pub anchors: Vec<(f32, f32)>,
    /// Classes with a score each; 0 for a one-class detector that predicts objectness only
    /// (face-api's Tiny Face Detector).
    pub classes: usize,
}

/// Why an output cannot be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "a YOLO output for {anchors} anchors and {classes} classes needs {expected} channels per cell, this one has {got}"
)]
pub struct YoloShapeError {
    pub anchors: usize,
    pub classes: usize,
    pub expected: usize,
    pub got: usize,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl YoloHead {
    /// Values per anchor: the box, the objectness and the class logits.
    pub fn per_anchor(&self) -> usize {
        5 + self.classes
    }

    /// Why `len` numbers are not an output of this head on a `grid`.
    fn shape_error(&self, len: usize, grid: [usize; 2]) -> YoloShapeError {
        YoloShapeError {
            anchors: self.anchors.len(),
            classes: self.classes,
            expected: self.anchors.len() * self.per_anchor(),
            got: len.checked_div(grid[0] * grid[1]).unwrap_or(0),
        }
    }

    /// Whether `len` numbers are an output `[A (5 + C), S_h, S_w]` of this head on `grid`.
    fn check(&self, len: usize, grid: [usize; 2]) -> Result<(), YoloShapeError> {
        let cells = grid[0] * grid[1];
        if cells == 0 || len != self.anchors.len() * self.per_anchor() * cells {
            return Err(self.shape_error(len, grid));
        }
        Ok(())
    }

    /// The boxes of one image's output `[A (5 + C), S_h, S_w]` (channels first, anchor-major),
    /// one detection per class whose score is above `score_threshold`, in fractions of the
    /// network input (0–1).
    pub fn decode(
        &self,
        output: &[f32],
        grid: [usize; 2],
        score_threshold: f32,
    ) -> Result<Vec<Detection>, YoloShapeError> {
        self.check(output.len(), grid)?;
        let [gh, gw] = grid;
        let at = |channel: usize, r: usize, c: usize| output[(channel * gh + r) * gw + c];
        let mut out = Vec::new();
        for (a, &(aw, ah)) in self.anchors.iter().enumerate() {
            let base = a * self.per_anchor();
            for r in 0..gh {
                for c in 0..gw {
                    let objectness = sigmoid(at(base + 4, r, c));
                    // Scores first: most anchors score below the threshold for every class.
                    let scores: Vec<(usize, f32)> = if self.classes == 0 {
                        vec![(0, objectness)]
                    } else {
                        let logits: Vec<f32> =
                            (0..self.classes).map(|k| at(base + 5 + k, r, c)).collect();
                        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                        let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
                        logits
                            .iter()
                            .map(|l| objectness * (l - max).exp() / sum)
                            .enumerate()
                            .collect()
                    };
                    // NaN scores fall out here too.
                    let passes = |&(_, s): &(usize, f32)| s > score_threshold;
                    if !scores.iter().any(passes) {
                        continue;
                    }
                    let b = CenterBox {
                        x: (c as f32 + sigmoid(at(base, r, c))) / gw as f32,
                        y: (r as f32 + sigmoid(at(base + 1, r, c))) / gh as f32,
                        w: at(base + 2, r, c).exp() * aw / gw as f32,
                        h: at(base + 3, r, c).exp() * ah / gh as f32,
                    };
                    if [b.x, b.y, b.w, b.h].iter().all(|v| v.is_finite()) {
                        out.extend(scores.into_iter().filter(passes).map(|(class, score)| {
                            Detection {
                                bbox: b.corners(),
                                score,
                                class,
                            }
                        }));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Turns the output of a left-right mirrored picture, `[A (5 + C), S_h, S_w]`, into an output
    /// for the picture itself: columns reversed and `t_x` negated (`σ(−t) = 1 − σ(t)` puts the
    /// centre at the mirrored offset in the mirrored cell); sizes, objectness and classes keep.
    /// Anchors need no change, a mirror keeps widths and heights. Averaging it with the
    /// picture's own output is flip test-time augmentation.
    pub fn unmirror(&self, output: &mut [f32], grid: [usize; 2]) -> Result<(), YoloShapeError> {
        self.check(output.len(), grid)?;
        let [gh, gw] = grid;
        for (channel, plane) in output.chunks_mut(gh * gw).enumerate() {
            let is_x = channel % self.per_anchor() == 0;
            for row in plane.chunks_mut(gw) {
                row.reverse();
                if is_x {
                    row.iter_mut().for_each(|v| *v = -*v);
                }
            }
        }
        Ok(())
    }

    /// Rewrites this head's output `[A (5 + C), S_h, S_w]` so that `to` (the same number of
    /// anchors and classes, other anchor shapes) decodes the same boxes: `t_w += ln(a_w / b_w)`,
    /// `t_h += ln(a_h / b_h)` per anchor. Outputs of detectors with different k-means anchors
    /// can then be averaged (an ensemble).
    pub fn rebase(
        &self,
        output: &mut [f32],
        grid: [usize; 2],
        to: &YoloHead,
    ) -> Result<(), YoloShapeError> {
        self.check(output.len(), grid)?;
        if to.anchors.len() != self.anchors.len() || to.classes != self.classes {
            return Err(to.shape_error(output.len(), grid));
        }
        if to.anchors == self.anchors {
            return Ok(()); // every shift would be ln(1) = 0
        }
        let plane = grid[0] * grid[1];
        for (a, (&(aw, ah), &(bw, bh))) in self.anchors.iter().zip(&to.anchors).enumerate() {
            let base = a * self.per_anchor();
            for (offset, shift) in [(2, (aw / bw).ln()), (3, (ah / bh).ln())] {
                let start = (base + offset) * plane;
                output[start..start + plane]
                    .iter_mut()
                    .for_each(|t| *t += shift);
            }
        }
        Ok(())
    }

    /// For every anchor of every cell (`[A, S_h, S_w]` order), the best IoU of the box it
    /// predicts with any of `truth` (corner boxes as fractions of the input): YOLOv2's and v3's
    /// "ignore" test, which spares anchors already predicting an object well (other than the
    /// one responsible for it) the no-object penalty.
    pub fn best_overlaps(
        &self,
        output: &[f32],
        grid: [usize; 2],
        truth: &[BBox],
    ) -> Result<Vec<f32>, YoloShapeError> {
        self.check(output.len(), grid)?;
        let [gh, gw] = grid;
        let at = |channel: usize, r: usize, c: usize| output[(channel * gh + r) * gw + c];
        let mut out = Vec::with_capacity(self.anchors.len() * gh * gw);
        for (a, &(aw, ah)) in self.anchors.iter().enumerate() {
            let base = a * self.per_anchor();
            for r in 0..gh {
                for c in 0..gw {
                    let b = CenterBox {
                        x: (c as f32 + sigmoid(at(base, r, c))) / gw as f32,
                        y: (r as f32 + sigmoid(at(base + 1, r, c))) / gh as f32,
                        w: at(base + 2, r, c).exp() * aw / gw as f32,
                        h: at(base + 3, r, c).exp() * ah / gh as f32,
                    }
                    .corners();
                    let best = truth.iter().map(|t| b.iou(t)).fold(0.0f32, f32::max);
                    // A non-finite prediction overlaps nothing.
                    out.push(if best.is_finite() { best } else { 0.0 });
                }
            }
        }
        Ok(out)
    }

    /// [`decode`](Self::decode), then per-class non-max suppression.
    pub fn detect(
        &self,
        output: &[f32],
        grid: [usize; 2],
        score_threshold: f32,
        iou_threshold: f32,
    ) -> Result<Vec<Detection>, YoloShapeError> {
        let boxes = self.decode(output, grid, score_threshold)?;
        Ok(nms_per_class(&boxes, score_threshold, iou_threshold))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output of zeros but for one anchor of one cell.
    fn output(
        head: &YoloHead,
        grid: usize,
        anchor: usize,
        cell: (usize, usize),
        t: &[f32],
    ) -> Vec<f32> {
        let channels = head.anchors.len() * head.per_anchor();
        let mut out = vec![-10.0; channels * grid * grid];
        for (k, &v) in t.iter().enumerate() {
            out[((anchor * head.per_anchor() + k) * grid + cell.0) * grid + cell.1] = v;
        }
        out
    }

    #[test]
    fn best_overlaps_find_the_anchor_predicting_an_object() {
        let head = YoloHead {
            anchors: vec![(1.0, 1.0), (2.0, 4.0)],
            classes: 0,
        };
        // Anchor 1 of cell (1, 2) in a 4x4 grid predicts centre (2.5, 1.5) cells, size 2x4
        // cells: the box x 1.5..3.5, y -0.5..3.5 cells, in fractions of the grid.
        let out = output(&head, 4, 1, (1, 2), &[0.0, 0.0, 0.0, 0.0, 0.0]);
        let exact = BBox::new(1.5 / 4.0, -0.5 / 4.0, 3.5 / 4.0, 3.5 / 4.0).unwrap();
        let half = BBox::new(1.5 / 4.0, -0.5 / 4.0, 2.5 / 4.0, 3.5 / 4.0).unwrap();
        let best = head.best_overlaps(&out, [4, 4], &[half, exact]).unwrap();
        assert_eq!(best.len(), 2 * 16);
        assert!((best[16 + 4 + 2] - 1.0).abs() < 1e-6);
        // Every other anchor predicts a vanishing box (e^-10 of its anchor) near its corner.
        assert!(best.iter().enumerate().all(|(i, &v)| i == 22 || v < 1e-3));
        assert!(
            head.best_overlaps(&out, [4, 4], &[])
                .unwrap()
                .iter()
                .all(|&v| v == 0.0)
        );
        assert!(head.best_overlaps(&out[1..], [4, 4], &[exact]).is_err());
    }

    #[test]
    fn decodes_the_cell_offset_and_anchor_scale() {
        let head = YoloHead {
            anchors: vec![(1.0, 1.0), (2.0, 4.0)],
            classes: 3,
        };
        // Cell row 1, column 2 of a 4x4 grid; σ(0) = 0.5: centre (2.5, 1.5) cells; e^0 times
        // the anchor (2, 4) cells; objectness σ(3) and class 1 the most likely.
        let out = output(
            &head,
            4,
            1,
            (1, 2),
            &[0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 2.0, 0.0],
        );
        let dets = head.decode(&out, [4, 4], 0.3).unwrap();
        assert_eq!(dets.len(), 1);
        let d = dets[0];
        let c = d.bbox.center();
        assert!((c.x - 2.5 / 4.0).abs() < 1e-6 && (c.y - 1.5 / 4.0).abs() < 1e-6);
        assert!((c.w - 0.5).abs() < 1e-6 && (c.h - 1.0).abs() < 1e-6);
        assert_eq!(d.class, 1);
        let p = 2f32.exp() / (2.0 + 2f32.exp());
        assert!((d.score - sigmoid(3.0) * p).abs() < 1e-6);
    }

    #[test]
    fn unmirroring_a_mirrored_output_mirrors_its_boxes() {
        let head = YoloHead {
            anchors: vec![(1.0, 2.0), (3.0, 1.5)],
            classes: 2,
        };
        let (gh, gw) = (3, 4);
        let n = 2 * head.per_anchor() * gh * gw;
        // A deterministic jumble of box offsets, sizes and (mostly confident) objectness.
        let out: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 4.0)
            .collect();
        let mut back = out.clone();
        head.unmirror(&mut back, [gh, gw]).unwrap();
        let key = |d: &Detection| (d.class, (d.score * 1e6) as i64);
        let mut original = head.decode(&out, [gh, gw], 0.05).unwrap();
        let mut mirrored = head.decode(&back, [gh, gw], 0.05).unwrap();
        assert!(!original.is_empty());
        assert_eq!(original.len(), mirrored.len());
        original.sort_by_key(key);
        mirrored.sort_by_key(key);
        for (a, b) in original.iter().zip(&mirrored) {
            assert_eq!((a.class, a.score), (b.class, b.score));
            for (u, v) in [(a.bbox.x1, 1.0 - b.bbox.x2), (a.bbox.x2, 1.0 - b.bbox.x1)] {
                assert!((u - v).abs() < 1e-5, "{a:?} {b:?}");
            }
            assert!((a.bbox.y1 - b.bbox.y1).abs() < 1e-6 && (a.bbox.y2 - b.bbox.y2).abs() < 1e-6);
        }
        // Twice is the identity; a wrong size is an error.
        head.unmirror(&mut back, [gh, gw]).unwrap();
        assert_eq!(back, out);
        assert!(head.unmirror(&mut back[1..], [gh, gw]).is_err());
    }

    #[test]
    fn a_rebased_output_decodes_the_same_boxes_with_other_anchors() {
        let head = YoloHead {
            anchors: vec![(1.0, 2.0), (3.0, 1.5)],
            classes: 2,
        };
        let other = YoloHead {
            anchors: vec![(1.25, 1.5), (2.0, 2.5)],
            classes: 2,
        };
        let n = 2 * head.per_anchor() * 9;
        let out: Vec<f32> = (0..n).map(|i| ((i * 29 % 17) as f32 - 8.0) / 3.0).collect();
        let mut moved = out.clone();
        head.rebase(&mut moved, [3, 3], &other).unwrap();
        let a = head.decode(&out, [3, 3], 0.05).unwrap();
        let b = other.decode(&moved, [3, 3], 0.05).unwrap();
        assert!(!a.is_empty());
        assert_eq!(a.len(), b.len());
        for (a, b) in a.iter().zip(&b) {
            assert_eq!((a.class, a.score), (b.class, b.score));
            let (p, q) = (a.bbox, b.bbox);
            for (u, v) in [(p.x1, q.x1), (p.y1, q.y1), (p.x2, q.x2), (p.y2, q.y2)] {
                assert!((u - v).abs() < 1e-5, "{p:?} {q:?}");
            }
        }
        let three = YoloHead {
            anchors: vec![(1.0, 1.0); 3],
            classes: 2,
        };
        assert!(head.rebase(&mut moved, [3, 3], &three).is_err());
        assert!(head.rebase(&mut moved[1..], [3, 3], &other).is_err());
    }

    #[test]
    fn an_unsure_box_is_a_detection_of_each_likely_class() {
        let head = YoloHead {
            anchors: vec![(1.0, 1.0)],
            classes: 3,
        };
        // Objectness σ(4); classes 0 and 2 equally likely (0.4683 each), class 1 not (0.0634).
        let out = output(
            &head,
            2,
            0,
            (1, 0),
            &[0.0, 0.0, 0.0, 0.0, 4.0, 2.0, -0.0, 2.0],
        );
        let z = 2.0 * 2f32.exp() + 1.0;
        let expect = |k: usize| sigmoid(4.0) * if k == 1 { 1.0 } else { 2f32.exp() } / z;
        for threshold in [0.01, 0.05] {
            let dets = head.detect(&out, [2, 2], threshold, 0.4).unwrap();
            let mut classes: Vec<usize> = dets.iter().map(|d| d.class).collect();
            classes.sort();
            assert_eq!(classes, vec![0, 1, 2], "threshold {threshold}");
            for d in &dets {
                assert_eq!(d.bbox, dets[0].bbox);
                assert!((d.score - expect(d.class)).abs() < 1e-6);
            }
        }
        // Above class 1's score (0.062) only the two likely classes remain; above 0.5 none.
        let dets = head.detect(&out, [2, 2], 0.1, 0.4).unwrap();
        assert_eq!(dets.len(), 2);
        assert!(dets.iter().all(|d| d.class != 1));
        assert!(head.detect(&out, [2, 2], 0.5, 0.4).unwrap().is_empty());
    }

    #[test]
    fn one_class_heads_score_by_objectness_and_bad_shapes_are_errors() {
        let head = YoloHead {
            anchors: vec![(1.0, 1.0)],
            classes: 0,
        };
        let out = output(&head, 2, 0, (0, 0), &[0.0, 0.0, 0.0, 0.0, 1.0]);
        let dets = head.detect(&out, [2, 2], 0.5, 0.4).unwrap();
        assert_eq!(dets.len(), 1);
        assert!((dets[0].score - sigmoid(1.0)).abs() < 1e-6);
        assert!(head.decode(&out[1..], [2, 2], 0.5).is_err());
        assert!(head.decode(&[], [0, 0], 0.5).is_err());
        // Nothing above the threshold: no boxes, no error.
        assert!(head.detect(&out, [2, 2], 0.99, 0.4).unwrap().is_empty());
    }
}

/// An object to learn: its box in fractions of the input (0–1) and its class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Object {
    pub bbox: CenterBox,
    pub class: usize,
}

/// Dense training targets for one image, laid out `[anchor][row][column]`.
#[derive(Debug, Clone, PartialEq)]
pub struct YoloTargets {
    pub grid: [usize; 2],
    /// 1 where an object is assigned to the anchor of the cell, else 0.
    pub responsible: Vec<f32>,
    /// The centre's offset in its cell, `(x, y)` in [0, 1): what σ(t_x), σ(t_y) should give.
    pub offsets: Vec<[f32; 2]>,
    /// `(ln(w / anchor_w), ln(h / anchor_h))`: what t_w, t_h should give.
    pub log_sizes: Vec<[f32; 2]>,
    pub classes: Vec<usize>,
}

/// Why an object cannot be a training target.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TargetError {
    #[error("object {index}: its centre ({x}, {y}) is outside the image (fractions 0-1)")]
    Outside { index: usize, x: f32, y: f32 },
    #[error(
        "object {index}: its width and height must be positive fractions of the image, not {w} x {h}"
    )]
    Size { index: usize, w: f32, h: f32 },
    #[error("object {index}: class {class} is not below the head's {classes} classes")]
    Class {
        index: usize,
        class: usize,
        classes: usize,
    },
}

impl YoloHead {
    /// YOLOv2's assignment: each object goes to the cell holding its centre and, there, to the
    /// anchor whose shape has the highest IoU with the object's (both centred). When two objects
    /// claim the same cell and anchor the later one wins.
    pub fn targets(
        &self,
        objects: &[Object],
        grid: [usize; 2],
    ) -> Result<YoloTargets, TargetError> {
        let [gh, gw] = grid;
        let n = self.anchors.len() * gh * gw;
        let mut t = YoloTargets {
            grid,
            responsible: vec![0.0; n],
            offsets: vec![[0.0; 2]; n],
            log_sizes: vec![[0.0; 2]; n],
            classes: vec![0; n],
        };
        for (index, o) in objects.iter().enumerate() {
            let b = o.bbox;
            if !(0.0..1.0).contains(&b.x) || !(0.0..1.0).contains(&b.y) {
                return Err(TargetError::Outside {
                    index,
                    x: b.x,
                    y: b.y,
                });
            }
            if !(b.w > 0.0 && b.h > 0.0 && b.w.is_finite() && b.h.is_finite()) {
                return Err(TargetError::Size {
                    index,
                    w: b.w,
                    h: b.h,
                });
            }
            if self.classes > 0 && o.class >= self.classes {
                return Err(TargetError::Class {
                    index,
                    class: o.class,
                    classes: self.classes,
                });
            }
            let (gx, gy) = (b.x * gw as f32, b.y * gh as f32);
            let (col, row) = (gx.floor() as usize, gy.floor() as usize);
            // Object size in cells, compared with the anchors (also in cells).
            let size = (b.w * gw as f32, b.h * gh as f32);
            let anchor = self
                .anchors
                .iter()
                .enumerate()
                .map(|(a, &shape)| (a, crate::anchors::shape_iou(size, shape)))
                .max_by(|x, y| x.1.total_cmp(&y.1))
                .map_or(0, |(a, _)| a);
            let at = (anchor * gh + row) * gw + col;
            let (aw, ah) = self.anchors[anchor];
            t.responsible[at] = 1.0;
            t.offsets[at] = [gx - col as f32, gy - row as f32];
            t.log_sizes[at] = [(size.0 / aw).ln(), (size.1 / ah).ln()];
            t.classes[at] = o.class;
        }
        Ok(t)
    }
}

#[cfg(test)]
mod target_tests {
    use super::*;

    #[test]
    fn an_object_goes_to_its_centre_cell_and_best_anchor() {
        let head = YoloHead {
            anchors: vec![(1.0, 3.0), (3.0, 1.0)],
            classes: 4,
        };
        // A wide box (1.5 x 0.5 cells) centred in row 2, column 1 of a 4x4 grid.
        let o = Object {
            bbox: CenterBox {
                x: 0.3,
                y: 0.6,
                w: 0.375,
                h: 0.125,
            },
            class: 3,
        };
        let t = head.targets(&[o], [4, 4]).unwrap();
        let at = (4 + 2) * 4 + 1; // anchor 1 (wide), row 2, column 1
        assert_eq!(t.responsible.iter().filter(|&&r| r == 1.0).count(), 1);
        assert_eq!(t.responsible[at], 1.0);
        assert!((t.offsets[at][0] - 0.2).abs() < 1e-5 && (t.offsets[at][1] - 0.4).abs() < 1e-5);
        assert!((t.log_sizes[at][0] - (1.5f32 / 3.0).ln()).abs() < 1e-5);
        assert!((t.log_sizes[at][1] - (0.5f32 / 1.0).ln()).abs() < 1e-5);
        assert_eq!(t.classes[at], 3);
        // Decoding the ideal outputs gives the box back.
        let mut out = vec![-20.0f32; 2 * 9 * 16];
        let logit = |p: f32| (p / (1.0 - p)).ln();
        let set = |out: &mut Vec<f32>, k: usize, v: f32| out[((9 + k) * 4 + 2) * 4 + 1] = v;
        set(&mut out, 0, logit(0.2));
        set(&mut out, 1, logit(0.4));
        set(&mut out, 2, t.log_sizes[at][0]);
        set(&mut out, 3, t.log_sizes[at][1]);
        set(&mut out, 4, 20.0);
        set(&mut out, 5 + 3, 20.0);
        let d = head.detect(&out, [4, 4], 0.5, 0.5).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].class, 3);
        assert!(d[0].bbox.iou(&o.bbox.corners()) > 0.999, "{:?}", d[0].bbox);
    }

    #[test]
    fn bad_objects_are_errors() {
        let head = YoloHead {
            anchors: vec![(1.0, 1.0)],
            classes: 2,
        };
        let o = |x: f32, w: f32, class: usize| Object {
            bbox: CenterBox {
                x,
                y: 0.5,
                w,
                h: 0.1,
            },
            class,
        };
        assert!(matches!(
            head.targets(&[o(1.2, 0.1, 0)], [2, 2]),
            Err(TargetError::Outside { .. })
        ));
        assert!(matches!(
            head.targets(&[o(0.5, -0.1, 0)], [2, 2]),
            Err(TargetError::Size { .. })
        ));
        assert!(matches!(
            head.targets(&[o(0.5, 0.1, 2)], [2, 2]),
            Err(TargetError::Class { .. })
        ));
        assert_eq!(head.targets(&[], [2, 2]).unwrap().responsible, vec![0.0; 4]);
    }
}
