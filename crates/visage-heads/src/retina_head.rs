//! RetinaNet's head: a class subnet and a box subnet, each applied with shared weights to every
//! pyramid level.

use burn::prelude::*;
use visage_backbone::FeatureLevels;
use visage_kernels::KernelBackend;

use crate::{flatten_levels, HeadError, HeadNorm, Subnet, SubnetConfig};

/// Configuration of a [`RetinaHead`].
#[derive(Config, Debug)]
pub struct RetinaHeadConfig {
    /// Channels of the pyramid levels (256 for RetinaNet's FPN).
    pub in_channels: usize,
    /// Channels of the hidden convolutions of both subnets (256 in RetinaNet).
    pub channels: usize,
    /// Hidden `3×3 conv (+ norm) + ReLU` blocks per subnet (4 in RetinaNet).
    pub num_convs: usize,
    /// Anchors per location `A` (9 in RetinaNet, 6 in FAN).
    pub num_anchors: usize,
    /// Object classes `K`, without background (1 for faces).
    pub num_classes: usize,
    /// Prior probability π of the class predictor at initialisation: its bias is
    /// `-ln((1 - π) / π)`.
    #[config(default = 0.01)]
    pub prior_prob: f64,
    /// Normalisation of the hidden blocks.
    #[config(default = "HeadNorm::None")]
    pub norm: HeadNorm,
}

impl RetinaHeadConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), HeadError> {
        if self.num_anchors == 0 {
            return Err(HeadError::Zero("num_anchors"));
        }
        if self.num_classes == 0 {
            return Err(HeadError::Zero("num_classes"));
        }
        if !(self.prior_prob > 0.0 && self.prior_prob < 1.0) {
            return Err(HeadError::InvalidPrior(self.prior_prob));
        }
        self.cls_config().validate()
    }

    /// Configuration of the class subnet (`A · K` outputs, prior bias).
    pub fn cls_config(&self) -> SubnetConfig {
        let pi = self.prior_prob;
        SubnetConfig::new(
            self.in_channels,
            self.channels,
            self.num_convs,
            self.num_anchors * self.num_classes,
        )
        .with_norm(self.norm)
        .with_predictor_bias(-((1.0 - pi) / pi).ln())
    }

    /// Configuration of the box subnet (`A · 4` outputs, bias 0).
    pub fn box_config(&self) -> SubnetConfig {
        SubnetConfig::new(
            self.in_channels,
            self.channels,
            self.num_convs,
            self.num_anchors * 4,
        )
        .with_norm(self.norm)
    }

    /// Builds the head, initialised as RetinaNet: weights `N(0, 0.01)`, biases 0, class
    /// predictor bias `-ln((1 - π) / π)`.
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails.
    pub fn init<B: KernelBackend>(&self, device: &B::Device) -> RetinaHead<B> {
        if let Err(e) = self.validate() {
            panic!("invalid RetinaHeadConfig: {e}");
        }
        RetinaHead {
            cls_subnet: self.cls_config().init(device),
            box_subnet: self.box_config().init(device),
            num_anchors: self.num_anchors,
            num_classes: self.num_classes,
        }
    }
}

/// Raw per-level outputs of a [`RetinaHead`], finest level first.
#[derive(Debug, Clone)]
pub struct HeadOutputs<B: Backend> {
    /// Class logits per level, `[batch, A · K, h_l, w_l]` (channel `a · K + k`).
    pub cls: Vec<Tensor<B, 4>>,
    /// Box regression per level, `[batch, A · 4, h_l, w_l]` (channel `a · 4 + j`).
    pub boxes: Vec<Tensor<B, 4>>,
    /// DF²S²'s segmentation logits per level, `[batch, 1, h_l, w_l]`, from a
    /// [`SharedHead`](crate::SharedHead) with a segmentation predictor; `None` otherwise.
    pub segmentation: Option<Vec<Tensor<B, 4>>>,
}

/// RetinaNet's class and box subnets, shared across levels.
#[derive(Module, Debug)]
pub struct RetinaHead<B: Backend> {
    /// Class subnet, `A · K` output channels.
    pub cls_subnet: Subnet<B>,
    /// Box subnet, `A · 4` output channels.
    pub box_subnet: Subnet<B>,
    /// Anchors per location `A`.
    pub num_anchors: usize,
    /// Classes `K`.
    pub num_classes: usize,
}

impl<B: KernelBackend> RetinaHead<B> {
    /// Applies both subnets to every level.
    ///
    /// # Shapes
    /// - `features`: levels `[batch, in_channels, h_l, w_l]`, finest first
    /// - output: `cls[l]` is `[batch, A · K, h_l, w_l]`, `boxes[l]` is `[batch, A · 4, h_l, w_l]`
    pub fn forward(&self, features: &FeatureLevels<B>) -> HeadOutputs<B> {
        let (cls, boxes) = features
            .levels
            .iter()
            .map(|level| {
                (
                    self.cls_subnet.forward(level.features.clone()),
                    self.box_subnet.forward(level.features.clone()),
                )
            })
            .unzip();
        HeadOutputs {
            cls,
            boxes,
            segmentation: None,
        }
    }

    /// Flattens outputs into anchor order `(level, y, x, anchor)` (see [`flatten_levels`]).
    ///
    /// # Shapes
    /// - output: `(cls [batch, N, K], boxes [batch, N, 4])` with `N = Σ_l h_l · w_l · A`
    pub fn flatten(&self, outputs: HeadOutputs<B>) -> (Tensor<B, 3>, Tensor<B, 3>) {
        (
            flatten_levels(outputs.cls, self.num_classes),
            flatten_levels(outputs.boxes, 4),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::activation::sigmoid;

    type B = Flex;

    fn pyramid(channels: usize, sizes: &[[usize; 2]]) -> FeatureLevels<B> {
        crate::testing::random_pyramid(channels, sizes)
    }

    #[test]
    fn shapes_per_level() {
        let device = Default::default();
        for norm in [HeadNorm::None, HeadNorm::GroupNorm { groups: 4 }] {
            let head = RetinaHeadConfig::new(6, 8, 2, 3, 2)
                .with_norm(norm)
                .init::<B>(&device);
            let sizes = [[9, 6], [5, 3], [3, 2], [2, 1], [1, 1]];
            let out = head.forward(&pyramid(6, &sizes));
            assert_eq!(out.cls.len(), 5);
            assert_eq!(out.boxes.len(), 5);
            for (l, [h, w]) in sizes.iter().enumerate() {
                assert_eq!(out.cls[l].dims(), [2, 3 * 2, *h, *w]);
                assert_eq!(out.boxes[l].dims(), [2, 3 * 4, *h, *w]);
            }
            let n: usize = sizes.iter().map(|[h, w]| h * w * 3).sum();
            let (cls, boxes) = head.flatten(out);
            assert_eq!(cls.dims(), [2, n, 2]);
            assert_eq!(boxes.dims(), [2, n, 4]);
        }
    }

    #[test]
    fn initial_class_probability_is_the_prior() {
        let device = Default::default();
        let head = RetinaHeadConfig::new(16, 16, 4, 6, 1).init::<B>(&device);
        let out = head.forward(&pyramid(16, &[[8, 8], [4, 4]]));
        let (cls, boxes) = head.flatten(out);
        let mean_p = sigmoid(cls).mean().into_scalar();
        assert!((mean_p - 0.01).abs() < 1e-3, "mean probability {mean_p}");
        // Box outputs start near zero.
        let mean_abs = boxes.abs().mean().into_scalar();
        assert!(mean_abs < 0.05, "mean |box| {mean_abs}");
    }

    #[test]
    fn class_bias_follows_prior() {
        let head = RetinaHeadConfig::new(4, 4, 1, 2, 3)
            .with_prior_prob(0.1)
            .init::<B>(&Default::default());
        let b = head.cls_subnet.predictor.bias.as_ref().unwrap().val();
        let expected = -(0.9f32 / 0.1).ln();
        assert_eq!(b.dims(), [6]);
        assert!((b.clone().min().into_scalar() - expected).abs() < 1e-6);
        assert!((b.max().into_scalar() - expected).abs() < 1e-6);
        let bb = head.box_subnet.predictor.bias.as_ref().unwrap().val();
        assert_eq!(bb.abs().sum().into_scalar(), 0.0);
    }

    #[test]
    fn validate_rejects_bad_prior_and_zero_sizes() {
        let c = RetinaHeadConfig::new(4, 4, 1, 2, 1);
        assert!(c.validate().is_ok());
        assert_eq!(
            c.clone().with_prior_prob(1.0).validate(),
            Err(HeadError::InvalidPrior(1.0))
        );
        assert_eq!(
            RetinaHeadConfig::new(4, 4, 1, 0, 1).validate(),
            Err(HeadError::Zero("num_anchors"))
        );
    }
}
