//! `[model]` of a RetinaNet-family detector (`architecture = "retinanet"`, the default):
//! backbone + neck (RetinaNet's FPN, or DF²S²'s feature fusion pyramid) + class / box head
//! shared across levels, optionally FAN's attention subnet or DF²S²'s segmentation branch.
//! Plain serde structs that reject unknown keys; [`RetinaNetSpec::validate`] builds and
//! validates the component configs (`components.rs`) and names the offending key.

use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::family::FamilySpec;
use crate::spec::{
    defaults, AnchorSpec, Architecture, AssignSpec, BackboneSpec, CoderSpec, HeadNormSpec, LossSpec,
};

/// `[model]` of a RetinaNet-family detector: backbone + neck (FPN, or DF²S²'s FFP) + class/box
/// head shared across levels (separate subnets, or one shared conv stack), optionally FAN's
/// attention subnet or DF²S²'s segmentation branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetinaNetSpec {
    /// `[model.backbone]`: which backbone, e.g. `[model.backbone.resnet]`.
    pub backbone: BackboneSpec,
    /// `[model.neck]`: the feature pyramid, e.g. `[model.neck.fpn]`.
    pub neck: NeckSpec,
    /// `[model.head]`: the class and box subnets shared across levels.
    pub head: HeadSpec,
    /// `[model.anchors]`: anchor sizes and ratios per pyramid level.
    pub anchors: AnchorSpec,
    /// `[model.assign]`: anchor-to-face matching thresholds.
    pub assign: AssignSpec,
    /// `[model.coder]`: box coding variances.
    #[serde(default)]
    pub coder: CoderSpec,
    /// `[model.loss]`: loss weights and parameters.
    #[serde(default)]
    pub loss: LossSpec,
    /// `[model.attention]`: FAN's attention subnet. Absent: a plain RetinaNet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<AttentionSpec>,
    /// `[model.segmentation]`: DF²S²'s segmentation branch on the shared head convs (needs
    /// `model.head.shared_convs = true`). Absent: no segmentation supervision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segmentation: Option<SegmentationSpec>,
}

/// `[model.neck.<kind>]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum NeckSpec {
    /// RetinaNet's FPN: P_min..P5 from lateral connections, P6/P7 by stride-2 convs.
    Fpn(FpnSpec),
    /// DF²S²'s feature fusion pyramid: F-blocks top-down, extra levels by max-pooling, every
    /// level projected to `channels` by a 1×1 conv.
    Ffp(FfpSpec),
}

/// `[model.neck.ffp]`: DF²S²'s feature fusion pyramid (§3.3). FFP_min..FFP5 keep the
/// resolutions and channels of C_min..C5 (each fused as `φ_i ← φ_i ⊙ Ψ(φ_{i+1}) + φ_i`, `Ψ` a
/// stride-2 transposed conv); FFP6, FFP7 are FFP5 max-pooled once and twice; then each level
/// is projected to `channels` by a 1×1 conv so one head serves every level (the project's
/// choice: the paper's levels differ in channels).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FfpSpec {
    /// Channels of every projected level (DF²S²'s head: 256).
    pub channels: usize,
    /// Finest level: 2 (stride 4, from C2, the paper) or 3 (stride 8, from C3).
    #[serde(default = "defaults::stride_4_min_level")]
    pub min_level: u32,
    /// Coarsest level, 5..=7; levels above 5 are FFP5 max-pooled (3×3, stride 2).
    #[serde(default = "defaults::max_level")]
    pub max_level: u32,
    /// Kernel of the transposed conv `Ψ`: 3 or 4 (the paper: "3×3 or 4×4").
    #[serde(default = "defaults::upsample_kernel")]
    pub upsample_kernel: usize,
}

impl NeckSpec {
    /// The neck's TOML table, for error messages: `model.neck.fpn` or `model.neck.ffp`.
    pub fn key(&self) -> &'static str {
        match self {
            NeckSpec::Fpn(_) => "model.neck.fpn",
            NeckSpec::Ffp(_) => "model.neck.ffp",
        }
    }

    /// Channels of every output level.
    pub fn channels(&self) -> usize {
        match self {
            NeckSpec::Fpn(fpn) => fpn.channels,
            NeckSpec::Ffp(ffp) => ffp.channels,
        }
    }

    /// Finest output level (2 or 3); the backbone levels C_min..C5 feed the neck.
    pub fn min_level(&self) -> u32 {
        match self {
            NeckSpec::Fpn(fpn) => fpn.min_level,
            NeckSpec::Ffp(ffp) => ffp.min_level,
        }
    }

    /// Coarsest output level (5..=7).
    pub fn max_level(&self) -> u32 {
        match self {
            NeckSpec::Fpn(fpn) => fpn.max_level,
            NeckSpec::Ffp(ffp) => ffp.max_level,
        }
    }
}

/// `[model.neck.fpn]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FpnSpec {
    /// Channels of every pyramid level.
    pub channels: usize,
    /// Finest level: 2 (stride 4, from C2) or 3 (stride 8, from C3).
    #[serde(default = "defaults::fpn_min_level")]
    pub min_level: u32,
    /// Coarsest level, 5..=7; levels above 5 are made by stride-2 convs.
    #[serde(default = "defaults::max_level")]
    pub max_level: u32,
    /// Input of P6: `"c5"` (RetinaNet paper), `"p5"`, or `"lateral"` (the 1×1 lateral of C5,
    /// SRN).
    #[serde(default)]
    pub extra_source: ExtraSourceSpec,
}

/// Where the extra pyramid levels start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtraSourceSpec {
    /// P6 = conv(C5).
    #[default]
    C5,
    /// P6 = conv(P5).
    P5,
    /// P6 = conv(lateral 1×1 of C5), SRN's public code.
    Lateral,
}

/// `[model.head]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadSpec {
    /// Channels of the subnet convs.
    pub channels: usize,
    /// Number of 3×3 conv + ReLU layers before each predictor (RetinaNet: 4).
    #[serde(default = "defaults::subnet_convs")]
    pub convs: usize,
    /// Normalisation inside the subnets: `"none"` or `{ group = G }` (GroupNorm with G groups).
    #[serde(default)]
    pub norm: HeadNormSpec,
    /// Initial face probability of every anchor (RetinaNet: 0.01).
    #[serde(default = "defaults::prior_prob")]
    pub prior_prob: f32,
    /// One stack of `convs` convs shared by the class and box predictors (DF²S² §3.1: only
    /// the final predictors differ) instead of one stack each (RetinaNet). Required by
    /// `[model.segmentation]`, whose branch reuses the same stack.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared_convs: bool,
}

/// `[model.segmentation]`: DF²S²'s segmentation branch (§3.2): a 3×3 conv to one channel on
/// the shared head convs of every level (so it needs `model.head.shared_convs = true`),
/// supervised per level by a mask filled with the boxes of the faces whose scale matches the
/// level's anchors, with a pixel-wise sigmoid cross-entropy weighted by `loss_weight` (λ2).
/// Training supervision only: detections never read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentationSpec {
    /// λ2, the weight of the segmentation loss in the total (DF²S² §3.4, studied in its
    /// table 3).
    #[serde(default = "defaults::mask_loss_weight")]
    pub loss_weight: f32,
    /// Which faces fill which level's mask: the rule of `model.attention.levels`.
    #[serde(default)]
    pub levels: AttentionLevelsSpec,
}

/// `[model.attention]`: FAN's attention subnet (Wang et al. 2017, §3.2). Per level, with
/// weights shared across levels: `convs × (3×3 conv + ReLU)` then a 3×3 conv to one channel;
/// the level's features are multiplied by `exp(σ(logit))` before the class and box subnets,
/// and the logits are supervised by a pixel-wise sigmoid cross-entropy against a mask of the
/// level's faces (see [`crate::AttentionAssigner`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionSpec {
    /// Channels of the hidden convs (FAN: 256).
    pub channels: usize,
    /// Number of 3×3 conv + ReLU layers before the one-channel predictor (FAN: 4).
    #[serde(default = "defaults::subnet_convs")]
    pub convs: usize,
    /// Normalisation of the hidden convs: `"none"` (FAN) or `{ group = G }`.
    #[serde(default)]
    pub norm: HeadNormSpec,
    /// Weight of the attention loss in the total (FAN's public code: 1).
    #[serde(default = "defaults::mask_loss_weight")]
    pub loss_weight: f32,
    /// Which faces supervise which level's attention mask.
    #[serde(default)]
    pub levels: AttentionLevelsSpec,
}

/// The rule assigning faces to the pyramid levels whose attention masks they fill:
/// `{ anchor_area = { min_area_factor = 0.5, max_area_factor = 2.0 } }` (the default) or
/// `"matched"`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AttentionLevelsSpec {
    /// A face belongs to every level where its box area `w·h` lies in
    /// `[min_area_factor · a_min², max_area_factor · a_max²]`, `a_min` and `a_max` being the
    /// level's smallest and largest anchor sizes (`base_factor · stride · scale`). FAN's
    /// public code uses `[0.5 · (2^(k+5))², 2 · (1.58 · 2^(k+5))²]` for P(k+3) with anchors
    /// `2^(k+5) · {1, 2^(1/3), 2^(2/3)}`, i.e. factors 0.5 and 2.
    AnchorArea {
        /// Lower bound, in units of the smallest anchor's area.
        #[serde(default = "defaults::min_area_factor")]
        min_area_factor: f32,
        /// Upper bound, in units of the largest anchor's area.
        #[serde(default = "defaults::max_area_factor")]
        max_area_factor: f32,
    },
    /// A face belongs to the levels holding at least one of its positive anchors (the
    /// paper's wording: "associated to the ground-truth which the anchors at the current
    /// layer match").
    Matched,
}

impl Default for AttentionLevelsSpec {
    fn default() -> Self {
        Self::AnchorArea {
            min_area_factor: defaults::min_area_factor(),
            max_area_factor: defaults::max_area_factor(),
        }
    }
}

impl RetinaNetSpec {
    /// Strides of the pyramid levels this spec produces, finest first (e.g. 8, 16, .., 128).
    pub fn level_strides(&self) -> Vec<u32> {
        (self.neck.min_level()..=self.neck.max_level())
            .map(|l| 1u32 << l)
            .collect()
    }

    /// Anchors per feature-map location: `scales × ratios`.
    pub fn anchors_per_location(&self) -> usize {
        self.anchors.per_location()
    }

    /// Checks every rule that serde cannot: value ranges and cross-field consistency, by
    /// building the component configs. The error names the TOML key (e.g.
    /// `model.neck.fpn.max_level`).
    pub fn validate(&self) -> Result<(), ModelError> {
        self.components().map(|_| ())
    }
}

impl FamilySpec for RetinaNetSpec {
    fn architecture(&self) -> Architecture {
        Architecture::RetinaNet
    }

    fn validate(&self) -> Result<(), ModelError> {
        RetinaNetSpec::validate(self)
    }

    fn backbone(&self) -> &BackboneSpec {
        &self.backbone
    }
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
