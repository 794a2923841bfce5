//! Mean average precision of detections against ground truth: PASCAL VOC's (11-point and
//! all-point interpolation, at one IoU threshold) and COCO's (101-point interpolation, averaged
//! over IoU thresholds 0.50, 0.55 … 0.95), computed the way the VOC devkit's `voc_eval` and
//! pycocotools' `COCOeval` compute them.
//!
//! Boxes use continuous coordinates (no "+1" pixel convention, as in pycocotools).

use std::collections::{BTreeMap, BTreeSet};

use crate::boxes::BBox;

/// A ground-truth object.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroundTruth {
    pub image: u64,
    pub class: u64,
    pub bbox: BBox,
}

/// A detection to evaluate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub image: u64,
    pub class: u64,
    pub bbox: BBox,
    pub score: f32,
}

/// How precision is averaged over recall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// VOC 2007: the mean of the best precision at recall ≥ 0, 0.1, …, 1.
    ElevenPoint,
    /// VOC 2010 and later: the area under the precision envelope.
    AllPoint,
}

/// Average precision per class (classes that have ground truth) and their mean.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ApReport {
    pub per_class: BTreeMap<u64, f64>,
    pub mean: f64,
}

fn by_class<T: Copy>(items: &[T], class: impl Fn(&T) -> u64) -> BTreeMap<u64, Vec<T>> {
    let mut out: BTreeMap<u64, Vec<T>> = BTreeMap::new();
    for &item in items {
        out.entry(class(&item)).or_default().push(item);
    }
    out
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// VOC average precision at `iou_threshold` (0.5 for VOC): detections of a class, best score
/// first, are true positives when their best-overlapping ground truth of the same image (IoU ≥
/// the threshold) is not yet taken, false positives otherwise (duplicates included).
pub fn voc_map(
    truth: &[GroundTruth],
    detections: &[Scored],
    iou_threshold: f32,
    interpolation: Interpolation,
) -> ApReport {
    let per_class: BTreeMap<u64, f64> = voc_matches(truth, detections, iou_threshold)
        .into_iter()
        .map(|(class, (tp, objects))| (class, voc_ap(&tp, objects, interpolation)))
        .collect();
    let mean = mean(per_class.values().copied());
    ApReport { per_class, mean }
}

/// Each class's precision–recall curve at `iou_threshold`, matched as [`voc_map`] matches:
/// `(recall, precision)` after each detection, best score first (classes with ground truth).
pub fn pr_curves(
    truth: &[GroundTruth],
    detections: &[Scored],
    iou_threshold: f32,
) -> BTreeMap<u64, Vec<(f64, f64)>> {
    voc_matches(truth, detections, iou_threshold)
        .into_iter()
        .map(|(class, (tp, objects))| {
            let (recall, precision) = pr_points(&tp, objects);
            (class, recall.into_iter().zip(precision).collect())
        })
        .collect()
}

/// For each class with ground truth: whether each of its detections, best score first, is a
/// true positive, and how many objects it has.
fn voc_matches(
    truth: &[GroundTruth],
    detections: &[Scored],
    iou_threshold: f32,
) -> BTreeMap<u64, (Vec<bool>, usize)> {
    let truth_by_class = by_class(truth, |g| g.class);
    let dets_by_class = by_class(detections, |d| d.class);
    let mut out = BTreeMap::new();
    for (&class, gts) in &truth_by_class {
        let mut per_image: BTreeMap<u64, Vec<(BBox, bool)>> = BTreeMap::new();
        for g in gts {
            per_image.entry(g.image).or_default().push((g.bbox, false));
        }
        let mut dets = dets_by_class.get(&class).cloned().unwrap_or_default();
        // Stable: equal scores keep their input order, as numpy's argsort of -score does for
        // the devkit's usual inputs.
        dets.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut tp = Vec::with_capacity(dets.len());
        for d in &dets {
            let hit = per_image.get_mut(&d.image).and_then(|objects| {
                let (best, iou) = objects
                    .iter()
                    .enumerate()
                    .map(|(i, (b, _))| (i, d.bbox.iou(b)))
                    .fold((None, f32::NEG_INFINITY), |acc, (i, iou)| {
                        if iou > acc.1 { (Some(i), iou) } else { acc }
                    });
                let best = best?;
                if iou < iou_threshold || objects[best].1 {
                    return None;
                }
                objects[best].1 = true;
                Some(())
            });
            tp.push(hit.is_some());
        }
        out.insert(class, (tp, gts.len()));
    }
    out
}

/// Recall and precision after each detection of `tp` (score order) among `objects`.
fn pr_points(tp: &[bool], objects: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut recall, mut precision) = (Vec::new(), Vec::new());
    let (mut t, mut f) = (0usize, 0usize);
    for &hit in tp {
        if hit {
            t += 1;
        } else {
            f += 1;
        }
        recall.push(t as f64 / objects.max(1) as f64);
        precision.push(t as f64 / (t + f) as f64);
    }
    (recall, precision)
}

/// AP from true/false positives in score order and the number of objects.
fn voc_ap(tp: &[bool], objects: usize, interpolation: Interpolation) -> f64 {
    let (recall, precision) = pr_points(tp, objects);
    match interpolation {
        Interpolation::ElevenPoint => {
            (0..=10)
                .map(|i| {
                    let r = i as f64 / 10.0;
                    recall
                        .iter()
                        .zip(&precision)
                        .filter(|(rc, _)| **rc >= r)
                        .map(|(_, p)| *p)
                        .fold(0.0, f64::max)
                })
                .sum::<f64>()
                / 11.0
        }
        Interpolation::AllPoint => {
            let mut mrec = vec![0.0];
            mrec.extend(&recall);
            mrec.push(1.0);
            let mut mpre = vec![0.0];
            mpre.extend(&precision);
            mpre.push(0.0);
            for i in (1..mpre.len()).rev() {
                mpre[i - 1] = mpre[i - 1].max(mpre[i]);
            }
            (1..mrec.len())
                .filter(|&i| mrec[i] != mrec[i - 1])
                .map(|i| (mrec[i] - mrec[i - 1]) * mpre[i])
                .sum()
        }
    }
}

/// COCO's summary numbers (`COCOeval.stats[0..3]`, all areas, 100 detections per image).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CocoReport {
    /// AP averaged over IoU 0.50:0.05:0.95 and the classes with ground truth.
    pub map: f64,
    pub map50: f64,
    pub map75: f64,
    /// AP@[.5:.95] of each class.
    pub per_class: BTreeMap<u64, f64>,
}

/// IoU thresholds 0.50, 0.55 … 0.95, computed as numpy's `linspace` does.
fn coco_thresholds() -> Vec<f64> {
    (0..10).map(|i| 0.5 + 0.05 * i as f64).collect()
}

/// COCO evaluation as pycocotools does it for boxes with no crowd annotations: per image and
/// class the `max_dets` best detections are matched greedily, best score first, each to the
/// unmatched ground truth of highest IoU at or above the threshold; precision is interpolated
/// at 101 recall points.
pub fn coco_map(truth: &[GroundTruth], detections: &[Scored], max_dets: usize) -> CocoReport {
    let thresholds = coco_thresholds();
    let images: BTreeSet<u64> = truth
        .iter()
        .map(|g| g.image)
        .chain(detections.iter().map(|d| d.image))
        .collect();
    let classes: BTreeSet<u64> = truth.iter().map(|g| g.class).collect();
    // Each (class, image)'s boxes and best detections, gathered once: filtering the whole lists
    // per class, threshold and image made large files quadratic.
    let mut gts_of: BTreeMap<(u64, u64), Vec<BBox>> = BTreeMap::new();
    for g in truth {
        gts_of.entry((g.class, g.image)).or_default().push(g.bbox);
    }
    let mut dets_of: BTreeMap<(u64, u64), Vec<Scored>> = BTreeMap::new();
    for d in detections {
        dets_of.entry((d.class, d.image)).or_default().push(*d);
    }
    for dets in dets_of.values_mut() {
        dets.sort_by(|a, b| b.score.total_cmp(&a.score));
        dets.truncate(max_dets);
    }
    // precision[t][class] = 101 interpolated values, or None for a class without ground truth.
    let mut ap_per_class: BTreeMap<u64, Vec<Option<Vec<f64>>>> = BTreeMap::new();
    for &class in &classes {
        let mut per_threshold = Vec::new();
        let objects = truth.iter().filter(|g| g.class == class).count();
        for &t in &thresholds {
            // Scores and matches of every image's kept detections, image by image.
            let mut scored: Vec<(f32, bool)> = Vec::new();
            for &image in &images {
                let gts = gts_of.get(&(class, image)).map_or(&[][..], Vec::as_slice);
                let dets = dets_of.get(&(class, image)).map_or(&[][..], Vec::as_slice);
                let mut taken = vec![false; gts.len()];
                for d in dets {
                    let mut best_iou = t.min(1.0 - 1e-10);
                    let mut matched = None;
                    for (g, gt) in gts.iter().enumerate() {
                        if taken[g] {
                            continue;
                        }
                        let iou = f64::from(d.bbox.iou(gt));
                        if iou < best_iou {
                            continue;
                        }
                        best_iou = iou;
                        matched = Some(g);
                    }
                    if let Some(g) = matched {
                        taken[g] = true;
                    }
                    scored.push((d.score, matched.is_some()));
                }
            }
            if objects == 0 {
                per_threshold.push(None);
                continue;
            }
            // A stable sort: ties stay in image order, as numpy's mergesort keeps them.
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            per_threshold.push(Some(coco_precision(&scored, objects)));
        }
        ap_per_class.insert(class, per_threshold);
    }
    let average = |t_filter: &dyn Fn(usize) -> bool, class_filter: &dyn Fn(u64) -> bool| {
        let values: Vec<f64> = ap_per_class
            .iter()
            .filter(|(c, _)| class_filter(**c))
            .flat_map(|(_, per_t)| {
                per_t
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| t_filter(*i))
                    .filter_map(|(_, p)| p.as_ref())
                    .flatten()
                    .copied()
            })
            .collect();
        if values.is_empty() {
            -1.0
        } else {
            values.iter().sum::<f64>() / values.len() as f64
        }
    };
    let per_class = classes
        .iter()
        .map(|&c| (c, average(&|_| true, &|k| k == c)))
        .collect();
    CocoReport {
        map: average(&|_| true, &|_| true),
        map50: average(&|i| i == 0, &|_| true),
        map75: average(&|i| i == 5, &|_| true),
        per_class,
    }
}

/// pycocotools' `accumulate` for one class and threshold: 101 interpolated precisions.
fn coco_precision(scored: &[(f32, bool)], objects: usize) -> Vec<f64> {
    let (mut recall, mut precision) = (Vec::new(), Vec::new());
    let (mut tp, mut fp) = (0.0f64, 0.0f64);
    for &(_, hit) in scored {
        if hit {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        recall.push(tp / objects as f64);
        precision.push(tp / (fp + tp + f64::EPSILON));
    }
    for i in (1..precision.len()).rev() {
        if precision[i] > precision[i - 1] {
            precision[i - 1] = precision[i];
        }
    }
    (0..=100)
        .map(|i| {
            let r = i as f64 / 100.0;
            // numpy's searchsorted(recall, r, side="left"): the first index with recall ≥ r.
            let at = recall.partition_point(|&x| x < r);
            precision.get(at).copied().unwrap_or(0.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gt(image: u64, class: u64, x: f32) -> GroundTruth {
        GroundTruth {
            image,
            class,
            bbox: BBox::new(x, 0.0, x + 10.0, 10.0).unwrap(),
        }
    }

    fn det(image: u64, class: u64, x: f32, score: f32) -> Scored {
        Scored {
            image,
            class,
            bbox: BBox::new(x, 0.0, x + 10.0, 10.0).unwrap(),
            score,
        }
    }

    #[test]
    fn perfect_detections_score_one_and_misses_lower_it() {
        let truth = [gt(1, 0, 0.0), gt(1, 0, 50.0), gt(2, 1, 0.0)];
        let perfect = [
            det(1, 0, 0.0, 0.9),
            det(1, 0, 50.0, 0.8),
            det(2, 1, 0.0, 0.7),
        ];
        for interp in [Interpolation::ElevenPoint, Interpolation::AllPoint] {
            assert_eq!(voc_map(&truth, &perfect, 0.5, interp).mean, 1.0);
        }
        assert!((coco_map(&truth, &perfect, 100).map - 1.0).abs() < 1e-9);
        // Class 0: one of two found (the other box shifted away), a duplicate, a wrong class.
        let partial = [
            det(1, 0, 0.0, 0.9),
            det(1, 0, 1.0, 0.85),
            det(1, 0, 80.0, 0.8),
            det(2, 0, 0.0, 0.6),
        ];
        let r = voc_map(&truth, &partial, 0.5, Interpolation::AllPoint);
        // Recall reaches 0.5 at precision 1: AP 0.5. Class 1 has no detection: AP 0.
        assert!((r.per_class[&0] - 0.5).abs() < 1e-9, "{r:?}");
        assert_eq!(r.per_class[&1], 0.0);
        assert!((r.mean - 0.25).abs() < 1e-9);
    }

    #[test]
    fn pr_curves_step_through_each_detection_in_score_order() {
        let truth = [gt(1, 0, 0.0), gt(1, 0, 50.0), gt(2, 1, 0.0)];
        // Class 0, best first: hit, duplicate, miss, hit (the fourth scored lowest).
        let dets = [
            det(1, 0, 50.0, 0.3),
            det(1, 0, 0.0, 0.9),
            det(1, 0, 1.0, 0.85),
            det(1, 0, 80.0, 0.8),
        ];
        let curves = pr_curves(&truth, &dets, 0.5);
        assert_eq!(
            curves[&0],
            [(0.5, 1.0), (0.5, 0.5), (0.5, 1.0 / 3.0), (1.0, 0.5)]
        );
        // A class with objects and no detection has an empty curve.
        assert!(curves[&1].is_empty());
    }

    #[test]
    fn eleven_point_averages_the_envelope_at_tenths() {
        // tp, fp, tp with 2 objects: recall 0.5, 0.5, 1; precision 1, 0.5, 0.667.
        let ap = voc_ap(&[true, false, true], 2, Interpolation::ElevenPoint);
        let expected = (6.0 * 1.0 + 5.0 * (2.0 / 3.0)) / 11.0;
        assert!((ap - expected).abs() < 1e-9, "{ap} vs {expected}");
        let ap = voc_ap(&[true, false, true], 2, Interpolation::AllPoint);
        assert!((ap - (0.5 + 0.5 * 2.0 / 3.0)).abs() < 1e-9);
    }
}
