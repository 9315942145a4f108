//! [`KernelBackend`] for Burn's CPU backend `Flex`: convolutions as one matrix product per
//! image over NCHW columns ([`im2col`]), computed by `faer` (run-time choice of AVX2 or
//! AVX-512 kernels, threads from the current rayon pool). burn-flex 0.21 instead copies every
//! input to NHWC, builds columns per 512-pixel tile and multiplies with its own gemm, about
//! 2.5–3× slower at these shapes (benches/RESULTS.md, issue 12).
//!
//! Stride-1 convolutions with a kernel skip the columns: [`shifted`] multiplies per kernel tap
//! over one zero-padded copy of the image (`VISAGE_CONV_COLUMNS=1` turns that off, for
//! benchmarking the two side by side).
//!
//! Max pooling in floor mode has its own kernel ([`max_pool`]); its backward is Flex's.
//!
//! Depthwise 3×3 convolutions (padding 1, stride 1 or 2) have their own kernel
//! ([`depthwise`]) and gradients ([`depthwise_backward`]); other grouped convolutions and
//! other float types keep Flex's.
//!
//! Training-mode batch norm with its activation: [`batch_norm`].

pub mod activation;
mod backward;
mod batch;
pub mod batch_norm;
mod channel_sum;
pub mod depthwise;
mod depthwise_backward;
pub mod im2col;
pub mod max_pool;
pub mod shifted;
mod vector_state;

use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::ops::{ConvOptions, FloatTensor, MaxPool2dWithIndices, ModuleOps};
use burn::tensor::{DType, TensorData};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

use crate::{BatchNormTrain, KernelBackend};
use depthwise::Depthwise3x3;
use im2col::{im2col, ConvGeometry};
use shifted::Shifted;

impl KernelBackend for Flex {
    const HOST_THREADS: bool = true;

    fn visage_conv2d(
        x: FlexTensor,
        weight: FlexTensor,
        bias: Option<FlexTensor>,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let f32_only = all_f32(&[&x, &weight]) && bias.as_ref().is_none_or(|b| all_f32(&[b]));
        if !f32_only {
            return Flex::conv2d(x, weight, bias, options);
        }
        if options.groups == 1 {
            return conv2d_f32(&x, &weight, bias.as_ref(), &options, None);
        }
        match depthwise_3x3(&x, &weight, &options) {
            Some(geometry) => depthwise_f32(&x, &weight, bias.as_ref(), geometry, None),
            None => Flex::conv2d(x, weight, bias, options),
        }
    }

    fn visage_conv2d_leaky_relu(
        x: FlexTensor,
        weight: FlexTensor,
        bias: Option<FlexTensor>,
        options: ConvOptions<2>,
        negative_slope: f64,
    ) -> FlexTensor {
        let f32_only = all_f32(&[&x, &weight]) && bias.as_ref().is_none_or(|b| all_f32(&[b]));
        let slope = Some(negative_slope as f32);
        if f32_only && options.groups == 1 {
            return conv2d_f32(&x, &weight, bias.as_ref(), &options, slope);
        }
        if f32_only {
            if let Some(geometry) = depthwise_3x3(&x, &weight, &options) {
                return depthwise_f32(&x, &weight, bias.as_ref(), geometry, slope);
            }
        }
        <Flex as burn::tensor::ops::ActivationOps<Flex>>::leaky_relu(
            Self::visage_conv2d(x, weight, bias, options),
            negative_slope.into(),
        )
    }

    fn visage_max_pool2d(
        x: FloatTensor<Self>,
        kernel_size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        ceil_mode: bool,
    ) -> FloatTensor<Self> {
        Self::visage_max_pool2d_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode)
            .output
    }

    fn visage_max_pool2d_with_indices(
        x: FloatTensor<Self>,
        kernel_size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        ceil_mode: bool,
    ) -> MaxPool2dWithIndices<Self> {
        if ceil_mode || !all_f32(&[&x]) {
            return Flex::max_pool2d_with_indices(
                x,
                kernel_size,
                stride,
                padding,
                dilation,
                ceil_mode,
            );
        }
        let [batch, channels, h, w] = dims4(&x);
        let geometry = ConvGeometry {
            channels,
            input: [h, w],
            kernel: kernel_size,
            stride,
            padding,
            dilation,
        };
        let [oh, ow] = geometry.output();
        let mut output = vec![0.0f32; batch * channels * oh * ow];
        let mut indices = vec![0i64; output.len()];
        max_pool::max_pool2d(&values(&x), &geometry, &mut output, &mut indices);
        let shape = [batch, channels, oh, ow];
        MaxPool2dWithIndices::new(
            FlexTensor::from_data(TensorData::new(output, shape)),
            FlexTensor::from_data(TensorData::new(indices, shape)),
        )
    }

    fn visage_conv2d_x_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let f32_only = all_f32(&[&x, &weight, &output_grad]);
        if f32_only && options.groups == 1 {
            return backward::conv2d_x_backward_f32(&x, &weight, &output_grad, &options);
        }
        match depthwise_3x3(&x, &weight, &options).filter(|_| f32_only) {
            Some(geometry) => depthwise_backward::x_grad(geometry, &weight, &output_grad),
            None => Flex::conv2d_x_backward(x, weight, output_grad, options),
        }
    }

    fn visage_batch_norm_train(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        epsilon: f64,
        negative_slope: Option<f64>,
    ) -> BatchNormTrain<Self> {
        if all_f32(&[&x, &weight, &bias]) {
            batch_norm::train_f32(&x, &weight, &bias, epsilon, negative_slope)
        } else {
            crate::composed::batch_norm_train::<Self>(x, weight, bias, epsilon, negative_slope)
        }
    }

    fn visage_batch_norm_train_backward(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        epsilon: f64,
        negative_slope: Option<f64>,
        output_grad: FlexTensor,
    ) -> [FlexTensor; 3] {
        let tensors = [&x, &weight, &bias, &mean, &variance, &output_grad];
        if all_f32(&tensors) {
            batch_norm::train_backward_f32(tensors, epsilon, negative_slope)
        } else {
            crate::composed::batch_norm_train_backward::<Self>(
                x,
                weight,
                bias,
                mean,
                variance,
                epsilon,
                negative_slope,
                output_grad,
            )
        }
    }

    fn visage_conv2d_weight_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let f32_only = all_f32(&[&x, &weight, &output_grad]);
        if f32_only && options.groups == 1 {
            return backward::conv2d_weight_backward_f32(&x, &weight, &output_grad, &options);
        }
        match depthwise_3x3(&x, &weight, &options).filter(|_| f32_only) {
            Some(geometry) => depthwise_backward::weight_grad(geometry, &x, &output_grad),
            None => Flex::conv2d_weight_backward(x, weight, output_grad, options),
        }
    }

    fn visage_conv2d_bias_backward(
        x: FlexTensor,
        bias: FlexTensor,
        output_grad: FlexTensor,
    ) -> FlexTensor {
        if all_f32(&[&output_grad]) {
            channel_sum::bias_gradient_f32(&output_grad)
        } else {
            Flex::conv2d_bias_backward(x, bias, output_grad)
        }
    }
}

/// Whether every tensor holds f32.
fn all_f32(tensors: &[&FlexTensor]) -> bool {
    tensors.iter().all(|t| t.dtype() == DType::F32)
}

/// The four dimensions of a rank-4 tensor.
fn dims4(t: &FlexTensor) -> [usize; 4] {
    let shape = t.layout().shape();
    assert_eq!(shape.num_dims(), 4, "a rank-4 tensor");
    [shape[0], shape[1], shape[2], shape[3]]
}

/// An f32 tensor's values in row-major order (copied only if it is a strided view).
fn values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(slice) => std::borrow::Cow::Borrowed(slice),
        None => std::borrow::Cow::Owned(
            t.to_contiguous()
                .as_slice::<f32>()
                .expect("a contiguous f32 tensor")
                .to_vec(),
        ),
    }
}

/// The column-free layout of `geometry` when it has one and `VISAGE_CONV_COLUMNS` is not `1`.
fn shifted(geometry: &ConvGeometry) -> Option<Shifted> {
    static COLUMNS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let columns =
        *COLUMNS.get_or_init(|| std::env::var("VISAGE_CONV_COLUMNS").is_ok_and(|v| v == "1"));
    if columns {
        None
    } else {
        Shifted::new(geometry)
    }
}

/// The threads a matrix product may use: those of the current rayon pool.
fn parallelism() -> Par {
    match rayon::current_num_threads() {
        0 | 1 => Par::Seq,
        n => Par::rayon(n),
    }
}

/// `dst[m, n] (+)= a[m, k] · b[k, n]`, all row-major, on the threads of `par` (a band of
/// `n` columns each, [`batch::by_column_blocks`]).
fn matmul_rows(
    dst: &mut [f32],
    a: &[f32],
    b: &[f32],
    [m, k, n]: [usize; 3],
    accumulate: bool,
    par: Par,
) {
    let a = MatRef::from_row_major_slice(a, m, k);
    let b = MatRef::from_row_major_slice(b, k, n);
    let dst = MatMut::from_row_major_slice_mut(dst, m, n);
    let accum = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    batch::by_column_blocks(dst, par, |columns, block| {
        let b = b.subcols(columns.start, columns.len());
        matmul(block, accum, a, b, 1.0f32, Par::Seq);
    });
}

/// An ungrouped f32 convolution, image by image ([`batch::for_each_image`]): for stride 1
/// with a kernel, [`shifted`]'s per-tap products; else columns, then `weight · columns` (plus
/// the bias, written first) straight into the output planes.
fn conv2d_f32(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
    options: &ConvOptions<2>,
    negative_slope: Option<f32>,
) -> FlexTensor {
    let [batch, channels, h, w] = dims4(x);
    let [out_channels, weight_channels, kh, kw] = dims4(weight);
    assert_eq!(
        weight_channels, channels,
        "conv2d: weight of {weight_channels} input channels for an input of {channels}"
    );
    let geometry = ConvGeometry {
        channels,
        input: [h, w],
        kernel: [kh, kw],
        stride: options.stride,
        padding: options.padding,
        dilation: options.dilation,
    };
    let [oh, ow] = geometry.output();
    let (rows, plane) = (geometry.rows(), oh * ow);
    let input = values(x);
    let weight = values(weight);
    let bias = bias.map(values);
    let image_in = channels * h * w;
    let source = |image: usize| &input[image * image_in..(image + 1) * image_in];
    let shifted = shifted(&geometry);
    // The products accumulate onto the bias: written once here instead of zeroed, then filled.
    let mut output = match (&bias, shifted) {
        (Some(bias), None) => {
            let mut planes = Vec::with_capacity(batch * out_channels * plane);
            for _ in 0..batch {
                for &b in bias.iter() {
                    planes.extend(std::iter::repeat_n(b, plane));
                }
            }
            planes
        }
        _ => vec![0.0f32; batch * out_channels * plane],
    };
    if let Some(shifted) = shifted {
        let taps = shifted.weight_taps(&weight, out_channels);
        batch::for_each_image(
            &mut output,
            out_channels * plane,
            |image, dst, (padded, wide): &mut (Vec<f32>, Vec<f32>), par| {
                let scratch = [padded, wide];
                shifted.forward(source(image), &taps, bias.as_deref(), dst, scratch, par);
                if let Some(slope) = negative_slope {
                    activation::leaky_relu_in_place(dst, slope);
                }
            },
        );
    } else {
        batch::for_each_image(
            &mut output,
            out_channels * plane,
            |image, dst, columns: &mut Vec<f32>, par| {
                let cols: &[f32] = if geometry.is_pointwise() {
                    source(image)
                } else {
                    columns.resize(rows * plane, 0.0);
                    im2col(source(image), &geometry, columns);
                    columns
                };
                let shape = [out_channels, rows, plane];
                matmul_rows(dst, &weight, cols, shape, bias.is_some(), par);
                if let Some(slope) = negative_slope {
                    activation::leaky_relu_in_place(dst, slope);
                }
            },
        );
    }
    FlexTensor::from_data(TensorData::new(output, [batch, out_channels, oh, ow]))
}

/// The geometry of a depthwise 3×3 convolution with padding 1, stride 1 or 2 and one filter
/// per channel, or `None` for any other convolution.
fn depthwise_3x3(
    x: &FlexTensor,
    weight: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<Depthwise3x3> {
    let [_, channels, h, w] = dims4(x);
    let [out_channels, per_group, kh, kw] = dims4(weight);
    let stride = options.stride[0];
    let fits = options.groups == channels
        && out_channels == channels
        && per_group == 1
        && [kh, kw] == [3, 3]
        && options.padding == [1, 1]
        && options.dilation == [1, 1]
        && options.stride == [stride, stride]
        && (stride == 1 || stride == 2);
    fits.then_some(Depthwise3x3 {
        channels,
        input: [h, w],
        stride,
    })
}

/// A depthwise 3×3 f32 convolution, image by image.
fn depthwise_f32(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
    geometry: Depthwise3x3,
    negative_slope: Option<f32>,
) -> FlexTensor {
    let [batch, channels, h, w] = dims4(x);
    let [oh, ow] = geometry.output();
    let input = values(x);
    let weight = values(weight);
    let bias = bias.map(values);
    let mut output = vec![0.0f32; batch * channels * oh * ow];
    if oh * ow > 0 {
        for (image, dst) in output.chunks_mut(channels * oh * ow).enumerate() {
            let src = &input[image * channels * h * w..(image + 1) * channels * h * w];
            geometry.run(src, &weight, bias.as_deref(), negative_slope, dst);
        }
    }
    FlexTensor::from_data(TensorData::new(output, [batch, channels, oh, ow]))
}

#[cfg(test)]
mod batch_norm_tests;
#[cfg(test)]
mod tests;
