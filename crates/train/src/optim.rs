//! Optimizers and learning-rate schedules, as Burn implements them, chosen by name.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::lr_scheduler::constant::ConstantLr;
use burn::optim::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::optim::lr_scheduler::step::StepLrSchedulerConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Adam,
    Sgd,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Schedule {
    /// The same rate throughout.
    Constant,
    /// Multiply the rate by `gamma` every `every` epochs.
    Step { every: usize, gamma: f64 },
    /// Cosine annealing from the initial rate to 0 over the whole run.
    Cosine,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerSettings {
    pub kind: OptimizerKind,
    pub lr: f64,
    /// SGD momentum (ignored by Adam); 0 for plain SGD.
    pub momentum: f64,
    /// L2 penalty added to the gradient (0 = none).
    pub weight_decay: f64,
}

impl OptimizerSettings {
    pub fn adam(lr: f64) -> Self {
        Self {
            kind: OptimizerKind::Adam,
            lr,
            momentum: 0.0,
            weight_decay: 0.0,
        }
    }

    pub fn validate(&self) -> Result<(), TrainError> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(TrainError::Config(format!(
                "--lr must be a positive number, got {}",
                self.lr
            )));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(TrainError::Config(format!(
                "--momentum must be in [0, 1), got {}",
                self.momentum
            )));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(TrainError::Config(format!(
                "--weight-decay must be 0 or more, got {}",
                self.weight_decay
            )));
        }
        Ok(())
    }

    pub fn build(&self) -> ModuleOptimizer {
        let decay =
            (self.weight_decay > 0.0).then(|| WeightDecayConfig::new(self.weight_decay as f32));
        match self.kind {
            // PyTorch's epsilon, so the recipe (Adam 1e-3) behaves as the reference runs do.
            OptimizerKind::Adam => AdamConfig::new()
                .with_epsilon(1e-8)
                .with_weight_decay(decay)
                .init(),
            OptimizerKind::Sgd => SgdConfig::new()
                .with_weight_decay(decay)
                .with_momentum((self.momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(self.momentum)
                        .with_dampening(0.0)
                }))
                .init(),
        }
    }
}

impl Schedule {
    /// A scheduler stepped once per batch. Schedules are pure functions of the step count, so
    /// resuming replays `step()` up to the saved step instead of storing scheduler state.
    pub fn scheduler(
        &self,
        lr: f64,
        steps_per_epoch: usize,
        epochs: usize,
    ) -> Result<ModuleLrScheduler, TrainError> {
        let bad = |m: String| TrainError::Config(format!("learning-rate schedule: {m}"));
        match *self {
            Schedule::Constant => Ok(ConstantLr::new(lr).into()),
            Schedule::Step { every, gamma } => {
                StepLrSchedulerConfig::new(lr, every.max(1) * steps_per_epoch.max(1))
                    .with_gamma(gamma)
                    .init()
                    .map_err(bad)
            }
            Schedule::Cosine => {
                CosineAnnealingLrSchedulerConfig::new(lr, (epochs * steps_per_epoch).max(1))
                    .init()
                    .map_err(bad)
            }
        }
    }

    /// Parses `--schedule`: `constant`, `step` (every 10 epochs, x0.1), `step:N`,
    /// `step:N:GAMMA`, `cosine`.
    pub fn parse(text: &str) -> Result<Self, TrainError> {
        let bad = || {
            TrainError::Config(format!(
                "unknown schedule '{text}': use constant, step, step:EPOCHS, step:EPOCHS:GAMMA or cosine"
            ))
        };
        let parts: Vec<&str> = text.split(':').collect();
        match parts.as_slice() {
            ["constant"] | ["none"] => Ok(Schedule::Constant),
            ["cosine"] => Ok(Schedule::Cosine),
            ["step", rest @ ..] if rest.len() <= 2 => {
                let every = match rest.first() {
                    Some(s) => s.parse().ok().filter(|&n: &usize| n > 0).ok_or_else(bad)?,
                    None => 10,
                };
                let gamma = match rest.get(1) {
                    Some(s) => s.parse().ok().filter(|g: &f64| *g > 0.0).ok_or_else(bad)?,
                    None => 0.1,
                };
                Ok(Schedule::Step { every, gamma })
            }
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(schedule: Schedule, steps: usize) -> Vec<f64> {
        let mut s = schedule.scheduler(0.1, 2, 4).unwrap();
        (0..steps).map(|_| s.step().base()).collect()
    }

    #[test]
    fn schedules_follow_their_formulas() {
        assert_eq!(rates(Schedule::Constant, 3), [0.1, 0.1, 0.1]);
        // Two steps per epoch, x0.5 every epoch.
        let step = rates(
            Schedule::Step {
                every: 1,
                gamma: 0.5,
            },
            6,
        );
        let want = [0.1, 0.1, 0.05, 0.05, 0.025, 0.025];
        for (a, b) in step.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{step:?}");
        }
        // Cosine over 8 steps: 0.1 * (1 + cos(pi t / 8)) / 2.
        let cos = rates(Schedule::Cosine, 8);
        for (t, a) in cos.iter().enumerate() {
            let want = 0.05 * (1.0 + (std::f64::consts::PI * t as f64 / 8.0).cos());
            assert!((a - want).abs() < 1e-9, "{cos:?}");
        }
    }

    #[test]
    fn schedule_names_parse() {
        assert_eq!(Schedule::parse("cosine").unwrap(), Schedule::Cosine);
        assert_eq!(
            Schedule::parse("step:3:0.5").unwrap(),
            Schedule::Step {
                every: 3,
                gamma: 0.5
            }
        );
        assert_eq!(
            Schedule::parse("step").unwrap(),
            Schedule::Step {
                every: 10,
                gamma: 0.1
            }
        );
        assert!(Schedule::parse("step:0").is_err());
        assert!(
            Schedule::parse("warmup")
                .unwrap_err()
                .to_string()
                .contains("cosine")
        );
    }
}
