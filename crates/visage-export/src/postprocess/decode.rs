//! Decoding in the graph: the candidates' rows gathered from the per-anchor predictions,
//! boxes and landmarks decoded as `visage_boxes::BoxCoder` does (the same f32 operations in
//! the same order), and boxes clipped to the input.

use visage_boxes::{BoxCoder, BBOX_XFORM_CLIP};

use crate::graph::{Graph, Value};
use crate::proto::tensor_proto::DataType;

/// The rows `flat_index` (int64 `[N, K]`, `image · A + anchor`) of `x` (`[N, A, C]`):
/// `[N, K, C]`.
pub(super) fn gather_rows(g: &mut Graph, x: &Value, flat_index: &Value, channels: i64) -> Value {
    let rows = g.reshape(x, &[-1, channels]);
    g.gather(&rows, flat_index, 0)
}

/// `x` `[..., 4]` split into its first and last pair of columns, each `[..., 2]`.
fn pairs(g: &mut Graph, x: &Value, axis: i64) -> (Value, Value) {
    let first = g.slice(x, &[0], &[2], &[axis]);
    let second = g.slice(x, &[2], &[4], &[axis]);
    (first, second)
}

/// Anchor centres and sizes of xyxy `anchors` `[N, K, 4]`: `(0.5 · (lo + hi), hi − lo)`,
/// each `[N, K, 2]` as `(x, y)`.
pub(super) fn anchor_frame(g: &mut Graph, anchors: &Value) -> (Value, Value) {
    let (lo, hi) = pairs(g, anchors, 2);
    let sum = g.add(&lo, &hi);
    let half = g.scalar(0.5);
    let centre = g.mul(&sum, &half);
    let size = g.sub(&hi, &lo);
    (centre, size)
}

/// `BoxCoder::decode` (`clamp_size`) or `decode_unclamped` of `deltas` `[N, K, 4]` against
/// the anchors' `centre` and `size` (`[N, K, 2]`, [`anchor_frame`]): xyxy `[N, K, 4]`.
pub(super) fn decode_boxes(
    g: &mut Graph,
    centre: &Value,
    size: &Value,
    deltas: &Value,
    coder: &BoxCoder,
    clamp_size: bool,
) -> Value {
    let [v0, v1] = coder.variances;
    let (shift, scale) = pairs(g, deltas, 2);
    // centre + delta · v0 · size
    let v0 = g.scalar(v0);
    let shift = g.mul(&shift, &v0);
    let shift = g.mul(&shift, size);
    let new_centre = g.add(centre, &shift);
    // size · exp(min(delta · v1, clip))
    let v1 = g.scalar(v1);
    let exponent = g.mul(&scale, &v1);
    let exponent = if clamp_size {
        let clip = g.scalar(BBOX_XFORM_CLIP);
        g.min(&exponent, &clip)
    } else {
        exponent
    };
    let growth = g.exp(&exponent);
    let new_size = g.mul(size, &growth);
    let half = g.scalar(0.5);
    let half_size = g.mul(&half, &new_size);
    let lo = g.sub(&new_centre, &half_size);
    let hi = g.add(&new_centre, &half_size);
    g.concat(&[lo, hi], 2)
}

/// `BoxCoder::decode_landmarks` of `deltas` `[N, K, 10]` against the anchors' `centre` and
/// `size` (`[N, K, 2]`): `[N, K, 5, 2]` points `(x, y)`.
pub(super) fn decode_landmarks(
    g: &mut Graph,
    centre: &Value,
    size: &Value,
    deltas: &Value,
    coder: &BoxCoder,
) -> Value {
    let points = g.reshape(deltas, &[0, 0, 5, 2]);
    let centre = g.unsqueeze(centre, &[2]);
    let size = g.unsqueeze(size, &[2]);
    // centre + delta · v0 · size
    let v0 = g.scalar(coder.variances[0]);
    let offset = g.mul(&points, &v0);
    let offset = g.mul(&offset, &size);
    g.add(&centre, &offset)
}

/// xyxy `boxes` `[N, K, 4]` clamped to the input (`images` `[N, 3, H, W]`: x to `[0, W]`,
/// y to `[0, H]`), and whether each is left non-empty (`x2 > x1` and `y2 > y1`, bool
/// `[N, K]`).
pub(super) fn clip_to_input(g: &mut Graph, boxes: &Value, images: &Value) -> (Value, Value) {
    let shape = g.shape(images);
    let which = g.ints(&[3, 2, 3, 2]);
    let limits = g.gather(&shape, &which, 0);
    let limits = g.cast(&limits, DataType::Float);
    let zero = g.scalar(0.0);
    let clipped = g.max(boxes, &zero);
    let clipped = g.min(&clipped, &limits);
    let (lo, hi) = pairs(g, &clipped, 2);
    let positive = g.node("Greater", &[&hi, &lo], vec![]);
    let wide = g.slice(&positive, &[0], &[1], &[2]);
    let tall = g.slice(&positive, &[1], &[2], &[2]);
    let both = g.node("And", &[&wide, &tall], vec![]);
    let non_empty = g.squeeze(&both, &[2]);
    (clipped, non_empty)
}

/// `Where(keep, scores, −∞)`: `scores` `[N, K]` with those not kept (bool `keep`) at −∞.
pub(super) fn drop_scores(g: &mut Graph, keep: &Value, scores: &Value) -> Value {
    let gone = g.scalar(f32::NEG_INFINITY);
    g.node("Where", &[keep, scores, &gone], vec![])
}
