//! What every family shares below the spec layer: the ground truth of a batch and its
//! per-anchor targets ([`targets`]), the loss values and the sigmoid families' loss parts
//! ([`loss`]), and the one post-processing from per-anchor predictions to detections
//! ([`postprocess`]), the input's pixel normalisation ([`pixels`]), and how the loss of a
//! batch split into shards is weighted back into the batch's ([`shards`]).

pub mod loss;
pub mod pixels;
pub mod postprocess;
pub mod shards;
pub mod targets;
