//! The projection shortcut of a residual block: 1×1 convolution (with the block's stride)
//! followed by a norm — torchvision's `downsample = Sequential(conv1x1, norm)`.

use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::ops::ConvOptions;
use burn::tensor::Slice;
use visage_kernels::conv2d;
use visage_kernels::KernelBackend;

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

impl<B: KernelBackend> Downsample<B> {
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
        self.bn.forward(pointwise_as_subsampling(&self.conv, input))
    }
}

/// A bias-free 1×1, padding-0 convolution of stride `s`, computed as its definition: keep every
/// `s`-th row and column (`x[:, :, ::s, ::s]`), then the same convolution at stride 1. Equal to
/// `conv.forward(input)` (same products, same sums).
///
/// Why not `conv.forward`: Burn 0.21's wgpu/CUDA backward of a convolution whose kernel is
/// smaller than its stride runs `conv_transpose2d`, and autotune may pick its direct kernel,
/// which returns zeros there (its input window `kernel·dilation − stride` is negative): the
/// shortcut's input gradient vanished on some machines and not others. See
/// `crates/visage/tests/wgpu_burn_bugs.rs`.
///
/// # Shapes
/// - `input`: `[batch, in_channels, h, w]`
/// - output: `[batch, out_channels, ceil(h / s), ceil(w / s)]`
fn pointwise_as_subsampling<B: KernelBackend>(
    conv: &Conv2d<B>,
    input: Tensor<B, 4>,
) -> Tensor<B, 4> {
    let [sy, sx] = conv.stride;
    debug_assert_eq!(conv.kernel_size, [1, 1], "a pointwise convolution");
    let input = if sy == 1 && sx == 1 {
        input
    } else {
        input.slice([
            Slice::full(),
            Slice::full(),
            Slice::new(0, None, sy as isize),
            Slice::new(0, None, sx as isize),
        ])
    };
    conv2d(
        input,
        conv.weight.val(),
        conv.bias.as_ref().map(|b| b.val()),
        ConvOptions::new([1, 1], [0, 0], [1, 1], conv.groups),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::Distribution;

    type B = Autodiff<Flex>;

    /// Max |a − b| over two tensors of the same shape.
    fn max_diff<const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    #[test]
    fn subsampling_equals_the_strided_convolution_and_its_gradients() {
        let device = Default::default();
        let down = Downsample::<B>::new(6, 10, 2, false, &device);
        // Odd sizes: the last row is kept, the last column dropped, as PyTorch's stride does.
        let x = Tensor::<B, 4>::random([2, 6, 7, 6], Distribution::Normal(0.0, 1.0), &device)
            .require_grad();
        let ours = pointwise_as_subsampling(&down.conv, x.clone());
        let burns = down.conv.forward(x.clone());
        assert_eq!(ours.dims(), [2, 10, 4, 3]);
        assert!(max_diff(ours.clone(), burns.clone()) < 1e-5);

        let r = Tensor::<B, 4>::random([2, 10, 4, 3], Distribution::Normal(0.0, 1.0), &device);
        let g_ours = (ours * r.clone()).sum().backward();
        let g_burn = (burns * r).sum().backward();
        let dx = |g: &_| x.grad(g).unwrap();
        let dw = |g: &_| down.conv.weight.val().grad(g).unwrap();
        assert!(
            max_diff(
                Tensor::from_inner(dx(&g_ours)),
                Tensor::from_inner(dx(&g_burn))
            ) < 1e-5
        );
        assert!(
            max_diff(
                Tensor::from_inner(dw(&g_ours)),
                Tensor::from_inner(dw(&g_burn))
            ) < 1e-5
        );
        // Rows/columns the stride skips get no gradient.
        let skipped = dx(&g_ours).slice([0..2, 0..6, 1..2, 0..6]);
        assert_eq!(skipped.abs().max().into_scalar(), 0.0);
    }

    #[test]
    fn stride_one_is_the_plain_convolution() {
        let device = Default::default();
        let down = Downsample::<Flex>::new(4, 8, 1, false, &device);
        let x = Tensor::<Flex, 4>::random([1, 4, 5, 3], Distribution::Default, &device);
        let ours = pointwise_as_subsampling(&down.conv, x.clone());
        let burns = down.conv.forward(x);
        assert_eq!(ours.into_data(), burns.into_data());
    }
}
