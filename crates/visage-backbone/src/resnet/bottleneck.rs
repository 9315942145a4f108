//! ResNet-50/101/152's bottleneck block (v1.5: the stride on the 3×3 convolution).

use crate::conv::conv_norm_leaky_relu;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::activation::relu;
use visage_kernels::{conv2d_layer, KernelBackend};

use super::downsample::Downsample;
use crate::conv::conv_no_bias;
use crate::Norm;

/// torchvision's `Bottleneck` (expansion 4): 1×1 reduce, 3×3 with the block's stride, 1×1
/// expand, plus an identity or projection shortcut, then ReLU.
#[derive(Module, Debug)]
pub struct Bottleneck<B: Backend> {
    /// 1×1 convolution, `in_channels → planes`.
    pub conv1: Conv2d<B>,
    /// Norm after `conv1`.
    pub bn1: Norm<B>,
    /// 3×3 convolution with the block's stride, `planes → planes`.
    pub conv2: Conv2d<B>,
    /// Norm after `conv2`.
    pub bn2: Norm<B>,
    /// 1×1 convolution, `planes → 4 · planes`.
    pub conv3: Conv2d<B>,
    /// Norm after `conv3`.
    pub bn3: Norm<B>,
    /// Projection shortcut when the stride or the channel count changes.
    pub downsample: Option<Downsample<B>>,
}

impl<B: KernelBackend> Bottleneck<B> {
    /// Output channels relative to `planes`.
    pub const EXPANSION: usize = 4;

    /// A block from `in_channels` to `4 · planes` channels.
    pub fn new(
        in_channels: usize,
        planes: usize,
        stride: usize,
        frozen_bn: bool,
        device: &B::Device,
    ) -> Self {
        let out = planes * Self::EXPANSION;
        Self {
            conv1: conv_no_bias(in_channels, planes, 1, 1, 1, device),
            bn1: Norm::new(planes, frozen_bn, device),
            conv2: conv_no_bias(planes, planes, 3, stride, 1, device),
            bn2: Norm::new(planes, frozen_bn, device),
            conv3: conv_no_bias(planes, out, 1, 1, 1, device),
            bn3: Norm::new(out, frozen_bn, device),
            downsample: Downsample::<B>::needed(in_channels, out, stride)
                .then(|| Downsample::new(in_channels, out, stride, frozen_bn, device)),
        }
    }

    /// # Shapes
    /// - `input`: `[batch, in_channels, h, w]`
    /// - output: `[batch, 4 · planes, ceil(h / stride), ceil(w / stride)]`
    pub fn forward(&self, input: Tensor<B, 4>) -> Tensor<B, 4> {
        let identity = match &self.downsample {
            Some(d) => d.forward(input.clone()),
            None => input.clone(),
        };
        let x = conv_norm_leaky_relu(&self.conv1, &self.bn1, input, 0.0);
        let x = conv_norm_leaky_relu(&self.conv2, &self.bn2, x, 0.0);
        let x = self.bn3.forward(conv2d_layer(&self.conv3, x));
        relu(x + identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn stride_is_on_the_3x3_conv() {
        let device = Default::default();
        let block = Bottleneck::<Flex>::new(8, 2, 2, true, &device);
        assert_eq!(block.conv1.stride, [1, 1]);
        assert_eq!(block.conv2.stride, [2, 2]);
        assert_eq!(block.conv3.stride, [1, 1]);
        let d = block.downsample.as_ref().unwrap();
        assert_eq!(d.conv.stride, [2, 2]);
        assert_eq!(d.conv.weight.dims(), [8, 8, 1, 1]);
        let y = block.forward(Tensor::ones([2, 8, 7, 4], &device));
        assert_eq!(y.dims(), [2, 8, 4, 2]);
    }

    #[test]
    fn first_block_projects_channels_at_stride_one() {
        let device = Default::default();
        let block = Bottleneck::<Flex>::new(4, 4, 1, false, &device);
        assert!(block.downsample.is_some());
        assert_eq!(block.conv3.weight.dims(), [16, 4, 1, 1]);
        let y = block.forward(Tensor::ones([1, 4, 5, 5], &device));
        assert_eq!(y.dims(), [1, 16, 5, 5]);
    }
}
