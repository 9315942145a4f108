//! Smooth-L1 (Huber) loss (Girshick, "Fast R-CNN", 2015), element-wise.

use burn::tensor::{backend::Backend, Tensor};

/// Smooth-L1 loss with transition point `beta`, element-wise.
///
/// With `d = |pred − target|`:
///
/// `smooth_l1(d) = 0.5·d²/β` if `d < β`, else `d − 0.5·β`.
///
/// `beta = 0` gives plain L1 (`d`). Fast R-CNN uses β = 1, Detectron-style RetinaNet code
/// β = 1/9. The loss is continuous with a continuous first derivative at `d = β`, and
/// its gradient at `d = 0` is 0 (for β = 0 too: Burn's `abs` has slope 0 at 0).
///
/// # Shapes
/// - `pred`, `target`: `[..]`, any shape, the same for both (e.g. `[N, 4]` encoded boxes,
///   `[N, 10]` encoded landmarks).
/// - returns: the same shape; the caller masks positives and reduces.
///
/// # Panics
/// If `beta` is negative or not finite.
pub fn smooth_l1<B: Backend, const D: usize>(
    pred: Tensor<B, D>,
    target: Tensor<B, D>,
    beta: f32,
) -> Tensor<B, D> {
    assert!(
        beta.is_finite() && beta >= 0.0,
        "smooth-L1 beta must be finite and non-negative, got {beta}"
    );
    let diff = (pred - target).abs();
    if beta == 0.0 {
        return diff;
    }
    let quadratic = diff.clone().square().mul_scalar(0.5 / beta);
    let linear = diff.clone().sub_scalar(0.5 * beta);
    let in_quadratic_zone = diff.lower_elem(beta);
    linear.mask_where(in_quadratic_zone, quadratic)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, check_gradient, tensor, values, Ad, Cpu};
    use proptest::prelude::*;

    #[test]
    fn matches_hand_computation() {
        // β = 1: d = 0.5 → 0.5·0.25 = 0.125; d = 2 → 2 − 0.5 = 1.5; d = 0 → 0;
        // d = 1 (boundary, linear branch) → 0.5; d = 3.5 → 3.
        let pred = tensor::<Cpu, 2>(&[0.5, -2.0, 1.0, 1.0, 0.0, 4.0], [2, 3]);
        let target = tensor::<Cpu, 2>(&[0.0, 0.0, 1.0, 0.0, 3.5, 0.5], [2, 3]);
        let out = values(smooth_l1(pred, target, 1.0));
        assert_close(&out, &[0.125, 1.5, 0.0, 0.5, 3.0, 3.0], 1e-6);
    }

    #[test]
    fn small_beta_matches_detectron_values() {
        // β = 1/9: d = 0.05 → 0.5·0.0025·9 = 0.01125; d = 0.5 → 0.5 − 1/18 = 0.444444.
        let out = values(smooth_l1(
            tensor::<Cpu, 1>(&[0.05, 0.5], [2]),
            tensor::<Cpu, 1>(&[0.0, 0.0], [2]),
            1.0 / 9.0,
        ));
        assert_close(&out, &[0.01125, 0.444_444], 1e-6);
    }

    #[test]
    fn beta_zero_is_l1() {
        let out = values(smooth_l1(
            tensor::<Cpu, 1>(&[0.3, -2.0, 5.0], [3]),
            tensor::<Cpu, 1>(&[0.0, 1.0, 5.0], [3]),
            0.0,
        ));
        assert_close(&out, &[0.3, 3.0, 0.0], 1e-6);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        // Points away from the kink at |d| = β = 0.5; tolerance 1e-3 relative, h = 1e-3.
        let target = [0.0, 0.0, 1.0, -1.0, 0.2, 0.0];
        check_gradient(
            |x| smooth_l1(x, tensor(&target, [3, 2]), 0.5),
            &[0.2, -0.3, 2.0, -3.0, 0.1, 0.45],
            [3, 2],
            1e-3,
            1e-3,
        );
    }

    #[test]
    fn gradient_is_clipped_to_unit_slope() {
        // Quadratic zone: d/dx = (x − t)/β; linear zone: sign(x − t).
        let x = tensor::<Ad, 1>(&[0.25, -0.25, 10.0, -10.0], [4]).require_grad();
        let loss = smooth_l1(x.clone(), tensor(&[0.0; 4], [4]), 0.5);
        let g = values(x.grad(&loss.sum().backward()).unwrap());
        assert_close(&g, &[0.5, -0.5, 1.0, -1.0], 1e-6);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn between_scaled_l2_and_l1(d in -20.0f32..20.0, beta in 0.01f32..3.0) {
            // 0 ≤ smooth_l1 ≤ |d| and smooth_l1 ≤ 0.5·d²/β everywhere.
            let out = values(smooth_l1(
                tensor::<Cpu, 1>(&[d], [1]),
                tensor::<Cpu, 1>(&[0.0], [1]),
                beta,
            ))[0];
            prop_assert!(out >= 0.0);
            prop_assert!(out <= d.abs() + 1e-5);
            prop_assert!(out <= 0.5 * d * d / beta + 1e-5);
        }
    }
}
