//! The one inference path of visage: a [`Predictor`] pre-processes images (test-time sizing,
//! normalisation, the passes of test-time augmentation), runs batched forward passes of any
//! family on any backend (passes of one input size together, decoding on worker threads),
//! post-processes with the family's rules and merges each image's passes. `visage detect`,
//! `visage eval --split` and validation during training all go through it.
//!
//! ```text
//! prepare.rs    image → passes (size, scale, mirror) → normalised [3, H, W]
//! batch.rs      passes of one size → one forward → detections in the image's frame
//! merge.rs      one image's passes → its detections (one NMS under [test.tta])
//! predictor.rs  files → decoder threads → batches by size → detections, in file order
//! split.rs      a WIDER FACE split → submission and the official Easy / Medium / Hard AP
//! ```
//!
//! Box format: `[x1, y1, x2, y2]` pixels of the original image.

pub mod batch;
mod error;
pub mod merge;
pub mod predictor;
pub mod prepare;
pub mod split;

pub use batch::{detect_batch, group_by_size, BatchTiming};
pub use error::InferError;
pub use merge::merge_passes;
pub use predictor::{Detected, Predictor, RunStats};
pub use prepare::{prepare_pass, prepare_passes, InputNorm, PreparedPass};
pub use split::{detect_split, evaluate_split, to_wider};

#[cfg(test)]
mod tests;
