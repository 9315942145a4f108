//! SRN (Chi et al. 2019, "Selective Refinement Network for High Performance Face
//! Detection") and AInnoFace: a ResNet, SRN's two feature sets (first step: 1×1 projections
//! of C2..C7; second step: FPN P2..P7), one class / box head with RFE applied to both with
//! shared weights, and the selective two-step policy:
//! - **STC** on the `stc.levels` finest levels: the first step classifies their anchors; in
//!   the second step, anchors whose first-step face probability is below `stc.drop_score`
//!   are dropped (never detections at inference, no part in training);
//! - **STR** on the `str.levels` coarsest levels: the first step regresses their anchors;
//!   the second step is matched to, and decoded from, those refined anchors.
//!
//! Box format: `[x1, y1, x2, y2]` pixels of the network input. Anchor order: level, then y,
//! then x, then anchor, as everywhere in visage.
//!
//! Files: [`spec`] (the `[model]` table and its components), `steps` (the two-step policy),
//! [`loss`].

pub mod loss;
pub mod spec;
mod steps;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use visage_anchors::{AnchorGenerator, Anchors};
use visage_backbone::Backbone;
use visage_boxes::BoxCoder;
use visage_heads::{flatten_levels, SrnHead};
use visage_kernels::KernelBackend;
use visage_neck::SrnNeck;

pub use loss::{SrnLoss, SrnTargets};
pub use spec::{SrnHeadSpec, SrnNeckSpec, SrnSpec, StcSpec, StrSpec, SRN_MAX_LEVEL};

use self::steps::{FirstStep, SrnPolicy};
use crate::common::postprocess::{host, AnchorPredictions, BatchAnchors, DecodeRules};
use crate::common::targets::FaceTargets;
use crate::error::ModelError;
use crate::family::{DetectorFamily, FaceLoss};

/// An SRN-family face detector.
#[derive(Module, Debug)]
pub struct Srn<B: Backend> {
    /// ResNet (or MobileNet from stride 8) returning C_min..C5.
    pub backbone: Backbone<B>,
    /// C6, C7, the first-step projections and the second-step FPN.
    pub neck: SrnNeck<B>,
    /// The class / box branches, shared by every level of both steps.
    pub head: SrnHead<B>,
    #[module(skip)]
    pub(crate) policy: SrnPolicy,
}

/// Raw outputs of a batch. `N` anchors per image over all levels, flattened in anchor order;
/// `N_stc` of them on the STC levels (a prefix), `N_str` on the STR levels (a suffix).
#[derive(Debug, Clone)]
pub struct SrnOutputs<B: Backend> {
    /// `[B, N_stc, 1]` first-step face logits of the STC levels; `None` with `stc.levels = 0`.
    pub first_cls_logits: Option<Tensor<B, 3>>,
    /// `[B, N_str, 4]` first-step box deltas of the STR levels (relative to the anchors);
    /// `None` with `str.levels = 0`.
    pub first_box_deltas: Option<Tensor<B, 3>>,
    /// `[B, N, 1]` second-step face logits.
    pub cls_logits: Tensor<B, 3>,
    /// `[B, N, 4]` second-step box deltas, relative to the anchors on the other levels and to
    /// the refined anchors on the STR levels.
    pub box_deltas: Tensor<B, 3>,
    /// `(height, width)` of each level, finest first.
    pub feature_sizes: Vec<(usize, usize)>,
    /// `(height, width)` of the input batch.
    pub input_size: (usize, usize),
}

impl<B: KernelBackend> Srn<B> {
    /// The (unrefined) anchors matching `outputs`, in the same order.
    pub fn anchors(&self, outputs: &SrnOutputs<B>) -> Anchors {
        self.policy.anchors.generate(&outputs.feature_sizes)
    }

    /// The anchors' generator: one level per pyramid level, finest first.
    pub fn anchor_generator(&self) -> &AnchorGenerator {
        &self.policy.anchors
    }

    /// The box coder of both steps (STR's refinement and the second step's decoding).
    pub fn coder(&self) -> BoxCoder {
        self.policy.coder
    }

    /// Strides of the backbone levels the neck consumes (C_min..C5), finest first.
    pub fn neck_input_strides(&self) -> &[usize] {
        &self.policy.neck_input_strides
    }

    /// Levels of both pyramids: `min_level ..= 7`.
    pub fn num_levels(&self) -> usize {
        (SRN_MAX_LEVEL - self.policy.spec.neck.min_level + 1) as usize
    }
}

impl<B: KernelBackend> DetectorFamily<B> for Srn<B> {
    type Spec = SrnSpec;
    type Outputs = SrnOutputs<B>;

    fn new(spec: &SrnSpec, device: &B::Device) -> Result<Self, ModelError> {
        let components = spec.components()?;
        Ok(Self {
            backbone: components.backbone.init(device),
            neck: components.neck.init(device),
            head: components.head.init(device),
            policy: SrnPolicy {
                spec: spec.clone(),
                anchors: components.anchors,
                assigner: components.assigner,
                stc_assigner: components.stc_assigner,
                coder: components.coder,
                neck_input_strides: components.neck_input_strides,
            },
        })
    }

    fn spec(&self) -> &SrnSpec {
        &self.policy.spec
    }

    fn fold_norms(self) -> Self {
        // The neck and heads use group norm (statistics of each input): only the backbone's
        // batch norms fold.
        Self {
            backbone: self.backbone.fold_norms(),
            ..self
        }
    }

    fn load_initial_backbone_weights(mut self) -> Result<(Self, Option<PathBuf>), ModelError> {
        let (backbone, file) = self.policy.spec.backbone.load_initial(self.backbone)?;
        self.backbone = backbone;
        Ok((self, file))
    }

    /// Runs the network: the class branch on the first-step STC levels, the box branch on the
    /// first-step STR levels (the other first-step outputs are never used, so never
    /// computed), both branches on every second-step level.
    ///
    /// # Shapes
    /// - `images`: `[B, 3, H, W]`, normalised as the data config says.
    /// - returns [`SrnOutputs`].
    fn forward(&self, images: Tensor<B, 4>) -> SrnOutputs<B> {
        let [_, _, height, width] = images.dims();
        let c = self.backbone.forward(images);
        let inputs = c
            .select(&self.policy.neck_input_strides)
            .expect("the backbone returns every stride the neck needs");
        let features = self.neck.forward(inputs);
        let feature_sizes = features
            .second
            .sizes()
            .into_iter()
            .map(|[h, w]| (h, w))
            .collect();
        let first = features.first.into_tensors();
        let second = features.second.into_tensors();
        let (stc, str) = (
            self.policy.spec.stc.levels,
            self.policy.spec.two_step_regression.levels,
        );
        let first_cls_logits =
            (stc > 0).then(|| flatten_levels(self.head.classify(&first[..stc]), 1));
        let first_box_deltas =
            (str > 0).then(|| flatten_levels(self.head.regress(&first[first.len() - str..]), 4));
        SrnOutputs {
            first_cls_logits,
            first_box_deltas,
            cls_logits: flatten_levels(self.head.classify(&second), 1),
            box_deltas: flatten_levels(self.head.regress(&second), 4),
            feature_sizes,
            input_size: (height, width),
        }
    }

    fn loss(
        &self,
        outputs: &SrnOutputs<B>,
        faces: &[FaceTargets],
    ) -> Result<FaceLoss<B>, ModelError> {
        Ok(self.loss_parts(outputs, faces)?.into())
    }

    /// Second-step probabilities (anchors STC drops at `NEG_INFINITY`: never candidates) and
    /// deltas, with each image's second-step anchors (refined on the STR levels), under
    /// visage's decoding rules.
    fn predictions(&self, outputs: &SrnOutputs<B>) -> AnchorPredictions {
        let [batch, n, _] = outputs.cls_logits.dims();
        let mut scores = host(sigmoid(outputs.cls_logits.clone()));
        let first = FirstStep::read(outputs);
        let anchors = self.anchors(outputs);
        let split = self.policy.split(&anchors);
        let per_image = (0..batch)
            .map(|b| {
                let (first_scores, first_deltas) = first.image(b, split);
                let keep = self.policy.kept(n, first_scores);
                for (score, kept) in scores[b * n..(b + 1) * n].iter_mut().zip(keep) {
                    if !kept {
                        // Below any score threshold (they are in [0, 1]): never a detection.
                        *score = f32::NEG_INFINITY;
                    }
                }
                self.policy
                    .second_step_anchors(&anchors.boxes, first_deltas)
            })
            .collect();
        AnchorPredictions {
            batch,
            anchors_per_image: n,
            scores,
            box_deltas: host(outputs.box_deltas.clone()),
            landmark_deltas: None,
            dense: None,
            anchors: BatchAnchors::PerImage(per_image),
            coder: self.policy.coder,
            rules: DecodeRules::VISAGE,
            input_size: outputs.input_size,
        }
    }
}
