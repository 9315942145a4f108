//! The SRN / AInnoFace family: the backbone, SRN's neck, the shared class / box branches on
//! the first step's STC (class) and STR (box) levels and on every second-step level, and the
//! selective two-step policy of `Srn::predictions` in the graph:
//! - **STC**: on the `stc.levels` finest levels, an anchor whose first-step face probability
//!   is below `stc.drop_score` scores `-1` (never a detection);
//! - **STR**: on the `str.levels` coarsest levels, the second step's anchors are the anchors
//!   decoded with the first step's deltas (`BoxCoder::decode`, exponent clamped), one set
//!   per image.
//!
//! Anchor order everywhere: level (finest first), y, x, anchor. `A` counts the anchors of
//! every level, `A_stc` those of the STC levels (a prefix of the `A`), `A_str` those of the
//! STR levels (a suffix).

use visage_anchors::AnchorGenerator;
use visage_boxes::{BoxCoder, BBOX_XFORM_CLIP};
use visage_kernels::KernelBackend;
use visage_model::{DecodeRules, DetectorFamily, Srn};

use crate::anchors::anchors_in_graph;
use crate::error::ExportError;
use crate::families::{DecodeInputs, ExportFamily, GraphAnchors, NetworkGraph, RawOutput};
use crate::graph::{Graph, Value};
use crate::layers::backbone::{backbone, level};
use crate::layers::srn::{srn_neck, SrnBranchGraph};

impl<B: KernelBackend> ExportFamily for Srn<B> {
    fn export_network(&self, g: &mut Graph, images: &Value) -> Result<NetworkGraph, ExportError> {
        let spec = self.spec();
        let (stc, str_levels) = (spec.stc.levels, spec.two_step_regression.levels);
        let levels = backbone(g, images, &self.backbone, "backbone")?;
        let inputs = self
            .neck_input_strides()
            .iter()
            .map(|&stride| level(&levels, stride, "neck"))
            .collect::<Result<Vec<_>, _>>()?;
        let num_levels = inputs.len() + 2;
        let str_start = num_levels - str_levels;
        let first_used: Vec<bool> = (0..num_levels).map(|l| l < stc || l >= str_start).collect();
        let features = srn_neck(g, &inputs, &self.neck, &first_used, "neck")?;
        let cls_branch = SrnBranchGraph::new(g, &self.head.cls_branch, "head.cls_branch")?;
        let box_branch = SrnBranchGraph::new(g, &self.head.box_branch, "head.box_branch")?;
        let mut run = |branch: &SrnBranchGraph, x: &Value, channels: usize| {
            let y = branch.apply(g, x);
            g.flatten_level(&y, channels)
        };
        // Per level `[N, H_l·W_l·A_l, 1]` and `[N, H_l·W_l·A_l, 4]`.
        let first_step = |l: usize| features.first[l].clone().expect("read on this level");
        let first_cls: Vec<Value> = (0..stc)
            .map(|l| run(&cls_branch, &first_step(l), 1))
            .collect();
        let first_box: Vec<Value> = (str_start..num_levels)
            .map(|l| run(&box_branch, &first_step(l), 4))
            .collect();
        let cls: Vec<Value> = features
            .second
            .iter()
            .map(|x| run(&cls_branch, x, 1))
            .collect();
        let boxes: Vec<Value> = features
            .second
            .iter()
            .map(|x| run(&box_branch, x, 4))
            .collect();

        let first_cls = concat_levels(g, &first_cls);
        let first_box = concat_levels(g, &first_box);
        let scores = stc_scores(g, &cls, stc, first_cls.as_ref(), spec.stc.drop_score);
        let cls_logits = concat_levels(g, &cls).expect("at least one level");
        let box_deltas = concat_levels(g, &boxes).expect("at least one level");
        let anchors = second_step_anchors(
            g,
            images,
            self.anchor_generator(),
            &features.second,
            str_levels,
            first_box.as_ref(),
            self.coder(),
        );

        let mut raw = vec![
            RawOutput {
                name: "cls_logits",
                anchors: "A",
                value: cls_logits,
                channels: 1,
                doc: "second-step face logits of every anchor (A over all levels); sigmoid \
                      gives the probability, except that STC drops the anchors of the \
                      finest levels whose first-step probability is below stc.drop_score",
            },
            RawOutput {
                name: "box_deltas",
                anchors: "A",
                value: box_deltas.clone(),
                channels: 4,
                doc: "second-step box deltas of every anchor (A over all levels), relative to \
                      the anchors, and on the STR levels to the anchors refined by \
                      first_box_deltas",
            },
        ];
        if let Some(value) = &first_cls {
            raw.push(RawOutput {
                name: "first_cls_logits",
                anchors: "A_stc",
                value: value.clone(),
                channels: 1,
                doc: "first-step face logits of the anchors of the stc.levels finest levels \
                      (the first A_stc of the A anchors); an anchor whose sigmoid is below \
                      stc.drop_score is never a detection",
            });
        }
        if let Some(value) = &first_box {
            raw.push(RawOutput {
                name: "first_box_deltas",
                anchors: "A_str",
                value: value.clone(),
                channels: 4,
                doc: "first-step box deltas of the anchors of the str.levels coarsest levels \
                      (the last A_str of the A anchors), relative to the anchors: decoded, \
                      they are the anchors of box_deltas there",
            });
        }
        Ok(NetworkGraph {
            raw,
            decode: DecodeInputs {
                scores,
                box_deltas,
                landmark_deltas: None,
                anchors: GraphAnchors::PerImage(anchors),
                coder: self.coder(),
                rules: DecodeRules::VISAGE,
            },
            anchors: self.anchor_generator().clone(),
        })
    }
}

/// Per-level `[N, A_l, C]` values concatenated along the anchors; `None` for no levels.
fn concat_levels(g: &mut Graph, levels: &[Value]) -> Option<Value> {
    match levels {
        [] => None,
        [one] => Some(one.clone()),
        many => Some(g.concat(many, 1)),
    }
}

/// `[N, A]` second-step face probabilities from `cls` (the second-step logits per level,
/// `[N, A_l, 1]`), `-1` for the anchors of the `stc` finest levels whose first-step
/// probability (`first_cls`: `[N, A_stc, 1]` logits) is below `drop_score`.
fn stc_scores(
    g: &mut Graph,
    cls: &[Value],
    stc: usize,
    first_cls: Option<&Value>,
    drop_score: f32,
) -> Value {
    let mut parts = Vec::with_capacity(2);
    if let (Some(first), Some(stc_logits)) = (first_cls, concat_levels(g, &cls[..stc])) {
        let probabilities = g.sigmoid(&stc_logits);
        let first_probabilities = g.sigmoid(first);
        let threshold = g.scalar(drop_score);
        let dropped = g.node("Less", &[&first_probabilities, &threshold], vec![]);
        let never = g.scalar(-1.0);
        parts.push(g.node("Where", &[&dropped, &never, &probabilities], vec![]));
    }
    if let Some(rest) = concat_levels(g, &cls[stc..]) {
        parts.push(g.sigmoid(&rest));
    }
    let scores = concat_levels(g, &parts).expect("at least one level");
    g.reshape(&scores, &[0, -1])
}

/// `[N, A, 4]` second-step anchors of each image (`images` `[N, 3, H, W]` gives `N`): the
/// anchors of `generator` on the levels of `features` (`[N, C, H_l, W_l]` each), those of
/// the `str_levels` coarsest levels decoded with the first step's deltas `first_box`
/// (`[N, A_str, 4]`) as `Srn::predictions` does.
fn second_step_anchors(
    g: &mut Graph,
    images: &Value,
    generator: &AnchorGenerator,
    features: &[Value],
    str_levels: usize,
    first_box: Option<&Value>,
    coder: BoxCoder,
) -> Value {
    let str_start = features.len() - str_levels;
    let mut parts = Vec::with_capacity(2);
    if str_start > 0 {
        let plain = anchors_of_levels(g, generator, features, 0..str_start); // [A - A_str, 4]
        let plain = g.unsqueeze(&plain, &[0]);
        let image_shape = g.shape(images);
        let batch = g.slice(&image_shape, &[0], &[1], &[0]);
        let ones = g.ints(&[1, 1]);
        let per_image = g.concat(&[batch, ones], 0);
        parts.push(g.node("Expand", &[&plain, &per_image], vec![]));
    }
    if let Some(deltas) = first_box {
        let refined = anchors_of_levels(g, generator, features, str_start..features.len());
        parts.push(decode_boxes(g, &refined, deltas, coder));
    }
    concat_levels(g, &parts).expect("at least one level")
}

/// `[A_r, 4]` anchors of the levels in `range` (generated from their feature maps' sizes).
fn anchors_of_levels(
    g: &mut Graph,
    generator: &AnchorGenerator,
    features: &[Value],
    range: std::ops::Range<usize>,
) -> Value {
    let subset = AnchorGenerator::new(generator.levels()[range.clone()].to_vec())
        .expect("a subset of a valid generator's levels is valid");
    anchors_in_graph(g, &subset, &features[range])
}

/// `BoxCoder::decode` in the graph: `anchors` `[..., 4]` xyxy and `deltas` `[..., 4]`
/// (broadcasting) → xyxy boxes, size exponents clamped at `BBOX_XFORM_CLIP`, with the host's
/// f32 operations in the host's order.
fn decode_boxes(g: &mut Graph, anchors: &Value, deltas: &Value, coder: BoxCoder) -> Value {
    let [v0, v1] = coder.variances;
    let column = |g: &mut Graph, x: &Value, i: i64| g.slice(x, &[i], &[i + 1], &[-1]);
    let [ax1, ay1, ax2, ay2] = [0, 1, 2, 3].map(|i| column(g, anchors, i));
    let [dx, dy, dw, dh] = [0, 1, 2, 3].map(|i| column(g, deltas, i));
    let (half, v0, v1) = (g.scalar(0.5), g.scalar(v0), g.scalar(v1));
    let clip = g.scalar(BBOX_XFORM_CLIP);
    let axis = |g: &mut Graph, a1: &Value, a2: &Value, d: &Value, ds: &Value| {
        let sum = g.add(a1, a2);
        let centre = g.mul(&half, &sum);
        let size = g.sub(a2, a1);
        let offset = g.mul(d, &v0);
        let offset = g.mul(&offset, &size);
        let centre = g.add(&centre, &offset);
        let exponent = g.mul(ds, &v1);
        let exponent = g.min(&exponent, &clip);
        let scale = g.exp(&exponent);
        let side = g.mul(&size, &scale);
        let half_side = g.mul(&half, &side);
        (g.sub(&centre, &half_side), g.add(&centre, &half_side))
    };
    let (x1, x2) = axis(g, &ax1, &ax2, &dx, &dw);
    let (y1, y2) = axis(g, &ay1, &ay2, &dy, &dh);
    g.concat(&[x1, y1, x2, y2], -1)
}

#[cfg(test)]
#[path = "srn_tests.rs"]
mod tests;
