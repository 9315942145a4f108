//! RetinaFace's face probabilities on the host.

/// The second class's probability under a two-class softmax of each logit pair, as Burn's
/// `softmax` computes it (`exp(l − max) / Σ exp(l − max)`), on the host: `logits` is
/// `[N·2]` (background, face), the result `[N]`. Flex's softmax over a last axis of 2 walks
/// it with strides (0.2 ms for RetinaFace-mnet's 12 600 priors at 480×640, as long as the
/// rest of post-processing); here it is one pass.
pub(crate) fn face_probabilities(logits: &[f32]) -> Vec<f32> {
    logits
        .chunks_exact(2)
        .map(|pair| {
            let max = pair[0].max(pair[1]);
            let (background, face) = ((pair[0] - max).exp(), (pair[1] - max).exp());
            face / (background + face)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::activation::softmax;
    use burn::tensor::{Distribution, Tensor};

    #[test]
    fn equal_burns_softmax_within_1e_6() {
        let device = Default::default();
        let mut logits: Vec<f32> =
            Tensor::<Flex, 1>::random([2 * 999], Distribution::Normal(0.0, 4.0), &device)
                .into_data()
                .into_vec()
                .unwrap();
        // Large, equal and extreme pairs.
        logits.extend([
            80.0,
            -80.0,
            -80.0,
            80.0,
            3.5,
            3.5,
            1e4,
            1e4 - 1.0,
            -1e4,
            -1e4,
        ]);
        let n = logits.len() / 2;
        let burns: Vec<f32> = softmax(
            Tensor::<Flex, 3>::from_data(
                burn::tensor::TensorData::new(logits.clone(), [1, n, 2]),
                &device,
            ),
            2,
        )
        .narrow(2, 1, 1)
        .into_data()
        .into_vec()
        .unwrap();
        let ours = face_probabilities(&logits);
        assert_eq!(ours.len(), n);
        for (i, (a, b)) in ours.iter().zip(&burns).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6,
                "pair {i} ({}, {}): {a} vs Burn's {b}",
                logits[2 * i],
                logits[2 * i + 1]
            );
        }
        assert_eq!(ours[n - 3], 0.5, "equal logits");
    }
}
