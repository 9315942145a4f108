//! A convolution's bias gradient on `Flex`: the output gradient summed per channel, read in
//! place. Burn's default swaps the batch and channel axes, copies the tensor into that order
//! through its generic strided iterator and then sums rows (≈ 5 % of the quickstart model's
//! one-thread training step in `perf`).

use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;
use pulp::{Simd, WithSimd};
use rayon::prelude::*;

use super::batch_norm::split;
use super::{dims4, values};

/// `Σ_{n, y, x} output_grad[n, c, y, x]` for every channel `c`, each row summed in SIMD
/// lanes and the rows accumulated in `f64`.
///
/// # Shapes
/// `output_grad`: `[batch, channels, h, w]` (f32); returns `[channels]`.
pub fn bias_gradient_f32(output_grad: &FlexTensor) -> FlexTensor {
    let [batch, channels, h, w] = dims4(output_grad);
    let grad = values(output_grad);
    let sums = channel_sums(&grad, batch, channels, h * w);
    FlexTensor::from_data(TensorData::new(sums, [channels]))
}

/// Per channel, the sum over the batch and the plane of a `[batch, channels, plane]` slice.
fn channel_sums(values: &[f32], batch: usize, channels: usize, plane: usize) -> Vec<f32> {
    (0..channels)
        .into_par_iter()
        .map(|c| {
            let total: f64 = (0..batch)
                .map(|n| {
                    let row = &values[(n * channels + c) * plane..][..plane];
                    pulp::Arch::new().dispatch(RowSum { row }) as f64
                })
                .sum();
            total as f32
        })
        .collect()
}

/// The sum of one row.
struct RowSum<'a> {
    row: &'a [f32],
}

impl WithSimd for RowSum<'_> {
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> f32 {
        let (vectors, tail) = split::<S>(self.row);
        let mut sum = simd.splat_f32s(0.0);
        for &v in vectors {
            sum = simd.add_f32s(sum, v);
        }
        simd.reduce_sum_f32s(sum) + tail.iter().sum::<f32>()
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::prelude::*;
    use burn::tensor::ops::ModuleOps;
    use burn::tensor::{Distribution, TensorPrimitive};

    use super::*;

    /// Against Burn's own bias gradient (`conv2d_bias_backward`): odd planes and channel
    /// counts, batch 1 and > 1, a plane shorter than a SIMD vector, a permuted
    /// (non-contiguous) gradient.
    #[test]
    fn equals_burns_bias_gradient() {
        let device = Default::default();
        for [n, c, h, w] in [
            [1, 1, 1, 1],
            [2, 3, 5, 7],
            [3, 16, 24, 24],
            [1, 5, 2, 3],
            [4, 7, 1, 13],
        ] {
            let grad =
                Tensor::<Flex, 4>::random([n, c, h, w], Distribution::Normal(0.5, 2.0), &device);
            let x = Tensor::<Flex, 4>::zeros([n, 2, h, w], &device);
            let bias = Tensor::<Flex, 1>::zeros([c], &device);
            let expected = Tensor::<Flex, 1>::from_primitive(TensorPrimitive::Float(
                Flex::conv2d_bias_backward(
                    x.into_primitive().tensor(),
                    bias.into_primitive().tensor(),
                    grad.clone().into_primitive().tensor(),
                ),
            ));
            let ours = Tensor::<Flex, 1>::from_primitive(TensorPrimitive::Float(
                bias_gradient_f32(&grad.into_primitive().tensor()),
            ));
            let (e, o): (Vec<f32>, Vec<f32>) = (
                expected.into_data().to_vec().unwrap(),
                ours.into_data().to_vec().unwrap(),
            );
            let scale = e.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            for (a, b) in e.iter().zip(&o) {
                assert!((a - b).abs() <= 1e-5 * scale, "{n}x{c}x{h}x{w}: {a} vs {b}");
            }
        }
        // A permuted view: the channel axis of a [c, n, h, w] tensor swapped into place.
        let base = Tensor::<Flex, 4>::random([3, 2, 4, 5], Distribution::Default, &device);
        let view = base.clone().swap_dims(0, 1);
        let ours: Vec<f32> = Tensor::<Flex, 1>::from_primitive(TensorPrimitive::Float(
            bias_gradient_f32(&view.clone().into_primitive().tensor()),
        ))
        .into_data()
        .to_vec()
        .unwrap();
        let expected: Vec<f32> = view
            .sum_dim(0)
            .sum_dim(2)
            .sum_dim(3)
            .reshape([3])
            .into_data()
            .to_vec()
            .unwrap();
        for (a, b) in expected.iter().zip(&ours) {
            assert!(
                (a - b).abs() <= 1e-5 * a.abs().max(1.0),
                "permuted: {a} vs {b}"
            );
        }
    }
}
