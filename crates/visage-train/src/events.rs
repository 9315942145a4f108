//! What a training run reports as it goes. The library never prints: the loop and its
//! outputs hand these to the caller's observer, which renders them (the CLI draws progress
//! bars and prints lines; tests collect them).

use std::path::Path;

use visage_data::{EpochSummary, SelectionReport};
use visage_model::LossValues;

use crate::metrics::EvalRecord;

/// One thing that happened in a training run.
#[derive(Debug, Clone, Copy)]
pub enum TrainEvent<'a> {
    /// The synthetic set is being generated into `root` (it was missing).
    GeneratingSynth {
        /// The data root.
        root: &'a Path,
        /// Training images to generate.
        train_images: usize,
        /// Validation images to generate.
        val_images: usize,
    },
    /// The training set was read: what the annotation selection kept.
    TrainSet(&'a SelectionReport),
    /// Images whose header could not be read; the loader skips them when they come up.
    UnreadableImages {
        /// How many.
        count: usize,
        /// The first of them.
        first: &'a Path,
        /// Why the first could not be read.
        reason: &'a str,
    },
    /// A new run's backbone was initialised from this file.
    BackboneInitialised(&'a Path),
    /// A checkpoint of the run directory was not usable to resume from (corrupt, incomplete).
    CheckpointPassedOver {
        /// The checkpoint.
        dir: &'a Path,
        /// Why.
        reason: &'a str,
    },
    /// The run continues from a checkpoint.
    Resumed {
        /// The checkpoint.
        from: &'a Path,
        /// Epochs it had completed.
        epochs_done: usize,
        /// Iterations it had completed.
        iteration: usize,
    },
    /// An epoch starts (or continues, when a run resumes within it).
    EpochStarted {
        /// 0-based epoch.
        epoch: usize,
        /// Epochs of the run.
        epochs: usize,
        /// Steps in the epoch.
        steps: usize,
        /// Steps of it already done (0 unless resumed mid-epoch).
        first: usize,
    },
    /// A step finished.
    Step {
        /// 0-based epoch.
        epoch: usize,
        /// Iterations done (1-based).
        iteration: usize,
        /// The learning rate of the step.
        lr: f64,
        /// Its loss.
        loss: &'a LossValues,
        /// Throughput since the last logged step.
        images_per_s: f64,
    },
    /// A step's loss exceeded `train.loss_spike_factor` times the running mean.
    LossSpike {
        /// 0-based epoch.
        epoch: usize,
        /// Iterations done (1-based).
        iteration: usize,
        /// The step's total loss.
        loss: f32,
        /// The running mean before it.
        running_mean: f64,
    },
    /// A step was skipped for a non-finite loss or gradient (`train.on_non_finite = "skip"`).
    StepSkipped {
        /// 0-based epoch.
        epoch: usize,
        /// Iterations done (1-based).
        iteration: usize,
        /// What was not finite.
        detail: &'a str,
        /// Skipped in a row, this one included.
        consecutive: usize,
        /// `train.max_consecutive_skips`.
        limit: usize,
    },
    /// An epoch finished (before its validation and checkpoint).
    EpochFinished {
        /// 0-based epoch.
        epoch: usize,
        /// Epochs of the run.
        epochs: usize,
        /// Mean total loss of its steps.
        mean_loss: f64,
        /// Its training throughput.
        images_per_s: f64,
        /// Its wall time.
        seconds: f64,
        /// What the loader reported: faces kept and dropped, bad images skipped.
        data: &'a EpochSummary,
    },
    /// Validation made progress: `done` of `total` images detected.
    Validating {
        /// Images detected.
        done: usize,
        /// Images of the split.
        total: usize,
    },
    /// Validation finished.
    Validated(&'a EvalRecord),
    /// A checkpoint was written and published as `last` (and `best` when `best`).
    CheckpointSaved {
        /// The checkpoint directory (an epoch's, or `last` within an epoch).
        dir: &'a Path,
        /// Whether it became `best`.
        best: bool,
    },
}
