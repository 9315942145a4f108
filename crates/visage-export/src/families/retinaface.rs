//! The RetinaFace family's exporter: [`RetinaFaceNet::forward`] (backbone levels of strides
//! 8, 16, 32 → FPN → one SSH per level → per-level 1×1 box / class / landmark heads,
//! flattened in prior order) and its decoding: softmax face probabilities, deltas relative
//! to the priors (`PriorBox`, generated in the graph) under `detect.py`'s rules.

use burn::nn::conv::Conv2d;
use visage_kernels::KernelBackend;
use visage_model::retinaface::{RetinaFaceNet, RETINAFACE_STRIDES};
use visage_model::{DecodeRules, RetinaFace};

use super::{DecodeInputs, ExportFamily, GraphAnchors, NetworkGraph, RawOutput};
use crate::anchors::anchors_in_graph;
use crate::error::ExportError;
use crate::graph::{Graph, Value};
use crate::layers::backbone::{backbone, level};
use crate::layers::conv::conv2d;
use crate::layers::retinaface_neck::{retinaface_fpn, ssh};

/// Doc of the `box_deltas` output.
const BOX_DOC: &str = "box deltas (dx, dy, dw, dh) relative to the priors, Pytorch_Retinaface's \
     `decode`: centre = prior centre + d_xy * variance[0] * prior size, size = prior size * \
     exp(d_wh * variance[1])";
/// Doc of the `class_logits` output.
const CLASS_DOC: &str = "class logits (background, face); softmax over the last axis, column \
     1 is the face probability";
/// Doc of the `landmark_deltas` output.
const LANDMARK_DOC: &str = "five landmarks (x0, y0, ..., x4, y4) relative to the priors, \
     Pytorch_Retinaface's `decode_landm`: point = prior centre + d * variance[0] * prior size";

impl<B: KernelBackend> ExportFamily for RetinaFace<B> {
    /// Raw outputs in [`visage_model::retinaface::RetinaFaceOutputs`]' order (and
    /// Pytorch_Retinaface's `loc, conf, landms`): `box_deltas` `[N, A, 4]`, `class_logits`
    /// `[N, A, 2]`, `landmark_deltas` `[N, A, 10]`, over the priors (level, y, x, size).
    /// The dense 3D branch (`[model.mesh]`) is left out: its renderer rasterises on the host
    /// and the detections do not need it.
    fn export_network(&self, g: &mut Graph, images: &Value) -> Result<NetworkGraph, ExportError> {
        if let Some(mesh) = &self.mesh {
            g.leave_out_module(
                mesh,
                "RetinaFace's dense 3D branch (mesh head and decoder) is not exported; the \
                 detections do not depend on it",
            );
        }
        let features = retinaface_features(g, images, &self.net, "net")?;
        let box_deltas = head(g, &features, &self.net.bbox_head, 4, "net.bbox_head")?;
        let class_logits = head(g, &features, &self.net.class_head, 2, "net.class_head")?;
        let landmark_deltas = head(
            g,
            &features,
            &self.net.landmark_head,
            10,
            "net.landmark_head",
        )?;
        let scores = face_probabilities(g, &class_logits);
        let priors = anchors_in_graph(g, self.prior_generator(), &features);
        let raw = vec![
            RawOutput {
                name: "box_deltas",
                anchors: "A",
                value: box_deltas.clone(),
                channels: 4,
                doc: BOX_DOC,
            },
            RawOutput {
                name: "class_logits",
                anchors: "A",
                value: class_logits,
                channels: 2,
                doc: CLASS_DOC,
            },
            RawOutput {
                name: "landmark_deltas",
                anchors: "A",
                value: landmark_deltas.clone(),
                channels: 10,
                doc: LANDMARK_DOC,
            },
        ];
        Ok(NetworkGraph {
            raw,
            decode: DecodeInputs {
                scores,
                box_deltas,
                landmark_deltas: Some(landmark_deltas),
                anchors: GraphAnchors::Shared(priors),
                coder: self.coder(),
                rules: DecodeRules::PYTORCH_RETINAFACE,
            },
            anchors: self.prior_generator().clone(),
        })
    }
}

/// The three SSH outputs `[N, C, h_l, w_l]` (strides 8, 16, 32) of `net` on `images`; `name`
/// is the network's parameter path.
///
/// # Errors
/// [`ExportError::UnsupportedLayer`] naming a layer the graph cannot express.
fn retinaface_features<B: KernelBackend>(
    g: &mut Graph,
    images: &Value,
    net: &RetinaFaceNet<B>,
    name: &str,
) -> Result<[Value; 3], ExportError> {
    let body = format!("{name}.body");
    let levels = backbone(g, images, &net.body, &body)?;
    let [s1, s2, s3] = RETINAFACE_STRIDES;
    let selected = [
        level(&levels, s1, &body)?,
        level(&levels, s2, &body)?,
        level(&levels, s3, &body)?,
    ];
    let pyramid = retinaface_fpn(g, &selected, &net.fpn, &format!("{name}.fpn"))?;
    let modules = [&net.ssh1, &net.ssh2, &net.ssh3];
    let mut features = Vec::with_capacity(3);
    for (i, (module, x)) in modules.into_iter().zip(&pyramid).enumerate() {
        features.push(ssh(g, x, module, &format!("{name}.ssh{}", i + 1))?);
    }
    Ok(features.try_into().expect("three levels"))
}

/// Per-level 1×1 `heads` on `features`, each flattened to `[N, h_l·w_l·A, per_anchor]` and
/// concatenated over the levels: `[N, A_total, per_anchor]` (`visage_heads::flatten_levels`).
///
/// # Errors
/// [`ExportError::UnsupportedLayer`] naming a head the graph cannot express.
fn head<B: KernelBackend>(
    g: &mut Graph,
    features: &[Value; 3],
    heads: &[Conv2d<B>],
    per_anchor: usize,
    name: &str,
) -> Result<Value, ExportError> {
    if heads.len() != features.len() {
        return Err(ExportError::UnsupportedLayer {
            layer: name.to_string(),
            why: format!("{} heads for {} levels", heads.len(), features.len()),
        });
    }
    let mut flat = Vec::with_capacity(heads.len());
    for (i, (conv, x)) in heads.iter().zip(features).enumerate() {
        let map = conv2d(g, x, conv, &format!("{name}.{i}"))?;
        flat.push(g.flatten_level(&map, per_anchor));
    }
    Ok(g.concat(&flat, 1))
}

/// `softmax(class_logits, axis 2)[:, :, 1]`: `[N, A, 2]` → `[N, A]` face probabilities.
fn face_probabilities(g: &mut Graph, class_logits: &Value) -> Value {
    let probabilities = g.softmax(class_logits, 2);
    let face = g.scalar_i64(1);
    g.gather(&probabilities, &face, 2)
}

#[cfg(test)]
#[path = "retinaface_tests.rs"]
mod tests;
