//! `[model]` with `architecture = "srn"`: SRN (Chi et al. 2019) and AInnoFace (Zhang et al.
//! 2019, SRN with ResNet-152 and the IoU loss: a config, not separate code).
//!
//! ```toml
//! [model]
//! architecture = "srn"
//! [model.backbone.resnet]      # C2..C5
//! depth = 50
//! [model.neck]                 # C6, C7; first-step 1×1 projections; second-step FPN
//! channels = 256
//! [model.head]                 # cls / box branches with RFE, shared by both steps
//! channels = 256
//! [model.anchors]              # {2, 2√2} × stride at ratio 1.25
//! base_factor = 2.0
//! scales = [1.0, 1.4142]
//! ratios = [1.25]
//! [model.assign]               # second step (and STR's first step): 0.5 / 0.4
//! positive_iou = 0.5
//! negative_iou = 0.4
//! [model.stc]                  # two-step classification on the 3 finest levels
//! levels = 3
//! drop_score = 0.01
//! assign = { positive_iou = 0.7, negative_iou = 0.3 }
//! [model.str]                  # two-step regression on the 3 coarsest levels
//! levels = 3
//! ```

use serde::{Deserialize, Serialize};
use visage_anchors::{AnchorGenerator, MaxIouAssigner};
use visage_backbone::BackboneConfig;
use visage_boxes::BoxCoder;
use visage_heads::SrnHeadConfig;
use visage_neck::SrnNeckConfig;

use crate::error::ModelError;
use crate::family::FamilySpec;
use crate::spec::backbone::{check_min_level, neck_in_channels};
use crate::spec::head::HEAD_KEYS;
use crate::spec::keys::{at_key, check_unit, invalid};
use crate::spec::{
    defaults, AnchorSpec, Architecture, AssignSpec, BackboneSpec, CoderSpec, HeadNormSpec, LossSpec,
};

/// The coarsest level of SRN's pyramids: P7 / C7, stride 128.
pub const SRN_MAX_LEVEL: u32 = 7;

/// `[model]` of an SRN-family detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrnSpec {
    /// `[model.backbone.<kind>]`: a backbone with the stride-`2^neck.min_level` level and C5.
    pub backbone: BackboneSpec,
    /// `[model.neck]`: C6 / C7 and the pyramids' channels and finest level.
    pub neck: SrnNeckSpec,
    /// `[model.head]`: the class and box branches shared by levels and steps.
    pub head: SrnHeadSpec,
    /// `[model.anchors]`: sizes `base_factor · stride · scale` at each ratio, every level.
    pub anchors: AnchorSpec,
    /// `[model.assign]`: the second step's matching (SRN: 0.5 / 0.4), also used by STR's
    /// first step.
    pub assign: AssignSpec,
    /// `[model.stc]`: selective two-step classification.
    pub stc: StcSpec,
    /// `[model.str]`: selective two-step regression.
    #[serde(rename = "str")]
    pub two_step_regression: StrSpec,
    /// `[model.coder]`: box coding variances.
    #[serde(default)]
    pub coder: CoderSpec,
    /// `[model.loss]`: focal loss and box loss (SRN: smooth-L1; AInnoFace: `"neg_log_iou"`),
    /// for both steps.
    #[serde(default)]
    pub loss: LossSpec,
}

/// `[model.neck]` of SRN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrnNeckSpec {
    /// Channels of every level of both feature sets (SRN: 256).
    pub channels: usize,
    /// Finest level: 2 (stride 4, SRN) or 3. The coarsest is always 7 (stride 128).
    #[serde(default = "defaults::stride_4_min_level")]
    pub min_level: u32,
    /// Channels of C6 = 3×3/2 conv(C5) (SRN: 1024).
    #[serde(default = "defaults::c6_channels")]
    pub c6_channels: usize,
    /// Channels of C7 = 3×3/2 conv(C6) (SRN: 256).
    #[serde(default = "defaults::c7_channels")]
    pub c7_channels: usize,
}

/// `[model.head]` of SRN: per branch `3×3 conv + ReLU → RFE → 3×3 conv + ReLU → 1×1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrnHeadSpec {
    /// Channels of the branches (SRN: 256; a multiple of 4 with RFE).
    pub channels: usize,
    /// Normalisation of the 3×3 convs: `"none"` (SRN) or `{ group = G }`.
    #[serde(default)]
    pub norm: HeadNormSpec,
    /// Initial face probability of every anchor (RetinaNet: 0.01).
    #[serde(default = "defaults::prior_prob")]
    pub prior_prob: f32,
    /// Receptive field enrichment between the two 3×3 convs (SRN §3.3); `false` for the
    /// ablation without it.
    #[serde(default = "defaults::rfe")]
    pub rfe: bool,
}

/// `[model.stc]`: selective two-step classification (SRN §3.1) on the `levels` finest
/// levels. The first step classifies their anchors from the first-step features, matched
/// with `assign` (SRN: IoU ≥ 0.7 positive, < 0.3 negative); in the second step, anchors of
/// those levels whose first-step face probability is below `drop_score` are dropped, in
/// training (they take no part in the matching and the loss) and at inference (their
/// score is 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StcSpec {
    /// How many of the finest levels (SRN: 3, strides 4, 8, 16). 0 turns STC off.
    pub levels: usize,
    /// First-step face probability below which an anchor is dropped (SRN: 0.01).
    #[serde(default = "defaults::drop_score")]
    pub drop_score: f32,
    /// The first step's matching.
    #[serde(default = "defaults::stc_assign")]
    pub assign: AssignSpec,
}

/// `[model.str]`: selective two-step regression (SRN §3.2) on the `levels` coarsest levels.
/// The first step regresses their anchors from the first-step features (matched with
/// `[model.assign]`); the second step matches and regresses against those refined anchors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrSpec {
    /// How many of the coarsest levels (SRN: 3, strides 32, 64, 128). 0 turns STR off.
    pub levels: usize,
}

impl SrnSpec {
    /// Strides of the pyramid levels, finest first (SRN: 4 .. 128).
    pub fn level_strides(&self) -> Vec<u32> {
        (self.neck.min_level..=SRN_MAX_LEVEL)
            .map(|l| 1u32 << l)
            .collect()
    }

    /// Checks every rule serde cannot, by building the component configs; errors name the
    /// `model.*` key.
    pub fn validate(&self) -> Result<(), ModelError> {
        self.components().map(|_| ())
    }

    /// Builds and validates every component config; errors name the TOML key.
    pub(crate) fn components(&self) -> Result<SrnComponents, ModelError> {
        let backbone = self.backbone.config()?;
        check_min_level(&self.backbone, self.neck.min_level, "model.neck.min_level")?;
        let neck_input_strides: Vec<usize> =
            (self.neck.min_level..=5).map(|l| 1usize << l).collect();
        let in_channels = neck_in_channels(&backbone, &neck_input_strides, "model.neck.min_level")?;
        let neck = SrnNeckConfig::new(in_channels, self.neck.channels)
            .with_c6_channels(self.neck.c6_channels)
            .with_c7_channels(self.neck.c7_channels);
        neck.validate()
            .map_err(|e| at_key("model.neck", &[("out_channels", "channels")], e))?;
        let head = SrnHeadConfig::new(
            self.neck.channels,
            self.head.channels,
            self.anchors.per_location(),
        )
        .with_prior_prob(self.head.prior_prob as f64)
        .with_norm(self.head.norm.norm())
        .with_rfe(self.head.rfe);
        head.validate()
            .map_err(|e| at_key("model.head", HEAD_KEYS, e))?;
        let anchors = self.anchors.generator(&self.level_strides())?;
        let assigner = self.assign.assigner("model.assign")?;
        let stc_assigner = self.stc.assign.assigner("model.stc.assign")?;
        let coder = self.coder.coder()?;
        self.loss.validate()?;
        let levels = self.level_strides().len();
        for (value, key) in [
            (self.stc.levels, "model.stc.levels"),
            (self.two_step_regression.levels, "model.str.levels"),
        ] {
            if value > levels {
                return Err(invalid(
                    key,
                    format!("must be at most the {levels} pyramid levels, got {value}"),
                ));
            }
        }
        check_unit("model.stc.drop_score", self.stc.drop_score)?;
        if self.stc.drop_score >= 1.0 {
            return Err(invalid("model.stc.drop_score", "must be < 1"));
        }
        Ok(SrnComponents {
            backbone,
            neck_input_strides,
            neck,
            head,
            anchors,
            assigner,
            stc_assigner,
            coder,
        })
    }
}

/// The validated component configs of an SRN-family detector.
#[derive(Debug, Clone)]
pub(crate) struct SrnComponents {
    pub(crate) backbone: BackboneConfig,
    /// Strides of the backbone levels the neck consumes (C_min..C5), finest first.
    pub(crate) neck_input_strides: Vec<usize>,
    pub(crate) neck: SrnNeckConfig,
    pub(crate) head: SrnHeadConfig,
    pub(crate) anchors: AnchorGenerator,
    /// The second step's (and STR's first step's) matching.
    pub(crate) assigner: MaxIouAssigner,
    /// STC's first-step matching.
    pub(crate) stc_assigner: MaxIouAssigner,
    pub(crate) coder: BoxCoder,
}

impl FamilySpec for SrnSpec {
    fn architecture(&self) -> Architecture {
        Architecture::Srn
    }

    fn validate(&self) -> Result<(), ModelError> {
        SrnSpec::validate(self)
    }

    fn backbone(&self) -> &BackboneSpec {
        &self.backbone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = r#"
        [backbone.resnet]
        depth = 18
        width_multiplier = 0.125
        [neck]
        channels = 16
        c6_channels = 32
        c7_channels = 16
        [head]
        channels = 16
        norm = { group = 4 }
        [anchors]
        base_factor = 2.0
        scales = [1.0, 1.4142]
        ratios = [1.25]
        [assign]
        positive_iou = 0.5
        negative_iou = 0.4
        [stc]
        levels = 3
        [str]
        levels = 3
    "#;

    #[test]
    fn defaults_follow_srn() {
        let spec: SrnSpec = toml::from_str(TINY).unwrap();
        spec.validate().unwrap();
        assert_eq!(spec.level_strides(), vec![4, 8, 16, 32, 64, 128]);
        assert_eq!(spec.stc.drop_score, 0.01);
        assert_eq!(spec.stc.assign.positive_iou, 0.7);
        assert_eq!(spec.stc.assign.negative_iou, 0.3);
        assert!(spec.head.rfe);
        assert_eq!(spec.anchors.per_location(), 2);
    }

    #[test]
    fn errors_name_the_key() {
        let err = |text: String| {
            toml::from_str::<SrnSpec>(&text)
                .map_err(|e| e.to_string())
                .and_then(|s| s.validate().map_err(|e| e.to_string()))
                .unwrap_err()
        };
        let e = err(TINY.replace("[str]\n        levels = 3", "[str]\n        levels = 7"));
        assert!(e.contains("model.str.levels"), "{e}");
        let e = err(TINY.replace(
            "levels = 3\n        [str]",
            "levels = 3\n        drop_score = 1.5\n        [str]",
        ));
        assert!(e.contains("model.stc.drop_score"), "{e}");
        let e = err(TINY.replace(
            "channels = 16\n        norm",
            "channels = 18\n        norm = \"none\"\n        #",
        ));
        assert!(
            e.contains("model.head.channels") && e.contains("multiple of 4"),
            "{e}"
        );
        let e = err(TINY.replace(
            "[stc]\n        levels = 3",
            "[stc]\n        levels = 3\n        assign = { positive_iou = 0.3, negative_iou = 0.7 }",
        ));
        assert!(e.contains("model.stc.assign.negative_iou"), "{e}");
        let e = err(TINY.replace("c7_channels", "c8_channels"));
        assert!(e.contains("c8_channels"), "{e}");
        // MobileNet has no stride-4 level: SRN from P2 is refused.
        let e = err(TINY.replace(
            "[backbone.resnet]\n        depth = 18\n        width_multiplier = 0.125",
            "[backbone.mobilenet]\n        width_multiplier = 0.25",
        ));
        assert!(
            e.contains("model.neck.min_level") && e.contains("stride-4"),
            "{e}"
        );
    }
}
