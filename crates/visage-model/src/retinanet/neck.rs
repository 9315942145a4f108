//! [`Neck`]: the closed set of feature pyramids a RetinaNet-family detector can hold, behind
//! one module: RetinaNet's FPN (`[model.neck.fpn]`) or DF²S²'s feature fusion pyramid
//! (`[model.neck.ffp]`). The variant is not part of parameter paths (burn-store skips enum
//! variants), so an FPN's weights keep their `neck.lateral.*`, `neck.output.*`,
//! `neck.extra.*` keys.

use burn::prelude::*;
use visage_backbone::FeatureLevels;
use visage_kernels::KernelBackend;
use visage_neck::{ExtraSource, Ffp, FfpConfig, Fpn, FpnConfig, NeckError};

use super::spec::{ExtraSourceSpec, NeckSpec};

/// A feature pyramid: backbone levels C_min..C5 in, levels P_min..P_max out, every output
/// level with the same channel count.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Neck<B: Backend> {
    /// RetinaNet's FPN.
    Fpn(Fpn<B>),
    /// DF²S²'s feature fusion pyramid with 1×1 projections.
    Ffp(Ffp<B>),
}

/// The configuration of a [`Neck`], built from its spec: the neck crate's own config.
#[derive(Debug, Clone)]
pub(crate) enum NeckConfig {
    /// RetinaNet's FPN.
    Fpn(FpnConfig),
    /// DF²S²'s feature fusion pyramid.
    Ffp(FfpConfig),
}

impl NeckConfig {
    /// The config `spec` describes, `in_channels` being the channels of the backbone levels
    /// C_min..C5, finest first (levels above 5 are extra levels).
    pub(crate) fn new(spec: &NeckSpec, in_channels: Vec<usize>) -> Self {
        let extra_levels = spec.max_level().saturating_sub(5) as usize;
        match spec {
            NeckSpec::Fpn(fpn) => NeckConfig::Fpn(
                FpnConfig::new(in_channels, fpn.channels)
                    .with_extra_levels(extra_levels)
                    .with_extra_source(match fpn.extra_source {
                        ExtraSourceSpec::C5 => ExtraSource::C5,
                        ExtraSourceSpec::P5 => ExtraSource::P5,
                        ExtraSourceSpec::Lateral => ExtraSource::Lateral,
                    }),
            ),
            NeckSpec::Ffp(ffp) => NeckConfig::Ffp(
                FfpConfig::new(in_channels, ffp.channels)
                    .with_extra_levels(extra_levels)
                    .with_upsample_kernel(ffp.upsample_kernel),
            ),
        }
    }

    /// The neck crate's validation of the chosen pyramid.
    pub(crate) fn validate(&self) -> Result<(), NeckError> {
        match self {
            NeckConfig::Fpn(config) => config.validate(),
            NeckConfig::Ffp(config) => config.validate(),
        }
    }

    /// Builds the neck (freshly initialised).
    pub(crate) fn init<B: KernelBackend>(&self, device: &B::Device) -> Neck<B> {
        match self {
            NeckConfig::Fpn(config) => Neck::Fpn(config.init(device)),
            NeckConfig::Ffp(config) => Neck::Ffp(config.init(device)),
        }
    }
}

impl<B: KernelBackend> Neck<B> {
    /// Runs the pyramid.
    ///
    /// # Shapes
    /// - `features`: the backbone levels C_min..C5, `[batch, c_l, h_l, w_l]`, finest first
    /// - output: P_min..P_max, `[batch, channels, h_l, w_l]`, each extra level
    ///   `ceil(h / 2) × ceil(w / 2)` of the previous one
    pub fn forward(&self, features: FeatureLevels<B>) -> FeatureLevels<B> {
        match self {
            Neck::Fpn(fpn) => fpn.forward(features),
            Neck::Ffp(ffp) => ffp.forward(features),
        }
    }
}
