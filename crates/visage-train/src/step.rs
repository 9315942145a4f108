//! One training step: a loader batch split into `replicas` data-parallel shards, forward,
//! loss and backward on each (see [`crate::data_parallel`]), then one optimiser step.

use std::marker::PhantomData;

use burn::optim::Optimizer;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::TensorData;
use visage_data::{Batch, Target};
use visage_model::{FaceTargets, LossValues, ModelError, TrainableFamily};

use crate::data_parallel::{parallel_gradients, shard_ranges, ShardLoss};

/// The step of a run: its optimiser, the shard count and the device.
#[derive(Debug)]
pub struct TrainStep<B: AutodiffBackend, M, O> {
    optimizer: O,
    replicas: usize,
    device: B::Device,
    model: PhantomData<M>,
}

/// What one step did.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutcome {
    /// The loss before the update (image-weighted over shards).
    pub loss: LossValues,
    /// Images in the batch.
    pub images: usize,
}

impl<B, M, O> TrainStep<B, M, O>
where
    B: AutodiffBackend,
    M: TrainableFamily<B>,
    O: Optimizer<M, B>,
{
    /// A step with `optimizer`, splitting each batch into `replicas` shards on `device`.
    pub fn new(optimizer: O, replicas: usize, device: &B::Device) -> Self {
        Self {
            optimizer,
            replicas: replicas.max(1),
            device: device.clone(),
            model: PhantomData,
        }
    }

    /// The optimiser (its state is saved with each checkpoint).
    pub fn optimizer(&self) -> &O {
        &self.optimizer
    }

    /// Forward, loss and backward over the shards of `batch`, then the optimiser step at
    /// learning rate `lr`; returns the updated model and the loss.
    ///
    /// # Errors
    /// [`ModelError::NonFiniteLoss`] before any gradient is applied (the model is dropped:
    /// the caller's last checkpoint is the state to return to); [`ModelError::InvalidInput`]
    /// when the targets do not fit the batch.
    pub fn run(&mut self, model: M, batch: Batch, lr: f64) -> Result<(M, StepOutcome), ModelError> {
        let images = batch.targets.len();
        let size = batch.size;
        let (shards, faces) = into_shards(batch, self.replicas);
        let device = &self.device;
        let step = parallel_gradients(&model, shards, |replica: &M, shard: Shard| {
            let n = shard.rows.len();
            let images = Tensor::<B, 4>::from_data(
                TensorData::new(shard.pixels, [n, 3, size, size]),
                device,
            );
            let outputs = replica.forward(images);
            let loss = replica.loss(&outputs, &faces[shard.rows])?;
            let values = loss.values()?;
            Ok::<_, ModelError>(ShardLoss {
                total: loss.total,
                values,
            })
        })?;
        let model = self.optimizer.step(lr, model, step.grads);
        Ok((
            model,
            StepOutcome {
                loss: step.values,
                images,
            },
        ))
    }
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
