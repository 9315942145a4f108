//! The mesh decoder of RetinaFace's dense 3D branch (the CMD decoder of Zhou et al. 2019):
//! a 128-value code → Dense → the coarsest mesh level → per level, coarse to fine,
//! [up-sample → Chebyshev convolution → ReLU] → a last Chebyshev convolution to per-vertex
//! xyz offsets and rgb on the template (468 vertices). Also its mirror encoder, the random
//! deformed faces it is pre-trained on and the pre-training loop.

mod config;
pub mod deform;
mod dense;
mod encoder;
mod mesh_decoder;
pub mod pretrain;

pub use config::MeshDecoderConfig;
pub use deform::{random_face, MID_SKIN};
pub use encoder::MeshEncoder;
pub use mesh_decoder::{DecodedMesh, MeshDecoder};
pub use pretrain::{pretrain_decoder, PretrainConfig, PretrainReport};

/// Values per vertex the decoder predicts: xyz offset, then rgb offset from mid-grey.
pub const VERTEX_OUTPUTS: usize = 6;
