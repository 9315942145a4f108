//! The training loop: epochs of batches, one [`TrainStep`] each at the schedule's learning
//! rate, events for the observer, and the run's outputs called after logged steps and at
//! each epoch's end. It reads no files and writes none: batches come from a
//! [`BatchSource`], artefacts go to [`RunOutputs`].

use std::time::Instant;

use burn::optim::Optimizer;
use burn::tensor::backend::AutodiffBackend;
use visage_data::{Batch, DataError, EpochSummary, Loader};
use visage_model::{LossValues, ModelError, TrainableFamily};

use crate::checkpoint::TrainState;
use crate::error::TrainError;
use crate::events::TrainEvent;
use crate::metrics::StepRecord;
use crate::schedule::LrSchedule;
use crate::step::TrainStep;

/// Where the batches of each epoch come from.
pub trait BatchSource {
    /// Complete batches per epoch.
    fn batches_per_epoch(&self) -> usize;

    /// The batches of `epoch`, in order.
    fn epoch(&self, epoch: usize) -> Box<dyn Iterator<Item = Result<Batch, DataError>> + '_>;
}

impl BatchSource for Loader {
    fn batches_per_epoch(&self) -> usize {
        Loader::batches_per_epoch(self)
    }

    fn epoch(&self, epoch: usize) -> Box<dyn Iterator<Item = Result<Batch, DataError>> + '_> {
        Box::new(Loader::epoch(self, epoch))
    }
}

/// What a run keeps of the loop: the logged steps, and at each epoch's end whatever it
/// does with the model (validation, checkpoints).
pub trait RunOutputs<M, O> {
    /// Called after every `log_every`-th step.
    fn log_step(&mut self, record: &StepRecord) -> Result<(), TrainError>;

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

/// How long the loop runs and how often it logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopSettings {
    /// Epochs of the run (the loop starts at `state.epochs_done`).
    pub epochs: usize,
    /// Log a step record every this many iterations.
    pub log_every: usize,
    /// Stop after this many iterations in total (an unfinished epoch is not saved).
    pub max_iterations: Option<usize>,
}

/// What the loop did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoopSummary {
    /// The loss of the last step.
    pub last_loss: Option<LossValues>,
    /// Images trained on.
    pub images: usize,
    /// Seconds spent in the epochs (steps and data), validation and checkpoints excluded.
    pub compute_seconds: f64,
}

/// Runs epochs `state.epochs_done..settings.epochs` of `source`, stepping `model` with
/// `step`; `started` is when the run (or resume) began, for the records' elapsed time.
///
/// # Errors
/// A data error, [`TrainError::NonFiniteLoss`] naming the epoch and iteration (nothing of
/// that step is applied), or an error of the outputs.
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
    B: AutodiffBackend,
    M: TrainableFamily<B>,
    O: Optimizer<M, B>,
{
    let mut summary = LoopSummary::default();
    let max_iterations = settings.max_iterations.unwrap_or(usize::MAX);
    let steps = source.batches_per_epoch();
    for epoch in state.epochs_done..settings.epochs {
        events(TrainEvent::EpochStarted {
            epoch,
            epochs: settings.epochs,
            steps,
        });
        let mut window_images = 0usize;
        let mut window_start = Instant::now();
        let epoch_start = Instant::now();
        let (mut epoch_loss, mut epoch_steps, mut epoch_images) = (0.0f64, 0usize, 0usize);
        let mut data = EpochSummary::default();
        let mut stop = false;
        for batch in source.epoch(epoch) {
            let batch = batch?;
            data.add(&batch);
            let lr = schedule.lr(state.iteration);
            let (updated, outcome) = step.run(model, batch, lr).map_err(|e| match e {
                ModelError::NonFiniteLoss(detail) => TrainError::NonFiniteLoss {
                    epoch,
                    iteration: state.iteration,
                    detail,
                },
                other => other.into(),
            })?;
            model = updated;
            state.iteration += 1;
            summary.images += outcome.images;
            window_images += outcome.images;
            epoch_images += outcome.images;
            epoch_loss += outcome.loss.total as f64;
            epoch_steps += 1;
            let images_per_s =
                window_images as f64 / window_start.elapsed().as_secs_f64().max(1e-9);
            events(TrainEvent::Step {
                epoch,
                iteration: state.iteration,
                lr,
                loss: &outcome.loss,
                images_per_s,
            });
            if state.iteration.is_multiple_of(settings.log_every) {
                outputs.log_step(&StepRecord {
                    kind: "train",
                    epoch,
                    iteration: state.iteration,
                    lr,
                    loss: outcome.loss.total,
                    parts: outcome
                        .loss
                        .parts
                        .iter()
                        .map(|(name, v)| (format!("loss_{name}"), *v))
                        .collect(),
                    positives: outcome.loss.num_positive,
                    images_per_s,
                    elapsed_s: started.elapsed().as_secs_f64(),
                })?;
                window_images = 0;
                window_start = Instant::now();
            }
            summary.last_loss = Some(outcome.loss);
            if state.iteration >= max_iterations {
                stop = true;
                break;
            }
        }
        let seconds = epoch_start.elapsed().as_secs_f64();
        summary.compute_seconds += seconds;
        if stop {
            break;
        }
        state.epochs_done = epoch + 1;
        events(TrainEvent::EpochFinished {
            epoch,
            epochs: settings.epochs,
            mean_loss: epoch_loss / epoch_steps.max(1) as f64,
            images_per_s: epoch_images as f64 / seconds.max(1e-9),
            seconds,
            data: &data,
        });
        outputs.end_epoch(&model, step.optimizer(), state, events)?;
    }
    Ok((model, summary))
}

#[cfg(test)]
#[path = "training_loop_tests.rs"]
mod tests;
