//! YOLO (v2) output decoding: an S×S grid, A anchors per cell, and per anchor
//! `(t_x, t_y, t_w, t_h, t_o, class logits…)`. The box centre is the cell's corner plus
//! `σ(t_x), σ(t_y)` cells, its size the anchor's times `e^{t_w}, e^{t_h}`, the objectness
//! `σ(t_o)`; class probabilities are the softmax of the logits (none for a one-class model),
//! and a box's score is objectness × its best class probability (Redmon and Farhadi, *YOLO9000*,
//! 2017).

use crate::boxes::{CenterBox, Detection, nms_per_class};

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

    /// The boxes of one image's output `[A (5 + C), S_h, S_w]` (channels first, anchor-major)
    /// whose score is above `score_threshold`, in fractions of the network input (0–1).
    pub fn decode(
        &self,
        output: &[f32],
        grid: [usize; 2],
        score_threshold: f32,
    ) -> Result<Vec<Detection>, YoloShapeError> {
        let [gh, gw] = grid;
        let cells = gh * gw;
        let channels = self.anchors.len() * self.per_anchor();
        if cells == 0 || output.len() != channels * cells {
            return Err(YoloShapeError {
                anchors: self.anchors.len(),
                classes: self.classes,
                expected: channels,
                got: output.len().checked_div(cells).unwrap_or(0),
            });
        }
        let at = |channel: usize, r: usize, c: usize| output[(channel * gh + r) * gw + c];
        let mut out = Vec::new();
        for (a, &(aw, ah)) in self.anchors.iter().enumerate() {
            let base = a * self.per_anchor();
            for r in 0..gh {
                for c in 0..gw {
                    let objectness = sigmoid(at(base + 4, r, c));
                    let (class, probability) = if self.classes == 0 {
                        (0, 1.0)
                    } else {
                        let logits: Vec<f32> =
                            (0..self.classes).map(|k| at(base + 5 + k, r, c)).collect();
                        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                        let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
                        let (best, &logit) = logits
                            .iter()
                            .enumerate()
                            .max_by(|x, y| x.1.total_cmp(y.1))
                            .expect("at least one class");
                        (best, (logit - max).exp() / sum)
                    };
                    let score = objectness * probability;
                    // NaN scores fall out here too.
                    if score.is_nan() || score <= score_threshold {
                        continue;
                    }
                    let b = CenterBox {
                        x: (c as f32 + sigmoid(at(base, r, c))) / gw as f32,
                        y: (r as f32 + sigmoid(at(base + 1, r, c))) / gh as f32,
                        w: at(base + 2, r, c).exp() * aw / gw as f32,
                        h: at(base + 3, r, c).exp() * ah / gh as f32,
                    };
                    if [b.x, b.y, b.w, b.h].iter().all(|v| v.is_finite()) {
                        out.push(Detection {
                            bbox: b.corners(),
                            score,
                            class,
                        });
                    }
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
