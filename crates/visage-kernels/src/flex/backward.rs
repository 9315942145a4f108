//! The gradients of the Flex convolution ([`super::conv2d_f32`]) for training: with
//! `cols` the image's columns (`[C·kh·kw, P]`, P = output pixels), `W` the weight as
//! `[out, C·kh·kw]` and `dY` the output gradient as `[out, P]`:
//! - input: `col2im(Wᵀ · dY)` (for a 1×1 stride-1 convolution, `Wᵀ · dY` itself);
//! - weight: `Σ_images dY · colsᵀ`.
//!
//! Both are one faer product per image, as the forward.

use burn::backend::flex::FlexTensor;
use burn::tensor::ops::ConvOptions;
use burn::tensor::TensorData;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef};

use super::im2col::{col2im, im2col, ConvGeometry};
use super::{dims4, parallelism, values};

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
    let mut dx = vec![0.0f32; batch * channels * h * w];
    let mut dcols = vec![
        0.0f32;
        if geometry.is_pointwise() {
            0
        } else {
            rows * plane
        }
    ];
    let wt = MatRef::from_row_major_slice(&weight[..], out_channels, rows).transpose();
    for (image, dst) in dx.chunks_mut(channels * h * w).enumerate() {
        let dy_image = &dy[image * out_channels * plane..(image + 1) * out_channels * plane];
        let dy_image = MatRef::from_row_major_slice(dy_image, out_channels, plane);
        if geometry.is_pointwise() {
            let out = MatMut::from_row_major_slice_mut(dst, rows, plane);
            matmul(out, Accum::Replace, wt, dy_image, 1.0f32, parallelism());
        } else {
            let out = MatMut::from_row_major_slice_mut(&mut dcols, rows, plane);
            matmul(out, Accum::Replace, wt, dy_image, 1.0f32, parallelism());
            col2im(&dcols, &geometry, dst);
        }
    }
    FlexTensor::from_data(TensorData::new(dx, [batch, channels, h, w]))
}

/// The gradient with respect to the weight, `[out, C, kh, kw]`.
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
    let mut dw = vec![0.0f32; out_channels * rows];
    let mut cols = vec![
        0.0f32;
        if geometry.is_pointwise() {
            0
        } else {
            rows * plane
        }
    ];
    for image in 0..batch {
        let src = &input[image * channels * h * w..(image + 1) * channels * h * w];
        let cols_image: &[f32] = if geometry.is_pointwise() {
            src
        } else {
            im2col(src, &geometry, &mut cols);
            &cols
        };
        let cols_t = MatRef::from_row_major_slice(cols_image, rows, plane).transpose();
        let dy_image = &dy[image * out_channels * plane..(image + 1) * out_channels * plane];
        let dy_image = MatRef::from_row_major_slice(dy_image, out_channels, plane);
        let out = MatMut::from_row_major_slice_mut(&mut dw, out_channels, rows);
        let accum = if image == 0 {
            Accum::Replace
        } else {
            Accum::Add
        };
        matmul(out, accum, dy_image, cols_t, 1.0f32, parallelism());
    }
    FlexTensor::from_data(TensorData::new(dw, weight_dims))
}
