//! Progress on the terminal: a bar per epoch with the running loss, accuracy and ETA, and one
//! line per finished epoch (kept in logs, where bars are hidden).

use convnet_train::{EpochRecord, Observer};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Bars {
    bar: ProgressBar,
    quiet: bool,
    epochs: usize,
    metric: Metric,
}

/// What the loop's per-step "accuracy" means.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Metric {
    Accuracy,
    /// Embedding runs: the fraction of mined triplets already meeting the margin (shown as the
    /// share still active); validation is one-shot accuracy.
    Triplets,
}

impl Bars {
    /// `quiet`: nothing at all (`-q`, or `--json` where stdout is for the result).
    pub fn new(quiet: bool) -> Self {
        Self {
            bar: ProgressBar::hidden(),
            quiet,
            epochs: 0,
            metric: Metric::Accuracy,
        }
    }

    /// For triplet-loss runs: active triplets per step, one-shot accuracy at validation.
    pub fn triplets(quiet: bool) -> Self {
        Self {
            metric: Metric::Triplets,
            ..Self::new(quiet)
        }
    }

    /// The step's second number as shown.
    fn train_metric(&self, value: f64) -> String {
        match self.metric {
            Metric::Accuracy => format!("acc {}", pct(value)),
            Metric::Triplets => format!("active triplets {:.1}%", 100.0 * (1.0 - value)),
        }
    }

    fn bar(&self, len: usize, template: &str) -> ProgressBar {
        if self.quiet {
            return ProgressBar::hidden();
        }
        // indicatif draws nothing when stderr is not a terminal, so logs get only the lines.
        ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template(template)
                .expect("a valid progress template")
                .progress_chars("=> "),
        )
    }

    pub fn line(&self, text: &str) {
        if !self.quiet {
            self.bar.suspend(|| eprintln!("{text}"));
        }
    }
}

fn pct(v: f64) -> String {
    format!("{:.2}%", 100.0 * v)
}

impl Observer for Bars {
    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize) {
        self.epochs = epochs;
        self.bar = self.bar(
            steps,
            "epoch {prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}",
        );
        self.bar.set_prefix(format!("{epoch}/{epochs}"));
    }

    fn step(&mut self, step: usize, loss: f64, accuracy: f64) {
        self.bar.set_position(step as u64);
        if step.is_multiple_of(5) || step as u64 == self.bar.length().unwrap_or(0) {
            self.bar
                .set_message(format!("loss {loss:.4} {}", self.train_metric(accuracy)));
        }
    }

    fn validation_start(&mut self, examples: usize) {
        self.bar.finish_and_clear();
        self.bar = self.bar(examples, "  validating [{bar:30}] {pos}/{len}");
    }

    fn validation_progress(&mut self, examples: usize) {
        self.bar.inc(examples as u64);
    }

    fn epoch_end(&mut self, r: &EpochRecord, best: bool) {
        self.bar.finish_and_clear();
        let mut val = match (self.metric, r.val_loss, r.val_accuracy) {
            (Metric::Triplets, _, Some(a)) => format!(" | val one-shot {}", pct(a)),
            (Metric::Accuracy, Some(l), Some(a)) => format!(" | val loss {l:.4} acc {}", pct(a)),
            _ => String::new(),
        };
        if let Some(iou) = r.val_mean_iou {
            val.push_str(&format!(" mIoU {iou:.4}"));
        }
        if let Some(map) = r.val_map50 {
            val.push_str(&format!(" | val mAP@0.5 {map:.4}"));
        }
        self.line(&format!(
            "epoch {}/{}: loss {:.4} {}{val} | {:.1} s{}",
            r.epoch,
            self.epochs,
            r.train_loss,
            self.train_metric(r.train_accuracy),
            r.seconds,
            if best && (r.val_accuracy.is_some() || r.val_map50.is_some()) {
                " (best)"
            } else {
                ""
            }
        ));
    }

    fn note(&mut self, message: &str) {
        self.line(message);
    }
}
