//! The loss of a batch split into shards (data parallel over devices and machines), exactly.
//!
//! Each loss part is a sum over the batch divided by a count of the batch (positives of a
//! matching, faces with landmarks, images). A shard computes its parts with its own counts;
//! the part of the whole batch is `Σ_k S_k / C`, where `C` is the count of the whole batch,
//! so shard `k` contributes `part_k · c_k / C` (`c_k`: the divisor it used). Weighting each
//! shard's parts this way and summing the shards' gradients gives the gradient of the batch
//! loss, whatever the split — once the shards' counts are summed ([`LossTerm::count`]).

use burn::prelude::*;
use visage_kernels::KernelBackend;

/// How a loss part was normalised within its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normaliser {
    /// Divided by `max(1, n)`: `n` positives of a matching, faces with landmarks, rendered
    /// faces.
    Count(usize),
    /// A mean over the `n` images of the batch (per-image or per-pixel means).
    Images(usize),
}

impl Normaliser {
    /// The count it was computed with (`n`).
    pub fn count(self) -> usize {
        match self {
            Normaliser::Count(n) | Normaliser::Images(n) => n,
        }
    }

    /// What the part was divided by.
    pub fn divisor(self) -> f32 {
        match self {
            Normaliser::Count(n) => n.max(1) as f32,
            Normaliser::Images(n) => n as f32,
        }
    }

    /// The same rule with the count of the whole batch.
    pub fn with_count(self, n: usize) -> Self {
        match self {
            Normaliser::Count(_) => Normaliser::Count(n),
            Normaliser::Images(_) => Normaliser::Images(n),
        }
    }
}

/// The weight of a loss part in the total and how it was normalised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossTerm {
    /// Its weight in the total (`box_weight`, `landmark_weight`, ...; 1 for parts without).
    pub weight: f32,
    /// How it was normalised.
    pub normaliser: Normaliser,
}

impl LossTerm {
    /// A term of weight `weight` normalised by `normaliser`.
    pub fn new(weight: f32, normaliser: Normaliser) -> Self {
        Self { weight, normaliser }
    }

    /// The count this shard adds to the batch's (summed over shards).
    pub fn count(&self) -> usize {
        self.normaliser.count()
    }
}

/// `Σ_p weight_p · part_p · divisor_p / batch divisor_p`: this shard's share of the loss of
/// the whole batch, whose counts (summed over the shards, in part order) are `batch_counts`.
/// With the shard's own counts it is the shard's total.
///
/// # Panics
/// If `parts`, `terms` and `batch_counts` differ in length, or a batch count is below the
/// shard's.
pub fn shard_total<B: KernelBackend>(
    parts: &[(&'static str, Tensor<B, 1>)],
    terms: &[LossTerm],
    batch_counts: &[usize],
) -> Tensor<B, 1> {
    assert!(
        parts.len() == terms.len() && terms.len() == batch_counts.len() && !parts.is_empty(),
        "{} parts, {} terms, {} counts",
        parts.len(),
        terms.len(),
        batch_counts.len()
    );
    parts
        .iter()
        .zip(terms)
        .zip(batch_counts)
        .map(|(((name, part), term), &count)| {
            assert!(
                count >= term.count(),
                "{name}: the batch's count {count} is below the shard's {}",
                term.count()
            );
            let batch = term.normaliser.with_count(count);
            part.clone() * (term.weight * term.normaliser.divisor() / batch.divisor())
        })
        .reduce(|a, b| a + b)
        .expect("at least one part")
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;

    use super::*;

    #[test]
    fn shards_reweight_to_the_batch_normaliser() {
        let device = Default::default();
        let t = |v: f32| Tensor::<Flex, 1>::from_floats([v], &device);
        // Two shards: positives 1 and 3, sums 2 and 6 (parts 2/1 and 6/3); the batch: 8 / 4.
        let terms = |n| [LossTerm::new(2.0, Normaliser::Count(n))];
        let a = shard_total(&[("box", t(2.0))], &terms(1), &[4]);
        let b = shard_total(&[("box", t(2.0))], &terms(3), &[4]);
        let total: f32 = (a + b).into_scalar();
        assert!((total - 2.0 * 8.0 / 4.0).abs() < 1e-6, "{total}");
        // No positive in a shard: divided by 1, as the batch is when it has none either.
        let none = shard_total(
            &[("cls", t(0.5))],
            &[LossTerm::new(1.0, Normaliser::Count(0))],
            &[0],
        );
        assert_eq!(none.into_scalar(), 0.5);
        // Means over images: a shard of 1 image of a batch of 4 counts a quarter.
        let mean = shard_total(
            &[("attn", t(0.8))],
            &[LossTerm::new(1.0, Normaliser::Images(1))],
            &[4],
        );
        assert!((mean.into_scalar() - 0.2).abs() < 1e-7);
    }
}
