//! Group normalisation as `burn::nn::GroupNorm::forward` computes it (the same operations in
//! the same order, so the same values), except the per-channel affine: Burn multiplies by
//! `gamma` reshaped to `[1, C, 1, 1]`, a broadcast over the batch that burn-flex 0.21 walks
//! element by element (8 % of the quickstart's training step); here it goes through
//! [`per_channel_affine`], whose `[B, C, 1]` rows take Flex's vectorised path.

use burn::nn::GroupNorm;
use burn::prelude::*;
use visage_backbone::per_channel_affine;
use visage_kernels::KernelBackend;

/// `norm.forward(x)` for a 4-D input.
///
/// # Shapes
/// - `x`: `[batch, channels, h, w]` with `channels = norm.num_channels`; output the same.
pub fn group_norm<B: KernelBackend>(norm: &GroupNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [batch, channels, h, w] = x.dims();
    let groups = norm.num_groups;
    let hidden = channels / groups * h * w;
    let x = x.reshape([batch, groups, hidden]);
    let mean = x.clone().sum_dim(2) / hidden as f64;
    let x = x.sub(mean);
    let var = x.clone().square().sum_dim(2) / hidden as f64;
    let normalised = x
        .div(var.add_scalar(norm.epsilon).sqrt())
        .reshape([batch, channels, h, w]);
    match (&norm.gamma, &norm.beta) {
        (Some(gamma), Some(beta)) if norm.affine => {
            per_channel_affine(normalised, gamma.val(), beta.val())
        }
        _ => normalised,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::nn::GroupNormConfig;
    use burn::tensor::Distribution;

    /// Values and gradients (input, gamma, beta) equal Burn's `GroupNorm::forward`, with a
    /// non-trivial affine, at batch > 1 and odd sizes.
    #[test]
    fn equals_burns_group_norm_with_gradients() {
        type AD = Autodiff<Flex>;
        let device = Default::default();
        let mut norm = GroupNormConfig::new(4, 12).init::<AD>(&device);
        let random = |shape: [usize; 1]| {
            Tensor::<AD, 1>::random(shape, Distribution::Normal(0.0, 1.0), &device)
        };
        norm.gamma = Some(burn::module::Param::from_tensor(random([12])));
        norm.beta = Some(burn::module::Param::from_tensor(random([12])));
        let x = Tensor::<AD, 4>::random([3, 12, 5, 7], Distribution::Normal(1.0, 2.0), &device)
            .require_grad();
        let loss = |y: Tensor<AD, 4>| (y.clone() * y.sin()).sum();
        let ours = group_norm(&norm, x.clone());
        let theirs = norm.forward(x.clone());
        let max_diff = |a: Tensor<Flex, 4>, b: Tensor<Flex, 4>| (a - b).abs().max().into_scalar();
        assert!(max_diff(ours.clone().inner(), theirs.clone().inner()) < 1e-6);
        let g_ours = loss(ours).backward();
        let g_theirs = loss(theirs).backward();
        let dx = max_diff(x.grad(&g_ours).unwrap(), x.grad(&g_theirs).unwrap());
        assert!(dx < 1e-5, "input gradient {dx}");
        for param in [norm.gamma.as_ref().unwrap(), norm.beta.as_ref().unwrap()] {
            let a = param.val().grad(&g_ours).unwrap();
            let b = param.val().grad(&g_theirs).unwrap();
            let d = (a - b).abs().max().into_scalar();
            assert!(d < 1e-4, "affine gradient {d}");
        }
    }
}
