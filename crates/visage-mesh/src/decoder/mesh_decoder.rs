//! The mesh decoder module and its decoded meshes.

use burn::module::Module;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::dense::Dense;
use crate::graph::{ChebConv, LevelOperators};

/// Positions and colours of decoded meshes.
#[derive(Debug, Clone)]
pub struct DecodedMesh<B: Backend> {
    /// Vertex positions in template units (the template's larger half-extent is 1):
    /// template + predicted offsets. `[M, V, 3]`.
    pub positions: Tensor<B, 3>,
    /// Vertex colours, RGB in `[0, 1]` units (not clamped): `0.5 +` predicted offsets.
    /// `[M, V, 3]`.
    pub colours: Tensor<B, 3>,
}

/// The mesh decoder: code → per-vertex offsets on the template (see the module docs).
///
/// The hierarchy's operators and the template are constant tensors (not parameters, not in
/// records): a decoder is loaded by building it from the same config and hierarchy, then
/// `load_record` / `load_file`.
#[derive(Module, Debug)]
pub struct MeshDecoder<B: Backend> {
    /// Code → coarsest level × `channels[0]`.
    pub(super) dense: Dense<B>,
    /// One per up-sampling step, coarse to fine: `blocks[i]` runs at level `L − 2 − i`.
    pub(super) blocks: Vec<ChebConv<B>>,
    /// Finest level, `channels.last()` → 6.
    pub(super) head: ChebConv<B>,
    /// Laplacians, up-sampling matrices, kept indices.
    pub(super) operators: LevelOperators<B>,
    /// Level-0 vertex positions, `[V, 3]`.
    pub(super) template: Tensor<B, 2>,
}

impl<B: Backend> MeshDecoder<B> {
    /// Vertices of the decoded mesh (the template's).
    pub fn vertex_count(&self) -> usize {
        self.template.dims()[0]
    }

    /// Code length the decoder takes.
    pub fn code_size(&self) -> usize {
        self.dense.input_size()
    }

    /// The raw per-vertex outputs: xyz offsets from the template, then rgb offsets from 0.5.
    /// Computed in `code`'s float type.
    ///
    /// # Shapes
    /// - `code`: `[M, code_size]`
    /// - returns `[M, V, 6]` (`V` = 468 for the stored hierarchy)
    pub fn forward(&self, code: Tensor<B, 2>) -> Tensor<B, 3> {
        let [m, _] = code.dims();
        let levels = self.operators.levels();
        let coarsest = self.operators.vertex_count(levels - 1);
        let mut x = self
            .dense
            .forward(code)
            .reshape([m, coarsest, self.blocks[0].in_channels()]);
        for (i, block) in self.blocks.iter().enumerate() {
            let level = levels - 2 - i;
            x = self.operators.up_sample(x, level);
            x = relu(block.forward(x, self.operators.laplacian(level)));
        }
        self.head.forward(x, self.operators.laplacian(0))
    }

    /// Decoded meshes: `positions = template + raw[.., 0..3]`, `colours = 0.5 + raw[.., 3..6]`.
    ///
    /// # Shapes
    /// - `code`: `[M, code_size]`
    /// - returns positions and colours, each `[M, V, 3]`
    pub fn decode(&self, code: Tensor<B, 2>) -> DecodedMesh<B> {
        let raw = self.forward(code);
        DecodedMesh::from_raw(raw, self.template.clone())
    }
}

impl<B: Backend> DecodedMesh<B> {
    /// Splits raw decoder outputs (`[M, V, 6]`) around a template (`[V, 3]`).
    pub(crate) fn from_raw(raw: Tensor<B, 3>, template: Tensor<B, 2>) -> Self {
        let template = template.cast(raw.dtype()).unsqueeze::<3>();
        let positions = raw.clone().narrow(2, 0, 3) + template;
        let colours = raw.narrow(2, 3, 3).add_scalar(0.5);
        Self { positions, colours }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoder::MeshDecoderConfig;
    use crate::graph::sampling_tests::tiny_hierarchy;
    use crate::{FaceMesh, MeshHierarchy};
    use burn::backend::{Autodiff, Flex};
    use burn::module::{ModuleVisitor, Param, ParamId};
    use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
    use burn::tensor::backend::AutodiffBackend;
    use burn::tensor::{DType, Distribution, ElementConversion, TensorData, Tolerance};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    type B = Flex;

    fn tiny_config() -> MeshDecoderConfig {
        MeshDecoderConfig {
            code_size: 8,
            channels: vec![6, 4],
            cheb_k: 3,
        }
    }

    const TINY_TEMPLATE: [[f32; 3]; 5] = [
        [-1.0, -1.0, 0.0],
        [1.0, -1.0, 0.0],
        [1.0, 1.0, 0.0],
        [-1.0, 1.0, 0.0],
        [0.0, 0.0, 0.5],
    ];

    fn tiny_decoder<B: Backend>(seed: u64) -> MeshDecoder<B> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        tiny_config()
            .init_with(
                &tiny_hierarchy(),
                &TINY_TEMPLATE,
                &mut rng,
                &Default::default(),
            )
            .unwrap()
    }

    fn code<B: Backend>(m: usize, size: usize) -> Tensor<B, 2> {
        let values: Vec<f32> = (0..m * size)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0)
            .collect();
        Tensor::from_data(TensorData::new(values, [m, size]), &Default::default())
    }

    #[test]
    fn tiny_shapes_and_decode_split() {
        let decoder = tiny_decoder::<B>(0);
        assert_eq!((decoder.vertex_count(), decoder.code_size()), (5, 8));
        let raw = decoder.forward(code(3, 8));
        assert_eq!(raw.dims(), [3, 5, 6]);
        let DecodedMesh { positions, colours } = decoder.decode(code(3, 8));
        let template = Tensor::<B, 2>::from_data(
            TensorData::new(TINY_TEMPLATE.iter().flatten().copied().collect(), [5, 3]),
            &Default::default(),
        );
        (positions - template.unsqueeze::<3>())
            .into_data()
            .assert_approx_eq::<f32>(
                &raw.clone().narrow(2, 0, 3).into_data(),
                Tolerance::default(),
            );
        colours
            .sub_scalar(0.5)
            .into_data()
            .assert_approx_eq::<f32>(&raw.narrow(2, 3, 3).into_data(), Tolerance::default());
    }

    #[test]
    fn stored_hierarchy_output_shape() {
        let device = Default::default();
        let decoder = MeshDecoderConfig::default()
            .init::<B>(MeshHierarchy::stored(), &device)
            .unwrap();
        assert_eq!(decoder.vertex_count(), FaceMesh::canonical().vertices.len());
        let code = Tensor::<B, 2>::random([2, 128], Distribution::Normal(0.0, 1.0), &device);
        let raw = decoder.forward(code.clone());
        assert_eq!(raw.dims(), [2, 468, 6]);
        let decoded = decoder.decode(code);
        assert_eq!(decoded.positions.dims(), [2, 468, 3]);
        assert_eq!(decoded.colours.dims(), [2, 468, 3]);
        // Dense 128 → 30·64, ChebConvs 64→64, 64→32, 32→32, 32→16, 16→6, K = 6.
        let cheb = |i: usize, o: usize| 6 * i * o + o;
        let want = 128 * 30 * 64
            + 30 * 64
            + cheb(64, 64)
            + cheb(64, 32)
            + cheb(32, 32)
            + cheb(32, 16)
            + cheb(16, 6);
        assert_eq!(decoder.num_params(), want);
    }

    #[test]
    fn float64_code_gives_float64_meshes() {
        let decoder = tiny_decoder::<B>(1);
        let code32 = code::<B>(2, 8);
        let code64 = Tensor::<B, 2>::from_data(code32.to_data(), (&Default::default(), DType::F64));
        let raw64 = decoder.forward(code64.clone());
        assert_eq!(raw64.dtype(), DType::F64);
        let decoded = decoder.decode(code64);
        assert_eq!(decoded.positions.dtype(), DType::F64);
        assert_eq!(decoded.colours.dtype(), DType::F64);
        raw64.cast(DType::F32).into_data().assert_approx_eq::<f32>(
            &decoder.forward(code32).into_data(),
            Tolerance::absolute(1e-5),
        );
    }

    /// Whether every float parameter has a non-zero gradient.
    struct AllHaveGradients<'a, A: AutodiffBackend> {
        grads: &'a A::Gradients,
        missing: Vec<ParamId>,
        seen: usize,
    }

    impl<A: AutodiffBackend> ModuleVisitor<A> for AllHaveGradients<'_, A> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<A, D>>) {
            self.seen += 1;
            let nonzero = param
                .grad(self.grads)
                .is_some_and(|g| g.abs().sum().into_scalar().elem::<f32>() > 0.0);
            if !nonzero {
                self.missing.push(param.id);
            }
        }
    }

    #[test]
    fn gradients_reach_every_parameter() {
        type A = Autodiff<Flex>;
        let decoder = tiny_decoder::<A>(2);
        let target = Tensor::<A, 3>::ones([4, 5, 6], &Default::default());
        let loss = (decoder.forward(code(4, 8)) - target).abs().mean();
        let grads = loss.backward();
        let mut visitor = AllHaveGradients::<A> {
            grads: &grads,
            missing: vec![],
            seen: 0,
        };
        decoder.visit(&mut visitor);
        // Dense (2) + 2 blocks (2 each) + head (2).
        assert_eq!(visitor.seen, 8);
        assert!(
            visitor.missing.is_empty(),
            "no gradient: {:?}",
            visitor.missing
        );
    }

    #[test]
    fn from_inner_keeps_weights_and_constants() {
        use burn::module::AutodiffModule;
        type A = Autodiff<Flex>;
        let inner = tiny_decoder::<B>(5);
        let want = inner.forward(code(2, 8));
        let outer = <MeshDecoder<A> as AutodiffModule<A>>::from_inner(inner);
        let got = outer.forward(code(2, 8)).inner();
        got.into_data().assert_eq(&want.into_data(), true);
    }

    #[test]
    fn save_then_load_gives_the_same_output() {
        let device = Default::default();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decoder");
        let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
        let config = MeshDecoderConfig::default();
        let hierarchy = MeshHierarchy::stored();
        let template = &FaceMesh::canonical().vertices;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let saved = config
            .init_with::<B>(hierarchy, template, &mut rng, &device)
            .unwrap();
        let code = code::<B>(2, 128);
        let want = saved.forward(code.clone());
        saved.clone().save_file(&path, &recorder).unwrap();

        let mut other = ChaCha8Rng::seed_from_u64(4);
        let fresh = config
            .init_with::<B>(hierarchy, template, &mut other, &device)
            .unwrap();
        let loaded = fresh.load_file(&path, &recorder, &device).unwrap();
        loaded
            .forward(code)
            .into_data()
            .assert_eq(&want.into_data(), true);

        // Only the learnt weights are written: the constants (a 468 × 468 Laplacian alone is
        // 876 KB) are not.
        let bytes = std::fs::metadata(path.with_extension("mpk")).unwrap().len() as usize;
        let weights = saved.num_params() * 4;
        assert!(
            bytes < weights + 64 * 1024,
            "{bytes} bytes for {weights} bytes of weights"
        );
    }
}
