//! ResNet-18/34's basic block: two 3×3 convolutions and an identity or projection shortcut.

use crate::conv::conv_norm_leaky_relu;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::activation::relu;
use visage_kernels::{conv2d_layer, KernelBackend};

use super::downsample::Downsample;
use crate::conv::conv_no_bias;
use crate::Norm;

/// torchvision's `BasicBlock` (expansion 1): `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`,
/// the stride on `conv1`.
#[derive(Module, Debug)]
pub struct BasicBlock<B: Backend> {
    /// 3×3 convolution with the block's stride.
    pub conv1: Conv2d<B>,
    /// Norm after `conv1`.
    pub bn1: Norm<B>,
    /// 3×3 convolution, stride 1.
    pub conv2: Conv2d<B>,
    /// Norm after `conv2`.
    pub bn2: Norm<B>,
    /// Projection shortcut when the stride or the channel count changes.
    pub downsample: Option<Downsample<B>>,
}

impl<B: KernelBackend> BasicBlock<B> {
    /// Output channels relative to `planes`.
    pub const EXPANSION: usize = 1;

    /// A block from `in_channels` to `planes` channels.
    pub fn new(
        in_channels: usize,
        planes: usize,
        stride: usize,
        frozen_bn: bool,
        device: &B::Device,
    ) -> Self {
        let out = planes * Self::EXPANSION;
        Self {
            conv1: conv_no_bias(in_channels, planes, 3, stride, 1, device),
            bn1: Norm::new(planes, frozen_bn, device),
            conv2: conv_no_bias(planes, out, 3, 1, 1, device),
            bn2: Norm::new(out, frozen_bn, device),
            downsample: Downsample::<B>::needed(in_channels, out, stride)
                .then(|| Downsample::new(in_channels, out, stride, frozen_bn, device)),
        }
    }

    /// # Shapes
    /// - `input`: `[batch, in_channels, h, w]`
    /// - output: `[batch, planes, ceil(h / stride), ceil(w / stride)]`
    pub fn forward(&self, input: Tensor<B, 4>) -> Tensor<B, 4> {
        let identity = match &self.downsample {
            Some(d) => d.forward(input.clone()),
            None => input.clone(),
        };
        let x = conv_norm_leaky_relu(&self.conv1, &self.bn1, input, 0.0);
        let x = self.bn2.forward(conv2d_layer(&self.conv2, x));
        relu(x + identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn strided_block_halves_size_with_ceil_and_projects() {
        let device = Default::default();
        let block = BasicBlock::<Flex>::new(4, 6, 2, false, &device);
        assert!(block.downsample.is_some());
        let y = block.forward(Tensor::ones([1, 4, 9, 6], &device));
        assert_eq!(y.dims(), [1, 6, 5, 3]);
    }

    #[test]
    fn identity_block_has_no_projection_and_is_nonnegative() {
        let device = Default::default();
        let block = BasicBlock::<Flex>::new(4, 4, 1, true, &device);
        assert!(block.downsample.is_none());
        let x = Tensor::random(
            [1, 4, 5, 5],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let y = block.forward(x);
        assert_eq!(y.dims(), [1, 4, 5, 5]);
        assert!(y.min().into_scalar() >= 0.0);
    }
}
