//! The default of every optional `[model]` key that is not a whole table, declared once and
//! named after what it is. Tables whose keys are all optional (`[test]`, `[model.loss]`,
//! `[model.coder]`, RetinaFace's `[model.assign]` and `[model.loss]`) take their defaults
//! from their `Default` impl instead. Where a component declares the same default (a
//! backbone's width, a head's prior, the FFP kernel, SRN's C6 / C7), it is read from the
//! component's config.

use visage_backbone::{MobileNetV1Config, ResNetConfig, ResNetDepth};
use visage_heads::RetinaHeadConfig;
use visage_neck::{FfpConfig, SrnNeckConfig};

/// `model.backbone.resnet.width_multiplier`: torchvision's widths (1).
pub(crate) fn resnet_width_multiplier() -> f32 {
    ResNetConfig::new(ResNetDepth::D50).width_multiplier
}

/// `model.backbone.mobilenet.width_multiplier`: Pytorch_Retinaface's MobileNet-0.25.
pub(crate) fn mobilenet_width_multiplier() -> f32 {
    MobileNetV1Config::new().width_multiplier
}

/// `model.neck.fpn.min_level`: P3 (stride 8), RetinaNet's finest level.
pub(crate) fn fpn_min_level() -> u32 {
    3
}

/// `model.neck.ffp.min_level` and SRN's `model.neck.min_level`: stride 4 (C2), as DF²S² and
/// SRN.
pub(crate) fn stride_4_min_level() -> u32 {
    2
}

/// `model.neck.{fpn,ffp}.max_level`: P7 (stride 128).
pub(crate) fn max_level() -> u32 {
    7
}

/// `model.neck.ffp.upsample_kernel`: the 4×4 transposed conv.
pub(crate) fn upsample_kernel() -> usize {
    FfpConfig::new(Vec::new(), 1).upsample_kernel
}

/// `model.head.convs` and `model.attention.convs`: RetinaNet's and FAN's four convs.
pub(crate) fn subnet_convs() -> usize {
    4
}

/// `model.head.prior_prob`: RetinaNet's initial face probability (0.01).
pub(crate) fn prior_prob() -> f32 {
    RetinaHeadConfig::new(1, 1, 1, 1, 1).prior_prob as f32
}

/// `model.attention.loss_weight` and `model.segmentation.loss_weight`: 1.
pub(crate) fn mask_loss_weight() -> f32 {
    1.0
}

/// `min_area_factor` of the anchor-area rule of attention and segmentation masks (FAN: 0.5).
pub(crate) fn min_area_factor() -> f32 {
    0.5
}

/// `max_area_factor` of the anchor-area rule of attention and segmentation masks (FAN: 2).
pub(crate) fn max_area_factor() -> f32 {
    2.0
}

/// `force_best` of every matching: each face's best anchor is positive.
pub(crate) fn force_best() -> bool {
    true
}

/// `force_best_min_iou` of every matching: the forced anchor must overlap at least 0.2
/// (Pytorch_Retinaface's `best_prior_overlap >= 0.2`).
pub(crate) fn force_best_min_iou() -> f32 {
    0.2
}

/// SRN's `model.neck.c6_channels` (1024).
pub(crate) fn c6_channels() -> usize {
    SrnNeckConfig::new(vec![1], 1).c6_channels
}

/// SRN's `model.neck.c7_channels` (256).
pub(crate) fn c7_channels() -> usize {
    SrnNeckConfig::new(vec![1], 1).c7_channels
}

/// SRN's `model.head.rfe`: receptive field enrichment on.
pub(crate) fn rfe() -> bool {
    true
}

/// SRN's `model.stc.drop_score` (0.01).
pub(crate) fn drop_score() -> f32 {
    0.01
}

/// SRN's first-step matching of STC, `model.stc.assign`: IoU ≥ 0.7 positive, < 0.3 negative.
pub(crate) fn stc_assign() -> super::AssignSpec {
    super::AssignSpec {
        positive_iou: 0.7,
        negative_iou: 0.3,
        force_best: force_best(),
        force_best_min_iou: force_best_min_iou(),
    }
}

/// RetinaFace's `model.min_sizes`: Pytorch_Retinaface's `[[16, 32], [64, 128], [256, 512]]`.
pub(crate) fn retinaface_min_sizes() -> Vec<Vec<f32>> {
    vec![vec![16.0, 32.0], vec![64.0, 128.0], vec![256.0, 512.0]]
}

/// The SSD / RetinaFace box coding variances `[0.1, 0.2]` (`model.coder.variances`,
/// RetinaFace's `model.variances`).
pub(crate) fn variances() -> [f32; 2] {
    visage_boxes::BoxCoder::default().variances
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_defaults_are_the_papers_values() {
        assert_eq!(resnet_width_multiplier(), 1.0);
        assert_eq!(mobilenet_width_multiplier(), 0.25);
        assert_eq!(upsample_kernel(), 4);
        assert!((prior_prob() - 0.01).abs() < 1e-9);
        assert_eq!((c6_channels(), c7_channels()), (1024, 256));
        assert_eq!(variances(), [0.1, 0.2]);
    }
}
