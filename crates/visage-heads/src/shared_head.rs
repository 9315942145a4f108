//! DF²S²'s detection head (Tian et al., "Learning Better Features for Face Detection with
//! Feature Fusion and Segmentation Supervision", §3.1–3.2): ONE stack of `num_convs × (3×3
//! conv (+ norm) + ReLU)` shared by the class and box branches — "the convolution parameters
//! are shared across the detection branch except the final prediction layers" — followed by
//! a class predictor (3×3 conv to `A · K`) and a box predictor (3×3 conv to `A · 4`); and,
//! optionally, the segmentation branch, whose first convs are that same stack ("the
//! parameters of the first four convolution layers are shared with the detection branch")
//! followed by a 3×3 conv to one channel. Everything is shared across pyramid levels.
//!
//! Initialisation as [`RetinaHead`](crate::RetinaHead): weights `N(0, 0.01)`, biases 0, the
//! class predictor's bias `-ln((1 - π) / π)`; the segmentation predictor's bias is 0 (initial
//! mask probability σ(0) = 0.5, as FAN's attention predictor).

use burn::nn::conv::Conv2d;
use burn::prelude::*;
use visage_kernels::{conv2d_layer, KernelBackend};

use crate::subnet::{conv3x3, conv_stack, validate_norm};
use crate::{ConvBlock, HeadError, HeadNorm, HeadOutputs};

/// Standard deviation of the normal initialisation of every convolution weight.
const INIT_STD: f64 = 0.01;

/// Configuration of a [`SharedHead`].
#[derive(Config, Debug)]
pub struct SharedHeadConfig {
    /// Channels of the pyramid levels (256 for DF²S²'s projected FFP).
    pub in_channels: usize,
    /// Channels of the shared hidden convolutions (256 in DF²S²).
    pub channels: usize,
    /// Shared hidden `3×3 conv (+ norm) + ReLU` blocks (4 in DF²S²; 0 allowed).
    pub num_convs: usize,
    /// Anchors per location `A`.
    pub num_anchors: usize,
    /// Object classes `K`, without background (1 for faces).
    pub num_classes: usize,
    /// Prior probability π of the class predictor at initialisation.
    #[config(default = 0.01)]
    pub prior_prob: f64,
    /// Normalisation of the hidden blocks.
    #[config(default = "HeadNorm::None")]
    pub norm: HeadNorm,
    /// Add the segmentation predictor (a 3×3 conv to one channel on the shared convs).
    #[config(default = false)]
    pub segmentation: bool,
}

impl SharedHeadConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), HeadError> {
        for (value, name) in [
            (self.in_channels, "in_channels"),
            (self.channels, "channels"),
            (self.num_anchors, "num_anchors"),
            (self.num_classes, "num_classes"),
        ] {
            if value == 0 {
                return Err(HeadError::Zero(name));
            }
        }
        if !(self.prior_prob > 0.0 && self.prior_prob < 1.0) {
            return Err(HeadError::InvalidPrior(self.prior_prob));
        }
        validate_norm(self.norm, self.channels)
    }

    /// Builds the head.
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails.
    pub fn init<B: KernelBackend>(&self, device: &B::Device) -> SharedHead<B> {
        if let Err(e) = self.validate() {
            panic!("invalid SharedHeadConfig: {e}");
        }
        let (convs, c_last) = conv_stack(
            self.in_channels,
            self.channels,
            self.num_convs,
            self.norm,
            INIT_STD,
            device,
        );
        let pi = self.prior_prob;
        SharedHead {
            convs,
            cls_predictor: conv3x3(
                c_last,
                self.num_anchors * self.num_classes,
                INIT_STD,
                -((1.0 - pi) / pi).ln(),
                device,
            ),
            box_predictor: conv3x3(c_last, self.num_anchors * 4, INIT_STD, 0.0, device),
            seg_predictor: self
                .segmentation
                .then(|| conv3x3(c_last, 1, INIT_STD, 0.0, device)),
            num_anchors: self.num_anchors,
            num_classes: self.num_classes,
        }
    }
}

/// DF²S²'s head: one conv stack shared by the class, box (and segmentation) predictors,
/// shared across levels. Parameters: `convs.*`, `cls_predictor`, `box_predictor`,
/// `seg_predictor`.
#[derive(Module, Debug)]
pub struct SharedHead<B: Backend> {
    /// The shared hidden `conv + norm + ReLU` blocks.
    pub convs: Vec<ConvBlock<B>>,
    /// 3×3 conv to `A · K` class logits.
    pub cls_predictor: Conv2d<B>,
    /// 3×3 conv to `A · 4` box deltas.
    pub box_predictor: Conv2d<B>,
    /// 3×3 conv to one segmentation logit (training supervision only), when configured.
    pub seg_predictor: Option<Conv2d<B>>,
    /// Anchors per location `A`.
    pub num_anchors: usize,
    /// Classes `K`.
    pub num_classes: usize,
}

impl<B: KernelBackend> SharedHead<B> {
    /// Applies the shared convs once per level, then every predictor to their output.
    ///
    /// # Shapes
    /// - `features`: levels `[batch, in_channels, h_l, w_l]`, finest first
    /// - output: `cls[l]` `[batch, A · K, h_l, w_l]`, `boxes[l]` `[batch, A · 4, h_l, w_l]`,
    ///   and with the segmentation predictor `segmentation[l]` `[batch, 1, h_l, w_l]` (logits)
    pub fn forward(&self, features: &visage_backbone::FeatureLevels<B>) -> HeadOutputs<B> {
        let mut cls = Vec::with_capacity(features.len());
        let mut boxes = Vec::with_capacity(features.len());
        let mut segmentation = self
            .seg_predictor
            .as_ref()
            .map(|_| Vec::with_capacity(features.len()));
        for level in &features.levels {
            let hidden = self
                .convs
                .iter()
                .fold(level.features.clone(), |x, block| block.forward(x));
            if let (Some(seg), Some(out)) = (&self.seg_predictor, segmentation.as_mut()) {
                out.push(seg.forward(hidden.clone()));
            }
            cls.push(conv2d_layer(&self.cls_predictor, hidden.clone()));
            boxes.push(conv2d_layer(&self.box_predictor, hidden));
        }
        HeadOutputs {
            cls,
            boxes,
            segmentation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RetinaHeadConfig, SubnetConfig};
    use burn::backend::Flex;
    use burn::module::Module;
    use burn::tensor::activation::sigmoid;
    use visage_backbone::FeatureLevels;

    type B = Flex;

    fn pyramid(channels: usize, sizes: &[[usize; 2]]) -> FeatureLevels<B> {
        crate::testing::random_pyramid(channels, sizes)
    }

    const SIZES: [[usize; 2]; 6] = [[17, 12], [9, 6], [5, 3], [3, 2], [2, 1], [1, 1]];

    #[test]
    fn shapes_per_level_with_and_without_segmentation() {
        let device = Default::default();
        for (norm, segmentation) in [
            (HeadNorm::None, true),
            (HeadNorm::GroupNorm { groups: 4 }, false),
        ] {
            let head = SharedHeadConfig::new(6, 8, 2, 2, 1)
                .with_norm(norm)
                .with_segmentation(segmentation)
                .init::<B>(&device);
            let out = head.forward(&pyramid(6, &SIZES));
            assert_eq!(out.cls.len(), 6);
            assert_eq!(out.boxes.len(), 6);
            for (l, [h, w]) in SIZES.iter().enumerate() {
                assert_eq!(out.cls[l].dims(), [2, 2, *h, *w]);
                assert_eq!(out.boxes[l].dims(), [2, 2 * 4, *h, *w]);
            }
            match out.segmentation {
                Some(seg) => {
                    assert!(segmentation);
                    assert_eq!(seg.len(), 6);
                    for (l, [h, w]) in SIZES.iter().enumerate() {
                        assert_eq!(seg[l].dims(), [2, 1, *h, *w]);
                    }
                }
                None => assert!(!segmentation),
            }
        }
    }

    #[test]
    fn one_conv_stack_is_shared_by_both_predictors() {
        let device = Default::default();
        let (c_in, c, convs, a) = (6, 8, 3, 2);
        let shared = SharedHeadConfig::new(c_in, c, convs, a, 1).init::<B>(&device);
        let separate = RetinaHeadConfig::new(c_in, c, convs, a, 1).init::<B>(&device);
        assert_eq!(shared.convs.len(), convs);
        // The separate head holds two stacks; the shared one, one stack and two predictors.
        let stack = SubnetConfig::new(c_in, c, convs, 1).init::<B>(&device);
        let stack_params = stack.num_params() - (c * 9 + 1);
        let predictors = (c * 9 * a + a) + (c * 9 * a * 4 + a * 4);
        assert_eq!(shared.num_params(), stack_params + predictors);
        assert_eq!(separate.num_params(), 2 * stack_params + predictors);
        // The segmentation predictor adds a single 3×3 conv to one channel.
        let with_seg = SharedHeadConfig::new(c_in, c, convs, a, 1)
            .with_segmentation(true)
            .init::<B>(&device);
        assert_eq!(with_seg.num_params(), shared.num_params() + c * 9 + 1);
    }

    #[test]
    fn predictors_read_the_same_hidden_features() {
        // Zeroing the shared stack's last conv makes its output ReLU(bias) = 0 everywhere:
        // every predictor then outputs its bias, whatever the input.
        let device = Default::default();
        let mut head = SharedHeadConfig::new(4, 4, 1, 1, 1)
            .with_segmentation(true)
            .init::<B>(&device);
        head.convs[0].conv.weight = burn::module::Param::from_tensor(Tensor::zeros(
            head.convs[0].conv.weight.dims(),
            &device,
        ));
        let out = head.forward(&pyramid(4, &[[5, 3]]));
        let p = sigmoid(out.cls[0].clone());
        assert!((p.clone().min().into_scalar() - 0.01).abs() < 1e-6);
        assert!((p.max().into_scalar() - 0.01).abs() < 1e-6);
        assert_eq!(out.boxes[0].clone().abs().max().into_scalar(), 0.0);
        let seg = out.segmentation.unwrap();
        assert_eq!(seg[0].clone().abs().max().into_scalar(), 0.0);
    }

    #[test]
    fn validate_rejects_bad_values() {
        assert!(SharedHeadConfig::new(4, 4, 1, 2, 1).validate().is_ok());
        assert_eq!(
            SharedHeadConfig::new(4, 4, 1, 0, 1).validate(),
            Err(HeadError::Zero("num_anchors"))
        );
        assert_eq!(
            SharedHeadConfig::new(4, 6, 1, 2, 1)
                .with_norm(HeadNorm::GroupNorm { groups: 4 })
                .validate(),
            Err(HeadError::GroupsDoNotDivide {
                groups: 4,
                channels: 6
            })
        );
        assert_eq!(
            SharedHeadConfig::new(4, 4, 1, 2, 1)
                .with_prior_prob(0.0)
                .validate(),
            Err(HeadError::InvalidPrior(0.0))
        );
    }
}
