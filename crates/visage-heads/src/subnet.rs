//! A head subnet as in RetinaNet: `num_convs × (3×3 conv + optional group norm + ReLU)` then
//! a 3×3 predictor convolution. Used for the class and box subnets (and reusable for FAN's
//! attention subnet, whose predictor has one channel).

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Initializer, PaddingConfig2d};

use crate::group_norm::group_norm;
use burn::prelude::*;
use burn::tensor::activation::relu;
use visage_kernels::{conv2d_layer, KernelBackend};

use crate::HeadError;

/// Normalisation inside the subnet's hidden convolutions.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum HeadNorm {
    /// No normalisation (the RetinaNet paper).
    None,
    /// Group normalisation with the given number of groups (e.g. 32).
    GroupNorm {
        /// Number of groups; must divide the subnet's channels.
        groups: usize,
    },
}

/// Configuration of a [`Subnet`].
#[derive(Config, Debug)]
pub struct SubnetConfig {
    /// Channels of the input feature maps.
    pub in_channels: usize,
    /// Channels of the hidden convolutions (256 in RetinaNet).
    pub channels: usize,
    /// Number of hidden `3×3 conv + norm + ReLU` blocks (4 in RetinaNet; 0 allowed).
    pub num_convs: usize,
    /// Channels of the predictor's output (e.g. `A · K` or `A · 4`).
    pub out_channels: usize,
    /// Normalisation of the hidden blocks.
    #[config(default = "HeadNorm::None")]
    pub norm: HeadNorm,
    /// Initial bias of the predictor (0, or `-ln((1 - π) / π)` for a class predictor).
    #[config(default = 0.0)]
    pub predictor_bias: f64,
    /// Standard deviation of the normal initialisation of every convolution weight.
    #[config(default = 0.01)]
    pub init_std: f64,
}

impl SubnetConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), HeadError> {
        for (value, name) in [
            (self.in_channels, "in_channels"),
            (self.channels, "channels"),
            (self.out_channels, "out_channels"),
        ] {
            if value == 0 {
                return Err(HeadError::Zero(name));
            }
        }
        validate_norm(self.norm, self.channels)
    }

    /// Builds the subnet: weights `N(0, init_std)`, hidden biases 0, predictor bias
    /// `predictor_bias`, group norms weight 1 and bias 0.
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails.
    pub fn init<B: KernelBackend>(&self, device: &B::Device) -> Subnet<B> {
        if let Err(e) = self.validate() {
            panic!("invalid SubnetConfig: {e}");
        }
        let (convs, c_last) = conv_stack(
            self.in_channels,
            self.channels,
            self.num_convs,
            self.norm,
            self.init_std,
            device,
        );
        Subnet {
            convs,
            predictor: conv3x3(
                c_last,
                self.out_channels,
                self.init_std,
                self.predictor_bias,
                device,
            ),
        }
    }
}

/// Checks that a group norm, if any, has groups dividing `channels`.
pub(crate) fn validate_norm(norm: HeadNorm, channels: usize) -> Result<(), HeadError> {
    if let HeadNorm::GroupNorm { groups } = norm {
        if groups == 0 {
            return Err(HeadError::Zero("norm.groups"));
        }
        if !channels.is_multiple_of(groups) {
            return Err(HeadError::GroupsDoNotDivide { groups, channels });
        }
    }
    Ok(())
}

/// `num_convs` hidden blocks (`in_channels` → `channels`, then `channels` → `channels`),
/// weights `N(0, init_std)`, biases 0; returns them with the channels of their output
/// (`in_channels` when there are none).
pub(crate) fn conv_stack<B: KernelBackend>(
    in_channels: usize,
    channels: usize,
    num_convs: usize,
    norm: HeadNorm,
    init_std: f64,
    device: &B::Device,
) -> (Vec<ConvBlock<B>>, usize) {
    let blocks = (0..num_convs)
        .map(|i| {
            let c_in = if i == 0 { in_channels } else { channels };
            ConvBlock {
                conv: conv3x3(c_in, channels, init_std, 0.0, device),
                norm: match norm {
                    HeadNorm::None => None,
                    HeadNorm::GroupNorm { groups } => {
                        Some(GroupNormConfig::new(groups, channels).init(device))
                    }
                },
            }
        })
        .collect();
    let c_last = if num_convs == 0 {
        in_channels
    } else {
        channels
    };
    (blocks, c_last)
}

/// A 3×3, stride 1, padding 1 convolution with `N(0, std)` weights and a constant bias.
pub(crate) fn conv3x3<B: KernelBackend>(
    c_in: usize,
    c_out: usize,
    std: f64,
    bias: f64,
    device: &B::Device,
) -> Conv2d<B> {
    let mut conv = Conv2dConfig::new([c_in, c_out], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device);
    conv.bias = Some(Initializer::Constant { value: bias }.init([c_out], device));
    conv
}

/// One hidden block: 3×3 convolution, optional group norm, ReLU.
#[derive(Module, Debug)]
pub struct ConvBlock<B: Backend> {
    /// 3×3 convolution, padding 1.
    pub conv: Conv2d<B>,
    /// Optional group norm.
    pub norm: Option<GroupNorm<B>>,
}

impl<B: KernelBackend> ConvBlock<B> {
    /// # Shapes
    /// - `input`: `[batch, c_in, h, w]`
    /// - output: `[batch, channels, h, w]`
    pub fn forward(&self, input: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = conv2d_layer(&self.conv, input);
        let x = match &self.norm {
            Some(norm) => group_norm(norm, x),
            None => x,
        };
        relu(x)
    }
}

/// Hidden blocks then a predictor; applied with the same weights to every level.
#[derive(Module, Debug)]
pub struct Subnet<B: Backend> {
    /// The hidden `conv + norm + ReLU` blocks.
    pub convs: Vec<ConvBlock<B>>,
    /// The final 3×3 convolution (no activation).
    pub predictor: Conv2d<B>,
}

impl<B: KernelBackend> Subnet<B> {
    /// Applies the subnet to one level.
    ///
    /// # Shapes
    /// - `input`: `[batch, in_channels, h, w]`
    /// - output: `[batch, out_channels, h, w]` (raw, before any sigmoid)
    pub fn forward(&self, input: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = self.convs.iter().fold(input, |x, block| block.forward(x));
        conv2d_layer(&self.predictor, x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    type B = Flex;

    #[test]
    fn shapes_and_blocks() {
        let device = Default::default();
        let net = SubnetConfig::new(3, 8, 2, 5)
            .with_norm(HeadNorm::GroupNorm { groups: 4 })
            .init::<B>(&device);
        assert_eq!(net.convs.len(), 2);
        assert!(net.convs.iter().all(|b| b.norm.is_some()));
        let y = net.forward(Tensor::ones([2, 3, 7, 5], &device));
        assert_eq!(y.dims(), [2, 5, 7, 5]);
    }

    #[test]
    fn zero_hidden_convs_predict_from_input() {
        let device = Default::default();
        let net = SubnetConfig::new(3, 8, 0, 1)
            .with_predictor_bias(-2.0)
            .init::<B>(&device);
        assert_eq!(net.predictor.weight.dims(), [1, 3, 3, 3]);
        let y = net.forward(Tensor::zeros([1, 3, 4, 4], &device));
        // Zero input: the output is the bias everywhere.
        assert_eq!(y.clone().min().into_scalar(), -2.0);
        assert_eq!(y.max().into_scalar(), -2.0);
    }

    #[test]
    fn weights_are_small_normal() {
        let device = Default::default();
        let net = SubnetConfig::new(16, 16, 1, 16).init::<B>(&device);
        let w = net.convs[0].conv.weight.val();
        let std = w.clone().powf_scalar(2.0).mean().sqrt().into_scalar();
        assert!((std - 0.01).abs() < 0.002, "std {std}");
        let b = net.convs[0].conv.bias.as_ref().unwrap().val();
        assert_eq!(b.abs().sum().into_scalar(), 0.0);
    }

    #[test]
    fn validate_rejects_bad_groups() {
        let c = SubnetConfig::new(3, 10, 1, 2).with_norm(HeadNorm::GroupNorm { groups: 4 });
        assert_eq!(
            c.validate(),
            Err(HeadError::GroupsDoNotDivide {
                groups: 4,
                channels: 10
            })
        );
        assert_eq!(
            SubnetConfig::new(0, 10, 1, 2).validate(),
            Err(HeadError::Zero("in_channels"))
        );
    }
}
