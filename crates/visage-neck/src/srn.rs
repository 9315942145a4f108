//! SRN's two feature sets (Chi et al. 2019, §3; its public test code), from a ResNet's
//! C_min..C5:
//! - the backbone goes on with `C6 = ReLU(3×3/2 conv(C5))` (1024 channels in SRN) and
//!   `C7 = ReLU(3×3/2 conv(C6))` (256);
//! - **first step**: a `1×1` conv of each of C_min..C7 to the pyramid's channels;
//! - **second step**: an FPN over C_min..C5 whose P6 is a 3×3/2 conv of C5's lateral and P7
//!   a 3×3/2 conv of ReLU(P6) (see [`ExtraSource::Lateral`]).
//!
//! Both sets have the same levels (strides `2^min_level .. 128`) and the same sizes, so one
//! head and one set of anchors serve both. The ReLUs after C6 and C7 are this crate's choice
//! (the published description gives the convolutions only).

use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::activation::relu;
use visage_backbone::{FeatureLevel, FeatureLevels};
use visage_kernels::{conv2d_layer, KernelBackend};

use crate::fpn::fpn_conv;
use crate::{ExtraSource, Fpn, FpnConfig, NeckError};

/// Configuration of an [`SrnNeck`].
#[derive(Config, Debug)]
pub struct SrnNeckConfig {
    /// Channels of the backbone levels C_min..C5, finest first (ResNet-50 from C2:
    /// `[256, 512, 1024, 2048]`).
    pub in_channels: Vec<usize>,
    /// Channels of every level of both feature sets (256 in SRN).
    pub out_channels: usize,
    /// Channels of C6 (1024 in SRN).
    #[config(default = 1024)]
    pub c6_channels: usize,
    /// Channels of C7 (256 in SRN).
    #[config(default = 256)]
    pub c7_channels: usize,
}

impl SrnNeckConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), NeckError> {
        FpnConfig::new(self.in_channels.clone(), self.out_channels).validate()?;
        for (value, name) in [
            (self.c6_channels, "c6_channels"),
            (self.c7_channels, "c7_channels"),
        ] {
            if value == 0 {
                return Err(NeckError::ZeroChannels(name.into()));
            }
        }
        Ok(())
    }

    /// Builds the neck; every conv is initialised as the FPN's (Kaiming uniform, `a = 1`,
    /// bias 0).
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails.
    pub fn init<B: KernelBackend>(&self, device: &B::Device) -> SrnNeck<B> {
        if let Err(e) = self.validate() {
            panic!("invalid SrnNeckConfig: {e}");
        }
        let c5 = *self.in_channels.last().expect("validated non-empty");
        let out = self.out_channels;
        let first_step = self
            .in_channels
            .iter()
            .chain([&self.c6_channels, &self.c7_channels])
            .map(|&c| fpn_conv(c, out, 1, 1, device))
            .collect();
        SrnNeck {
            c6: fpn_conv(c5, self.c6_channels, 3, 2, device),
            c7: fpn_conv(self.c6_channels, self.c7_channels, 3, 2, device),
            first_step,
            fpn: FpnConfig::new(self.in_channels.clone(), out)
                .with_extra_levels(2)
                .with_extra_source(ExtraSource::Lateral)
                .init(device),
        }
    }
}

/// SRN's feature sets: the same strides and sizes, finest first.
#[derive(Debug, Clone)]
pub struct SrnFeatures<B: Backend> {
    /// First step: 1×1 projections of C_min..C7.
    pub first: FeatureLevels<B>,
    /// Second step: FPN levels P_min..P7.
    pub second: FeatureLevels<B>,
}

/// SRN's neck: the extra backbone levels C6, C7, the first-step projections and the FPN.
#[derive(Module, Debug)]
pub struct SrnNeck<B: Backend> {
    /// `3×3/2`, C5 → C6 (followed by a ReLU).
    pub c6: Conv2d<B>,
    /// `3×3/2`, C6 → C7 (followed by a ReLU).
    pub c7: Conv2d<B>,
    /// `1×1` projections of C_min..C7, finest first.
    pub first_step: Vec<Conv2d<B>>,
    /// The second step's FPN, P_min..P7.
    pub fpn: Fpn<B>,
}

impl<B: KernelBackend> SrnNeck<B> {
    /// # Shapes
    /// - `features`: C_min..C5 of the configured channels, finest first, level `i`
    ///   `[batch, in_channels[i], h_i, w_i]`
    /// - output: both sets with the input levels' sizes, then two levels each
    ///   `ceil(h / 2) × ceil(w / 2)` of the previous one; `out_channels` everywhere
    ///
    /// # Panics
    /// If the levels or their channels differ from the configuration.
    pub fn forward(&self, features: FeatureLevels<B>) -> SrnFeatures<B> {
        let c5 = features
            .levels
            .last()
            .expect("at least one input level")
            .clone();
        let c6 = relu(conv2d_layer(&self.c6, c5.features));
        let c7 = relu(conv2d_layer(&self.c7, c6.clone()));
        let mut c = features.levels.clone();
        c.push(FeatureLevel::new(c5.stride * 2, c6));
        c.push(FeatureLevel::new(c5.stride * 4, c7));
        assert_eq!(c.len(), self.first_step.len(), "one projection per level");
        let first = c
            .into_iter()
            .zip(&self.first_step)
            .map(|(level, conv)| {
                FeatureLevel::new(level.stride, conv2d_layer(conv, level.features))
            })
            .collect();
        SrnFeatures {
            first: FeatureLevels::new(first),
            second: self.fpn.forward(features),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::{Distribution, Tolerance};

    type B = Flex;

    fn inputs(device: &burn::backend::flex::FlexDevice) -> FeatureLevels<B> {
        // C2..C5 of a 70 × 45 image: 18×12, 9×6, 5×3, 3×2.
        let level = |s, c, h, w| {
            FeatureLevel::new(
                s,
                Tensor::random([2, c, h, w], Distribution::Normal(0.0, 1.0), device),
            )
        };
        FeatureLevels::new(vec![
            level(4, 3, 18, 12),
            level(8, 4, 9, 6),
            level(16, 6, 5, 3),
            level(32, 8, 3, 2),
        ])
    }

    #[test]
    fn both_sets_share_strides_and_sizes() {
        let device = Default::default();
        let neck = SrnNeckConfig::new(vec![3, 4, 6, 8], 5)
            .with_c6_channels(7)
            .with_c7_channels(6)
            .init::<B>(&device);
        assert_eq!(neck.first_step.len(), 6);
        assert_eq!(neck.c6.weight.dims(), [7, 8, 3, 3]);
        assert_eq!(neck.c7.weight.dims(), [6, 7, 3, 3]);
        assert_eq!(neck.first_step[5].weight.dims(), [5, 6, 1, 1]);
        let out = neck.forward(inputs(&device));
        for set in [&out.first, &out.second] {
            assert_eq!(set.strides(), vec![4, 8, 16, 32, 64, 128]);
            assert_eq!(set.channels(), vec![5; 6]);
            assert_eq!(
                set.sizes(),
                vec![[18, 12], [9, 6], [5, 3], [3, 2], [2, 1], [1, 1]]
            );
        }
    }

    #[test]
    fn first_step_levels_are_projections_of_c_and_its_extensions() {
        let device = Default::default();
        let neck = SrnNeckConfig::new(vec![3, 4, 6, 8], 5)
            .with_c6_channels(7)
            .with_c7_channels(6)
            .init::<B>(&device);
        let c = inputs(&device);
        let c2 = c.levels[0].features.clone();
        let c5 = c.levels[3].features.clone();
        let out = neck.forward(c);
        let close = |a: Tensor<B, 4>, b: Tensor<B, 4>| {
            a.into_data()
                .assert_approx_eq::<f32>(&b.into_data(), Tolerance::default())
        };
        close(
            out.first.levels[0].features.clone(),
            neck.first_step[0].forward(c2),
        );
        let c6 = relu(neck.c6.forward(c5));
        let c7 = relu(neck.c7.forward(c6));
        close(
            out.first.levels[5].features.clone(),
            neck.first_step[5].forward(c7),
        );
        assert!(SrnNeckConfig::new(vec![3], 5)
            .with_c6_channels(0)
            .validate()
            .is_err());
    }
}
