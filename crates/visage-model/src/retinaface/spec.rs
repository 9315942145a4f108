//! `[model]` of a RetinaFace experiment (`architecture = "retinaface"`): Pytorch_Retinaface's
//! network (backbone, three-level FPN, SSH, 1×1 class / box / landmark heads), its priors and
//! its training policy (`MultiBoxLoss`). Plain serde structs that reject unknown keys;
//! [`RetinaFaceSpec::validate`] names the offending key.

use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::retinaface::{RetinaFaceNetConfig, RETINAFACE_STRIDES};
use crate::spec::{
    backbone_config, check_non_negative, check_positive, check_unit, invalid, BackboneSpec,
};

/// `[model]` with `architecture = "retinaface"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetinaFaceSpec {
    /// `[model.backbone.mobilenet]` (Pytorch_Retinaface `mobilenet0.25`) or
    /// `[model.backbone.resnet]` (`Resnet50`), as for RetinaNet. The levels of strides 8, 16
    /// and 32 feed the FPN.
    pub backbone: BackboneSpec,
    /// Channels of the FPN and SSH outputs (Pytorch_Retinaface `out_channel`: 64 for
    /// MobileNet-0.25, 256 for ResNet-50); a multiple of 4 (SSH splits it C/2 + C/4 + C/4).
    pub out_channels: usize,
    /// Batch norm of the FPN and SSH fixed (statistics and affine parameters).
    #[serde(default)]
    pub frozen_bn: bool,
    /// Prior (anchor) sides in pixels per level, finest (stride 8) first; every level the
    /// same count (the anchors per location). Pytorch_Retinaface `min_sizes`:
    /// `[[16, 32], [64, 128], [256, 512]]`. The steps are the levels' strides, 8, 16, 32.
    #[serde(default = "port_min_sizes")]
    pub min_sizes: Vec<Vec<f32>>,
    /// Box and landmark coding variances (`variance`: `[0.1, 0.2]`).
    #[serde(default = "port_variances")]
    pub variances: [f32; 2],
    /// `[model.assign]`: prior-to-face matching.
    #[serde(default)]
    pub assign: RetinaFaceAssignSpec,
    /// `[model.loss]`: `MultiBoxLoss` and the weights of its parts.
    #[serde(default)]
    pub loss: RetinaFaceLossSpec,
}

/// `[model.assign]` of RetinaFace: Pytorch_Retinaface's `match()`. No ignore band: a prior
/// whose best IoU is at least `match_iou` is positive, every other one negative.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetinaFaceAssignSpec {
    /// IoU at or above which a prior is positive (`overlap_thresh` 0.35).
    #[serde(default = "match_iou")]
    pub match_iou: f32,
    /// Each face's best prior is positive whatever its IoU (the bipartite step of `match()`).
    #[serde(default = "yes")]
    pub force_best: bool,
    /// Faces whose best prior overlaps less than this get no forced prior (the port skips
    /// such "hard" faces: `best_prior_overlap >= 0.2`).
    #[serde(default = "force_best_min_iou")]
    pub force_best_min_iou: f32,
}

impl Default for RetinaFaceAssignSpec {
    fn default() -> Self {
        Self {
            match_iou: match_iou(),
            force_best: true,
            force_best_min_iou: force_best_min_iou(),
        }
    }
}

/// `[model.loss]` of RetinaFace: `loss = box_weight · L_box + cls_weight · L_cls +
/// landmark_weight · L_landmark` (Pytorch_Retinaface train.py: `loc_weight` 2, 1, 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetinaFaceLossSpec {
    /// Hard negatives mined per positive in each image (`negpos_ratio` 7).
    #[serde(default = "neg_pos_ratio")]
    pub neg_pos_ratio: f32,
    /// Weight of the box loss (`loc_weight` 2).
    #[serde(default = "two")]
    pub box_weight: f32,
    /// Weight of the classification loss.
    #[serde(default = "one")]
    pub cls_weight: f32,
    /// Weight of the landmark loss.
    #[serde(default = "one")]
    pub landmark_weight: f32,
    /// Smooth-L1 β of the box and landmark losses (`F.smooth_l1_loss`: 1).
    #[serde(default = "one")]
    pub smooth_l1_beta: f32,
}

impl Default for RetinaFaceLossSpec {
    fn default() -> Self {
        Self {
            neg_pos_ratio: neg_pos_ratio(),
            box_weight: 2.0,
            cls_weight: 1.0,
            landmark_weight: 1.0,
            smooth_l1_beta: 1.0,
        }
    }
}

fn port_min_sizes() -> Vec<Vec<f32>> {
    vec![vec![16.0, 32.0], vec![64.0, 128.0], vec![256.0, 512.0]]
}
fn port_variances() -> [f32; 2] {
    [0.1, 0.2]
}
fn match_iou() -> f32 {
    0.35
}
fn force_best_min_iou() -> f32 {
    0.2
}
fn neg_pos_ratio() -> f32 {
    7.0
}
fn yes() -> bool {
    true
}
fn one() -> f32 {
    1.0
}
fn two() -> f32 {
    2.0
}

impl RetinaFaceSpec {
    /// Checks every rule serde cannot; the error names the TOML key (`model.min_sizes`, ...).
    pub fn validate(&self) -> Result<(), ModelError> {
        backbone_config(&self.backbone)?;
        if self.out_channels == 0 || !self.out_channels.is_multiple_of(4) {
            return Err(invalid(
                "model.out_channels",
                format!(
                    "must be a positive multiple of 4, got {}",
                    self.out_channels
                ),
            ));
        }
        if self.min_sizes.len() != RETINAFACE_STRIDES.len() {
            return Err(invalid(
                "model.min_sizes",
                format!(
                    "needs one list per level (strides {RETINAFACE_STRIDES:?}), got {}",
                    self.min_sizes.len()
                ),
            ));
        }
        let per_location = self.min_sizes[0].len();
        if per_location == 0 || self.min_sizes.iter().any(|l| l.len() != per_location) {
            return Err(invalid(
                "model.min_sizes",
                "every level needs the same, non-zero number of sizes",
            ));
        }
        for &s in self.min_sizes.iter().flatten() {
            check_positive("model.min_sizes", s)?;
        }
        check_positive("model.variances", self.variances[0])?;
        check_positive("model.variances", self.variances[1])?;
        check_unit("model.assign.match_iou", self.assign.match_iou)?;
        check_unit(
            "model.assign.force_best_min_iou",
            self.assign.force_best_min_iou,
        )?;
        check_non_negative("model.loss.neg_pos_ratio", self.loss.neg_pos_ratio)?;
        check_non_negative("model.loss.box_weight", self.loss.box_weight)?;
        check_non_negative("model.loss.cls_weight", self.loss.cls_weight)?;
        check_non_negative("model.loss.landmark_weight", self.loss.landmark_weight)?;
        check_non_negative("model.loss.smooth_l1_beta", self.loss.smooth_l1_beta)?;
        Ok(())
    }

    /// Priors per feature-map location (the sizes of a level).
    pub fn anchors_per_location(&self) -> usize {
        self.min_sizes.first().map_or(0, Vec::len)
    }

    /// Prior steps per level, finest first: the levels' strides (8, 16, 32).
    pub fn steps(&self) -> Vec<usize> {
        RETINAFACE_STRIDES.to_vec()
    }

    /// The network's Burn config (after [`validate`](Self::validate)).
    pub fn net_config(&self) -> Result<RetinaFaceNetConfig, ModelError> {
        self.validate()?;
        Ok(RetinaFaceNetConfig {
            backbone: backbone_config(&self.backbone)?,
            out_channels: self.out_channels,
            anchors_per_location: self.anchors_per_location(),
            frozen_bn: self.frozen_bn,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const MNET: &str = r#"
        out_channels = 64
        [backbone.mobilenet]
        width_multiplier = 0.25
    "#;

    #[test]
    fn defaults_are_pytorch_retinaface_s() {
        let spec: RetinaFaceSpec = toml::from_str(MNET).unwrap();
        spec.validate().unwrap();
        assert_eq!(spec.min_sizes, port_min_sizes());
        assert_eq!(spec.variances, [0.1, 0.2]);
        assert_eq!(spec.steps(), vec![8, 16, 32]);
        assert_eq!(spec.anchors_per_location(), 2);
        assert_eq!(spec.assign.match_iou, 0.35);
        assert!(spec.assign.force_best);
        assert_eq!(spec.loss.neg_pos_ratio, 7.0);
        assert_eq!(
            (
                spec.loss.box_weight,
                spec.loss.cls_weight,
                spec.loss.landmark_weight
            ),
            (2.0, 1.0, 1.0)
        );
        // Integer sizes are accepted.
        let ints = MNET.replace(
            "out_channels = 64",
            "out_channels = 64\nmin_sizes = [[16, 32], [64, 128], [256, 512]]",
        );
        let spec: RetinaFaceSpec = toml::from_str(&ints).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spec.min_sizes, port_min_sizes());
    }

    #[test]
    fn validation_names_the_key() {
        let base: RetinaFaceSpec = toml::from_str(MNET).unwrap();
        let mut spec = base.clone();
        spec.min_sizes = vec![vec![16.0], vec![64.0, 128.0], vec![256.0]];
        assert!(spec
            .validate()
            .unwrap_err()
            .to_string()
            .contains("model.min_sizes"));
        let mut spec = base.clone();
        spec.min_sizes.pop();
        assert!(spec
            .validate()
            .unwrap_err()
            .to_string()
            .contains("model.min_sizes"));
        let mut spec = base.clone();
        spec.out_channels = 66;
        assert!(spec
            .validate()
            .unwrap_err()
            .to_string()
            .contains("model.out_channels"));
        let mut spec = base;
        spec.assign.match_iou = 1.5;
        assert!(spec
            .validate()
            .unwrap_err()
            .to_string()
            .contains("model.assign.match_iou"));
    }
}
