//! The learning-rate schedule: linear warm-up, then step decay at given epochs.

use crate::config::TrainSpec;

/// Learning rate as a function of the global iteration.
#[derive(Debug, Clone, PartialEq)]
pub struct LrSchedule {
    base_lr: f64,
    warmup_iters: usize,
    warmup_factor: f64,
    /// Iterations at which the rate is multiplied by `gamma` (epoch × iterations per epoch).
    step_iters: Vec<usize>,
    gamma: f64,
}

impl LrSchedule {
    /// The schedule of `spec` for an epoch of `iters_per_epoch` iterations.
    pub fn new(spec: &TrainSpec, iters_per_epoch: usize) -> Self {
        Self {
            base_lr: spec.lr,
            warmup_iters: spec.warmup_iters,
            warmup_factor: spec.warmup_factor,
            step_iters: spec.lr_steps.iter().map(|e| e * iters_per_epoch).collect(),
            gamma: spec.lr_gamma,
        }
    }

    /// The rate at 0-based global iteration `iter`: during warm-up it rises linearly from
    /// `warmup_factor · lr` to `lr`; after each step boundary it is multiplied by `gamma`.
    pub fn lr(&self, iter: usize) -> f64 {
        let decays = self.step_iters.iter().filter(|&&s| iter >= s).count() as i32;
        let decayed = self.base_lr * self.gamma.powi(decays);
        if iter < self.warmup_iters {
            let alpha = iter as f64 / self.warmup_iters as f64;
            decayed * (self.warmup_factor * (1.0 - alpha) + alpha)
        } else {
            decayed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TrainSpec {
        toml::from_str(
            "epochs = 10\nbatch_size = 2\nlr = 0.1\nwarmup_iters = 10\nwarmup_factor = 0.01\nlr_steps = [2, 4]\nlr_gamma = 0.5",
        )
        .unwrap()
    }

    #[test]
    fn warms_up_linearly_then_steps() {
        let s = LrSchedule::new(&spec(), 20);
        assert!((s.lr(0) - 0.001).abs() < 1e-12);
        // halfway: 0.1 · (0.01 · 0.5 + 0.5) = 0.0505
        assert!((s.lr(5) - 0.0505).abs() < 1e-12);
        assert!((s.lr(10) - 0.1).abs() < 1e-12);
        assert!((s.lr(39) - 0.1).abs() < 1e-12);
        assert!((s.lr(40) - 0.05).abs() < 1e-12);
        assert!((s.lr(80) - 0.025).abs() < 1e-12);
    }
}
