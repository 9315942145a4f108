//! The projection shortcut of a residual block: 1×1 convolution (with the block's stride)
//! followed by a norm — torchvision's `downsample = Sequential(conv1x1, norm)`.

use burn::nn::conv::Conv2d;
use burn::prelude::*;

use crate::conv::conv_no_bias;
use crate::Norm;

/// Projection shortcut. Parameter paths `downsample.conv.*` and `downsample.bn.*` correspond
/// to torchvision's `downsample.0.*` and `downsample.1.*`.
#[derive(Module, Debug)]
pub struct Downsample<B: Backend> {
    /// 1×1 convolution, no bias, stride of the block.
    pub conv: Conv2d<B>,
    /// Norm after the convolution.
    pub bn: Norm<B>,
}

impl<B: Backend> Downsample<B> {
    /// A shortcut from `in_channels` to `out_channels` with the given stride.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        stride: usize,
        frozen_bn: bool,
        device: &B::Device,
    ) -> Self {
        Self {
            conv: conv_no_bias(in_channels, out_channels, 1, stride, 1, device),
            bn: Norm::new(out_channels, frozen_bn, device),
        }
    }

    /// Whether a block from `in_channels` to `out_channels` with `stride` needs a projection
    /// (torchvision's rule: stride ≠ 1 or a change of channels).
    pub fn needed(in_channels: usize, out_channels: usize, stride: usize) -> bool {
        stride != 1 || in_channels != out_channels
    }

    /// Projects the block's input.
    ///
    /// # Shapes
    /// - `input`: `[batch, in_channels, h, w]`
    /// - output: `[batch, out_channels, ceil(h / stride), ceil(w / stride)]`
    pub fn forward(&self, input: Tensor<B, 4>) -> Tensor<B, 4> {
        self.bn.forward(self.conv.forward(input))
    }
}
