//! RetinaFace inference as Pytorch_Retinaface's `detect.py` does it: priors per level,
//! softmax face score, box and landmark decoding with variances, score threshold, top-k,
//! greedy NMS with its pixel-inclusive (`+1`) areas, and a final cap.

use burn::prelude::*;
use burn::tensor::activation::softmax;
use visage_boxes::{nms, BoxCoder, BoxXyxy};

use crate::RetinaFaceOutputs;

/// Test-time settings (defaults: `detect.py`'s).
#[derive(Debug, Clone, PartialEq)]
pub struct RetinaFaceTest {
    /// Anchor sides per level, finest first (Pytorch_Retinaface: `[[16, 32], [64, 128],
    /// [256, 512]]`).
    pub min_sizes: Vec<Vec<f32>>,
    /// Strides of the levels (`[8, 16, 32]`).
    pub steps: Vec<usize>,
    /// Box / landmark coding variances (`[0.1, 0.2]`).
    pub variances: [f32; 2],
    /// Faces need a score strictly above this (`--confidence_threshold 0.02`).
    pub score_threshold: f32,
    /// Candidates entering NMS (`--top_k 5000`).
    pub top_k: usize,
    /// NMS IoU threshold (`--nms_threshold 0.4`).
    pub nms_threshold: f32,
    /// Detections kept after NMS (`--keep_top_k 750`).
    pub keep: usize,
}

impl Default for RetinaFaceTest {
    fn default() -> Self {
        RetinaFaceTest {
            min_sizes: vec![vec![16.0, 32.0], vec![64.0, 128.0], vec![256.0, 512.0]],
            steps: vec![8, 16, 32],
            variances: [0.1, 0.2],
            score_threshold: 0.02,
            top_k: 5000,
            nms_threshold: 0.4,
            keep: 750,
        }
    }
}

/// One detected face.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceDetection {
    /// `[x1, y1, x2, y2]`, pixels of the network input.
    pub bbox: [f32; 4],
    /// Softmax face probability.
    pub score: f32,
    /// Left eye, right eye, nose, left and right mouth corner, `(x, y)` pixels.
    pub landmarks: [[f32; 2]; 5],
}

/// Pytorch_Retinaface's `PriorBox` in pixels: for each level `k` (feature map `h × w`), each
/// `y`, each `x`, each `min_sizes[k]` side `s`, the square of side `s` centred on
/// `((x + 0.5)·step, (y + 0.5)·step)`, as xyxy.
pub fn retinaface_priors(
    feature_sizes: &[(usize, usize)],
    min_sizes: &[Vec<f32>],
    steps: &[usize],
) -> Vec<BoxXyxy> {
    let mut priors = Vec::new();
    for (((h, w), sizes), &step) in feature_sizes.iter().zip(min_sizes).zip(steps) {
        for y in 0..*h {
            for x in 0..*w {
                let (cx, cy) = (
                    (x as f32 + 0.5) * step as f32,
                    (y as f32 + 0.5) * step as f32,
                );
                for &s in sizes {
                    priors.push([cx - s / 2.0, cy - s / 2.0, cx + s / 2.0, cy + s / 2.0]);
                }
            }
        }
    }
    priors
}

/// Detections per image, best first.
///
/// # Panics
/// If the outputs' prior count differs from the priors of `test` (a wrong `min_sizes`).
pub fn retinaface_detect<B: Backend>(
    outputs: &RetinaFaceOutputs<B>,
    test: &RetinaFaceTest,
) -> Vec<Vec<FaceDetection>> {
    let [batch, n, _] = outputs.boxes.dims();
    let priors = retinaface_priors(&outputs.feature_sizes, &test.min_sizes, &test.steps);
    assert_eq!(
        priors.len(),
        n,
        "RetinaFace: {n} outputs for {} priors",
        priors.len()
    );
    let scores: Vec<f32> = softmax(outputs.class_logits.clone(), 2)
        .narrow(2, 1, 1)
        .into_data()
        .to_vec()
        .expect("f32 scores");
    let deltas: Vec<f32> = outputs.boxes.clone().into_data().to_vec().expect("f32");
    let marks: Vec<f32> = outputs.landmarks.clone().into_data().to_vec().expect("f32");
    let coder = BoxCoder {
        variances: test.variances,
    };
    (0..batch)
        .map(|b| {
            let mut candidates: Vec<usize> = (0..n)
                .filter(|&i| scores[b * n + i] > test.score_threshold)
                .collect();
            candidates.sort_by(|&i, &j| scores[b * n + j].total_cmp(&scores[b * n + i]));
            candidates.truncate(test.top_k);
            let decoded: Vec<BoxXyxy> = candidates
                .iter()
                .map(|&i| {
                    let d = &deltas[(b * n + i) * 4..(b * n + i) * 4 + 4];
                    decode_unclamped(&coder, &priors[i], [d[0], d[1], d[2], d[3]])
                })
                .collect();
            // py_cpu_nms measures areas as (x2 − x1 + 1)·(y2 − y1 + 1): shift the far corner.
            let inclusive: Vec<BoxXyxy> = decoded
                .iter()
                .map(|b| [b[0], b[1], b[2] + 1.0, b[3] + 1.0])
                .collect();
            let cand_scores: Vec<f32> = candidates.iter().map(|&i| scores[b * n + i]).collect();
            let mut keep = nms(&inclusive, &cand_scores, test.nms_threshold);
            keep.truncate(test.keep);
            keep.into_iter()
                .map(|k| {
                    let i = candidates[k];
                    let m = &marks[(b * n + i) * 10..(b * n + i) * 10 + 10];
                    let mut delta = [0.0f32; 10];
                    delta.copy_from_slice(m);
                    FaceDetection {
                        bbox: decoded[k],
                        score: cand_scores[k],
                        landmarks: coder.decode_landmarks(&priors[i], &delta),
                    }
                })
                .collect()
        })
        .collect()
}

/// SSD decoding without the exponent clamp of [`BoxCoder::decode`] (Pytorch_Retinaface does
/// not clamp).
fn decode_unclamped(coder: &BoxCoder, prior: &BoxXyxy, d: [f32; 4]) -> BoxXyxy {
    let [v0, v1] = coder.variances;
    let (w, h) = (prior[2] - prior[0], prior[3] - prior[1]);
    let (cx, cy) = ((prior[0] + prior[2]) / 2.0, (prior[1] + prior[3]) / 2.0);
    let (cx, cy) = (cx + d[0] * v0 * w, cy + d[1] * v0 * h);
    let (w, h) = (w * (d[2] * v1).exp(), h * (d[3] * v1).exp());
    [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priors_follow_pytorch_retinaface_order() {
        let p = retinaface_priors(
            &[(2, 3), (1, 2), (1, 1)],
            &RetinaFaceTest::default().min_sizes,
            &[8, 16, 32],
        );
        assert_eq!(p.len(), (6 + 2 + 1) * 2);
        // Level 0, y 0, x 0: sides 16 then 32 around (4, 4).
        assert_eq!(p[0], [-4.0, -4.0, 12.0, 12.0]);
        assert_eq!(p[1], [-12.0, -12.0, 20.0, 20.0]);
        // Level 0, y 0, x 1: centre (12, 4).
        assert_eq!(p[2], [4.0, -4.0, 20.0, 12.0]);
        // Level 0, y 1, x 0: centre (4, 12).
        assert_eq!(p[6], [-4.0, 4.0, 12.0, 20.0]);
        // Level 2: side 256 around (16, 16).
        assert_eq!(p[16], [-112.0, -112.0, 144.0, 144.0]);
    }
}
