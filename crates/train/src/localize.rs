//! Classification with localisation, and landmarks, as the course sets them up.
//!
//! The network outputs `y = [p_c, b_x, b_y, b_h, b_w, c_1 … c_n]` per image: a logit for "there
//! is an object", its box, and class logits. The loss is conditional on the label's `p_c`: with
//! an object every term counts (logistic loss for `p_c`, squared error for the box,
//! cross-entropy for the class); without one only the `p_c` term does, since the box and the
//! class mean nothing then. A landmark head outputs `2N` numbers, `(l_x, l_y)` per landmark,
//! trained by squared error. [`yolo_loss`] is the same idea per grid cell and anchor.

use burn::tensor::activation::{log_sigmoid, log_softmax, sigmoid};
use burn::tensor::{Device, Int, Tensor, TensorData};
use convnet_vision::yolo::{YoloHead, YoloTargets};

/// Targets of a localisation head for a batch.
#[derive(Debug, Clone)]
pub struct LocalizationTargets {
    /// 1 where the image holds an object, else 0: `[N]`.
    pub present: Tensor<1>,
    /// `(b_x, b_y, b_h, b_w)`: `[N, 4]` (anything where `present` is 0).
    pub boxes: Tensor<2>,
    /// The object's class: `[N]` (anything where `present` is 0).
    pub classes: Tensor<1, Int>,
}

/// The course's conditional loss, averaged over the batch: for each image
/// `−(p log σ(ŷ_pc) + (1 − p) log(1 − σ(ŷ_pc))) + p (Σ_k (b̂_k − b_k)² − log softmax(ĉ)_class)`.
/// `outputs` is `[N, 5 + n]`.
pub fn localization_loss(outputs: Tensor<2>, targets: &LocalizationTargets) -> Tensor<1> {
    let [n, width] = outputs.dims();
    let p = targets.present.clone().reshape([n, 1]);
    let logit = outputs.clone().narrow(1, 0, 1);
    let objectness = (p.clone() * log_sigmoid(logit.clone())
        + (p.clone().neg() + 1.0) * log_sigmoid(logit.neg()))
    .neg();
    let boxes = (outputs.clone().narrow(1, 1, 4) - targets.boxes.clone())
        .powi_scalar(2)
        .sum_dim(1);
    let class = log_softmax(outputs.narrow(1, 5, width - 5), 1)
        .gather(1, targets.classes.clone().reshape([n, 1]))
        .neg();
    (objectness + p * (boxes + class)).mean()
}

/// Squared error of landmark coordinates `[N, 2L]`, averaged over the coordinates of the
/// images where `present` (`[N]`, 0 or 1) says the landmarks exist; 0 when none does.
pub fn landmark_loss(outputs: Tensor<2>, targets: Tensor<2>, present: Tensor<1>) -> Tensor<1> {
    let [n, coords] = outputs.dims();
    let mask = present.reshape([n, 1]);
    let squared = (outputs - targets).powi_scalar(2) * mask.clone();
    let count = mask.sum().mul_scalar(coords as f64).clamp_min(1.0);
    squared.sum().div(count)
}

/// Weights of the YOLO loss terms (YOLOv1's λ_coord = 5 and λ_noobj = 0.5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YoloLossWeights {
    pub coord: f64,
    pub no_object: f64,
}

impl Default for YoloLossWeights {
    fn default() -> Self {
        Self {
            coord: 5.0,
            no_object: 0.5,
        }
    }
}

/// A batch of [`YoloTargets`] as tensors `[N, A, S_h, S_w]` (offsets and sizes with a pair axis
/// after the anchor: `[N, A, 2, S_h, S_w]`).
#[derive(Debug, Clone)]
pub struct YoloBatchTargets {
    pub responsible: Tensor<4>,
    pub offsets: Tensor<5>,
    pub log_sizes: Tensor<5>,
    pub classes: Tensor<4, Int>,
    /// 1 where an anchor that is not responsible for an object already predicts one well
    /// (YOLOv2's ignore threshold): no no-object penalty there. `None`: penalise them all.
    pub ignored: Option<Tensor<4>>,
}

impl YoloBatchTargets {
    pub fn new(targets: &[YoloTargets], anchors: usize, device: &Device) -> Self {
        let [gh, gw] = targets.first().map_or([1, 1], |t| t.grid);
        let n = targets.len();
        let cells = gh * gw;
        let mut responsible: Vec<f32> = Vec::with_capacity(n * anchors * cells);
        let mut offsets: Vec<f32> = Vec::with_capacity(n * anchors * 2 * cells);
        let mut log_sizes: Vec<f32> = Vec::with_capacity(n * anchors * 2 * cells);
        let mut classes = Vec::with_capacity(n * anchors * cells);
        for t in targets {
            responsible.extend(&t.responsible);
            classes.extend(t.classes.iter().map(|&c| c as i64));
            for a in 0..anchors {
                let range = a * cells..(a + 1) * cells;
                for k in 0..2 {
                    offsets.extend(t.offsets[range.clone()].iter().map(|o| o[k]));
                    log_sizes.extend(t.log_sizes[range.clone()].iter().map(|o| o[k]));
                }
            }
        }
        Self {
            responsible: Tensor::from_data(
                TensorData::new(responsible, [n, anchors, gh, gw]),
                device,
            ),
            offsets: Tensor::from_data(TensorData::new(offsets, [n, anchors, 2, gh, gw]), device),
            log_sizes: Tensor::from_data(
                TensorData::new(log_sizes, [n, anchors, 2, gh, gw]),
                device,
            ),
            classes: Tensor::from_data(TensorData::new(classes, [n, anchors, gh, gw]), device),
            ignored: None,
        }
    }

    /// These targets with the no-object penalty lifted where `ignored` (`[N, A, S_h, S_w]`,
    /// 1 or 0) says.
    pub fn with_ignored(self, ignored: Tensor<4>) -> Self {
        Self {
            ignored: Some(ignored),
            ..self
        }
    }
}

/// The YOLO loss summed over cells and anchors and averaged over the batch: for the anchor
/// responsible for an object, λ_coord ((σ(t_x) − x)² + (σ(t_y) − y)² + (t_w − ln(w/p_w))² +
/// (t_h − ln(h/p_h))²), the logistic loss of its objectness against 1 and the cross-entropy of
/// its class; for every other anchor (except those `targets` marks as ignored), λ_noobj times
/// the logistic loss of its objectness against 0. `outputs` is the head's
/// `[N, A (5 + C), S_h, S_w]`.
pub fn yolo_loss(
    outputs: Tensor<4>,
    head: &YoloHead,
    targets: &YoloBatchTargets,
    weights: YoloLossWeights,
) -> Tensor<1> {
    let [n, _, gh, gw] = outputs.dims();
    let anchors = head.anchors.len();
    let per = head.per_anchor();
    let y: Tensor<5> = outputs.reshape([n, anchors, per, gh, gw]);
    let obj = targets.responsible.clone();
    let obj5: Tensor<5> = obj.clone().reshape([n, anchors, 1, gh, gw]);
    let xy = (sigmoid(y.clone().narrow(2, 0, 2)) - targets.offsets.clone()).powi_scalar(2);
    let wh = (y.clone().narrow(2, 2, 2) - targets.log_sizes.clone()).powi_scalar(2);
    let coord = ((xy + wh) * obj5.clone()).sum().mul_scalar(weights.coord);
    let logit: Tensor<4> = y.clone().narrow(2, 4, 1).reshape([n, anchors, gh, gw]);
    let positive = (log_sigmoid(logit.clone()) * obj.clone()).sum().neg();
    let mut background = obj.clone().neg() + 1.0;
    if let Some(ignored) = &targets.ignored {
        background = background * (ignored.clone().neg() + 1.0);
    }
    let negative = (log_sigmoid(logit.neg()) * background)
        .sum()
        .neg()
        .mul_scalar(weights.no_object);
    let mut total = coord + positive + negative;
    if head.classes > 0 {
        let class_logits = y.narrow(2, 5, head.classes);
        let picked: Tensor<5> = log_softmax(class_logits, 2)
            .gather(2, targets.classes.clone().reshape([n, anchors, 1, gh, gw]));
        total = total + (picked * obj5).sum().neg();
    }
    total.div_scalar(n.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    /// The loss of one image written out with scalars.
    fn naive(y: &[f64], p: f64, b: &[f64; 4], class: usize) -> f64 {
        let sig = 1.0 / (1.0 + (-y[0]).exp());
        let mut l = -(p * sig.ln() + (1.0 - p) * (1.0 - sig).ln());
        if p == 1.0 {
            l += (0..4).map(|k| (y[1 + k] - b[k]).powi(2)).sum::<f64>();
            let logits = &y[5..];
            let z: f64 = logits.iter().map(|v| v.exp()).sum();
            l -= (logits[class].exp() / z).ln();
        }
        l
    }

    #[test]
    fn conditional_loss_matches_the_formula() {
        let device = Device::flex();
        let ys = [
            vec![1.2, 0.4, 0.5, 0.3, 0.2, 2.0, -1.0, 0.5],
            vec![-0.7, 0.9, 0.1, 0.8, 0.6, 0.1, 0.2, 0.3],
            vec![0.3, 0.2, 0.2, 0.2, 0.2, -3.0, 1.0, 0.0],
        ];
        let present = [1.0, 0.0, 1.0];
        let boxes = [
            [0.5, 0.5, 0.2, 0.3],
            [9.0, 9.0, 9.0, 9.0],
            [0.1, 0.9, 0.4, 0.4],
        ];
        let classes = [0usize, 2, 1];
        let flat: Vec<f32> = ys.iter().flatten().map(|&v| v as f32).collect();
        let outputs = Tensor::<2>::from_data(TensorData::new(flat, [3, 8]), &device);
        let targets = LocalizationTargets {
            present: Tensor::from_data(
                TensorData::new(present.map(|v| v as f32).to_vec(), [3]),
                &device,
            ),
            boxes: Tensor::from_data(
                TensorData::new(
                    boxes
                        .iter()
                        .flatten()
                        .map(|&v| v as f32)
                        .collect::<Vec<_>>(),
                    [3, 4],
                ),
                &device,
            ),
            classes: Tensor::from_data(
                TensorData::new(classes.map(|c| c as i64).to_vec(), [3]),
                &device,
            ),
        };
        let got = localization_loss(outputs, &targets).into_scalar::<f32>() as f64;
        let want = (0..3)
            .map(|i| naive(&ys[i], present[i], &boxes[i], classes[i]))
            .sum::<f64>()
            / 3.0;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }

    #[test]
    fn yolo_loss_matches_the_formula_and_vanishes_at_the_ideal_output() {
        use convnet_vision::boxes::CenterBox;
        use convnet_vision::yolo::Object;
        let device = Device::flex();
        let head = YoloHead {
            anchors: vec![(1.0, 1.0), (2.0, 1.0)],
            classes: 3,
        };
        let grid = [2, 2];
        let objects = [Object {
            bbox: CenterBox {
                x: 0.7,
                y: 0.2,
                w: 0.9,
                h: 0.6,
            },
            class: 2,
        }];
        let t = head.targets(&objects, grid).unwrap();
        let batch = YoloBatchTargets::new(std::slice::from_ref(&t), 2, &device);
        // Arbitrary outputs: compare with a scalar evaluation of the formula.
        let values: Vec<f32> = (0..2 * 8 * 4)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let at = |a: usize, k: usize, cell: usize| values[(a * 8 + k) * 4 + cell] as f64;
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        let mut want = 0.0;
        for a in 0..2 {
            for cell in 0..4 {
                let idx = a * 4 + cell;
                if t.responsible[idx] == 1.0 {
                    let [ox, oy] = t.offsets[idx];
                    let [lw, lh] = t.log_sizes[idx];
                    want += 5.0
                        * ((sig(at(a, 0, cell)) - ox as f64).powi(2)
                            + (sig(at(a, 1, cell)) - oy as f64).powi(2)
                            + (at(a, 2, cell) - lw as f64).powi(2)
                            + (at(a, 3, cell) - lh as f64).powi(2));
                    want -= sig(at(a, 4, cell)).ln();
                    let z: f64 = (0..3).map(|c| at(a, 5 + c, cell).exp()).sum();
                    want -= (at(a, 5 + t.classes[idx], cell).exp() / z).ln();
                } else {
                    want -= 0.5 * (1.0 - sig(at(a, 4, cell))).ln();
                }
            }
        }
        let outputs = Tensor::<4>::from_data(TensorData::new(values, [1, 16, 2, 2]), &device);
        let got =
            yolo_loss(outputs, &head, &batch, YoloLossWeights::default()).into_scalar::<f32>();
        assert!(
            (got as f64 - want).abs() < 1e-4 * want.abs().max(1.0),
            "{got} vs {want}"
        );

        // The ideal output: exact offsets and sizes, confident objectness and class.
        let mut ideal = vec![0.0f32; 2 * 8 * 4];
        for a in 0..2 {
            for cell in 0..4 {
                let idx = a * 4 + cell;
                let set =
                    |ideal: &mut Vec<f32>, k: usize, v: f32| ideal[(a * 8 + k) * 4 + cell] = v;
                if t.responsible[idx] == 1.0 {
                    let logit = |p: f32| (p / (1.0 - p)).ln();
                    set(&mut ideal, 0, logit(t.offsets[idx][0]));
                    set(&mut ideal, 1, logit(t.offsets[idx][1]));
                    set(&mut ideal, 2, t.log_sizes[idx][0]);
                    set(&mut ideal, 3, t.log_sizes[idx][1]);
                    set(&mut ideal, 4, 30.0);
                    set(&mut ideal, 5 + t.classes[idx], 30.0);
                } else {
                    set(&mut ideal, 4, -30.0);
                }
            }
        }
        let outputs = Tensor::<4>::from_data(TensorData::new(ideal, [1, 16, 2, 2]), &device);
        let loss =
            yolo_loss(outputs, &head, &batch, YoloLossWeights::default()).into_scalar::<f32>();
        assert!(loss < 1e-4, "{loss}");
    }

    #[test]
    fn landmark_loss_counts_only_present_images() {
        let device = Device::flex();
        let t = |v: Vec<f32>, shape: [usize; 2]| {
            Tensor::<2>::from_data(TensorData::new(v, shape), &device)
        };
        let outputs = t(vec![0.1, 0.2, 0.3, 0.4, 5.0, 5.0, 5.0, 5.0], [2, 4]);
        let targets = t(vec![0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0], [2, 4]);
        let present = Tensor::<1>::from_data(TensorData::new(vec![1.0f32, 0.0], [2]), &device);
        let got = landmark_loss(outputs, targets, present).into_scalar::<f32>();
        let want = (0.01 + 0.04 + 0.04 + 0.01) / 4.0;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }
}
