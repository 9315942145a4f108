//! The two blocks of Pytorch_Retinaface's MobileNetV1: `conv_bn` and `conv_dw`.

use burn::nn::conv::Conv2d;
use burn::prelude::*;
use visage_kernels::KernelBackend;

use crate::conv::{conv_no_bias, conv_norm_leaky_relu, ConvNormAct};
use crate::Norm;

/// Pytorch_Retinaface's `conv_bn`: 3×3 convolution (padding 1, no bias), norm, leaky ReLU.
/// Torch keys `<block>.0.*` (convolution) and `<block>.1.*` (norm).
pub type ConvBn<B> = ConvNormAct<B>;

/// Pytorch_Retinaface's `conv_dw`: depthwise 3×3 convolution (groups = channels, padding 1,
/// no bias), norm, leaky ReLU, then pointwise 1×1 convolution (no bias), norm, leaky ReLU.
/// Torch keys `<block>.0.*`, `.1.*`, `.3.*`, `.4.*` (`.2` and `.5` are the activations).
#[derive(Module, Debug)]
pub struct ConvDw<B: Backend> {
    /// Depthwise 3×3 convolution with the block's stride, `in_channels` groups, weight
    /// `[in_channels, 1, 3, 3]`.
    pub depthwise: Conv2d<B>,
    /// Norm after `depthwise`, `in_channels` channels.
    pub depthwise_bn: Norm<B>,
    /// Pointwise 1×1 convolution, weight `[out_channels, in_channels, 1, 1]`.
    pub pointwise: Conv2d<B>,
    /// Norm after `pointwise`, `out_channels` channels.
    pub pointwise_bn: Norm<B>,
    /// Negative slope of both leaky ReLUs.
    pub leaky_slope: f64,
}

impl<B: KernelBackend> ConvDw<B> {
    /// A block from `in_channels` to `out_channels` channels.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        stride: usize,
        frozen_bn: bool,
        leaky_slope: f64,
        device: &B::Device,
    ) -> Self {
        Self {
            depthwise: conv_no_bias(in_channels, in_channels, 3, stride, in_channels, device),
            depthwise_bn: Norm::new(in_channels, frozen_bn, device),
            pointwise: conv_no_bias(in_channels, out_channels, 1, 1, 1, device),
            pointwise_bn: Norm::new(out_channels, frozen_bn, device),
            leaky_slope,
        }
    }

    /// # Shapes
    /// - `input`: `[batch, in_channels, h, w]`
    /// - output: `[batch, out_channels, ceil(h / stride), ceil(w / stride)]`
    pub fn forward(&self, input: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = conv_norm_leaky_relu(&self.depthwise, &self.depthwise_bn, input, self.leaky_slope);
        conv_norm_leaky_relu(&self.pointwise, &self.pointwise_bn, x, self.leaky_slope)
    }
}

/// One block of a MobileNetV1 stage. The variant is not part of a parameter path (burn-store
/// skips enum variants), so `stage1.0.conv.weight` and `stage1.1.depthwise.weight` address the
/// fields directly.
///
/// A network holds a single `ConvBn` (the stem) and thirteen `ConvDw`, so boxing the larger
/// variant would add an indirection to every block to save under 1 KB once.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum MobileBlock<B: Backend> {
    /// Full 3×3 convolution (only the first block of `stage1`).
    ConvBn(ConvBn<B>),
    /// Depthwise-separable convolution (every other block).
    ConvDw(ConvDw<B>),
}

impl<B: KernelBackend> MobileBlock<B> {
    /// # Shapes
    /// - `input`: `[batch, in_channels, h, w]`
    /// - output: `[batch, out_channels, ceil(h / stride), ceil(w / stride)]`
    pub fn forward(&self, input: Tensor<B, 4>) -> Tensor<B, 4> {
        match self {
            MobileBlock::ConvBn(b) => b.forward(input),
            MobileBlock::ConvDw(b) => b.forward(input),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::TensorData;

    type B = Flex;

    #[test]
    fn conv_dw_layout_and_shapes() {
        let device = Default::default();
        let block = ConvDw::<B>::new(4, 6, 2, true, 0.1, &device);
        assert_eq!(block.depthwise.weight.dims(), [4, 1, 3, 3]);
        assert_eq!(block.depthwise.stride, [2, 2]);
        assert_eq!(block.pointwise.weight.dims(), [6, 4, 1, 1]);
        assert_eq!(block.pointwise.stride, [1, 1]);
        assert!(block.depthwise.bias.is_none() && block.pointwise.bias.is_none());
        let y = block.forward(Tensor::ones([2, 4, 7, 4], &device));
        assert_eq!(y.dims(), [2, 6, 4, 2]);
    }

    #[test]
    fn conv_bn_layout_and_shapes() {
        let device = Default::default();
        let block = ConvBn::<B>::new(3, 8, 3, 2, Some(0.1), false, &device);
        assert_eq!(block.conv.weight.dims(), [8, 3, 3, 3]);
        assert!(block.conv.bias.is_none());
        let y = block.forward(Tensor::ones([1, 3, 5, 6], &device));
        assert_eq!(y.dims(), [1, 8, 3, 3]);
    }

    #[test]
    fn depthwise_is_per_channel_and_activation_is_leaky() {
        let device = Default::default();
        let mut block = ConvDw::<B>::new(2, 1, 1, true, 0.1, &device);
        // Depthwise: channel 0 keeps its centre pixel, channel 1 is negated.
        let mut dw = [[[[0.0f32; 3]; 3]]; 2];
        dw[0][0][1][1] = 1.0;
        dw[1][0][1][1] = -1.0;
        block.depthwise.weight =
            burn::module::Param::from_tensor(Tensor::from_data(TensorData::from(dw), &device));
        // Pointwise: sum of the two channels.
        block.pointwise.weight = burn::module::Param::from_tensor(Tensor::from_data(
            TensorData::from([[[[1.0f32]], [[1.0]]]]),
            &device,
        ));
        // Channel 0 = 2, channel 1 = 3: leaky(2) + leaky(-3) = 2 - 0.3 = 1.7, leaky(1.7) = 1.7.
        // Channel 0 = -2, channel 1 = -1: leaky(-2) + leaky(1) = -0.2 + 1 = 0.8.
        let x = Tensor::<B, 4>::from_floats([[[[2.0, -2.0]], [[3.0, -1.0]]]], &device);
        // Frozen norms at identity divide by sqrt(1 + 1e-5); compare loosely.
        block.forward(x).into_data().assert_approx_eq::<f32>(
            &TensorData::from([[[[1.7f32, 0.8]]]]),
            burn::tensor::Tolerance::absolute(1e-4),
        );
    }
}
