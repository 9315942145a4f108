//! RetinaFace's dense 3D branch (Deng et al., §3.2): the face mesh it predicts and everything
//! that turns a 128-value code into pixels.
//!
//! - [`template`]: MediaPipe's canonical face model (468 vertices, 898 triangles, Apache-2.0,
//!   vendored under `data/`), normalised to the unit square, and the OBJ reader.
//! - [`hierarchy`]: the down/up-sampling hierarchy (quadric-error edge collapse, factor 2 per
//!   level: 468 / 234 / 117 / 59 / 30 vertices), computed once by
//!   `cargo run -p visage-mesh --example build_hierarchy` and stored in `data/hierarchy.json`.
//! - [`graph`]: the normalised Laplacian, Chebyshev graph convolution and mesh up-/down-sampling
//!   as dense Burn tensor ops (generic over backends).
//! - [`decoder`]: the mesh decoder (Dense → 4 × [up-sample → ChebConv → ReLU] → ChebConv to
//!   xyz + rgb), its encoder and autoencoder pre-training on deformed templates.
//! - [`render`]: camera (look-at, perspective), host rasterisation of triangle ids, and
//!   differentiable barycentrics, Lambert + ambient shading in Burn ops.

pub mod decoder;
mod error;
pub mod graph;
pub mod hierarchy;
pub mod render;
pub mod template;
#[cfg(test)]
mod testing;

pub use error::MeshError;
pub use hierarchy::{MeshHierarchy, MeshLevel, Upsampling};
pub use template::FaceMesh;
