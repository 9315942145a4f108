//! The RetinaNet family: backbone (ResNet or MobileNet) + neck (RetinaNet's FPN or DF²S²'s
//! feature fusion pyramid) + class/box head (RetinaNet's separate subnets or DF²S²'s shared
//! conv stack, with its optional segmentation predictor), and optionally FAN's attention
//! subnet (`[model.attention]`), carrying its weight-free policy (anchors, assignment, box
//! coding, attention / segmentation targets, loss settings) so that `forward`, `loss` and
//! `predictions` need nothing else.
//!
//! The configurations: RetinaNet (`[model.neck.fpn]`), FAN (+ `[model.attention]`), DF²S²
//! (`[model.neck.ffp]`, `head.shared_convs = true`, `[model.segmentation]`).
//!
//! Files: [`spec`] (the `[model]` table), `components` (spec → validated component
//! configs), [`neck`], [`loss`], [`attention_targets`] (FAN's and DF²S²'s masks).

pub mod attention_targets;
mod components;
pub mod loss;
pub mod neck;
pub mod spec;

use std::path::PathBuf;

use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use visage_anchors::{AnchorGenerator, Anchors, MaxIouAssigner};
use visage_backbone::Backbone;
use visage_boxes::BoxCoder;
use visage_heads::{flatten_levels, AttentionHead, DetectionHead};
use visage_kernels::KernelBackend;

pub use attention_targets::{AttentionAssigner, AttentionRule, AttentionTargets};
pub use loss::{RetinaNetLoss, RetinaNetTargets};
pub use neck::Neck;
pub use spec::{
    AttentionLevelsSpec, AttentionSpec, ExtraSourceSpec, FfpSpec, FpnSpec, HeadSpec, NeckSpec,
    RetinaNetSpec, SegmentationSpec,
};

use crate::common::postprocess::{host, AnchorPredictions, BatchAnchors, DecodeRules};
use crate::common::targets::FaceTargets;
use crate::error::ModelError;
use crate::family::{DetectorFamily, FaceLoss};
use crate::spec::LossSpec;

/// Everything about a RetinaNet-family detector that has no weights: derived once from the
/// spec.
#[derive(Debug, Clone)]
pub(crate) struct RetinaNetPolicy {
    pub(crate) spec: RetinaNetSpec,
    pub(crate) anchors: AnchorGenerator,
    pub(crate) assigner: MaxIouAssigner,
    pub(crate) coder: BoxCoder,
    /// Strides of the backbone levels the neck consumes, finest first.
    pub(crate) neck_input_strides: Vec<usize>,
    /// FAN's attention targets, when `[model.attention]` is set.
    pub(crate) attention: Option<AttentionAssigner>,
    /// DF²S²'s segmentation targets, when `[model.segmentation]` is set.
    pub(crate) segmentation: Option<AttentionAssigner>,
}

/// A single-class (face) RetinaNet-family detector: RetinaNet, FAN, DF²S².
#[derive(Module, Debug)]
pub struct RetinaNet<B: Backend> {
    /// ResNet (C2..C5) or MobileNet (strides 8..32).
    pub backbone: Backbone<B>,
    /// FPN or FFP producing P_min..P_max (parameters `neck.*` whatever the variant).
    pub neck: Neck<B>,
    /// Class and box head shared across levels: separate subnets (`head.cls_subnet.*`,
    /// `head.box_subnet.*`) or one shared stack (`head.convs.*`, `head.cls_predictor`,
    /// `head.box_predictor`, and with segmentation `head.seg_predictor`).
    pub head: DetectionHead<B>,
    /// FAN's attention subnet, shared across levels (`[model.attention]`); `None` for a
    /// plain RetinaNet. Its parameters are `attention.subnet.*`.
    pub attention: Option<AttentionHead<B>>,
    #[module(skip)]
    pub(crate) policy: RetinaNetPolicy,
}

/// Raw head outputs of a batch, flattened in anchor order (level, then y, then x, then anchor).
#[derive(Debug, Clone)]
pub struct RetinaNetOutputs<B: Backend> {
    /// `[B, N, 1]` face logits.
    pub cls_logits: Tensor<B, 3>,
    /// `[B, N, 4]` encoded box deltas (see [`BoxCoder`]).
    pub box_deltas: Tensor<B, 3>,
    /// `(height, width)` of each pyramid level's feature map, finest first.
    pub feature_sizes: Vec<(usize, usize)>,
    /// `(height, width)` of the input batch.
    pub input_size: (usize, usize),
    /// FAN's attention logits per level, `[B, 1, H_l, W_l]`, finest first (the attention
    /// map is their sigmoid); `None` without `[model.attention]`.
    pub attention_logits: Option<Vec<Tensor<B, 4>>>,
    /// DF²S²'s segmentation logits per level, `[B, 1, H_l, W_l]`, finest first; `None`
    /// without `[model.segmentation]`. Read by the loss only, never by `postprocess`.
    pub segmentation_logits: Option<Vec<Tensor<B, 4>>>,
}

impl<B: KernelBackend> RetinaNet<B> {
    /// The anchors matching `outputs`, in the same order (xyxy pixels of the input).
    pub fn anchors(&self, outputs: &RetinaNetOutputs<B>) -> Anchors {
        self.policy.anchors.generate(&outputs.feature_sizes)
    }

    /// The loss settings.
    pub fn loss_spec(&self) -> &LossSpec {
        &self.policy.spec.loss
    }

    /// The anchors' generator over the pyramid's levels (stride, sizes, aspect ratios).
    pub fn anchor_generator(&self) -> &AnchorGenerator {
        &self.policy.anchors
    }

    /// The box coder (variances) the box deltas are encoded with.
    pub fn coder(&self) -> BoxCoder {
        self.policy.coder
    }

    /// Strides of the backbone levels the neck consumes (C_min..C5), finest first.
    pub fn neck_input_strides(&self) -> &[usize] {
        &self.policy.neck_input_strides
    }
}

impl<B: KernelBackend> DetectorFamily<B> for RetinaNet<B> {
    type Spec = RetinaNetSpec;
    type Outputs = RetinaNetOutputs<B>;

    fn new(spec: &RetinaNetSpec, device: &B::Device) -> Result<Self, ModelError> {
        let components = spec.components()?;
        let policy = RetinaNetPolicy {
            spec: spec.clone(),
            anchors: components.anchors,
            assigner: components.assigner,
            coder: components.coder,
            neck_input_strides: components.neck_input_strides,
            attention: AttentionAssigner::from_spec(spec),
            segmentation: AttentionAssigner::for_segmentation(spec),
        };
        Ok(Self {
            backbone: components.backbone.init(device),
            neck: components.neck.init(device),
            head: components.head.init(device),
            attention: components.attention.map(|a| a.init(device)),
            policy,
        })
    }

    fn spec(&self) -> &RetinaNetSpec {
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

    /// Runs the network.
    ///
    /// # Shapes
    /// - `images`: `[B, 3, H, W]`, normalised as the data config says.
    /// - returns flattened outputs over `N = Σ_levels H_l · W_l · A` anchors, and with
    ///   attention one `[B, 1, H_l, W_l]` logit map per level.
    ///
    /// With `[model.attention]` (FAN, §3.2), every level's features are multiplied by
    /// `exp(σ(attention logit))` before the class and box subnets.
    ///
    /// With `[model.segmentation]` (DF²S², §3.2) the segmentation logits are computed here
    /// too: `forward` cannot tell training from inference (no mode flags), and the branch
    /// costs one 3×3 conv to one channel per level on the shared convs' output (at 256
    /// channels about 1/1000 of the shared head's multiply-adds); `postprocess` ignores them.
    fn forward(&self, images: Tensor<B, 4>) -> RetinaNetOutputs<B> {
        let [_, _, height, width] = images.dims();
        let c = self.backbone.forward(images);
        let inputs = c
            .select(&self.policy.neck_input_strides)
            .expect("the backbone returns every stride the neck needs");
        let pyramid = self.neck.forward(inputs);
        let feature_sizes = pyramid.sizes().into_iter().map(|[h, w]| (h, w)).collect();
        let (pyramid, attention_logits) = match &self.attention {
            Some(attention) => {
                let logits = attention.forward(&pyramid);
                (AttentionHead::attend(pyramid, &logits), Some(logits))
            }
            None => (pyramid, None),
        };
        let out = self.head.forward(&pyramid);
        RetinaNetOutputs {
            cls_logits: flatten_levels(out.cls, 1),
            box_deltas: flatten_levels(out.boxes, 4),
            feature_sizes,
            input_size: (height, width),
            attention_logits,
            segmentation_logits: out.segmentation,
        }
    }

    fn loss(
        &self,
        outputs: &RetinaNetOutputs<B>,
        faces: &[FaceTargets],
    ) -> Result<FaceLoss<B>, ModelError> {
        Ok(self.loss_parts(outputs, faces)?.into())
    }

    /// Sigmoid face probabilities, box deltas and the anchors, with visage's decoding rules.
    fn predictions(&self, outputs: &RetinaNetOutputs<B>) -> AnchorPredictions {
        let [batch, n, _] = outputs.cls_logits.dims();
        AnchorPredictions {
            batch,
            anchors_per_image: n,
            scores: host(sigmoid(outputs.cls_logits.clone())),
            box_deltas: host(outputs.box_deltas.clone()),
            landmark_deltas: None,
            dense: None,
            anchors: BatchAnchors::Shared(self.anchors(outputs).boxes),
            coder: self.policy.coder,
            rules: DecodeRules::VISAGE,
            input_size: outputs.input_size,
        }
    }
}

#[cfg(test)]
mod tests;
