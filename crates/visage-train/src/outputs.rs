//! What a training run leaves behind, in its run directory: the metrics log, validation on
//! the val split at the configured cadence (through the one predictor of `visage-infer`),
//! each epoch's checkpoint published as `last` and, when it scores best, `best`, checkpoints
//! within an epoch written as `last`, and the pruning of old epochs.

use std::marker::PhantomData;
use std::time::Instant;

use burn::optim::Optimizer;
use visage_data::layout::Split;
use visage_infer::{evaluate_split, Predictor};
use visage_kernels::{KernelAutodiffBackend, KernelBackend};
use visage_model::{DetectorFamily, TrainableFamily};

use crate::checkpoint::{publish_checkpoint, save_checkpoint, TrainState};
use crate::config::ExperimentConfig;
use crate::error::TrainError;
use crate::events::TrainEvent;
use crate::metrics::{EvalRecord, MetricsLog, SkipRecord, StepRecord};
use crate::run_dir::prune_checkpoints;
use crate::training_loop::RunOutputs;

/// The outputs of a run in `config.run_dir`.
#[derive(Debug)]
pub struct RunDirOutputs<'a, B: KernelAutodiffBackend, M> {
    config: &'a ExperimentConfig,
    metrics: MetricsLog,
    device: B::Device,
    model: PhantomData<M>,
}

impl<'a, B: KernelAutodiffBackend, M> RunDirOutputs<'a, B, M> {
    /// Opens (appending to) the run's `metrics.jsonl`.
    pub fn open(config: &'a ExperimentConfig, device: &B::Device) -> Result<Self, TrainError> {
        Ok(Self {
            config,
            metrics: MetricsLog::open(&config.run_dir.join("metrics.jsonl"))?,
            device: device.clone(),
            model: PhantomData,
        })
    }
}

impl<B, M, O> RunOutputs<M, O> for RunDirOutputs<'_, B, M>
where
    B: KernelAutodiffBackend,
    M: TrainableFamily<B>,
    O: Optimizer<M, B>,
{
    fn log_step(&mut self, record: &StepRecord) -> Result<(), TrainError> {
        self.metrics.append(record)
    }

    fn log_skipped(&mut self, record: &SkipRecord) -> Result<(), TrainError> {
        self.metrics.append(record)
    }

    fn checkpoint(
        &mut self,
        model: &M,
        optimizer: &O,
        state: &mut TrainState,
        events: &mut dyn FnMut(TrainEvent),
    ) -> Result<(), TrainError> {
        state.score = None;
        state.is_best = false;
        state.metrics_bytes = Some(self.metrics.len());
        let last = self.config.run_dir.join("last");
        save_checkpoint(&last, model, optimizer, state, self.config)?;
        events(TrainEvent::CheckpointSaved {
            dir: &last,
            best: false,
        });
        Ok(())
    }

    fn end_epoch(
        &mut self,
        model: &M,
        optimizer: &O,
        state: &mut TrainState,
        events: &mut dyn FnMut(TrainEvent),
    ) -> Result<(), TrainError> {
        let config = self.config;
        let spec = &config.train;
        let validate_now = spec.eval_every > 0
            && (state.epochs_done.is_multiple_of(spec.eval_every)
                || state.epochs_done == spec.epochs);
        state.score = None;
        if validate_now {
            let record = validate(
                &model.valid_model(),
                config,
                state.epochs_done,
                &self.device,
                |done, total| events(TrainEvent::Validating { done, total }),
            )?;
            events(TrainEvent::Validated(&record));
            self.metrics.append(&record)?;
            state.score = Some(record.mean_ap());
        }
        let improved = match (state.score, state.best_score) {
            (Some(s), Some(b)) => s > b,
            (Some(_), None) => true,
            (None, _) => state.best_score.is_none(),
        };
        if improved {
            state.best_score = state.score.or(state.best_score);
        }
        state.is_best = improved;
        state.metrics_bytes = Some(self.metrics.len());
        let run_dir = &config.run_dir;
        let epoch_dir = run_dir.join(format!("epoch-{:04}", state.epochs_done));
        save_checkpoint(&epoch_dir, model, optimizer, state, config)?;
        publish_checkpoint(&epoch_dir, &run_dir.join("last"))?;
        if improved {
            publish_checkpoint(&epoch_dir, &run_dir.join("best"))?;
        }
        prune_checkpoints(run_dir, spec.keep_checkpoints)?;
        events(TrainEvent::CheckpointSaved {
            dir: &epoch_dir,
            best: improved,
        });
        Ok(())
    }
}

/// Detects the val split of `config.data.root` with `model` (the run's `[test]` settings and
/// input normalisation) and scores it: the record of epoch `epoch`.
pub fn validate<B: KernelBackend, M: DetectorFamily<B>>(
    model: &M,
    config: &ExperimentConfig,
    epoch: usize,
    device: &B::Device,
    progress: impl FnMut(usize, usize),
) -> Result<EvalRecord, TrainError> {
    let started = Instant::now();
    let predictor = Predictor::new(model, config.test.clone(), config.data.input_norm(), device)?
        .with_max_image_pixels(config.data.max_image_pixels);
    let (report, _) = evaluate_split(&predictor, &config.data.root, Split::Val, None, progress)?;
    Ok(EvalRecord {
        kind: "val",
        epoch,
        easy: report.easy.ap,
        medium: report.medium.ap,
        hard: report.hard.ap,
        seconds: started.elapsed().as_secs_f64(),
    })
}
