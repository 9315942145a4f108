//! The gradients of the depthwise 3×3 convolution ([`Depthwise3x3`]: padding 1, stride 1 or
//! 2, one filter per channel) without Burn's per-group loop (Burn 0.21 computes a grouped
//! convolution's weight gradient as one convolution per group, and its input gradient as a
//! transposed convolution on one thread).
//!
//! - Input: a stride-1 depthwise convolution of the output gradient by each filter turned
//!   180° (`dx[i] = Σₖ w[k] · dy[i − k + 1] = Σⱼ w[2 − j] · dy[i + j − 1]`). For stride 2 the
//!   output gradient is first spread onto the input grid (`dy[oy, ox]` at `[2·oy, 2·ox]`,
//!   zeros between), which the same formula then reads.
//! - Weight: per channel and tap, `Σ_images Σ_{oy, ox} dy[oy, ox] · x[s·oy + ky − 1,
//!   s·ox + kx − 1]`, one dot product per output row and tap over contiguous values (for
//!   stride 2 each input row is split into its even and odd columns first); f32 within a
//!   row, f64 across rows and images, in image order whatever the thread count.

use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;
use pulp::{bytemuck, Simd, WithSimd};
use rayon::prelude::*;

use super::depthwise::Depthwise3x3;
use super::{dims4, values};

/// The gradient of a depthwise 3×3 convolution with respect to its input.
///
/// # Shapes
/// `weight`: `[C, 1, 3, 3]`; `output_grad`: `[batch, C, oh, ow]`; returns `[batch, C, h, w]`
/// (the shape of the convolution's input, `geometry.input`).
pub(super) fn x_grad(
    geometry: Depthwise3x3,
    weight: &FlexTensor,
    output_grad: &FlexTensor,
) -> FlexTensor {
    let [batch, channels, oh, ow] = dims4(output_grad);
    let [h, w] = geometry.input;
    assert_eq!(
        [oh, ow],
        geometry.output(),
        "depthwise backward: output size"
    );
    let turned: Vec<f32> = values(weight)
        .chunks(9)
        .flat_map(|taps| taps.iter().rev().copied())
        .collect();
    let grad = values(output_grad);
    let stride_1 = Depthwise3x3 {
        stride: 1,
        ..geometry
    };
    let mut x_grad = vec![0.0f32; batch * channels * h * w];
    let mut spread = Vec::new();
    if h * w > 0 {
        for (dy, dx) in grad
            .chunks(channels * oh * ow)
            .zip(x_grad.chunks_mut(channels * h * w))
        {
            let source = if geometry.stride == 1 {
                dy
            } else {
                spread_onto_input(dy, geometry, &mut spread);
                &spread[..]
            };
            stride_1.run(source, &turned, None, None, dx);
        }
    }
    FlexTensor::from_data(TensorData::new(x_grad, [batch, channels, h, w]))
}

/// `dy` (`[C, oh, ow]`) placed at every `stride`-th row and column of a zero `[C, h, w]` grid.
fn spread_onto_input(dy: &[f32], geometry: Depthwise3x3, spread: &mut Vec<f32>) {
    let [h, w] = geometry.input;
    let [oh, ow] = geometry.output();
    let s = geometry.stride;
    spread.clear();
    spread.resize(geometry.channels * h * w, 0.0);
    for (plane, grad) in spread.chunks_mut(h * w).zip(dy.chunks(oh * ow)) {
        for (oy, row) in grad.chunks(ow).enumerate() {
            let target = &mut plane[oy * s * w..(oy * s + 1) * w];
            for (ox, &g) in row.iter().enumerate() {
                target[ox * s] = g;
            }
        }
    }
}

/// The gradient of a depthwise 3×3 convolution with respect to its weight.
///
/// # Shapes
/// `x`: `[batch, C, h, w]`; `output_grad`: `[batch, C, oh, ow]`; returns `[C, 1, 3, 3]`.
pub(super) fn weight_grad(
    geometry: Depthwise3x3,
    x: &FlexTensor,
    output_grad: &FlexTensor,
) -> FlexTensor {
    let [batch, channels, h, w] = dims4(x);
    let [oh, ow] = geometry.output();
    let input = values(x);
    let grad = values(output_grad);
    let taps: Vec<[f64; 9]> = (0..channels)
        .into_par_iter()
        .map_init(Vec::new, |phases, c| {
            let mut sums = [0.0f64; 9];
            for image in 0..batch {
                let plane = &input[(image * channels + c) * h * w..][..h * w];
                let dy = &grad[(image * channels + c) * oh * ow..][..oh * ow];
                add_channel_taps(geometry, plane, dy, phases, &mut sums);
            }
            sums
        })
        .collect();
    let weight_grad = taps.iter().flatten().map(|&t| t as f32).collect();
    FlexTensor::from_data(TensorData::new(weight_grad, [channels, 1, 3, 3]))
}

/// Adds one image's nine tap sums of one channel (`plane` `[h, w]`, `dy` `[oh, ow]`) to
/// `sums` (row-major taps).
fn add_channel_taps(
    geometry: Depthwise3x3,
    plane: &[f32],
    dy: &[f32],
    phases: &mut Vec<f32>,
    sums: &mut [f64; 9],
) {
    let [h, w] = geometry.input;
    let s = geometry.stride;
    // Rows of `source` hold the columns `≡ phase (mod s)` of each input row, `width` wide.
    let (source, width) = if s == 1 {
        (plane, w)
    } else {
        let width = w.div_ceil(s);
        phases.clear();
        phases.resize(s * h * width, 0.0);
        for (iy, row) in plane.chunks(w).enumerate() {
            for (ix, &v) in row.iter().enumerate() {
                phases[((ix % s) * h + iy) * width + ix / s] = v;
            }
        }
        (&phases[..], width)
    };
    pulp::Arch::new().dispatch(ChannelTaps {
        geometry,
        source,
        width,
        dy,
        sums,
    });
}

/// The nine tap sums of one channel of one image, as a SIMD kernel: `source` holds the input
/// rows split into their `stride` column phases (`[stride, h, width]`), `dy` is `[oh, ow]`.
struct ChannelTaps<'a> {
    geometry: Depthwise3x3,
    source: &'a [f32],
    width: usize,
    dy: &'a [f32],
    sums: &'a mut [f64; 9],
}

impl WithSimd for ChannelTaps<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let [h, w] = self.geometry.input;
        let [_, ow] = self.geometry.output();
        let s = self.geometry.stride;
        for (oy, dy_row) in self.dy.chunks(ow).enumerate() {
            for ky in 0..3 {
                let Some(iy) = (oy * s + ky).checked_sub(1).filter(|&iy| iy < h) else {
                    continue;
                };
                for kx in 0..3 {
                    // Output columns whose input column `s·ox + kx − 1` lies in `[0, w)`.
                    let first = usize::from(kx == 0);
                    let end = if w >= kx {
                        ((w - kx) / s + 1).min(ow)
                    } else {
                        0
                    };
                    if first >= end {
                        continue;
                    }
                    let phase = (kx + s - 1) % s;
                    let start = (s * first + kx - 1 - phase) / s;
                    let row = &self.source[(phase * h + iy) * self.width..];
                    let dot = dot(
                        simd,
                        &dy_row[first..end],
                        &row[start..start + (end - first)],
                    );
                    self.sums[ky * 3 + kx] += f64::from(dot);
                }
            }
        }
    }
}

/// `Σ a[i] · b[i]` over two slices of one length.
#[inline(always)]
fn dot<S: Simd>(simd: S, a: &[f32], b: &[f32]) -> f32 {
    let whole = a.len() / S::F32_LANES * S::F32_LANES;
    let (a, a_tail) = a.split_at(whole);
    let (b, b_tail) = b[..a.len() + a_tail.len()].split_at(whole);
    let a: &[S::f32s] = bytemuck::cast_slice(a);
    let b: &[S::f32s] = bytemuck::cast_slice(b);
    let mut sum = simd.splat_f32s(0.0);
    for (&x, &y) in a.iter().zip(b) {
        sum = simd.mul_add_f32s(x, y, sum);
    }
    let mut total = simd.reduce_sum_f32s(sum);
    for (x, y) in a_tail.iter().zip(b_tail) {
        total += x * y;
    }
    total
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::prelude::*;
    use burn::tensor::ops::{ConvOptions, ModuleOps};
    use burn::tensor::Distribution;

    use super::*;

    fn random(shape: [usize; 4]) -> FlexTensor {
        Tensor::<Flex, 4>::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
            .into_primitive()
            .tensor()
    }

    /// max |a − b| / max |b| of two tensors of one shape.
    fn relative(a: &FlexTensor, b: &FlexTensor) -> f32 {
        assert_eq!(a.layout().shape(), b.layout().shape());
        let (a, b) = (values(a), values(b));
        let scale = b.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
        a.iter()
            .zip(b.iter())
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
            / scale
    }

    /// Both gradients equal Flex's own (a transposed convolution; one convolution per group)
    /// for strides 1 and 2, odd and even sizes, 1-pixel-wide inputs, batch 1 and > 1.
    #[test]
    fn depthwise_gradients_equal_flexs() {
        let shapes = [
            [1, 1, 5, 5],
            [3, 4, 7, 9],
            [2, 6, 8, 6],
            [2, 3, 1, 2],
            [2, 3, 2, 1],
            [1, 2, 1, 1],
            [2, 5, 13, 34],
        ];
        for shape in shapes {
            for stride in [1, 2] {
                let [_, c, h, w] = shape;
                let geometry = Depthwise3x3 {
                    channels: c,
                    input: [h, w],
                    stride,
                };
                let [oh, ow] = geometry.output();
                let x = random(shape);
                let weight = random([c, 1, 3, 3]);
                let dy = random([shape[0], c, oh, ow]);
                let options = ConvOptions::new([stride, stride], [1, 1], [1, 1], c);
                let theirs =
                    Flex::conv2d_x_backward(x.clone(), weight.clone(), dy.clone(), options.clone());
                let d = relative(&x_grad(geometry, &weight, &dy), &theirs);
                assert!(d < 1e-5, "input gradient {shape:?} s{stride}: {d:e}");
                let theirs =
                    Flex::conv2d_weight_backward(x.clone(), weight.clone(), dy.clone(), options);
                let d = relative(&weight_grad(geometry, &x, &dy), &theirs);
                assert!(d < 1e-5, "weight gradient {shape:?} s{stride}: {d:e}");
            }
        }
    }
}
