//! Progress on the terminal: a bar per epoch with the running loss, accuracy and ETA, and one
//! line per finished epoch (kept in logs, where bars are hidden). In a log, an epoch running
//! longer than a minute also gets a line at every tenth of its steps from then on, so an
//! hour-long epoch is not an hour of silence.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use convnet_apps::run::Progress;
use convnet_train::{EpochRecord, Observer};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Bars {
    bar: ProgressBar,
    quiet: bool,
    epochs: usize,
    metric: Metric,
    /// Where stderr is not a terminal: a progress line every this many steps.
    log_every: Option<usize>,
    epoch: usize,
    steps: usize,
    started: Instant,
}

/// Epochs shorter than this many steps get no progress lines in logs (their end line suffices),
/// nor does the part of an epoch before `LOG_AFTER`: short epochs stay one line each.
const LOG_MIN_STEPS: usize = 100;
const LOG_AFTER: Duration = Duration::from_secs(60);

/// The steps between two progress lines in a log: a tenth of the epoch, for long epochs only.
fn log_interval(steps: usize) -> Option<usize> {
    (steps >= LOG_MIN_STEPS).then(|| steps.div_ceil(10))
}

/// The time left at `step` of `steps`, at the rate so far.
fn time_left(elapsed: Duration, step: usize, steps: usize) -> Duration {
    elapsed.mul_f64(steps.saturating_sub(step) as f64 / step.max(1) as f64)
}

fn minutes(d: Duration) -> String {
    format!("{:.1} min", d.as_secs_f64() / 60.0)
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
            log_every: None,
            epoch: 0,
            steps: 0,
            started: Instant::now(),
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
        (self.epoch, self.steps, self.started) = (epoch, steps, Instant::now());
        self.log_every = if self.quiet || std::io::stderr().is_terminal() {
            None
        } else {
            log_interval(steps)
        };
    }

    fn step(&mut self, step: usize, loss: f64, accuracy: f64) {
        if let Some(every) = self.log_every
            && step.is_multiple_of(every)
            && step < self.steps
            && self.started.elapsed() >= LOG_AFTER
        {
            let elapsed = self.started.elapsed();
            self.line(&format!(
                "  epoch {}/{}: step {step}/{} ({}%), loss {loss:.4} {}, {} so far, ~{} left",
                self.epoch,
                self.epochs,
                self.steps,
                100 * step / self.steps,
                self.train_metric(accuracy),
                minutes(elapsed),
                minutes(time_left(elapsed, step, self.steps)),
            ));
        }
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
        if let Some(map) = r.val_map {
            val.push_str(&format!(" mAP@[.5:.95] {map:.4}"));
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

impl Progress for Bars {
    fn line(&mut self, text: &str) {
        Bars::line(self, text);
    }

    /// On stderr even when quiet: what a warning says must not be lost with the bars.
    fn warn(&mut self, text: &str) {
        eprintln!("warning: {text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_epochs_report_every_tenth_in_logs() {
        assert_eq!(log_interval(99), None);
        assert_eq!(log_interval(100), Some(10));
        assert_eq!(log_interval(44_100), Some(4_410));
        // Rounded up: 9 lines at most before the epoch's own end line, never 10 + a stray one.
        let every = log_interval(1_005).unwrap();
        assert_eq!((1..1_005).filter(|s| s % every == 0).count(), 9);
    }

    #[test]
    fn time_left_is_the_rate_so_far() {
        let left = time_left(Duration::from_secs(60), 250, 1_000);
        assert_eq!(left, Duration::from_secs(180));
        assert_eq!(
            time_left(Duration::from_secs(60), 1_000, 1_000),
            Duration::ZERO
        );
        assert_eq!(minutes(Duration::from_secs(90)), "1.5 min");
    }
}
