//! Configuration of the ResNet backbones: depth, width multiplier, frozen batch norm.

use burn::prelude::*;

use crate::BackboneError;

/// The five depths of torchvision's ResNet family.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum ResNetDepth {
    /// ResNet-18: basic blocks, stages of 2, 2, 2, 2.
    D18,
    /// ResNet-34: basic blocks, stages of 3, 4, 6, 3.
    D34,
    /// ResNet-50: bottleneck blocks, stages of 3, 4, 6, 3.
    D50,
    /// ResNet-101: bottleneck blocks, stages of 3, 4, 23, 3.
    D101,
    /// ResNet-152: bottleneck blocks, stages of 3, 8, 36, 3.
    D152,
}

impl ResNetDepth {
    /// Number of residual blocks in `layer1..layer4`.
    pub fn blocks_per_stage(self) -> [usize; 4] {
        match self {
            ResNetDepth::D18 => [2, 2, 2, 2],
            ResNetDepth::D34 | ResNetDepth::D50 => [3, 4, 6, 3],
            ResNetDepth::D101 => [3, 4, 23, 3],
            ResNetDepth::D152 => [3, 8, 36, 3],
        }
    }

    /// Whether the blocks are bottlenecks (1×1, 3×3, 1×1, expansion 4) rather than basic
    /// blocks (3×3, 3×3, expansion 1).
    pub fn is_bottleneck(self) -> bool {
        !matches!(self, ResNetDepth::D18 | ResNetDepth::D34)
    }

    /// Output channels of a block relative to its inner width (`planes`): 4 or 1.
    pub fn expansion(self) -> usize {
        if self.is_bottleneck() {
            4
        } else {
            1
        }
    }
}

/// Configuration of a [`ResNet`](super::ResNet) backbone.
#[derive(Config, Debug)]
pub struct ResNetConfig {
    /// Which ResNet (18, 34, 50, 101, 152).
    pub depth: ResNetDepth,
    /// Scales every channel count (rounded, at least 1): 1.0 is torchvision's network;
    /// 0.125 gives a stem of 8 channels and stage widths 8, 16, 32, 64 (×4 for bottlenecks),
    /// for tests and quick CPU training. Must be finite and > 0.
    #[config(default = 1.0)]
    pub width_multiplier: f32,
    /// Use [`FrozenBatchNorm`](crate::FrozenBatchNorm) (statistics and affine fixed, no
    /// gradient) instead of trainable batch norm, as detectors fine-tuning ImageNet weights do.
    #[config(default = false)]
    pub frozen_bn: bool,
    /// Freeze the stem (`conv1`, `bn1`): no gradients, batch norm frozen.
    #[config(default = false)]
    pub freeze_stem: bool,
    /// Freeze the first N of the four stages (`layer1..layerN`), 0 to 4: their convolutions
    /// get no gradients and their batch norms are frozen. Detectors fine-tuning ImageNet
    /// weights typically freeze the stem and `layer1` (`freeze_stem = true`, `frozen_stages = 1`).
    #[config(default = 0)]
    pub frozen_stages: usize,
}

impl ResNetConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), BackboneError> {
        let w = self.width_multiplier;
        if !(w.is_finite() && w > 0.0) {
            return Err(BackboneError::InvalidWidth(w));
        }
        if self.frozen_stages > 4 {
            return Err(BackboneError::InvalidFrozenStages(self.frozen_stages));
        }
        Ok(())
    }

    /// A torchvision channel count scaled by the width multiplier: `max(1, round(c · w))`.
    pub fn scaled(&self, channels: usize) -> usize {
        ((channels as f32 * self.width_multiplier).round() as usize).max(1)
    }

    /// Channels of the stem (`conv1`, `bn1`): 64 at width 1.
    pub fn stem_channels(&self) -> usize {
        self.scaled(64)
    }

    /// Inner width (`planes`) of the blocks of each stage: 64, 128, 256, 512 at width 1.
    pub fn stage_planes(&self) -> [usize; 4] {
        [64, 128, 256, 512].map(|c| self.scaled(c))
    }

    /// Output channels of C2..C5: planes × expansion (256, 512, 1024, 2048 for ResNet-50 at
    /// width 1; 64, 128, 256, 512 for ResNet-18/34).
    pub fn out_channels(&self) -> [usize; 4] {
        let e = self.depth.expansion();
        self.stage_planes().map(|p| p * e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_at_full_and_reduced_width() {
        let r50 = ResNetConfig::new(ResNetDepth::D50);
        assert_eq!(r50.stem_channels(), 64);
        assert_eq!(r50.out_channels(), [256, 512, 1024, 2048]);
        let r18 = ResNetConfig::new(ResNetDepth::D18).with_width_multiplier(0.125);
        assert_eq!(r18.stem_channels(), 8);
        assert_eq!(r18.out_channels(), [8, 16, 32, 64]);
        let tiny = ResNetConfig::new(ResNetDepth::D101).with_width_multiplier(0.001);
        assert_eq!(tiny.stem_channels(), 1);
        assert_eq!(tiny.out_channels(), [4, 4, 4, 4]);
    }

    #[test]
    fn stage_layout_per_depth() {
        assert_eq!(ResNetDepth::D152.blocks_per_stage(), [3, 8, 36, 3]);
        assert_eq!(ResNetDepth::D101.blocks_per_stage(), [3, 4, 23, 3]);
        assert!(!ResNetDepth::D34.is_bottleneck());
        assert_eq!(ResNetDepth::D50.expansion(), 4);
    }

    #[test]
    fn validate_rejects_bad_width() {
        for w in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            let c = ResNetConfig::new(ResNetDepth::D18).with_width_multiplier(w);
            assert!(c.validate().is_err(), "width {w} accepted");
        }
        assert!(ResNetConfig::new(ResNetDepth::D18).validate().is_ok());
        let c = ResNetConfig::new(ResNetDepth::D18).with_frozen_stages(5);
        assert_eq!(c.validate(), Err(BackboneError::InvalidFrozenStages(5)));
    }
}
