//! One training step: forward, loss and backward on the batch, then one optimiser step —
//! unless the loss or a gradient is NaN or infinite, in which case nothing is applied and
//! the caller decides (`train.on_non_finite`). With several devices or machines, this
//! machine's part of the batch is split over its devices and the gradients are summed over
//! every peer of the run (see [`crate::data_parallel`]).

use std::marker::PhantomData;

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::TensorData;
use visage_data::{Batch, Target};
use visage_kernels::{on_pool_worker_if, KernelAutodiffBackend, KernelBackend};
use visage_model::{FaceTargets, LossValues, ModelError, TrainableFamily};

use crate::data_parallel::{parallel_gradients, shard_ranges, ParallelOutcome};
use crate::distributed::PeerGroup;
use crate::error::TrainError;

/// The step of a run: its optimiser and device, and the peers of a data-parallel run.
#[derive(Debug)]
pub struct TrainStep<B: KernelAutodiffBackend, M, O> {
    optimizer: O,
    device: B::Device,
    /// This machine's devices as burn-collective peers (none: one device, one machine).
    peers: Option<PeerGroup<B::InnerBackend>>,
    /// Whether the model's parameters were seen initialised (they stay so).
    initialised: bool,
    model: PhantomData<M>,
}

/// What one step did.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// The update was applied.
    Applied {
        /// The loss before the update (image-weighted over shards).
        loss: LossValues,
        /// Images in the batch.
        images: usize,
    },
    /// The loss or a gradient was NaN or infinite: the optimiser state and the weights are
    /// unchanged, and so are the batch-norm running statistics when `reverted`.
    NonFinite {
        /// What was not finite (`loss: total NaN (cls …)`, or `gradients (loss total …)`).
        detail: String,
        /// Images in the batch.
        images: usize,
        /// Whether the running statistics were put back (every step but a model's first,
        /// whose parameters were not initialised before it).
        reverted: bool,
    },
}

impl StepOutcome {
    /// Images in the batch.
    pub fn images(&self) -> usize {
        match self {
            StepOutcome::Applied { images, .. } | StepOutcome::NonFinite { images, .. } => *images,
        }
    }
}

impl<B, M, O> TrainStep<B, M, O>
where
    B: KernelAutodiffBackend,
    M: TrainableFamily<B>,
    O: Optimizer<M, B>,
{
    /// A step with `optimizer` on `device`.
    pub fn new(optimizer: O, device: &B::Device) -> Self {
        Self {
            optimizer,
            device: device.clone(),
            peers: None,
            initialised: false,
            model: PhantomData,
        }
    }

    /// A data-parallel step with `optimizer`: this machine's part of each batch is split over
    /// the devices of `peers` (the model lives on the first), gradients summed over every
    /// peer of the run.
    pub fn parallel(optimizer: O, peers: PeerGroup<B::InnerBackend>) -> Self {
        Self {
            optimizer,
            device: peers.devices()[0].clone(),
            peers: Some(peers),
            initialised: false,
            model: PhantomData,
        }
    }

    /// The optimiser (its state is saved with each checkpoint).
    pub fn optimizer(&self) -> &O {
        &self.optimizer
    }

    /// Forward, loss and backward over `batch` (this machine's part of it), then the
    /// optimiser step at learning rate `lr`; returns the updated model and the loss (of the
    /// whole batch, every machine's images). A non-finite loss or gradient returns the model
    /// as it was ([`StepOutcome::NonFinite`]).
    ///
    /// # Errors
    /// [`ModelError::InvalidInput`] when the targets do not fit the batch; with peers, a
    /// [`TrainError::Collective`] when a peer fails or does not answer.
    pub fn run(&mut self, model: M, batch: Batch, lr: f64) -> Result<(M, StepOutcome), TrainError> {
        // On the CPU backend, on a worker of rayon's pool: its parallel kernels (and the
        // optimiser's) then run inline or split from inside the pool instead of being handed
        // over per op. GPU backends stay on the calling thread.
        // Which worker runs a step does not matter: Burn's running statistics keep an update
        // per thread, and the record taken below at the start of every step folds the
        // previous step's in.
        on_pool_worker_if(B::HOST_THREADS, || {
            self.run_on_this_thread(model, batch, lr)
        })
    }

    /// [`run`](Self::run) on the calling thread.
    fn run_on_this_thread(
        &mut self,
        model: M,
        batch: Batch,
        lr: f64,
    ) -> Result<(M, StepOutcome), TrainError> {
        let size = batch.size;
        // The state to return to if the step is not finite: its forward passes have already
        // pushed this batch's statistics into the batch-norm running averages. Recording the
        // model first also folds the previous step's running-statistics update in, as the
        // next forward pass would. Not before the first step, whose forward pass initialises
        // the parameters (a record would, in another order: another initialisation).
        let was_initialised = self.initialised || initialised(&model);
        self.initialised = was_initialised;
        let before = was_initialised.then(|| model.clone().into_record());
        // `finite`: whether the gradients are finite, when the peers checked it already.
        let (grads, values, images, finite) = match &self.peers {
            None => {
                let images = batch.targets.len();
                let faces = face_targets(batch.targets);
                let n = faces.len();
                let input = Tensor::<B, 4>::from_data(
                    TensorData::new(batch.images, [n, 3, size, size]),
                    &self.device,
                );
                let loss = model.loss(&model.forward(input), &faces)?;
                let values = match loss.values() {
                    Ok(values) => values,
                    Err(ModelError::NonFiniteLoss(detail)) => {
                        let detail = format!("loss: {detail}");
                        return Ok(not_applied(model, before, detail, images));
                    }
                    Err(other) => return Err(other.into()),
                };
                let grads = GradientsParams::from_grads(loss.total.backward(), &model);
                (grads, values, images, None)
            }
            Some(peers) => {
                let (shards, faces) = into_shards(batch, peers.devices().len());
                let outcome = parallel_gradients(
                    &model,
                    peers,
                    was_initialised,
                    shards,
                    |replica: &M, shard: Shard, device: &B::Device| {
                        let n = shard.rows.len();
                        let input = Tensor::<B, 4>::from_data(
                            TensorData::new(shard.pixels, [n, 3, size, size]),
                            device,
                        );
                        replica.loss(&replica.forward(input), &faces[shard.rows])
                    },
                )?;
                match outcome {
                    ParallelOutcome::Gradients {
                        grads,
                        values,
                        images,
                        finite,
                    } => (grads, values, images, Some(finite)),
                    ParallelOutcome::NonFinite { detail, images } => {
                        return Ok(not_applied(model, before, detail, images));
                    }
                }
            }
        };
        self.initialised = true;
        if !finite.unwrap_or_else(|| gradients_finite(&model, &grads)) {
            let detail = format!("gradients (loss {})", values.describe());
            return Ok(not_applied(model, before, detail, images));
        }
        let model = self.optimizer.step(lr, model, grads);
        Ok((
            model,
            StepOutcome::Applied {
                loss: values,
                images,
            },
        ))
    }
}

/// The outcome of a step that is not applied: `model` as `before` holds it, with the running
/// statistics' pending updates (this step's forward passes) dropped — Burn's running states
/// keep each thread's latest update aside until the next read, and only a fresh running state
/// (as the inner model converted back gives) starts without one.
fn not_applied<B: KernelAutodiffBackend, M: AutodiffModule<B>>(
    model: M,
    before: Option<M::Record>,
    detail: String,
    images: usize,
) -> (M, StepOutcome) {
    let reverted = before.is_some();
    let model = match before {
        Some(record) => M::from_inner(model.valid()).load_record(record),
        None => model,
    };
    let outcome = StepOutcome::NonFinite {
        detail,
        images,
        reverted,
    };
    (model, outcome)
}

/// Whether every parameter of `model` is initialised (Burn initialises them lazily, at their
/// first use).
fn initialised<B: KernelBackend, M: Module<B>>(model: &M) -> bool {
    struct Check(bool);
    impl<B: KernelBackend> ModuleVisitor<B> for Check {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0 &= param.is_initialized();
        }
    }
    let mut check = Check(true);
    model.visit(&mut check);
    check.0
}

/// Whether every gradient of `model`'s parameters in `grads` is finite. One number is read
/// back: the sum over all gradients of `g · 0`, which is 0 unless some value is NaN or
/// infinite (and cannot overflow, as a plain sum of large gradients could).
fn gradients_finite<B: KernelAutodiffBackend, M: Module<B>>(
    model: &M,
    grads: &GradientsParams,
) -> bool {
    struct Zeros<'a, B: KernelAutodiffBackend> {
        grads: &'a GradientsParams,
        sums: Vec<Tensor<B::InnerBackend, 1>>,
    }
    impl<B: KernelAutodiffBackend> ModuleVisitor<B> for Zeros<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
                self.sums.push(g.mul_scalar(0.0).sum());
            }
        }
    }
    let mut zeros = Zeros::<B> {
        grads,
        sums: Vec::new(),
    };
    model.visit(&mut zeros);
    if zeros.sums.is_empty() {
        return true;
    }
    zero_sum_is_finite(Tensor::cat(zeros.sums, 0))
}

/// Whether every value of `values` is finite: the sum of `v · 0` is 0 unless some value is
/// NaN or infinite (and cannot overflow, as a plain sum of large values could). One number
/// is read back.
pub(crate) fn zero_sum_is_finite<B: Backend>(values: Tensor<B, 1>) -> bool {
    let zero: f32 = values.mul_scalar(0.0).sum().into_scalar().elem();
    zero.is_finite()
}

/// The faces of a loader batch as the model's targets (the boxes moved, not copied).
fn face_targets(targets: Vec<Target>) -> Vec<FaceTargets> {
    targets
        .into_iter()
        .map(|t| FaceTargets {
            landmarks: t.landmarks.iter().map(|l| l.map(|l| l.points)).collect(),
            boxes: t.boxes,
        })
        .collect()
}

/// One shard of a step: its images' pixels and their range in the batch.
struct Shard {
    pixels: Vec<f32>,
    rows: std::ops::Range<usize>,
}

/// The batch's pixels split into the shards of [`shard_ranges`], each with its image count
/// (no copy for one shard), and every image's faces.
fn into_shards(batch: Batch, replicas: usize) -> (Vec<(Shard, usize)>, Vec<FaceTargets>) {
    let faces = face_targets(batch.targets);
    let per_image = 3 * batch.size * batch.size;
    let mut pixels = batch.images;
    let mut shards = Vec::new();
    for rows in shard_ranges(faces.len(), replicas).into_iter().rev() {
        // The first shard takes what is left without a copy (`split_off(0)` would allocate a
        // second buffer of the batch's capacity).
        let chunk = if rows.start == 0 {
            std::mem::take(&mut pixels)
        } else {
            pixels.split_off(rows.start * per_image)
        };
        let n = rows.len();
        shards.push((
            Shard {
                pixels: chunk,
                rows,
            },
            n,
        ));
    }
    shards.reverse();
    (shards, faces)
}
