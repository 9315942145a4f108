//! The training loop of visage: SGD with momentum and weight decay, warm-up then step decay,
//! atomic per-epoch checkpoints with resume, a progress bar, a JSON-lines metrics log; plus
//! the inference and validation helpers the CLI shares with it.

pub mod checkpoint;
mod config;
pub mod data_parallel;
mod error;
pub mod infer;
pub mod metrics;
mod schedule;
mod trainer;
pub mod validate;

pub use config::{DataSpec, ExperimentConfig, OptimizerKind, SynthSpec, TrainSpec};
pub use error::TrainError;
pub use schedule::LrSchedule;
pub use trainer::{train, TrainOptions, TrainSummary};
