//! Detections inside the graph: the family's decoding (its box coder and rules), the score
//! threshold, top-k, ONNX `NonMaxSuppression` and the per-image cap, with a model's `[test]`
//! settings.

mod decode;
mod select;
#[cfg(test)]
mod tests;

use visage_model::{ModelError, TestSpec};

use crate::error::ExportError;
use crate::families::{DecodeInputs, GraphAnchors};
use crate::graph::{Dim, ElemType, Graph, Value};
use decode::{
    anchor_frame, clip_to_input, decode_boxes, decode_landmarks, drop_scores, gather_rows,
};
use select::{suppress, threshold_scores, top_candidates};

/// The detections of a batch in the graph, `K` over all images.
#[derive(Debug, Clone)]
pub struct Detections {
    /// `[K, 4]` xyxy pixels of the network input.
    pub boxes: Value,
    /// `[K]` face probabilities, best first within each image.
    pub scores: Value,
    /// `[K, 5, 2]` landmarks (left eye, right eye, nose, left and right mouth corner), for
    /// families that predict them.
    pub landmarks: Option<Value>,
    /// `[K]` int64: the image of the batch each detection belongs to.
    pub batch_index: Value,
}

impl Detections {
    /// Declares the graph outputs `boxes`, `scores`, (`landmarks`) and `batch_index`.
    pub fn declare_outputs(&self, g: &mut Graph) {
        let k = || Dim::Named("K".into());
        g.output(&self.boxes, "boxes", ElemType::F32, &[k(), Dim::Fixed(4)]);
        g.output(&self.scores, "scores", ElemType::F32, &[k()]);
        if let Some(landmarks) = &self.landmarks {
            let dims = [k(), Dim::Fixed(5), Dim::Fixed(2)];
            g.output(landmarks, "landmarks", ElemType::F32, &dims);
        }
        g.output(&self.batch_index, "batch_index", ElemType::I64, &[k()]);
    }

    /// The outputs, for the model's metadata.
    pub fn describe(&self) -> String {
        let mut text = vec![
            "boxes [K, 4]: x1, y1, x2, y2 in pixels of the network input".to_string(),
            "scores [K]: face probability, best first within each image".to_string(),
        ];
        if self.landmarks.is_some() {
            text.push(
                "landmarks [K, 5, 2]: left eye, right eye, nose, left and right mouth corner, \
                 x, y pixels"
                    .to_string(),
            );
        }
        text.push("batch_index [K]: int64, the image of the batch".to_string());
        text.join("\n")
    }
}

/// The detections of `decode` for the input `images` (`[N, 3, H, W]`, whose size clips the
/// boxes where the family's rules clip) with the `[test]` settings `test`, as
/// `visage_model::postprocess` finds them per image: candidates passing the score threshold,
/// the best `pre_nms_top_k` of them decoded (and clipped, empty boxes dropped), NMS, at most
/// `max_detections` per image; `tta`, `short_side` and `max_size` are the caller's.
///
/// # Errors
/// [`ExportError::InvalidOption`] naming a `test.*` setting out of range.
pub fn detection_graph(
    g: &mut Graph,
    images: &Value,
    decode: &DecodeInputs,
    test: &TestSpec,
) -> Result<Detections, ExportError> {
    test.validate().map_err(|e| match e {
        ModelError::InvalidConfig { key, message } => ExportError::InvalidOption {
            option: key,
            why: message,
        },
        other => ExportError::InvalidOption {
            option: "test".into(),
            why: other.to_string(),
        },
    })?;
    let rules = &decode.rules;
    let scores = threshold_scores(g, &decode.scores, rules.score, test.score_threshold);
    let top = top_candidates(g, &scores, test.pre_nms_top_k);
    let anchors = match &decode.anchors {
        GraphAnchors::Shared(anchors) => g.gather(anchors, &top.anchor_index, 0),
        GraphAnchors::PerImage(anchors) => gather_rows(g, anchors, &top.flat_index, 4),
    };
    let deltas = gather_rows(g, &decode.box_deltas, &top.flat_index, 4);
    let (centre, size) = anchor_frame(g, &anchors);
    let boxes = decode_boxes(g, &centre, &size, &deltas, &decode.coder, rules.clamp_size);
    let (boxes, scores) = if rules.clip_to_input {
        let (clipped, non_empty) = clip_to_input(g, &boxes, images);
        let scores = drop_scores(g, &non_empty, &top.scores);
        (clipped, scores)
    } else {
        (boxes, top.scores.clone())
    };
    let kept = suppress(
        g,
        &boxes,
        &scores,
        &top.count,
        rules.nms_areas,
        test.nms_threshold,
        test.max_detections,
    );
    let boxes = g.reshape(&boxes, &[-1, 4]);
    let scores = g.reshape(&scores, &[-1]);
    let landmarks = decode.landmark_deltas.as_ref().map(|marks| {
        let marks = gather_rows(g, marks, &top.flat_index, 10);
        let points = decode_landmarks(g, &centre, &size, &marks, &decode.coder);
        let points = g.reshape(&points, &[-1, 5, 2]);
        g.gather(&points, &kept.flat_index, 0)
    });
    Ok(Detections {
        boxes: g.gather(&boxes, &kept.flat_index, 0),
        scores: g.gather(&scores, &kept.flat_index, 0),
        landmarks,
        batch_index: kept.batch_index,
    })
}
