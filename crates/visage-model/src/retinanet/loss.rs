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
use visage_boxes::BoxCoder;
use visage_losses::{iou_loss, sigmoid_cross_entropy, sigmoid_focal_loss, smooth_l1, IouLossKind};

use crate::attention_targets::AttentionTargets;
use crate::detector::{Detector, RawOutputs};
use crate::error::ModelError;
use crate::spec::{BoxLossSpec, LossSpec};
use crate::targets::{check_fit, DenseTargets, FaceTargets};

/// ε inside −ln(IoU + ε).
const IOU_EPS: f32 = 1e-6;

/// The named parts of the loss of one batch (scalars `[1]`, differentiable).
#[derive(Debug, Clone)]
pub struct LossParts<B: Backend> {
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
}

/// The loss of one batch as numbers, for logs and progress bars: the total and its named
/// parts (each before its weight), whatever the architecture.
#[derive(Debug, Clone, PartialEq)]
pub struct LossValues {
    /// What is minimised.
    pub total: f32,
    /// Named parts in a fixed order per architecture, e.g. `("cls", ..), ("box", ..)`.
    pub parts: Vec<(&'static str, f32)>,
    /// Positive anchors in the batch.
    pub num_positive: usize,
}

impl LossValues {
    /// Reads scalar loss tensors back to the host; errors when any is NaN or infinite,
    /// listing every part.
    pub fn read<B: Backend>(
        total: &Tensor<B, 1>,
        parts: &[(&'static str, &Tensor<B, 1>)],
        num_positive: usize,
    ) -> Result<Self, ModelError> {
        let read = |t: &Tensor<B, 1>| -> f32 { t.clone().into_scalar().elem::<f32>() };
        let values = LossValues {
            total: read(total),
            parts: parts.iter().map(|(name, t)| (*name, read(t))).collect(),
            num_positive,
        };
        if !values.is_finite() {
            return Err(ModelError::NonFiniteLoss(format!(
                "{} ({num_positive} positives)",
                values.describe()
            )));
        }
        Ok(values)
    }

    /// Whether the total and every part are finite.
    pub fn is_finite(&self) -> bool {
        self.total.is_finite() && self.parts.iter().all(|(_, v)| v.is_finite())
    }

    /// The value of the part called `name`.
    pub fn part(&self, name: &str) -> Option<f32> {
        self.parts.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    /// `"total 1.2345 (cls 0.1000, box 1.1345)"`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .parts
            .iter()
            .map(|(name, v)| format!("{name} {v:.4}"))
            .collect();
        format!("total {:.4} ({})", self.total, parts.join(", "))
    }
}

impl<B: Backend> LossParts<B> {
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

impl<B: Backend> Detector<B> {
    /// The training loss of `outputs` against the faces of each image of the batch
    /// (`faces.len()` must equal the batch size; boxes xyxy in input pixels).
    pub fn loss(
        &self,
        outputs: &RawOutputs<B>,
        faces: &[FaceTargets],
    ) -> Result<LossParts<B>, ModelError> {
        let [batch, n, _] = outputs.cls_logits.dims();
        let anchors = self.anchors(outputs);
        check_fit(faces, batch, anchors.boxes.len(), n)?;
        let mut targets = DenseTargets::build(
            &anchors.boxes,
            faces,
            &self.policy.assigner,
            &self.policy.coder,
        );
        if let Some(assigner) = &self.policy.attention {
            targets.attention = Some(assigner.build(faces, &outputs.feature_sizes, &targets));
        }
        if let Some(assigner) = &self.policy.segmentation {
            targets.segmentation = Some(assigner.build(faces, &outputs.feature_sizes, &targets));
        }
        Ok(self.loss_from_targets(outputs, &targets))
    }

    /// The loss against precomputed [`DenseTargets`] (with `[model.attention]`, their
    /// `attention` masks, with `[model.segmentation]` their `segmentation` masks, as
    /// [`loss`](Self::loss) fills them).
    ///
    /// # Panics
    /// If the outputs carry attention (segmentation) logits but the targets no attention
    /// (segmentation) masks, or the masks do not fit the logits.
    pub fn loss_from_targets(
        &self,
        outputs: &RawOutputs<B>,
        targets: &DenseTargets,
    ) -> LossParts<B> {
        let spec = &self.policy.spec.loss;
        let num_positive = targets.num_positive();
        let normalizer = num_positive.max(1) as f32;
        let classification = classification_loss(&outputs.cls_logits, targets, spec, normalizer);
        let box_regression = box_loss(
            &outputs.box_deltas,
            targets,
            spec,
            &self.policy.coder,
            normalizer,
        );
        let mut total = classification.clone() + box_regression.clone() * spec.box_weight;
        let attention = outputs.attention_logits.as_ref().map(|logits| {
            let masks = targets
                .attention
                .as_ref()
                .expect("attention logits need attention targets (Detector::loss builds them)");
            mask_loss(logits, masks, LevelReduction::Mean)
        });
        if let (Some(attention), Some(config)) = (&attention, &self.policy.spec.attention) {
            total = total + attention.clone() * config.loss_weight;
        }
        let segmentation = outputs.segmentation_logits.as_ref().map(|logits| {
            let masks = targets.segmentation.as_ref().expect(
                "segmentation logits need segmentation targets (Detector::loss builds them)",
            );
            mask_loss(logits, masks, LevelReduction::Sum)
        });
        if let (Some(segmentation), Some(config)) = (&segmentation, &self.policy.spec.segmentation)
        {
            total = total + segmentation.clone() * config.loss_weight;
        }
        LossParts {
            classification,
            box_regression,
            attention,
            segmentation,
            total,
            num_positive,
        }
    }
}

/// The sigmoid focal loss of face logits against dense targets: every anchor with weight 1
/// (positive or negative) counts, the sum divided by `normalizer`.
///
/// # Shapes
/// - `cls_logits`: `[B, N, 1]`, with `targets` built for `N` anchors per image.
/// - returns `[1]`.
pub(crate) fn classification_loss<B: Backend>(
    cls_logits: &Tensor<B, 3>,
    targets: &DenseTargets,
    spec: &LossSpec,
    normalizer: f32,
) -> Tensor<B, 1> {
    let device = cls_logits.device();
    let [batch, n, _] = cls_logits.dims();
    let logits = cls_logits.clone().reshape([batch * n, 1]);
    let labels = Tensor::<B, 2>::from_data(
        TensorData::new(targets.labels.clone(), [batch * n, 1]),
        &device,
    );
    let weights = Tensor::<B, 1>::from_data(
        TensorData::new(targets.weights.clone(), [batch * n]),
        &device,
    );
    sigmoid_focal_loss(
        logits,
        labels,
        weights,
        spec.focal_alpha,
        spec.focal_gamma,
        normalizer,
    )
}

/// The box loss of the positives of `targets` (smooth-L1 on the encoded deltas, or an IoU
/// loss of the boxes decoded from each positive's own anchor, `targets.positive_anchors`),
/// summed and divided by `normalizer`. Without positives it is `0 · Σ deltas`, so every
/// parameter still receives a (zero) gradient.
///
/// # Shapes
/// - `box_deltas`: `[B, N, 4]`, with `targets` built for `N` anchors per image.
/// - returns `[1]`.
pub(crate) fn box_loss<B: Backend>(
    box_deltas: &Tensor<B, 3>,
    targets: &DenseTargets,
    spec: &LossSpec,
    coder: &BoxCoder,
    normalizer: f32,
) -> Tensor<B, 1> {
    let num_positive = targets.num_positive();
    if num_positive == 0 {
        return box_deltas.clone().sum() * 0.0;
    }
    let device = box_deltas.device();
    let [batch, n, _] = box_deltas.dims();
    let index: Vec<i32> = targets.positive_index.iter().map(|&i| i as i32).collect();
    let index = Tensor::<B, 1, Int>::from_data(TensorData::new(index, [num_positive]), &device);
    let predicted = box_deltas.clone().reshape([batch * n, 4]).select(0, index);
    let flat = |rows: &[[f32; 4]]| -> Tensor<B, 2> {
        let data: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(data, [rows.len(), 4]), &device)
    };
    let per_box = match spec.box_loss {
        BoxLossSpec::SmoothL1 { beta } => {
            smooth_l1(predicted, flat(&targets.box_deltas), beta).sum()
        }
        BoxLossSpec::NegLogIou | BoxLossSpec::OneMinusIou => {
            let kind = if spec.box_loss == BoxLossSpec::NegLogIou {
                IouLossKind::NegLog
            } else {
                IouLossKind::OneMinus
            };
            let decoded = coder.decode_tensor(flat(&targets.positive_anchors), predicted);
            iou_loss(decoded, flat(&targets.matched_boxes), kind, IOU_EPS).sum()
        }
    };
    per_box / normalizer
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
fn mask_loss<B: Backend>(
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
mod tests {
    use super::*;
    use crate::spec::TestSpec;
    use burn::backend::{Autodiff, Flex};
    use burn::optim::{GradientsParams, Optimizer, SgdConfig};

    type Ad = Autodiff<Flex>;

    fn spec(box_loss: &str) -> crate::DetectorSpec {
        spec_with(box_loss, "")
    }

    fn spec_with(box_loss: &str, extra: &str) -> crate::DetectorSpec {
        toml::from_str(&format!(
            r#"
            [backbone.resnet]
            depth = 18
            width_multiplier = 0.125
            [neck.fpn]
            channels = 16
            min_level = 3
            max_level = 5
            [head]
            channels = 16
            convs = 1
            norm = {{ group = 4 }}
            [anchors]
            base_factor = 2.0
            scales = [1.0, 1.5]
            ratios = [1.0]
            [assign]
            positive_iou = 0.5
            negative_iou = 0.4
            [loss]
            box_loss = {box_loss}
            {extra}
            "#
        ))
        .unwrap()
    }

    /// FAN: the attention subnet on top of the tiny RetinaNet.
    fn fan_spec(levels: &str) -> crate::DetectorSpec {
        spec_with(
            "{ smooth_l1 = { beta = 0.11 } }",
            &format!("[attention]\nchannels = 16\nconvs = 1\nloss_weight = 1.0\nlevels = {levels}"),
        )
    }

    fn batch(device: &burn::backend::flex::FlexDevice) -> (Tensor<Ad, 4>, Vec<FaceTargets>) {
        let images = Tensor::<Ad, 4>::random(
            [2, 3, 64, 64],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            device,
        );
        let faces = vec![
            FaceTargets {
                boxes: vec![[10.0, 12.0, 30.0, 36.0], [40.0, 8.0, 56.0, 28.0]],
                ..Default::default()
            },
            FaceTargets {
                boxes: vec![[4.0, 4.0, 60.0, 60.0]],
                ..Default::default()
            },
        ];
        (images, faces)
    }

    fn a_few_steps_lower_the_loss(box_loss: &str) {
        a_few_steps_lower_the_loss_of(spec(box_loss));
    }

    fn a_few_steps_lower_the_loss_of(spec: crate::DetectorSpec) -> (LossValues, LossValues) {
        let device = Default::default();
        let mut det = Detector::<Ad>::new(&spec, &TestSpec::default(), &device).unwrap();
        let (images, faces) = batch(&device);
        let mut optim = SgdConfig::new().init();
        let first = det.loss(&det.forward(images.clone()), &faces).unwrap();
        let first_value = first.values().unwrap();
        assert!(first_value.num_positive >= 3, "{first_value:?}");
        let mut last = first_value.clone();
        for _ in 0..5 {
            let parts = det.loss(&det.forward(images.clone()), &faces).unwrap();
            last = parts.values().unwrap();
            let grads = GradientsParams::from_grads(parts.total.backward(), &det);
            det = optim.step(0.01, det, grads);
        }
        assert!(
            last.total < first_value.total,
            "loss did not decrease: {} -> {}",
            first_value.describe(),
            last.describe()
        );
        (first_value, last)
    }

    #[test]
    fn a_few_sgd_steps_lower_the_fan_loss_and_its_attention_part() {
        let (first, last) = a_few_steps_lower_the_loss_of(fan_spec("\"matched\""));
        let names: Vec<&str> = first.parts.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["cls", "box", "attn"]);
        let (a0, a1) = (first.part("attn").unwrap(), last.part("attn").unwrap());
        assert!(a1 < a0, "attention loss did not decrease: {a0} -> {a1}");
        // The total includes the weighted attention part.
        let sum = first.part("cls").unwrap() + first.part("box").unwrap() + a0;
        assert!(
            (first.total - sum).abs() < 1e-4 * sum,
            "{}",
            first.describe()
        );
    }

    /// DF²S² at test size: FFP3..FFP5, one shared conv, segmentation with λ2.
    fn df2s2_spec(loss_weight: f32) -> crate::DetectorSpec {
        toml::from_str(&format!(
            r#"
            [backbone.resnet]
            depth = 18
            width_multiplier = 0.125
            [neck.ffp]
            channels = 16
            min_level = 3
            max_level = 5
            [head]
            channels = 16
            convs = 1
            shared_convs = true
            norm = {{ group = 4 }}
            [anchors]
            base_factor = 2.0
            scales = [1.0]
            ratios = [1.0, 1.5]
            [assign]
            positive_iou = 0.5
            negative_iou = 0.5
            [loss]
            box_loss = {{ smooth_l1 = {{ beta = 0.11 }} }}
            [segmentation]
            loss_weight = {loss_weight:?}
            levels = "matched"
            "#
        ))
        .unwrap()
    }

    #[test]
    fn a_few_sgd_steps_lower_the_df2s2_loss_and_its_segmentation_part() {
        let (first, last) = a_few_steps_lower_the_loss_of(df2s2_spec(0.5));
        let names: Vec<&str> = first.parts.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["cls", "box", "seg"]);
        let (s0, s1) = (first.part("seg").unwrap(), last.part("seg").unwrap());
        assert!(s1 < s0, "segmentation loss did not decrease: {s0} -> {s1}");
        // The total includes λ2 · seg.
        let sum = first.part("cls").unwrap() + first.part("box").unwrap() + 0.5 * s0;
        assert!(
            (first.total - sum).abs() < 1e-4 * sum,
            "{}",
            first.describe()
        );
    }

    #[test]
    fn segmentation_loss_is_the_mean_cross_entropy_per_level_summed_over_levels() {
        let device = Default::default();
        let det = Detector::<Flex>::new(&df2s2_spec(2.0), &TestSpec::default(), &device).unwrap();
        let out = det.forward(Tensor::<Flex, 4>::zeros([2, 3, 64, 64], &device));
        // Faceless images: empty masks; the loss of every pixel is ln(1 + e^x).
        let parts = det
            .loss(&out, &[FaceTargets::default(), FaceTargets::default()])
            .unwrap();
        let logits = out.segmentation_logits.as_ref().unwrap();
        assert_eq!(logits.len(), 3);
        let expected: f32 = logits
            .iter()
            .map(|l| {
                let v: Vec<f32> = l.to_data().to_vec().unwrap();
                v.iter().map(|x| (1.0 + x.exp()).ln()).sum::<f32>() / v.len() as f32
            })
            .sum();
        let v = parts.values().unwrap();
        let got = v.part("seg").unwrap();
        assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
        // Initial logits ≈ 0: about 3 · ln 2; the total is cls + 2 · seg (no positives).
        assert!((got - 3.0 * std::f32::consts::LN_2).abs() < 0.1, "{got}");
        let total = v.part("cls").unwrap() + 2.0 * got;
        assert!((v.total - total).abs() < 1e-4, "{}", v.describe());
    }

    #[test]
    fn segmentation_masks_fill_the_faces_of_each_level() {
        // A 24 × 24 face: area 576 px² lies in FFP4's [0.5 · 32², 2 · 32²] only (FFP3's
        // range ends at 2 · 16² = 512); on FFP4 (stride 16, centres 8, 24, 40, 56) it fills
        // rows and columns 1..=2.
        let device = Default::default();
        let mut spec = df2s2_spec(1.0);
        spec.segmentation.as_mut().unwrap().levels = crate::AttentionLevelsSpec::default();
        let det = Detector::<Flex>::new(&spec, &TestSpec::default(), &device).unwrap();
        let out = det.forward(Tensor::<Flex, 4>::zeros([1, 3, 64, 64], &device));
        let faces = [FaceTargets {
            boxes: vec![[16.0, 16.0, 40.0, 40.0]],
            ..Default::default()
        }];
        let anchors = det.anchors(&out);
        let mut targets = DenseTargets::build(
            &anchors.boxes,
            &faces,
            &det.policy.assigner,
            &det.policy.coder,
        );
        let assigner = det.policy.segmentation.as_ref().unwrap();
        targets.segmentation = Some(assigner.build(&faces, &out.feature_sizes, &targets));
        let masks = targets.segmentation.as_ref().unwrap();
        let ones = |m: &[f32]| -> Vec<usize> {
            m.iter()
                .enumerate()
                .filter(|(_, &v)| v == 1.0)
                .map(|(i, _)| i)
                .collect()
        };
        assert!(ones(&masks.masks[0]).is_empty());
        assert_eq!(ones(&masks.masks[1]), vec![4 + 1, 4 + 2, 8 + 1, 8 + 2]);
        assert!(ones(&masks.masks[2]).is_empty());
        let from_loss = det.loss_from_targets(&out, &targets).values().unwrap();
        let direct = det.loss(&out, &faces).unwrap().values().unwrap();
        assert_eq!(from_loss, direct);
    }

    #[test]
    fn attention_loss_is_the_mean_cross_entropy_per_level_averaged_over_levels() {
        let device = Default::default();
        let det = Detector::<Flex>::new(
            &fan_spec("{ anchor_area = { min_area_factor = 0.5 } }"),
            &TestSpec::default(),
            &device,
        )
        .unwrap();
        // Faceless images: empty masks; the loss of every pixel is ln(1 + e^x).
        let out = det.forward(Tensor::<Flex, 4>::zeros([2, 3, 64, 64], &device));
        let parts = det
            .loss(&out, &[FaceTargets::default(), FaceTargets::default()])
            .unwrap();
        let logits = out.attention_logits.as_ref().unwrap();
        let expected: f32 = logits
            .iter()
            .map(|l| {
                let v: Vec<f32> = l.to_data().to_vec().unwrap();
                v.iter().map(|x| (1.0 + x.exp()).ln()).sum::<f32>() / v.len() as f32
            })
            .sum::<f32>()
            / logits.len() as f32;
        let v = parts.values().unwrap();
        let got = v.part("attn").unwrap();
        assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
        // Initial attention σ ≈ 0.5: about ln 2.
        assert!((got - std::f32::consts::LN_2).abs() < 0.05, "{got}");
    }

    #[test]
    fn retinanet_keeps_two_parts_and_attention_weight_scales_the_total() {
        let device = Default::default();
        let det = Detector::<Flex>::new(&spec("\"one_minus_iou\""), &TestSpec::default(), &device)
            .unwrap();
        let out = det.forward(Tensor::<Flex, 4>::zeros([1, 3, 32, 32], &device));
        let v = det
            .loss(&out, &[FaceTargets::default()])
            .unwrap()
            .values()
            .unwrap();
        let names: Vec<&str> = v.parts.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["cls", "box"]);

        let mut fan = fan_spec("\"matched\"");
        fan.attention.as_mut().unwrap().loss_weight = 3.0;
        let det = Detector::<Flex>::new(&fan, &TestSpec::default(), &device).unwrap();
        let out = det.forward(Tensor::<Flex, 4>::zeros([1, 3, 32, 32], &device));
        let v = det
            .loss(&out, &[FaceTargets::default()])
            .unwrap()
            .values()
            .unwrap();
        let expected = v.part("cls").unwrap() + 3.0 * v.part("attn").unwrap();
        assert!((v.total - expected).abs() < 1e-5, "{}", v.describe());
    }

    #[test]
    fn a_few_sgd_steps_lower_the_smooth_l1_loss() {
        a_few_steps_lower_the_loss("{ smooth_l1 = { beta = 0.11 } }");
    }

    #[test]
    fn a_few_sgd_steps_lower_the_iou_loss() {
        a_few_steps_lower_the_loss("\"neg_log_iou\"");
    }

    #[test]
    fn an_image_without_faces_gives_a_finite_zero_box_loss() {
        let device = Default::default();
        let det = Detector::<Flex>::new(&spec("\"one_minus_iou\""), &TestSpec::default(), &device)
            .unwrap();
        let images = Tensor::<Flex, 4>::zeros([1, 3, 32, 32], &device);
        let parts = det
            .loss(&det.forward(images), &[FaceTargets::default()])
            .unwrap();
        let v = parts.values().unwrap();
        assert_eq!(v.num_positive, 0);
        assert_eq!(v.part("box"), Some(0.0));
        assert!(v.part("cls").unwrap() > 0.0);
    }

    #[test]
    fn mismatched_targets_are_an_error() {
        let device = Default::default();
        let det = Detector::<Flex>::new(&spec("\"one_minus_iou\""), &TestSpec::default(), &device)
            .unwrap();
        let images = Tensor::<Flex, 4>::zeros([2, 3, 32, 32], &device);
        let err = det.loss(&det.forward(images), &[FaceTargets::default()]);
        assert!(matches!(err, Err(ModelError::InvalidInput(_))));
    }
}
