//! Classification metrics from a confusion matrix: accuracy, per-class precision and recall.

use serde::{Deserialize, Serialize};

/// `counts[t][p]`: how many examples of true class `t` were predicted as `p`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    pub counts: Vec<Vec<u64>>,
}

/// One class's row of the precision / recall table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassReport {
    pub class: String,
    /// Of the examples predicted as this class, the fraction that are; `None` when the class
    /// was never predicted (undefined, not zero).
    pub precision: Option<f64>,
    /// Of the examples of this class, the fraction predicted as it; `None` without examples.
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    /// Number of examples of this class.
    pub support: u64,
}

impl ConfusionMatrix {
    pub fn new(num_classes: usize) -> Self {
        Self {
            counts: vec![vec![0; num_classes]; num_classes],
        }
    }

    pub fn num_classes(&self) -> usize {
        self.counts.len()
    }

    /// Records predictions against their labels; both must be class indices below
    /// `num_classes` (the caller built the predictions from a model of that many outputs).
    pub fn add(&mut self, truth: &[usize], predicted: &[usize]) {
        for (&t, &p) in truth.iter().zip(predicted) {
            self.counts[t][p] += 1;
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    pub fn correct(&self) -> u64 {
        (0..self.num_classes()).map(|i| self.counts[i][i]).sum()
    }

    /// Fraction of examples classified correctly (0 for an empty matrix).
    pub fn accuracy(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            0.0
        } else {
            self.correct() as f64 / total as f64
        }
    }

    pub fn report(&self, class_names: &[String]) -> Vec<ClassReport> {
        let n = self.num_classes();
        (0..n)
            .map(|c| {
                let tp = self.counts[c][c] as f64;
                let support: u64 = self.counts[c].iter().sum();
                let predicted: u64 = (0..n).map(|t| self.counts[t][c]).sum();
                let precision = (predicted > 0).then(|| tp / predicted as f64);
                let recall = (support > 0).then(|| tp / support as f64);
                let f1 = match (precision, recall) {
                    (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
                    (Some(_), Some(_)) => Some(0.0),
                    _ => None,
                };
                ClassReport {
                    class: class_names
                        .get(c)
                        .cloned()
                        .unwrap_or_else(|| format!("class {c}")),
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect()
    }
}

/// Index of the largest value in each row of a row-major `[rows, cols]` buffer.
pub fn argmax_rows(values: &[f32], cols: usize) -> Vec<usize> {
    values
        .chunks(cols)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                    if v > bv { (i, v) } else { (bi, bv) }
                })
                .0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_and_recall_follow_their_definitions() {
        // truth:     0 0 0 1 1 2
        // predicted: 0 0 1 1 0 1
        let mut m = ConfusionMatrix::new(3);
        m.add(&[0, 0, 0, 1, 1, 2], &[0, 0, 1, 1, 0, 1]);
        assert_eq!(m.total(), 6);
        assert_eq!(m.correct(), 3);
        assert!((m.accuracy() - 0.5).abs() < 1e-12);
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let r = m.report(&names);
        // class 0: predicted 3 times (2 right), 3 examples.
        assert_eq!(r[0].precision, Some(2.0 / 3.0));
        assert_eq!(r[0].recall, Some(2.0 / 3.0));
        // class 1: predicted 3 times (1 right), 2 examples.
        assert_eq!(r[1].precision, Some(1.0 / 3.0));
        assert_eq!(r[1].recall, Some(0.5));
        // class 2 is never predicted: precision undefined, recall 0.
        assert_eq!(r[2].precision, None);
        assert_eq!(r[2].recall, Some(0.0));
        assert_eq!(r[2].f1, None);
        assert_eq!(r[2].support, 1);
    }

    #[test]
    fn argmax_takes_the_first_of_ties() {
        assert_eq!(argmax_rows(&[0.1, 0.7, 0.2, 0.5, 0.5, 0.0], 3), [1, 0]);
    }
}
