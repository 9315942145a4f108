//! RetinaFace's dense 3D branch (Deng et al. §3.2), on when `[model.mesh]` is present: per
//! anchor a 1×1 conv predicts a shape-and-texture code (128), a camera (7) and a light (9);
//! the graph-convolution decoder turns the code into a coloured 468-vertex face mesh, the
//! differentiable renderer draws it into the anchor's square crop, and `L_pixel` compares
//! the drawing with the image's own pixels there ([`pixel_loss`]).
//!
//! Files: [`spec`] (`[model.mesh]`), [`crops`] (photometric targets), [`pixel_loss`],
//! [`fit`] (meshes of detections in image pixels).

pub(crate) mod crops;
pub mod fit;
pub(crate) mod pixel_loss;
pub mod spec;
#[cfg(test)]
mod tests;

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::Initializer;
use burn::prelude::*;
use burn_store::{ModuleSnapshot, SafetensorsStore};
use visage_heads::flatten_levels;
use visage_kernels::{conv2d_layer, KernelBackend};
use visage_mesh::decoder::MeshDecoder;
use visage_mesh::decoder::{pretrain_decoder, PretrainReport};
use visage_mesh::render::{render, Rendering};
use visage_mesh::{FaceMesh, MeshHierarchy};

pub use fit::FittedMesh;
pub use spec::MeshSpec;

use crate::error::ModelError;

/// Camera values per anchor: eye offset (3), look-at point (3), log focal factor (1).
pub const CAMERA_VALUES: usize = 7;
/// Light values per anchor: point-light offset (3), light colour (3), ambient colour (3).
pub const LIGHT_VALUES: usize = 9;

/// Raw values per anchor of a spec: the code, then camera and light (144 for the paper's
/// 128-value code).
pub fn values_per_anchor(spec: &MeshSpec) -> usize {
    spec.decoder.code_size + CAMERA_VALUES + LIGHT_VALUES
}

/// Rows of raw per-anchor values split into the code, the camera and the light.
///
/// # Shapes
/// `rows`: `[M, code_size + 16]` → `[M, code_size]`, `[M, 7]`, `[M, 9]`.
pub(crate) fn split_values<B: KernelBackend>(
    rows: Tensor<B, 2>,
    code_size: usize,
) -> (Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 2>) {
    (
        rows.clone().narrow(1, 0, code_size),
        rows.clone().narrow(1, code_size, CAMERA_VALUES),
        rows.narrow(1, code_size + CAMERA_VALUES, LIGHT_VALUES),
    )
}

/// The meshes of rows of raw values decoded by `decoder` and rendered into `size²` crops
/// (the template's triangles).
///
/// # Shapes
/// `rows`: `[M, code_size + 16]`.
pub(crate) fn render_values<B: KernelBackend>(
    decoder: &MeshDecoder<B>,
    rows: Tensor<B, 2>,
    size: usize,
) -> Rendering<B> {
    let (code, camera, light) = split_values(rows, decoder.code_size());
    let mesh = decoder.decode(code);
    render(
        mesh.positions,
        mesh.colours,
        camera,
        light,
        &FaceMesh::canonical().triangles,
        size,
    )
}

/// The branch's weights: one 1×1 conv per level and the decoder.
#[derive(Module, Debug)]
pub struct MeshBranch<B: Backend> {
    /// Per-level 1×1 convs, `C → A · (code + 16)` channels.
    pub head: Vec<Conv2d<B>>,
    /// The mesh decoder (pre-trained at the start of a new run).
    pub decoder: MeshDecoder<B>,
}

impl<B: KernelBackend> MeshBranch<B> {
    /// A new branch for `levels` feature maps of `channels` channels with `anchors` anchors
    /// per location. The head starts near zero (normal, σ = 0.01, zero bias) so every anchor
    /// starts from the default camera and light and the decoder's mean face.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming `model.mesh.decoder` if the decoder does not fit
    /// the stored mesh hierarchy.
    pub fn new(
        spec: &MeshSpec,
        levels: usize,
        channels: usize,
        anchors: usize,
        device: &B::Device,
    ) -> Result<Self, ModelError> {
        let per_anchor = values_per_anchor(spec);
        let head = (0..levels)
            .map(|_| {
                Conv2dConfig::new([channels, anchors * per_anchor], [1, 1])
                    .with_initializer(Initializer::Normal {
                        mean: 0.0,
                        std: 0.01,
                    })
                    .init(device)
            })
            .map(|mut conv: Conv2d<B>| {
                conv.bias = conv.bias.map(|b| b.map(|t| t.zeros_like()));
                conv
            })
            .collect();
        let decoder = spec
            .decoder
            .init::<B>(MeshHierarchy::stored(), device)
            .map_err(|e| crate::spec::keys::invalid("model.mesh.decoder", e.to_string()))?;
        Ok(Self { head, decoder })
    }

    /// The raw per-anchor values over all anchors, in the anchor order of the other heads
    /// (level, y, x, anchor).
    ///
    /// # Shapes
    /// - `features`: per level `[B, C, h_l, w_l]`
    /// - returns `[B, N, code + 16]`
    pub fn forward(&self, features: &[Tensor<B, 4>], per_anchor: usize) -> Tensor<B, 3> {
        let maps = self
            .head
            .iter()
            .zip(features)
            .map(|(conv, f)| conv2d_layer(conv, f.clone()))
            .collect();
        flatten_levels(maps, per_anchor)
    }

    /// The decoder as the loss uses it: with its parameters detached when the spec freezes
    /// it (gradients still flow through it to the code).
    pub(crate) fn decoder_for_loss(&self, spec: &MeshSpec) -> MeshDecoder<B> {
        if spec.freeze_decoder {
            self.decoder.clone().no_grad()
        } else {
            self.decoder.clone()
        }
    }

    /// Replaces the decoder with one pre-trained as a mesh autoencoder on the CPU
    /// (`[model.mesh.pretrain]`; nothing when `steps = 0`).
    ///
    /// # Errors
    /// [`ModelError::InvalidInput`] if pre-training or moving its weights fails.
    pub fn pretrain_decoder(
        mut self,
        spec: &MeshSpec,
        on_step: impl FnMut(usize, f32),
    ) -> Result<(Self, Option<PretrainReport>), ModelError> {
        if spec.pretrain.steps == 0 {
            return Ok((self, None));
        }
        type Cpu = burn::backend::Autodiff<burn::backend::Flex>;
        let (trained, report) = pretrain_decoder::<Cpu>(
            &spec.decoder,
            &spec.pretrain,
            MeshHierarchy::stored(),
            &Default::default(),
            on_step,
        )
        .map_err(|e| ModelError::InvalidInput(format!("mesh decoder pre-training: {e}")))?;
        // Move the weights to this backend through an in-memory safetensors file.
        let mut store = SafetensorsStore::from_bytes(None);
        trained
            .save_into(&mut store)
            .map_err(|e| ModelError::InvalidInput(format!("mesh decoder weights: {e}")))?;
        let bytes = store
            .get_bytes()
            .map_err(|e| ModelError::InvalidInput(format!("mesh decoder weights: {e}")))?;
        let mut store = SafetensorsStore::from_bytes(Some(bytes));
        self.decoder
            .load_from(&mut store)
            .map_err(|e| ModelError::InvalidInput(format!("mesh decoder weights: {e}")))?;
        Ok((self, Some(report)))
    }
}
