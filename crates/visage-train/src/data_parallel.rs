//! Data-parallel gradients on one device: a batch is split into shards, each shard runs forward,
//! loss and backward on its own thread against its own fork of the model, and the shards'
//! gradients are summed into one [`GradientsParams`] for a single optimiser step.
//!
//! Why: on the CPU backend most of a small model's training step (autodiff bookkeeping,
//! element-wise kernels, small convolutions) runs on the calling thread, so one step leaves
//! the other cores idle. Independent shards keep them busy. On a GPU there is one device
//! queue and `replicas = 1` is the right setting.
//!
//! Semantics, as PyTorch's DistributedDataParallel on `replicas` workers:
//! - each shard's loss is normalised by its own positives, scaled by its share of the batch
//!   (`n_k / n`) and the scaled gradients are summed: the step follows the gradient of the
//!   image-weighted mean of the shard losses (exactly the batch loss for losses that are
//!   means over images; tested);
//! - batch normalisation in training mode sees each shard's statistics (no synchronised batch
//!   norm); the running statistics are Burn's [`burn::module::RunningState`], whose per-thread
//!   updates are averaged when read.
//!
//! Replicas are forks ([`Module::fork`]): the same parameter ids, fresh autodiff leaves, so
//! the shards' graphs stay separate and their backward passes run concurrently (two graphs
//! sharing leaves are merged by Burn's autodiff client and serialised).

use std::ops::Range;

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use visage_model::LossValues;

/// One shard's loss: the differentiable total and its values read back to the host.
#[derive(Debug)]
pub struct ShardLoss<B: Backend> {
    /// `[1]`: what this shard minimises (normalised within the shard).
    pub total: Tensor<B, 1>,
    /// The same loss as numbers.
    pub values: LossValues,
}

/// The gradients of one step and the loss they came from.
#[derive(Debug)]
pub struct StepGradients {
    /// Summed over shards, each scaled by its share of the batch.
    pub grads: GradientsParams,
    /// Total and parts: image-weighted means over shards; positives: summed.
    pub values: LossValues,
}

/// Splits `n` items into at most `replicas` contiguous, non-empty ranges whose lengths differ
/// by at most one (the first ones longer). `replicas` of 0 counts as 1.
pub fn shard_ranges(n: usize, replicas: usize) -> Vec<Range<usize>> {
    let shards = replicas.max(1).min(n.max(1));
    let (base, extra) = (n / shards, n % shards);
    let mut start = 0;
    (0..shards)
        .map(|k| {
            let len = base + usize::from(k < extra);
            let range = start..start + len;
            start += len;
            range
        })
        .filter(|r| !r.is_empty())
        .collect()
}

/// Runs `loss` on every shard (`(data, images in it)`) and returns the summed gradients. Each
/// shard runs on its own scoped thread, inside a one-thread rayon pool, against a fork of
/// `model`; with one shard it runs on the calling thread against `model` itself.
///
/// # Errors
/// The first error `loss` returns, in shard order.
///
/// # Panics
/// If `shards` is empty or holds no images, or a shard's thread panics.
pub fn parallel_gradients<B, M, S, E, F>(
    model: &M,
    shards: Vec<(S, usize)>,
    loss: F,
) -> Result<StepGradients, E>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    S: Send,
    E: Send,
    F: Fn(&M, S) -> Result<ShardLoss<B>, E> + Sync,
{
    let images: usize = shards.iter().map(|(_, n)| n).sum();
    assert!(images > 0, "a step needs at least one image");
    let shard_step = |replica: &M, data: S, share: f32| -> Result<_, E> {
        let ShardLoss { total, values } = loss(replica, data)?;
        let grads = GradientsParams::from_grads((total * share).backward(), replica);
        Ok((grads, values, share))
    };
    let results: Vec<Result<_, E>> = if shards.len() == 1 {
        let (data, _) = shards.into_iter().next().expect("one shard");
        vec![shard_step(model, data, 1.0)]
    } else {
        let device = model
            .devices()
            .into_iter()
            .next()
            .expect("a model with parameters");
        let shard_step = &shard_step;
        std::thread::scope(|scope| {
            let handles: Vec<_> = shards
                .into_iter()
                .map(|(data, n)| {
                    let replica = model.clone().fork(&device);
                    let share = n as f32 / images as f32;
                    scope.spawn(move || {
                        one_thread_pool().install(move || shard_step(&replica, data, share))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a data-parallel shard panicked"))
                .collect()
        })
    };

    let mut accumulator = GradientsAccumulator::<M>::new();
    let mut combined: Option<LossValues> = None;
    for result in results {
        let (grads, values, share) = result?;
        accumulator.accumulate::<B>(model, grads);
        combined = Some(match combined {
            None => scaled(&values, share),
            Some(sum) => add_scaled(sum, &values, share),
        });
    }
    Ok(StepGradients {
        grads: accumulator.grads(),
        values: combined.expect("at least one shard"),
    })
}

/// A private one-thread rayon pool: the backend's parallel kernels called inside it stay on
/// the shard's thread instead of queueing on the global pool that every shard shares.
fn one_thread_pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread rayon pool")
}

fn scaled(values: &LossValues, share: f32) -> LossValues {
    LossValues {
        total: values.total * share,
        parts: values.parts.iter().map(|(n, v)| (*n, v * share)).collect(),
        num_positive: values.num_positive,
    }
}

fn add_scaled(mut sum: LossValues, values: &LossValues, share: f32) -> LossValues {
    sum.total += values.total * share;
    for ((_, acc), (_, v)) in sum.parts.iter_mut().zip(&values.parts) {
        *acc += v * share;
    }
    sum.num_positive += values.num_positive;
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{Distribution, TensorData};

    type Ad = Autodiff<Flex>;

    #[test]
    fn shards_cover_the_batch_evenly() {
        assert_eq!(shard_ranges(8, 2), vec![0..4, 4..8]);
        assert_eq!(shard_ranges(7, 3), vec![0..3, 3..5, 5..7]);
        assert_eq!(shard_ranges(2, 4), vec![0..1, 1..2]);
        assert_eq!(shard_ranges(5, 0), vec![0..5]);
        assert_eq!(shard_ranges(0, 2), Vec::<Range<usize>>::new());
    }

    /// Mean squared error of a linear model over the rows `rows` of (x, y).
    fn mse_loss(
        model: &Linear<Ad>,
        x: &[f32],
        y: &[f32],
        rows: Range<usize>,
    ) -> Result<ShardLoss<Ad>, String> {
        let device = Default::default();
        let n = rows.len();
        let xs = Tensor::<Ad, 2>::from_data(
            TensorData::new(x[rows.start * 3..rows.end * 3].to_vec(), [n, 3]),
            &device,
        );
        let ys = Tensor::<Ad, 2>::from_data(
            TensorData::new(y[rows.start * 2..rows.end * 2].to_vec(), [n, 2]),
            &device,
        );
        let diff = model.forward(xs) - ys;
        let total = (diff.clone() * diff).sum_dim(1).mean();
        let values = LossValues::read(&total, &[("mse", &total)], n).map_err(|e| e.to_string())?;
        Ok(ShardLoss { total, values })
    }

    fn gradients_of(model: &Linear<Ad>, grads: &GradientsParams) -> Vec<f32> {
        let mut out: Vec<f32> = grads
            .get::<Flex, 2>(model.weight.id)
            .unwrap()
            .into_data()
            .to_vec()
            .unwrap();
        let bias = model.bias.as_ref().unwrap();
        out.extend(
            grads
                .get::<Flex, 1>(bias.id)
                .unwrap()
                .into_data()
                .to_vec::<f32>()
                .unwrap(),
        );
        out
    }

    #[test]
    fn sharded_gradients_equal_the_whole_batch_gradient() {
        let device = Default::default();
        let model: Linear<Ad> = LinearConfig::new(3, 2).init(&device);
        let x: Vec<f32> =
            Tensor::<Flex, 1>::random([7 * 3], Distribution::Normal(0.0, 1.0), &device)
                .into_data()
                .to_vec()
                .unwrap();
        let y: Vec<f32> = (0..14).map(|i| (i as f32 * 0.37).sin()).collect();
        let whole =
            parallel_gradients(&model, vec![(0..7, 7)], |m, rows| mse_loss(m, &x, &y, rows))
                .unwrap();
        for replicas in [2, 3] {
            let shards = shard_ranges(7, replicas)
                .into_iter()
                .map(|r| (r.clone(), r.len()))
                .collect();
            let split =
                parallel_gradients(&model, shards, |m, rows| mse_loss(m, &x, &y, rows)).unwrap();
            let (a, b) = (
                gradients_of(&model, &whole.grads),
                gradients_of(&model, &split.grads),
            );
            assert_eq!(a.len(), 8);
            for (u, v) in a.iter().zip(&b) {
                assert!((u - v).abs() <= 1e-5 * (1.0 + u.abs()), "{a:?} vs {b:?}");
            }
            assert!((whole.values.total - split.values.total).abs() < 1e-5);
            assert_eq!(split.values.num_positive, 7);
            assert_eq!(split.values.parts[0].0, "mse");
        }
    }

    #[test]
    fn a_failing_shard_is_an_error() {
        let device = Default::default();
        let model: Linear<Ad> = LinearConfig::new(3, 2).init(&device);
        let shards = vec![(0usize, 1usize), (1, 1)];
        let err = parallel_gradients(&model, shards, |_, k| -> Result<ShardLoss<Ad>, String> {
            Err(format!("shard {k} failed"))
        })
        .unwrap_err();
        assert_eq!(err, "shard 0 failed");
    }
}
