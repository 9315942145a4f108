//! The divergence guard: what a step whose loss or gradients are not finite does
//! (`train.on_non_finite`: stop, or skip up to `train.max_consecutive_skips` in a row), and the
//! warning when a loss jumps far above its running mean (`train.loss_spike_factor`). Its
//! counters live in the [`GuardState`] of the checkpoints, so a resumed run decides as the
//! uninterrupted one would.

use crate::checkpoint::GuardState;
use crate::config::{NonFinitePolicy, TrainSpec};
use crate::error::TrainError;

/// Weight of a new loss in the running mean (about the last 50 steps).
const MEAN_WEIGHT: f64 = 0.02;

/// The guard's settings, from `[train]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuardSettings {
    /// `train.on_non_finite`.
    pub on_non_finite: NonFinitePolicy,
    /// `train.max_consecutive_skips`.
    pub max_consecutive_skips: usize,
    /// `train.loss_spike_factor` (0: no warning).
    pub loss_spike_factor: f64,
}

impl GuardSettings {
    /// The settings of `spec`.
    pub fn of(spec: &TrainSpec) -> Self {
        Self {
            on_non_finite: spec.on_non_finite,
            max_consecutive_skips: spec.max_consecutive_skips,
            loss_spike_factor: spec.loss_spike_factor,
        }
    }

    /// A step whose loss was `loss`: resets the skip run and updates the running mean;
    /// returns the mean it is a spike over, if it is one.
    pub fn applied(&self, state: &mut GuardState, loss: f32) -> Option<f64> {
        state.consecutive_skips = 0;
        let loss = f64::from(loss);
        let spike = state
            .loss_mean
            .filter(|mean| self.loss_spike_factor > 0.0 && loss > self.loss_spike_factor * mean);
        state.loss_mean = Some(match state.loss_mean {
            None => loss,
            Some(mean) => mean + MEAN_WEIGHT * (loss - mean),
        });
        spike
    }

    /// A step with a non-finite loss or gradient (`detail`), at `epoch` / `iteration`: an
    /// error that ends the run, or `Ok` when it is skipped (and counted).
    pub fn non_finite(
        &self,
        state: &mut GuardState,
        epoch: usize,
        iteration: usize,
        detail: String,
    ) -> Result<(), TrainError> {
        match self.on_non_finite {
            NonFinitePolicy::Stop => Err(TrainError::NonFiniteLoss {
                epoch,
                iteration,
                detail,
            }),
            NonFinitePolicy::Skip => {
                state.skipped_steps += 1;
                state.consecutive_skips += 1;
                if state.consecutive_skips >= self.max_consecutive_skips {
                    return Err(TrainError::TooManySkips {
                        skips: state.consecutive_skips,
                        epoch,
                        iteration,
                        detail,
                    });
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(on_non_finite: NonFinitePolicy) -> GuardSettings {
        GuardSettings {
            on_non_finite,
            max_consecutive_skips: 3,
            loss_spike_factor: 10.0,
        }
    }

    #[test]
    fn skips_are_counted_until_too_many_in_a_row() {
        let guard = settings(NonFinitePolicy::Skip);
        let mut state = GuardState::default();
        guard.non_finite(&mut state, 0, 1, "x".into()).unwrap();
        guard.non_finite(&mut state, 0, 2, "x".into()).unwrap();
        guard.applied(&mut state, 1.0);
        assert_eq!((state.skipped_steps, state.consecutive_skips), (2, 0));
        guard.non_finite(&mut state, 0, 4, "x".into()).unwrap();
        guard.non_finite(&mut state, 0, 5, "x".into()).unwrap();
        let err = guard
            .non_finite(&mut state, 1, 6, "gradients".into())
            .unwrap_err()
            .to_string();
        assert!(err.contains("3 consecutive steps skipped"), "{err}");
        assert!(err.contains("iteration 6: gradients"), "{err}");
        let err = settings(NonFinitePolicy::Stop)
            .non_finite(&mut GuardState::default(), 0, 7, "loss: total NaN".into())
            .unwrap_err()
            .to_string();
        assert!(err.contains("last checkpoint is intact"), "{err}");
    }

    #[test]
    fn a_loss_far_above_its_running_mean_is_a_spike() {
        let guard = settings(NonFinitePolicy::Stop);
        let mut state = GuardState::default();
        assert_eq!(guard.applied(&mut state, 2.0), None);
        assert_eq!(guard.applied(&mut state, 19.0), None, "below 10 × 2");
        let mean = state.loss_mean.unwrap();
        assert!((mean - (2.0 + 0.02 * 17.0)).abs() < 1e-12);
        assert_eq!(guard.applied(&mut state, 1000.0), Some(mean));
        let off = GuardSettings {
            loss_spike_factor: 0.0,
            ..guard
        };
        assert_eq!(off.applied(&mut state, 1e9), None);
    }
}
