//! Boxes, IoU, box and landmark coding, NMS: plain Rust and Burn tensor versions.
//!
//! Box format everywhere in this crate: [`BoxXyxy`] = `[x1, y1, x2, y2]` in pixels with the
//! continuous convention (`area = (x2 - x1) * (y2 - y1)`, no `+ 1`). Tensor versions take
//! `[N, 4]` tensors whose rows are in the same format.
//!
//! - [`iou`]: area, IoU, IoU matrices, `xyxy` ↔ `cxcywh` conversions.
//! - [`coder`]: [`BoxCoder`], the SSD / RetinaFace box and five-point landmark coding.
//! - [`nms`]: greedy non-maximum suppression (a centre-grid search) and burn-vision's for reference.

pub mod coder;
pub mod error;
pub mod iou;
pub mod nms;
pub mod top_k;

pub use coder::{BoxCoder, BBOX_XFORM_CLIP};
pub use error::BoxError;
pub use iou::{
    area, cxcywh_to_xyxy, cxcywh_to_xyxy_tensor, iou, iou_matrix, iou_matrix_tensor,
    xyxy_to_cxcywh, xyxy_to_cxcywh_tensor, BoxCxcywh, BoxXyxy,
};
pub use nms::{nms, nms_at_most, nms_burn_vision};
pub use top_k::{best_first, ScoreRule};
