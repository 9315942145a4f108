//! The test-time merge: the detections of one image from its passes' detections.

use visage_boxes::nms;
use visage_model::{Detection, TestSpec};

/// The detections of one image from its passes' (each already in the image's frame): the
/// single pass's as they are without `[test.tta]`; with it, every pass's candidates best
/// first (equal scores keep pass order), one NMS at `test.nms_threshold`, at most
/// `test.max_detections`.
pub fn merge_passes(passes: Vec<Vec<Detection>>, test: &TestSpec) -> Vec<Detection> {
    if test.tta.is_none() {
        return passes.into_iter().flatten().collect();
    }
    let mut all: Vec<Detection> = passes.into_iter().flatten().collect();
    all.sort_by(|a, b| b.score.total_cmp(&a.score));
    let boxes: Vec<_> = all.iter().map(|d| d.bbox).collect();
    let scores: Vec<f32> = all.iter().map(|d| d.score).collect();
    let mut keep = nms(&boxes, &scores, test.nms_threshold);
    keep.truncate(test.max_detections);
    keep.into_iter().map(|k| all[k].clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use visage_model::TtaSpec;

    fn det(bbox: [f32; 4], score: f32) -> Detection {
        Detection {
            bbox,
            score,
            landmarks: None,
            mesh: None,
        }
    }

    #[test]
    fn merging_is_one_nms_over_the_union_of_the_passes() {
        let test = TestSpec {
            nms_threshold: 0.4,
            max_detections: 2,
            tta: Some(TtaSpec {
                scales: vec![1.0, 2.0],
                flip: false,
            }),
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
    fn without_tta_the_single_pass_is_kept_as_it_is() {
        let pass = vec![
            det([0.0, 0.0, 10.0, 10.0], 0.5),
            det([1.0, 0.0, 11.0, 10.0], 0.9),
        ];
        assert_eq!(merge_passes(vec![pass.clone()], &TestSpec::default()), pass);
    }

    #[test]
    fn nms_at_threshold_one_keeps_every_candidate() {
        // The per-pass settings must let even identical boxes through to the merge.
        let boxes = [[0.0, 0.0, 10.0, 10.0]; 3];
        assert_eq!(nms(&boxes, &[0.9, 0.8, 0.7], 1.0), vec![0, 1, 2]);
    }
}
