//! The convolution every backbone layer uses.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::prelude::*;

/// A bias-free `k×k` convolution with stride `stride`, padding `k / 2` (so the output is
/// `ceil(input / stride)`) and `groups` groups, initialised as torchvision's ResNet (Kaiming
/// normal, fan-out, ReLU gain; Burn's fan-out of a grouped convolution is per group).
pub(crate) fn conv_no_bias<B: Backend>(
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
