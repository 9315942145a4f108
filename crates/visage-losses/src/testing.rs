//! Test helpers shared by the loss tests: backends, tensor construction and a central
//! finite-difference gradient check.

use burn::backend::{Autodiff, Flex};
use burn::tensor::{backend::Backend, Tensor, TensorData};

/// The CPU backend the value tests run on.
pub type Cpu = Flex;
/// The autodiff backend the gradient tests run on.
pub type Ad = Autodiff<Flex>;

/// A float tensor of shape `shape` holding `values` (row-major) on the default device.
pub fn tensor<B: Backend, const D: usize>(values: &[f32], shape: [usize; D]) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), &Default::default())
}

/// The values of a float tensor, row-major.
pub fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

/// Asserts `|a − b| ≤ tol` element-wise, naming the first offending index.
pub fn assert_close(actual: &[f32], expected: &[f32], tol: f32) {
    assert_eq!(actual.len(), expected.len(), "length mismatch");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= tol,
            "index {i}: got {a}, expected {e} (tol {tol}); all: {actual:?}"
        );
    }
}

/// Checks the autodiff gradient of the scalar `f(x)` against central finite differences.
///
/// `f` maps an input of shape `shape` to a tensor that is summed to a scalar. The gradient
/// is taken with `Autodiff<Flex>`; each finite difference is `(f(x + h) − f(x − h)) / 2h`
/// evaluated in f32 and accumulated in f64. An entry passes when
/// `|g_ad − g_fd| ≤ tol · max(1, |g_fd|)` (so `tol` is relative for large gradients and
/// absolute for small ones; with h = 1e-3 and losses of order 1, f32 rounding contributes
/// about 1e-4, so `tol = 1e-3` is tight but reliable).
pub fn check_gradient<const D: usize, const E: usize, F>(
    f: F,
    x: &[f32],
    shape: [usize; D],
    h: f32,
    tol: f32,
) where
    F: Fn(Tensor<Ad, D>) -> Tensor<Ad, E>,
{
    let input = tensor::<Ad, D>(x, shape).require_grad();
    let grads = f(input.clone()).sum().backward();
    let analytic = values(input.grad(&grads).expect("the input has a gradient"));

    let eval = |v: &[f32]| -> f64 {
        let out = f(tensor::<Ad, D>(v, shape)).sum();
        f64::from(values(out)[0])
    };
    for i in 0..x.len() {
        let mut plus = x.to_vec();
        plus[i] += h;
        let mut minus = x.to_vec();
        minus[i] -= h;
        let numeric = (eval(&plus) - eval(&minus)) / (2.0 * f64::from(h));
        let diff = (f64::from(analytic[i]) - numeric).abs();
        assert!(
            diff <= f64::from(tol) * numeric.abs().max(1.0),
            "d/dx[{i}]: autodiff {} vs finite difference {numeric} (tol {tol})",
            analytic[i]
        );
    }
}
