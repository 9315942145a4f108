//! Training-mode batch norm with its activation on f32 `[B, C, H·W]` planes, in two passes
//! forward (the channel moments, then the normalised output) and two backward (the two
//! channel sums, then the input gradient), where Burn's composed ops take about ten passes
//! each way, every one a tensor of its own.
//!
//! Each `(image, channel)` row is one contiguous plane; a channel's sums run over its rows in
//! image order, in f32 vectors within a row and in f64 across rows, so the result does not
//! depend on the number of threads. The vector code is chosen at run time (pulp: AVX2 + FMA
//! or baseline SSE on x86-64).

use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::TensorData;
use pulp::{bytemuck, Simd, WithSimd};
use rayon::prelude::*;

use super::{dims4, values};
use crate::BatchNormTrain;

/// [`KernelBackend::visage_batch_norm_train`](crate::KernelBackend::visage_batch_norm_train)
/// for f32 tensors: [`moments`], then [`normalize`].
pub(super) fn train_f32(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: &FlexTensor,
    epsilon: f64,
    negative_slope: Option<f64>,
) -> BatchNormTrain<Flex> {
    let [batch, channels, h, w] = dims4(x);
    let planes = Planes::of([batch, channels, h, w]);
    let input = values(x);
    let (mean, variance) = moments(&input, planes);
    let output = normalize(
        &input,
        planes,
        [&values(weight), &values(bias), &mean, &variance],
        epsilon,
        negative_slope.map(|s| s as f32),
    );
    BatchNormTrain {
        output: FlexTensor::from_data(TensorData::new(output, [batch, channels, h, w])),
        mean: FlexTensor::from_data(TensorData::new(mean, [channels])),
        variance: FlexTensor::from_data(TensorData::new(variance, [channels])),
    }
}

/// [`KernelBackend::visage_batch_norm_train_backward`](crate::KernelBackend::visage_batch_norm_train_backward)
/// for f32 tensors `[x, weight, bias, mean, variance, output_grad]`:
/// [`normalize_backward`].
pub(super) fn train_backward_f32(
    [x, weight, bias, mean, variance, output_grad]: [&FlexTensor; 6],
    epsilon: f64,
    negative_slope: Option<f64>,
) -> [FlexTensor; 3] {
    let [batch, channels, h, w] = dims4(x);
    let planes = Planes::of([batch, channels, h, w]);
    let [x_grad, weight_grad, bias_grad] = normalize_backward(
        &values(x),
        &values(output_grad),
        planes,
        [
            &values(weight),
            &values(bias),
            &values(mean),
            &values(variance),
        ],
        epsilon,
        negative_slope.map(|s| s as f32),
    );
    [
        FlexTensor::from_data(TensorData::new(x_grad, [batch, channels, h, w])),
        FlexTensor::from_data(TensorData::new(weight_grad, [channels])),
        FlexTensor::from_data(TensorData::new(bias_grad, [channels])),
    ]
}

/// The layout of a `[batch, channels, plane]` tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planes {
    /// Images.
    pub batch: usize,
    /// Channels.
    pub channels: usize,
    /// Elements per plane (`h · w`).
    pub plane: usize,
}

impl Planes {
    /// The planes of a `[batch, channels, h, w]` tensor.
    fn of([batch, channels, h, w]: [usize; 4]) -> Self {
        Planes {
            batch,
            channels,
            plane: h * w,
        }
    }

    /// The rows `(image, channel)` of channel `c`, in image order.
    fn rows<'a>(&self, values: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> {
        let (plane, stride) = (self.plane, self.channels * self.plane);
        (0..self.batch).map(move |b| &values[b * stride + c * plane..][..plane])
    }

    /// Elements per channel, `N = batch · plane`.
    fn count(&self) -> f64 {
        (self.batch * self.plane) as f64
    }
}

/// Per channel, the mean and the biased variance over the batch and the plane.
///
/// Sums of `x − x₀` and its square, where `x₀` is the channel's first element, so values far
/// from zero lose no precision to cancellation; the variance is clamped at 0.
///
/// # Shapes
/// `x`: `[batch, channels, plane]`; returns two `[channels]`.
pub fn moments(x: &[f32], planes: Planes) -> (Vec<f32>, Vec<f32>) {
    let n = planes.count();
    (0..planes.channels)
        .into_par_iter()
        .map(|c| {
            let shift = planes.rows(x, c).next().and_then(|r| r.first()).copied();
            let shift = shift.unwrap_or(0.0);
            let (mut s1, mut s2) = (0.0f64, 0.0f64);
            for row in planes.rows(x, c) {
                let (a, b) = pulp::Arch::new().dispatch(RowMoments { row, shift });
                s1 += a as f64;
                s2 += b as f64;
            }
            if n == 0.0 {
                return (0.0, 0.0);
            }
            let mean = s1 / n;
            (
                (shift as f64 + mean) as f32,
                (s2 / n - mean * mean).max(0.0) as f32,
            )
        })
        .unzip()
}

/// The normalised output: `y = (x − mean) · weight / √(variance + ε) + bias` per channel,
/// then `max(y, slope · y)` for a slope in `[0, 1]` (leaky ReLU; ReLU for 0) or
/// `y ≥ 0 ? y : slope · y` for any other.
///
/// # Shapes
/// `x`: `[batch, channels, plane]`; `weight`, `bias`, `mean`, `variance`: `[channels]`;
/// returns `[batch, channels, plane]`.
pub fn normalize(
    x: &[f32],
    planes: Planes,
    [weight, bias, mean, variance]: [&[f32]; 4],
    epsilon: f64,
    negative_slope: Option<f32>,
) -> Vec<f32> {
    let affine = Affine::new(weight, variance, epsilon);
    let mut output = vec![0.0f32; x.len()];
    if planes.plane == 0 {
        return output;
    }
    output
        .par_chunks_mut(planes.plane)
        .zip(x.par_chunks(planes.plane))
        .enumerate()
        .for_each(|(row, (out, x))| {
            let c = row % planes.channels;
            pulp::Arch::new().dispatch(NormalizeRow {
                x,
                out,
                mean: mean[c],
                scale: affine.scale[c],
                bias: bias[c],
            });
            if let Some(slope) = negative_slope {
                super::activation::leaky_relu_in_place(out, slope);
            }
        });
    output
}

/// `y = (x − mean) · scale + bias` per channel, with `scale = weight / √(variance + ε)`; and
/// `1 / √(variance + ε)` for the backward. (Not `x · scale + (bias − mean · scale)`: with a
/// small variance the two terms cancel.)
struct Affine {
    scale: Vec<f32>,
    inverse_std: Vec<f32>,
}

impl Affine {
    fn new(weight: &[f32], variance: &[f32], epsilon: f64) -> Self {
        let inverse_std: Vec<f32> = variance
            .iter()
            .map(|&v| (1.0 / (v as f64 + epsilon).sqrt()) as f32)
            .collect();
        let scale = weight
            .iter()
            .zip(&inverse_std)
            .map(|(w, r)| w * r)
            .collect();
        Affine { scale, inverse_std }
    }
}

/// The gradients `[∂x, ∂weight, ∂bias]` of [`normalize`]: with `x̂ = (x − mean) / √(variance
/// + ε)` and `g` the output gradient times the activation's slope at `x̂ · weight + bias`,
/// `∂bias = Σ g`, `∂weight = Σ g · x̂` and
/// `∂x = weight / √(variance + ε) · (g − ∂bias / N − x̂ · ∂weight / N)` (`N = batch · plane`).
///
/// # Shapes
/// `x`, `output_grad` and `∂x`: `[batch, channels, plane]`; the rest `[channels]`.
pub fn normalize_backward(
    x: &[f32],
    output_grad: &[f32],
    planes: Planes,
    [weight, bias, mean, variance]: [&[f32]; 4],
    epsilon: f64,
    negative_slope: Option<f32>,
) -> [Vec<f32>; 3] {
    let affine = Affine::new(weight, variance, epsilon);
    let row_of = |c: usize| RowGradient {
        mean: mean[c],
        inverse_std: affine.inverse_std[c],
        weight: weight[c],
        bias: bias[c],
        negative_slope,
    };
    let (bias_grad, weight_grad): (Vec<f32>, Vec<f32>) = (0..planes.channels)
        .into_par_iter()
        .map(|c| {
            let (mut sum_g, mut sum_gx) = (0.0f64, 0.0f64);
            for (x, dy) in planes.rows(x, c).zip(planes.rows(output_grad, c)) {
                let (a, b) = pulp::Arch::new().dispatch(GradientSums {
                    x,
                    dy,
                    row: row_of(c),
                });
                sum_g += a as f64;
                sum_gx += b as f64;
            }
            (sum_g as f32, sum_gx as f32)
        })
        .unzip();
    let n = planes.count() as f32;
    let mut x_grad = vec![0.0f32; x.len()];
    if planes.plane > 0 {
        x_grad
            .par_chunks_mut(planes.plane)
            .zip(x.par_chunks(planes.plane))
            .zip(output_grad.par_chunks(planes.plane))
            .enumerate()
            .for_each(|(r, ((dx, x), dy))| {
                let c = r % planes.channels;
                pulp::Arch::new().dispatch(InputGradient {
                    x,
                    dy,
                    dx,
                    row: row_of(c),
                    mean_g: bias_grad[c] / n,
                    mean_gx: weight_grad[c] / n,
                });
            });
    }
    [x_grad, weight_grad, bias_grad]
}

/// A row split into whole vectors and the scalar tail.
#[inline(always)]
pub(super) fn split<S: Simd>(row: &[f32]) -> (&[S::f32s], &[f32]) {
    let whole = row.len() / S::F32_LANES * S::F32_LANES;
    let (head, tail) = row.split_at(whole);
    (bytemuck::cast_slice(head), tail)
}

#[inline(always)]
fn split_mut<S: Simd>(row: &mut [f32]) -> (&mut [S::f32s], &mut [f32]) {
    let whole = row.len() / S::F32_LANES * S::F32_LANES;
    let (head, tail) = row.split_at_mut(whole);
    (bytemuck::cast_slice_mut(head), tail)
}

/// `(Σ (x − shift), Σ (x − shift)²)` over one row.
struct RowMoments<'a> {
    row: &'a [f32],
    shift: f32,
}

impl WithSimd for RowMoments<'_> {
    type Output = (f32, f32);

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> (f32, f32) {
        let (vectors, tail) = split::<S>(self.row);
        let shift = simd.splat_f32s(self.shift);
        let (mut s1, mut s2) = (simd.splat_f32s(0.0), simd.splat_f32s(0.0));
        for &v in vectors {
            let d = simd.sub_f32s(v, shift);
            s1 = simd.add_f32s(s1, d);
            s2 = simd.mul_add_f32s(d, d, s2);
        }
        let (mut a, mut b) = (simd.reduce_sum_f32s(s1), simd.reduce_sum_f32s(s2));
        for &v in tail {
            let d = v - self.shift;
            a += d;
            b += d * d;
        }
        (a, b)
    }
}

/// `out = (x − mean) · scale + bias` over one row.
struct NormalizeRow<'a> {
    x: &'a [f32],
    out: &'a mut [f32],
    mean: f32,
    scale: f32,
    bias: f32,
}

impl WithSimd for NormalizeRow<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let (x, x_tail) = split::<S>(self.x);
        let (out, out_tail) = split_mut::<S>(self.out);
        let mean = simd.splat_f32s(self.mean);
        let (scale, bias) = (simd.splat_f32s(self.scale), simd.splat_f32s(self.bias));
        for (o, &v) in out.iter_mut().zip(x) {
            *o = simd.mul_add_f32s(simd.sub_f32s(v, mean), scale, bias);
        }
        for (o, &v) in out_tail.iter_mut().zip(x_tail) {
            *o = (v - self.mean).mul_add(self.scale, self.bias);
        }
    }
}

/// One channel's constants for the backward.
#[derive(Clone, Copy)]
struct RowGradient {
    mean: f32,
    inverse_std: f32,
    weight: f32,
    bias: f32,
    negative_slope: Option<f32>,
}

impl RowGradient {
    /// `(x̂, g)` for one element.
    #[inline(always)]
    fn scalar(&self, x: f32, dy: f32) -> (f32, f32) {
        let normalized = (x - self.mean) * self.inverse_std;
        let g = match self.negative_slope {
            Some(slope) if normalized * self.weight + self.bias < 0.0 => dy * slope,
            _ => dy,
        };
        (normalized, g)
    }

    /// `(x̂, g)` for one vector.
    #[inline(always)]
    fn vector<S: Simd>(&self, simd: S, x: S::f32s, dy: S::f32s) -> (S::f32s, S::f32s) {
        let normalized = simd.mul_f32s(
            simd.sub_f32s(x, simd.splat_f32s(self.mean)),
            simd.splat_f32s(self.inverse_std),
        );
        let g = match self.negative_slope {
            Some(slope) => {
                let pre = simd.mul_add_f32s(
                    normalized,
                    simd.splat_f32s(self.weight),
                    simd.splat_f32s(self.bias),
                );
                let negative = simd.less_than_f32s(pre, simd.splat_f32s(0.0));
                simd.select_f32s(negative, simd.mul_f32s(dy, simd.splat_f32s(slope)), dy)
            }
            None => dy,
        };
        (normalized, g)
    }
}

/// `(Σ g, Σ g · x̂)` over one row.
struct GradientSums<'a> {
    x: &'a [f32],
    dy: &'a [f32],
    row: RowGradient,
}

impl WithSimd for GradientSums<'_> {
    type Output = (f32, f32);

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> (f32, f32) {
        let (x, x_tail) = split::<S>(self.x);
        let (dy, dy_tail) = split::<S>(self.dy);
        let (mut s1, mut s2) = (simd.splat_f32s(0.0), simd.splat_f32s(0.0));
        for (&x, &dy) in x.iter().zip(dy) {
            let (normalized, g) = self.row.vector(simd, x, dy);
            s1 = simd.add_f32s(s1, g);
            s2 = simd.mul_add_f32s(g, normalized, s2);
        }
        let (mut a, mut b) = (simd.reduce_sum_f32s(s1), simd.reduce_sum_f32s(s2));
        for (&x, &dy) in x_tail.iter().zip(dy_tail) {
            let (normalized, g) = self.row.scalar(x, dy);
            a += g;
            b += g * normalized;
        }
        (a, b)
    }
}

/// `dx = weight · inverse_std · (g − mean_g − x̂ · mean_gx)` over one row.
struct InputGradient<'a> {
    x: &'a [f32],
    dy: &'a [f32],
    dx: &'a mut [f32],
    row: RowGradient,
    mean_g: f32,
    mean_gx: f32,
}

impl WithSimd for InputGradient<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let (x, x_tail) = split::<S>(self.x);
        let (dy, dy_tail) = split::<S>(self.dy);
        let (dx, dx_tail) = split_mut::<S>(self.dx);
        let factor = self.row.weight * self.row.inverse_std;
        let (k, mean_g, mean_gx) = (
            simd.splat_f32s(factor),
            simd.splat_f32s(self.mean_g),
            simd.splat_f32s(self.mean_gx),
        );
        for ((out, &x), &dy) in dx.iter_mut().zip(x).zip(dy) {
            let (normalized, g) = self.row.vector(simd, x, dy);
            let centered = simd.sub_f32s(g, mean_g);
            let centered = simd.negate_mul_add_f32s(normalized, mean_gx, centered);
            *out = simd.mul_f32s(k, centered);
        }
        for ((out, &x), &dy) in dx_tail.iter_mut().zip(x_tail).zip(dy_tail) {
            let (normalized, g) = self.row.scalar(x, dy);
            *out = factor * (g - self.mean_g - normalized * self.mean_gx);
        }
    }
}
