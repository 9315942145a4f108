//! Faster CPU kernels for the layers that dominate a detector's time, added to Burn through
//! its backend-extension pattern: [`KernelBackend`] extends `Backend` with the operations
//! below; each has a default body that is Burn's own op, so the GPU backends (wgpu, CUDA) run
//! exactly what they ran before, and `Flex` (Burn's CPU backend) overrides them with the
//! kernels in [`flex`]. `Autodiff<B>` records the convolution and the max pooling as its own
//! operations whose backward runs the inner backend's gradient kernels (`autodiff`).
//!
//! Models call [`conv2d_layer`] and [`max_pool2d_layer`] (a `Conv2d` or `MaxPool2d` module's
//! forward) instead of the modules' `forward`, and are generic over `B: KernelBackend`.

mod autodiff;
mod backends;
mod composed;
pub mod flex;
mod threads;

pub use threads::{on_pool_worker, on_pool_worker_if};

use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ops::{ConvOptions, FloatTensor, MaxPool2dWithIndices};
use burn::tensor::TensorPrimitive;

/// A Burn backend with visage's kernels. Every method's default is the composed Burn op.
pub trait KernelBackend: Backend {
    /// Whether the backend's kernels run on this process's rayon pool (the CPU backend): a
    /// model is then best called from a worker of that pool ([`on_pool_worker`]). The GPU
    /// backends only queue work on their device, from whichever thread calls them.
    const HOST_THREADS: bool = false;

    /// A 2-D convolution with symmetric padding, as `Backend::conv2d`.
    ///
    /// # Shapes
    /// - `x`: `[batch, in, h, w]`; `weight`: `[out, in / groups, kh, kw]`; `bias`: `[out]`
    /// - output: `[batch, out, (h + 2·pad − dil·(kh − 1) − 1) / stride + 1, (same for w)]`
    fn visage_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, bias, options)
    }

    /// `leaky_relu(visage_conv2d(x, weight, bias, options), negative_slope)`: the convolution
    /// with the activation applied where the backend can do it as the output is written
    /// (`Flex`), composed otherwise. Under `Autodiff` the default composition records both
    /// operations, so the gradients are Burn's.
    ///
    /// # Shapes
    /// As [`visage_conv2d`](Self::visage_conv2d).
    fn visage_conv2d_leaky_relu(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        options: ConvOptions<2>,
        negative_slope: f64,
    ) -> FloatTensor<Self> {
        Self::leaky_relu(
            Self::visage_conv2d(x, weight, bias, options),
            negative_slope.into(),
        )
    }

    /// The gradient of [`visage_conv2d`](Self::visage_conv2d) with respect to `x`, as
    /// `Backend::conv2d_x_backward`.
    ///
    /// # Shapes
    /// `x`, the result: `[batch, in, h, w]`; `weight`: `[out, in / groups, kh, kw]`;
    /// `output_grad`: the convolution's output shape.
    fn visage_conv2d_x_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d_x_backward(x, weight, output_grad, options)
    }

    /// The gradient of [`visage_conv2d`](Self::visage_conv2d) with respect to `weight`, as
    /// `Backend::conv2d_weight_backward`.
    ///
    /// # Shapes
    /// `x`: `[batch, in, h, w]`; `weight`, the result: `[out, in / groups, kh, kw]`;
    /// `output_grad`: the convolution's output shape.
    fn visage_conv2d_weight_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d_weight_backward(x, weight, output_grad, options)
    }

    /// The gradient of a convolution's bias: `output_grad` summed per channel over the batch
    /// and the plane, as `Backend::conv2d_bias_backward`.
    ///
    /// # Shapes
    /// `x`: `[batch, in, h, w]`; `bias`, the result: `[out]`; `output_grad`: `[batch, out,
    /// oh, ow]`.
    fn visage_conv2d_bias_backward(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::conv2d_bias_backward(x, bias, output_grad)
    }

    /// 2-D max pooling with symmetric padding, as `Backend::max_pool2d`.
    ///
    /// # Shapes
    /// - `x`: `[batch, channels, h, w]`
    /// - output: `[batch, channels, (h + 2·pad − dil·(k − 1) − 1) / stride + 1, (same for w)]`
    ///   (rounded up with `ceil_mode`)
    fn visage_max_pool2d(
        x: FloatTensor<Self>,
        kernel_size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        ceil_mode: bool,
    ) -> FloatTensor<Self> {
        Self::max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)
    }

    /// [`visage_max_pool2d`](Self::visage_max_pool2d) with the indices of the maxima in the
    /// layout this backend's `max_pool2d_with_indices_backward` reads, as
    /// `Backend::max_pool2d_with_indices`.
    fn visage_max_pool2d_with_indices(
        x: FloatTensor<Self>,
        kernel_size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        ceil_mode: bool,
    ) -> MaxPool2dWithIndices<Self> {
        Self::max_pool2d_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode)
    }

    /// Training-mode batch normalisation followed by an optional leaky ReLU: per channel,
    /// the batch mean `μ` and biased variance `σ²` over the batch and the plane,
    /// `y = (x − μ) / √(σ² + ε) · weight + bias`, then `leaky_relu(y, negative_slope)` when a
    /// slope is given (0 is ReLU). The default is Burn's composed ops.
    ///
    /// # Shapes
    /// - `x`: `[batch, channels, h, w]`; `weight`, `bias`: `[channels]`
    /// - output `[batch, channels, h, w]`; mean and variance `[channels]`
    fn visage_batch_norm_train(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        epsilon: f64,
        negative_slope: Option<f64>,
    ) -> BatchNormTrain<Self> {
        composed::batch_norm_train::<Self>(x, weight, bias, epsilon, negative_slope)
    }

    /// The gradients of [`visage_batch_norm_train`](Self::visage_batch_norm_train) with
    /// respect to `x`, `weight` and `bias`, from its inputs, the `mean` and `variance` it
    /// returned and the output's gradient. The default is Burn's composed ops.
    ///
    /// # Shapes
    /// `x`, `output_grad`, the first result: `[batch, channels, h, w]`; `weight`, `bias`,
    /// `mean`, `variance` and the other two results: `[channels]`.
    #[allow(clippy::too_many_arguments)]
    fn visage_batch_norm_train_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        negative_slope: Option<f64>,
        output_grad: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 3] {
        composed::batch_norm_train_backward::<Self>(
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

/// What [`KernelBackend::visage_batch_norm_train`] returns.
#[derive(Debug, Clone)]
pub struct BatchNormTrain<B: Backend> {
    /// The normalised (and activated) tensor, `[batch, channels, h, w]`.
    pub output: FloatTensor<B>,
    /// The batch mean per channel, `[channels]` (no gradient flows through it).
    pub mean: FloatTensor<B>,
    /// The biased batch variance per channel, `[channels]` (no gradient flows through it).
    pub variance: FloatTensor<B>,
}

/// [`KernelBackend::visage_batch_norm_train`] on tensors: the output (with its gradients
/// under autodiff), and the detached batch mean and biased variance for the running
/// statistics.
///
/// # Shapes
/// - `x`: `[batch, channels, h, w]`; `weight`, `bias`: `[channels]`
/// - returns `([batch, channels, h, w], [channels], [channels])`
pub fn batch_norm_train<B: KernelBackend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 1>,
    bias: Tensor<B, 1>,
    epsilon: f64,
    negative_slope: Option<f64>,
) -> (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 1>) {
    let out = B::visage_batch_norm_train(
        x.into_primitive().tensor(),
        weight.into_primitive().tensor(),
        bias.into_primitive().tensor(),
        epsilon,
        negative_slope,
    );
    (
        Tensor::from_primitive(TensorPrimitive::Float(out.output)),
        Tensor::from_primitive(TensorPrimitive::Float(out.mean)),
        Tensor::from_primitive(TensorPrimitive::Float(out.variance)),
    )
}

/// [`KernelBackend::visage_conv2d`] on tensors.
///
/// # Shapes
/// As [`KernelBackend::visage_conv2d`].
pub fn conv2d<B: KernelBackend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    options: ConvOptions<2>,
) -> Tensor<B, 4> {
    Tensor::from_primitive(TensorPrimitive::Float(B::visage_conv2d(
        x.into_primitive().tensor(),
        weight.into_primitive().tensor(),
        bias.map(|b| b.into_primitive().tensor()),
        options,
    )))
}

/// [`KernelBackend::visage_conv2d_leaky_relu`] on tensors.
///
/// # Shapes
/// As [`KernelBackend::visage_conv2d`].
pub fn conv2d_leaky_relu<B: KernelBackend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    options: ConvOptions<2>,
    negative_slope: f64,
) -> Tensor<B, 4> {
    Tensor::from_primitive(TensorPrimitive::Float(B::visage_conv2d_leaky_relu(
        x.into_primitive().tensor(),
        weight.into_primitive().tensor(),
        bias.map(|b| b.into_primitive().tensor()),
        options,
        negative_slope,
    )))
}

/// The options of `conv` for [`KernelBackend::visage_conv2d`], or `None` for padding it does
/// not take (`Same`, asymmetric).
fn layer_options<B: Backend>(conv: &Conv2d<B>) -> Option<ConvOptions<2>> {
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [0, 0],
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            [top, left]
        }
        _ => return None,
    };
    Some(ConvOptions::new(
        conv.stride,
        padding,
        conv.dilation,
        conv.groups,
    ))
}

/// `conv.forward(input)` through [`KernelBackend::visage_conv2d`] for symmetric explicit or
/// `Valid` padding; any other padding (`Same`, asymmetric) runs `Conv2d::forward` itself.
///
/// # Shapes
/// - `input`: `[batch, in, h, w]`
/// - output: `[batch, out, h', w']` as `Conv2d::forward`
pub fn conv2d_layer<B: KernelBackend>(conv: &Conv2d<B>, input: Tensor<B, 4>) -> Tensor<B, 4> {
    match layer_options(conv) {
        Some(options) => conv2d(
            input,
            conv.weight.val(),
            conv.bias.as_ref().map(|b| b.val()),
            options,
        ),
        None => conv.forward(input),
    }
}

/// `leaky_relu(conv.forward(input), negative_slope)` through
/// [`KernelBackend::visage_conv2d_leaky_relu`] (padding as [`conv2d_layer`]).
///
/// # Shapes
/// As [`conv2d_layer`].
pub fn conv2d_leaky_relu_layer<B: KernelBackend>(
    conv: &Conv2d<B>,
    input: Tensor<B, 4>,
    negative_slope: f64,
) -> Tensor<B, 4> {
    match layer_options(conv) {
        Some(options) => conv2d_leaky_relu(
            input,
            conv.weight.val(),
            conv.bias.as_ref().map(|b| b.val()),
            options,
            negative_slope,
        ),
        None => burn::tensor::activation::leaky_relu(conv.forward(input), negative_slope),
    }
}

/// `pool.forward(input)` through [`KernelBackend::visage_max_pool2d`] for symmetric explicit
/// or `Valid` padding; any other padding (`Same`, asymmetric) runs `MaxPool2d::forward` itself.
///
/// # Shapes
/// - `input`: `[batch, channels, h, w]`
/// - output: `[batch, channels, h', w']` as `MaxPool2d::forward`
pub fn max_pool2d_layer<B: KernelBackend>(pool: &MaxPool2d, input: Tensor<B, 4>) -> Tensor<B, 4> {
    let padding = match pool.padding {
        PaddingConfig2d::Valid => [0, 0],
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            [top, left]
        }
        _ => return pool.forward(input),
    };
    Tensor::from_primitive(TensorPrimitive::Float(B::visage_max_pool2d(
        input.into_primitive().tensor(),
        pool.kernel_size,
        pool.stride,
        padding,
        pool.dilation,
        pool.ceil_mode,
    )))
}

/// An autodiff backend whose inner backend also has visage's kernels: what training needs
/// (the model trains on `Self`, validates on `Self::InnerBackend`). Implemented for every
/// such backend.
pub trait KernelAutodiffBackend:
    AutodiffBackend<InnerBackend: KernelBackend> + KernelBackend
{
}

impl<B> KernelAutodiffBackend for B
where
    B: AutodiffBackend + KernelBackend,
    B::InnerBackend: KernelBackend,
{
}
