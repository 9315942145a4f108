//! The training of visage, in parts:
//!
//! ```text
//! config/          the experiment file: [data] (the loader's rules), [train], with [model]
//!                  and [test] from visage-model
//! dataset.rs       the training set (synthetic set generated when asked)
//! step.rs          one step: shards → forward, loss, backward → one optimiser step (or
//!                  none, when the loss or a gradient is not finite)
//! data_parallel.rs the shards of a batch
//! distributed/     data parallel over devices and machines on burn-collective: peers,
//!                  topology, the gradients' all-reduce, the coordinator
//! guard.rs         the divergence guard: stop or skip non-finite steps, loss spikes
//! training_loop.rs epochs of steps at the schedule's rate, from any point of an epoch;
//!                  events out, outputs called
//! outputs.rs       metrics, validation (through visage-infer), checkpoints, best / last
//! checkpoint/      checkpoint directories: verified, finite, atomic writes; publish,
//!                  resolve, resume from what a killed run left, load weights
//! param_paths.rs   parameter paths by id: optimiser state keyed by path, across processes
//! run_dir.rs       the run directory's lock, fresh-run guard, pruning of old epochs
//! events.rs        what a run reports; the caller renders it
//! trainer.rs       `train`: the parts assembled for a config
//! device_check.rs  one step of every tiny family on a backend against Flex (wgpu, CUDA)
//! ```
//!
//! SGD with momentum and weight decay (or AdamW), warm-up then step decay, atomic verified
//! checkpoints per epoch and every `checkpoint_every` iterations, exact resume, a JSON-lines
//! metrics log.

pub mod checkpoint;
mod config;
pub mod data_parallel;
pub mod dataset;
pub mod device_check;
pub mod distributed;
mod error;
pub mod events;
pub mod guard;
pub mod metrics;
pub mod outputs;
pub mod param_paths;
pub mod run_dir;
mod schedule;
pub mod step;
mod trainer;
pub mod training_loop;

pub use config::{
    check_devices, DataSpec, DeviceName, ExperimentConfig, NonFinitePolicy, OptimizerKind,
    SynthSpec, TrainSpec,
};
pub use error::TrainError;
pub use events::TrainEvent;
pub use schedule::LrSchedule;
pub use trainer::{train, TrainOptions, TrainSummary};
