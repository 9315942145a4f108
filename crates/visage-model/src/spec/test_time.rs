//! `[test]`: the post-processing of one pass (score threshold, top-k, NMS, cap), the input
//! scale of an image (`short_side`, `max_size`) and the passes of test-time augmentation
//! (`[test.tta]`). The merge of the passes is the predictor's (`visage-infer`).

use serde::{Deserialize, Serialize};

use super::keys::{check_positive, check_unit, invalid};
use crate::error::ModelError;

/// `[test]`: post-processing at inference; every key is optional (defaults: score 0.05,
/// top 5000, NMS 0.4, at most 750 detections, the image's own size).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TestSpec {
    /// Detections scoring below this are dropped before NMS (RetinaFace's `detect.py`
    /// rules: at or below).
    pub score_threshold: f32,
    /// At most this many candidates per image enter NMS.
    pub pre_nms_top_k: usize,
    /// NMS IoU threshold.
    pub nms_threshold: f32,
    /// At most this many detections per image are kept.
    pub max_detections: usize,
    /// If set, images whose longer side exceeds this are shrunk to it before detection
    /// (after `short_side`).
    pub max_size: Option<u32>,
    /// If set, every image is resized (up or down) so that its shorter side is this many
    /// pixels, before `max_size` caps the longer side (DF²S² tests at short side 800).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub short_side: Option<u32>,
    /// `[test.tta]`: test-time augmentation; absent: one pass at the base scale.
    #[serde(skip_serializing_if = "Option::is_none")]
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
            score_threshold: 0.05,
            pre_nms_top_k: 5000,
            nms_threshold: 0.4,
            max_detections: 750,
            max_size: None,
            short_side: None,
            tta: None,
        }
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

impl TestSpec {
    /// Network-input pixels per image pixel for a `width × height` image: `short_side /
    /// shorter side` with `short_side` (else 1), then lowered so that the longer side does not
    /// exceed `max_size`. Without either setting, 1.
    pub fn input_scale(&self, width: u32, height: u32) -> f32 {
        let (short, long) = (
            width.min(height).max(1) as f32,
            width.max(height).max(1) as f32,
        );
        let mut scale = self.short_side.map_or(1.0, |s| s as f32 / short);
        if let Some(limit) = self.max_size {
            if long * scale > limit as f32 {
                scale = limit as f32 / long;
            }
        }
        scale
    }

    /// The settings each pass of test-time augmentation post-processes with: the same score
    /// threshold and `pre_nms_top_k`, no NMS (IoU threshold 1: nothing overlaps more) and no
    /// cap beyond `pre_nms_top_k`, so every candidate reaches the merge of the passes. Without
    /// `[test.tta]` the settings themselves.
    pub fn per_pass(&self) -> TestSpec {
        match &self.tta {
            None => self.clone(),
            Some(_) => TestSpec {
                nms_threshold: 1.0,
                max_detections: self.pre_nms_top_k,
                ..self.clone()
            },
        }
    }

    /// The passes of one image: `(scale multiplier, mirrored)`, the base pass first. Without
    /// `[test.tta]`, the base pass only.
    pub fn passes(&self) -> Vec<(f32, bool)> {
        match &self.tta {
            None => vec![(1.0, false)],
            Some(tta) => tta
                .scales
                .iter()
                .flat_map(|&s| {
                    let mirrored = tta.flip.then_some((s, true));
                    std::iter::once((s, false)).chain(mirrored)
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_scale_follows_short_side_then_max_size() {
        let mut test = TestSpec::default();
        assert_eq!(test.input_scale(1024, 683), 1.0);
        test.max_size = Some(512);
        assert_eq!(test.input_scale(1024, 683), 0.5);
        assert_eq!(test.input_scale(400, 300), 1.0, "max_size never enlarges");
        test.max_size = None;
        test.short_side = Some(800);
        assert_eq!(test.input_scale(1200, 400), 2.0, "short_side enlarges");
        assert_eq!(test.input_scale(1600, 1000), 0.8, "and shrinks");
        test.max_size = Some(1600);
        assert_eq!(
            test.input_scale(1200, 400),
            1600.0 / 1200.0,
            "capped by max_size"
        );
    }

    #[test]
    fn passes_and_per_pass_settings() {
        let mut test = TestSpec::default();
        assert_eq!(test.passes(), vec![(1.0, false)]);
        assert_eq!(test.per_pass(), test);
        test.tta = Some(TtaSpec {
            scales: vec![1.0, 0.5],
            flip: true,
        });
        assert_eq!(
            test.passes(),
            vec![(1.0, false), (1.0, true), (0.5, false), (0.5, true)]
        );
        let pass = test.per_pass();
        assert_eq!(pass.nms_threshold, 1.0);
        assert_eq!(pass.max_detections, test.pre_nms_top_k);
        assert_eq!(pass.score_threshold, test.score_threshold);
        test.validate().unwrap();
        test.tta = Some(TtaSpec {
            scales: vec![],
            flip: false,
        });
        let err = test.validate().unwrap_err().to_string();
        assert!(err.contains("test.tta.scales"), "{err}");
        test.tta = Some(TtaSpec {
            scales: vec![1.0, -2.0],
            flip: false,
        });
        assert!(test
            .validate()
            .unwrap_err()
            .to_string()
            .contains("test.tta.scales"));
        test.tta = None;
        test.short_side = Some(0);
        assert!(test
            .validate()
            .unwrap_err()
            .to_string()
            .contains("test.short_side"));
    }
}
