//! [`DetectionHead`]: the closed set of class / box heads a RetinaNet-family detector can hold,
//! behind one module: RetinaNet's separate subnets or DF²S²'s shared conv stack. The variant
//! is not part of parameter paths (burn-store skips enum variants), so a RetinaNet's head
//! keeps its `head.cls_subnet.*` / `head.box_subnet.*` keys.

use burn::prelude::*;
use visage_backbone::FeatureLevels;
use visage_kernels::KernelBackend;

use crate::{HeadError, HeadOutputs, RetinaHead, RetinaHeadConfig, SharedHead, SharedHeadConfig};

/// Configuration of a [`DetectionHead`]: which head, with its own configuration.
#[derive(Debug, Clone)]
pub enum DetectionHeadConfig {
    /// RetinaNet's separate class and box subnets.
    Separate(RetinaHeadConfig),
    /// DF²S²'s shared conv stack.
    Shared(SharedHeadConfig),
}

impl DetectionHeadConfig {
    /// Checks the configuration of the chosen head.
    pub fn validate(&self) -> Result<(), HeadError> {
        match self {
            DetectionHeadConfig::Separate(config) => config.validate(),
            DetectionHeadConfig::Shared(config) => config.validate(),
        }
    }

    /// Builds the head.
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails.
    pub fn init<B: KernelBackend>(&self, device: &B::Device) -> DetectionHead<B> {
        match self {
            DetectionHeadConfig::Separate(config) => config.init(device).into(),
            DetectionHeadConfig::Shared(config) => config.init(device).into(),
        }
    }
}

/// A class / box head shared across pyramid levels.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum DetectionHead<B: Backend> {
    /// RetinaNet: a class subnet and a box subnet, each with its own conv stack.
    Separate(RetinaHead<B>),
    /// DF²S²: one conv stack shared by the class, box (and segmentation) predictors.
    Shared(SharedHead<B>),
}

impl<B: KernelBackend> DetectionHead<B> {
    /// Applies the head to every level.
    ///
    /// # Shapes
    /// - `features`: levels `[batch, in_channels, h_l, w_l]`, finest first
    /// - output: `cls[l]` `[batch, A · K, h_l, w_l]`, `boxes[l]` `[batch, A · 4, h_l, w_l]`,
    ///   `segmentation[l]` `[batch, 1, h_l, w_l]` for a shared head with segmentation
    pub fn forward(&self, features: &FeatureLevels<B>) -> HeadOutputs<B> {
        match self {
            DetectionHead::Separate(head) => head.forward(features),
            DetectionHead::Shared(head) => head.forward(features),
        }
    }

    /// Anchors per location `A`.
    pub fn num_anchors(&self) -> usize {
        match self {
            DetectionHead::Separate(head) => head.num_anchors,
            DetectionHead::Shared(head) => head.num_anchors,
        }
    }

    /// Classes `K`.
    pub fn num_classes(&self) -> usize {
        match self {
            DetectionHead::Separate(head) => head.num_classes,
            DetectionHead::Shared(head) => head.num_classes,
        }
    }
}

impl<B: KernelBackend> From<RetinaHead<B>> for DetectionHead<B> {
    fn from(head: RetinaHead<B>) -> Self {
        DetectionHead::Separate(head)
    }
}

impl<B: KernelBackend> From<SharedHead<B>> for DetectionHead<B> {
    fn from(head: SharedHead<B>) -> Self {
        DetectionHead::Shared(head)
    }
}
