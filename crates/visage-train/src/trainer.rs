//! `train`: a run assembled from its parts — the run directory (locked for the run) and data
//! set, the loader and schedule, the model of the configured family (initial backbone
//! weights, or the newest good checkpoint when resuming), the optimiser, the data-parallel
//! peers when the run has several devices or machines, then [`run_epochs`] with the run
//! directory's outputs (rank 0's; the other machines write nothing).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use burn::grad_clipping::GradientClippingConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, Optimizer, SgdConfig};
use visage_data::Loader;
use visage_kernels::KernelAutodiffBackend;
use visage_model::{LossValues, TrainableFamily, WithTrainableFamily};

use crate::checkpoint::{find_resumable, load_for_resume, prepare_resume, TrainState};
use crate::config::{ExperimentConfig, OptimizerKind};
use crate::dataset::{ensure_dataset, train_dataset};
use crate::distributed::{start_coordinator, NodeSpec, PeerGroup, Topology, DEFAULT_PEER_TIMEOUT};
use crate::error::{io, write_error, TrainError};
use crate::events::TrainEvent;
use crate::guard::GuardSettings;
use crate::outputs::RunDirOutputs;
use crate::run_dir::{clear_previous_run, RunLock};
use crate::schedule::LrSchedule;
use crate::step::TrainStep;
use crate::training_loop::{run_epochs, LoopSettings, NoOutputs, RunOutputs};

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
    /// The machines of a multi-machine run (`--nnodes`, `--node-rank`, `--master-addr`);
    /// `None`: this machine alone.
    pub nodes: Option<NodeSpec>,
    /// How long a peer of a data-parallel run waits for the others before the run stops
    /// with an error (default [`DEFAULT_PEER_TIMEOUT`]).
    pub peer_timeout: Option<Duration>,
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

/// Trains the detector of `config` on `devices` (one model replica each; several split each
/// batch, data parallel), with the machines of `options.nodes` when set, writing checkpoints,
/// metrics and the resolved config under `config.run_dir` (on rank 0); `events` sees
/// everything that happens.
///
/// # Panics
/// If `devices` is empty.
pub fn train<B: KernelAutodiffBackend>(
    config: &ExperimentConfig,
    options: &TrainOptions,
    devices: &[B::Device],
    events: &mut dyn FnMut(TrainEvent),
) -> Result<TrainSummary, TrainError> {
    assert!(!devices.is_empty(), "at least one device");
    let started = Instant::now();
    let topology = Topology {
        local_devices: devices.len(),
        nodes: options.nodes.clone(),
        peer_timeout: options.peer_timeout.unwrap_or(DEFAULT_PEER_TIMEOUT),
    };
    let node_slots = topology.node_slots(config.train.batch_size)?;
    let mut peers = None;
    let mut _lock = None;
    if let Some(nodes) = topology.nodes.as_ref().filter(|n| n.nnodes > 1) {
        nodes.validate()?;
        refuse_multi_node()?;
        if topology.is_primary() && !nodes.external_coordinator {
            start_coordinator(nodes.master_port()?)?;
        }
    }
    let run_dir = &config.run_dir;
    if topology.is_primary() {
        std::fs::create_dir_all(run_dir).map_err(io(run_dir))?;
        // Held until the run returns: one writer per run directory, `--overwrite` included.
        _lock = Some(RunLock::acquire(run_dir)?);
        if !options.resume {
            clear_previous_run(run_dir, options.overwrite)?;
        }
        let resolved = run_dir.join("config.toml");
        std::fs::write(&resolved, config.to_toml()).map_err(write_error(&resolved))?;
    } else {
        // Rank 0 registers once its run directory (and the checkpoint a resumed run starts
        // from) is ready: the other machines read it after this.
        peers = Some(PeerGroup::<B::InnerBackend>::register(
            &topology,
            devices.to_vec(),
        )?);
    }
    ensure_dataset(&config.data, |synth| {
        events(TrainEvent::GeneratingSynth {
            root: &config.data.root,
            train_images: synth.train_images,
            val_images: synth.val_images,
        })
    })?;
    let mut loader = open_loader(config, events)?;
    if topology.nnodes() > 1 {
        loader = loader.sharded(node_slots)?;
    }
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
        devices,
        topology: &topology,
        peers,
        events,
    })
}

/// burn-collective 0.21 cannot run more than one all-reduce across machines: its global
/// sync (`SyncService::sync`) clears a copy of the list of synced nodes instead of the list,
/// so every sync after the first waits forever. Until a Burn release fixes it, a
/// multi-machine run is refused instead of hanging at its second exchange;
/// `VISAGE_ALLOW_MULTI_NODE=1` lets one through (for a patched burn-collective, and for the
/// test that shows the hang).
fn refuse_multi_node() -> Result<(), TrainError> {
    if std::env::var("VISAGE_ALLOW_MULTI_NODE").is_ok_and(|v| v == "1") {
        return Ok(());
    }
    Err(TrainError::Collective(
        "training across machines (--nnodes > 1) is not available with Burn 0.21: \
         burn-collective's global sync never resets, so the second all-reduce across machines \
         hangs (see the README, \"Several GPUs, several machines\"); several devices of one \
         machine (--devices) work"
            .into(),
    ))
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
struct FamilyRun<'a, 'e, B: KernelAutodiffBackend> {
    config: &'a ExperimentConfig,
    options: &'a TrainOptions,
    loader: &'a Loader,
    schedule: LrSchedule,
    started: Instant,
    devices: &'a [B::Device],
    topology: &'a Topology,
    /// This machine's peers, when they registered before the model was built (ranks > 0).
    peers: Option<PeerGroup<B::InnerBackend>>,
    events: &'a mut (dyn FnMut(TrainEvent) + 'e),
}

impl<B: KernelAutodiffBackend> WithTrainableFamily<B> for FamilyRun<'_, '_, B> {
    type Output = Result<TrainSummary, TrainError>;

    fn run<M: TrainableFamily<B>>(self, spec: &M::Spec) -> Self::Output {
        let train = &self.config.train;
        // Seed the backend so weight initialisation (like the data order) follows the seed.
        let device = &self.devices[0];
        B::seed(device, train.seed);
        let mut model =
            M::new(spec, device)?.with_input_normalisation(self.config.data.pixel_normalisation());
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

impl<B: KernelAutodiffBackend> FamilyRun<'_, '_, B> {
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
            devices,
            topology,
            peers,
            events,
        } = self;
        let device = &devices[0];
        let (model, optimizer, mut state) = if options.resume {
            let from = find_resumable(&config.run_dir)?;
            for (dir, reason) in &from.passed_over {
                events(TrainEvent::CheckpointPassedOver { dir, reason });
            }
            let (model, optimizer, state) = load_for_resume(&from.dir, model, optimizer, device)?;
            if topology.is_primary() {
                prepare_resume(&config.run_dir, &from)?;
            }
            events(TrainEvent::Resumed {
                from: &from.dir,
                epochs_done: state.epochs_done,
                iteration: state.iteration,
            });
            (model, optimizer, state)
        } else {
            (model, optimizer, TrainState::default())
        };
        let peers = match peers {
            Some(peers) => Some(peers),
            None if topology.is_parallel() => {
                Some(PeerGroup::register(topology, devices.to_vec())?)
            }
            None => None,
        };
        let mut step = match peers {
            Some(peers) => {
                check_agreement(&peers, topology, config, &state)?;
                TrainStep::parallel(optimizer, peers)
            }
            None => TrainStep::new(optimizer, device),
        };
        let mut run_dir_outputs;
        let mut no_outputs = NoOutputs;
        let outputs: &mut dyn RunOutputs<M, O> = if topology.is_primary() {
            run_dir_outputs = RunDirOutputs::<B, M>::open(config, device)?;
            &mut run_dir_outputs
        } else {
            &mut no_outputs
        };
        let settings = LoopSettings {
            epochs: config.train.epochs,
            log_every: config.train.log_every,
            checkpoint_every: config.train.checkpoint_every,
            max_iterations: options.max_iterations,
            checkpoint_on_stop: !options.dry_run,
            guard: GuardSettings::of(&config.train),
        };
        let (_, summary) = run_epochs(
            model, &mut step, &mut state, loader, &schedule, &settings, started, outputs, events,
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

/// Checks that every machine of a multi-machine run trains the same model with the same
/// recipe from the same point: a machine started with another config, or that resumed from
/// another checkpoint, would silently train something else.
///
/// # Errors
/// [`TrainError::Collective`] saying what differs.
fn check_agreement<I: burn::prelude::Backend>(
    peers: &PeerGroup<I>,
    topology: &Topology,
    config: &ExperimentConfig,
    state: &TrainState,
) -> Result<(), TrainError> {
    use std::hash::{Hash, Hasher};
    let nodes = topology.nnodes();
    if nodes < 2 {
        return Ok(());
    }
    // The recipe, without what may differ per machine (paths, devices).
    let mut train = config.train.clone();
    train.devices.clear();
    let recipe = format!(
        "{}{}{:?}",
        toml::to_string(&config.model).unwrap_or_default(),
        toml::to_string(&train).unwrap_or_default(),
        (
            config.data.input_size,
            config.data.loader_config(&config.train).seed
        )
    );
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    recipe.hash(&mut hasher);
    let hash = hasher.finish();
    // Values exact in f32 (below 2^24 once summed over the machines).
    let mine = [
        (state.iteration % (1 << 20)) as f32,
        (hash & 0xf_ffff) as f32,
        ((hash >> 20) & 0xf_ffff) as f32,
        ((hash >> 40) & 0xf_ffff) as f32,
    ];
    let sums = peers.sum_over_machines(&mine, "run fingerprints")?;
    let agree = |k: usize| (sums[k] - mine[k] * nodes as f32).abs() < 0.5;
    if !agree(0) {
        return Err(TrainError::Collective(format!(
            "this machine (rank {}) starts at iteration {}, another machine elsewhere: every \
             machine must resume from the same checkpoint (a shared run directory)",
            topology.node_rank(),
            state.iteration
        )));
    }
    if !(1..4).all(agree) {
        return Err(TrainError::Collective(format!(
            "this machine's (rank {}) [model], [train] or input size differ from another \
             machine's: start every machine with the same config",
            topology.node_rank()
        )));
    }
    Ok(())
}
