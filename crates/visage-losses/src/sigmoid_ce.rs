//! Sigmoid (binary) cross-entropy from logits: FAN's attention maps, DF²S²'s segmentation
//! branch.

use burn::tensor::{activation::log_sigmoid, backend::Backend, Tensor};

/// Binary cross-entropy of `σ(logits)` against `targets`, element-wise.
///
/// `BCE(x, t) = −[t · ln σ(x) + (1 − t) · ln σ(−x)]`, with Burn's stable `log_sigmoid`
/// (`ln σ(x) = −softplus(−x)`), so a logit of ±50 or ±1000 gives a finite loss and a
/// gradient `σ(x) − t` in `[−1, 1]`. Targets may be soft (any value in `[0, 1]`); the loss
/// is then minimal, not zero, at `σ(x) = t`.
///
/// # Shapes
/// - `logits`, `targets`: `[..]`, any shape, the same for both (e.g. `[B, 1, H, W]` mask
///   logits and their 0/1 ground-truth mask).
/// - returns: the same shape; the caller reduces (FAN averages over pixels).
pub fn sigmoid_cross_entropy<B: Backend, const D: usize>(
    logits: Tensor<B, D>,
    targets: Tensor<B, D>,
) -> Tensor<B, D> {
    let log_p = log_sigmoid(logits.clone());
    let log_not_p = log_sigmoid(logits.neg());
    let not_t = targets.clone().neg().add_scalar(1.0);
    (targets * log_p + not_t * log_not_p).neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, check_gradient, tensor, values, Ad, Cpu};

    #[test]
    fn matches_hand_computation() {
        // x = 0, t = 1: ln 2 = 0.693147.
        // x = 2, t = 1: ln(1 + e^−2) = 0.126928.
        // x = 2, t = 0: 2 + ln(1 + e^−2) = 2.126928.
        // x = −1, t = 0.25: 0.25·ln(1 + e) + 0.75·ln(1 + e^−1)
        //                 = 0.25·1.313262 + 0.75·0.313262 = 0.563262.
        let out = values(sigmoid_cross_entropy(
            tensor::<Cpu, 2>(&[0.0, 2.0, 2.0, -1.0], [2, 2]),
            tensor::<Cpu, 2>(&[1.0, 1.0, 0.0, 0.25], [2, 2]),
        ));
        assert_close(
            &out,
            &[std::f32::consts::LN_2, 0.126_928, 2.126_928, 0.563_262],
            1e-6,
        );
    }

    #[test]
    fn extreme_logits_stay_finite() {
        // Right and confident → 0; wrong and confident → |x|.
        let logits = [50.0, -50.0, 50.0, -50.0, 1000.0, -1000.0];
        let targets = [1.0, 0.0, 0.0, 1.0, 0.0, 1.0];
        let out = values(sigmoid_cross_entropy(
            tensor::<Cpu, 1>(&logits, [6]),
            tensor::<Cpu, 1>(&targets, [6]),
        ));
        assert_close(&out, &[0.0, 0.0, 50.0, 50.0, 1000.0, 1000.0], 1e-3);

        // The gradient is σ(x) − t.
        let x = tensor::<Ad, 1>(&logits, [6]).require_grad();
        let loss = sigmoid_cross_entropy(x.clone(), tensor(&targets, [6]));
        let g = values(x.grad(&loss.sum().backward()).unwrap());
        assert_close(&g, &[0.0, 0.0, 1.0, -1.0, 1.0, -1.0], 1e-6);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        // 4-D like a mask [B, C, H, W]; tolerance 1e-3 relative (absolute below 1), h = 1e-3.
        let targets = [1.0, 0.0, 0.0, 1.0, 0.5, 0.0, 1.0, 0.2];
        check_gradient(
            |x| sigmoid_cross_entropy(x, tensor(&targets, [1, 2, 2, 2])),
            &[0.3, -1.2, 2.5, -0.1, 0.0, 4.0, -3.0, 0.7],
            [1, 2, 2, 2],
            1e-3,
            1e-3,
        );
    }
}
