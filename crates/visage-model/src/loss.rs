//! The detector's training loss: sigmoid focal loss on every non-ignored anchor and a box
//! loss on the positives, both normalised by the number of positives of the batch.

use burn::prelude::*;
use burn::tensor::TensorData;
use visage_losses::{iou_loss, sigmoid_focal_loss, smooth_l1, IouLossKind};

use crate::detector::{Detector, RawOutputs};
use crate::error::ModelError;
use crate::spec::BoxLossSpec;
use crate::targets::{DenseTargets, FaceTargets};

/// ε inside −ln(IoU + ε).
const IOU_EPS: f32 = 1e-6;

/// The named parts of the loss of one batch (scalars `[1]`, differentiable).
#[derive(Debug, Clone)]
pub struct LossParts<B: Backend> {
    /// Focal loss over positive and negative anchors / max(1, positives).
    pub classification: Tensor<B, 1>,
    /// Box loss over positive anchors / max(1, positives), before `box_weight`.
    pub box_regression: Tensor<B, 1>,
    /// `classification + box_weight · box_regression`: what is minimised.
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
    /// Reads the scalars back to the host (parts `cls`, `box`); errors when any is NaN or
    /// infinite.
    pub fn values(&self) -> Result<LossValues, ModelError> {
        LossValues::read(
            &self.total,
            &[("cls", &self.classification), ("box", &self.box_regression)],
            self.num_positive,
        )
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
        if faces.len() != batch {
            return Err(ModelError::InvalidInput(format!(
                "{} target lists for a batch of {batch} images",
                faces.len()
            )));
        }
        let anchors = self.anchors(outputs);
        if anchors.boxes.len() != n {
            return Err(ModelError::InvalidInput(format!(
                "{} anchors for {n} outputs per image",
                anchors.boxes.len()
            )));
        }
        let targets = DenseTargets::build(
            &anchors.boxes,
            faces,
            &self.policy.assigner,
            &self.policy.coder,
        );
        Ok(self.loss_from_targets(outputs, &targets))
    }

    /// The loss against precomputed [`DenseTargets`].
    pub fn loss_from_targets(
        &self,
        outputs: &RawOutputs<B>,
        targets: &DenseTargets,
    ) -> LossParts<B> {
        let device = outputs.cls_logits.device();
        let [batch, n, _] = outputs.cls_logits.dims();
        let spec = &self.policy.spec.loss;
        let num_positive = targets.num_positive();
        let normalizer = num_positive.max(1) as f32;

        let logits = outputs.cls_logits.clone().reshape([batch * n, 1]);
        let labels = Tensor::<B, 2>::from_data(
            TensorData::new(targets.labels.clone(), [batch * n, 1]),
            &device,
        );
        let weights = Tensor::<B, 1>::from_data(
            TensorData::new(targets.weights.clone(), [batch * n]),
            &device,
        );
        let classification = sigmoid_focal_loss(
            logits,
            labels,
            weights,
            spec.focal_alpha,
            spec.focal_gamma,
            normalizer,
        );

        let box_regression = if num_positive == 0 {
            // Keep the graph connected so every parameter still receives a (zero) gradient.
            outputs.box_deltas.clone().sum() * 0.0
        } else {
            let index: Vec<i32> = targets.positive_index.iter().map(|&i| i as i32).collect();
            let index =
                Tensor::<B, 1, Int>::from_data(TensorData::new(index, [num_positive]), &device);
            let predicted = outputs
                .box_deltas
                .clone()
                .reshape([batch * n, 4])
                .select(0, index);
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
                    let decoded = self
                        .policy
                        .coder
                        .decode_tensor(flat(&targets.positive_anchors), predicted);
                    iou_loss(decoded, flat(&targets.matched_boxes), kind, IOU_EPS).sum()
                }
            };
            per_box / normalizer
        };
        let total = classification.clone() + box_regression.clone() * spec.box_weight;
        LossParts {
            classification,
            box_regression,
            total,
            num_positive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::TestSpec;
    use burn::backend::{Autodiff, Flex};
    use burn::optim::{GradientsParams, Optimizer, SgdConfig};

    type Ad = Autodiff<Flex>;

    fn spec(box_loss: &str) -> crate::DetectorSpec {
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
            "#
        ))
        .unwrap()
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
        let device = Default::default();
        let mut det = Detector::<Ad>::new(&spec(box_loss), &TestSpec::default(), &device).unwrap();
        let (images, faces) = batch(&device);
        let mut optim = SgdConfig::new().init();
        let first = det.loss(&det.forward(images.clone()), &faces).unwrap();
        let first_value = first.values().unwrap();
        assert!(first_value.num_positive >= 3, "{first_value:?}");
        let mut last = first_value.total;
        for _ in 0..5 {
            let parts = det.loss(&det.forward(images.clone()), &faces).unwrap();
            last = parts.values().unwrap().total;
            let grads = GradientsParams::from_grads(parts.total.backward(), &det);
            det = optim.step(0.01, det, grads);
        }
        assert!(
            last < first_value.total,
            "loss did not decrease: {} -> {last}",
            first_value.total
        );
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
