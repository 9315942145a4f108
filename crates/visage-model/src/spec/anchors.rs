//! `[model.anchors]`, `[model.assign]` and `[model.coder]`: the anchor shapes per level, the
//! max-IoU matching and the box coding of the anchor-based families. Each builds the policy
//! object it describes ([`AnchorGenerator`], [`MaxIouAssigner`], [`BoxCoder`]), which
//! validates itself; errors name the TOML key.

use serde::{Deserialize, Serialize};
use visage_anchors::{AnchorGenerator, LevelSpec, MaxIouAssigner};
use visage_boxes::BoxCoder;

use super::defaults;
use super::keys::{at_key, check_positive};
use crate::error::ModelError;

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

impl AnchorSpec {
    /// Anchors per feature-map location: `scales × ratios`.
    pub fn per_location(&self) -> usize {
        self.scales.len() * self.ratios.len()
    }

    /// The anchors of these settings on levels of the given strides (finest first): sizes
    /// `base_factor · stride · scale` at each ratio. Errors name `model.anchors.*`.
    pub fn generator(&self, strides: &[u32]) -> Result<AnchorGenerator, ModelError> {
        check_positive("model.anchors.base_factor", self.base_factor)?;
        let levels = strides
            .iter()
            .map(|&stride| LevelSpec {
                stride,
                sizes: self
                    .scales
                    .iter()
                    .map(|s| self.base_factor * stride as f32 * s)
                    .collect(),
                aspect_ratios: self.ratios.clone(),
            })
            .collect();
        // A level's sizes are the scales times a positive factor.
        AnchorGenerator::new(levels).map_err(|e| {
            at_key(
                "model.anchors",
                &[("aspect_ratios", "ratios"), ("sizes", "scales")],
                e,
            )
        })
    }
}

/// Anchors of `[[s, ...], ...]` pixel sizes per level (square, ratio 1) on levels of the
/// given strides: Pytorch_Retinaface's priors. Errors name `key`.
pub(crate) fn square_anchors(
    sizes: &[Vec<f32>],
    strides: &[usize],
    key: &str,
) -> Result<AnchorGenerator, ModelError> {
    let levels = strides
        .iter()
        .zip(sizes)
        .map(|(&stride, sizes)| LevelSpec {
            stride: stride as u32,
            sizes: sizes.clone(),
            aspect_ratios: vec![1.0],
        })
        .collect();
    AnchorGenerator::new(levels)
        .map_err(|e| super::keys::invalid(key, format!("{e} (field `{}`)", e.field())))
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
    #[serde(default = "defaults::force_best")]
    pub force_best: bool,
    /// The forced best anchor must still overlap this much.
    #[serde(default = "defaults::force_best_min_iou")]
    pub force_best_min_iou: f32,
}

impl AssignSpec {
    /// The assigner these thresholds describe, validated; errors name `<key>.positive_iou`
    /// etc. (`key` is the table, e.g. `model.assign`).
    pub fn assigner(&self, key: &str) -> Result<MaxIouAssigner, ModelError> {
        MaxIouAssigner::new(
            self.positive_iou,
            self.negative_iou,
            self.force_best,
            self.force_best_min_iou,
        )
        .map_err(|e| at_key(key, &[], e))
    }
}

/// `[model.coder]`: SSD-style centre/size coding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoderSpec {
    /// Centre and size variances (SSD / RetinaFace: [0.1, 0.2]).
    #[serde(default = "defaults::variances")]
    pub variances: [f32; 2],
}

impl Default for CoderSpec {
    fn default() -> Self {
        Self {
            variances: defaults::variances(),
        }
    }
}

impl CoderSpec {
    /// The coder, validated; errors name `model.coder.variances`.
    pub fn coder(&self) -> Result<BoxCoder, ModelError> {
        coder(self.variances, "model.coder")
    }
}

/// A validated coder of `variances`, errors naming `<table>.variances`.
pub(crate) fn coder(variances: [f32; 2], table: &str) -> Result<BoxCoder, ModelError> {
    BoxCoder::new(variances).map_err(|e| at_key(table, &[], e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchors(base_factor: f32, scales: Vec<f32>, ratios: Vec<f32>) -> AnchorSpec {
        AnchorSpec {
            base_factor,
            scales,
            ratios,
        }
    }

    #[test]
    fn anchor_errors_name_the_key() {
        let ok = anchors(2.0, vec![1.0, 1.5], vec![1.0]);
        assert_eq!(ok.generator(&[8, 16]).unwrap().levels().len(), 2);
        for (spec, key) in [
            (
                anchors(0.0, vec![1.0], vec![1.0]),
                "model.anchors.base_factor",
            ),
            (anchors(2.0, vec![], vec![1.0]), "model.anchors.scales"),
            (
                anchors(2.0, vec![1.0, -1.0], vec![1.0]),
                "model.anchors.scales",
            ),
            (anchors(2.0, vec![1.0], vec![]), "model.anchors.ratios"),
            (
                anchors(2.0, vec![1.0], vec![f32::NAN]),
                "model.anchors.ratios",
            ),
        ] {
            let err = spec.generator(&[8, 16]).unwrap_err().to_string();
            assert!(err.contains(&format!("`{key}`")), "{spec:?}: {err}");
        }
    }

    #[test]
    fn assign_and_coder_errors_name_the_key() {
        let assign = AssignSpec {
            positive_iou: 0.5,
            negative_iou: 0.6,
            force_best: true,
            force_best_min_iou: 0.2,
        };
        let err = assign.assigner("model.stc.assign").unwrap_err().to_string();
        assert!(err.contains("model.stc.assign.negative_iou"), "{err}");
        let coder = CoderSpec {
            variances: [0.1, 0.0],
        };
        let err = coder.coder().unwrap_err().to_string();
        assert!(err.contains("model.coder.variances"), "{err}");
    }
}
