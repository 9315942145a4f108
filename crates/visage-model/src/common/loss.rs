//! What the loss of every family shares: its values read back to the host
//! ([`LossValues`]), and the two parts of the sigmoid anchor families (RetinaNet, FAN, DF²S²,
//! SRN): the focal classification loss and the box loss of the positives.

use burn::prelude::*;
use burn::tensor::TensorData;
use visage_boxes::BoxCoder;
use visage_kernels::KernelBackend;
use visage_losses::{iou_loss, sigmoid_focal_loss, smooth_l1, IouLossKind};

use crate::common::targets::DenseTargets;
use crate::error::ModelError;
use crate::spec::{BoxLossSpec, LossSpec};

/// ε inside −ln(IoU + ε).
const IOU_EPS: f32 = 1e-6;

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
    pub fn read<B: KernelBackend>(
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

/// The sigmoid focal loss of face logits against dense targets: every anchor with weight 1
/// (positive or negative) counts, the sum divided by `normalizer`.
///
/// # Shapes
/// - `cls_logits`: `[B, N, 1]`, with `targets` built for `N` anchors per image.
/// - returns `[1]`.
pub(crate) fn classification_loss<B: KernelBackend>(
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
pub(crate) fn box_loss<B: KernelBackend>(
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
