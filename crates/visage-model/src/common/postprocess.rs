//! The one post-processing of every family: from per-anchor predictions on the host
//! ([`AnchorPredictions`]) to detections — score threshold, top-k, decoding, clipping to the
//! input, NMS and the per-image cap (the `[test]` settings) — with the family's
//! [`DecodeRules`] (visage's, or Pytorch_Retinaface's `detect.py` for RetinaFace).

use burn::prelude::Tensor;
use rayon::prelude::*;
/// How a candidate's score is compared with `test.score_threshold` (defined beside the
/// top-k selection that applies it).
pub use visage_boxes::ScoreRule;
use visage_boxes::{best_first, nms_at_most, BoxCoder, BoxXyxy};
use visage_kernels::KernelBackend;

use crate::spec::TestSpec;

/// One detected face.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// `[x1, y1, x2, y2]` in pixels of the network input (the caller rescales to the image).
    pub bbox: BoxXyxy,
    /// Face probability in [0, 1].
    pub score: f32,
    /// Left eye, right eye, nose, left and right mouth corner, `[x, y]` pixels of the network
    /// input, for architectures with a landmark head (RetinaFace); `None` otherwise.
    pub landmarks: Option<[[f32; 2]; 5]>,
    /// The dense 3D branch's raw outputs at the detection's anchor (RetinaFace with
    /// `[model.mesh]`); `None` for other models.
    pub mesh: Option<MeshParams>,
}

/// What RetinaFace's mesh branch predicted at one anchor: the shape-and-texture code, camera
/// and light, relative to the anchor's square crop (`visage_mesh::render`'s conventions).
#[derive(Debug, Clone, PartialEq)]
pub struct MeshParams {
    /// The anchor, `[x1, y1, x2, y2]` pixels (of the network input, or of the image once
    /// [`Detection::unscaled`]): the crop the mesh is rendered in.
    pub anchor: BoxXyxy,
    /// `[code_size + 16]`: the code, then camera (7) and light (9).
    pub values: Vec<f32>,
}

impl Detection {
    /// The detection mirrored in an image `width` pixels wide: `x → width − x` for boxes
    /// (`[x1, y1, x2, y2]` → `[width − x2, y1, width − x1, y2]`) and landmarks, whose left and
    /// right eyes (0, 1) and mouth corners (3, 4) swap, so a detection on a mirrored image
    /// maps back to the image (the transform is its own inverse). A mirrored face's mesh
    /// parameters have no mirrored counterpart (the code is not symmetric by construction):
    /// `mesh` is dropped.
    pub fn flipped(mut self, width: f32) -> Self {
        self.mesh = None;
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
            if let Some(mesh) = &mut self.mesh {
                for v in &mut mesh.anchor {
                    *v /= scale;
                }
            }
        }
        self
    }
}

/// The decoding rules that differ between implementations of the same pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeRules {
    /// Whether a candidate needs a score at or above the threshold ([`ScoreRule::AtLeast`])
    /// or strictly above it ([`ScoreRule::Above`], `detect.py`).
    pub score: ScoreRule,
    /// Clamp the decoded size exponent at `ln(1000 / 16)` (torchvision's
    /// `bbox_xform_clip`); `detect.py` does not.
    pub clamp_size: bool,
    /// Clip decoded boxes to the input and drop those left empty; `detect.py` does not.
    pub clip_to_input: bool,
    /// How NMS measures areas.
    pub nms_areas: NmsAreas,
}

/// How NMS measures box areas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NmsAreas {
    /// `(x2 − x1) · (y2 − y1)`.
    Continuous,
    /// `(x2 − x1 + 1) · (y2 − y1 + 1)`, as `py_cpu_nms` (Pytorch_Retinaface).
    PixelInclusive,
}

impl DecodeRules {
    /// visage's rules (RetinaNet, FAN, DF²S², SRN): score at or above the threshold,
    /// clamped sizes, boxes clipped to the input, continuous areas.
    pub const VISAGE: DecodeRules = DecodeRules {
        score: ScoreRule::AtLeast,
        clamp_size: true,
        clip_to_input: true,
        nms_areas: NmsAreas::Continuous,
    };

    /// Pytorch_Retinaface's `detect.py`: score strictly above the threshold, no size clamp,
    /// no clipping, pixel-inclusive NMS areas.
    pub const PYTORCH_RETINAFACE: DecodeRules = DecodeRules {
        score: ScoreRule::Above,
        clamp_size: false,
        clip_to_input: false,
        nms_areas: NmsAreas::PixelInclusive,
    };
}

impl Default for DecodeRules {
    fn default() -> Self {
        DecodeRules::VISAGE
    }
}

/// The anchors the predictions of a batch are relative to.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchAnchors {
    /// One set `[N]` (xyxy pixels) shared by every image.
    Shared(Vec<BoxXyxy>),
    /// One set `[N]` per image (SRN's anchors refined by its first step).
    PerImage(Vec<Vec<BoxXyxy>>),
}

impl BatchAnchors {
    /// Image `b`'s anchors.
    pub fn image(&self, b: usize) -> &[BoxXyxy] {
        match self {
            BatchAnchors::Shared(anchors) => anchors,
            BatchAnchors::PerImage(per_image) => &per_image[b],
        }
    }
}

/// A family's per-anchor predictions of a batch of `B` images with `N` anchors each, on the
/// host, flattened image-major (`b · N + n`), with everything needed to decode them.
#[derive(Debug, Clone, PartialEq)]
pub struct AnchorPredictions {
    /// Images in the batch, `B`.
    pub batch: usize,
    /// Anchors per image, `N`.
    pub anchors_per_image: usize,
    /// `[B·N]` face probabilities in [0, 1]; `f32::NEG_INFINITY` for anchors that can never
    /// be detections (SRN's dropped anchors).
    pub scores: Vec<f32>,
    /// `[B·N·4]` box deltas, encoded by `coder` against the anchors.
    pub box_deltas: Vec<f32>,
    /// `[B·N·10]` five-point landmark deltas, for families with a landmark head.
    pub landmark_deltas: Option<Vec<f32>>,
    /// `[B·N·P]` raw dense-branch outputs (RetinaFace's mesh branch), `P` per anchor.
    pub dense: Option<DenseRows<Vec<f32>>>,
    /// The anchors, `[N]` per image.
    pub anchors: BatchAnchors,
    /// The box coder of the family.
    pub coder: BoxCoder,
    /// The family's decoding rules.
    pub rules: DecodeRules,
    /// `(height, width)` of the input batch (boxes are clipped to it under
    /// [`DecodeRules::clip_to_input`]).
    pub input_size: (usize, usize),
}

/// Per-anchor rows of raw values: `values` is `[anchors · per_anchor]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DenseRows<V> {
    /// The values, anchor-major.
    pub values: V,
    /// Values per anchor, `P`.
    pub per_anchor: usize,
}

/// A tensor's values on the host, flattened: how families fill [`AnchorPredictions`].
pub(crate) fn host<B: KernelBackend, const D: usize>(tensor: Tensor<B, D>) -> Vec<f32> {
    tensor.into_data().into_vec().expect("f32 outputs")
}

/// Detections of every image of the batch, best first (pixels of the network input); the
/// images are post-processed side by side on rayon's threads.
pub fn postprocess(predictions: &AnchorPredictions, test: &TestSpec) -> Vec<Vec<Detection>> {
    let n = predictions.anchors_per_image;
    (0..predictions.batch)
        .into_par_iter()
        .map(|b| {
            select_detections(
                &ImagePredictions {
                    scores: &predictions.scores[b * n..(b + 1) * n],
                    box_deltas: &predictions.box_deltas[b * n * 4..(b + 1) * n * 4],
                    landmark_deltas: predictions
                        .landmark_deltas
                        .as_deref()
                        .map(|l| &l[b * n * 10..(b + 1) * n * 10]),
                    dense: predictions.dense.as_ref().map(|d| DenseRows {
                        values: &d.values[b * n * d.per_anchor..(b + 1) * n * d.per_anchor],
                        per_anchor: d.per_anchor,
                    }),
                    anchors: predictions.anchors.image(b),
                },
                &predictions.coder,
                &predictions.rules,
                test,
                predictions.input_size,
            )
        })
        .collect()
}

/// The predictions of one image: `scores` `[N]`, `box_deltas` `[N·4]`, `landmark_deltas`
/// `[N·10]` where predicted, `anchors` `[N]` xyxy pixels.
#[derive(Debug, Clone, Copy)]
pub struct ImagePredictions<'a> {
    /// `[N]` face probabilities.
    pub scores: &'a [f32],
    /// `[N·4]` encoded boxes.
    pub box_deltas: &'a [f32],
    /// `[N·10]` encoded landmarks.
    pub landmark_deltas: Option<&'a [f32]>,
    /// `[N·P]` raw dense-branch outputs, where predicted.
    pub dense: Option<DenseRows<&'a [f32]>>,
    /// `[N]` anchors, xyxy pixels.
    pub anchors: &'a [BoxXyxy],
}

/// Post-processing of one image: candidates passing the score threshold (per
/// `rules.score`), the best `test.pre_nms_top_k` of them, decoded (clamped per
/// `rules.clamp_size`, clipped to `input_size` = `(height, width)` per
/// `rules.clip_to_input`), NMS at `test.nms_threshold` (areas per `rules.nms_areas`), at
/// most `test.max_detections`, best first; landmarks decoded for the kept ones.
pub fn select_detections(
    image: &ImagePredictions,
    coder: &BoxCoder,
    rules: &DecodeRules,
    test: &TestSpec,
    input_size: (usize, usize),
) -> Vec<Detection> {
    let scores = image.scores;
    let candidates = best_first(
        scores,
        rules.score,
        test.score_threshold,
        test.pre_nms_top_k,
    );
    let (height, width) = (input_size.0 as f32, input_size.1 as f32);
    let mut kept = Vec::with_capacity(candidates.len());
    let mut boxes = Vec::with_capacity(candidates.len());
    for &i in &candidates {
        let d = &image.box_deltas[i * 4..i * 4 + 4];
        let delta = [d[0], d[1], d[2], d[3]];
        let decoded = if rules.clamp_size {
            coder.decode(&image.anchors[i], &delta)
        } else {
            coder.decode_unclamped(&image.anchors[i], &delta)
        };
        let bbox = if rules.clip_to_input {
            let [x1, y1, x2, y2] = decoded;
            let clipped = [
                x1.clamp(0.0, width),
                y1.clamp(0.0, height),
                x2.clamp(0.0, width),
                y2.clamp(0.0, height),
            ];
            if !(clipped[2] > clipped[0] && clipped[3] > clipped[1]) {
                continue;
            }
            clipped
        } else {
            decoded
        };
        kept.push(i);
        boxes.push(bbox);
    }
    let kept_scores: Vec<f32> = kept.iter().map(|&i| scores[i]).collect();
    let (nms_threshold, max_keep) = (test.nms_threshold, test.max_detections);
    let keep = match rules.nms_areas {
        NmsAreas::Continuous => nms_at_most(&boxes, &kept_scores, nms_threshold, max_keep),
        NmsAreas::PixelInclusive => {
            // py_cpu_nms measures areas as (x2 − x1 + 1)·(y2 − y1 + 1): shift the far corner.
            let inclusive: Vec<BoxXyxy> = boxes
                .iter()
                .map(|b| [b[0], b[1], b[2] + 1.0, b[3] + 1.0])
                .collect();
            nms_at_most(&inclusive, &kept_scores, nms_threshold, max_keep)
        }
    };
    keep.into_iter()
        .map(|k| {
            let i = kept[k];
            let landmarks = image.landmark_deltas.map(|marks| {
                let mut delta = [0.0f32; 10];
                delta.copy_from_slice(&marks[i * 10..i * 10 + 10]);
                coder.decode_landmarks(&image.anchors[i], &delta)
            });
            let mesh = image.dense.as_ref().map(|d| MeshParams {
                anchor: image.anchors[i],
                values: d.values[i * d.per_anchor..(i + 1) * d.per_anchor].to_vec(),
            });
            Detection {
                bbox: boxes[k],
                score: kept_scores[k],
                landmarks,
                mesh,
            }
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

    /// [`select_detections`] with visage's rules and no landmarks.
    fn visage(
        scores: &[f32],
        deltas: &[f32],
        anchors: &[BoxXyxy],
        test: &TestSpec,
        input_size: (usize, usize),
    ) -> Vec<Detection> {
        let image = ImagePredictions {
            scores,
            box_deltas: deltas,
            landmark_deltas: None,
            dense: None,
            anchors,
        };
        select_detections(&image, &coder(), &DecodeRules::VISAGE, test, input_size)
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
        let dets = visage(&scores, &deltas, &anchors, &test, (45, 45));
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
            mesh: Some(MeshParams {
                anchor: [8.0, 16.0, 32.0, 48.0],
                values: vec![0.5; 3],
            }),
        };
        let u = d.clone().unscaled(0.5);
        assert_eq!(u.bbox, [20.0, 40.0, 60.0, 80.0]);
        let mesh = u.mesh.clone().unwrap();
        assert_eq!(mesh.anchor, [16.0, 32.0, 64.0, 96.0]);
        assert_eq!(mesh.values, vec![0.5; 3]);
        assert_eq!(u.landmarks, Some([[24.0, 44.0]; 5]));
        assert_eq!(u.score, 0.5);
        assert_eq!(d.clone().unscaled(1.0), d);
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
            mesh: None,
        };
        let f = d.clone().flipped(100.0);
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
        let dets = visage(&scores, &deltas, &anchors, &test, (10, 400));
        assert_eq!(dets.len(), 5);
        assert!(dets.windows(2).all(|w| w[0].score >= w[1].score));
        assert!((dets[0].score - scores[19]).abs() < 1e-6);
        test.pre_nms_top_k = 100;
        test.max_detections = 3;
        let dets = visage(&scores, &deltas, &anchors, &test, (10, 400));
        assert_eq!(dets.len(), 3);
    }

    #[test]
    fn pytorch_retinaface_rules_are_strict_unclipped_pixel_inclusive_and_decode_landmarks() {
        // Anchor 0 scores exactly the threshold; anchors 1 and 2 overlap with IoU 0.4 in
        // continuous areas ([0, 0, 10, 10] vs [0, 0, 10, 4]: 40 / 100) and 55 / 121 ≈ 0.45
        // with the `+1` areas; anchor 3 sticks out of the 20 × 20 input.
        let anchors = [
            [0.0, 0.0, 4.0, 4.0],
            [0.0, 0.0, 10.0, 10.0],
            [0.0, 0.0, 10.0, 4.0],
            [12.0, 12.0, 30.0, 30.0],
        ];
        let scores = [0.5, 0.9, 0.8, 0.7];
        let deltas = [0.0; 16];
        let mut marks = vec![0.0f32; 40];
        marks[3 * 10] = 1.0; // anchor 3's first point moves by 0.1 · 18 px in x
        let test = TestSpec {
            score_threshold: 0.5,
            nms_threshold: 0.42,
            ..TestSpec::default()
        };
        let image = ImagePredictions {
            scores: &scores,
            box_deltas: &deltas,
            landmark_deltas: Some(&marks),
            dense: None,
            anchors: &anchors,
        };
        let ours = select_detections(&image, &coder(), &DecodeRules::VISAGE, &test, (20, 20));
        let port = select_detections(
            &image,
            &coder(),
            &DecodeRules::PYTORCH_RETINAFACE,
            &test,
            (20, 20),
        );
        // visage: anchor 0 passes (≥), 2 survives NMS at 0.42 (IoU 0.4), 3 is clipped.
        let scores_of = |d: &[Detection]| d.iter().map(|d| d.score).collect::<Vec<_>>();
        assert_eq!(scores_of(&ours), vec![0.9, 0.8, 0.7, 0.5]);
        assert_eq!(ours[2].bbox, [12.0, 12.0, 20.0, 20.0]);
        // detect.py: anchor 0 fails (>), 2 is suppressed (IoU ≈ 0.45), 3 keeps its extent.
        assert_eq!(scores_of(&port), vec![0.9, 0.7]);
        assert_eq!(port[1].bbox, anchors[3]);
        let points = port[1].landmarks.expect("landmarks decoded");
        assert!((points[0][0] - (21.0 + 1.8)).abs() < 1e-4, "{points:?}");
        assert_eq!(points[1], [21.0, 21.0]);
    }
}
