//! From a [`RetinaNetSpec`] to the component configs it describes: the backbone, the neck,
//! the head, FAN's attention subnet, the anchors, the assigner and the coder. Each component
//! validates its own config; this file maps their errors to TOML keys and checks the rules
//! that span components (the neck's levels against the backbone's strides, segmentation
//! needing the shared head) or that belong to this family's policy (mask loss weights and
//! level rules). Validating a spec is building its components.

use visage_anchors::{AnchorGenerator, MaxIouAssigner};
use visage_backbone::BackboneConfig;
use visage_boxes::BoxCoder;
use visage_heads::{AttentionHeadConfig, DetectionHeadConfig, RetinaHeadConfig, SharedHeadConfig};

use super::neck::NeckConfig;
use super::spec::{AttentionLevelsSpec, AttentionSpec, RetinaNetSpec, SegmentationSpec};
use crate::error::ModelError;
use crate::spec::backbone::{check_min_level, neck_in_channels};
use crate::spec::head::HEAD_KEYS;
use crate::spec::keys::{at_key, check_non_negative, check_positive, invalid};

/// The neck crate's fields as `[model.neck.<kind>]` spells them.
const NECK_KEYS: &[(&str, &str)] = &[("out_channels", "channels")];

/// The validated component configs of a RetinaNet-family detector.
#[derive(Debug, Clone)]
pub(crate) struct RetinaNetComponents {
    /// The backbone.
    pub(crate) backbone: BackboneConfig,
    /// Strides of the backbone levels the neck consumes (C_min..C5), finest first.
    pub(crate) neck_input_strides: Vec<usize>,
    /// FPN or FFP.
    pub(crate) neck: NeckConfig,
    /// Separate subnets or the shared stack.
    pub(crate) head: DetectionHeadConfig,
    /// FAN's attention subnet, with `[model.attention]`.
    pub(crate) attention: Option<AttentionHeadConfig>,
    /// Anchors on the pyramid's levels.
    pub(crate) anchors: AnchorGenerator,
    /// `[model.assign]`.
    pub(crate) assigner: MaxIouAssigner,
    /// `[model.coder]`.
    pub(crate) coder: BoxCoder,
}

impl RetinaNetSpec {
    /// Builds and validates every component config; errors name the TOML key.
    pub(crate) fn components(&self) -> Result<RetinaNetComponents, ModelError> {
        let backbone = self.backbone.config()?;
        let neck_key = self.neck.key();
        let min_level_key = format!("{neck_key}.min_level");
        check_min_level(&self.backbone, self.neck.min_level(), &min_level_key)?;
        let max_level = self.neck.max_level();
        if !(5..=7).contains(&max_level) {
            return Err(invalid(
                &format!("{neck_key}.max_level"),
                format!("must be 5, 6 or 7, got {max_level}"),
            ));
        }
        let neck_input_strides: Vec<usize> =
            (self.neck.min_level()..=5).map(|l| 1usize << l).collect();
        let in_channels = neck_in_channels(&backbone, &neck_input_strides, &min_level_key)?;
        let neck = NeckConfig::new(&self.neck, in_channels);
        neck.validate()
            .map_err(|e| at_key(neck_key, NECK_KEYS, e))?;
        let head = self.head_config();
        head.validate()
            .map_err(|e| at_key("model.head", HEAD_KEYS, e))?;
        let anchors = self.anchors.generator(&self.level_strides())?;
        let assigner = self.assign.assigner("model.assign")?;
        let coder = self.coder.coder()?;
        self.loss.validate()?;
        let attention = match &self.attention {
            Some(spec) => Some(self.attention_config(spec)?),
            None => None,
        };
        if let Some(segmentation) = &self.segmentation {
            if !self.head.shared_convs {
                return Err(invalid(
                    "model.segmentation",
                    "needs model.head.shared_convs = true: the segmentation branch shares the \
                     head's convs (DF²S² §3.2)",
                ));
            }
            segmentation.validate_policy()?;
        }
        Ok(RetinaNetComponents {
            backbone,
            neck_input_strides,
            neck,
            head,
            attention,
            anchors,
            assigner,
            coder,
        })
    }

    /// The class / box head: RetinaNet's separate subnets, or DF²S²'s shared stack (with
    /// the segmentation predictor under `[model.segmentation]`).
    fn head_config(&self) -> DetectionHeadConfig {
        let head = &self.head;
        let (neck, anchors) = (self.neck.channels(), self.anchors_per_location());
        if head.shared_convs {
            DetectionHeadConfig::Shared(
                SharedHeadConfig::new(neck, head.channels, head.convs, anchors, 1)
                    .with_prior_prob(head.prior_prob as f64)
                    .with_norm(head.norm.norm())
                    .with_segmentation(self.segmentation.is_some()),
            )
        } else {
            DetectionHeadConfig::Separate(
                RetinaHeadConfig::new(neck, head.channels, head.convs, anchors, 1)
                    .with_prior_prob(head.prior_prob as f64)
                    .with_norm(head.norm.norm()),
            )
        }
    }

    /// FAN's attention subnet; errors name `model.attention.*`.
    fn attention_config(&self, spec: &AttentionSpec) -> Result<AttentionHeadConfig, ModelError> {
        let config = AttentionHeadConfig::new(self.neck.channels(), spec.channels, spec.convs)
            .with_norm(spec.norm.norm());
        config
            .validate()
            .map_err(|e| at_key("model.attention", HEAD_KEYS, e))?;
        check_non_negative("model.attention.loss_weight", spec.loss_weight)?;
        check_levels("model.attention.levels", spec.levels)?;
        Ok(config)
    }
}

impl SegmentationSpec {
    /// The loss weight and level rule; errors name `model.segmentation.*`.
    fn validate_policy(&self) -> Result<(), ModelError> {
        check_non_negative("model.segmentation.loss_weight", self.loss_weight)?;
        check_levels("model.segmentation.levels", self.levels)
    }
}

/// The factors of the anchor-area rule are finite and > 0; errors name `<key>.anchor_area.*`.
fn check_levels(key: &str, levels: AttentionLevelsSpec) -> Result<(), ModelError> {
    if let AttentionLevelsSpec::AnchorArea {
        min_area_factor,
        max_area_factor,
    } = levels
    {
        check_positive(
            &format!("{key}.anchor_area.min_area_factor"),
            min_area_factor,
        )?;
        check_positive(
            &format!("{key}.anchor_area.max_area_factor"),
            max_area_factor,
        )?;
    }
    Ok(())
}
