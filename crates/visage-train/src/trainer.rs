//! `train`: a run assembled from its parts — the run directory (locked for the run) and data
//! set, the loader and schedule, the model of the configured family (initial backbone
//! weights, or the newest good checkpoint when resuming), the optimiser, then [`run_epochs`]
//! with the run directory's outputs.

use std::path::PathBuf;
use std::time::Instant;

use burn::grad_clipping::GradientClippingConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, Optimizer, SgdConfig};
use burn::tensor::backend::AutodiffBackend;
use visage_data::Loader;
use visage_model::{LossValues, TrainableFamily, WithTrainableFamily};

use crate::checkpoint::{find_resumable, load_for_resume, prepare_resume, TrainState};
use crate::config::{ExperimentConfig, OptimizerKind};
use crate::dataset::{ensure_dataset, train_dataset};
use crate::error::{io, write_error, TrainError};
use crate::events::TrainEvent;
use crate::guard::GuardSettings;
use crate::outputs::RunDirOutputs;
use crate::run_dir::{clear_previous_run, RunLock};
use crate::schedule::LrSchedule;
use crate::step::TrainStep;
use crate::training_loop::{run_epochs, LoopSettings};

/// How a training run is driven (beyond its config).
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue from the newest good checkpoint of the run directory (model, optimiser,
    /// schedule and epoch position, divergence guard, metrics).
    pub resume: bool,
    /// Start over in a run directory that already holds checkpoints (they are deleted).
    pub overwrite: bool,
    /// Stop after this many iterations in total, with a checkpoint to resume from.
    pub max_iterations: Option<usize>,
    /// With `max_iterations`: a check of the set-up, which writes no checkpoint unless an
    /// epoch completes.
    pub dry_run: bool,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Epochs completed in total.
    pub epochs_done: usize,
    /// Iterations completed in total.
    pub iterations: usize,
    /// The loss of the last step.
    pub last_loss: Option<LossValues>,
    /// Wall time of this invocation, seconds.
    pub seconds: f64,
    /// Mean training throughput of this invocation.
    pub images_per_second: f64,
}

/// Trains the detector of `config` on `device`, writing checkpoints, metrics and the resolved
/// config under `config.run_dir`; `events` sees everything that happens.
pub fn train<B: AutodiffBackend>(
    config: &ExperimentConfig,
    options: &TrainOptions,
    device: &B::Device,
    events: &mut dyn FnMut(TrainEvent),
) -> Result<TrainSummary, TrainError> {
    let started = Instant::now();
    let run_dir = &config.run_dir;
    std::fs::create_dir_all(run_dir).map_err(io(run_dir))?;
    // Held until the run returns: one writer per run directory, `--overwrite` included.
    let _lock = RunLock::acquire(run_dir)?;
    if !options.resume {
        clear_previous_run(run_dir, options.overwrite)?;
    }
    let resolved = run_dir.join("config.toml");
    std::fs::write(&resolved, config.to_toml()).map_err(write_error(&resolved))?;
    ensure_dataset(&config.data, |synth| {
        events(TrainEvent::GeneratingSynth {
            root: &config.data.root,
            train_images: synth.train_images,
            val_images: synth.val_images,
        })
    })?;
    let loader = open_loader(config, events)?;
    let iters_per_epoch = loader.batches_per_epoch();
    if iters_per_epoch == 0 {
        return Err(TrainError::InvalidConfig {
            key: "train.batch_size".into(),
            message: format!(
                "larger than the training set ({} images): no complete batch",
                loader.dataset().len()
            ),
        });
    }
    config.model.with_trainable_family::<B, _>(FamilyRun {
        config,
        options,
        loader: &loader,
        schedule: LrSchedule::new(&config.train, iters_per_epoch),
        started,
        device,
        events,
    })
}

/// The training set and its loader; reports what the selection kept, and stops on an
/// unreadable image when `on_bad_image = "error"`.
fn open_loader(
    config: &ExperimentConfig,
    events: &mut dyn FnMut(TrainEvent),
) -> Result<Loader, TrainError> {
    let (dataset, report) = train_dataset(&config.data)?;
    events(TrainEvent::TrainSet(&report));
    if let Some((path, reason)) = report.unreadable.first() {
        // The loader applies `on_bad_image` to these; in error mode, stop before training.
        if config.data.on_bad_image == visage_data::OnBadImage::Error {
            let max = config.data.max_image_pixels;
            return Err(match visage_data::load_rgb_limited(path, max) {
                Err(e) => e.into(),
                Ok(_) => TrainError::Data(visage_data::DataError::BadImage {
                    path: path.clone(),
                    kind: visage_data::BadImageKind::Corrupt,
                    detail: reason.clone(),
                }),
            });
        }
        events(TrainEvent::UnreadableImages {
            count: report.unreadable.len(),
            first: path,
            reason,
        });
    }
    Ok(Loader::new(
        dataset,
        config.data.loader_config(&config.train),
    )?)
}

/// The rest of a run, once the family is known.
struct FamilyRun<'a, 'e, B: AutodiffBackend> {
    config: &'a ExperimentConfig,
    options: &'a TrainOptions,
    loader: &'a Loader,
    schedule: LrSchedule,
    started: Instant,
    device: &'a B::Device,
    events: &'a mut (dyn FnMut(TrainEvent) + 'e),
}

impl<B: AutodiffBackend> WithTrainableFamily<B> for FamilyRun<'_, '_, B> {
    type Output = Result<TrainSummary, TrainError>;

    fn run<M: TrainableFamily<B>>(self, spec: &M::Spec) -> Self::Output {
        let train = &self.config.train;
        // Seed the backend so weight initialisation (like the data order) follows the seed.
        B::seed(self.device, train.seed);
        let mut model = M::new(spec, self.device)?
            .with_input_normalisation(self.config.data.pixel_normalisation());
        if !self.options.resume {
            // A resumed run's checkpoint holds every weight; a new run may start from
            // ImageNet.
            let (loaded, file) = model.load_initial_backbone_weights()?;
            model = loaded;
            if let Some(file) = file {
                (self.events)(TrainEvent::BackboneInitialised(&file));
            }
        }
        let clipping = train.grad_clip_norm.map(GradientClippingConfig::Norm);
        match train.optimizer {
            OptimizerKind::Sgd => {
                let optimizer = SgdConfig::new()
                    .with_momentum(Some(MomentumConfig {
                        momentum: train.momentum,
                        dampening: 0.0,
                        nesterov: false,
                    }))
                    .with_weight_decay(Some(WeightDecayConfig {
                        penalty: train.weight_decay,
                    }))
                    .with_gradient_clipping(clipping)
                    .init::<B, M>();
                self.with_optimizer(model, optimizer)
            }
            OptimizerKind::Adamw => {
                let optimizer = AdamWConfig::new()
                    .with_epsilon(1e-8)
                    .with_weight_decay(train.weight_decay)
                    .with_grad_clipping(clipping)
                    .init::<B, M>();
                self.with_optimizer(model, optimizer)
            }
        }
    }
}

impl<B: AutodiffBackend> FamilyRun<'_, '_, B> {
    /// Resumes if asked, then runs the epochs with the run directory's outputs.
    fn with_optimizer<M, O>(self, model: M, optimizer: O) -> Result<TrainSummary, TrainError>
    where
        M: TrainableFamily<B>,
        O: Optimizer<M, B>,
    {
        let FamilyRun {
            config,
            options,
            loader,
            schedule,
            started,
            device,
            events,
        } = self;
        let (model, optimizer, mut state) = if options.resume {
            let from = find_resumable(&config.run_dir)?;
            for (dir, reason) in &from.passed_over {
                events(TrainEvent::CheckpointPassedOver { dir, reason });
            }
            let (model, optimizer, state) = load_for_resume(&from.dir, model, optimizer, device)?;
            prepare_resume(&config.run_dir, &from)?;
            events(TrainEvent::Resumed {
                from: &from.dir,
                epochs_done: state.epochs_done,
                iteration: state.iteration,
            });
            (model, optimizer, state)
        } else {
            (model, optimizer, TrainState::default())
        };
        let mut step = TrainStep::new(optimizer, config.train.replicas, device);
        let mut outputs = RunDirOutputs::<B, M>::open(config, device)?;
        let settings = LoopSettings {
            epochs: config.train.epochs,
            log_every: config.train.log_every,
            checkpoint_every: config.train.checkpoint_every,
            max_iterations: options.max_iterations,
            checkpoint_on_stop: !options.dry_run,
            guard: GuardSettings::of(&config.train),
        };
        let (_, summary) = run_epochs(
            model,
            &mut step,
            &mut state,
            loader,
            &schedule,
            &settings,
            started,
            &mut outputs,
            events,
        )?;
        Ok(TrainSummary {
            run_dir: config.run_dir.clone(),
            epochs_done: state.epochs_done,
            iterations: state.iteration,
            last_loss: summary.last_loss,
            seconds: started.elapsed().as_secs_f64(),
            images_per_second: summary.images as f64 / summary.compute_seconds.max(1e-9),
        })
    }
}
