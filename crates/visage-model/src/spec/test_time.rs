//! Test-time settings that span passes: the input scale of an image (`[test] short_side`,
//! `max_size`), the per-pass post-processing of test-time augmentation (`[test.tta]`), and the
//! merge of every pass's candidates by one NMS.

use visage_boxes::nms;

use crate::postprocess::Detection;
use crate::spec::TestSpec;

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
    /// cap beyond `pre_nms_top_k`, so every candidate reaches [`merge_passes`]. Without
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

/// Merges the candidates of every pass of one image (already in the image's frame): best
/// first (equal scores keep pass order), one NMS at `test.nms_threshold`, at most
/// `test.max_detections`.
pub fn merge_passes(passes: Vec<Vec<Detection>>, test: &TestSpec) -> Vec<Detection> {
    let mut all: Vec<Detection> = passes.into_iter().flatten().collect();
    all.sort_by(|a, b| b.score.total_cmp(&a.score));
    let boxes: Vec<_> = all.iter().map(|d| d.bbox).collect();
    let scores: Vec<f32> = all.iter().map(|d| d.score).collect();
    let mut keep = nms(&boxes, &scores, test.nms_threshold);
    keep.truncate(test.max_detections);
    keep.into_iter().map(|k| all[k]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::TtaSpec;

    fn det(bbox: [f32; 4], score: f32) -> Detection {
        Detection {
            bbox,
            score,
            landmarks: None,
        }
    }

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

    #[test]
    fn merging_is_one_nms_over_the_union_of_the_passes() {
        let test = TestSpec {
            nms_threshold: 0.4,
            max_detections: 2,
            ..TestSpec::default()
        };
        // Pass 1 and pass 2 each found the face at [0, 0, 10, 10]; pass 2 also a second face
        // and a low-scoring duplicate of it.
        let merged = merge_passes(
            vec![
                vec![det([0.0, 0.0, 10.0, 10.0], 0.8)],
                vec![
                    det([1.0, 0.0, 11.0, 10.0], 0.9),
                    det([50.0, 50.0, 60.0, 60.0], 0.7),
                    det([51.0, 50.0, 61.0, 60.0], 0.3),
                ],
            ],
            &test,
        );
        assert_eq!(
            merged,
            vec![
                det([1.0, 0.0, 11.0, 10.0], 0.9),
                det([50.0, 50.0, 60.0, 60.0], 0.7)
            ]
        );
    }

    #[test]
    fn nms_at_threshold_one_keeps_every_candidate() {
        // The per-pass settings must let even identical boxes through to the merge.
        let boxes = [[0.0, 0.0, 10.0, 10.0]; 3];
        assert_eq!(nms(&boxes, &[0.9, 0.8, 0.7], 1.0), vec![0, 1, 2]);
    }
}
