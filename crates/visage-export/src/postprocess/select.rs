//! Score threshold, top-k, NMS and the cap in the graph, as `select_detections` does them:
//! candidates are those passing the threshold; the best `pre_nms_top_k` of them (equal
//! scores in anchor order) are decoded; ONNX `NonMaxSuppression` keeps at most
//! `max_detections` of them per image.
//!
//! Entries that are not (or no longer) candidates carry the score −∞ from the threshold on:
//! `TopK` ranks them last. `NonMaxSuppression` is given the candidates' ranks instead of their
//! scores (`K − position` in `TopK`'s order, −1 for non-candidates, threshold 0): the ONNX
//! spec leaves its order among equal scores open (ONNX Runtime and tract differ), while
//! `TopK`'s is fixed (equal values in index order, as visage sorts), so the ranks make every
//! runtime suppress in visage's order even where scores tie.

use visage_model::{NmsAreas, ScoreRule};

use crate::graph::{attr_int, Graph, Value};
use crate::proto::tensor_proto::DataType;

use super::decode::drop_scores;

/// `scores` `[N, A]` with those failing the threshold (`rule`: `>=` or `>`; NaN fails) at
/// −∞.
pub(super) fn threshold_scores(
    g: &mut Graph,
    scores: &Value,
    rule: ScoreRule,
    threshold: f32,
) -> Value {
    let threshold = g.scalar(threshold);
    let op = match rule {
        ScoreRule::AtLeast => "GreaterOrEqual",
        ScoreRule::Above => "Greater",
    };
    let passes = g.node(op, &[scores, &threshold], vec![]);
    drop_scores(g, &passes, scores)
}

/// The best `K = min(top_k, A)` entries of each image.
#[derive(Debug, Clone)]
pub(super) struct TopCandidates {
    /// `[N, K]` scores, best first (−∞ for non-candidates, which come last).
    pub scores: Value,
    /// `[N, K]` int64 anchor indices in `0..A`.
    pub anchor_index: Value,
    /// `[N, K]` int64 rows `image · A + anchor` of the predictions flattened to `[N·A, C]`.
    pub flat_index: Value,
    /// `[1]` int64: `K`.
    pub count: Value,
}

/// `TopK` of `scores` `[N, A]` (masked by [`threshold_scores`]) with `K = min(top_k, A)`;
/// sorted, equal values in index order (ONNX's tie rule, visage's order).
pub(super) fn top_candidates(g: &mut Graph, scores: &Value, top_k: usize) -> TopCandidates {
    let shape = g.shape(scores);
    let anchors = g.slice(&shape, &[1], &[2], &[0]);
    let top_k = g.ints(&[i64::try_from(top_k).unwrap_or(i64::MAX)]);
    let count = g.min(&anchors, &top_k);
    let attrs = vec![
        attr_int("axis", 1),
        attr_int("largest", 1),
        attr_int("sorted", 1),
    ];
    let mut outputs = g.node_multi("TopK", &[scores, &count], 2, attrs);
    let anchor_index = outputs.pop().expect("TopK indices");
    let top_scores = outputs.pop().expect("TopK values");
    // image · A: Range(0, N) · A as [N, 1].
    let (first, second) = (g.scalar_i64(0), g.scalar_i64(1));
    let images = g.gather(&shape, &first, 0);
    let anchors_scalar = g.gather(&shape, &second, 0);
    let one = g.scalar_i64(1);
    let image_ids = g.node("Range", &[&first, &images, &one], vec![]);
    let offsets = g.mul(&image_ids, &anchors_scalar);
    let offsets = g.unsqueeze(&offsets, &[1]);
    let flat_index = g.add(&anchor_index, &offsets);
    TopCandidates {
        scores: top_scores,
        anchor_index,
        flat_index,
        count,
    }
}

/// What `NonMaxSuppression` kept, images in batch order, best first within each.
#[derive(Debug, Clone)]
pub(super) struct Kept {
    /// `[M]` int64: the image of each kept box.
    pub batch_index: Value,
    /// `[M]` int64 rows `image · K + candidate` of the candidates flattened to `[N·K, ...]`.
    pub flat_index: Value,
}

/// One-class `NonMaxSuppression` of xyxy `boxes` `[N, K, 4]` with `scores` `[N, K]`
/// (−∞: not a candidate), suppressing IoU `> iou_threshold` (areas per `areas`), at most
/// `max_detections` per image; `count` is `K` (`[1]` int64).
///
/// ONNX's `center_point_box = 0` reads `[y1, x1, y2, x2]` (any diagonal pair); the IoU is the
/// same with x and y swapped, so xyxy boxes go in as they are. NMS sees ranks, not scores
/// (module doc), and emits the selection image by image in descending rank: visage's order.
pub(super) fn suppress(
    g: &mut Graph,
    boxes: &Value,
    scores: &Value,
    count: &Value,
    areas: NmsAreas,
    iou_threshold: f32,
    max_detections: usize,
) -> Kept {
    let boxes = match areas {
        NmsAreas::Continuous => boxes.clone(),
        // py_cpu_nms's (x2 − x1 + 1)·(y2 − y1 + 1) areas: shift the far corner.
        NmsAreas::PixelInclusive => {
            let shift = g.const_f32("pixel_inclusive", &[4], vec![0.0, 0.0, 1.0, 1.0]);
            g.add(boxes, &shift)
        }
    };
    let ranks = candidate_ranks(g, scores, count);
    let class_scores = g.unsqueeze(&ranks, &[1]);
    let cap = i64::try_from(max_detections).unwrap_or(i64::MAX);
    let cap = g.const_i64("max_detections", &[1], vec![cap]);
    let iou = g.const_f32("nms_threshold", &[1], vec![iou_threshold]);
    let floor = g.const_f32("rank_floor", &[1], vec![0.0]);
    let selected = g.node(
        "NonMaxSuppression",
        &[&boxes, &class_scores, &cap, &iou, &floor],
        vec![attr_int("center_point_box", 0)],
    );
    // selected: [M, 3] as (image, class, candidate).
    let (image_column, candidate_column) = (g.scalar_i64(0), g.scalar_i64(2));
    let batch_index = g.gather(&selected, &image_column, 1);
    let candidate = g.gather(&selected, &candidate_column, 1);
    let offsets = g.mul(&batch_index, count);
    let flat_index = g.add(&offsets, &candidate);
    Kept {
        batch_index,
        flat_index,
    }
}

/// `[N, K]`: `K − j` for the candidate at position `j` of `TopK`'s order (`K` … 1), −1 where
/// `scores` is −∞ (not a candidate); `count` is `K` (`[1]` int64).
fn candidate_ranks(g: &mut Graph, scores: &Value, count: &Value) -> Value {
    let k = g.squeeze(count, &[0]);
    let (zero, one) = (g.scalar_i64(0), g.scalar_i64(1));
    let positions = g.node("Range", &[&zero, &k, &one], vec![]);
    let positions = g.cast(&positions, DataType::Float);
    let k = g.cast(&k, DataType::Float);
    let ranks = g.sub(&k, &positions);
    let lowest = g.scalar(f32::MIN);
    let candidate = g.node("Greater", &[scores, &lowest], vec![]);
    let not_candidate = g.scalar(-1.0);
    g.node("Where", &[&candidate, &ranks, &not_candidate], vec![])
}
