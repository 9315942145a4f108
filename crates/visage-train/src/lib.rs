//! The training of visage, in parts:
//!
//! ```text
//! config/          the experiment file: [data] (the loader's rules), [train], with [model]
//!                  and [test] from visage-model
//! dataset.rs       the training set (synthetic set generated when asked)
//! step.rs          one step: shards → forward, loss, backward → one optimiser step
//! data_parallel.rs the shards' gradients, summed
//! training_loop.rs epochs of steps at the schedule's rate; events out, outputs called
//! outputs.rs       metrics, validation (through visage-infer), checkpoints, best / last
//! checkpoint.rs    checkpoint directories: write, publish, resolve, resume, load weights
//! run_dir.rs       fresh-run guard, pruning of old epochs
//! events.rs        what a run reports; the caller renders it
//! trainer.rs       `train`: the parts assembled for a config
//! ```
//!
//! SGD with momentum and weight decay (or AdamW), warm-up then step decay, atomic per-epoch
//! checkpoints with resume, a JSON-lines metrics log.

pub mod checkpoint;
mod config;
pub mod data_parallel;
pub mod dataset;
mod error;
pub mod events;
pub mod metrics;
pub mod outputs;
pub mod run_dir;
mod schedule;
pub mod step;
mod trainer;
pub mod training_loop;

pub use config::{DataSpec, ExperimentConfig, OptimizerKind, SynthSpec, TrainSpec};
pub use error::TrainError;
pub use events::TrainEvent;
pub use schedule::LrSchedule;
pub use trainer::{train, TrainOptions, TrainSummary};
