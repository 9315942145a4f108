//! Test support shared by the head modules' unit tests.

use burn::prelude::*;
use burn::tensor::Distribution;
use visage_backbone::{FeatureLevel, FeatureLevels};
use visage_kernels::KernelBackend;

/// A random `N(0, 1)` pyramid of batch 2: level `i` is `[2, channels, h_i, w_i]` with stride
/// `8 · 2^i` (the heads never read the strides; they only need to increase).
pub(crate) fn random_pyramid<B: KernelBackend>(
    channels: usize,
    sizes: &[[usize; 2]],
) -> FeatureLevels<B> {
    let device = Default::default();
    FeatureLevels::new(
        sizes
            .iter()
            .enumerate()
            .map(|(i, &[h, w])| {
                FeatureLevel::new(
                    8 << i,
                    Tensor::random([2, channels, h, w], Distribution::Normal(0.0, 1.0), &device),
                )
            })
            .collect(),
    )
}
