//! IoU losses: −ln IoU (Yu et al., "UnitBox", 2016; used by AInnoFace) and 1 − IoU.

use burn::tensor::{backend::Backend, Tensor};

/// Which function of the IoU [`iou_loss`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IouLossKind {
    /// `−ln IoU` (UnitBox, AInnoFace). Unbounded: a box with no overlap costs `−ln eps`.
    NegLog,
    /// `1 − IoU`, in `[0, 1]`.
    OneMinus,
}

/// Per-box IoU loss between aligned predicted and target boxes.
///
/// `IoU = inter / max(union, eps)`, with the intersection's width and height and each box's
/// width and height clamped at 0 (an inverted box has area 0). For [`IouLossKind::NegLog`]
/// the loss is `−ln max(IoU, eps)`: `eps` guards ln(0), as in mmdetection's `IoULoss`.
/// Boxes that do not overlap have no gradient under either kind (the IoU is flat at 0
/// there), so this loss is meant for positive anchors, whose boxes overlap their target.
///
/// # Shapes
/// - `pred`: `[N, 4]` decoded predicted boxes, xyxy, pixels.
/// - `target`: `[N, 4]` the matched ground-truth boxes, xyxy, pixels (row `i` pairs with
///   row `i` of `pred`).
/// - returns `[N]`, the loss of each box; the caller masks positives and reduces.
///
/// # Panics
/// If `eps` is not positive.
pub fn iou_loss<B: Backend>(
    pred: Tensor<B, 2>,
    target: Tensor<B, 2>,
    kind: IouLossKind,
    eps: f32,
) -> Tensor<B, 1> {
    assert!(eps > 0.0, "IoU loss eps must be positive, got {eps}");
    let iou = aligned_iou(pred, target, eps);
    match kind {
        IouLossKind::NegLog => iou.clamp_min(eps).log().neg(),
        IouLossKind::OneMinus => iou.neg().add_scalar(1.0),
    }
}

/// IoU of row `i` of `a` with row `i` of `b`.
///
/// # Shapes
/// - `a`, `b`: `[N, 4]` xyxy.
/// - returns `[N]`.
fn aligned_iou<B: Backend>(a: Tensor<B, 2>, b: Tensor<B, 2>, eps: f32) -> Tensor<B, 1> {
    let [n, four] = a.dims();
    assert_eq!(four, 4, "boxes must be [N, 4] xyxy, got [{n}, {four}]");
    assert_eq!(a.dims(), b.dims(), "pred and target shapes differ");

    let a_min = a.clone().narrow(1, 0, 2); // [N, 2] x1, y1
    let a_max = a.narrow(1, 2, 2); // [N, 2] x2, y2
    let b_min = b.clone().narrow(1, 0, 2);
    let b_max = b.narrow(1, 2, 2);

    let inter_wh = (a_max.clone().min_pair(b_max.clone()) - a_min.clone().max_pair(b_min.clone()))
        .clamp_min(0.0);
    let area_a = product_of_columns((a_max - a_min).clamp_min(0.0));
    let area_b = product_of_columns((b_max - b_min).clamp_min(0.0));
    let inter = product_of_columns(inter_wh);
    let union = (area_a + area_b - inter.clone()).clamp_min(eps);
    inter / union
}

/// `w · h` of each row.
///
/// # Shapes
/// - `wh`: `[N, 2]`.
/// - returns `[N]`.
fn product_of_columns<B: Backend>(wh: Tensor<B, 2>) -> Tensor<B, 1> {
    let w = wh.clone().narrow(1, 0, 1);
    let h = wh.narrow(1, 1, 1);
    (w * h).squeeze_dim::<1>(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, check_gradient, tensor, values, Cpu};
    use proptest::prelude::*;

    fn loss(pred: &[f32], target: &[f32], kind: IouLossKind) -> Vec<f32> {
        let n = pred.len() / 4;
        values(iou_loss(
            tensor::<Cpu, 2>(pred, [n, 4]),
            tensor::<Cpu, 2>(target, [n, 4]),
            kind,
            1e-6,
        ))
    }

    // Box pairs:
    // 0: [0,0,10,10] vs [5,5,15,15]: inter 25, union 175, IoU 1/7.
    // 1: [0,0,10,10] vs [0,0,10,20]: inter 100, union 200, IoU 0.5.
    // 2: identical: IoU 1.
    // 3: [0,0,1,1] vs [5,5,6,6]: disjoint, IoU 0.
    const PRED: [f32; 16] = [
        0.0, 0.0, 10.0, 10.0, 0.0, 0.0, 10.0, 10.0, 3.0, 4.0, 30.0, 40.0, 0.0, 0.0, 1.0, 1.0,
    ];
    const TARGET: [f32; 16] = [
        5.0, 5.0, 15.0, 15.0, 0.0, 0.0, 10.0, 20.0, 3.0, 4.0, 30.0, 40.0, 5.0, 5.0, 6.0, 6.0,
    ];

    #[test]
    fn neg_log_matches_hand_computation() {
        // −ln(1/7) = 1.945910, −ln 0.5 = 0.693147, −ln 1 = 0, −ln(1e-6) = 13.815511.
        let out = loss(&PRED, &TARGET, IouLossKind::NegLog);
        assert_close(
            &out,
            &[1.945_91, std::f32::consts::LN_2, 0.0, 13.815_511],
            1e-5,
        );
    }

    #[test]
    fn one_minus_matches_hand_computation() {
        // 1 − 1/7 = 0.857143, 0.5, 0, 1.
        let out = loss(&PRED, &TARGET, IouLossKind::OneMinus);
        assert_close(&out, &[0.857_143, 0.5, 0.0, 1.0], 1e-6);
    }

    #[test]
    fn degenerate_boxes_stay_finite() {
        // Zero-area pred and target (union 0) and an inverted pred box.
        let pred = [2.0, 2.0, 2.0, 2.0, 8.0, 8.0, 2.0, 2.0];
        let target = [2.0, 2.0, 2.0, 2.0, 0.0, 0.0, 10.0, 10.0];
        for kind in [IouLossKind::NegLog, IouLossKind::OneMinus] {
            let out = loss(&pred, &target, kind);
            assert!(out.iter().all(|v| v.is_finite()), "{kind:?}: {out:?}");
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        // Overlapping pairs with no ties between coordinates (max/min have no kink nearby).
        // Pair 0: inter 9·8 = 72, union 128. Pair 1: inter 6·10 = 60, union 78 + 100 − 60.
        // Tolerance 1e-3 relative (absolute below 1), h = 1e-2 px (pixel-scale inputs).
        let target = [0.0, 0.0, 10.0, 10.0, 2.0, 2.0, 12.0, 12.0];
        let pred = [1.0, 2.0, 11.0, 12.0, 3.0, 1.0, 9.0, 14.0];
        for kind in [IouLossKind::NegLog, IouLossKind::OneMinus] {
            check_gradient(
                |x| iou_loss(x, tensor(&target, [2, 4]), kind, 1e-6),
                &pred,
                [2, 4],
                1e-2,
                1e-3,
            );
        }
    }

    fn arb_box() -> impl Strategy<Value = [f32; 4]> {
        (0.0f32..50.0, 0.0f32..50.0, 0.5f32..50.0, 0.5f32..50.0)
            .prop_map(|(x, y, w, h)| [x, y, x + w, y + h])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn one_minus_is_symmetric_and_bounded(a in arb_box(), b in arb_box()) {
            let ab = loss(&a, &b, IouLossKind::OneMinus)[0];
            let ba = loss(&b, &a, IouLossKind::OneMinus)[0];
            prop_assert!((0.0..=1.0).contains(&ab));
            prop_assert!((ab - ba).abs() <= 1e-6);
            let neg_log = loss(&a, &b, IouLossKind::NegLog)[0];
            // −ln IoU ≥ 1 − IoU (ln x ≤ x − 1).
            prop_assert!(neg_log + 1e-5 >= ab);
        }
    }
}
