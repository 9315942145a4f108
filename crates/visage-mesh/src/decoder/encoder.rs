//! The decoder's mirror, used only to pre-train it as an autoencoder: per level, fine to
//! coarse, [Chebyshev convolution → ReLU → down-sample], then Dense to the code.

use burn::module::Module;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use rand::RngCore;

use super::config::{conv, template_tensor};
use super::dense::Dense;
use super::{MeshDecoderConfig, VERTEX_OUTPUTS};
use crate::graph::{ChebConv, ChebConvConfig, LevelOperators};
use crate::{MeshError, MeshHierarchy};

/// Mesh encoder: positions and colours → code. With the decoder's channels `[64, 32, 32, 16]`
/// its convolutions are `6 → 16 → 32 → 32 → 64` at levels 0, 1, 2, 3, each followed by ReLU
/// and a down-sampling, then Dense(`V_coarsest · 64` → `code_size`).
///
/// Its input is what the decoder outputs: offsets from the template and from mid-grey.
#[derive(Module, Debug)]
pub struct MeshEncoder<B: Backend> {
    /// `blocks[k]` runs at level `k`.
    blocks: Vec<ChebConv<B>>,
    /// Coarsest level × last channels → code.
    dense: Dense<B>,
    /// Laplacians, kept indices.
    operators: LevelOperators<B>,
    /// Level-0 vertex positions, `[V, 3]`.
    template: Tensor<B, 2>,
}

impl<B: Backend> MeshEncoder<B> {
    /// The encoder mirroring the decoder that `config` builds on `hierarchy` around
    /// `template`, weights from `rng`.
    ///
    /// # Errors
    /// As [`MeshDecoderConfig::init_with`].
    pub fn mirror<R: RngCore + ?Sized>(
        config: &MeshDecoderConfig,
        hierarchy: &MeshHierarchy,
        template: &[[f32; 3]],
        rng: &mut R,
        device: &B::Device,
    ) -> Result<Self, MeshError> {
        config.validate_for(hierarchy)?;
        let operators = LevelOperators::new(hierarchy, device)?;
        let template = template_tensor(hierarchy, template, device)?;
        let mut blocks = Vec::with_capacity(config.channels.len());
        let mut inputs = VERTEX_OUTPUTS;
        for &outputs in config.channels.iter().rev() {
            let layer = ChebConvConfig::new(inputs, outputs).with_k(config.cheb_k);
            blocks.push(conv(&layer, Some(&mut *rng), device));
            inputs = outputs;
        }
        let coarsest = operators.vertex_count(operators.levels() - 1);
        let dense = Dense::new(coarsest * inputs, config.code_size, Some(rng), device);
        Ok(Self {
            blocks,
            dense,
            operators,
            template,
        })
    }

    /// Codes of meshes.
    ///
    /// # Shapes
    /// - `positions`, `colours`: `[M, V, 3]` (template units; RGB in `[0, 1]`)
    /// - returns `[M, code_size]`
    pub fn forward(&self, positions: Tensor<B, 3>, colours: Tensor<B, 3>) -> Tensor<B, 2> {
        let [m, _, _] = positions.dims();
        let template = self
            .template
            .clone()
            .cast(positions.dtype())
            .unsqueeze::<3>();
        let mut x = Tensor::cat(vec![positions - template, colours.sub_scalar(0.5)], 2);
        for (level, block) in self.blocks.iter().enumerate() {
            x = relu(block.forward(x, self.operators.laplacian(level)));
            x = self.operators.down_sample(x, level);
        }
        let [_, v, c] = x.dims();
        self.dense.forward(x.reshape([m, v * c]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::sampling_tests::tiny_hierarchy;
    use burn::backend::Flex;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn code_shape_and_mirrored_channels() {
        let device = Default::default();
        let h = tiny_hierarchy();
        let template = [[0.0f32; 3]; 5];
        let config = MeshDecoderConfig {
            code_size: 7,
            channels: vec![8, 4],
            cheb_k: 3,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let encoder =
            MeshEncoder::<Flex>::mirror(&config, &h, &template, &mut rng, &device).unwrap();
        let channels: Vec<(usize, usize)> = encoder
            .blocks
            .iter()
            .map(|b| (b.in_channels(), b.out_channels()))
            .collect();
        assert_eq!(channels, vec![(6, 4), (4, 8)]);
        let x = Tensor::<Flex, 3>::ones([2, 5, 3], &device);
        assert_eq!(encoder.forward(x.clone(), x).dims(), [2, 7]);
    }
}
