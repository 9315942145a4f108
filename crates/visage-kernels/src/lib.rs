//! Faster CPU kernels for the layers that dominate a detector's time, added to Burn through
//! its backend-extension pattern: [`KernelBackend`] extends `Backend` with the operations
//! below; each has a default body that is Burn's own op, so the GPU backends (wgpu, CUDA) run
//! exactly what they ran before, and `Flex` (Burn's CPU backend) overrides them with the
//! kernels in [`flex`]. `Autodiff<B>` records the convolution as its own operation whose
//! backward runs the inner backend's gradient kernels (`autodiff`).
//!
//! Models call [`conv2d_layer`] (a `Conv2d` module's forward) instead of `Conv2d::forward`,
//! and are generic over `B: KernelBackend`.

mod autodiff;
mod backends;
pub mod flex;

use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ops::{ConvOptions, FloatTensor};
use burn::tensor::TensorPrimitive;

/// A Burn backend with visage's kernels. Every method's default is the composed Burn op.
pub trait KernelBackend: Backend {
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

/// `conv.forward(input)` through [`KernelBackend::visage_conv2d`] for symmetric explicit or
/// `Valid` padding; any other padding (`Same`, asymmetric) runs `Conv2d::forward` itself.
///
/// # Shapes
/// - `input`: `[batch, in, h, w]`
/// - output: `[batch, out, h', w']` as `Conv2d::forward`
pub fn conv2d_layer<B: KernelBackend>(conv: &Conv2d<B>, input: Tensor<B, 4>) -> Tensor<B, 4> {
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [0, 0],
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            [top, left]
        }
        _ => return conv.forward(input),
    };
    conv2d(
        input,
        conv.weight.val(),
        conv.bias.as_ref().map(|b| b.val()),
        ConvOptions::new(conv.stride, padding, conv.dilation, conv.groups),
    )
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
