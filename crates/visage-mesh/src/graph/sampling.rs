//! Up- and down-sampling between the levels of a [`MeshHierarchy`], and [`LevelOperators`]:
//! every fixed matrix the decoder and the encoder need, built once as constant tensors.

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorCreationOptions, TensorData};

use super::normalised_laplacian;
use crate::{MeshError, MeshHierarchy, Upsampling};

/// The dense up-sampling matrix `U` of `up`: row `f` holds fine vertex `f`'s weights on the
/// coarse vertices (repeated indices add up).
///
/// # Shapes
/// - returns `[up.fine * up.coarse]`, row-major `[fine, coarse]`.
///
/// # Panics
/// If a source index is `>= up.coarse` or there are more sources than fine vertices (callers
/// validate first, e.g. [`LevelOperators::new`]).
pub fn upsampling_matrix(up: &Upsampling) -> Vec<f32> {
    assert!(
        up.sources.len() <= up.fine,
        "more sources than fine vertices"
    );
    let mut matrix = vec![0.0f32; up.fine * up.coarse];
    for (f, (indices, weights)) in up.sources.iter().enumerate() {
        for (&c, &w) in indices.iter().zip(weights) {
            assert!(c < up.coarse, "coarse index {c} outside 0..{}", up.coarse);
            matrix[f * up.coarse + c] += w;
        }
    }
    matrix
}

/// Up-samples per-vertex features from a coarse level to a fine one: `U x` per mesh. `matrix`
/// is cast to `x`'s float type.
///
/// # Shapes
/// - `x`: `[M, V_coarse, C]`
/// - `matrix`: `[V_fine, V_coarse]` (from [`upsampling_matrix`])
/// - returns `[M, V_fine, C]`
pub fn up_sample<B: Backend>(x: Tensor<B, 3>, matrix: Tensor<B, 2>) -> Tensor<B, 3> {
    matrix.cast(x.dtype()).unsqueeze::<3>().matmul(x)
}

/// Down-samples per-vertex features by keeping the listed vertices (in that order).
///
/// # Shapes
/// - `x`: `[M, V_fine, C]`
/// - `kept`: `[V_coarse]`, fine-level indices
/// - returns `[M, V_coarse, C]`
pub fn down_sample<B: Backend>(x: Tensor<B, 3>, kept: Tensor<B, 1, Int>) -> Tensor<B, 3> {
    x.select(1, kept)
}

/// The fixed operators of a hierarchy as tensors: per level its scaled Laplacian, and between
/// levels the up-sampling matrices and the kept indices.
///
/// They are constant tensors of the module (Burn's derive treats plain `Tensor` fields as
/// constants): they move with the module between devices and into its inner (non-autodiff)
/// form, get no gradients, and are not written into records, so a saved model holds only
/// learnt weights and is loaded back into a module built from the same hierarchy.
#[derive(Module, Debug)]
pub struct LevelOperators<B: Backend> {
    /// `laplacians[k]`: `[V_k, V_k]`.
    laplacians: Vec<Tensor<B, 2>>,
    /// `up[k]`: `[V_k, V_{k+1}]`.
    up: Vec<Tensor<B, 2>>,
    /// `down[k]`: `[V_{k+1}]`, level-`k` indices.
    down: Vec<Tensor<B, 1, Int>>,
}

impl<B: Backend> LevelOperators<B> {
    /// Builds the operators of `hierarchy` on `options`' device, with its float type when it
    /// names one (`(&device, DType::F64)`) or the device's default (`&device`).
    ///
    /// # Errors
    /// [`MeshError::Hierarchy`] if [`MeshHierarchy::validate`] fails (counts or indices out
    /// of range, weights that do not sum to 1, ...).
    pub fn new(
        hierarchy: &MeshHierarchy,
        options: impl Into<TensorCreationOptions<B>>,
    ) -> Result<Self, MeshError> {
        hierarchy
            .validate()
            .map_err(|message| MeshError::Hierarchy {
                origin: "<memory>".into(),
                message,
            })?;
        let options: TensorCreationOptions<B> = options.into();
        let laplacians = hierarchy
            .levels
            .iter()
            .map(|level| {
                let n = level.vertex_count;
                let data = TensorData::new(normalised_laplacian(n, &level.triangles), [n, n]);
                Tensor::from_data(data, options.clone())
            })
            .collect();
        let up = hierarchy
            .up
            .iter()
            .map(|u| {
                let data = TensorData::new(upsampling_matrix(u), [u.fine, u.coarse]);
                Tensor::from_data(data, options.clone())
            })
            .collect();
        let down = hierarchy
            .down
            .iter()
            .map(|kept| {
                let indices: Vec<i64> = kept.iter().map(|&i| i as i64).collect();
                Tensor::from_data(TensorData::new(indices, [kept.len()]), &options.device)
            })
            .collect();
        Ok(Self {
            laplacians,
            up,
            down,
        })
    }

    /// Number of levels (the template is level 0).
    pub fn levels(&self) -> usize {
        self.laplacians.len()
    }

    /// Vertices at `level`.
    ///
    /// # Panics
    /// If `level >= self.levels()`.
    pub fn vertex_count(&self, level: usize) -> usize {
        self.laplacians[level].dims()[0]
    }

    /// The scaled Laplacian of `level`.
    ///
    /// # Shapes
    /// - returns `[V_level, V_level]`
    pub fn laplacian(&self, level: usize) -> Tensor<B, 2> {
        self.laplacians[level].clone()
    }

    /// Up-samples from level `level + 1` to `level`.
    ///
    /// # Shapes
    /// - `x`: `[M, V_{level+1}, C]`
    /// - returns `[M, V_level, C]`
    pub fn up_sample(&self, x: Tensor<B, 3>, level: usize) -> Tensor<B, 3> {
        up_sample(x, self.up[level].clone())
    }

    /// Down-samples from level `level` to `level + 1`.
    ///
    /// # Shapes
    /// - `x`: `[M, V_level, C]`
    /// - returns `[M, V_{level+1}, C]`
    pub fn down_sample(&self, x: Tensor<B, 3>, level: usize) -> Tensor<B, 3> {
        down_sample(x, self.down[level].clone())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::MeshLevel;
    use burn::backend::Flex;
    use burn::tensor::DType;

    type B = Flex;

    /// A square with its centre (5 vertices, 4 triangles), the square (4 vertices, 2
    /// triangles) and one triangle of it, listed in another order (3 vertices).
    pub(crate) fn tiny_hierarchy() -> MeshHierarchy {
        MeshHierarchy {
            levels: vec![
                MeshLevel {
                    vertex_count: 5,
                    triangles: vec![[0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]],
                },
                MeshLevel {
                    vertex_count: 4,
                    triangles: vec![[0, 1, 2], [0, 2, 3]],
                },
                MeshLevel {
                    vertex_count: 3,
                    triangles: vec![[0, 1, 2]],
                },
            ],
            down: vec![vec![0, 1, 2, 3], vec![2, 0, 1]],
            up: vec![
                Upsampling {
                    fine: 5,
                    coarse: 4,
                    sources: vec![
                        ([0, 0, 0], [1.0, 0.0, 0.0]),
                        ([1, 1, 1], [1.0, 0.0, 0.0]),
                        ([2, 2, 2], [1.0, 0.0, 0.0]),
                        ([3, 3, 3], [1.0, 0.0, 0.0]),
                        ([0, 2, 1], [0.5, 0.5, 0.0]),
                    ],
                },
                Upsampling {
                    fine: 4,
                    coarse: 3,
                    sources: vec![
                        ([1, 1, 1], [1.0, 0.0, 0.0]),
                        ([2, 2, 2], [1.0, 0.0, 0.0]),
                        ([0, 0, 0], [1.0, 0.0, 0.0]),
                        ([0, 1, 1], [0.25, 0.75, 0.0]),
                    ],
                },
            ],
        }
    }

    #[test]
    fn upsampling_matrix_adds_repeated_indices() {
        let m = upsampling_matrix(&tiny_hierarchy().up[1]);
        #[rustfmt::skip]
        let want = vec![
            0.0, 1.0, 0.0,
            0.0, 0.0, 1.0,
            1.0, 0.0, 0.0,
            0.25, 0.75, 0.0,
        ];
        assert_eq!(m, want);
    }

    #[test]
    fn operators_shapes_and_sampling() {
        let device = Default::default();
        let ops = LevelOperators::<B>::new(&tiny_hierarchy(), &device).unwrap();
        assert_eq!(ops.levels(), 3);
        let counts = (
            ops.vertex_count(0),
            ops.vertex_count(1),
            ops.vertex_count(2),
        );
        assert_eq!(counts, (5, 4, 3));
        assert_eq!(ops.laplacian(1).dims(), [4, 4]);
        // One triangle: every vertex of degree 2, off-diagonal entries −1/2.
        assert_eq!(ops.laplacian(2).sum().into_scalar(), -3.0);

        let x = Tensor::<B, 3>::from_floats(
            [[[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]]],
            &device,
        );
        let up = ops.up_sample(x.clone(), 0);
        let want = Tensor::<B, 3>::from_floats(
            [[
                [1.0, 10.0],
                [2.0, 20.0],
                [3.0, 30.0],
                [4.0, 40.0],
                [2.0, 20.0],
            ]],
            &device,
        );
        up.into_data().assert_eq(&want.into_data(), true);
        let down = ops.down_sample(x, 1);
        let want = Tensor::<B, 3>::from_floats([[[3.0, 30.0], [1.0, 10.0], [2.0, 20.0]]], &device);
        down.into_data().assert_eq(&want.into_data(), true);
    }

    #[test]
    fn down_then_up_reproduces_kept_vertices() {
        let device = Default::default();
        let h = tiny_hierarchy();
        let ops = LevelOperators::<B>::new(&h, &device).unwrap();
        let values: Vec<f32> = (0..4 * 3).map(|i| i as f32 * 0.5 - 2.0).collect();
        let x = Tensor::<B, 3>::from_data(TensorData::new(values, [1, 4, 3]), &device);
        let round = ops.up_sample(ops.down_sample(x.clone(), 1), 1);
        let kept = Tensor::<B, 1, Int>::from_data(TensorData::new(vec![0i64, 1, 2], [3]), &device);
        round
            .select(1, kept.clone())
            .into_data()
            .assert_eq(&x.select(1, kept).into_data(), true);
    }

    #[test]
    fn float64_operators_and_features() {
        let device = Default::default();
        let ops = LevelOperators::<B>::new(&tiny_hierarchy(), (&device, DType::F64)).unwrap();
        assert_eq!(ops.laplacian(0).dtype(), DType::F64);
        let x = Tensor::<B, 3>::from_data(
            TensorData::new(vec![0.5f64; 2 * 4 * 3], [2, 4, 3]),
            (&device, DType::F64),
        );
        assert_eq!(ops.up_sample(x.clone(), 0).dtype(), DType::F64);
        assert_eq!(ops.down_sample(x, 1).dtype(), DType::F64);
        // f32 operators with f64 features: cast to the features' type.
        let ops32 = LevelOperators::<B>::new(&tiny_hierarchy(), &device).unwrap();
        let x = Tensor::<B, 3>::from_data(
            TensorData::new(vec![0.5f64; 3 * 2], [1, 3, 2]),
            (&device, DType::F64),
        );
        assert_eq!(ops32.up_sample(x, 1).dtype(), DType::F64);
    }

    #[test]
    fn inconsistent_hierarchies_are_rejected() {
        let device = Default::default();
        let mut h = tiny_hierarchy();
        h.down[1] = vec![0, 1, 5];
        let err = LevelOperators::<B>::new(&h, &device)
            .unwrap_err()
            .to_string();
        assert!(err.contains("down[1]") && err.contains('5'), "{err}");

        let mut h = tiny_hierarchy();
        h.up.pop();
        assert!(LevelOperators::<B>::new(&h, &device).is_err());
    }

    #[test]
    fn operators_are_not_parameters() {
        let device = Default::default();
        let ops = LevelOperators::<B>::new(&tiny_hierarchy(), &device).unwrap();
        assert_eq!(ops.num_params(), 0);
    }

    #[test]
    fn stored_hierarchy_operators() {
        let device = Default::default();
        let ops = LevelOperators::<B>::new(MeshHierarchy::stored(), &device).unwrap();
        let counts: Vec<usize> = (0..ops.levels()).map(|k| ops.vertex_count(k)).collect();
        assert_eq!(counts, vec![468, 234, 117, 59, 30]);
        // Up-sampling rows are convex combinations: constants stay constant.
        let x = Tensor::<B, 3>::ones([2, 30, 5], &device);
        let mut y = x;
        for level in (0..4).rev() {
            y = ops.up_sample(y, level);
        }
        assert_eq!(y.dims(), [2, 468, 5]);
        let err = y.sub_scalar(1.0).abs().max().into_scalar();
        assert!(err < 1e-5, "{err}");
    }
}
