//! The convolution every backbone layer uses, and the conv + norm + activation block of
//! Pytorch_Retinaface's necks.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use visage_kernels::{conv2d_layer, conv2d_leaky_relu_layer, KernelBackend};

/// A bias-free `k×k` convolution with stride `stride`, padding `k / 2` (so the output is
/// `ceil(input / stride)`) and `groups` groups, initialised as torchvision's ResNet (Kaiming
/// normal, fan-out, ReLU gain; Burn's fan-out of a grouped convolution is per group).
pub(crate) fn conv_no_bias<B: KernelBackend>(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    groups: usize,
    device: &B::Device,
) -> Conv2d<B> {
    let pad = kernel / 2;
    Conv2dConfig::new([in_channels, out_channels], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_groups(groups)
        .with_bias(false)
        .with_initializer(burn::nn::Initializer::KaimingNormal {
            gain: std::f64::consts::SQRT_2,
            fan_out_only: true,
        })
        .init(device)
}

/// `leaky_relu(norm(conv(input)), negative_slope)`. A folded norm is the identity, so the
/// convolution (its bias holding the norm) applies the activation as it writes its output
/// ([`conv2d_leaky_relu_layer`]); a trainable batch norm applies it in the same operation
/// ([`BatchNorm2d::forward_leaky_relu`](crate::BatchNorm2d::forward_leaky_relu)).
///
/// # Shapes
/// - `input`: `[batch, in, h, w]`
/// - output: `[batch, out, h', w']` as `conv`'s forward
pub fn conv_norm_leaky_relu<B: KernelBackend>(
    conv: &Conv2d<B>,
    norm: &crate::Norm<B>,
    input: Tensor<B, 4>,
    negative_slope: f64,
) -> Tensor<B, 4> {
    match norm {
        crate::Norm::Folded(_) => conv2d_leaky_relu_layer(conv, input, negative_slope),
        crate::Norm::Batch(bn) => {
            bn.forward_leaky_relu(conv2d_layer(conv, input), Some(negative_slope))
        }
        crate::Norm::Frozen(bn) => burn::tensor::activation::leaky_relu(
            bn.forward(conv2d_layer(conv, input)),
            negative_slope,
        ),
    }
}

/// Convolution (no bias) + batch norm + optional leaky ReLU: the `conv_bn`, `conv_bn1X1` and
/// `conv_bn_no_relu` blocks of Pytorch_Retinaface (`nn.Sequential(conv, bn[, act])`, torch keys
/// `<block>.0.weight` and `<block>.1.*`, mapped to `<block>.conv.*` / `<block>.bn.*`).
#[derive(Module, Debug)]
pub struct ConvNormAct<B: Backend> {
    /// `k×k` convolution, padding `k / 2`, no bias.
    pub conv: Conv2d<B>,
    /// Batch norm after `conv`.
    pub bn: crate::Norm<B>,
    /// Whether a leaky ReLU follows.
    pub activate: bool,
    /// Its negative slope (0 = plain ReLU).
    pub leaky_slope: f64,
}

impl<B: KernelBackend> ConvNormAct<B> {
    /// A block `in_channels → out_channels` with a `kernel × kernel` convolution of stride
    /// `stride`; `activation` is the leaky ReLU slope, `None` for no activation.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        activation: Option<f64>,
        frozen_bn: bool,
        device: &B::Device,
    ) -> Self {
        ConvNormAct {
            conv: conv_no_bias(in_channels, out_channels, kernel, stride, 1, device),
            bn: crate::Norm::new(out_channels, frozen_bn, device),
            activate: activation.is_some(),
            leaky_slope: activation.unwrap_or(0.0),
        }
    }

    /// # Shapes
    /// - `input`: `[batch, in_channels, h, w]`
    /// - output: `[batch, out_channels, ceil(h / stride), ceil(w / stride)]`
    pub fn forward(&self, input: Tensor<B, 4>) -> Tensor<B, 4> {
        if self.activate {
            conv_norm_leaky_relu(&self.conv, &self.bn, input, self.leaky_slope)
        } else {
            self.bn.forward(conv2d_layer(&self.conv, input))
        }
    }
}

/// Maps the torch `nn.Sequential` indices of a [`ConvNormAct`] in `key` (`<block>.0.` /
/// `<block>.1.` right after one of `blocks`) to field names; other keys are unchanged.
pub fn sequential_key_to_path(key: &str, blocks: &[&str]) -> String {
    for block in blocks {
        for (index, field) in [("0", "conv"), ("1", "bn")] {
            let torch = format!("{block}.{index}.");
            if let Some(rest) = key.strip_prefix(&torch) {
                return format!("{block}.{field}.{rest}");
            }
        }
    }
    key.to_string()
}

/// The inverse of [`sequential_key_to_path`].
pub fn path_to_sequential_key(path: &str, blocks: &[&str]) -> String {
    for block in blocks {
        for (index, field) in [("0", "conv"), ("1", "bn")] {
            let ours = format!("{block}.{field}.");
            if let Some(rest) = path.strip_prefix(&ours) {
                return format!("{block}.{index}.{rest}");
            }
        }
    }
    path.to_string()
}
