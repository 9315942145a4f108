//! `[train]`: optimiser, schedule, checkpoints, validation cadence.

use serde::{Deserialize, Serialize};

use super::devices::{check_devices, DeviceName};
use super::invalid;
use crate::error::TrainError;

/// The optimiser: `"sgd"` (momentum, no dampening, L2 weight decay — the papers' recipe) or
/// `"adamw"` (decoupled weight decay; β = 0.9 / 0.999, ε = 1e-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// SGD with momentum.
    #[default]
    Sgd,
    /// AdamW.
    Adamw,
}

/// What a step whose loss or gradients are NaN or infinite does (`train.on_non_finite`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NonFinitePolicy {
    /// End the run; the last checkpoint (written before the step) is the state to go back to.
    #[default]
    Stop,
    /// Leave the model and optimiser as they were, count the step as skipped and go on; end
    /// the run after `train.max_consecutive_skips` skips in a row.
    Skip,
}

/// `[train]`: optimiser, schedule, checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    /// Passes over the training set.
    pub epochs: usize,
    /// Which optimiser.
    #[serde(default)]
    pub optimizer: OptimizerKind,
    /// Images per batch.
    pub batch_size: usize,
    /// The devices to train on, one model replica each (default: the command line's
    /// `--device`), e.g. `["cuda:0", "cuda:1", "cuda:2", "cuda:3"]`: each batch is split
    /// over them and their gradients summed every step (burn-collective); `["cpu", "cpu"]`
    /// runs two replicas on CPU threads. One backend per run; `--devices` overrides it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceName>,
    /// Replaced by `devices`; refused with a message that says so.
    #[serde(default, skip_serializing)]
    pub replicas: Option<usize>,
    /// Base learning rate (after warm-up, before decay).
    pub lr: f64,
    /// SGD momentum (no dampening, as PyTorch's SGD); unused by AdamW.
    #[serde(default = "momentum")]
    pub momentum: f64,
    /// Weight decay (L2 for SGD, decoupled for AdamW).
    #[serde(default = "weight_decay")]
    pub weight_decay: f32,
    /// Linear warm-up length in iterations.
    #[serde(default)]
    pub warmup_iters: usize,
    /// Learning-rate factor at the first warm-up iteration.
    #[serde(default = "warmup_factor")]
    pub warmup_factor: f64,
    /// Epochs at which the learning rate is multiplied by `lr_gamma`.
    #[serde(default)]
    pub lr_steps: Vec<usize>,
    /// Step decay factor.
    #[serde(default = "lr_gamma")]
    pub lr_gamma: f64,
    /// Clip the gradient norm of each parameter tensor to this value, if set.
    #[serde(default)]
    pub grad_clip_norm: Option<f32>,
    /// Seed of the data order and augmentations.
    #[serde(default)]
    pub seed: u64,
    /// Write a metrics line every this many iterations.
    #[serde(default = "log_every")]
    pub log_every: usize,
    /// Evaluate on the val split every this many epochs (0: never); the best checkpoint is the
    /// one with the highest mean of Easy, Medium and Hard AP (else the last one).
    #[serde(default)]
    pub eval_every: usize,
    /// Keep this many per-epoch checkpoints besides `last` and `best` (0: keep all).
    #[serde(default = "keep_checkpoints")]
    pub keep_checkpoints: usize,
    /// Also write `last` every this many iterations within an epoch (0: at epoch ends only):
    /// how much work a killed run can lose.
    #[serde(default)]
    pub checkpoint_every: usize,
    /// What a step with a NaN or infinite loss or gradient does: `"stop"` (default) or
    /// `"skip"`.
    #[serde(default)]
    pub on_non_finite: NonFinitePolicy,
    /// With `on_non_finite = "skip"`, end the run after this many skipped steps in a row.
    #[serde(default = "max_consecutive_skips")]
    pub max_consecutive_skips: usize,
    /// Warn when a step's loss exceeds this many times the running mean of the loss (0: never).
    #[serde(default = "loss_spike_factor")]
    pub loss_spike_factor: f64,
}

fn momentum() -> f64 {
    0.9
}
fn weight_decay() -> f32 {
    1e-4
}
fn warmup_factor() -> f64 {
    0.001
}
fn lr_gamma() -> f64 {
    0.1
}
fn log_every() -> usize {
    10
}
fn keep_checkpoints() -> usize {
    3
}
fn max_consecutive_skips() -> usize {
    10
}
fn loss_spike_factor() -> f64 {
    10.0
}

impl TrainSpec {
    /// Checks value ranges; errors name the `train.*` key. (`batch_size` is the loader's
    /// rule, checked with `[data]`.)
    pub(crate) fn validate(&self) -> Result<(), TrainError> {
        let t = self;
        if t.epochs == 0 {
            return Err(invalid("train.epochs", "must be > 0"));
        }
        if let Some(n) = t.replicas {
            return Err(invalid(
                "train.replicas",
                format!(
                    "was replaced by train.devices (one model replica per device, gradients \
                     summed with burn-collective): for {n} replicas on the CPU write devices = \
                     [{}]",
                    vec!["\"cpu\""; n.max(1)].join(", ")
                ),
            ));
        }
        check_devices(&t.devices).map_err(|e| invalid("train.devices", e))?;
        if t.devices.len() > t.batch_size {
            return Err(invalid(
                "train.devices",
                format!(
                    "{} devices for a batch of {}",
                    t.devices.len(),
                    t.batch_size
                ),
            ));
        }
        if !(t.lr.is_finite() && t.lr > 0.0) {
            return Err(invalid("train.lr", "must be > 0"));
        }
        if !(0.0..1.0).contains(&t.momentum) {
            return Err(invalid("train.momentum", "must be in [0, 1)"));
        }
        if !(t.weight_decay >= 0.0 && t.weight_decay.is_finite()) {
            return Err(invalid("train.weight_decay", "must be >= 0"));
        }
        if !(t.warmup_factor > 0.0 && t.warmup_factor <= 1.0) {
            return Err(invalid("train.warmup_factor", "must be in (0, 1]"));
        }
        if !(t.lr_gamma > 0.0 && t.lr_gamma <= 1.0) {
            return Err(invalid("train.lr_gamma", "must be in (0, 1]"));
        }
        if t.lr_steps.windows(2).any(|w| w[0] >= w[1]) {
            return Err(invalid("train.lr_steps", "must be strictly increasing"));
        }
        if let Some(c) = t.grad_clip_norm {
            if !(c.is_finite() && c > 0.0) {
                return Err(invalid("train.grad_clip_norm", "must be > 0 when set"));
            }
        }
        if t.log_every == 0 {
            return Err(invalid("train.log_every", "must be > 0"));
        }
        if t.max_consecutive_skips == 0 {
            return Err(invalid("train.max_consecutive_skips", "must be > 0"));
        }
        if !(t.loss_spike_factor == 0.0 || t.loss_spike_factor > 1.0) {
            return Err(invalid(
                "train.loss_spike_factor",
                format!("must be 0 (off) or > 1, got {}", t.loss_spike_factor),
            ));
        }
        Ok(())
    }
}
