//! Flattening per-level head outputs into one tensor in anchor order.

use burn::prelude::*;
use visage_kernels::KernelBackend;

/// Concatenates per-level head outputs into `[batch, anchors, per_anchor]`.
///
/// Channel `c` of a level's map holds value `c % per_anchor` of anchor `c / per_anchor`
/// (torchvision's `view(N, A, D, H, W)` layout). Each map is permuted to `[B, H, W, A·D]` and
/// reshaped, so the flattened order is level (as given, finest first), then `y`, then `x`, then
/// anchor — the order of the anchor generator, `(level, y, x, anchor)`.
///
/// # Shapes
/// - `outputs`: per level `[batch, A · per_anchor, h_l, w_l]`
/// - output: `[batch, Σ_l h_l · w_l · A, per_anchor]`
///
/// The levels are concatenated as `[batch, h_l · w_l · A · per_anchor]` rows and split into
/// `[.., per_anchor]` after the concatenation. Concatenating `[batch, n_l, 1]` tensors instead
/// gives wrong gradients on Burn 0.21's cubecl backends (wgpu, CUDA): the backward of the
/// concatenation slices the gradient into strided `[batch, n_l, 1]` views, and their reshape to
/// `[batch, h_l, w_l, A]` loses the view's batch stride (burn-std's `split_strides` does not
/// skip the trailing unit dimension), so every image after the first reads another image's or
/// another level's gradient rows. `tests/wgpu_ops.rs` of the `visage` crate checks this path against Flex.
///
/// # Panics
/// If `outputs` is empty, `per_anchor` is 0, or a level's channels are not a multiple of
/// `per_anchor`.
pub fn flatten_levels<B: KernelBackend>(
    outputs: Vec<Tensor<B, 4>>,
    per_anchor: usize,
) -> Tensor<B, 3> {
    assert!(!outputs.is_empty(), "flatten_levels: no levels");
    assert!(per_anchor > 0, "flatten_levels: per_anchor must be > 0");
    let batch = outputs[0].dims()[0];
    let rows: Vec<Tensor<B, 2>> = outputs
        .into_iter()
        .map(|x| {
            let [b, c, h, w] = x.dims();
            assert!(
                c.is_multiple_of(per_anchor),
                "flatten_levels: {c} channels are not a multiple of per_anchor = {per_anchor}"
            );
            x.permute([0, 2, 3, 1]).reshape([b, h * w * c])
        })
        .collect();
    let flat = Tensor::cat(rows, 1);
    let values = flat.dims()[1];
    flat.reshape([batch, values / per_anchor, per_anchor])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::TensorData;

    type B = Flex;

    /// A level whose value at (batch b, channel c, y, x) encodes all four indices.
    fn coded(b: usize, c: usize, h: usize, w: usize, level: f32) -> Tensor<B, 4> {
        let mut v = Vec::new();
        for bi in 0..b {
            for ci in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        v.push(
                            level * 10000.0 + bi as f32 * 1000.0 + (y * 100 + x * 10 + ci) as f32,
                        );
                    }
                }
            }
        }
        Tensor::from_data(TensorData::new(v, [b, c, h, w]), &Default::default())
    }

    #[test]
    fn order_is_level_y_x_anchor() {
        // Level 0: 2 anchors × 2 values on a 2×3 grid; level 1: 1×1 grid.
        let l0 = coded(1, 4, 2, 3, 0.0);
        let l1 = coded(1, 4, 1, 1, 1.0);
        let flat = flatten_levels(vec![l0, l1], 2);
        assert_eq!(flat.dims(), [1, 2 * 3 * 2 + 2, 2]);
        let got = flat.into_data().to_vec::<f32>().unwrap();
        let mut expected = Vec::new();
        for y in 0..2 {
            for x in 0..3 {
                for a in 0..2 {
                    for d in 0..2 {
                        expected.push((y * 100 + x * 10 + a * 2 + d) as f32);
                    }
                }
            }
        }
        for a in 0..2 {
            for d in 0..2 {
                expected.push(10000.0 + (a * 2 + d) as f32);
            }
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn batches_stay_separate() {
        let flat = flatten_levels(vec![coded(2, 3, 1, 2, 0.0)], 3);
        assert_eq!(flat.dims(), [2, 2, 3]);
        let second = flat
            .slice([1..2, 0..2, 0..3])
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert_eq!(second, vec![1000.0, 1001.0, 1002.0, 1010.0, 1011.0, 1012.0]);
    }

    #[test]
    #[should_panic(expected = "not a multiple")]
    fn channels_must_divide() {
        let _ = flatten_levels(vec![coded(1, 5, 1, 1, 0.0)], 2);
    }
}
