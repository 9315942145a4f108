//! The training loop.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, Optimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorData;
use indicatif::{ProgressBar, ProgressStyle};
use visage_data::{Batch, EpochSummary, Loader, LoaderConfig};
use visage_model::{FaceModel, FaceTargets, LossValues, ModelError};

use crate::checkpoint::{load_for_resume, publish_checkpoint, save_checkpoint, TrainState};
use crate::config::{ExperimentConfig, OptimizerKind};
use crate::data_parallel::{parallel_gradients, shard_ranges, ShardLoss, StepGradients};
use crate::error::{io, TrainError};
use crate::metrics::{EvalRecord, MetricsLog, StepRecord};
use crate::schedule::LrSchedule;
use crate::validate::{ensure_dataset, evaluate_split, train_dataset, Split};

/// How a training run is driven (beyond its config).
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue from `run_dir/last` (model, optimiser, schedule position).
    pub resume: bool,
    /// Start over in a run directory that already holds checkpoints (they are deleted).
    pub overwrite: bool,
    /// Draw a progress bar on the terminal.
    pub progress: bool,
    /// Stop after this many iterations in total (a dry run: build, load, step, no checkpoint
    /// unless an epoch completes).
    pub max_iterations: Option<usize>,
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

/// A loader batch split into what a training step needs: the normalised pixels and the
/// per-image face targets.
struct StepBatch {
    /// `[n, 3, size, size]` row-major.
    pixels: Vec<f32>,
    /// Side of the square input.
    size: usize,
    /// One per image.
    faces: Vec<FaceTargets>,
}

impl StepBatch {
    fn new(batch: Batch) -> Self {
        let faces = batch
            .targets
            .into_iter()
            .map(|t| FaceTargets {
                boxes: t.boxes,
                landmarks: t.landmarks.iter().map(|l| l.map(|l| l.points)).collect(),
            })
            .collect();
        StepBatch {
            pixels: batch.images,
            size: batch.size,
            faces,
        }
    }

    /// The pixels split into the shards of [`shard_ranges`], each with its image range
    /// (no copy for one shard).
    fn into_shards(self, replicas: usize) -> (Vec<(ShardData, usize)>, Vec<FaceTargets>) {
        let per_image = 3 * self.size * self.size;
        let mut pixels = self.pixels;
        let mut shards = Vec::new();
        for rows in shard_ranges(self.faces.len(), replicas).into_iter().rev() {
            // The first shard takes what is left without a copy (`split_off(0)` would
            // allocate a second buffer of the batch's capacity).
            let chunk = if rows.start == 0 {
                std::mem::take(&mut pixels)
            } else {
                pixels.split_off(rows.start * per_image)
            };
            let n = rows.len();
            shards.push((
                ShardData {
                    pixels: chunk,
                    rows,
                },
                n,
            ));
        }
        shards.reverse();
        (shards, self.faces)
    }
}

/// One shard of a step: its images' pixels and their range in the batch.
struct ShardData {
    pixels: Vec<f32>,
    rows: std::ops::Range<usize>,
}

/// One training step's forward passes, losses and backward passes over `replicas` shards of
/// the batch (the optimiser step is the caller's): the loss values and the summed gradients.
///
/// # Errors
/// [`ModelError::NonFiniteLoss`] before any gradient is computed; [`ModelError::InvalidInput`]
/// when the targets do not fit the batch.
fn loss_and_gradients<B: AutodiffBackend>(
    model: &FaceModel<B>,
    batch: StepBatch,
    replicas: usize,
    device: &B::Device,
) -> Result<StepGradients, ModelError> {
    let size = batch.size;
    let (shards, faces) = batch.into_shards(replicas);
    parallel_gradients(model, shards, |replica: &FaceModel<B>, shard: ShardData| {
        let n = shard.rows.len();
        let images =
            Tensor::<B, 4>::from_data(TensorData::new(shard.pixels, [n, 3, size, size]), device);
        let outputs = replica.forward(images);
        let loss = replica.loss(&outputs, &faces[shard.rows])?;
        let values = loss.values()?;
        Ok(ShardLoss {
            total: loss.total,
            values,
        })
    })
}

fn progress_bar(enabled: bool, len: usize, epoch: usize, epochs: usize) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:28.cyan/blue}] {pos}/{len} {elapsed_precise} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("epoch {}/{}", epoch + 1, epochs));
    bar
}

/// Trains the detector of `config` on `device`, writing checkpoints, metrics and the resolved
/// config under `config.run_dir`.
pub fn train<B: AutodiffBackend>(
    config: &ExperimentConfig,
    options: &TrainOptions,
    device: &B::Device,
) -> Result<TrainSummary, TrainError> {
    let started = Instant::now();
    let run_dir = config.run_dir.clone();
    std::fs::create_dir_all(&run_dir).map_err(io(&run_dir))?;
    if !options.resume {
        clear_previous_run(&run_dir, options.overwrite)?;
    }
    std::fs::write(run_dir.join("config.toml"), config.to_toml()).map_err(io(&run_dir))?;
    ensure_dataset(&config.data)?;

    let (dataset, report) = train_dataset(&config.data)?;
    eprintln!(
        "train set: {} images, {} of {} faces kept ({} invalid, {} degenerate, {} outside dropped; {} clipped)",
        report.images,
        report.faces_kept,
        report.faces_read,
        report.dropped_invalid,
        report.dropped_degenerate,
        report.dropped_outside,
        report.clipped
    );
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
        eprintln!(
            "train set: {} image(s) with an unreadable header, skipped when loaded (first: {}: {reason})",
            report.unreadable.len(),
            path.display()
        );
    }
    let spec = &config.train;
    let loader = Loader::new(
        dataset,
        LoaderConfig {
            batch_size: spec.batch_size,
            input_size: config.data.input_size,
            seed: spec.seed,
            threads: config.data.threads,
            crop_scale: config.data.crop_scale.clone(),
            pad_to_square: config.data.pad_to_square,
            expand_max_ratio: config.data.expand_max_ratio,
            expand_prob: config.data.expand_prob,
            colour_jitter: config.data.colour_jitter,
            random_interpolation: config.data.random_interpolation,
            flip_prob: config.data.flip_prob,
            channel_order: config.data.channel_order,
            mean: config.data.mean,
            std: config.data.std,
            min_face_px: config.data.min_face_px,
            on_bad_image: config.data.on_bad_image,
            max_image_pixels: config.data.max_image_pixels,
            prefetch_batches: config.data.prefetch_batches,
        },
    )?;
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
    let schedule = LrSchedule::new(spec, iters_per_epoch);

    // Seed the backend so weight initialisation (like the data order) follows `train.seed`.
    B::seed(device, spec.seed);
    let mut model = FaceModel::<B>::new(&config.model, &config.test, device)?;
    if !options.resume {
        // A resumed run's checkpoint holds every weight; a new run may start from ImageNet.
        let (loaded, file) = model.load_initial_backbone_weights()?;
        model = loaded;
        if let Some(file) = file {
            eprintln!("backbone initialised from {}", file.display());
        }
    }
    let clipping = spec
        .grad_clip_norm
        .map(burn::grad_clipping::GradientClippingConfig::Norm);
    let run = Run {
        config,
        options,
        loader: &loader,
        schedule: &schedule,
        iters_per_epoch,
        started,
    };
    match spec.optimizer {
        OptimizerKind::Sgd => {
            let optimizer = SgdConfig::new()
                .with_momentum(Some(MomentumConfig {
                    momentum: spec.momentum,
                    dampening: 0.0,
                    nesterov: false,
                }))
                .with_weight_decay(Some(WeightDecayConfig {
                    penalty: spec.weight_decay,
                }))
                .with_gradient_clipping(clipping)
                .init::<B, FaceModel<B>>();
            run.run(model, optimizer, device)
        }
        OptimizerKind::Adamw => {
            let optimizer = AdamWConfig::new()
                .with_epsilon(1e-8)
                .with_weight_decay(spec.weight_decay)
                .with_grad_clipping(clipping)
                .init::<B, FaceModel<B>>();
            run.run(model, optimizer, device)
        }
    }
}

/// What the loop needs besides the model and optimiser.
struct Run<'a> {
    config: &'a ExperimentConfig,
    options: &'a TrainOptions,
    loader: &'a Loader,
    schedule: &'a LrSchedule,
    iters_per_epoch: usize,
    started: Instant,
}

impl Run<'_> {
    fn run<B, O>(
        self,
        mut model: FaceModel<B>,
        mut optimizer: O,
        device: &B::Device,
    ) -> Result<TrainSummary, TrainError>
    where
        B: AutodiffBackend,
        O: Optimizer<FaceModel<B>, B>,
    {
        let Run {
            config,
            options,
            loader,
            schedule,
            iters_per_epoch,
            started,
        } = self;
        let spec = &config.train;
        let run_dir = config.run_dir.clone();
        let mut state = TrainState::default();
        if options.resume {
            let last = run_dir.join("last");
            if !last.is_dir() {
                return Err(TrainError::Checkpoint {
                    path: last,
                    message: "--resume needs a previous run's `last` checkpoint".into(),
                });
            }
            let (m, o, s) = load_for_resume(&last, model, optimizer, device)?;
            (model, optimizer, state) = (m, o, s);
            eprintln!(
                "resumed from {} after epoch {} (iteration {})",
                last.display(),
                state.epochs_done,
                state.iteration
            );
        }

        let mut metrics = MetricsLog::open(&run_dir.join("metrics.jsonl"))?;
        let mut last_loss = None;
        let mut images_seen = 0usize;
        let mut compute_seconds = 0.0f64;
        let max_iterations = options.max_iterations.unwrap_or(usize::MAX);
        let mut stop = false;
        for epoch in state.epochs_done..spec.epochs {
            let bar = progress_bar(options.progress, iters_per_epoch, epoch, spec.epochs);
            let mut window_images = 0usize;
            let mut window_start = Instant::now();
            let epoch_start = Instant::now();
            let mut epoch_loss = 0.0f64;
            let mut epoch_steps = 0usize;
            let mut data_summary = EpochSummary::default();
            for batch in loader.epoch(epoch) {
                let batch = batch?;
                data_summary.add(&batch);
                let lr = schedule.lr(state.iteration);
                let batch = StepBatch::new(batch);
                let batch_images = batch.faces.len();
                let step = loss_and_gradients(&model, batch, spec.replicas, device).map_err(
                    |e| match e {
                        ModelError::NonFiniteLoss(detail) => TrainError::NonFiniteLoss {
                            epoch,
                            iteration: state.iteration,
                            detail,
                        },
                        other => other.into(),
                    },
                )?;
                let values = step.values;
                model = optimizer.step(lr, model, step.grads);
                state.iteration += 1;
                images_seen += batch_images;
                window_images += batch_images;
                epoch_loss += values.total as f64;
                epoch_steps += 1;
                let window_seconds = window_start.elapsed().as_secs_f64();
                let images_per_s = window_images as f64 / window_seconds.max(1e-9);
                bar.set_message(format!(
                    "loss {} {:.1} img/s lr {:.2e}",
                    values.describe(),
                    images_per_s,
                    lr
                ));
                bar.inc(1);
                if state.iteration % spec.log_every == 0 {
                    metrics.append(&StepRecord {
                        kind: "train",
                        epoch,
                        iteration: state.iteration,
                        lr,
                        loss: values.total,
                        parts: values
                            .parts
                            .iter()
                            .map(|(name, v)| (format!("loss_{name}"), *v))
                            .collect(),
                        positives: values.num_positive,
                        images_per_s,
                        elapsed_s: started.elapsed().as_secs_f64(),
                    })?;
                    window_images = 0;
                    window_start = Instant::now();
                }
                last_loss = Some(values);
                if state.iteration >= max_iterations {
                    stop = true;
                    break;
                }
            }
            bar.finish_and_clear();
            compute_seconds += epoch_start.elapsed().as_secs_f64();
            if stop {
                break;
            }
            state.epochs_done = epoch + 1;
            eprintln!(
                "epoch {}/{}: mean loss {:.4}, {:.1} img/s, {:.0} s",
                epoch + 1,
                spec.epochs,
                epoch_loss / epoch_steps.max(1) as f64,
                (epoch_steps * spec.batch_size) as f64 / epoch_start.elapsed().as_secs_f64(),
                epoch_start.elapsed().as_secs_f64()
            );
            let f = &data_summary.faces;
            eprintln!(
                "epoch {}: faces {} annotated, {} kept ({} outside the crop, {} below min_face_px \
                 dropped; {} clipped to the image)",
                epoch + 1,
                f.annotated,
                f.kept,
                f.dropped_by_crop,
                f.dropped_small,
                f.clipped_to_image
            );
            if let Some(line) = data_summary.skipped_line(5) {
                eprintln!("epoch {}: {line}", epoch + 1);
            }

            let validate_now = spec.eval_every > 0
                && (state.epochs_done % spec.eval_every == 0 || state.epochs_done == spec.epochs);
            state.score = None;
            if validate_now {
                let t = Instant::now();
                let report = evaluate_split(
                    &model.valid(),
                    &config.data,
                    Split::Val,
                    None,
                    false,
                    device,
                )?;
                let record = EvalRecord {
                    kind: "val",
                    epoch: state.epochs_done,
                    easy: report.easy.ap,
                    medium: report.medium.ap,
                    hard: report.hard.ap,
                    seconds: t.elapsed().as_secs_f64(),
                };
                eprintln!(
                    "  val AP: easy {:.4} medium {:.4} hard {:.4}",
                    record.easy, record.medium, record.hard
                );
                metrics.append(&record)?;
                state.score = Some((record.easy + record.medium + record.hard) / 3.0);
            }
            let improved = match (state.score, state.best_score) {
                (Some(s), Some(b)) => s > b,
                (Some(_), None) => true,
                (None, _) => state.best_score.is_none(),
            };
            if improved {
                state.best_score = state.score.or(state.best_score);
            }
            let epoch_dir = run_dir.join(format!("epoch-{:04}", state.epochs_done));
            save_checkpoint(&epoch_dir, &model, &optimizer, &state, config)?;
            publish_checkpoint(&epoch_dir, &run_dir.join("last"))?;
            if improved {
                publish_checkpoint(&epoch_dir, &run_dir.join("best"))?;
            }
            prune_checkpoints(&run_dir, spec.keep_checkpoints)?;
        }
        Ok(TrainSummary {
            run_dir,
            epochs_done: state.epochs_done,
            iterations: state.iteration,
            last_loss,
            seconds: started.elapsed().as_secs_f64(),
            images_per_second: images_seen as f64 / compute_seconds.max(1e-9),
        })
    }
}

/// The checkpoint directories and metrics of an earlier run in `run_dir`.
fn previous_run_files(run_dir: &Path) -> Result<Vec<PathBuf>, TrainError> {
    Ok(std::fs::read_dir(run_dir)
        .map_err(io(run_dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("epoch-")
                    || n.starts_with("last")
                    || n.starts_with("best")
                    || n == "metrics.jsonl"
            })
        })
        .collect())
}

/// A fresh run refuses to mix with an earlier one unless told to delete it.
fn clear_previous_run(run_dir: &Path, overwrite: bool) -> Result<(), TrainError> {
    let previous = previous_run_files(run_dir)?;
    if previous.is_empty() {
        return Ok(());
    }
    if !overwrite {
        return Err(TrainError::Checkpoint {
            path: run_dir.to_path_buf(),
            message: "already holds a run: pass --resume to continue it or --overwrite to \
                      start over (deleting its checkpoints and metrics)"
                .into(),
        });
    }
    for path in previous {
        if path.is_dir() {
            std::fs::remove_dir_all(&path).map_err(io(&path))?;
        } else {
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    Ok(())
}

/// Deletes all but the newest `keep` `epoch-*` directories (0 keeps all).
fn prune_checkpoints(run_dir: &Path, keep: usize) -> Result<(), TrainError> {
    if keep == 0 {
        return Ok(());
    }
    let mut epochs: Vec<PathBuf> = std::fs::read_dir(run_dir)
        .map_err(io(run_dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("epoch-") && !n.contains('.'))
        })
        .collect();
    epochs.sort();
    let excess = epochs.len().saturating_sub(keep);
    for dir in &epochs[..excess] {
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    Ok(())
}
