//! Sigmoid focal loss (Lin et al., "Focal Loss for Dense Object Detection", 2017).

use burn::tensor::{activation::log_sigmoid, backend::Backend, Tensor};

/// Sigmoid focal loss, summed over the anchors whose weight is non-zero and divided by
/// `normalizer`.
///
/// For a logit `x` with binary target `t`, `p = σ(x)`, `p_t = p` if `t = 1` else `1 − p`,
/// `α_t = α` if `t = 1` else `1 − α`:
///
/// `FL(x, t) = −α_t · (1 − p_t)^γ · ln p_t`
///
/// Computed without ever forming `p`: `ln p_t = t·ln σ(x) + (1 − t)·ln σ(−x)` and
/// `(1 − p_t)^γ = exp(γ · [t·ln σ(−x) + (1 − t)·ln σ(x)])`, with Burn's stable
/// `log_sigmoid`. Losses and gradients stay finite for logits of any finite magnitude,
/// including `γ < 1` where `(1 − p_t)^γ` has an unbounded slope at `p_t = 1`.
///
/// The result is `Σ_n w_n Σ_k FL(x_nk, t_nk) / normalizer`. RetinaNet-style training passes
/// `normalizer = max(1, number of positive anchors)`; `weights` is 1 for anchors that take
/// part and 0 for ignored ones (any other value scales that anchor's loss).
///
/// # Shapes
/// - `logits`: `[N, K]` raw classification scores (N anchors, K classes, no background
///   column).
/// - `targets`: `[N, K]`, each entry exactly 0.0 or 1.0 (one-hot over the foreground classes,
///   all zeros for background anchors).
/// - `weights`: `[N]`, 0.0 for ignored anchors, 1.0 otherwise.
/// - returns `[1]`, the scalar loss.
///
/// # Panics
/// If `normalizer` is not positive.
pub fn sigmoid_focal_loss<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 2>,
    weights: Tensor<B, 1>,
    alpha: f32,
    gamma: f32,
    normalizer: f32,
) -> Tensor<B, 1> {
    assert!(
        normalizer > 0.0,
        "focal loss normalizer must be positive, got {normalizer}"
    );
    let per_element = sigmoid_focal_elementwise(logits, targets, alpha, gamma);
    let weighted = per_element * weights.unsqueeze_dim::<2>(1);
    weighted.sum().div_scalar(normalizer)
}

/// The unreduced focal loss `FL(x, t)` of every logit.
///
/// # Shapes
/// - `logits`, `targets`: `[..]` (same shape, targets 0/1).
/// - returns: the same shape.
fn sigmoid_focal_elementwise<B: Backend, const D: usize>(
    logits: Tensor<B, D>,
    targets: Tensor<B, D>,
    alpha: f32,
    gamma: f32,
) -> Tensor<B, D> {
    let log_p = log_sigmoid(logits.clone()); // ln σ(x)
    let log_not_p = log_sigmoid(logits.neg()); // ln(1 − σ(x)) = ln σ(−x)
    let not_t = targets.clone().neg().add_scalar(1.0);

    // ln p_t and ln(1 − p_t), exact for binary targets.
    let log_pt = targets.clone() * log_p.clone() + not_t.clone() * log_not_p.clone();
    let log_one_minus_pt = targets.clone() * log_not_p + not_t.clone() * log_p;

    let alpha_t = targets.mul_scalar(alpha) + not_t.mul_scalar(1.0 - alpha);
    let modulating = log_one_minus_pt.mul_scalar(gamma).exp();
    (alpha_t * modulating * log_pt).neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, check_gradient, tensor, values, Ad, Cpu};

    fn focal<B: Backend>(
        logits: &[f32],
        targets: &[f32],
        weights: &[f32],
        normalizer: f32,
    ) -> Vec<f32> {
        let n = weights.len();
        let k = logits.len() / n;
        values(sigmoid_focal_loss(
            tensor::<B, 2>(logits, [n, k]),
            tensor::<B, 2>(targets, [n, k]),
            tensor::<B, 1>(weights, [n]),
            0.25,
            2.0,
            normalizer,
        ))
    }

    #[test]
    fn matches_hand_computation() {
        // α = 0.25, γ = 2. Anchors 0 and 1 count, anchor 2 is ignored.
        // x = 2,  t = 1: p = σ(2) = 0.880797, −ln p = 0.126928, (1−p)² = 0.014209,
        //                 0.25 · 0.014209 · 0.126928 = 0.000450891
        // x = −1, t = 0: p = 0.268941, −ln(1−p) = 0.313262, p² = 0.072329,
        //                 0.75 · 0.072329 · 0.313262 = 0.016993543
        // x = 0,  t = 0: p = 0.5, ln 2 = 0.693147, p² = 0.25,
        //                 0.75 · 0.25 · 0.693147 = 0.129965096
        // x = 3,  t = 1: p = 0.952574, −ln p = 0.048587, (1−p)² = 0.0022492,
        //                 0.25 · 0.0022492 · 0.048587 = 0.0000273208
        // sum = 0.147436851, normalizer 2 → 0.073718426
        let logits = [2.0, -1.0, 0.0, 3.0, 1.0, 1.0];
        let targets = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let out = focal::<Cpu>(&logits, &targets, &[1.0, 1.0, 0.0], 2.0);
        assert_eq!(out.len(), 1);
        assert_close(&out, &[0.073_718_43], 1e-6);
    }

    #[test]
    fn gamma_zero_alpha_half_is_half_bce() {
        // With γ = 0 and α = 0.5 the focal loss is half the binary cross-entropy:
        // x = 1, t = 1: 0.5 · ln(1 + e^−1) = 0.5 · 0.313262 = 0.156631.
        let out = values(sigmoid_focal_loss(
            tensor::<Cpu, 2>(&[1.0], [1, 1]),
            tensor::<Cpu, 2>(&[1.0], [1, 1]),
            tensor::<Cpu, 1>(&[1.0], [1]),
            0.5,
            0.0,
            1.0,
        ));
        assert_close(&out, &[0.156_631], 1e-6);
    }

    #[test]
    fn extreme_logits_stay_finite() {
        // Confident and right → ≈ 0; confident and wrong → α_t · 50.
        // x = 50, t = 1: 0;  x = −50, t = 0: 0;  x = 50, t = 0: 0.75 · 50 = 37.5;
        // x = −50, t = 1: 0.25 · 50 = 12.5.  Sum 50.
        let out = focal::<Cpu>(
            &[50.0, -50.0, 50.0, -50.0],
            &[1.0, 0.0, 0.0, 1.0],
            &[1.0; 4],
            1.0,
        );
        assert_close(&out, &[50.0], 1e-3);

        let x = tensor::<Ad, 2>(&[50.0, -50.0, 50.0, -50.0], [4, 1]).require_grad();
        let loss = sigmoid_focal_loss(
            x.clone(),
            tensor::<Ad, 2>(&[1.0, 0.0, 0.0, 1.0], [4, 1]),
            tensor::<Ad, 1>(&[1.0; 4], [4]),
            0.25,
            0.5, // γ < 1: (1 − p_t)^γ has an infinite slope at p_t = 1 in the naive form.
            1.0,
        );
        let grads = loss.backward();
        let g = values(x.grad(&grads).unwrap());
        assert!(g.iter().all(|v| v.is_finite()), "gradient {g:?}");
        // Wrong and confident: the gradient is ±α_t (the slope of α_t·|x|).
        assert_close(&g[2..], &[0.75, -0.25], 1e-4);
    }

    #[test]
    fn ignored_anchors_get_no_gradient() {
        let x = tensor::<Ad, 2>(&[0.3, -0.7, 1.2, 0.1], [2, 2]).require_grad();
        let loss = sigmoid_focal_loss(
            x.clone(),
            tensor::<Ad, 2>(&[1.0, 0.0, 0.0, 1.0], [2, 2]),
            tensor::<Ad, 1>(&[1.0, 0.0], [2]),
            0.25,
            2.0,
            1.0,
        );
        let g = values(x.grad(&loss.backward()).unwrap());
        assert!(g[0] != 0.0 && g[1] != 0.0);
        assert_eq!(&g[2..], &[0.0, 0.0]);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        // Tolerance: 1e-3 relative (absolute below 1), h = 1e-3.
        let logits = [2.0, -1.0, 0.0, 3.0, -0.4, 0.8];
        check_gradient(
            |x| {
                sigmoid_focal_loss(
                    x,
                    tensor(&[1.0, 0.0, 0.0, 1.0, 1.0, 0.0], [3, 2]),
                    tensor(&[1.0, 1.0, 0.5], [3]),
                    0.25,
                    2.0,
                    1.5,
                )
            },
            &logits,
            [3, 2],
            1e-3,
            1e-3,
        );
    }
}
