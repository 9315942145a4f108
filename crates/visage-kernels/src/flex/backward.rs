//! The gradients of the Flex convolution ([`super::conv2d_f32`]) for training: with
//! `cols` the image's columns (`[C·kh·kw, P]`, P = output pixels), `W` the weight as
//! `[out, C·kh·kw]` and `dY` the output gradient as `[out, P]`:
//! - input: `col2im(Wᵀ · dY)` (for a 1×1 stride-1 convolution, `Wᵀ · dY` itself);
//! - weight: `Σ_images dY · colsᵀ`.
//!
//! Both are one faer product per image, as the forward. Stride-1 convolutions with a kernel
//! use [`super::shifted`]'s per-tap products instead, as their forward does.

use burn::backend::flex::FlexTensor;
use burn::tensor::ops::ConvOptions;
use burn::tensor::TensorData;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef};

use super::im2col::{col2im, im2col, ConvGeometry};
use super::{batch, dims4, shifted, values};

/// The geometry of an ungrouped convolution of `x` by `weight`.
fn geometry(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> ConvGeometry {
    let [_, channels, h, w] = dims4(x);
    let [_, weight_channels, kh, kw] = dims4(weight);
    assert_eq!(
        weight_channels, channels,
        "conv2d backward: weight and input channels"
    );
    ConvGeometry {
        channels,
        input: [h, w],
        kernel: [kh, kw],
        stride: options.stride,
        padding: options.padding,
        dilation: options.dilation,
    }
}

/// The gradient with respect to the input, `[batch, C, h, w]`.
pub(super) fn conv2d_x_backward_f32(
    x: &FlexTensor,
    weight: &FlexTensor,
    output_grad: &FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    let [batch, channels, h, w] = dims4(x);
    let out_channels = dims4(weight)[0];
    let geometry = geometry(x, weight, options);
    let [oh, ow] = geometry.output();
    let (rows, plane) = (geometry.rows(), oh * ow);
    let weight = values(weight);
    let dy = values(output_grad);
    let dy_of =
        |image: usize| &dy[image * out_channels * plane..(image + 1) * out_channels * plane];
    let mut dx = vec![0.0f32; batch * channels * h * w];
    if let Some(shifted) = shifted(&geometry) {
        let taps = shifted.weight_taps(&weight, out_channels);
        batch::for_each_image(
            &mut dx,
            channels * h * w,
            |image, dst, (padded, wide): &mut (Vec<f32>, Vec<f32>), par| {
                shifted.input_grad(dy_of(image), &taps, dst, [padded, wide], par);
            },
        );
    } else {
        let wt = MatRef::from_row_major_slice(&weight[..], out_channels, rows).transpose();
        batch::for_each_image(
            &mut dx,
            channels * h * w,
            |image, dst, dcols: &mut Vec<f32>, par| {
                let dy_image = MatRef::from_row_major_slice(dy_of(image), out_channels, plane);
                if geometry.is_pointwise() {
                    let out = MatMut::from_row_major_slice_mut(dst, rows, plane);
                    matmul(out, Accum::Replace, wt, dy_image, 1.0f32, par);
                } else {
                    dcols.resize(rows * plane, 0.0);
                    let out = MatMut::from_row_major_slice_mut(dcols, rows, plane);
                    matmul(out, Accum::Replace, wt, dy_image, 1.0f32, par);
                    col2im(dcols, &geometry, dst);
                }
            },
        );
    }
    FlexTensor::from_data(TensorData::new(dx, [batch, channels, h, w]))
}

/// The gradient with respect to the weight, `[out, C, kh, kw]`: per-image products summed
/// over the batch ([`batch::sum_over_images`]).
pub(super) fn conv2d_weight_backward_f32(
    x: &FlexTensor,
    weight: &FlexTensor,
    output_grad: &FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    let [batch, channels, h, w] = dims4(x);
    let weight_dims = dims4(weight);
    let out_channels = weight_dims[0];
    let geometry = geometry(x, weight, options);
    let [oh, ow] = geometry.output();
    let (rows, plane) = (geometry.rows(), oh * ow);
    let input = values(x);
    let dy = values(output_grad);
    let image_in = channels * h * w;
    let source = |image: usize| &input[image * image_in..(image + 1) * image_in];
    let dy_of =
        |image: usize| &dy[image * out_channels * plane..(image + 1) * out_channels * plane];
    let len = out_channels * rows;
    let dw = if let Some(shifted) = shifted(&geometry) {
        let by_tap = batch::sum_over_images(
            batch,
            len,
            |image, acc, (padded, wide): &mut (Vec<f32>, Vec<f32>), par| {
                shifted.add_weight_grad(source(image), dy_of(image), acc, [padded, wide], par);
            },
        );
        shifted.weight_grad(&by_tap)
    } else {
        batch::sum_over_images(batch, len, |image, acc, cols: &mut Vec<f32>, par| {
            let cols_image: &[f32] = if geometry.is_pointwise() {
                source(image)
            } else {
                cols.resize(rows * plane, 0.0);
                im2col(source(image), &geometry, cols);
                cols
            };
            let cols_t = MatRef::from_row_major_slice(cols_image, rows, plane).transpose();
            let dy_image = MatRef::from_row_major_slice(dy_of(image), out_channels, plane);
            let out = MatMut::from_row_major_slice_mut(acc, out_channels, rows);
            matmul(out, Accum::Add, dy_image, cols_t, 1.0f32, par);
        })
    };
    FlexTensor::from_data(TensorData::new(dw, weight_dims))
}
