//! RetinaFace's training loss as Pytorch_Retinaface's `MultiBoxLoss` computes it:
//!
//! - priors matched to faces by `match()`: IoU ≥ 0.35 positive, each face's best prior forced
//!   positive, every other prior negative (no ignore band);
//! - classification: 2-way softmax cross-entropy over the positives and the hardest negatives,
//!   `neg_pos_ratio` (7) per positive in each image (OHEM; an image without positives adds
//!   nothing), summed and divided by the positives of the batch;
//! - boxes: smooth-L1 (β = 1) of the encoded deltas of the positives, summed, / positives;
//! - landmarks: smooth-L1 of the encoded points of the positives whose face has landmarks,
//!   summed, / those positives (faces without landmarks count for box and class only);
//! - total = `box_weight · box + cls_weight · cls + landmark_weight · landmark` (2, 1, 1).

use burn::prelude::*;
use burn::tensor::TensorData;
use visage_anchors::{AnchorMatch, MaxIouAssigner};
use visage_boxes::{BoxCoder, BoxXyxy};
use visage_kernels::KernelBackend;
use visage_losses::{smooth_l1, softmax_cross_entropy_ohem};

use super::net::RetinaFaceOutputs;
use super::spec::RetinaFaceLossSpec;
use crate::common::loss::LossValues;
use crate::common::shards::{LossTerm, Normaliser};
use crate::common::targets::FaceTargets;
use crate::error::ModelError;
use crate::family::FaceLoss;

/// Per-prior training targets of a batch, flattened image-major (`b · N + n`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetinaFaceTargets {
    /// Priors per image, `N`.
    pub priors_per_image: usize,
    /// `[B·N]`: 1 for a positive prior, 0 otherwise.
    pub labels: Vec<i64>,
    /// `[B·N]`: false for priors excluded from the classification loss.
    pub valid: Vec<bool>,
    /// Flat index of each positive, increasing.
    pub positive_index: Vec<usize>,
    /// For each positive: its face encoded against the prior.
    pub box_deltas: Vec<[f32; 4]>,
    /// Flat index of each positive whose face has landmarks, increasing.
    pub landmark_index: Vec<usize>,
    /// For each of those: the five points encoded against the prior.
    pub landmark_deltas: Vec<[f32; 10]>,
}

impl RetinaFaceTargets {
    /// Matches every image's faces to the priors (xyxy pixels of the input, shared by the
    /// batch) and encodes the positives' boxes and landmarks.
    ///
    /// # Errors
    /// [`ModelError::InvalidInput`] if an image's `landmarks` is neither empty nor one entry
    /// per box.
    pub fn build(
        priors: &[BoxXyxy],
        faces: &[FaceTargets],
        assigner: &MaxIouAssigner,
        coder: &BoxCoder,
    ) -> Result<Self, ModelError> {
        let n = priors.len();
        let mut t = RetinaFaceTargets {
            priors_per_image: n,
            labels: vec![0; n * faces.len()],
            valid: vec![true; n * faces.len()],
            ..Default::default()
        };
        for (b, image) in faces.iter().enumerate() {
            if !image.landmarks.is_empty() && image.landmarks.len() != image.boxes.len() {
                return Err(ModelError::InvalidInput(format!(
                    "image {b}: {} landmark entries for {} boxes",
                    image.landmarks.len(),
                    image.boxes.len()
                )));
            }
            let assignment = assigner.assign(priors, &image.boxes);
            for (p, m) in assignment.matches.iter().enumerate() {
                let flat = b * n + p;
                match *m {
                    AnchorMatch::Positive { face, .. } => {
                        t.labels[flat] = 1;
                        t.positive_index.push(flat);
                        t.box_deltas
                            .push(coder.encode(&priors[p], &image.boxes[face]));
                        if let Some(Some(points)) = image.landmarks.get(face) {
                            t.landmark_index.push(flat);
                            t.landmark_deltas
                                .push(coder.encode_landmarks(&priors[p], points));
                        }
                    }
                    AnchorMatch::Negative => {}
                    AnchorMatch::Ignored => t.valid[flat] = false,
                }
            }
        }
        Ok(t)
    }

    /// Positive priors over the batch.
    pub fn num_positive(&self) -> usize {
        self.positive_index.len()
    }
}

/// The named parts of RetinaFace's loss of one batch (scalars `[1]`, differentiable).
#[derive(Debug, Clone)]
pub struct RetinaFaceLoss<B: Backend> {
    /// OHEM softmax cross-entropy / max(1, positives).
    pub classification: Tensor<B, 1>,
    /// Box smooth-L1 / max(1, positives), before its weight.
    pub box_regression: Tensor<B, 1>,
    /// Landmark smooth-L1 / max(1, positives with landmarks), before its weight.
    pub landmarks: Tensor<B, 1>,
    /// `L_pixel` of the mesh branch (`[model.mesh]`), before its weight.
    pub pixel: Option<Tensor<B, 1>>,
    /// The weighted sum: what is minimised.
    pub total: Tensor<B, 1>,
    /// Positive priors in the batch.
    pub num_positive: usize,
    /// Positive priors whose face has landmarks.
    pub num_landmark_positive: usize,
    /// The weight and normalisation of each part of [`named_parts`](Self::named_parts).
    pub terms: Vec<LossTerm>,
}

impl<B: KernelBackend> RetinaFaceLoss<B> {
    /// The parts by name: `cls`, `box`, `landmark`, and `pixel` with the mesh branch.
    pub fn named_parts(&self) -> Vec<(&'static str, Tensor<B, 1>)> {
        let mut parts = vec![
            ("cls", self.classification.clone()),
            ("box", self.box_regression.clone()),
            ("landmark", self.landmarks.clone()),
        ];
        if let Some(pixel) = &self.pixel {
            parts.push(("pixel", pixel.clone()));
        }
        parts
    }

    /// The loss with the mesh branch's `L_pixel` (a mean over `faces` rendered faces) added
    /// to the total with `weight`.
    pub fn with_pixel(mut self, pixel: Tensor<B, 1>, weight: f32, faces: usize) -> Self {
        self.total = self.total + pixel.clone() * weight;
        self.pixel = Some(pixel);
        self.terms
            .push(LossTerm::new(weight, Normaliser::Count(faces)));
        self
    }

    /// Reads the scalars back (parts `cls`, `box`, `landmark`); errors when any is not finite.
    pub fn values(&self) -> Result<LossValues, ModelError> {
        let parts = self.named_parts();
        let parts: Vec<(&'static str, &Tensor<B, 1>)> =
            parts.iter().map(|(name, t)| (*name, t)).collect();
        LossValues::read(&self.total, &parts, self.num_positive)
    }
}

impl<B: KernelBackend> From<RetinaFaceLoss<B>> for FaceLoss<B> {
    fn from(loss: RetinaFaceLoss<B>) -> Self {
        FaceLoss {
            parts: loss.named_parts(),
            total: loss.total,
            num_positive: loss.num_positive,
            terms: loss.terms,
        }
    }
}

/// Smooth-L1 summed over the rows `index` of `predicted` (`[B·N, K]` after reshaping)
/// against `targets`, divided by `max(1, rows)`; a connected zero when there are no rows.
fn regression<B: KernelBackend, const K: usize>(
    predicted: &Tensor<B, 3>,
    index: &[usize],
    targets: &[[f32; K]],
    beta: f32,
) -> Tensor<B, 1> {
    let device = predicted.device();
    if index.is_empty() {
        // Keep the graph connected so every head parameter still gets a (zero) gradient.
        return predicted.clone().sum() * 0.0;
    }
    let [batch, n, _] = predicted.dims();
    let rows = index.len();
    let index: Vec<i32> = index.iter().map(|&i| i as i32).collect();
    let index = Tensor::<B, 1, Int>::from_data(TensorData::new(index, [rows]), &device);
    let selected = predicted.clone().reshape([batch * n, K]).select(0, index);
    let flat: Vec<f32> = targets.iter().flatten().copied().collect();
    let targets = Tensor::<B, 2>::from_data(TensorData::new(flat, [rows, K]), &device);
    smooth_l1(selected, targets, beta).sum() / rows as f32
}

/// The loss of `outputs` against precomputed targets (see the module doc).
///
/// # Panics
/// If the targets were built for another batch or prior count.
pub fn retinaface_loss<B: KernelBackend>(
    outputs: &RetinaFaceOutputs<B>,
    targets: &RetinaFaceTargets,
    spec: &RetinaFaceLossSpec,
) -> RetinaFaceLoss<B> {
    let device = outputs.class_logits.device();
    let [batch, n, _] = outputs.class_logits.dims();
    assert_eq!(
        (targets.priors_per_image, targets.labels.len()),
        (n, batch * n),
        "targets built for another batch"
    );
    let labels = Tensor::<B, 2, Int>::from_data(
        TensorData::new(targets.labels.clone(), [batch, n]),
        &device,
    );
    let valid = Tensor::<B, 2, Bool>::from_data(
        TensorData::new(targets.valid.clone(), [batch, n]),
        &device,
    );
    let ohem = softmax_cross_entropy_ohem(
        outputs.class_logits.clone(),
        labels,
        valid,
        spec.neg_pos_ratio,
        0,
    );
    let num_positive = targets.num_positive();
    let classification = ohem.loss_sum / num_positive.max(1) as f32;
    let box_regression = regression(
        &outputs.boxes,
        &targets.positive_index,
        &targets.box_deltas,
        spec.smooth_l1_beta,
    );
    let landmarks = regression(
        &outputs.landmarks,
        &targets.landmark_index,
        &targets.landmark_deltas,
        spec.smooth_l1_beta,
    );
    let total = box_regression.clone() * spec.box_weight
        + classification.clone() * spec.cls_weight
        + landmarks.clone() * spec.landmark_weight;
    RetinaFaceLoss {
        classification,
        box_regression,
        landmarks,
        pixel: None,
        total,
        num_positive,
        num_landmark_positive: targets.landmark_index.len(),
        terms: vec![
            LossTerm::new(spec.cls_weight, Normaliser::Count(num_positive)),
            LossTerm::new(spec.box_weight, Normaliser::Count(num_positive)),
            LossTerm::new(
                spec.landmark_weight,
                Normaliser::Count(targets.landmark_index.len()),
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    fn assigner() -> MaxIouAssigner {
        MaxIouAssigner {
            positive_iou: 0.35,
            negative_iou: 0.35,
            force_best: true,
            force_best_min_iou: 0.2,
        }
    }

    /// Three priors: side 16 around (4, 4), side 64 around (8, 8), side 256 around (16, 16).
    fn priors() -> Vec<BoxXyxy> {
        vec![
            [-4.0, -4.0, 12.0, 12.0],
            [-24.0, -24.0, 40.0, 40.0],
            [-112.0, -112.0, 144.0, 144.0],
        ]
    }

    /// The first prior shifted right by 1.6 px: deltas (1, 0, 0, 0) with variance 0.1.
    fn face(with_landmarks: bool) -> FaceTargets {
        let centre = [4.0 + 1.6, 4.0];
        FaceTargets {
            boxes: vec![[-4.0 + 1.6, -4.0, 12.0 + 1.6, 12.0]],
            landmarks: vec![with_landmarks.then_some([centre; 5])],
        }
    }

    /// Zero outputs: logits (0, 0) give ln 2 per prior; zero deltas.
    fn zeros(n: usize) -> RetinaFaceOutputs<Flex> {
        let device = Default::default();
        RetinaFaceOutputs {
            boxes: Tensor::zeros([1, n, 4], &device),
            class_logits: Tensor::zeros([1, n, 2], &device),
            landmarks: Tensor::zeros([1, n, 10], &device),
            feature_sizes: vec![(1, 1); 3],
            input_size: (8, 8),
            dense: None,
            images: None,
        }
    }

    fn loss_of(face: FaceTargets) -> LossValues {
        let targets =
            RetinaFaceTargets::build(&priors(), &[face], &assigner(), &BoxCoder::default())
                .unwrap();
        retinaface_loss(&zeros(3), &targets, &RetinaFaceLossSpec::default())
            .values()
            .unwrap()
    }

    #[test]
    fn values_by_hand() {
        // Prior 0 overlaps the face with IoU 230.4 / 281.6 = 0.82: the one positive; the
        // other two are the (at most 7) mined negatives. cls = 3 ln 2 / 1; box: smooth-L1 of
        // a unit error = 0.5; landmarks: five x offsets of 1.6 px = 1 unit each, 5 · 0.5.
        let v = loss_of(face(true));
        let ln2 = std::f32::consts::LN_2;
        assert_eq!(v.num_positive, 1);
        assert!((v.part("cls").unwrap() - 3.0 * ln2).abs() < 1e-5, "{v:?}");
        assert!((v.part("box").unwrap() - 0.5).abs() < 1e-5, "{v:?}");
        assert!((v.part("landmark").unwrap() - 2.5).abs() < 1e-5, "{v:?}");
        assert!(
            (v.total - (2.0 * 0.5 + 3.0 * ln2 + 2.5)).abs() < 1e-4,
            "{v:?}"
        );
    }

    #[test]
    fn faces_without_landmarks_add_no_landmark_loss() {
        let with = loss_of(face(true));
        let without = loss_of(face(false));
        assert_eq!(without.part("landmark"), Some(0.0));
        assert_eq!(without.part("cls"), with.part("cls"));
        assert_eq!(without.part("box"), with.part("box"));
        // No landmark entries at all is the same as `None` for every face.
        let mut bare = face(true);
        bare.landmarks.clear();
        assert_eq!(loss_of(bare), without);
    }

    #[test]
    fn an_image_without_faces_adds_nothing_and_bad_landmarks_are_an_error() {
        let v = loss_of(FaceTargets::default());
        assert_eq!((v.total, v.num_positive), (0.0, 0));
        let mut bad = face(true);
        bad.landmarks.push(None);
        let err = RetinaFaceTargets::build(&priors(), &[bad], &assigner(), &BoxCoder::default());
        assert!(matches!(err, Err(ModelError::InvalidInput(_))));
    }
}
