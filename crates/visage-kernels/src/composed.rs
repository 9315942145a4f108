//! The default bodies of [`KernelBackend`](crate::KernelBackend)'s batch norm: Burn's own
//! tensor ops, which the GPU backends run and the `Flex` kernels are tested against.

use burn::prelude::*;
use burn::tensor::ops::FloatTensor;
use burn::tensor::TensorPrimitive;

use crate::BatchNormTrain;

fn tensor<B: Backend, const D: usize>(primitive: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(primitive))
}

fn primitive<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> FloatTensor<B> {
    tensor.into_primitive().tensor()
}

/// `[C]` → `[1, C, 1]`, to broadcast over `[B, C, H·W]`.
fn per_channel<B: Backend>(values: FloatTensor<B>) -> Tensor<B, 3> {
    let values = tensor::<B, 1>(values);
    let [c] = values.dims();
    values.reshape([1, c, 1])
}

/// Sums `[B, C, H·W]` over the batch and the plane: `[1, C, 1]`.
fn channel_sums<B: Backend>(values: Tensor<B, 3>) -> Tensor<B, 3> {
    values.sum_dim(2).sum_dim(0)
}

/// Training-mode batch norm and leaky ReLU as composed Burn ops
/// ([`KernelBackend::visage_batch_norm_train`](crate::KernelBackend::visage_batch_norm_train)).
pub(crate) fn batch_norm_train<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    bias: FloatTensor<B>,
    epsilon: f64,
    negative_slope: Option<f64>,
) -> BatchNormTrain<B> {
    let x = tensor::<B, 4>(x);
    let [b, c, h, w] = x.dims();
    let n = (b * h * w) as f64;
    let x = x.reshape([b, c, h * w]);
    let mean = channel_sums(x.clone()).div_scalar(n);
    let centered = x - mean.clone();
    let variance = channel_sums(centered.clone().square()).div_scalar(n);
    let scale = per_channel::<B>(weight) / variance.clone().add_scalar(epsilon).sqrt();
    let y = centered * scale + per_channel::<B>(bias);
    let y = match negative_slope {
        Some(slope) => burn::tensor::activation::leaky_relu(y, slope),
        None => y,
    };
    BatchNormTrain {
        output: primitive(y.reshape([b, c, h, w])),
        mean: primitive(mean.reshape([c])),
        variance: primitive(variance.reshape([c])),
    }
}

/// The gradients of [`batch_norm_train`] as composed Burn ops
/// ([`KernelBackend::visage_batch_norm_train_backward`](crate::KernelBackend::visage_batch_norm_train_backward)):
/// with `x̂ = (x − μ) / √(σ² + ε)` and `g` the output gradient times the activation's slope
/// at `x̂·γ + β`, `∂β = Σ g`, `∂γ = Σ g·x̂`, `∂x = γ / √(σ² + ε) · (g − ∂β / N − x̂ · ∂γ / N)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn batch_norm_train_backward<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    bias: FloatTensor<B>,
    mean: FloatTensor<B>,
    variance: FloatTensor<B>,
    epsilon: f64,
    negative_slope: Option<f64>,
    output_grad: FloatTensor<B>,
) -> [FloatTensor<B>; 3] {
    let x = tensor::<B, 4>(x);
    let [b, c, h, w] = x.dims();
    let n = (b * h * w) as f64;
    let x = x.reshape([b, c, h * w]);
    let inverse_std = per_channel::<B>(variance)
        .add_scalar(epsilon)
        .sqrt()
        .recip();
    let normalized = (x - per_channel::<B>(mean)) * inverse_std.clone();
    let weight = per_channel::<B>(weight);
    let grad = tensor::<B, 4>(output_grad).reshape([b, c, h * w]);
    let grad = match negative_slope {
        Some(slope) => {
            let negative =
                (normalized.clone() * weight.clone() + per_channel::<B>(bias)).lower_elem(0.0);
            let scaled = grad.clone().mul_scalar(slope);
            grad.mask_where(negative, scaled)
        }
        None => grad,
    };
    let bias_grad = channel_sums(grad.clone());
    let weight_grad = channel_sums(grad.clone() * normalized.clone());
    let x_grad =
        (grad - bias_grad.clone().div_scalar(n) - normalized * weight_grad.clone().div_scalar(n))
            * (weight * inverse_std);
    [
        primitive(x_grad.reshape([b, c, h, w])),
        primitive(weight_grad.reshape([c])),
        primitive(bias_grad.reshape([c])),
    ]
}
