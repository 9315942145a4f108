//! Normalisation layers of the backbones: a trainable [`BatchNorm2d`] or a
//! [`FrozenBatchNorm`] (statistics and affine fixed), behind one [`Norm`] module, which is
//! [`FoldedNorm`] (the identity) once folded into its convolution for detection
//! ([`crate::fold`]).

use core::marker::PhantomData;

use burn::module::{Module, Param};
use burn::prelude::*;
use visage_kernels::KernelBackend;

use crate::batch_norm::{per_channel_affine, BatchNorm2d, BatchNorm2dConfig};

/// Configuration of a [`FrozenBatchNorm`].
#[derive(Config, Debug)]
pub struct FrozenBatchNormConfig {
    /// Number of channels.
    pub num_features: usize,
    /// Added to the variance before the square root (torchvision's `FrozenBatchNorm2d`: 1e-5).
    #[config(default = 1e-5)]
    pub epsilon: f64,
}

/// Batch normalisation with fixed statistics and fixed affine parameters, as torchvision's
/// `FrozenBatchNorm2d`: `y = (x - running_mean) / sqrt(running_var + eps) * weight + bias`.
///
/// The four tensors are parameters (so they are saved, loaded and moved with the module) that
/// do not require gradients, and `forward` detaches them: they never receive a gradient and
/// an optimiser never changes them. The field names are torchvision's.
#[derive(Module, Debug)]
pub struct FrozenBatchNorm<B: Backend> {
    /// Scale, `[channels]`.
    pub weight: Param<Tensor<B, 1>>,
    /// Shift, `[channels]`.
    pub bias: Param<Tensor<B, 1>>,
    /// Fixed mean, `[channels]`.
    pub running_mean: Param<Tensor<B, 1>>,
    /// Fixed variance, `[channels]`.
    pub running_var: Param<Tensor<B, 1>>,
    /// Added to the variance before the square root.
    pub epsilon: f64,
}

fn frozen_param<B: KernelBackend>(value: Tensor<B, 1>) -> Param<Tensor<B, 1>> {
    Param::from_tensor(value).set_require_grad(false)
}

impl FrozenBatchNormConfig {
    /// Identity initialisation: weight 1, bias 0, mean 0, variance 1.
    pub fn init<B: KernelBackend>(&self, device: &B::Device) -> FrozenBatchNorm<B> {
        let c = self.num_features;
        FrozenBatchNorm {
            weight: frozen_param(Tensor::ones([c], device)),
            bias: frozen_param(Tensor::zeros([c], device)),
            running_mean: frozen_param(Tensor::zeros([c], device)),
            running_var: frozen_param(Tensor::ones([c], device)),
            epsilon: self.epsilon,
        }
    }
}

impl<B: KernelBackend> FrozenBatchNorm<B> {
    /// Applies the fixed affine normalisation per channel.
    ///
    /// # Shapes
    /// - `input`: `[batch, channels, height, width]`
    /// - output: `[batch, channels, height, width]`
    pub fn forward(&self, input: Tensor<B, 4>) -> Tensor<B, 4> {
        let scale = self.weight.val().detach()
            / self
                .running_var
                .val()
                .detach()
                .add_scalar(self.epsilon)
                .sqrt();
        let shift = self.bias.val().detach() - self.running_mean.val().detach() * scale.clone();
        per_channel_affine(input, scale, shift)
    }
}

/// A batch norm folded into the convolution before it ([`crate::fold::fold_norm_into_conv`]):
/// the identity, with no parameters.
#[derive(Module, Debug)]
pub struct FoldedNorm<B: Backend> {
    /// Channels of the norm that was folded.
    pub channels: usize,
    backend: PhantomData<B>,
}

impl<B: KernelBackend> FoldedNorm<B> {
    /// The folded form of a norm over `channels` channels.
    pub fn new(channels: usize) -> Self {
        Self {
            channels,
            backend: PhantomData,
        }
    }
}

/// The normalisation after each backbone convolution: trainable batch norm (batch statistics
/// under autodiff, running statistics otherwise) or frozen batch norm.
///
/// The enum variant is not part of the parameter path when loading with burn-store's
/// enum-variant skipping, so `bn1.running_mean` addresses either variant.
#[derive(Module, Debug)]
pub enum Norm<B: Backend> {
    /// Trainable batch norm (parameters `weight`, `bias`, `running_mean`, `running_var`).
    Batch(BatchNorm2d<B>),
    /// Frozen batch norm (parameters `weight`, `bias`, `running_mean`, `running_var`).
    Frozen(FrozenBatchNorm<B>),
    /// Folded into the preceding convolution for detection: the identity.
    Folded(FoldedNorm<B>),
}

impl<B: KernelBackend> Norm<B> {
    /// A batch norm over `channels` channels, frozen or trainable. Trainable batch norm starts
    /// as torchvision's: weight 1, bias 0, momentum 0.1, eps 1e-5.
    pub fn new(channels: usize, frozen: bool, device: &B::Device) -> Self {
        if frozen {
            Norm::Frozen(FrozenBatchNormConfig::new(channels).init(device))
        } else {
            Norm::Batch(BatchNorm2dConfig::new(channels).init(device))
        }
    }

    /// Normalises the input.
    ///
    /// # Shapes
    /// - `input`: `[batch, channels, height, width]`
    /// - output: `[batch, channels, height, width]`
    pub fn forward(&self, input: Tensor<B, 4>) -> Tensor<B, 4> {
        match self {
            Norm::Batch(bn) => bn.forward(input),
            Norm::Frozen(bn) => bn.forward(input),
            Norm::Folded(_) => input,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::TensorData;

    type B = Flex;
    type AD = Autodiff<Flex>;

    #[test]
    fn frozen_bn_applies_fixed_statistics() {
        let device = Default::default();
        let mut bn = FrozenBatchNormConfig::new(2)
            .with_epsilon(0.0)
            .init::<B>(&device);
        bn.weight = frozen_param(Tensor::from_floats([2.0, 1.0], &device));
        bn.bias = frozen_param(Tensor::from_floats([1.0, -1.0], &device));
        bn.running_mean = frozen_param(Tensor::from_floats([1.0, 0.0], &device));
        bn.running_var = frozen_param(Tensor::from_floats([4.0, 1.0], &device));
        // Channel 0: (x - 1) / 2 * 2 + 1 = x; channel 1: x - 1.
        let x = Tensor::<B, 4>::from_floats([[[[3.0, 5.0]], [[3.0, 5.0]]]], &device);
        let y = bn.forward(x);
        y.into_data().assert_approx_eq::<f32>(
            &TensorData::from([[[[3.0f32, 5.0]], [[2.0, 4.0]]]]),
            burn::tensor::Tolerance::default(),
        );
    }

    #[test]
    fn frozen_bn_gets_no_gradient_but_input_does() {
        let device = Default::default();
        let norm = Norm::<AD>::new(3, true, &device);
        let x = Tensor::<AD, 4>::ones([1, 3, 2, 2], &device).require_grad();
        let grads = norm.forward(x.clone()).sum().backward();
        let Norm::Frozen(bn) = &norm else {
            panic!("expected a frozen norm")
        };
        assert!(bn.weight.grad(&grads).is_none());
        assert!(bn.bias.grad(&grads).is_none());
        assert!(bn.running_mean.grad(&grads).is_none());
        assert!(x.grad(&grads).is_some());
        assert_eq!(norm.num_params(), 12);
    }

    #[test]
    fn trainable_bn_gets_gradient() {
        let device = Default::default();
        let norm = Norm::<AD>::new(3, false, &device);
        let x = Tensor::<AD, 4>::random(
            [2, 3, 2, 2],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let y = norm.forward(x) * Tensor::<AD, 4>::ones([2, 3, 2, 2], &device).mul_scalar(2.0);
        let grads = (y.clone() * y).sum().backward();
        let Norm::Batch(bn) = &norm else {
            panic!("expected a batch norm")
        };
        assert!(bn.weight.grad(&grads).is_some());
    }
}
