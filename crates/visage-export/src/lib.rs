//! ONNX export of visage's detectors, written from visage's own model description (Burn has
//! no ONNX export): every family's network with batch norm folded into its convolutions, and
//! with `postprocess` the decoding, score threshold, top-k, ONNX `NonMaxSuppression` and the
//! detection cap inside the graph.
//!
//! ```text
//! proto/       the ONNX message types (generated from the official onnx.proto3)
//! graph/       the graph under construction and typed operator helpers
//! families/    each family's network to raw outputs and decode inputs
//! anchors.rs   anchors generated in the graph from the feature maps' sizes
//! layers/      one exporter per component, mirroring its forward (batch norm folded)
//! postprocess/ decoding, threshold, top-k, NMS and the cap in the graph
//! export.rs    input convention, outputs, metadata: the whole model
//! write.rs     the file, written whole or not at all
//! coverage.rs  every parameter read or deliberately left out, or an error naming it
//! error.rs     errors naming the layer, option or parameters
//! ```

pub mod anchors;
pub mod coverage;
mod error;
mod export;
pub mod families;
pub mod graph;
pub mod layers;
pub mod postprocess;
pub mod proto;
#[cfg(test)]
pub(crate) mod testing;
mod write;

pub use error::ExportError;
pub use export::{
    export_model, ExportOptions, InputConvention, InputNormalisation, PlaneOrder, DEFAULT_OPSET,
    OPSETS,
};
pub use families::ExportFamily;
pub use write::write_model;
