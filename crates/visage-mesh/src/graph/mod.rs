//! Graph operations on meshes as dense Burn tensor ops, generic over backends: the scaled
//! normalised Laplacian, Chebyshev graph convolution (Defferrard et al. 2016, as used by
//! COMA and the CMD mesh decoder) and up-/down-sampling between the levels of a
//! [`MeshHierarchy`](crate::MeshHierarchy).
//!
//! Dense `V × V` matrices are used throughout: below ~2k vertices one `gemm` beats gathers
//! and scatters, and the face mesh has 468.

mod cheb_conv;
mod laplacian;
mod sampling;

pub use cheb_conv::{ChebConv, ChebConvConfig};
pub use laplacian::normalised_laplacian;
pub use sampling::{down_sample, up_sample, upsampling_matrix, LevelOperators};

use burn::module::{Initializer, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::{Rng, RngCore};

/// A parameter drawn from `U(−limit, limit)`: from `rng` when given (deterministic), otherwise
/// from Burn's own generator (seeded with `B::seed`), like burn-nn's layers.
///
/// # Shapes
/// - returns `shape`.
pub(crate) fn uniform_param<B: Backend, R: RngCore + ?Sized, const D: usize>(
    shape: [usize; D],
    limit: f64,
    rng: Option<&mut R>,
    device: &B::Device,
) -> Param<Tensor<B, D>> {
    match rng {
        Some(rng) => {
            let count = shape.iter().product();
            let values: Vec<f32> = (0..count)
                .map(|_| ((rng.random::<f64>() * 2.0 - 1.0) * limit) as f32)
                .collect();
            Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
        }
        None => Initializer::Uniform {
            min: -limit,
            max: limit,
        }
        .init(shape, device),
    }
}

/// Glorot (Xavier) uniform limit `sqrt(6 / (fan_in + fan_out))`, as torch_geometric's
/// `glorot` (used by the PyTorch COMA / CMD ChebConv) and Keras' `glorot_uniform`.
pub(crate) fn glorot_limit(fan_in: usize, fan_out: usize) -> f64 {
    (6.0 / (fan_in + fan_out).max(1) as f64).sqrt()
}

/// The small hand-made hierarchy of the sampling tests, for other modules' tests.
#[cfg(test)]
pub(crate) use sampling::tests as sampling_tests;
