//! Softmax cross-entropy with online hard example mining (Liu et al., "SSD", 2016; used by
//! RetinaFace and its PyTorch port's `MultiBoxLoss`).

use std::cmp::Ordering;

use burn::tensor::{activation::log_softmax, backend::Backend, Bool, Int, Tensor, TensorData};

/// The result of [`softmax_cross_entropy_ohem`]: a sum and the counts to normalise it by.
#[derive(Debug, Clone)]
pub struct OhemLoss<B: Backend> {
    /// `[1]`: the summed softmax cross-entropy of the selected anchors (all positives and
    /// the mined negatives of every image). Not normalised.
    pub loss_sum: Tensor<B, 1>,
    /// Number of positive anchors (valid, label > 0) in the batch; all are selected.
    pub num_positive: usize,
    /// Number of mined negative anchors in the batch.
    pub num_negative: usize,
}

/// Softmax cross-entropy over the positives and the hardest negatives of each image.
///
/// Per image: every valid anchor with label > 0 is a positive and is selected. The valid
/// anchors with label 0 are ranked by their background loss `−ln softmax(x)_0` (highest
/// first; ties go to the lower anchor index) and the first `k` are selected, where
///
/// - `k = ⌊neg_pos_ratio · P⌋` when the image has `P > 0` positives (Pytorch_Retinaface
///   uses 7, SSD 3), and
/// - `k = min_negatives` when it has none. `min_negatives = 0` reproduces SSD and
///   Pytorch_Retinaface, where an image without faces contributes nothing; a few negatives
///   keep face-free images teaching the background class. The TF Object Detection API's
///   miner instead uses `max(min_negatives, ⌊ratio · P⌋)` for every image; here the ratio
///   is a hard cap whenever positives exist.
///
/// `k` is capped by the number of valid negatives. Anchors with `valid = false` are never
/// selected and get no gradient, whatever their label.
///
/// The ranking is a selection, not part of the function: it is computed on detached values
/// on the host (one read of the background losses, labels and validity), and the loss is
/// the cross-entropy masked by the resulting selection, so gradients flow only into the
/// selected anchors' logits.
///
/// # Shapes
/// - `logits`: `[B, N, C]` class scores per anchor, class 0 = background.
/// - `labels`: `[B, N]` class index in `0..C` (0 = background); unchecked where `valid` is
///   false.
/// - `valid`: `[B, N]`, false for ignored anchors.
/// - returns [`OhemLoss`] with `loss_sum` of shape `[1]`.
///
/// # Panics
/// If the shapes disagree, `C` is 0, `neg_pos_ratio` is negative or not finite, or a valid
/// anchor's label is outside `0..C`.
pub fn softmax_cross_entropy_ohem<B: Backend>(
    logits: Tensor<B, 3>,
    labels: Tensor<B, 2, Int>,
    valid: Tensor<B, 2, Bool>,
    neg_pos_ratio: f32,
    min_negatives: usize,
) -> OhemLoss<B> {
    let [batch, anchors, classes] = logits.dims();
    assert!(classes > 0, "OHEM needs at least the background class");
    assert_eq!(labels.dims(), [batch, anchors], "labels must be [B, N]");
    assert_eq!(valid.dims(), [batch, anchors], "valid must be [B, N]");
    assert!(
        neg_pos_ratio.is_finite() && neg_pos_ratio >= 0.0,
        "neg_pos_ratio must be finite and non-negative, got {neg_pos_ratio}"
    );
    let device = logits.device();

    let label_values: Vec<i64> = labels.into_data().iter::<i64>().collect();
    let valid_values: Vec<bool> = valid
        .int()
        .into_data()
        .iter::<i64>()
        .map(|v| v != 0)
        .collect();
    // Ignored anchors may carry any label: gather class 0 for them (masked out below).
    let gather_labels: Vec<i64> = label_values
        .iter()
        .zip(&valid_values)
        .enumerate()
        .map(|(i, (&label, &is_valid))| {
            if !is_valid {
                return 0;
            }
            assert!(
                (0..classes as i64).contains(&label),
                "label {label} of anchor {} in image {} is outside 0..{classes}",
                i % anchors.max(1),
                i / anchors.max(1)
            );
            label
        })
        .collect();

    let log_probs = log_softmax(logits, 2); // [B, N, C]
    let background_loss: Vec<f32> = log_probs
        .clone()
        .narrow(2, 0, 1)
        .detach()
        .neg()
        .into_data()
        .iter::<f32>()
        .collect();

    let selection = select_hard_examples(
        &background_loss,
        &label_values,
        &valid_values,
        anchors,
        neg_pos_ratio,
        min_negatives,
    );

    let label_index = Tensor::<B, 3, Int>::from_data(
        TensorData::new(gather_labels, [batch, anchors, 1]),
        &device,
    );
    let cross_entropy = log_probs
        .gather(2, label_index)
        .reshape([batch, anchors])
        .neg(); // [B, N]
    let not_selected = Tensor::<B, 2, Bool>::from_data(
        TensorData::new(selection.unselected, [batch, anchors]),
        &device,
    );
    OhemLoss {
        loss_sum: cross_entropy.mask_fill(not_selected, 0.0).sum(),
        num_positive: selection.num_positive,
        num_negative: selection.num_negative,
    }
}

/// Which anchors the miner selected, as a host-side mask.
#[derive(Debug, Clone, PartialEq)]
struct Selection {
    /// `[B · N]` row-major, true for anchors that are *not* selected (the mask to zero).
    unselected: Vec<bool>,
    num_positive: usize,
    num_negative: usize,
}

/// The mining rule of [`softmax_cross_entropy_ohem`] on host values.
///
/// All slices are `[B · N]` row-major (image-major); `anchors` is N.
fn select_hard_examples(
    background_loss: &[f32],
    labels: &[i64],
    valid: &[bool],
    anchors: usize,
    neg_pos_ratio: f32,
    min_negatives: usize,
) -> Selection {
    let total = labels.len();
    let mut unselected = vec![true; total];
    let mut num_positive = 0;
    let mut num_negative = 0;
    if anchors == 0 {
        return Selection {
            unselected,
            num_positive,
            num_negative,
        };
    }
    for start in (0..total).step_by(anchors) {
        let image = start..start + anchors;
        let mut positives = 0;
        let mut candidates: Vec<usize> = Vec::new();
        for i in image {
            if !valid[i] {
                continue;
            }
            if labels[i] > 0 {
                unselected[i] = false;
                positives += 1;
            } else {
                candidates.push(i);
            }
        }
        let wanted = if positives > 0 {
            // f32 product: exact for integer ratios; decimal ratios round to the integer.
            (neg_pos_ratio * positives as f32).floor() as usize
        } else {
            min_negatives
        };
        let k = wanted.min(candidates.len());
        if k > 0 {
            // Hardest first, lower index first among equals: a total order, so the chosen
            // set is deterministic.
            let harder = |a: &usize, b: &usize| -> Ordering {
                background_loss[*b]
                    .total_cmp(&background_loss[*a])
                    .then(a.cmp(b))
            };
            if k < candidates.len() {
                candidates.select_nth_unstable_by(k - 1, harder);
            }
            for &i in &candidates[..k] {
                unselected[i] = false;
            }
        }
        num_positive += positives;
        num_negative += k;
    }
    Selection {
        unselected,
        num_positive,
        num_negative,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, check_gradient, tensor, values, Ad, Cpu};

    /// Two-class logits `[0, s]` per anchor: background loss `ln(1 + e^s)`, foreground loss
    /// `ln(1 + e^−s)`.
    fn two_class_logits(s: &[f32]) -> Vec<f32> {
        s.iter().flat_map(|&v| [0.0, v]).collect()
    }

    fn int_tensor<B: Backend>(v: &[i64], shape: [usize; 2]) -> Tensor<B, 2, Int> {
        Tensor::from_data(TensorData::new(v.to_vec(), shape), &Default::default())
    }

    fn bool_tensor<B: Backend>(v: &[bool], shape: [usize; 2]) -> Tensor<B, 2, Bool> {
        Tensor::from_data(TensorData::new(v.to_vec(), shape), &Default::default())
    }

    // Image 0: anchor 0 positive (s = 0.5); negatives s = −1, 2, 5 (ignored), 1, 0.
    // Image 1: no positive; anchor 0 ignored (s = 9); negatives s = 0.5, −2, 3, 1, −1.
    const S: [f32; 12] = [
        0.5, -1.0, 2.0, 5.0, 1.0, 0.0, 9.0, 0.5, -2.0, 3.0, 1.0, -1.0,
    ];
    const LABELS: [i64; 12] = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    const VALID: [bool; 12] = [
        true, true, true, false, true, true, false, true, true, true, true, true,
    ];

    fn mine(ratio: f32, min_negatives: usize) -> (Vec<f32>, usize, usize) {
        let out = softmax_cross_entropy_ohem(
            tensor::<Cpu, 3>(&two_class_logits(&S), [2, 6, 2]),
            int_tensor::<Cpu>(&LABELS, [2, 6]),
            bool_tensor::<Cpu>(&VALID, [2, 6]),
            ratio,
            min_negatives,
        );
        (values(out.loss_sum), out.num_positive, out.num_negative)
    }

    #[test]
    fn picks_hardest_valid_negatives_by_hand() {
        // Ratio 2, one positive in image 0 → 2 negatives: s = 2 (anchor 2) and s = 1
        // (anchor 4); anchor 3 (s = 5) is harder but ignored. Image 1 has no positive →
        // min_negatives = 1: s = 3 (anchor 3); anchor 0 (s = 9) is ignored.
        // Loss: ln(1 + e^−0.5) + ln(1 + e²) + ln(1 + e) + ln(1 + e³)
        //     = 0.474077 + 2.126928 + 1.313262 + 3.048587 = 6.962854.
        let (loss, pos, neg) = mine(2.0, 1);
        assert_eq!((pos, neg), (1, 3));
        assert_close(&loss, &[6.962_854], 1e-5);

        let selection = select_hard_examples(
            &S.iter().map(|&s| (1.0 + s.exp()).ln()).collect::<Vec<_>>(),
            &LABELS,
            &VALID,
            6,
            2.0,
            1,
        );
        let selected: Vec<usize> = (0..12).filter(|&i| !selection.unselected[i]).collect();
        assert_eq!(selected, vec![0, 2, 4, 9]);
    }

    #[test]
    fn ratio_is_capped_by_valid_negatives_and_zero_min_skips_empty_images() {
        // Ratio 10 wants 10 negatives in image 0 but only 4 are valid; image 1 gets none.
        // ln(1 + e^−0.5) + ln(1 + e^−1) + ln(1 + e²) + ln(1 + e) + ln 2
        //   = 0.474077 + 0.313262 + 2.126928 + 1.313262 + 0.693147 = 4.920676.
        let (loss, pos, neg) = mine(10.0, 0);
        assert_eq!((pos, neg), (1, 4));
        assert_close(&loss, &[4.920_676], 1e-5);
    }

    #[test]
    fn fractional_ratio_floors_and_ties_prefer_lower_index() {
        // Three positives, ratio 0.7 → ⌊2.1⌋ = 2 negatives among four tied ones.
        let labels = [2, 0, 1, 0, 0, 3, 0];
        let selection = select_hard_examples(&[1.0; 7], &labels, &[true; 7], 7, 0.7, 0);
        let selected: Vec<usize> = (0..7).filter(|&i| !selection.unselected[i]).collect();
        assert_eq!(selected, vec![0, 1, 2, 3, 5]);
        assert_eq!((selection.num_positive, selection.num_negative), (3, 2));
    }

    #[test]
    fn multi_class_labels_gather_their_class() {
        // One image, C = 3, logits [0, 0, ln 3] → softmax [0.2, 0.2, 0.6].
        // Anchor 0 label 2: −ln 0.6 = 0.510826. Anchor 1 label 1: −ln 0.2 = 1.609438.
        // Anchor 2 label 7 but ignored: never gathered, never counted. No negatives.
        let l3 = 3.0f32.ln();
        let logits = [0.0, 0.0, l3, 0.0, 0.0, l3, 0.0, 0.0, l3];
        let out = softmax_cross_entropy_ohem(
            tensor::<Cpu, 3>(&logits, [1, 3, 3]),
            int_tensor::<Cpu>(&[2, 1, 7], [1, 3]),
            bool_tensor::<Cpu>(&[true, true, false], [1, 3]),
            3.0,
            0,
        );
        assert_eq!((out.num_positive, out.num_negative), (2, 0));
        assert_close(&values(out.loss_sum), &[2.120_264], 1e-5);
    }

    #[test]
    #[should_panic(expected = "outside 0..2")]
    fn valid_label_out_of_range_panics() {
        softmax_cross_entropy_ohem(
            tensor::<Cpu, 3>(&[0.0; 4], [1, 2, 2]),
            int_tensor::<Cpu>(&[0, 2], [1, 2]),
            bool_tensor::<Cpu>(&[true, true], [1, 2]),
            3.0,
            0,
        );
    }

    #[test]
    fn extreme_logits_stay_finite() {
        // Wrong by 50 nats on both anchors: positive predicted background, negative
        // predicted face. Loss ≈ 50 + 50.
        let out = softmax_cross_entropy_ohem(
            tensor::<Cpu, 3>(&[50.0, -50.0, -50.0, 50.0], [1, 2, 2]),
            int_tensor::<Cpu>(&[1, 0], [1, 2]),
            bool_tensor::<Cpu>(&[true, true], [1, 2]),
            1.0,
            0,
        );
        assert_close(&values(out.loss_sum), &[200.0], 1e-3);
    }

    #[test]
    fn gradients_only_reach_selected_anchors() {
        let logits = tensor::<Ad, 3>(&two_class_logits(&S), [2, 6, 2]).require_grad();
        let out = softmax_cross_entropy_ohem(
            logits.clone(),
            int_tensor::<Ad>(&LABELS, [2, 6]),
            bool_tensor::<Ad>(&VALID, [2, 6]),
            2.0,
            1,
        );
        let g = values(logits.grad(&out.loss_sum.backward()).unwrap());
        for anchor in 0..12 {
            let selected = [0, 2, 4, 9].contains(&anchor);
            let row = &g[2 * anchor..2 * anchor + 2];
            assert_eq!(
                row.iter().any(|&v| v != 0.0),
                selected,
                "anchor {anchor}: {row:?}"
            );
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        // Background losses are far apart, so h = 1e-3 never changes the selection.
        // Tolerance 1e-3 relative (absolute below 1).
        let logits: Vec<f32> = two_class_logits(&S)
            .iter()
            .enumerate()
            .map(|(i, v)| v + 0.1 * (i % 3) as f32)
            .collect();
        check_gradient(
            |x| {
                softmax_cross_entropy_ohem(
                    x,
                    int_tensor(&LABELS, [2, 6]),
                    bool_tensor(&VALID, [2, 6]),
                    2.0,
                    1,
                )
                .loss_sum
            },
            &logits,
            [2, 6, 2],
            1e-3,
            1e-3,
        );
    }
}
