//! Trainable 2-D batch normalisation written for the CPU backend's fast paths.
//!
//! Burn's `BatchNorm` computes its statistics through `swap_dims(0, 1)` copies and subtracts
//! `[1, C, 1, 1]` tensors broadcast over the batch; on the `Flex` backend both take a scalar
//! strided-iteration path that dominated a training step of the quickstart detector (24 % of
//! all samples in a profile, more than the convolutions). This module computes the same
//! function in training as one operation of the kernel extension with its activation
//! ([`visage_kernels::batch_norm_train`]), and at inference on `[B, C, H·W]` views with
//! per-`(b, c)` row scalars, which Flex vectorises.
//!
//! Parameter names are PyTorch's (`weight`, `bias`, `running_mean`, `running_var`), like
//! [`FrozenBatchNorm`](crate::FrozenBatchNorm), so a checkpoint addresses either norm the same
//! way and the backbones' parameter paths equal torchvision's. Unlike Burn (and like PyTorch) the running variance is updated
//! with the unbiased batch variance.

use burn::module::{Module, Param, RunningState};
use burn::prelude::*;
use visage_kernels::{batch_norm_train, KernelBackend};

/// Configuration of a [`BatchNorm2d`].
#[derive(Config, Debug)]
pub struct BatchNorm2dConfig {
    /// Number of channels `C`.
    pub num_features: usize,
    /// Added to the variance before the square root (PyTorch: 1e-5).
    #[config(default = 1e-5)]
    pub epsilon: f64,
    /// Weight of the new batch statistics in the running averages (PyTorch: 0.1).
    #[config(default = 0.1)]
    pub momentum: f64,
}

/// Batch normalisation over `[B, C, H, W]`: batch statistics under autodiff (training), running
/// statistics otherwise.
#[derive(Module, Debug)]
pub struct BatchNorm2d<B: Backend> {
    /// Scale, `[C]`.
    pub weight: Param<Tensor<B, 1>>,
    /// Shift, `[C]`.
    pub bias: Param<Tensor<B, 1>>,
    /// Running mean, `[C]`.
    pub running_mean: RunningState<Tensor<B, 1>>,
    /// Running (unbiased) variance, `[C]`.
    pub running_var: RunningState<Tensor<B, 1>>,
    /// See [`BatchNorm2dConfig::momentum`].
    pub momentum: f64,
    /// See [`BatchNorm2dConfig::epsilon`].
    pub epsilon: f64,
}

impl BatchNorm2dConfig {
    /// PyTorch's initialisation: weight 1, bias 0, mean 0, variance 1.
    pub fn init<B: KernelBackend>(&self, device: &B::Device) -> BatchNorm2d<B> {
        let c = self.num_features;
        BatchNorm2d {
            weight: Param::from_tensor(Tensor::ones([c], device)),
            bias: Param::from_tensor(Tensor::zeros([c], device)),
            running_mean: RunningState::new(Tensor::zeros([c], device)),
            running_var: RunningState::new(Tensor::ones([c], device)),
            momentum: self.momentum,
            epsilon: self.epsilon,
        }
    }
}

/// `x · scale + shift` per channel, with `scale` and `shift` of shape `[C]`.
///
/// # Shapes
/// - `x`: `[B, C, H, W]`; `scale`, `shift`: `[C]`; output `[B, C, H, W]`.
pub fn per_channel_affine<B: KernelBackend>(
    x: Tensor<B, 4>,
    scale: Tensor<B, 1>,
    shift: Tensor<B, 1>,
) -> Tensor<B, 4> {
    let [b, c, h, w] = x.dims();
    let rows = |t: Tensor<B, 1>| t.reshape([1, c, 1]).repeat_dim(0, b);
    (x.reshape([b, c, h * w]) * rows(scale) + rows(shift)).reshape([b, c, h, w])
}

impl<B: KernelBackend> BatchNorm2d<B> {
    /// Normalises per channel.
    ///
    /// # Shapes
    /// - `input`: `[B, C, H, W]`; output: `[B, C, H, W]`.
    pub fn forward(&self, input: Tensor<B, 4>) -> Tensor<B, 4> {
        self.forward_leaky_relu(input, None)
    }

    /// `leaky_relu(self.forward(input), slope)` for `Some(slope)` (0 is ReLU), `forward`
    /// for `None`. In training the norm and its activation are one operation
    /// ([`visage_kernels::batch_norm_train`]: two passes each way on `Flex` instead of Burn's
    /// composed ops).
    ///
    /// # Shapes
    /// - `input`: `[B, C, H, W]`; output: `[B, C, H, W]`.
    pub fn forward_leaky_relu(&self, input: Tensor<B, 4>, slope: Option<f64>) -> Tensor<B, 4> {
        if B::ad_enabled(&input.device()) {
            return self.forward_train(input, slope);
        }
        let scale = self.weight.val() / self.running_var.value().add_scalar(self.epsilon).sqrt();
        let shift = self.bias.val() - self.running_mean.value() * scale.clone();
        let y = per_channel_affine(input, scale, shift);
        match slope {
            Some(slope) => burn::tensor::activation::leaky_relu(y, slope),
            None => y,
        }
    }

    fn forward_train(&self, input: Tensor<B, 4>, slope: Option<f64>) -> Tensor<B, 4> {
        let [b, _, h, w] = input.dims();
        let n = (b * h * w) as f64;
        let (y, mean, var) = batch_norm_train(
            input,
            self.weight.val(),
            self.bias.val(),
            self.epsilon,
            slope,
        );
        let unbiased = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
        let m = self.momentum;
        let running_mean = self.running_mean.value_sync().mul_scalar(1.0 - m) + mean.mul_scalar(m);
        let running_var =
            self.running_var.value_sync().mul_scalar(1.0 - m) + var.mul_scalar(m * unbiased);
        self.running_mean.update(running_mean);
        self.running_var.update(running_var);
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::nn::BatchNormConfig;
    use burn::tensor::{Distribution, Tolerance};

    type Ad = Autodiff<Flex>;

    #[test]
    fn training_output_and_gradients_match_burns_batch_norm() {
        let device = Default::default();
        let x = Tensor::<Ad, 4>::random([3, 4, 5, 6], Distribution::Normal(2.0, 3.0), &device)
            .require_grad();
        let ours = BatchNorm2dConfig::new(4).init::<Ad>(&device);
        let theirs = BatchNormConfig::new(4).init::<Ad>(&device);
        let weights =
            Tensor::<Ad, 4>::random([3, 4, 5, 6], Distribution::Normal(0.0, 1.0), &device);
        let y_ours = ours.forward(x.clone());
        let y_theirs = theirs.forward(x.clone());
        y_ours
            .clone()
            .into_data()
            .assert_approx_eq::<f32>(&y_theirs.clone().into_data(), Tolerance::absolute(1e-4));
        let g_ours = (y_ours * weights.clone()).sum().backward();
        let g_theirs = (y_theirs * weights).sum().backward();
        x.grad(&g_ours)
            .unwrap()
            .into_data()
            .assert_approx_eq::<f32>(
                &x.grad(&g_theirs).unwrap().into_data(),
                Tolerance::absolute(1e-4),
            );
        ours.weight
            .grad(&g_ours)
            .unwrap()
            .into_data()
            .assert_approx_eq::<f32>(
                &theirs.gamma.grad(&g_theirs).unwrap().into_data(),
                Tolerance::absolute(1e-3),
            );
    }

    #[test]
    fn running_statistics_follow_pytorch() {
        let device = Default::default();
        // Channel 0 holds 1, 2, 3, 4 (mean 2.5, unbiased var 5/3); channel 1 is constant 7.
        let x = Tensor::<Ad, 4>::from_floats(
            [[[[1.0, 2.0]], [[7.0, 7.0]]], [[[3.0, 4.0]], [[7.0, 7.0]]]],
            &device,
        );
        let bn = BatchNorm2dConfig::new(2).init::<Ad>(&device);
        let _ = bn.forward(x);
        let mean: Vec<f32> = bn.running_mean.value_sync().into_data().to_vec().unwrap();
        let var: Vec<f32> = bn.running_var.value_sync().into_data().to_vec().unwrap();
        assert!(
            (mean[0] - 0.25).abs() < 1e-6 && (mean[1] - 0.7).abs() < 1e-6,
            "{mean:?}"
        );
        let expected = 0.9 + 0.1 * 5.0 / 3.0;
        assert!(
            (var[0] - expected).abs() < 1e-5 && (var[1] - 0.9).abs() < 1e-6,
            "{var:?}"
        );
    }

    #[test]
    fn inference_uses_running_statistics() {
        let device = Default::default();
        let mut bn = BatchNorm2dConfig::new(2)
            .with_epsilon(0.0)
            .init::<Flex>(&device);
        bn.running_mean = RunningState::new(Tensor::from_floats([1.0, -1.0], &device));
        bn.running_var = RunningState::new(Tensor::from_floats([4.0, 1.0], &device));
        bn.weight = Param::from_tensor(Tensor::from_floats([2.0, 1.0], &device));
        let x = Tensor::<Flex, 4>::from_floats([[[[3.0, 5.0]], [[0.0, 1.0]]]], &device);
        let y: Vec<f32> = bn.forward(x).into_data().to_vec().unwrap();
        // (3-1)/2*2 = 2, (5-1)/2*2 = 4; 0+1 = 1, 1+1 = 2.
        assert_eq!(y, vec![2.0, 4.0, 1.0, 2.0]);
    }
}
