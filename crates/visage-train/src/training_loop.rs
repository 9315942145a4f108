//! The training loop: epochs of batches, one [`TrainStep`] each at the schedule's learning
//! rate, events for the observer, and the run's outputs called after logged steps, at
//! checkpoints within an epoch and at each epoch's end. It reads no files and writes none:
//! batches come from a [`BatchSource`], artefacts go to [`RunOutputs`].
//!
//! A run continues where its [`TrainState`] says, mid-epoch included: the epoch's remaining
//! batches come from the source (each batch depends only on the seed, the epoch and its
//! index), and the epoch's loss sums and the divergence guard's counters come from the state.

use std::time::Instant;

use burn::optim::Optimizer;
use visage_data::{Batch, DataError, EpochSummary, Loader};
use visage_kernels::KernelAutodiffBackend;
use visage_model::{LossValues, TrainableFamily};

use crate::checkpoint::TrainState;
use crate::error::TrainError;
use crate::events::TrainEvent;
use crate::guard::GuardSettings;
use crate::metrics::{SkipRecord, StepRecord};
use crate::schedule::LrSchedule;
use crate::step::{StepOutcome, TrainStep};

/// Where the batches of each epoch come from.
pub trait BatchSource {
    /// Complete batches per epoch.
    fn batches_per_epoch(&self) -> usize;

    /// The batches `first..` of `epoch`, in order (batch `k` the same whatever `first`).
    fn epoch(
        &self,
        epoch: usize,
        first: usize,
    ) -> Box<dyn Iterator<Item = Result<Batch, DataError>> + '_>;
}

impl BatchSource for Loader {
    fn batches_per_epoch(&self) -> usize {
        Loader::batches_per_epoch(self)
    }

    fn epoch(
        &self,
        epoch: usize,
        first: usize,
    ) -> Box<dyn Iterator<Item = Result<Batch, DataError>> + '_> {
        Box::new(Loader::epoch_from(self, epoch, first))
    }
}

/// What a run keeps of the loop: the logged and skipped steps, checkpoints within an epoch,
/// and at each epoch's end whatever it does with the model (validation, checkpoints).
pub trait RunOutputs<M, O> {
    /// Called after every `log_every`-th step.
    fn log_step(&mut self, record: &StepRecord) -> Result<(), TrainError>;

    /// Called for every step skipped for a non-finite loss or gradient.
    fn log_skipped(&mut self, record: &SkipRecord) -> Result<(), TrainError>;

    /// Called within an epoch every `checkpoint_every` iterations, and when the run stops
    /// at `max_iterations` mid-epoch: saves what a resumed run continues from.
    fn checkpoint(
        &mut self,
        model: &M,
        optimizer: &O,
        state: &mut TrainState,
        events: &mut dyn FnMut(TrainEvent),
    ) -> Result<(), TrainError>;

    /// Called when an epoch completes (`state.epochs_done` already counts it); may set the
    /// state's validation score and best score.
    fn end_epoch(
        &mut self,
        model: &M,
        optimizer: &O,
        state: &mut TrainState,
        events: &mut dyn FnMut(TrainEvent),
    ) -> Result<(), TrainError>;
}

/// The outputs of a machine other than rank 0 in a multi-machine run: rank 0 writes the
/// metrics, checkpoints and validation; the others keep nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoOutputs;

impl<M, O> RunOutputs<M, O> for NoOutputs {
    fn log_step(&mut self, _: &StepRecord) -> Result<(), TrainError> {
        Ok(())
    }

    fn log_skipped(&mut self, _: &SkipRecord) -> Result<(), TrainError> {
        Ok(())
    }

    fn checkpoint(
        &mut self,
        _: &M,
        _: &O,
        _: &mut TrainState,
        _: &mut dyn FnMut(TrainEvent),
    ) -> Result<(), TrainError> {
        Ok(())
    }

    fn end_epoch(
        &mut self,
        _: &M,
        _: &O,
        _: &mut TrainState,
        _: &mut dyn FnMut(TrainEvent),
    ) -> Result<(), TrainError> {
        Ok(())
    }
}

/// How long the loop runs, how often it logs and checkpoints, and its divergence guard.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoopSettings {
    /// Epochs of the run (the loop starts at `state.epochs_done`).
    pub epochs: usize,
    /// Log a step record every this many iterations.
    pub log_every: usize,
    /// Checkpoint every this many iterations within an epoch (0: at epoch ends only).
    pub checkpoint_every: usize,
    /// Stop after this many iterations in total.
    pub max_iterations: Option<usize>,
    /// Checkpoint when stopping at `max_iterations` mid-epoch (not for a dry run).
    pub checkpoint_on_stop: bool,
    /// Non-finite steps and loss spikes.
    pub guard: GuardSettings,
}

/// What the loop did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoopSummary {
    /// The loss of the last applied step.
    pub last_loss: Option<LossValues>,
    /// Images trained on.
    pub images: usize,
    /// Seconds spent in the epochs (steps and data), validation and checkpoints excluded.
    pub compute_seconds: f64,
}

/// Runs `source` from where `state` stands (epoch `state.epochs_done`, its batch
/// `state.epoch.batches_done`) to `settings.epochs`, stepping `model` with `step`; `started`
/// is when the run (or resume) began, for the records' elapsed time.
///
/// # Errors
/// A data error, [`TrainError::NonFiniteLoss`] or [`TrainError::TooManySkips`] from the
/// guard (nothing of that step is applied or saved), or an error of the outputs.
#[allow(clippy::too_many_arguments)]
pub fn run_epochs<B, M, O>(
    mut model: M,
    step: &mut TrainStep<B, M, O>,
    state: &mut TrainState,
    source: &dyn BatchSource,
    schedule: &LrSchedule,
    settings: &LoopSettings,
    started: Instant,
    outputs: &mut dyn RunOutputs<M, O>,
    events: &mut dyn FnMut(TrainEvent),
) -> Result<(M, LoopSummary), TrainError>
where
    B: KernelAutodiffBackend,
    M: TrainableFamily<B>,
    O: Optimizer<M, B>,
{
    let mut summary = LoopSummary::default();
    let max_iterations = settings.max_iterations.unwrap_or(usize::MAX);
    let steps = source.batches_per_epoch();
    let guard = &settings.guard;
    if state.iteration >= max_iterations {
        return Ok((model, summary));
    }
    for epoch in state.epochs_done..settings.epochs {
        events(TrainEvent::EpochStarted {
            epoch,
            epochs: settings.epochs,
            steps,
            first: state.epoch.batches_done,
        });
        let mut window_images = 0usize;
        let mut window_start = Instant::now();
        let epoch_start = Instant::now();
        let mut data = EpochSummary::default();
        let mut images_here = 0usize;
        let mut stop = false;
        for batch in source.epoch(epoch, state.epoch.batches_done) {
            let batch = batch?;
            data.add(&batch);
            let lr = schedule.lr(state.iteration);
            let (updated, outcome) = step.run(model, batch, lr)?;
            model = updated;
            state.iteration += 1;
            state.epoch.batches_done += 1;
            state.epoch.images += outcome.images();
            summary.images += outcome.images();
            images_here += outcome.images();
            window_images += outcome.images();
            match outcome {
                StepOutcome::Applied { loss, .. } => {
                    if let Some(mean) = guard.applied(&mut state.guard, loss.total) {
                        events(TrainEvent::LossSpike {
                            epoch,
                            iteration: state.iteration,
                            loss: loss.total,
                            running_mean: mean,
                        });
                    }
                    state.epoch.loss_sum += f64::from(loss.total);
                    state.epoch.steps += 1;
                    let images_per_s =
                        window_images as f64 / window_start.elapsed().as_secs_f64().max(1e-9);
                    events(TrainEvent::Step {
                        epoch,
                        iteration: state.iteration,
                        lr,
                        loss: &loss,
                        images_per_s,
                    });
                    if state.iteration.is_multiple_of(settings.log_every) {
                        outputs.log_step(&StepRecord::new(
                            epoch,
                            state.iteration,
                            lr,
                            &loss,
                            images_per_s,
                            started.elapsed().as_secs_f64(),
                        ))?;
                        window_images = 0;
                        window_start = Instant::now();
                    }
                    summary.last_loss = Some(loss);
                }
                StepOutcome::NonFinite {
                    detail, reverted, ..
                } => {
                    let iteration = state.iteration;
                    if !reverted {
                        // The first step of a model: nothing to go back to, whatever the policy.
                        return Err(TrainError::NonFiniteLoss {
                            epoch,
                            iteration,
                            detail: format!("{detail} at the model's first step"),
                        });
                    }
                    outputs.log_skipped(&SkipRecord::new(epoch, iteration, lr, &detail))?;
                    guard.non_finite(&mut state.guard, epoch, iteration, detail.clone())?;
                    events(TrainEvent::StepSkipped {
                        epoch,
                        iteration,
                        detail: &detail,
                        consecutive: state.guard.consecutive_skips,
                        limit: guard.max_consecutive_skips,
                    });
                }
            }
            let epoch_ends = state.epoch.batches_done >= steps;
            stop = state.iteration >= max_iterations;
            let every = settings.checkpoint_every;
            let due = every > 0 && state.iteration.is_multiple_of(every);
            if !epoch_ends && ((stop && settings.checkpoint_on_stop) || due) {
                outputs.checkpoint(&model, step.optimizer(), state, events)?;
            }
            if stop && !epoch_ends {
                break;
            }
        }
        let seconds = epoch_start.elapsed().as_secs_f64();
        summary.compute_seconds += seconds;
        if state.epoch.batches_done < steps {
            // Stopped at `max_iterations` within the epoch (or the source ended early).
            break;
        }
        let finished = std::mem::take(&mut state.epoch);
        state.epochs_done = epoch + 1;
        events(TrainEvent::EpochFinished {
            epoch,
            epochs: settings.epochs,
            mean_loss: finished.mean_loss(),
            images_per_s: images_here as f64 / seconds.max(1e-9),
            seconds,
            data: &data,
        });
        outputs.end_epoch(&model, step.optimizer(), state, events)?;
        if stop {
            break;
        }
    }
    Ok((model, summary))
}

#[cfg(test)]
#[path = "training_loop_tests.rs"]
mod tests;
