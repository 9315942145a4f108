//! Inference-time folding of a batch norm into the convolution before it.
//!
//! At inference a batch norm (frozen, or trainable in eval mode: running statistics) is the
//! per-channel affine map `y = x · s + t` with `s = γ / √(σ² + ε)` and `t = β − μ · s`. After a
//! convolution `x = w ∗ i + b` it is the convolution with weight `w · s` (each output channel
//! scaled) and bias `b · s + t`, so the norm's pass over the feature map disappears. Folded
//! norms become [`Norm::Folded`] (the identity). A folded model is for detection only: its
//! parameters are no longer the checkpoint's (the convolutions gained biases), so it is never
//! trained or saved.

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use visage_kernels::KernelBackend;

use crate::conv::ConvNormAct;
use crate::mobilenet::{ConvDw, MobileBlock};
use crate::resnet::{BasicBlock, Bottleneck, Downsample, ResidualBlock};
use crate::{Backbone, FoldedNorm, MobileNetV1, Norm, ResNet};

/// The per-channel `(scale, shift)` that `norm` applies at inference (running statistics), or
/// `None` for a norm that is already folded.
///
/// # Shapes
/// `scale`, `shift`: `[channels]`.
pub fn inference_affine<B: KernelBackend>(norm: &Norm<B>) -> Option<(Tensor<B, 1>, Tensor<B, 1>)> {
    let (gamma, beta, mean, var, eps) = match norm {
        Norm::Batch(bn) => (
            bn.weight.val(),
            bn.bias.val(),
            bn.running_mean.value(),
            bn.running_var.value(),
            bn.epsilon,
        ),
        Norm::Frozen(bn) => (
            bn.weight.val(),
            bn.bias.val(),
            bn.running_mean.val(),
            bn.running_var.val(),
            bn.epsilon,
        ),
        Norm::Folded(_) => return None,
    };
    let scale = gamma / var.add_scalar(eps).sqrt();
    let shift = beta - mean * scale.clone();
    Some((scale, shift))
}

/// `norm(conv(x))` as one convolution: `conv` with `norm`'s inference affine folded into its
/// weight (`[out, in / groups, kh, kw]`, output channel `o` scaled by `s[o]`) and bias
/// (`b · s + t`, created when the convolution had none), and the norm replaced by
/// [`Norm::Folded`]. An already folded norm leaves both unchanged.
///
/// # Panics
/// If the norm's channel count differs from the convolution's output channels.
pub fn fold_norm_into_conv<B: KernelBackend>(
    conv: Conv2d<B>,
    norm: Norm<B>,
) -> (Conv2d<B>, Norm<B>) {
    let Some((scale, shift)) = inference_affine(&norm) else {
        return (conv, norm);
    };
    let [out_channels, ..] = conv.weight.dims();
    assert_eq!(
        scale.dims()[0],
        out_channels,
        "a norm over {} channels after a convolution with {out_channels} outputs",
        scale.dims()[0]
    );
    let per_output = scale.clone().reshape([out_channels, 1, 1, 1]);
    let weight = conv.weight.map(|w| w * per_output);
    let bias = match conv.bias {
        Some(bias) => bias.map(|b| b * scale + shift),
        None => Param::from_tensor(shift),
    };
    let folded = Conv2d {
        weight,
        bias: Some(bias),
        ..conv
    };
    (folded, Norm::Folded(FoldedNorm::new(out_channels)))
}

impl<B: KernelBackend> ConvNormAct<B> {
    /// This block with its norm folded into its convolution (detection only, see [`crate::fold`]).
    pub fn fold_norms(self) -> Self {
        let (conv, bn) = fold_norm_into_conv(self.conv, self.bn);
        Self { conv, bn, ..self }
    }
}

impl<B: KernelBackend> ConvDw<B> {
    /// Both norms folded into their convolutions (detection only, see [`crate::fold`]).
    pub fn fold_norms(self) -> Self {
        let (depthwise, depthwise_bn) = fold_norm_into_conv(self.depthwise, self.depthwise_bn);
        let (pointwise, pointwise_bn) = fold_norm_into_conv(self.pointwise, self.pointwise_bn);
        Self {
            depthwise,
            depthwise_bn,
            pointwise,
            pointwise_bn,
            ..self
        }
    }
}

impl<B: KernelBackend> MobileNetV1<B> {
    /// Every norm folded into its convolution (detection only, see [`crate::fold`]).
    pub fn fold_norms(self) -> Self {
        let fold_stage = |stage: Vec<MobileBlock<B>>| {
            stage
                .into_iter()
                .map(|block| match block {
                    MobileBlock::ConvBn(b) => MobileBlock::ConvBn(b.fold_norms()),
                    MobileBlock::ConvDw(b) => MobileBlock::ConvDw(b.fold_norms()),
                })
                .collect()
        };
        Self {
            stage1: fold_stage(self.stage1),
            stage2: fold_stage(self.stage2),
            stage3: fold_stage(self.stage3),
            ..self
        }
    }
}

impl<B: KernelBackend> Downsample<B> {
    /// The shortcut's norm folded into its convolution (detection only).
    pub fn fold_norms(self) -> Self {
        let (conv, bn) = fold_norm_into_conv(self.conv, self.bn);
        Self { conv, bn }
    }
}

impl<B: KernelBackend> ResidualBlock<B> {
    /// Every norm of the block folded into its convolution (detection only).
    pub fn fold_norms(self) -> Self {
        match self {
            ResidualBlock::Basic(b) => {
                let (conv1, bn1) = fold_norm_into_conv(b.conv1, b.bn1);
                let (conv2, bn2) = fold_norm_into_conv(b.conv2, b.bn2);
                ResidualBlock::Basic(BasicBlock {
                    conv1,
                    bn1,
                    conv2,
                    bn2,
                    downsample: b.downsample.map(Downsample::fold_norms),
                })
            }
            ResidualBlock::Bottleneck(b) => {
                let (conv1, bn1) = fold_norm_into_conv(b.conv1, b.bn1);
                let (conv2, bn2) = fold_norm_into_conv(b.conv2, b.bn2);
                let (conv3, bn3) = fold_norm_into_conv(b.conv3, b.bn3);
                ResidualBlock::Bottleneck(Bottleneck {
                    conv1,
                    bn1,
                    conv2,
                    bn2,
                    conv3,
                    bn3,
                    downsample: b.downsample.map(Downsample::fold_norms),
                })
            }
        }
    }
}

impl<B: KernelBackend> ResNet<B> {
    /// Every norm folded into its convolution (detection only, see [`crate::fold`]).
    pub fn fold_norms(self) -> Self {
        let (conv1, bn1) = fold_norm_into_conv(self.conv1, self.bn1);
        let fold_layer = |layer: Vec<ResidualBlock<B>>| {
            layer.into_iter().map(ResidualBlock::fold_norms).collect()
        };
        Self {
            conv1,
            bn1,
            layer1: fold_layer(self.layer1),
            layer2: fold_layer(self.layer2),
            layer3: fold_layer(self.layer3),
            layer4: fold_layer(self.layer4),
            ..self
        }
    }
}

impl<B: KernelBackend> Backbone<B> {
    /// Every norm folded into its convolution (detection only, see [`crate::fold`]).
    pub fn fold_norms(self) -> Self {
        match self {
            Backbone::ResNet(net) => Backbone::ResNet(net.fold_norms()),
            Backbone::MobileNet(net) => Backbone::MobileNet(net.fold_norms()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch_norm::BatchNorm2dConfig;
    use crate::conv::conv_no_bias;
    use burn::backend::Flex;
    use burn::module::RunningState;
    use burn::tensor::Distribution;

    type B = Flex;

    fn random(shape: [usize; 1], low: f64, high: f64) -> Tensor<B, 1> {
        Tensor::random(shape, Distribution::Uniform(low, high), &Default::default())
    }

    /// A norm with non-trivial statistics and affine parameters, frozen or trainable.
    fn norm(channels: usize, frozen: bool) -> Norm<B> {
        let device = Default::default();
        let (gamma, beta) = (random([channels], 0.5, 2.0), random([channels], -1.0, 1.0));
        let (mean, var) = (random([channels], -1.0, 1.0), random([channels], 0.2, 3.0));
        match Norm::new(channels, frozen, &device) {
            Norm::Frozen(mut bn) => {
                bn.weight = Param::from_tensor(gamma).set_require_grad(false);
                bn.bias = Param::from_tensor(beta).set_require_grad(false);
                bn.running_mean = Param::from_tensor(mean).set_require_grad(false);
                bn.running_var = Param::from_tensor(var).set_require_grad(false);
                Norm::Frozen(bn)
            }
            Norm::Batch(_) => {
                let mut bn = BatchNorm2dConfig::new(channels).init(&device);
                bn.weight = Param::from_tensor(gamma);
                bn.bias = Param::from_tensor(beta);
                bn.running_mean = RunningState::new(mean);
                bn.running_var = RunningState::new(var);
                Norm::Batch(bn)
            }
            Norm::Folded(_) => unreachable!("Norm::new never folds"),
        }
    }

    fn max_relative_difference(a: Tensor<B, 4>, b: Tensor<B, 4>) -> f32 {
        let scale = b.clone().abs().max().into_scalar();
        (a - b).abs().max().into_scalar() / scale
    }

    /// Folded and unfolded agree to 1e-5 of the output's magnitude: frozen and eval-mode
    /// trainable norms; plain, strided, depthwise and biased convolutions; odd sizes.
    #[test]
    fn a_folded_convolution_equals_convolution_then_norm() {
        let device = Default::default();
        let cases = [
            // (in, out, kernel, stride, groups, bias, frozen)
            (3, 8, 3, 2, 1, false, true),
            (8, 8, 3, 1, 8, false, true),
            (16, 16, 3, 2, 16, false, false),
            (8, 12, 1, 1, 1, false, false),
            (6, 4, 7, 2, 1, true, true),
        ];
        for (i, o, k, s, groups, bias, frozen) in cases {
            let mut conv = conv_no_bias::<B>(i, o, k, s, groups, &device);
            if bias {
                conv.bias = Some(Param::from_tensor(random([o], -1.0, 1.0)));
            }
            let norm = norm(o, frozen);
            let x = Tensor::<B, 4>::random([2, i, 13, 10], Distribution::Normal(0.0, 1.0), &device);
            let expected = norm.forward(conv.forward(x.clone()));
            let (conv, norm) = fold_norm_into_conv(conv, norm);
            assert!(matches!(norm, Norm::Folded(_)));
            let got = norm.forward(conv.forward(x));
            let d = max_relative_difference(got, expected);
            assert!(d < 1e-5, "case {i}→{o} k{k} s{s} g{groups}: {d:e}");
        }
    }

    #[test]
    fn folding_twice_changes_nothing() {
        let device = Default::default();
        let conv = conv_no_bias::<B>(4, 4, 3, 1, 1, &device);
        let (conv, norm) = fold_norm_into_conv(conv, norm(4, true));
        let weight = conv.weight.val().into_data();
        let (again, norm) = fold_norm_into_conv(conv, norm);
        assert!(matches!(norm, Norm::Folded(_)));
        again.weight.val().into_data().assert_eq(&weight, true);
    }

    /// Whole backbones with the parity formula's weights (non-trivial statistics in every
    /// norm): every level of the folded network equals the unfolded one to 1e-5.
    #[test]
    fn folded_backbones_give_the_same_features() {
        use crate::weights::{formula_state_dict, formula_values};
        use crate::{BackboneConfig, MobileNetV1Config, ResNetConfig, ResNetDepth};
        let device = Default::default();
        for (config, frozen) in [
            (
                BackboneConfig::MobileNet(MobileNetV1Config::new().with_frozen_bn(true)),
                true,
            ),
            (
                BackboneConfig::ResNet(ResNetConfig::new(ResNetDepth::D18)),
                false,
            ),
            (
                BackboneConfig::ResNet(ResNetConfig::new(ResNetDepth::D50).with_frozen_bn(true)),
                true,
            ),
        ] {
            let net: Backbone<B> = config.init(&device);
            let dict = formula_state_dict::<B, _>(&net, net.torch_layout());
            let net = net.load_state_dict(&dict).expect("formula weights fit");
            let x = Tensor::<B, 4>::from_data(
                burn::tensor::TensorData::new(
                    formula_values("input", &[1, 3, 45, 62]),
                    [1, 3, 45, 62],
                ),
                &device,
            );
            let expected = net.forward(x.clone()).into_tensors();
            let folded = net.fold_norms();
            let got = folded.forward(x).into_tensors();
            for (level, (g, e)) in got.into_iter().zip(expected).enumerate() {
                let d = max_relative_difference(g, e);
                assert!(
                    d < 1e-5,
                    "{config:?} (frozen {frozen}) level {level}: {d:e}"
                );
            }
        }
    }
}
