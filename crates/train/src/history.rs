//! One row per epoch: what `history.csv` and `curves.png` show.

use std::path::Path;

use convnet_vision::chart::{Panel, Series, line_chart_png};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::fs::write_atomically;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    /// `None` when training without a validation set.
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    /// Learning rate at the epoch's last step.
    pub lr: f64,
    /// Wall time of the training pass (not validation).
    pub seconds: f64,
    /// Segmentation runs: the validation set's mean IoU over classes (what picks the best
    /// checkpoint there); the accuracies are then pixel accuracies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_mean_iou: Option<f64>,
    /// Detection runs: the validation set's mAP@0.5 (VOC, all-point), which picks the best
    /// checkpoint there; the accuracies are then the share of objects whose responsible
    /// anchor's objectness is above 0.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_map50: Option<f64>,
    /// Detection runs: COCO's mAP@[.5:.95] on the validation set (pycocotools' rules, 100
    /// detections per picture).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_map: Option<f64>,
}

const HEADER: &str = "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds";

fn opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.6}")).unwrap_or_default()
}

/// The history as CSV (empty cells where there was no validation).
/// Segmentation runs add a `val_mean_iou` column, detection runs `val_map50` (and `val_map`,
/// COCO's mAP@[.5:.95], when it was measured).
pub fn to_csv(records: &[EpochRecord]) -> String {
    let iou = records.iter().any(|r| r.val_mean_iou.is_some());
    let map = records.iter().any(|r| r.val_map50.is_some());
    let coco = records.iter().any(|r| r.val_map.is_some());
    let mut out = String::from(HEADER);
    if iou {
        out.push_str(",val_mean_iou");
    }
    if map {
        out.push_str(",val_map50");
    }
    if coco {
        out.push_str(",val_map");
    }
    out.push('\n');
    for r in records {
        out.push_str(&format!(
            "{},{:.6},{:.6},{},{},{:e},{:.3}",
            r.epoch,
            r.train_loss,
            r.train_accuracy,
            opt(r.val_loss),
            opt(r.val_accuracy),
            r.lr,
            r.seconds
        ));
        if iou {
            out.push_str(&format!(",{}", opt(r.val_mean_iou)));
        }
        if map {
            out.push_str(&format!(",{}", opt(r.val_map50)));
        }
        if coco {
            out.push_str(&format!(",{}", opt(r.val_map)));
        }
        out.push('\n');
    }
    out
}

/// Writes `history.csv` and `curves.png` (loss and accuracy, train vs validation) into `dir`.
pub fn write_reports(dir: &Path, records: &[EpochRecord]) -> Result<(), TrainError> {
    write_atomically(&dir.join("history.csv"), to_csv(records).as_bytes())?;
    let series = |label: &str, f: &dyn Fn(&EpochRecord) -> Option<f64>| Series {
        label: label.to_string(),
        points: records
            .iter()
            .filter_map(|r| f(r).map(|v| (r.epoch as f64, v)))
            .collect(),
    };
    let mut panels = vec![
        Panel {
            title: "Loss".into(),
            x_label: "epoch".into(),
            y_label: "loss".into(),
            series: vec![
                series("train", &|r| Some(r.train_loss)),
                series("validation", &|r| r.val_loss),
            ],
        },
        Panel {
            title: "Accuracy".into(),
            x_label: "epoch".into(),
            y_label: "accuracy".into(),
            series: vec![
                series("train", &|r| Some(r.train_accuracy)),
                series("validation", &|r| r.val_accuracy),
            ],
        },
    ];
    if records.iter().any(|r| r.val_mean_iou.is_some()) {
        panels.push(Panel {
            title: "Mean IoU".into(),
            x_label: "epoch".into(),
            y_label: "mean IoU (validation)".into(),
            series: vec![series("validation", &|r| r.val_mean_iou)],
        });
    }
    if records.iter().any(|r| r.val_map50.is_some()) {
        panels.push(Panel {
            title: "mAP (validation)".into(),
            x_label: "epoch".into(),
            y_label: "mAP".into(),
            series: vec![
                series("mAP@0.5", &|r| r.val_map50),
                series("mAP@[.5:.95]", &|r| r.val_map),
            ],
        });
    }
    let width = 600 * panels.len() as u32;
    line_chart_png(&dir.join("curves.png"), &panels, width, 480)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_a_row_per_epoch_and_blank_cells_without_validation() {
        let rows = [
            EpochRecord {
                epoch: 1,
                train_loss: 0.5,
                train_accuracy: 0.8,
                val_loss: Some(0.4),
                val_accuracy: Some(0.85),
                lr: 1e-3,
                seconds: 2.0,
                val_mean_iou: None,
                val_map50: None,
                val_map: None,
            },
            EpochRecord {
                epoch: 2,
                train_loss: 0.3,
                train_accuracy: 0.9,
                val_loss: None,
                val_accuracy: None,
                lr: 1e-3,
                seconds: 2.0,
                val_mean_iou: None,
                val_map50: None,
                val_map: None,
            },
        ];
        let csv = to_csv(&rows);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], HEADER);
        assert_eq!(lines[1], "1,0.500000,0.800000,0.400000,0.850000,1e-3,2.000");
        assert_eq!(lines[2], "2,0.300000,0.900000,,,1e-3,2.000");
    }
}
