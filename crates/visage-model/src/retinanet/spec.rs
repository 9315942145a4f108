//! The user-facing description of a detector, as written in a config's `[model]` and `[test]`
//! tables. These are plain serde structs that reject unknown keys; [`DetectorSpec::validate`]
//! checks the cross-field rules and names the offending key. Burn configs are built from them
//! in [`crate::detector`], never parsed from user files directly.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use visage_backbone::{BackboneConfig, MobileNetV1Config, ResNetConfig, ResNetDepth};

use crate::error::ModelError;

/// `[model]`: a RetinaNet-family detector: backbone + neck (FPN, or DF²S²'s FFP) + class/box
/// head shared across levels (separate subnets, or one shared conv stack), optionally FAN's
/// attention subnet or DF²S²'s segmentation branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorSpec {
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

/// `[model.backbone.<kind>]`: a closed set of backbones; an unknown kind fails at parse time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum BackboneSpec {
    /// torchvision-layout ResNet returning C2..C5 (strides 4..32).
    Resnet(ResNetSpec),
    /// Pytorch_Retinaface's MobileNetV1 returning strides 8, 16, 32.
    Mobilenet(MobileNetSpec),
}

/// `[model.backbone.resnet]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResNetSpec {
    /// 18, 34, 50, 101 or 152.
    pub depth: u32,
    /// Scales every channel count (1.0 = torchvision's ResNet; 0.25 = a tiny CPU model).
    #[serde(default = "one")]
    pub width_multiplier: f32,
    /// BatchNorm statistics and affine parameters fixed (as when fine-tuning from ImageNet).
    #[serde(default)]
    pub frozen_bn: bool,
    /// Freeze the stem (`conv1`, `bn1`): no gradients, batch norm frozen.
    #[serde(default)]
    pub freeze_stem: bool,
    /// Freeze `layer1..layerN` (0..=4): no gradients, batch norms frozen.
    #[serde(default)]
    pub frozen_stages: usize,
    /// Initial weights for a new run: a torchvision `.pth` state dict (e.g.
    /// `resnet50-0676ba61.pth`; `fc.*` ignored, a `module.` prefix removed) or a safetensors
    /// file from `visage import`. Relative paths are relative to the working directory.
    /// Not read when resuming or loading a checkpoint (which holds all weights).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<PathBuf>,
}

/// `[model.backbone.mobilenet]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MobileNetSpec {
    /// Scales MobileNetV1-1.0's channels; Pytorch_Retinaface's network is 0.25.
    #[serde(default = "quarter")]
    pub width_multiplier: f32,
    /// BatchNorm statistics and affine parameters fixed.
    #[serde(default)]
    pub frozen_bn: bool,
    /// Initial weights for a new run: Pytorch_Retinaface's `mobilenetV1X0.25_pretrain.tar`
    /// (its `state_dict` and `module.` prefix are unwrapped) or a safetensors file from
    /// `visage import`. Relative paths are relative to the working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<PathBuf>,
}

impl BackboneSpec {
    /// The initial-weights file, if any.
    pub fn weights(&self) -> Option<&Path> {
        match self {
            BackboneSpec::Resnet(r) => r.weights.as_deref(),
            BackboneSpec::Mobilenet(m) => m.weights.as_deref(),
        }
    }

    /// Strides of the levels the backbone returns, finest first.
    pub fn strides(&self) -> Vec<usize> {
        match self {
            BackboneSpec::Resnet(_) => visage_backbone::resnet::RESNET_STRIDES.to_vec(),
            BackboneSpec::Mobilenet(_) => visage_backbone::mobilenet::MOBILENET_STRIDES.to_vec(),
        }
    }
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
    #[serde(default = "two_u32")]
    pub min_level: u32,
    /// Coarsest level, 5..=7; levels above 5 are FFP5 max-pooled (3×3, stride 2).
    #[serde(default = "seven")]
    pub max_level: u32,
    /// Kernel of the transposed conv `Ψ`: 3 or 4 (the paper: "3×3 or 4×4").
    #[serde(default = "four")]
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
    #[serde(default = "three")]
    pub min_level: u32,
    /// Coarsest level, 5..=7; levels above 5 are made by stride-2 convs.
    #[serde(default = "seven")]
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
    #[serde(default = "four")]
    pub convs: usize,
    /// Normalisation inside the subnets: `"none"` or `{ group = G }` (GroupNorm with G groups).
    #[serde(default)]
    pub norm: HeadNormSpec,
    /// Initial face probability of every anchor (RetinaNet: 0.01).
    #[serde(default = "prior_prob")]
    pub prior_prob: f32,
    /// One stack of `convs` convs shared by the class and box predictors (DF²S² §3.1: only
    /// the final predictors differ) instead of one stack each (RetinaNet). Required by
    /// `[model.segmentation]`, whose branch reuses the same stack.
    #[serde(default, skip_serializing_if = "is_false")]
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
    #[serde(default = "one")]
    pub loss_weight: f32,
    /// Which faces fill which level's mask: the rule of `model.attention.levels`.
    #[serde(default)]
    pub levels: AttentionLevelsSpec,
}

/// Normalisation in the head subnets.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadNormSpec {
    /// Plain conv + ReLU (RetinaNet).
    #[default]
    None,
    /// GroupNorm with this many groups.
    Group(usize),
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
    #[serde(default = "four")]
    pub convs: usize,
    /// Normalisation of the hidden convs: `"none"` (FAN) or `{ group = G }`.
    #[serde(default)]
    pub norm: HeadNormSpec,
    /// Weight of the attention loss in the total (FAN's public code: 1).
    #[serde(default = "one")]
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
        #[serde(default = "half")]
        min_area_factor: f32,
        /// Upper bound, in units of the largest anchor's area.
        #[serde(default = "two")]
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
            min_area_factor: half(),
            max_area_factor: two(),
        }
    }
}

/// `[model.anchors]`: on the level of stride s the anchor sizes are `base_factor · s · scale`
/// for each scale, at each ratio (height / width). Strides come from the neck's levels, so
/// they are never written twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorSpec {
    /// Anchor size at scale 1 in units of the level's stride (FAN: 2 → 16 px on P3).
    pub base_factor: f32,
    /// Scale multipliers per level (FAN: 2^(0/3), 2^(1/3), 2^(2/3)).
    pub scales: Vec<f32>,
    /// Aspect ratios, height / width (FAN: 1 and 1.5).
    pub ratios: Vec<f32>,
}

/// `[model.assign]`: max-IoU assignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignSpec {
    /// IoU at or above which an anchor is positive.
    pub positive_iou: f32,
    /// IoU below which an anchor is negative; between the two it is ignored.
    pub negative_iou: f32,
    /// Make each face's best anchor positive (so small faces are never unmatched).
    #[serde(default = "yes")]
    pub force_best: bool,
    /// The forced best anchor must still overlap this much.
    #[serde(default = "force_best_min_iou")]
    pub force_best_min_iou: f32,
}

/// `[model.coder]`: SSD-style centre/size coding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoderSpec {
    /// Centre and size variances (SSD / RetinaFace: [0.1, 0.2]).
    pub variances: [f32; 2],
}

impl Default for CoderSpec {
    fn default() -> Self {
        Self {
            variances: [0.1, 0.2],
        }
    }
}

/// `[model.loss]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossSpec {
    /// Focal loss α (weight of positives).
    #[serde(default = "focal_alpha")]
    pub focal_alpha: f32,
    /// Focal loss γ (focusing).
    #[serde(default = "focal_gamma")]
    pub focal_gamma: f32,
    /// Box regression loss.
    #[serde(default)]
    pub box_loss: BoxLossSpec,
    /// Weight of the box loss in the total.
    #[serde(default = "one")]
    pub box_weight: f32,
}

impl Default for LossSpec {
    fn default() -> Self {
        Self {
            focal_alpha: focal_alpha(),
            focal_gamma: focal_gamma(),
            box_loss: BoxLossSpec::default(),
            box_weight: 1.0,
        }
    }
}

/// The box regression loss: `{ smooth_l1 = { beta = 0.11 } }`, `"neg_log_iou"` or `"one_minus_iou"`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoxLossSpec {
    /// Smooth-L1 on the encoded deltas, with this β (Detectron: 1/9).
    SmoothL1 {
        /// Transition point between the quadratic and linear parts.
        beta: f32,
    },
    /// −ln IoU of the decoded box (UnitBox, AInnoFace).
    NegLogIou,
    /// 1 − IoU of the decoded box.
    OneMinusIou,
}

impl Default for BoxLossSpec {
    fn default() -> Self {
        Self::SmoothL1 { beta: 1.0 / 9.0 }
    }
}

/// `[test]`: post-processing at inference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSpec {
    /// Detections scoring below this are dropped before NMS.
    #[serde(default = "score_threshold")]
    pub score_threshold: f32,
    /// At most this many candidates per image enter NMS.
    #[serde(default = "pre_nms_top_k")]
    pub pre_nms_top_k: usize,
    /// NMS IoU threshold.
    #[serde(default = "nms_threshold")]
    pub nms_threshold: f32,
    /// At most this many detections per image are kept.
    #[serde(default = "max_detections")]
    pub max_detections: usize,
    /// If set, images whose longer side exceeds this are shrunk to it before detection
    /// (after `short_side`).
    #[serde(default)]
    pub max_size: Option<u32>,
    /// If set, every image is resized (up or down) so that its shorter side is this many
    /// pixels, before `max_size` caps the longer side (DF²S² tests at short side 800).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_side: Option<u32>,
    /// `[test.tta]`: test-time augmentation; absent: one pass at the base scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tta: Option<TtaSpec>,
}

/// `[test.tta]`: every image is also run at other scales and, with `flip`, mirrored; the
/// candidates of all passes (each after the score threshold and `pre_nms_top_k`) are mapped
/// back to the image and merged by ONE NMS, then capped at `max_detections`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TtaSpec {
    /// Multipliers of the base test scale (`short_side` / `max_size`), e.g. `[0.5, 1.0, 1.5]`.
    pub scales: Vec<f32>,
    /// Also run each scale on the horizontally mirrored image.
    #[serde(default)]
    pub flip: bool,
}

impl Default for TestSpec {
    fn default() -> Self {
        Self {
            score_threshold: score_threshold(),
            pre_nms_top_k: pre_nms_top_k(),
            nms_threshold: nms_threshold(),
            max_detections: max_detections(),
            max_size: None,
            short_side: None,
            tta: None,
        }
    }
}

fn quarter() -> f32 {
    0.25
}
fn half() -> f32 {
    0.5
}
fn two() -> f32 {
    2.0
}
fn two_u32() -> u32 {
    2
}
fn is_false(value: &bool) -> bool {
    !*value
}

fn one() -> f32 {
    1.0
}
fn three() -> u32 {
    3
}
fn four() -> usize {
    4
}
fn seven() -> u32 {
    7
}
fn yes() -> bool {
    true
}
fn prior_prob() -> f32 {
    0.01
}
fn force_best_min_iou() -> f32 {
    0.2
}
fn focal_alpha() -> f32 {
    0.25
}
fn focal_gamma() -> f32 {
    2.0
}
fn score_threshold() -> f32 {
    0.05
}
fn pre_nms_top_k() -> usize {
    5000
}
fn nms_threshold() -> f32 {
    0.4
}
fn max_detections() -> usize {
    750
}

pub(crate) fn invalid(key: &str, message: impl Into<String>) -> ModelError {
    ModelError::InvalidConfig {
        key: key.to_string(),
        message: message.into(),
    }
}

pub(crate) fn check_positive(key: &str, value: f32) -> Result<(), ModelError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("must be a finite number > 0, got {value}"),
        ))
    }
}

pub(crate) fn check_unit(key: &str, value: f32) -> Result<(), ModelError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(invalid(key, format!("must be in [0, 1], got {value}")))
    }
}

pub(crate) fn check_non_negative(key: &str, value: f32) -> Result<(), ModelError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("must be a finite number >= 0, got {value}"),
        ))
    }
}

/// The Burn config of a backbone spec; errors name the `model.backbone.*` key.
pub(crate) fn backbone_config(spec: &BackboneSpec) -> Result<BackboneConfig, ModelError> {
    Ok(match spec {
        BackboneSpec::Resnet(r) => {
            let depth = match r.depth {
                18 => ResNetDepth::D18,
                34 => ResNetDepth::D34,
                50 => ResNetDepth::D50,
                101 => ResNetDepth::D101,
                152 => ResNetDepth::D152,
                other => {
                    return Err(invalid(
                        "model.backbone.resnet.depth",
                        format!("must be 18, 34, 50, 101 or 152, got {other}"),
                    ))
                }
            };
            check_positive("model.backbone.resnet.width_multiplier", r.width_multiplier)?;
            if r.frozen_stages > 4 {
                return Err(invalid(
                    "model.backbone.resnet.frozen_stages",
                    format!("must be 0..=4, got {}", r.frozen_stages),
                ));
            }
            BackboneConfig::ResNet(
                ResNetConfig::new(depth)
                    .with_width_multiplier(r.width_multiplier)
                    .with_frozen_bn(r.frozen_bn)
                    .with_freeze_stem(r.freeze_stem)
                    .with_frozen_stages(r.frozen_stages),
            )
        }
        BackboneSpec::Mobilenet(m) => {
            check_positive(
                "model.backbone.mobilenet.width_multiplier",
                m.width_multiplier,
            )?;
            BackboneConfig::MobileNet(
                MobileNetV1Config::new()
                    .with_width_multiplier(m.width_multiplier)
                    .with_frozen_bn(m.frozen_bn),
            )
        }
    })
}

impl DetectorSpec {
    /// Checks every rule that serde cannot: value ranges and cross-field consistency.
    /// The error names the TOML key (e.g. `model.neck.fpn.max_level`).
    pub fn validate(&self) -> Result<(), ModelError> {
        backbone_config(&self.backbone)?;
        self.validate_neck()?;
        self.head.validate()?;
        self.anchors.validate()?;
        self.assign.validate("model.assign")?;
        self.coder.validate()?;
        self.loss.validate()?;
        if let Some(attention) = &self.attention {
            attention.validate()?;
        }
        if let Some(segmentation) = &self.segmentation {
            if !self.head.shared_convs {
                return Err(invalid(
                    "model.segmentation",
                    "needs model.head.shared_convs = true: the segmentation branch shares the \
                     head's convs (DF²S² §3.2)",
                ));
            }
            segmentation.validate()?;
        }
        Ok(())
    }

    /// The neck's rules; errors name `model.neck.fpn.*` or `model.neck.ffp.*`.
    fn validate_neck(&self) -> Result<(), ModelError> {
        let key = self.neck.key();
        if self.neck.channels() == 0 {
            return Err(invalid(&format!("{key}.channels"), "must be > 0"));
        }
        let min_level = self.neck.min_level();
        if !(2..=3).contains(&min_level) {
            return Err(invalid(
                &format!("{key}.min_level"),
                format!("must be 2 or 3, got {min_level}"),
            ));
        }
        let finest = 1usize << min_level;
        if !self.backbone.strides().contains(&finest) {
            return Err(invalid(
                &format!("{key}.min_level"),
                format!(
                    "the backbone has no stride-{finest} level (its strides: {:?})",
                    self.backbone.strides()
                ),
            ));
        }
        let max_level = self.neck.max_level();
        if !(5..=7).contains(&max_level) {
            return Err(invalid(
                &format!("{key}.max_level"),
                format!("must be 5, 6 or 7, got {max_level}"),
            ));
        }
        if let NeckSpec::Ffp(ffp) = &self.neck {
            if !matches!(ffp.upsample_kernel, 3 | 4) {
                return Err(invalid(
                    "model.neck.ffp.upsample_kernel",
                    format!("must be 3 or 4, got {}", ffp.upsample_kernel),
                ));
            }
        }
        Ok(())
    }

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
}

impl HeadSpec {
    /// Checks value ranges; errors name the `model.head.*` key.
    pub(crate) fn validate(&self) -> Result<(), ModelError> {
        validate_head("model.head", self.channels, self.norm, self.prior_prob)
    }
}

/// The rules of a class / box head: channels > 0, groups dividing them, prior in (0, 1);
/// errors name `<key>.channels`, `<key>.norm.group`, `<key>.prior_prob`.
pub(crate) fn validate_head(
    key: &str,
    channels: usize,
    norm: HeadNormSpec,
    prior_prob: f32,
) -> Result<(), ModelError> {
    if channels == 0 {
        return Err(invalid(&format!("{key}.channels"), "must be > 0"));
    }
    if let HeadNormSpec::Group(groups) = norm {
        if groups == 0 || !channels.is_multiple_of(groups) {
            return Err(invalid(
                &format!("{key}.norm.group"),
                format!("must divide {key}.channels ({channels}), got {groups}"),
            ));
        }
    }
    if !(prior_prob > 0.0 && prior_prob < 1.0) {
        return Err(invalid(&format!("{key}.prior_prob"), "must be in (0, 1)"));
    }
    Ok(())
}

impl AnchorSpec {
    /// Checks value ranges; errors name the `model.anchors.*` key.
    pub(crate) fn validate(&self) -> Result<(), ModelError> {
        check_positive("model.anchors.base_factor", self.base_factor)?;
        if self.scales.is_empty() {
            return Err(invalid("model.anchors.scales", "must not be empty"));
        }
        if self.ratios.is_empty() {
            return Err(invalid("model.anchors.ratios", "must not be empty"));
        }
        for &s in &self.scales {
            check_positive("model.anchors.scales", s)?;
        }
        for &r in &self.ratios {
            check_positive("model.anchors.ratios", r)?;
        }
        Ok(())
    }

    /// Anchors per feature-map location: `scales × ratios`.
    pub fn per_location(&self) -> usize {
        self.scales.len() * self.ratios.len()
    }
}

impl AssignSpec {
    /// Checks value ranges; errors name `<key>.positive_iou` etc. (`key` is the table,
    /// e.g. `model.assign`).
    pub(crate) fn validate(&self, key: &str) -> Result<(), ModelError> {
        check_unit(&format!("{key}.positive_iou"), self.positive_iou)?;
        check_unit(&format!("{key}.negative_iou"), self.negative_iou)?;
        check_unit(
            &format!("{key}.force_best_min_iou"),
            self.force_best_min_iou,
        )?;
        if self.negative_iou > self.positive_iou {
            return Err(invalid(
                &format!("{key}.negative_iou"),
                format!(
                    "must not exceed {key}.positive_iou ({}), got {}",
                    self.positive_iou, self.negative_iou
                ),
            ));
        }
        Ok(())
    }

    /// The assigner these thresholds describe.
    pub fn assigner(&self) -> visage_anchors::MaxIouAssigner {
        visage_anchors::MaxIouAssigner {
            positive_iou: self.positive_iou,
            negative_iou: self.negative_iou,
            force_best: self.force_best,
            force_best_min_iou: self.force_best_min_iou,
        }
    }
}

impl CoderSpec {
    /// Checks value ranges; errors name `model.coder.variances`.
    pub(crate) fn validate(&self) -> Result<(), ModelError> {
        check_positive("model.coder.variances", self.variances[0])?;
        check_positive("model.coder.variances", self.variances[1])
    }
}

impl LossSpec {
    /// Checks value ranges; errors name the `model.loss.*` key.
    pub(crate) fn validate(&self) -> Result<(), ModelError> {
        check_unit("model.loss.focal_alpha", self.focal_alpha)?;
        if !(self.focal_gamma >= 0.0 && self.focal_gamma.is_finite()) {
            return Err(invalid("model.loss.focal_gamma", "must be >= 0"));
        }
        if let BoxLossSpec::SmoothL1 { beta } = self.box_loss {
            if !(beta >= 0.0 && beta.is_finite()) {
                return Err(invalid(
                    "model.loss.box_loss.smooth_l1.beta",
                    "must be >= 0",
                ));
            }
        }
        if !(self.box_weight >= 0.0 && self.box_weight.is_finite()) {
            return Err(invalid("model.loss.box_weight", "must be >= 0"));
        }
        Ok(())
    }
}

impl AttentionSpec {
    /// Checks value ranges; the error names the `model.attention.*` key.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.channels == 0 {
            return Err(invalid("model.attention.channels", "must be > 0"));
        }
        if let HeadNormSpec::Group(groups) = self.norm {
            if groups == 0 || !self.channels.is_multiple_of(groups) {
                return Err(invalid(
                    "model.attention.norm.group",
                    format!(
                        "must divide model.attention.channels ({}), got {groups}",
                        self.channels
                    ),
                ));
            }
        }
        if !(self.loss_weight >= 0.0 && self.loss_weight.is_finite()) {
            return Err(invalid(
                "model.attention.loss_weight",
                format!("must be a finite number >= 0, got {}", self.loss_weight),
            ));
        }
        if let AttentionLevelsSpec::AnchorArea {
            min_area_factor,
            max_area_factor,
        } = self.levels
        {
            check_positive(
                "model.attention.levels.anchor_area.min_area_factor",
                min_area_factor,
            )?;
            check_positive(
                "model.attention.levels.anchor_area.max_area_factor",
                max_area_factor,
            )?;
        }
        Ok(())
    }
}

impl SegmentationSpec {
    /// Checks value ranges; the error names the `model.segmentation.*` key.
    pub fn validate(&self) -> Result<(), ModelError> {
        if !(self.loss_weight >= 0.0 && self.loss_weight.is_finite()) {
            return Err(invalid(
                "model.segmentation.loss_weight",
                format!("must be a finite number >= 0, got {}", self.loss_weight),
            ));
        }
        if let AttentionLevelsSpec::AnchorArea {
            min_area_factor,
            max_area_factor,
        } = self.levels
        {
            check_positive(
                "model.segmentation.levels.anchor_area.min_area_factor",
                min_area_factor,
            )?;
            check_positive(
                "model.segmentation.levels.anchor_area.max_area_factor",
                max_area_factor,
            )?;
        }
        Ok(())
    }
}

impl TestSpec {
    /// Checks value ranges; the error names the `test.*` key.
    pub fn validate(&self) -> Result<(), ModelError> {
        check_unit("test.score_threshold", self.score_threshold)?;
        check_unit("test.nms_threshold", self.nms_threshold)?;
        if self.pre_nms_top_k == 0 {
            return Err(invalid("test.pre_nms_top_k", "must be > 0"));
        }
        if self.max_detections == 0 {
            return Err(invalid("test.max_detections", "must be > 0"));
        }
        if self.max_size == Some(0) {
            return Err(invalid("test.max_size", "must be > 0 when set"));
        }
        if self.short_side == Some(0) {
            return Err(invalid("test.short_side", "must be > 0 when set"));
        }
        if let Some(tta) = &self.tta {
            if tta.scales.is_empty() {
                return Err(invalid("test.tta.scales", "must not be empty"));
            }
            for &scale in &tta.scales {
                check_positive("test.tta.scales", scale)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const TINY: &str = r#"
        [backbone.resnet]
        depth = 18
        width_multiplier = 0.125

        [neck.fpn]
        channels = 16
        min_level = 3
        max_level = 5

        [head]
        channels = 16
        convs = 1
        norm = { group = 4 }

        [anchors]
        base_factor = 2.0
        scales = [1.0, 1.5]
        ratios = [1.0]

        [assign]
        positive_iou = 0.5
        negative_iou = 0.4
    "#;

    #[test]
    fn parses_a_tiny_spec_with_defaults() {
        let spec: DetectorSpec = toml::from_str(TINY).unwrap();
        spec.validate().unwrap();
        assert_eq!(spec.level_strides(), vec![8, 16, 32]);
        assert_eq!(spec.anchors_per_location(), 2);
        assert_eq!(spec.head.norm, HeadNormSpec::Group(4));
        assert_eq!(spec.coder.variances, [0.1, 0.2]);
        assert_eq!(
            spec.loss.box_loss,
            BoxLossSpec::SmoothL1 { beta: 1.0 / 9.0 }
        );
        assert!(spec.assign.force_best);
    }

    #[test]
    fn unknown_keys_and_variants_are_rejected() {
        let typo = TINY.replace(
            "channels = 16\n        convs",
            "chanels = 16\n        convs",
        );
        let err = toml::from_str::<DetectorSpec>(&typo)
            .unwrap_err()
            .to_string();
        assert!(err.contains("chanels"), "{err}");
        let variant = TINY.replace("[neck.fpn]", "[neck.bifpn]");
        let err = toml::from_str::<DetectorSpec>(&variant)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bifpn"), "{err}");
    }

    #[test]
    fn validation_names_the_key() {
        let mut spec: DetectorSpec = toml::from_str(TINY).unwrap();
        spec.assign.negative_iou = 0.6;
        let err = spec.validate().unwrap_err().to_string();
        assert!(err.contains("model.assign.negative_iou"), "{err}");
        let mut spec: DetectorSpec = toml::from_str(TINY).unwrap();
        spec.head.norm = HeadNormSpec::Group(3);
        let err = spec.validate().unwrap_err().to_string();
        assert!(err.contains("model.head.norm.group"), "{err}");
        let mut spec: DetectorSpec = toml::from_str(TINY).unwrap();
        spec.backbone = BackboneSpec::Resnet(ResNetSpec {
            depth: 20,
            width_multiplier: 1.0,
            frozen_bn: false,
            freeze_stem: false,
            frozen_stages: 0,
            weights: None,
        });
        assert!(spec
            .validate()
            .unwrap_err()
            .to_string()
            .contains("model.backbone.resnet.depth"));
    }

    #[test]
    fn attention_is_optional_and_parses_with_defaults() {
        let spec: DetectorSpec = toml::from_str(TINY).unwrap();
        assert_eq!(spec.attention, None);
        // A RetinaNet spec serialises without an attention table.
        assert!(!toml::to_string(&spec).unwrap().contains("attention"));
        let spec: DetectorSpec =
            toml::from_str(&format!("{TINY}\n[attention]\nchannels = 16\n")).unwrap();
        spec.validate().unwrap();
        let attention = spec.attention.clone().unwrap();
        assert_eq!(attention.convs, 4);
        assert_eq!(attention.norm, HeadNormSpec::None);
        assert_eq!(attention.loss_weight, 1.0);
        assert_eq!(
            attention.levels,
            AttentionLevelsSpec::AnchorArea {
                min_area_factor: 0.5,
                max_area_factor: 2.0
            }
        );
        let written = toml::to_string(&spec).unwrap();
        assert_eq!(toml::from_str::<DetectorSpec>(&written).unwrap(), spec);
        let matched: DetectorSpec = toml::from_str(&format!(
            "{TINY}\n[attention]\nchannels = 16\nlevels = \"matched\"\n"
        ))
        .unwrap();
        assert_eq!(
            matched.attention.unwrap().levels,
            AttentionLevelsSpec::Matched
        );
        let area: DetectorSpec = toml::from_str(&format!(
            "{TINY}\n[attention]\nchannels = 16\nlevels = {{ anchor_area = {{ max_area_factor = 3.0 }} }}\n"
        ))
        .unwrap();
        assert_eq!(
            area.attention.unwrap().levels,
            AttentionLevelsSpec::AnchorArea {
                min_area_factor: 0.5,
                max_area_factor: 3.0
            }
        );
    }

    #[test]
    fn bad_attention_values_name_the_key() {
        let with = |extra: &str| -> Result<DetectorSpec, String> {
            toml::from_str::<DetectorSpec>(&format!("{TINY}\n[attention]\n{extra}\n"))
                .map_err(|e| e.to_string())
        };
        let err = with("channels = 16\nchanels = 3").unwrap_err();
        assert!(err.contains("chanels"), "{err}");
        let err = with("channels = 16\nlevels = \"nearest\"").unwrap_err();
        assert!(err.contains("nearest"), "{err}");
        for (extra, key) in [
            ("channels = 0", "model.attention.channels"),
            (
                "channels = 16\nnorm = { group = 5 }",
                "model.attention.norm.group",
            ),
            (
                "channels = 16\nloss_weight = -1.0",
                "model.attention.loss_weight",
            ),
            (
                "channels = 16\nlevels = { anchor_area = { min_area_factor = 0.0 } }",
                "model.attention.levels.anchor_area.min_area_factor",
            ),
            (
                "channels = 16\nlevels = { anchor_area = { max_area_factor = -2.0 } }",
                "model.attention.levels.anchor_area.max_area_factor",
            ),
        ] {
            let err = with(extra).unwrap().validate().unwrap_err().to_string();
            assert!(err.contains(key), "{extra}: {err}");
        }
    }

    /// TINY with DF²S²'s feature fusion pyramid, shared head convs and segmentation.
    fn df2s2(ffp: &str, head_extra: &str, segmentation: &str) -> String {
        TINY.replace(
            "[neck.fpn]\n        channels = 16\n        min_level = 3\n        max_level = 5",
            &format!("[neck.ffp]\n{ffp}"),
        )
        .replace("[head]", &format!("[head]\n{head_extra}"))
            + &format!("\n[segmentation]\n{segmentation}\n")
    }

    #[test]
    fn ffp_neck_shared_head_and_segmentation_parse_with_defaults() {
        let spec: DetectorSpec =
            toml::from_str(&df2s2("channels = 16", "shared_convs = true", "")).unwrap();
        spec.validate().unwrap();
        let NeckSpec::Ffp(ffp) = &spec.neck else {
            panic!("{:?}", spec.neck)
        };
        assert_eq!(
            (ffp.min_level, ffp.max_level, ffp.upsample_kernel),
            (2, 7, 4)
        );
        assert_eq!(spec.level_strides(), vec![4, 8, 16, 32, 64, 128]);
        assert_eq!(spec.neck.key(), "model.neck.ffp");
        assert!(spec.head.shared_convs);
        let segmentation = spec.segmentation.clone().unwrap();
        assert_eq!(segmentation.loss_weight, 1.0);
        assert_eq!(segmentation.levels, AttentionLevelsSpec::default());
        let written = toml::to_string(&spec).unwrap();
        assert_eq!(toml::from_str::<DetectorSpec>(&written).unwrap(), spec);
        // A RetinaNet spec serialises as before: no shared_convs, no segmentation.
        let plain = toml::to_string(&toml::from_str::<DetectorSpec>(TINY).unwrap()).unwrap();
        assert!(!plain.contains("shared_convs") && !plain.contains("segmentation"));
    }

    #[test]
    fn df2s2_errors_name_the_key() {
        let err = toml::from_str::<DetectorSpec>(&df2s2("channels = 16\nkernel = 4", "", ""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("kernel"), "{err}");
        for (ffp, head, segmentation, key) in [
            ("channels = 16", "", "", "model.segmentation"),
            (
                "channels = 16",
                "shared_convs = false",
                "",
                "model.head.shared_convs",
            ),
            (
                "channels = 16\nupsample_kernel = 2",
                "shared_convs = true",
                "",
                "model.neck.ffp.upsample_kernel",
            ),
            (
                "channels = 16\nmax_level = 8",
                "shared_convs = true",
                "",
                "model.neck.ffp.max_level",
            ),
            (
                "channels = 16\nmin_level = 4",
                "shared_convs = true",
                "",
                "model.neck.ffp.min_level",
            ),
            (
                "channels = 0",
                "shared_convs = true",
                "",
                "model.neck.ffp.channels",
            ),
            (
                "channels = 16",
                "shared_convs = true",
                "loss_weight = -1.0",
                "model.segmentation.loss_weight",
            ),
            (
                "channels = 16",
                "shared_convs = true",
                "levels = { anchor_area = { min_area_factor = 0.0 } }",
                "model.segmentation.levels.anchor_area.min_area_factor",
            ),
        ] {
            let spec: DetectorSpec = toml::from_str(&df2s2(ffp, head, segmentation)).unwrap();
            let err = spec.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{ffp} / {head} / {segmentation}: {err}");
        }
    }

    #[test]
    fn box_loss_variants_parse() {
        #[derive(Deserialize)]
        struct W {
            b: BoxLossSpec,
        }
        let w: W = toml::from_str("b = \"neg_log_iou\"").unwrap();
        assert_eq!(w.b, BoxLossSpec::NegLogIou);
        let w: W = toml::from_str("b = { smooth_l1 = { beta = 0.5 } }").unwrap();
        assert_eq!(w.b, BoxLossSpec::SmoothL1 { beta: 0.5 });
    }
}
