//! The detector's training loss: sigmoid focal loss on every non-ignored anchor and a box
//! loss on the positives, both normalised by the number of positives of the batch; with
//! `[model.attention]` (FAN), a pixel-wise sigmoid cross-entropy of each level's attention
//! logits against its mask (see [`crate::AttentionAssigner`]), averaged over the pixels of
//! each level (and the images of the batch), then over the levels, as FAN's public code
//! (`LevelAttention_loss`: `binary_cross_entropy` per image and level, mean over levels and
//! images). Unlike the public code, images without faces count too (their masks are empty),
//! so the attention learns to stay low on faceless images; the paper is silent on this.
//!
//! With `[model.segmentation]` (DF²S², §3.4: `L = Σ_k L_cls + λ1 Σ_k L_reg + λ2 Σ_k
//! L_s(m_k, m_k*)`), the segmentation part is the pixel-wise sigmoid cross-entropy of each
//! level's segmentation logits against its box-filled mask, averaged over the level's pixels
//! (and the images of the batch) and SUMMED over the levels as the paper's `Σ_k`; the paper
//! does not say how `L_s` is normalised within a level (its Detectron code base's
//! `SigmoidCrossEntropyLoss` averages over the elements). Classification and box parts are
//! normalised by the positives of the whole batch (RetinaNet), not per level (the paper's
//! `1/N_k`): with the focal loss, per-level normalisation would weigh a level with one
//! positive as much as one with hundreds.

use burn::prelude::*;
use burn::tensor::TensorData;
use visage_kernels::KernelBackend;
use visage_losses::sigmoid_cross_entropy;

use super::attention_targets::{AttentionAssigner, AttentionTargets};
use super::{RetinaNet, RetinaNetOutputs};
use crate::common::loss::{box_loss, classification_loss, LossValues};
use crate::common::shards::{LossTerm, Normaliser};
use crate::common::targets::{check_fit, DenseTargets, FaceTargets};
use crate::error::ModelError;
use crate::family::FaceLoss;

/// The targets of a RetinaNet-family batch: the per-anchor matching, and the per-level
/// masks of FAN's attention and DF²S²'s segmentation where the spec has them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetinaNetTargets {
    /// Per-anchor labels, weights and box targets.
    pub dense: DenseTargets,
    /// FAN's attention masks, with `[model.attention]`.
    pub attention: Option<AttentionTargets>,
    /// DF²S²'s segmentation masks, with `[model.segmentation]`.
    pub segmentation: Option<AttentionTargets>,
}

/// The named parts of the loss of one batch (scalars `[1]`, differentiable).
#[derive(Debug, Clone)]
pub struct RetinaNetLoss<B: Backend> {
    /// Focal loss over positive and negative anchors / max(1, positives).
    pub classification: Tensor<B, 1>,
    /// Box loss over positive anchors / max(1, positives), before `box_weight`.
    pub box_regression: Tensor<B, 1>,
    /// FAN's attention loss (mean sigmoid cross-entropy per level, averaged over levels),
    /// before `model.attention.loss_weight`; `None` without `[model.attention]`.
    pub attention: Option<Tensor<B, 1>>,
    /// DF²S²'s segmentation loss (mean sigmoid cross-entropy per level, summed over levels),
    /// before `model.segmentation.loss_weight` (λ2); `None` without `[model.segmentation]`.
    pub segmentation: Option<Tensor<B, 1>>,
    /// `classification + box_weight · box_regression (+ attention weight · attention
    /// + λ2 · segmentation)`: what is minimised.
    pub total: Tensor<B, 1>,
    /// Positive anchors in the batch.
    pub num_positive: usize,
    /// The weight and normalisation of each part of [`named_parts`](Self::named_parts).
    pub terms: Vec<LossTerm>,
}

impl<B: KernelBackend> RetinaNetLoss<B> {
    /// The named parts before their weights: `cls`, `box`, `attn` with attention, `seg` with
    /// segmentation.
    pub fn named_parts(&self) -> Vec<(&'static str, Tensor<B, 1>)> {
        let mut parts = vec![
            ("cls", self.classification.clone()),
            ("box", self.box_regression.clone()),
        ];
        if let Some(attention) = &self.attention {
            parts.push(("attn", attention.clone()));
        }
        if let Some(segmentation) = &self.segmentation {
            parts.push(("seg", segmentation.clone()));
        }
        parts
    }

    /// Reads the scalars back to the host (parts `cls`, `box`, `attn` with attention, `seg`
    /// with segmentation);
    /// errors when any is NaN or infinite.
    pub fn values(&self) -> Result<LossValues, ModelError> {
        let parts = self.named_parts();
        let parts: Vec<(&'static str, &Tensor<B, 1>)> =
            parts.iter().map(|(name, t)| (*name, t)).collect();
        LossValues::read(&self.total, &parts, self.num_positive)
    }
}

impl<B: KernelBackend> From<RetinaNetLoss<B>> for FaceLoss<B> {
    fn from(loss: RetinaNetLoss<B>) -> Self {
        FaceLoss {
            parts: loss.named_parts(),
            total: loss.total,
            num_positive: loss.num_positive,
            terms: loss.terms,
        }
    }
}

impl<B: KernelBackend> RetinaNet<B> {
    /// The training loss of `outputs` against the faces of each image of the batch
    /// (`faces.len()` must equal the batch size; boxes xyxy in input pixels), part by part.
    pub fn loss_parts(
        &self,
        outputs: &RetinaNetOutputs<B>,
        faces: &[FaceTargets],
    ) -> Result<RetinaNetLoss<B>, ModelError> {
        let [batch, n, _] = outputs.cls_logits.dims();
        let anchors = self.anchors(outputs);
        check_fit(faces, batch, anchors.boxes.len(), n)?;
        let dense = DenseTargets::build(
            &anchors.boxes,
            faces,
            &self.policy.assigner,
            &self.policy.coder,
        );
        let masks = |assigner: &Option<AttentionAssigner>| {
            assigner
                .as_ref()
                .map(|a| a.build(faces, &outputs.feature_sizes, &dense))
        };
        let targets = RetinaNetTargets {
            attention: masks(&self.policy.attention),
            segmentation: masks(&self.policy.segmentation),
            dense,
        };
        Ok(self.loss_from_targets(outputs, &targets))
    }

    /// The loss against precomputed [`RetinaNetTargets`] (with `[model.attention]`, their
    /// `attention` masks, with `[model.segmentation]` their `segmentation` masks, as
    /// [`loss_parts`](Self::loss_parts) fills them).
    ///
    /// # Panics
    /// If the outputs carry attention (segmentation) logits but the targets no attention
    /// (segmentation) masks, or the masks do not fit the logits.
    pub fn loss_from_targets(
        &self,
        outputs: &RetinaNetOutputs<B>,
        targets: &RetinaNetTargets,
    ) -> RetinaNetLoss<B> {
        let spec = &self.policy.spec.loss;
        let dense = &targets.dense;
        let num_positive = dense.num_positive();
        let normalizer = num_positive.max(1) as f32;
        let classification = classification_loss(&outputs.cls_logits, dense, spec, normalizer);
        let box_regression = box_loss(
            &outputs.box_deltas,
            dense,
            spec,
            &self.policy.coder,
            normalizer,
        );
        let mut total = classification.clone() + box_regression.clone() * spec.box_weight;
        let attention = outputs.attention_logits.as_ref().map(|logits| {
            let masks = targets.attention.as_ref().expect(
                "attention logits need attention targets (RetinaNet::loss_parts builds them)",
            );
            mask_loss(logits, masks, LevelReduction::Mean)
        });
        if let (Some(attention), Some(config)) = (&attention, &self.policy.spec.attention) {
            total = total + attention.clone() * config.loss_weight;
        }
        let segmentation = outputs.segmentation_logits.as_ref().map(|logits| {
            let masks = targets.segmentation.as_ref().expect(
                "segmentation logits need segmentation targets (RetinaNet::loss_parts builds them)",
            );
            mask_loss(logits, masks, LevelReduction::Sum)
        });
        if let (Some(segmentation), Some(config)) = (&segmentation, &self.policy.spec.segmentation)
        {
            total = total + segmentation.clone() * config.loss_weight;
        }
        let images = outputs.cls_logits.dims()[0];
        let mut terms = vec![
            LossTerm::new(1.0, Normaliser::Count(num_positive)),
            LossTerm::new(spec.box_weight, Normaliser::Count(num_positive)),
        ];
        let mask_weight =
            |config: Option<f32>| LossTerm::new(config.unwrap_or(0.0), Normaliser::Images(images));
        if attention.is_some() {
            terms.push(mask_weight(
                self.policy.spec.attention.as_ref().map(|c| c.loss_weight),
            ));
        }
        if segmentation.is_some() {
            terms.push(mask_weight(
                self.policy
                    .spec
                    .segmentation
                    .as_ref()
                    .map(|c| c.loss_weight),
            ));
        }
        RetinaNetLoss {
            classification,
            box_regression,
            attention,
            segmentation,
            total,
            num_positive,
            terms,
        }
    }
}

/// How the per-level mask losses combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LevelReduction {
    /// The mean over levels (FAN's public code).
    Mean,
    /// The sum over levels (DF²S²'s `Σ_k`).
    Sum,
}

/// A per-level mask loss (FAN's attention, DF²S²'s segmentation): per level, the mean
/// sigmoid cross-entropy over the `B · H_l · W_l` pixels; then the mean or the sum over
/// levels.
///
/// # Shapes
/// - `logits`: one `[B, 1, H_l, W_l]` per level; `masks` the same sizes.
/// - returns `[1]`.
fn mask_loss<B: KernelBackend>(
    logits: &[Tensor<B, 4>],
    masks: &AttentionTargets,
    reduction: LevelReduction,
) -> Tensor<B, 1> {
    assert_eq!(logits.len(), masks.masks.len(), "one mask per level");
    let levels = match reduction {
        LevelReduction::Mean => logits.len().max(1) as f32,
        LevelReduction::Sum => 1.0,
    };
    logits
        .iter()
        .zip(&masks.masks)
        .map(|(logit, mask)| {
            let dims = logit.dims();
            let target =
                Tensor::<B, 4>::from_data(TensorData::new(mask.clone(), dims), &logit.device());
            sigmoid_cross_entropy(logit.clone(), target).mean()
        })
        .reduce(|a, b| a + b)
        .map(|sum| sum / levels)
        .expect("a detector has at least one pyramid level")
}

#[cfg(test)]
#[path = "loss_tests.rs"]
mod tests;
