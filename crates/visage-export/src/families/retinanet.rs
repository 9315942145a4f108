//! The RetinaNet family's exporter (RetinaNet, FAN, DF²S²), mirroring `RetinaNet::forward`:
//! backbone, FPN or FFP, FAN's attention scaling when configured, the class / box head, and
//! the outputs flattened in anchor order (level, y, x, anchor). DF²S²'s segmentation
//! predictor is training-only and left out; FAN's attention logits scale the features but
//! are not an output.

use visage_kernels::KernelBackend;
use visage_model::retinanet::Neck;
use visage_model::{DecodeRules, RetinaNet};

use super::{DecodeInputs, ExportFamily, GraphAnchors, NetworkGraph, RawOutput};
use crate::anchors::anchors_in_graph;
use crate::error::ExportError;
use crate::graph::{Graph, Value};
use crate::layers::backbone::{backbone, level};
use crate::layers::heads::{attend, detection_head};
use crate::layers::pyramid::{ffp, fpn};

impl<B: KernelBackend> ExportFamily for RetinaNet<B> {
    fn export_network(&self, g: &mut Graph, images: &Value) -> Result<NetworkGraph, ExportError> {
        let levels = backbone(g, images, &self.backbone, "backbone")?;
        let inputs = self
            .neck_input_strides()
            .iter()
            .map(|&stride| level(&levels, stride, "neck"))
            .collect::<Result<Vec<_>, _>>()?;
        let pyramid = match &self.neck {
            Neck::Fpn(net) => fpn(g, &inputs, net, "neck")?,
            Neck::Ffp(net) => ffp(g, &inputs, net, "neck")?,
        };
        let generator = self.anchor_generator();
        if pyramid.len() != generator.levels().len() {
            return Err(ExportError::UnsupportedLayer {
                layer: "neck".into(),
                why: format!(
                    "the neck makes {} levels, the anchors expect {}",
                    pyramid.len(),
                    generator.levels().len()
                ),
            });
        }
        let attended = match &self.attention {
            Some(attention) => attend(g, &pyramid, attention, "attention")?,
            None => pyramid.clone(),
        };
        let head = detection_head(g, &attended, &self.head, "head")?;
        let cls_logits = flatten_levels(g, &head.cls, 1); // [N, A, 1]
        let box_deltas = flatten_levels(g, &head.boxes, 4); // [N, A, 4]
        let probabilities = g.sigmoid(&cls_logits);
        let scores = g.reshape(&probabilities, &[0, -1]); // [N, A]
        let anchors = anchors_in_graph(g, generator, &pyramid); // [A, 4]
        Ok(NetworkGraph {
            raw: vec![
                RawOutput {
                    name: "cls_logits",
                    anchors: "A",
                    value: cls_logits,
                    channels: 1,
                    doc: "face logit per anchor; the score is its sigmoid",
                },
                RawOutput {
                    name: "box_deltas",
                    anchors: "A",
                    value: box_deltas.clone(),
                    channels: 4,
                    doc: "encoded box deltas (dx, dy, dw, dh) relative to the anchor, \
                          decoded with visage.box_coder.variances",
                },
            ],
            decode: DecodeInputs {
                scores,
                box_deltas,
                landmark_deltas: None,
                anchors: GraphAnchors::Shared(anchors),
                coder: self.coder(),
                rules: DecodeRules::VISAGE,
            },
            anchors: generator.clone(),
        })
    }
}

/// Per-level head outputs `[N, A_l · C, H_l, W_l]` → `[N, Σ H_l · W_l · A_l, C]` in anchor
/// order, as `visage_heads::flatten_levels`.
fn flatten_levels(g: &mut Graph, levels: &[Value], channels: usize) -> Value {
    let flat: Vec<Value> = levels
        .iter()
        .map(|x| g.flatten_level(x, channels))
        .collect();
    if flat.len() == 1 {
        flat.into_iter().next().expect("one level")
    } else {
        g.concat(&flat, 1)
    }
}

#[cfg(test)]
#[path = "retinanet_tests.rs"]
mod tests;
