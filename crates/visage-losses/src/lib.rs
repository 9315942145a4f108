//! Detection losses: sigmoid focal, smooth-L1, IoU, sigmoid cross-entropy and softmax
//! cross-entropy with online hard example mining (OHEM).
//!
//! Every loss is a pure function generic over `B: Backend` and differentiable under
//! `Autodiff<_>`. Log-probabilities are always computed with Burn's `log_sigmoid` /
//! `log_softmax` primitives (stable forms, log σ(x) = −softplus(−x)), so logits of any
//! finite magnitude give finite losses and gradients.
//!
//! | loss | used by |
//! |---|---|
//! | [`sigmoid_focal_loss`] | FAN, SRN / AInnoFace classification |
//! | [`smooth_l1`] | box (and landmark) regression everywhere |
//! | [`iou_loss`] | AInnoFace (−ln IoU), UnitBox |
//! | [`sigmoid_cross_entropy`] | FAN attention, DF²S² segmentation masks |
//! | [`softmax_cross_entropy_ohem`] | RetinaFace classification (SSD-style hard negatives) |
//!
//! Reductions follow the papers: the focal loss is summed and divided by a caller-given
//! normaliser, OHEM returns a sum plus counts, and the element-wise losses leave the
//! reduction to the caller.

mod focal;
mod iou_loss;
mod ohem;
mod sigmoid_ce;
mod smooth_l1;

#[cfg(test)]
mod testing;

pub use focal::sigmoid_focal_loss;
pub use iou_loss::{iou_loss, IouLossKind};
pub use ohem::{softmax_cross_entropy_ohem, OhemLoss};
pub use sigmoid_ce::sigmoid_cross_entropy;
pub use smooth_l1::smooth_l1;
