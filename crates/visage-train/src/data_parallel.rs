//! The data-parallel step: this machine's part of a batch split over its devices (local
//! peers, one thread each), every peer's gradients summed over every peer of the run with
//! burn-collective (see [`crate::distributed`]).
//!
//! Each peer runs forward and loss on its shard against a fork of the model on its device
//! ([`Module::fork`]: the same parameter ids, fresh autodiff leaves, so the shards' graphs
//! stay apart and their backward passes run concurrently). Then two all-reduces:
//! 1. a status vector: each loss part's sum (part × the divisor the shard used) and
//!    normaliser count, positives, images, and whether the shard's loss was not finite or
//!    failed — every peer now knows the loss of the whole batch and its counts;
//! 2. after backward on the shard's share of the batch loss (each part divided by the batch's
//!    count: `FaceLoss::shard_total`), the gradients as one flat tensor.
//!
//! The summed gradients are those of the batch loss, whatever the split (tested against one
//! process on the whole batch). A shard whose loss is not finite makes every peer skip the
//! step; a shard that fails makes every peer stop.

use std::ops::Range;

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::TensorData;
use visage_kernels::{KernelAutodiffBackend, KernelBackend};
use visage_model::{FaceLoss, LossValues, ModelError};

use crate::distributed::{GradientLayout, PeerGroup};
use crate::error::TrainError;
use crate::step::zero_sum_is_finite;

/// Loss parts a family may have (the status vector has room for this many).
const MAX_PARTS: usize = 8;
/// Status vector: sums and counts per part, then positives, images, non-finite, failed.
const STATUS_LEN: usize = 2 * MAX_PARTS + 4;

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

/// What a parallel step gives every peer.
#[derive(Debug)]
pub enum ParallelOutcome {
    /// The gradients of the batch loss (on the first local device) and the batch's loss.
    Gradients {
        /// Summed over every peer.
        grads: GradientsParams,
        /// The loss of the whole batch (every machine's images).
        values: LossValues,
        /// Images in the whole batch.
        images: usize,
        /// Whether every summed gradient is finite (each local peer checks its part).
        finite: bool,
    },
    /// Some shard's loss was NaN or infinite: no peer applies the step.
    NonFinite {
        /// The loss of the batch as far as it is known (`loss: total NaN ...`).
        detail: String,
        /// Images in the whole batch.
        images: usize,
    },
}

/// Runs `loss` on each local peer's shard (`shards[k]` on `peers.devices()[k]`, from its
/// own thread) and sums the gradients of the batch loss over every peer of the run.
/// `initialised`: whether `model`'s parameters exist yet (Burn creates them lazily).
///
/// # Errors
/// The first shard's error (a [`ModelError`] as [`TrainError::Model`]), an error of another
/// machine's shard, or a [`TrainError::Collective`] (timeout, lost peer).
///
/// # Panics
/// If there is not one shard per local peer, or a peer's thread panics.
pub fn parallel_gradients<B, M, S, F>(
    model: &M,
    peers: &PeerGroup<B::InnerBackend>,
    initialised: bool,
    shards: Vec<(S, usize)>,
    loss: F,
) -> Result<ParallelOutcome, TrainError>
where
    B: KernelAutodiffBackend,
    M: AutodiffModule<B> + Sync,
    S: Send,
    F: Fn(&M, S, &B::Device) -> Result<FaceLoss<B>, ModelError> + Sync,
{
    assert_eq!(
        shards.len(),
        peers.devices().len(),
        "one shard per local peer"
    );
    let mut shards = shards.into_iter();
    let (first, first_images) = shards.next().expect("a shard");
    let devices = peers.devices();
    // A new model's parameters are created at their first use, from the seeded RNG in the
    // order the forward pass reaches them: the first peer's forward runs before the others
    // fork the model, on the model itself, as on one device.
    let first = if initialised {
        Work::Data(first)
    } else {
        Work::Computed(loss(model, first, &devices[0]))
    };
    let loss = &loss;
    let mut results: Vec<Result<ParallelOutcome, TrainError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = shards
            .zip(1..)
            .map(|((data, images), local)| {
                scope.spawn(move || {
                    one_thread_pool().install(move || {
                        // Each peer forks its own replica (side by side, not one after
                        // another on the calling thread).
                        let replica = model.clone().fork(&devices[local]);
                        let shard_loss = loss(&replica, data, &devices[local]);
                        shard_step(&replica, peers, local, images, shard_loss)
                    })
                })
            })
            .collect();
        let first = match first {
            // The first step's first peer has already run its forward pass on this thread
            // (it created the parameters): its backward runs here too.
            Work::Computed(first_loss) => shard_step(model, peers, 0, first_images, first_loss),
            // Otherwise the first peer runs in its own one-thread pool like the others, on a
            // clone of the model (the same parameters and running states): its kernels then
            // never hand work to the global pool, whose threads the other peers need.
            Work::Data(data) => {
                let replica = model.clone();
                scope
                    .spawn(move || {
                        one_thread_pool().install(move || {
                            let first_loss = loss(&replica, data, &devices[0]);
                            shard_step(&replica, peers, 0, first_images, first_loss)
                        })
                    })
                    .join()
                    .expect("a data-parallel peer panicked")
            }
        };
        let mut results = vec![first];
        results.extend(
            handles
                .into_iter()
                .map(|h| h.join().expect("a data-parallel peer panicked")),
        );
        results
    });
    // Every peer saw the same sums, so the first local peer's result is the machine's, with
    // the finiteness of every local peer's part of the gradients; of errors, a shard's own
    // (not "another peer failed") says most.
    let own_error = results
        .iter()
        .position(|r| matches!(r, Err(e) if !matches!(e, TrainError::Collective(_))));
    if let Some(k) = own_error.or_else(|| results.iter().position(Result::is_err)) {
        return Err(results.swap_remove(k).unwrap_err());
    }
    let all_finite = results.iter().all(|r| {
        matches!(
            r,
            Ok(ParallelOutcome::Gradients { finite: true, .. } | ParallelOutcome::NonFinite { .. })
        )
    });
    let mut outcome = results.swap_remove(0).expect("checked");
    if let ParallelOutcome::Gradients { finite, .. } = &mut outcome {
        *finite = all_finite;
    }
    Ok(outcome)
}

/// A peer's shard: its data, or (the first step's first peer) its loss already computed.
enum Work<S, B: Backend> {
    Data(S),
    Computed(Result<FaceLoss<B>, ModelError>),
}

/// One peer's part of the step, from its shard's loss.
fn shard_step<B, M>(
    replica: &M,
    peers: &PeerGroup<B::InnerBackend>,
    local: usize,
    images: usize,
    loss: Result<FaceLoss<B>, ModelError>,
) -> Result<ParallelOutcome, TrainError>
where
    B: KernelAutodiffBackend,
    M: AutodiffModule<B>,
{
    let device = &peers.devices()[local];
    let mut status = [0.0f32; STATUS_LEN];
    status[2 * MAX_PARTS + 1] = images as f32;
    let mut own_detail = None;
    match &loss {
        Ok(loss) => {
            let parts = loss.parts.len();
            assert!(
                parts <= MAX_PARTS,
                "{parts} loss parts: at most {MAX_PARTS}"
            );
            for (p, ((_, part), term)) in loss.parts.iter().zip(&loss.terms).enumerate() {
                let value: f32 = part.clone().into_scalar().elem();
                status[p] = value * term.normaliser.divisor();
                status[MAX_PARTS + p] = term.count() as f32;
            }
            status[2 * MAX_PARTS] = loss.num_positive as f32;
            if status[..parts].iter().any(|v| !v.is_finite()) {
                own_detail = Some(format!("{:?}", &status[..parts]));
                status[2 * MAX_PARTS + 2] = 1.0;
                status[..parts].fill(0.0);
            }
        }
        Err(_) => status[2 * MAX_PARTS + 3] = 1.0,
    }
    let summed = peers.all_reduce_sum(
        local,
        Tensor::from_data(TensorData::new(status.to_vec(), [STATUS_LEN]), device),
        "loss sums and counts",
    )?;
    let summed: Vec<f32> = summed.into_data().convert::<f32>().to_vec().expect("f32");
    let batch_images = summed[2 * MAX_PARTS + 1].round() as usize;
    let loss = match loss {
        Err(e) => return Err(e.into()),
        Ok(_) if summed[2 * MAX_PARTS + 3] > 0.0 => {
            return Err(TrainError::Collective(
                "another peer's loss failed (its own log says why)".into(),
            ))
        }
        Ok(loss) => loss,
    };
    if summed[2 * MAX_PARTS + 2] > 0.0 {
        let detail = match own_detail {
            Some(sums) => format!("loss: part sums {sums} on this peer"),
            None => "loss: NaN or infinite on another peer".into(),
        };
        return Ok(ParallelOutcome::NonFinite {
            detail,
            images: batch_images,
        });
    }
    let parts = loss.parts.len();
    let counts: Vec<usize> = summed[MAX_PARTS..MAX_PARTS + parts]
        .iter()
        .map(|c| c.round() as usize)
        .collect();
    let values = batch_values(&loss, &summed[..parts], &counts, summed[2 * MAX_PARTS]);
    let grads = GradientsParams::from_grads(loss.shard_total(&counts).backward(), replica);
    // After the forward pass every parameter exists; forks share the model's layout.
    let layout = GradientLayout::of(replica);
    let flat = layout.flatten::<B, M, B::InnerBackend>(replica, &grads, device);
    let summed = peers.all_reduce_sum(local, flat, "gradients")?;
    let finite = part_finite(&summed, local, peers.devices().len());
    Ok(ParallelOutcome::Gradients {
        grads: layout.unflatten(replica, summed),
        values,
        images: batch_images,
        finite,
    })
}

/// Whether local peer `local`'s part (of [`shard_ranges`] over `peers`) of the flat summed
/// gradients is finite: the peers check the parts side by side.
fn part_finite<B: Backend>(flat: &Tensor<B, 1>, local: usize, peers: usize) -> bool {
    match shard_ranges(flat.dims()[0], peers).get(local) {
        Some(range) => zero_sum_is_finite(flat.clone().slice(range.clone())),
        None => true,
    }
}

/// The loss of the whole batch from its summed part sums and counts.
fn batch_values<B: KernelBackend>(
    loss: &FaceLoss<B>,
    sums: &[f32],
    counts: &[usize],
    positives: f32,
) -> LossValues {
    let parts: Vec<(&'static str, f32)> = loss
        .parts
        .iter()
        .zip(&loss.terms)
        .zip(sums.iter().zip(counts))
        .map(|(((name, _), term), (sum, &count))| {
            (*name, sum / term.normaliser.with_count(count).divisor())
        })
        .collect();
    let total = parts
        .iter()
        .zip(&loss.terms)
        .map(|((_, value), term)| value * term.weight)
        .sum();
    LossValues {
        total,
        parts,
        num_positive: positives.round() as usize,
    }
}

/// A private one-thread rayon pool: the backend's parallel kernels called inside it stay on
/// the peer's thread instead of queueing on the global pool that every peer shares.
fn one_thread_pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread rayon pool")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_batch_evenly() {
        assert_eq!(shard_ranges(8, 2), vec![0..4, 4..8]);
        assert_eq!(shard_ranges(7, 3), vec![0..3, 3..5, 5..7]);
        assert_eq!(shard_ranges(2, 4), vec![0..1, 1..2]);
        assert_eq!(shard_ranges(5, 0), vec![0..5]);
        assert_eq!(shard_ranges(0, 2), Vec::<Range<usize>>::new());
    }
}
