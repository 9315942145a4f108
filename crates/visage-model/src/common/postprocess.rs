//! From raw outputs to detections: sigmoid scores, score threshold, top-k, decoding, clipping
//! to the input, NMS, and the per-image detection cap (the `[test]` settings).

use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use visage_boxes::{nms, BoxCoder, BoxXyxy};

use crate::detector::{Detector, RawOutputs};
use crate::spec::TestSpec;

/// One detected face.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// `[x1, y1, x2, y2]` in pixels of the network input (the caller rescales to the image).
    pub bbox: BoxXyxy,
    /// Face probability in [0, 1].
    pub score: f32,
    /// Left eye, right eye, nose, left and right mouth corner, `[x, y]` pixels of the network
    /// input, for architectures with a landmark head (RetinaFace); `None` otherwise.
    pub landmarks: Option<[[f32; 2]; 5]>,
}

impl From<crate::retinaface_detect::FaceDetection> for Detection {
    fn from(d: crate::retinaface_detect::FaceDetection) -> Self {
        Detection {
            bbox: d.bbox,
            score: d.score,
            landmarks: Some(d.landmarks),
        }
    }
}

impl Detection {
    /// The detection mirrored in an image `width` pixels wide: `x → width − x` for boxes
    /// (`[x1, y1, x2, y2]` → `[width − x2, y1, width − x1, y2]`) and landmarks, whose left and
    /// right eyes (0, 1) and mouth corners (3, 4) swap, so a detection on a mirrored image
    /// maps back to the image (the transform is its own inverse).
    pub fn flipped(mut self, width: f32) -> Self {
        let [x1, y1, x2, y2] = self.bbox;
        self.bbox = [width - x2, y1, width - x1, y2];
        if let Some(points) = &mut self.landmarks {
            for p in points.iter_mut() {
                p[0] = width - p[0];
            }
            points.swap(0, 1);
            points.swap(3, 4);
        }
        self
    }

    /// The detection in the frame of an image `1 / scale` times the input's size (boxes and
    /// landmarks divided by `scale`).
    pub fn unscaled(mut self, scale: f32) -> Self {
        if scale != 1.0 {
            for v in &mut self.bbox {
                *v /= scale;
            }
            for p in self.landmarks.iter_mut().flatten() {
                p[0] /= scale;
                p[1] /= scale;
            }
        }
        self
    }
}

impl<B: Backend> Detector<B> {
    /// Detections of every image of the batch, best first.
    pub fn postprocess(&self, outputs: &RawOutputs<B>) -> Vec<Vec<Detection>> {
        self.postprocess_with(outputs, &self.policy.test)
    }

    /// [`postprocess`](Self::postprocess) with other `[test]` settings (e.g. the per-pass
    /// settings of test-time augmentation, [`TestSpec::per_pass`]).
    pub fn postprocess_with(
        &self,
        outputs: &RawOutputs<B>,
        test: &TestSpec,
    ) -> Vec<Vec<Detection>> {
        let [batch, n, _] = outputs.cls_logits.dims();
        let scores: Vec<f32> = sigmoid(outputs.cls_logits.clone())
            .into_data()
            .to_vec()
            .expect("f32 scores");
        let deltas: Vec<f32> = outputs
            .box_deltas
            .clone()
            .into_data()
            .to_vec()
            .expect("f32 deltas");
        let anchors = self.anchors(outputs);
        (0..batch)
            .map(|b| {
                select_detections(
                    &scores[b * n..(b + 1) * n],
                    &deltas[b * n * 4..(b + 1) * n * 4],
                    &anchors.boxes,
                    &self.policy.coder,
                    test,
                    outputs.input_size,
                )
            })
            .collect()
    }
}

/// Post-processing of one image.
///
/// - `scores`: `[N]` face probabilities; `deltas`: `[N · 4]` encoded boxes; `anchors`: `[N]` xyxy.
/// - `input_size`: `(height, width)` the boxes are clipped to.
pub fn select_detections(
    scores: &[f32],
    deltas: &[f32],
    anchors: &[BoxXyxy],
    coder: &BoxCoder,
    test: &TestSpec,
    input_size: (usize, usize),
) -> Vec<Detection> {
    let mut candidates: Vec<usize> = (0..scores.len())
        .filter(|&i| scores[i] >= test.score_threshold)
        .collect();
    let by_score_desc = |a: &usize, b: &usize| scores[*b].total_cmp(&scores[*a]);
    if candidates.len() > test.pre_nms_top_k {
        candidates.select_nth_unstable_by(test.pre_nms_top_k - 1, by_score_desc);
        candidates.truncate(test.pre_nms_top_k);
    }
    candidates.sort_by(by_score_desc);
    let (height, width) = (input_size.0 as f32, input_size.1 as f32);
    let mut boxes = Vec::with_capacity(candidates.len());
    let mut kept_scores = Vec::with_capacity(candidates.len());
    for &i in &candidates {
        let delta = [
            deltas[i * 4],
            deltas[i * 4 + 1],
            deltas[i * 4 + 2],
            deltas[i * 4 + 3],
        ];
        let [x1, y1, x2, y2] = coder.decode(&anchors[i], &delta);
        let clipped = [
            x1.clamp(0.0, width),
            y1.clamp(0.0, height),
            x2.clamp(0.0, width),
            y2.clamp(0.0, height),
        ];
        if clipped[2] > clipped[0] && clipped[3] > clipped[1] {
            boxes.push(clipped);
            kept_scores.push(scores[i]);
        }
    }
    let mut keep = nms(&boxes, &kept_scores, test.nms_threshold);
    keep.truncate(test.max_detections);
    keep.into_iter()
        .map(|k| Detection {
            bbox: boxes[k],
            score: kept_scores[k],
            landmarks: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coder() -> BoxCoder {
        BoxCoder {
            variances: [0.1, 0.2],
        }
    }

    #[test]
    fn thresholds_decodes_clips_and_suppresses() {
        let anchors = [
            [0.0, 0.0, 10.0, 10.0],
            [1.0, 0.0, 11.0, 10.0],
            [20.0, 20.0, 40.0, 40.0],
            [30.0, 0.0, 50.0, 20.0],
        ];
        // Zero deltas decode to the anchors themselves.
        let deltas = [0.0; 16];
        let scores = [0.9, 0.8, 0.01, 0.7];
        let test = TestSpec {
            score_threshold: 0.05,
            pre_nms_top_k: 10,
            nms_threshold: 0.4,
            max_detections: 10,
            ..TestSpec::default()
        };
        // Input 45 wide: the last anchor is clipped to x2 = 45.
        let dets = select_detections(&scores, &deltas, &anchors, &coder(), &test, (45, 45));
        // Anchor 1 overlaps anchor 0 with IoU 90/110 > 0.4 and is suppressed; anchor 2 is
        // below the score threshold.
        assert_eq!(dets.len(), 2);
        assert_eq!(dets[0].bbox, [0.0, 0.0, 10.0, 10.0]);
        assert_eq!(dets[0].score, 0.9);
        assert_eq!(dets[1].bbox, [30.0, 0.0, 45.0, 20.0]);
    }

    #[test]
    fn unscaling_maps_boxes_and_landmarks_back() {
        let d = Detection {
            bbox: [10.0, 20.0, 30.0, 40.0],
            score: 0.5,
            landmarks: Some([[12.0, 22.0]; 5]),
        };
        let u = d.unscaled(0.5);
        assert_eq!(u.bbox, [20.0, 40.0, 60.0, 80.0]);
        assert_eq!(u.landmarks, Some([[24.0, 44.0]; 5]));
        assert_eq!(u.score, 0.5);
        assert_eq!(d.unscaled(1.0), d);
    }

    #[test]
    fn flipping_mirrors_boxes_and_swaps_left_and_right_landmarks() {
        let d = Detection {
            bbox: [10.0, 20.0, 30.0, 40.0],
            score: 0.5,
            landmarks: Some([
                [12.0, 1.0],
                [28.0, 2.0],
                [20.0, 3.0],
                [14.0, 4.0],
                [26.0, 5.0],
            ]),
        };
        let f = d.flipped(100.0);
        assert_eq!(f.bbox, [70.0, 20.0, 90.0, 40.0]);
        // The left eye of the mirrored face is the mirror of the right eye, and so on.
        assert_eq!(
            f.landmarks,
            Some([
                [72.0, 2.0],
                [88.0, 1.0],
                [80.0, 3.0],
                [74.0, 5.0],
                [86.0, 4.0]
            ])
        );
        assert_eq!(f.flipped(100.0), d);
    }

    #[test]
    fn top_k_and_max_detections_cap_the_output() {
        let anchors: Vec<BoxXyxy> = (0..20)
            .map(|i| [i as f32 * 20.0, 0.0, i as f32 * 20.0 + 10.0, 10.0])
            .collect();
        let deltas = vec![0.0; 80];
        let scores: Vec<f32> = (0..20).map(|i| 0.1 + i as f32 * 0.04).collect();
        let mut test = TestSpec {
            score_threshold: 0.0,
            pre_nms_top_k: 5,
            nms_threshold: 0.4,
            max_detections: 750,
            ..TestSpec::default()
        };
        let dets = select_detections(&scores, &deltas, &anchors, &coder(), &test, (10, 400));
        assert_eq!(dets.len(), 5);
        assert!(dets.windows(2).all(|w| w[0].score >= w[1].score));
        assert!((dets[0].score - scores[19]).abs() < 1e-6);
        test.pre_nms_top_k = 100;
        test.max_detections = 3;
        let dets = select_detections(&scores, &deltas, &anchors, &coder(), &test, (10, 400));
        assert_eq!(dets.len(), 3);
    }
}
