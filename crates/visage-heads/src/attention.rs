//! FAN's attention subnet (Wang et al., "Face Attention Network", §3.2 "Attention Function"):
//! per pyramid level, with weights shared across levels, `num_convs × (3×3 conv (+ norm) +
//! ReLU)` then a 3×3 conv to one channel. It returns the attention *logits*; the attention map
//! is their sigmoid, and the level's features are multiplied by `exp(σ(logit))` before the
//! class and box subnets ([`AttentionHead::attend`]).
//!
//! Why `exp(σ(·))`: the paper says the attention maps are "first fed to an exp operation and
//! then dot with feature maps", and its attention maps are the sigmoid outputs that are
//! supervised with a sigmoid cross-entropy; the public code (`model_level_attention.py`) does
//! exactly `features * torch.exp(sigmoid(conv5(..)))`. The factor is therefore in `[1, e]`:
//! background features are kept (context), face regions amplified up to e×.

use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use visage_backbone::{FeatureLevel, FeatureLevels};
use visage_kernels::KernelBackend;

use crate::{HeadError, HeadNorm, Subnet, SubnetConfig};

/// Configuration of an [`AttentionHead`].
#[derive(Config, Debug)]
pub struct AttentionHeadConfig {
    /// Channels of the pyramid levels (256 for FAN's FPN).
    pub in_channels: usize,
    /// Channels of the hidden convolutions (256 in FAN).
    pub channels: usize,
    /// Hidden `3×3 conv (+ norm) + ReLU` blocks (4 in FAN; 0 allowed).
    pub num_convs: usize,
    /// Normalisation of the hidden blocks (FAN: none).
    #[config(default = "HeadNorm::None")]
    pub norm: HeadNorm,
}

impl AttentionHeadConfig {
    /// The subnet: `num_convs` hidden blocks, a one-channel predictor with bias 0 (initial
    /// attention σ(0) = 0.5 everywhere, as the public code's zero-initialised `conv5`).
    pub fn subnet_config(&self) -> SubnetConfig {
        SubnetConfig::new(self.in_channels, self.channels, self.num_convs, 1).with_norm(self.norm)
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), HeadError> {
        self.subnet_config().validate()
    }

    /// Builds the head: weights `N(0, 0.01)`, biases 0.
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails.
    pub fn init<B: KernelBackend>(&self, device: &B::Device) -> AttentionHead<B> {
        if let Err(e) = self.validate() {
            panic!("invalid AttentionHeadConfig: {e}");
        }
        AttentionHead {
            subnet: self.subnet_config().init(device),
        }
    }
}

/// FAN's attention subnet, shared across pyramid levels.
#[derive(Module, Debug)]
pub struct AttentionHead<B: Backend> {
    /// Hidden blocks then a 1-channel predictor.
    pub subnet: Subnet<B>,
}

impl<B: KernelBackend> AttentionHead<B> {
    /// Attention logits of every level (apply a sigmoid for the attention map).
    ///
    /// # Shapes
    /// - `features`: levels `[batch, in_channels, h_l, w_l]`, finest first
    /// - output: one `[batch, 1, h_l, w_l]` tensor per level, same order
    pub fn forward(&self, features: &FeatureLevels<B>) -> Vec<Tensor<B, 4>> {
        features
            .levels
            .iter()
            .map(|level| self.subnet.forward(level.features.clone()))
            .collect()
    }

    /// Multiplies every level's features by `exp(σ(logit))`, broadcast over channels.
    ///
    /// # Shapes
    /// - `features`: levels `[batch, c, h_l, w_l]`
    /// - `logits`: one `[batch, 1, h_l, w_l]` per level (from [`forward`](Self::forward))
    /// - output: levels `[batch, c, h_l, w_l]`, strides unchanged
    ///
    /// # Panics
    /// If the number of levels or a level's size differ between the two.
    pub fn attend(features: FeatureLevels<B>, logits: &[Tensor<B, 4>]) -> FeatureLevels<B> {
        assert_eq!(
            features.len(),
            logits.len(),
            "one attention map per pyramid level"
        );
        let levels = features
            .levels
            .into_iter()
            .zip(logits)
            .map(|(level, logit)| {
                let [b, c, h, w] = level.features.dims();
                let [lb, lc, lh, lw] = logit.dims();
                assert!(
                    lb == b && lc == 1 && lh == h && lw == w,
                    "attention map {:?} does not fit the level {:?}",
                    [lb, lc, lh, lw],
                    [b, c, h, w]
                );
                let scale = sigmoid(logit.clone()).exp().expand([b, c, h, w]);
                FeatureLevel::new(level.stride, level.features * scale)
            })
            .collect();
        FeatureLevels::new(levels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::TensorData;

    type B = Flex;

    fn pyramid(channels: usize, sizes: &[[usize; 2]]) -> FeatureLevels<B> {
        crate::testing::random_pyramid(channels, sizes)
    }

    #[test]
    fn one_logit_map_per_level_with_the_level_size() {
        let device = Default::default();
        for norm in [HeadNorm::None, HeadNorm::GroupNorm { groups: 4 }] {
            let head = AttentionHeadConfig::new(6, 8, 2)
                .with_norm(norm)
                .init::<B>(&device);
            assert_eq!(head.subnet.convs.len(), 2);
            let sizes = [[9, 6], [5, 3], [3, 2], [2, 1], [1, 1]];
            let features = pyramid(6, &sizes);
            let logits = head.forward(&features);
            assert_eq!(logits.len(), 5);
            for (l, [h, w]) in sizes.iter().enumerate() {
                assert_eq!(logits[l].dims(), [2, 1, *h, *w]);
            }
            let attended = AttentionHead::attend(features.clone(), &logits);
            assert_eq!(attended.sizes(), features.sizes());
            assert_eq!(attended.strides(), features.strides());
            assert_eq!(attended.channels(), vec![6; 5]);
        }
    }

    #[test]
    fn attend_multiplies_by_exp_of_the_sigmoid() {
        let device = Default::default();
        // One level, 2 channels, 1 × 2 map; logits 0 and a large positive value.
        let features = FeatureLevels::new(vec![FeatureLevel::new(
            8,
            Tensor::<B, 4>::from_data(
                TensorData::new(vec![1.0, 2.0, -3.0, 4.0], [1, 2, 1, 2]),
                &device,
            ),
        )]);
        let logits =
            Tensor::<B, 4>::from_data(TensorData::new(vec![0.0f32, 40.0], [1, 1, 1, 2]), &device);
        let out = AttentionHead::attend(features, &[logits]);
        let values: Vec<f32> = out.levels[0].features.to_data().to_vec().unwrap();
        let half = 0.5f32.exp();
        let e = std::f32::consts::E;
        let expected = [half, 2.0 * e, -3.0 * half, 4.0 * e];
        for (v, x) in values.iter().zip(expected) {
            assert!((v - x).abs() < 1e-5, "{values:?} vs {expected:?}");
        }
    }

    #[test]
    fn initial_attention_is_one_half() {
        let device = Default::default();
        let head = AttentionHeadConfig::new(16, 16, 4).init::<B>(&device);
        let logits = head.forward(&pyramid(16, &[[8, 8], [4, 4]]));
        for l in logits {
            let mean = sigmoid(l).mean().into_scalar();
            assert!((mean - 0.5).abs() < 1e-2, "mean attention {mean}");
        }
    }

    #[test]
    fn validate_rejects_bad_groups() {
        let c = AttentionHeadConfig::new(4, 6, 1).with_norm(HeadNorm::GroupNorm { groups: 4 });
        assert_eq!(
            c.validate(),
            Err(HeadError::GroupsDoNotDivide {
                groups: 4,
                channels: 6
            })
        );
    }
}
