//! Nearest-neighbour resizing of feature maps for the necks' top-down paths.

use burn::prelude::*;
use visage_kernels::KernelBackend;

/// Nearest-neighbour resize to an exact `[height, width]` (source index
/// `min(floor(dst · (in / out)), in − 1)` in f32, PyTorch's `mode="nearest"`), so odd sizes
/// line up.
///
/// Written as two row / column gathers (`select`) rather than Burn's `interpolate`: on Burn
/// 0.21's cubecl backends (wgpu, CUDA) the backward of nearest `interpolate` reads a gradient
/// that arrives channels-last and vectorised (the output of another `interpolate` backward,
/// as in every FPN's top-down path) at element offsets used as vector offsets, so the
/// gradients of the coarser levels came out wrong (`tests/wgpu_ops.rs` of the `visage` crate).
/// The gathers' backward is a scatter-add, which every backend gets right.
///
/// # Shapes
/// - `input`: `[batch, channels, h, w]`
/// - output: `[batch, channels, size[0], size[1]]`
pub fn upsample_nearest_to<B: KernelBackend>(
    input: Tensor<B, 4>,
    size: [usize; 2],
) -> Tensor<B, 4> {
    let [_, _, h, w] = input.dims();
    if [h, w] == size {
        return input;
    }
    let device = input.device();
    let indices = |from: usize, to: usize| {
        let index = nearest_source_indices(from, to);
        Tensor::<B, 1, Int>::from_data(TensorData::new(index, [to]), &device)
    };
    // Columns first, on the smaller tensor and as a 2-D `[n·c·h, w]` select (a per-row gather
    // on Flex; its 4-D select along the last axis computes every source offset with
    // divisions), then whole rows (contiguous copies).
    let [n, c, _, _] = input.dims();
    let columns = if w == size[1] {
        input
    } else {
        input
            .reshape([n * c * h, w])
            .select(1, indices(w, size[1]))
            .reshape([n, c, h, size[1]])
    };
    if h == size[0] {
        columns
    } else {
        columns.select(2, indices(h, size[0]))
    }
}

/// The source index of every destination index of a nearest resize from `input` to `output`
/// samples, computed as PyTorch's `nearest_idx`: the identity for equal sizes, `dst / 2` for
/// an exact doubling, else `min(floor(dst · (input / output)), input − 1)` in f32.
fn nearest_source_indices(input: usize, output: usize) -> Vec<i32> {
    let scale = input as f32 / output as f32;
    (0..output)
        .map(|dst| {
            let src = if output == input {
                dst
            } else if output == 2 * input {
                dst / 2
            } else {
                ((dst as f32 * scale).floor() as usize).min(input - 1)
            };
            src as i32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::{Distribution, TensorData};

    type B = Flex;

    #[test]
    fn nearest_upsample_to_exact_odd_size() {
        let device = Default::default();
        let x = Tensor::<B, 4>::from_floats([[[[1.0, 2.0], [3.0, 4.0]]]], &device);
        // Rows: floor(o · 2 / 3) = 0, 0, 1; columns: floor(o · 2 / 4) = 0, 0, 1, 1.
        let y = upsample_nearest_to(x, [3, 4]);
        y.into_data().assert_eq(
            &TensorData::from([[[
                [1.0f32, 1.0, 2.0, 2.0],
                [1.0, 1.0, 2.0, 2.0],
                [3.0, 3.0, 4.0, 4.0],
            ]]]),
            true,
        );
    }

    /// The gathers equal Burn's nearest `interpolate` (PyTorch's `mode="nearest"`), the
    /// implementation they replace, for up- and downsizing, odd and doubled sizes.
    #[test]
    fn nearest_upsample_equals_burn_interpolate() {
        use burn::tensor::module::interpolate;
        use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
        let device = Default::default();
        for (from, to) in [
            ([2, 2], [4, 4]),
            ([3, 5], [6, 10]),
            ([3, 2], [5, 3]),
            ([7, 6], [13, 11]),
            ([5, 4], [40, 27]),
            ([9, 9], [4, 5]),
            ([4, 7], [4, 9]),
        ] {
            let x =
                Tensor::<B, 4>::random([2, 3, from[0], from[1]], Distribution::Default, &device);
            let options =
                InterpolateOptions::new(InterpolateMode::Nearest).with_align_corners(false);
            let expected = interpolate(x.clone(), to, options);
            upsample_nearest_to(x, to)
                .into_data()
                .assert_eq(&expected.into_data(), true);
        }
    }
}
