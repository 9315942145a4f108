//! `[model.loss]` of the anchor-based families with sigmoid classification (RetinaNet, FAN,
//! DF²S², SRN, AInnoFace): focal loss and the box loss.

use serde::{Deserialize, Serialize};

use super::keys::{check_non_negative, check_unit, invalid};
use crate::error::ModelError;

/// `[model.loss]`; every key is optional (defaults: RetinaNet's α 0.25, γ 2, Detectron's
/// smooth-L1 β 1/9, box weight 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LossSpec {
    /// Focal loss α (weight of positives).
    pub focal_alpha: f32,
    /// Focal loss γ (focusing).
    pub focal_gamma: f32,
    /// Box regression loss.
    pub box_loss: BoxLossSpec,
    /// Weight of the box loss in the total.
    pub box_weight: f32,
}

impl Default for LossSpec {
    fn default() -> Self {
        Self {
            focal_alpha: 0.25,
            focal_gamma: 2.0,
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

impl LossSpec {
    /// Checks value ranges; errors name the `model.loss.*` key.
    pub(crate) fn validate(&self) -> Result<(), ModelError> {
        check_unit("model.loss.focal_alpha", self.focal_alpha)?;
        if !(self.focal_gamma >= 0.0 && self.focal_gamma.is_finite()) {
            return Err(invalid("model.loss.focal_gamma", "must be >= 0"));
        }
        if let BoxLossSpec::SmoothL1 { beta } = self.box_loss {
            check_non_negative("model.loss.box_loss.smooth_l1.beta", beta)?;
        }
        check_non_negative("model.loss.box_weight", self.box_weight)
    }
}
