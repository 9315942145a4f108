//! SRN's training loss (Chi et al. 2019, eq. 1), four parts:
//! - `cls_first`: sigmoid focal loss of the first step on the STC levels, anchors matched
//!   with `[model.stc.assign]` (SRN: 0.7 / 0.3), normalised by those positives;
//! - `box_first`: box loss of the first step on the STR levels, anchors matched with
//!   `[model.assign]`, normalised by those positives;
//! - `cls`, `box`: the second step on every level, matched with `[model.assign]` against the
//!   second-step anchors (refined on the STR levels; on the STC levels, anchors whose
//!   first-step probability is below `stc.drop_score` take no part in the matching or the
//!   loss), normalised by the second step's positives.
//!
//! `total = cls_first + box_weight · box_first + cls + box_weight · box`. Both steps use
//! `[model.loss]` (focal α, γ; smooth-L1 for SRN, −ln IoU for AInnoFace). The paper
//! normalises each step by its positive count (N_s1, N_s2); here the first step's two parts
//! are each normalised by the positives of their own matching, since they are matched on
//! different levels with different thresholds.

use burn::prelude::*;
use visage_kernels::KernelBackend;

use super::steps::FirstStep;
use super::{Srn, SrnOutputs};
use crate::common::loss::{box_loss, classification_loss};
use crate::common::shards::{LossTerm, Normaliser};
use crate::common::targets::{check_fit, DenseTargets, FaceTargets};
use crate::error::ModelError;
use crate::family::FaceLoss;

/// The named parts of SRN's loss of one batch (scalars `[1]`, differentiable).
#[derive(Debug, Clone)]
pub struct SrnLoss<B: Backend> {
    /// First-step focal loss on the STC levels (0 without STC).
    pub first_classification: Tensor<B, 1>,
    /// First-step box loss on the STR levels, before `box_weight` (0 without STR).
    pub first_box_regression: Tensor<B, 1>,
    /// Second-step focal loss.
    pub classification: Tensor<B, 1>,
    /// Second-step box loss, before `box_weight`.
    pub box_regression: Tensor<B, 1>,
    /// What is minimised.
    pub total: Tensor<B, 1>,
    /// Positive anchors of the second step in the batch.
    pub num_positive: usize,
    /// The weight and normalisation of each part of [`named_parts`](Self::named_parts).
    pub terms: Vec<LossTerm>,
}

impl<B: KernelBackend> SrnLoss<B> {
    /// The parts by name: `cls_first`, `box_first`, `cls`, `box`.
    pub fn named_parts(&self) -> Vec<(&'static str, Tensor<B, 1>)> {
        vec![
            ("cls_first", self.first_classification.clone()),
            ("box_first", self.first_box_regression.clone()),
            ("cls", self.classification.clone()),
            ("box", self.box_regression.clone()),
        ]
    }
}

impl<B: KernelBackend> From<SrnLoss<B>> for FaceLoss<B> {
    fn from(loss: SrnLoss<B>) -> Self {
        FaceLoss {
            parts: loss.named_parts(),
            total: loss.total,
            num_positive: loss.num_positive,
            terms: loss.terms,
        }
    }
}

/// The matching of a batch for both steps.
#[derive(Debug, Clone, PartialEq)]
pub struct SrnTargets {
    /// First step on the STC levels (`N_stc` anchors per image).
    pub first_cls: DenseTargets,
    /// First step on the STR levels (`N_str` anchors per image).
    pub first_box: DenseTargets,
    /// Second step on every level (`N` per image; dropped anchors ignored).
    pub second: DenseTargets,
}

impl<B: KernelBackend> Srn<B> {
    /// Matches the faces of each image (boxes xyxy in input pixels) for both steps, reading
    /// the first step's outputs (not differentiated) for the second step's anchors and drops.
    pub fn targets(
        &self,
        outputs: &SrnOutputs<B>,
        faces: &[FaceTargets],
    ) -> Result<SrnTargets, ModelError> {
        let [batch, n, _] = outputs.cls_logits.dims();
        let anchors = self.anchors(outputs);
        check_fit(faces, batch, anchors.boxes.len(), n)?;
        let policy = &self.policy;
        let split = policy.split(&anchors);
        let (stc, str) = split;
        let first_cls = DenseTargets::build(
            &anchors.boxes[..stc],
            faces,
            &policy.stc_assigner,
            &policy.coder,
        );
        let first_box = DenseTargets::build(
            &anchors.boxes[n - str..],
            faces,
            &policy.assigner,
            &policy.coder,
        );
        let first = FirstStep::read(outputs);
        let mut second = DenseTargets::ignoring_all(n, batch);
        for (b, image) in faces.iter().enumerate() {
            let (first_scores, first_deltas) = first.image(b, split);
            let second_anchors = policy.second_step_anchors(&anchors.boxes, first_deltas);
            let keep = policy.kept(n, first_scores);
            let subset: Vec<usize> = (0..n).filter(|&a| keep[a]).collect();
            let subset = (subset.len() < n).then_some(subset.as_slice());
            second.assign_image(
                b,
                &second_anchors,
                subset,
                &image.boxes,
                &policy.assigner,
                &policy.coder,
            );
        }
        Ok(SrnTargets {
            first_cls,
            first_box,
            second,
        })
    }

    /// The training loss of `outputs` against the faces of each image of the batch, part by
    /// part.
    pub fn loss_parts(
        &self,
        outputs: &SrnOutputs<B>,
        faces: &[FaceTargets],
    ) -> Result<SrnLoss<B>, ModelError> {
        let targets = self.targets(outputs, faces)?;
        Ok(self.loss_from_targets(outputs, &targets))
    }

    /// The loss against precomputed [`SrnTargets`].
    pub fn loss_from_targets(&self, outputs: &SrnOutputs<B>, targets: &SrnTargets) -> SrnLoss<B> {
        let spec = &self.policy.spec.loss;
        let coder = &self.policy.coder;
        let normalizer = |t: &DenseTargets| t.num_positive().max(1) as f32;
        // A step part that does not exist is a zero tied to the graph.
        let zero = || outputs.cls_logits.clone().sum() * 0.0;
        let first_classification = match &outputs.first_cls_logits {
            Some(logits) => classification_loss(
                logits,
                &targets.first_cls,
                spec,
                normalizer(&targets.first_cls),
            ),
            None => zero(),
        };
        let first_box_regression = match &outputs.first_box_deltas {
            Some(deltas) => box_loss(
                deltas,
                &targets.first_box,
                spec,
                coder,
                normalizer(&targets.first_box),
            ),
            None => zero(),
        };
        let second = &targets.second;
        let classification =
            classification_loss(&outputs.cls_logits, second, spec, normalizer(second));
        let box_regression = box_loss(&outputs.box_deltas, second, spec, coder, normalizer(second));
        let total = first_classification.clone()
            + first_box_regression.clone() * spec.box_weight
            + classification.clone()
            + box_regression.clone() * spec.box_weight;
        let count = |t: &DenseTargets| Normaliser::Count(t.num_positive());
        SrnLoss {
            first_classification,
            first_box_regression,
            classification,
            box_regression,
            total,
            num_positive: second.num_positive(),
            terms: vec![
                LossTerm::new(1.0, count(&targets.first_cls)),
                LossTerm::new(spec.box_weight, count(&targets.first_box)),
                LossTerm::new(1.0, count(second)),
                LossTerm::new(spec.box_weight, count(second)),
            ],
        }
    }
}
