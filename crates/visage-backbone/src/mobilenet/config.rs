//! Configuration of the MobileNetV1 backbone: width multiplier, frozen batch norm, leaky slope.

use burn::prelude::*;

use crate::BackboneError;

/// Output channels (at width 1.0) and stride of every block of MobileNetV1-1.0, per stage, in
/// Pytorch_Retinaface's order. The first block of `stage1` is a full 3×3 convolution
/// (`conv_bn`), every other block a depthwise-separable one (`conv_dw`).
pub(crate) const BASE_PLAN: [&[(usize, usize)]; 3] = [
    &[(32, 2), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1)],
    &[(512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1)],
    &[(1024, 2), (1024, 1)],
];

/// Configuration of a [`MobileNetV1`](super::MobileNetV1) backbone.
///
/// The defaults build Pytorch_Retinaface's `MobileNetV1` (the "mobilenet0.25" RetinaFace
/// backbone): width 0.25, trainable batch norm, leaky ReLU of slope 0.1 after every norm.
#[derive(Config, Debug)]
pub struct MobileNetV1Config {
    /// Scales every channel count of MobileNetV1-1.0 (32, 64, 128, 128, 256, 256, 512 × 6,
    /// 1024, 1024), rounded, at least 1. The default 0.25 gives Pytorch_Retinaface's network
    /// (8, 16, 32, 32, 64, 64, 128 × 6, 256, 256). Must be finite and > 0.
    #[config(default = 0.25)]
    pub width_multiplier: f32,
    /// Use [`FrozenBatchNorm`](crate::FrozenBatchNorm) (statistics and affine fixed, no
    /// gradient) instead of trainable batch norm.
    #[config(default = false)]
    pub frozen_bn: bool,
    /// Negative slope of the leaky ReLU after every norm. Pytorch_Retinaface uses 0.1
    /// everywhere (its `conv_bn` defaults to 0 but the stem passes `leaky = 0.1`).
    #[config(default = 0.1)]
    pub leaky_slope: f64,
}

impl MobileNetV1Config {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), BackboneError> {
        let w = self.width_multiplier;
        if !(w.is_finite() && w > 0.0) {
            return Err(BackboneError::InvalidWidth(w));
        }
        Ok(())
    }

    /// A MobileNetV1-1.0 channel count scaled by the width multiplier: `max(1, round(c · w))`.
    pub fn scaled(&self, channels: usize) -> usize {
        ((channels as f32 * self.width_multiplier).round() as usize).max(1)
    }

    /// Output channels of every block, per stage: `[[8, 16, 32, 32, 64, 64], [128; 6],
    /// [256, 256]]` at width 0.25.
    pub fn stage_channels(&self) -> [Vec<usize>; 3] {
        BASE_PLAN.map(|stage| stage.iter().map(|&(c, _)| self.scaled(c)).collect())
    }

    /// Channels of the three outputs (strides 8, 16, 32): 64, 128, 256 at width 0.25.
    pub fn out_channels(&self) -> [usize; 3] {
        BASE_PLAN.map(|stage| self.scaled(stage[stage.len() - 1].0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_retinaface_mobilenet_025() {
        let c = MobileNetV1Config::new();
        assert_eq!(c.width_multiplier, 0.25);
        assert!(!c.frozen_bn);
        assert_eq!(c.leaky_slope, 0.1);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn channels_at_full_and_reduced_width() {
        let full = MobileNetV1Config::new().with_width_multiplier(1.0);
        assert_eq!(
            full.stage_channels(),
            [
                vec![32, 64, 128, 128, 256, 256],
                vec![512; 6],
                vec![1024, 1024]
            ]
        );
        assert_eq!(full.out_channels(), [256, 512, 1024]);
        let tiny = MobileNetV1Config::new().with_width_multiplier(0.001);
        assert_eq!(tiny.out_channels(), [1, 1, 1]);
    }

    #[test]
    fn validate_rejects_bad_width() {
        for w in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            let c = MobileNetV1Config::new().with_width_multiplier(w);
            assert!(
                matches!(c.validate(), Err(BackboneError::InvalidWidth(_))),
                "width {w} accepted"
            );
        }
    }
}
