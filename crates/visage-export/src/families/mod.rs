//! The families' exporters: each writes its network from the normalised `images` input to
//! its raw per-anchor outputs, and says how they decode ([`NetworkGraph`]).

pub mod retinaface;
pub mod retinanet;
pub mod srn;

use visage_anchors::AnchorGenerator;
use visage_boxes::BoxCoder;
use visage_model::DecodeRules;

use crate::error::ExportError;
use crate::graph::{Graph, Value};

/// A family whose network the exporter can write.
pub trait ExportFamily {
    /// Writes the network reading `images` (`[N, 3, H, W]` float32, normalised as the
    /// config's `[data]` says) into `g`: every parameter it uses is read through
    /// [`Graph::read`] (batch norm folded), training-only branches are recorded with
    /// [`Graph::leave_out`].
    ///
    /// # Errors
    /// [`ExportError::UnsupportedLayer`] naming a layer the graph cannot express.
    fn export_network(&self, g: &mut Graph, images: &Value) -> Result<NetworkGraph, ExportError>;
}

/// A family's network in the graph.
#[derive(Debug, Clone)]
pub struct NetworkGraph {
    /// The raw outputs, each `[N, A, channels]` over the `A` anchors of an image in the
    /// family's anchor order (level, y, x, anchor), written as graph outputs without
    /// `--postprocess`.
    pub raw: Vec<RawOutput>,
    /// What the post-processing graph decodes.
    pub decode: DecodeInputs,
    /// The anchors' generator (per level: stride, sizes, aspect ratios), for the metadata.
    pub anchors: AnchorGenerator,
}

/// One raw output of the network.
#[derive(Debug, Clone)]
pub struct RawOutput {
    /// The graph output's name, e.g. `cls_logits`.
    pub name: &'static str,
    /// `[N, A, channels]`.
    pub value: Value,
    /// The name of its anchor dimension in the graph's declared shape: `A` for outputs over
    /// every anchor, another name (SRN's `A_stc`, `A_str`) for outputs over a subset.
    pub anchors: &'static str,
    /// The last dimension.
    pub channels: usize,
    /// What it holds and how it decodes (written into the metadata).
    pub doc: &'static str,
}

/// The per-anchor predictions the post-processing graph decodes, with the family's rules.
#[derive(Debug, Clone)]
pub struct DecodeInputs {
    /// `[N, A]` face probabilities; an anchor that can never be a detection (SRN's STC
    /// filter) scores `-1`.
    pub scores: Value,
    /// `[N, A, 4]` box deltas for `coder`.
    pub box_deltas: Value,
    /// `[N, A, 10]` landmark deltas (RetinaFace); `None` otherwise.
    pub landmark_deltas: Option<Value>,
    /// The anchors the deltas are relative to, xyxy pixels of the input.
    pub anchors: GraphAnchors,
    /// The family's box coder (variances).
    pub coder: BoxCoder,
    /// The family's decoding rules (score comparison, size clamp, clipping, NMS areas).
    pub rules: DecodeRules,
}

/// Anchors in the graph.
#[derive(Debug, Clone)]
pub enum GraphAnchors {
    /// `[A, 4]`, shared by every image.
    Shared(Value),
    /// `[N, A, 4]`, one set per image (SRN's anchors refined by its first step).
    PerImage(Value),
}
