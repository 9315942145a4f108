//! `[model]` of a RetinaFace experiment (`architecture = "retinaface"`): Pytorch_Retinaface's
//! network (backbone, three-level FPN, SSH, 1×1 class / box / landmark heads), its priors and
//! its training policy (`MultiBoxLoss`). Plain serde structs that reject unknown keys;
//! [`RetinaFaceSpec::validate`] names the offending key.

use serde::{Deserialize, Serialize};
use visage_anchors::{AnchorGenerator, MaxIouAssigner};
use visage_boxes::BoxCoder;

use super::mesh::MeshSpec;
use super::net::{RetinaFaceNetConfig, RETINAFACE_STRIDES};
use crate::error::ModelError;
use crate::family::FamilySpec;
use crate::spec::anchors::{coder, square_anchors};
use crate::spec::keys::{at_key, check_non_negative, invalid};
use crate::spec::{defaults, Architecture, BackboneSpec};

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
    #[serde(default = "defaults::retinaface_min_sizes")]
    pub min_sizes: Vec<Vec<f32>>,
    /// Box and landmark coding variances (`variance`: `[0.1, 0.2]`).
    #[serde(default = "defaults::variances")]
    pub variances: [f32; 2],
    /// `[model.assign]`: prior-to-face matching.
    #[serde(default)]
    pub assign: RetinaFaceAssignSpec,
    /// `[model.loss]`: `MultiBoxLoss` and the weights of its parts.
    #[serde(default)]
    pub loss: RetinaFaceLossSpec,
    /// `[model.mesh]`: the dense 3D branch (mesh decoder, renderer, `L_pixel`); off when
    /// the table is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<MeshSpec>,
}

/// `[model.assign]` of RetinaFace: Pytorch_Retinaface's `match()`. No ignore band: a prior
/// whose best IoU is at least `match_iou` is positive, every other one negative. Every key
/// is optional (defaults: the port's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetinaFaceAssignSpec {
    /// IoU at or above which a prior is positive (`overlap_thresh` 0.35).
    pub match_iou: f32,
    /// Each face's best prior is positive whatever its IoU (the bipartite step of `match()`).
    pub force_best: bool,
    /// Faces whose best prior overlaps less than this get no forced prior (the port skips
    /// such "hard" faces: `best_prior_overlap >= 0.2`).
    pub force_best_min_iou: f32,
}

impl Default for RetinaFaceAssignSpec {
    fn default() -> Self {
        Self {
            match_iou: 0.35,
            force_best: defaults::force_best(),
            force_best_min_iou: defaults::force_best_min_iou(),
        }
    }
}

/// `[model.loss]` of RetinaFace: `loss = box_weight · L_box + cls_weight · L_cls +
/// landmark_weight · L_landmark` (Pytorch_Retinaface train.py: `loc_weight` 2, 1, 1). Every
/// key is optional (defaults: the port's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetinaFaceLossSpec {
    /// Hard negatives mined per positive in each image (`negpos_ratio` 7).
    pub neg_pos_ratio: f32,
    /// Weight of the box loss (`loc_weight` 2).
    pub box_weight: f32,
    /// Weight of the classification loss.
    pub cls_weight: f32,
    /// Weight of the landmark loss.
    pub landmark_weight: f32,
    /// Smooth-L1 β of the box and landmark losses (`F.smooth_l1_loss`: 1).
    pub smooth_l1_beta: f32,
}

impl Default for RetinaFaceLossSpec {
    fn default() -> Self {
        Self {
            neg_pos_ratio: 7.0,
            box_weight: 2.0,
            cls_weight: 1.0,
            landmark_weight: 1.0,
            smooth_l1_beta: 1.0,
        }
    }
}

impl RetinaFaceSpec {
    /// Checks every rule serde cannot, by building the component configs; the error names
    /// the TOML key (`model.min_sizes`, ...).
    pub fn validate(&self) -> Result<(), ModelError> {
        self.components().map(|_| ())
    }

    /// Priors per feature-map location (the sizes of a level).
    pub fn anchors_per_location(&self) -> usize {
        self.min_sizes.first().map_or(0, Vec::len)
    }

    /// Prior steps per level, finest first: the levels' strides (8, 16, 32).
    pub fn steps(&self) -> Vec<usize> {
        RETINAFACE_STRIDES.to_vec()
    }

    /// The network's Burn config (validated).
    pub fn net_config(&self) -> Result<RetinaFaceNetConfig, ModelError> {
        Ok(self.components()?.net)
    }

    /// Builds and validates every component config; errors name the TOML key.
    pub(crate) fn components(&self) -> Result<RetinaFaceComponents, ModelError> {
        let net = RetinaFaceNetConfig {
            backbone: self.backbone.config()?,
            out_channels: self.out_channels,
            anchors_per_location: self.anchors_per_location(),
            frozen_bn: self.frozen_bn,
        };
        net.validate().map_err(|e| at_key("model", &[], e))?;
        if self.min_sizes.len() != RETINAFACE_STRIDES.len() {
            return Err(invalid(
                "model.min_sizes",
                format!(
                    "needs one list per level (strides {RETINAFACE_STRIDES:?}), got {}",
                    self.min_sizes.len()
                ),
            ));
        }
        let per_location = self.anchors_per_location();
        if per_location == 0 || self.min_sizes.iter().any(|l| l.len() != per_location) {
            return Err(invalid(
                "model.min_sizes",
                "every level needs the same, non-zero number of sizes",
            ));
        }
        let priors = square_anchors(&self.min_sizes, &self.steps(), "model.min_sizes")?;
        let coder = coder(self.variances, "model")?;
        let a = &self.assign;
        let assigner =
            MaxIouAssigner::new(a.match_iou, a.match_iou, a.force_best, a.force_best_min_iou)
                .map_err(|e| {
                    at_key(
                        "model.assign",
                        &[("positive_iou", "match_iou"), ("negative_iou", "match_iou")],
                        e,
                    )
                })?;
        let loss = &self.loss;
        check_non_negative("model.loss.neg_pos_ratio", loss.neg_pos_ratio)?;
        check_non_negative("model.loss.box_weight", loss.box_weight)?;
        check_non_negative("model.loss.cls_weight", loss.cls_weight)?;
        check_non_negative("model.loss.landmark_weight", loss.landmark_weight)?;
        check_non_negative("model.loss.smooth_l1_beta", loss.smooth_l1_beta)?;
        if let Some(mesh) = &self.mesh {
            mesh.validate()?;
        }
        Ok(RetinaFaceComponents {
            net,
            priors,
            assigner,
            coder,
        })
    }
}

/// The validated component configs of a RetinaFace.
#[derive(Debug, Clone)]
pub(crate) struct RetinaFaceComponents {
    /// The network.
    pub(crate) net: RetinaFaceNetConfig,
    /// Pytorch_Retinaface's priors: squares of `min_sizes` on the three levels.
    pub(crate) priors: AnchorGenerator,
    /// `match()`: IoU ≥ `match_iou` positive, no ignore band.
    pub(crate) assigner: MaxIouAssigner,
    /// Box and landmark coding with `variances`.
    pub(crate) coder: BoxCoder,
}

impl FamilySpec for RetinaFaceSpec {
    fn architecture(&self) -> Architecture {
        Architecture::RetinaFace
    }

    fn validate(&self) -> Result<(), ModelError> {
        RetinaFaceSpec::validate(self)
    }

    fn backbone(&self) -> &BackboneSpec {
        &self.backbone
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
        assert_eq!(spec.min_sizes, defaults::retinaface_min_sizes());
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
        assert_eq!(spec.min_sizes, defaults::retinaface_min_sizes());
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
