//! RetinaNet's feature pyramid network: lateral 1×1 convolutions, a top-down path with nearest
//! upsampling to the exact size of the finer level, 3×3 smoothing, and extra coarse levels
//! (P6, P7) made by stride-2 3×3 convolutions.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use visage_backbone::{FeatureLevel, FeatureLevels};
use visage_kernels::{conv2d_layer, KernelBackend};

use crate::upsample_nearest_to;
use crate::NeckError;

/// What the first extra level (P6) is computed from.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum ExtraSource {
    /// The coarsest input level (C5), as in the RetinaNet paper and FAN.
    C5,
    /// The coarsest pyramid output (P5), as torchvision when in and out channels agree.
    P5,
    /// The coarsest input's lateral (the 1×1 projection of C5, before smoothing), as SRN.
    Lateral,
}

/// Configuration of an [`Fpn`].
#[derive(Config, Debug)]
pub struct FpnConfig {
    /// Channels of the input levels, finest first (e.g. C3, C4, C5: `[512, 1024, 2048]`).
    pub in_channels: Vec<usize>,
    /// Channels of every output level (256 in RetinaNet).
    pub out_channels: usize,
    /// Number of extra coarse levels after the last input level (2 for RetinaNet's P6, P7).
    #[config(default = 2)]
    pub extra_levels: usize,
    /// Input of the first extra level.
    #[config(default = "ExtraSource::C5")]
    pub extra_source: ExtraSource,
}

impl FpnConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), NeckError> {
        if self.in_channels.is_empty() {
            return Err(NeckError::NoInputLevels);
        }
        if let Some(i) = self.in_channels.iter().position(|&c| c == 0) {
            return Err(NeckError::ZeroChannels(format!("in_channels[{i}]")));
        }
        if self.out_channels == 0 {
            return Err(NeckError::ZeroChannels("out_channels".into()));
        }
        Ok(())
    }

    /// Number of output levels: input levels plus extra levels.
    pub fn num_outputs(&self) -> usize {
        self.in_channels.len() + self.extra_levels
    }

    /// Output strides given the input strides (finest first): the input strides, then each
    /// extra level doubles the previous stride.
    pub fn out_strides(&self, in_strides: &[usize]) -> Vec<usize> {
        let mut strides = in_strides.to_vec();
        let mut s = in_strides.last().copied().unwrap_or(1);
        for _ in 0..self.extra_levels {
            s *= 2;
            strides.push(s);
        }
        strides
    }

    /// Builds the FPN. Convolutions are initialised as torchvision's FPN (Kaiming uniform with
    /// `a = 1`, bias 0).
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails.
    pub fn init<B: KernelBackend>(&self, device: &B::Device) -> Fpn<B> {
        if let Err(e) = self.validate() {
            panic!("invalid FpnConfig: {e}");
        }
        let out = self.out_channels;
        let lateral = self
            .in_channels
            .iter()
            .map(|&c| fpn_conv(c, out, 1, 1, device))
            .collect();
        let output = self
            .in_channels
            .iter()
            .map(|_| fpn_conv(out, out, 3, 1, device))
            .collect();
        let first_extra_in = match self.extra_source {
            ExtraSource::C5 => *self.in_channels.last().expect("validated non-empty"),
            ExtraSource::P5 | ExtraSource::Lateral => out,
        };
        let extra = (0..self.extra_levels)
            .map(|i| {
                let c_in = if i == 0 { first_extra_in } else { out };
                fpn_conv(c_in, out, 3, 2, device)
            })
            .collect();
        Fpn {
            lateral,
            output,
            extra,
            in_channels: self.in_channels.clone(),
            out_channels: out,
            extra_source: self.extra_source,
        }
    }
}

/// A `k×k` convolution with bias, padding `k / 2`, Kaiming uniform (`a = 1`) weights, zero bias.
pub(crate) fn fpn_conv<B: KernelBackend>(
    c_in: usize,
    c_out: usize,
    kernel: usize,
    stride: usize,
    device: &B::Device,
) -> Conv2d<B> {
    let pad = kernel / 2;
    let mut conv = Conv2dConfig::new([c_in, c_out], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_initializer(Initializer::KaimingUniform {
            gain: 1.0,
            fan_out_only: false,
        })
        .init(device);
    conv.bias = Some(Initializer::Zeros.init([c_out], device));
    conv
}

/// RetinaNet's feature pyramid network.
#[derive(Module, Debug)]
pub struct Fpn<B: Backend> {
    /// 1×1 lateral convolutions, one per input level, finest first.
    pub lateral: Vec<Conv2d<B>>,
    /// 3×3 smoothing convolutions, one per input level, finest first.
    pub output: Vec<Conv2d<B>>,
    /// 3×3 stride-2 convolutions making the extra levels (P6, P7, ...).
    pub extra: Vec<Conv2d<B>>,
    /// Channels expected on each input level.
    pub in_channels: Vec<usize>,
    /// Channels of every output level.
    pub out_channels: usize,
    /// Input of the first extra level.
    pub extra_source: ExtraSource,
}

impl<B: KernelBackend> Fpn<B> {
    /// Builds the pyramid.
    ///
    /// # Shapes
    /// - `features`: exactly the configured input levels, finest first; level `i` is
    ///   `[batch, in_channels[i], h_i, w_i]` with stride `s_i`.
    /// - output: one level per input level, `[batch, out_channels, h_i, w_i]` with stride `s_i`,
    ///   then `extra_levels` levels, each `[batch, out_channels, ceil(h / 2), ceil(w / 2)]` of
    ///   the previous level's `h, w`, with twice its stride.
    ///
    /// # Panics
    /// If the number of levels or their channels differ from the configuration.
    pub fn forward(&self, features: FeatureLevels<B>) -> FeatureLevels<B> {
        assert_eq!(
            features.channels(),
            self.in_channels,
            "FPN configured for input channels {:?}, got {:?}",
            self.in_channels,
            features.channels()
        );
        let strides = features.strides();
        let inputs = features.into_tensors();
        let n = inputs.len();
        let coarsest_input = inputs[n - 1].clone();

        let laterals: Vec<Tensor<B, 4>> = self
            .lateral
            .iter()
            .zip(inputs)
            .map(|(conv, x)| conv2d_layer(conv, x))
            .collect();
        let mut outputs: Vec<Tensor<B, 4>> = Vec::with_capacity(n);
        let coarsest_lateral = laterals.last().cloned();
        let mut top_down: Option<Tensor<B, 4>> = None;
        for (lateral, conv) in laterals.into_iter().zip(&self.output).rev() {
            let merged = match top_down {
                None => lateral,
                Some(coarser) => {
                    let [_, _, h, w] = lateral.dims();
                    lateral + upsample_nearest_to(coarser, [h, w])
                }
            };
            outputs.push(conv2d_layer(conv, merged.clone()));
            top_down = Some(merged);
        }
        outputs.reverse();

        let mut levels: Vec<FeatureLevel<B>> = outputs
            .into_iter()
            .zip(strides.iter().copied())
            .map(|(x, s)| FeatureLevel::new(s, x))
            .collect();
        let mut stride = strides[n - 1];
        let mut previous = match self.extra_source {
            ExtraSource::C5 => coarsest_input,
            ExtraSource::P5 => levels[n - 1].features.clone(),
            ExtraSource::Lateral => coarsest_lateral.expect("the FPN has an input level"),
        };
        for (i, conv) in self.extra.iter().enumerate() {
            let x = if i == 0 { previous } else { relu(previous) };
            let p = conv2d_layer(conv, x);
            stride *= 2;
            levels.push(FeatureLevel::new(stride, p.clone()));
            previous = p;
        }
        FeatureLevels::new(levels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::module::Param;
    use burn::tensor::{Distribution, TensorData, Tolerance};

    type B = Flex;

    fn inputs() -> FeatureLevels<B> {
        // C3..C5 of a 65×47 image through a ResNet: 9×6, 5×3, 3×2.
        let device = &Default::default();
        let level = |s, c, h, w| {
            FeatureLevel::new(
                s,
                Tensor::random([2, c, h, w], Distribution::Normal(0.0, 1.0), device),
            )
        };
        FeatureLevels::new(vec![
            level(8, 4, 9, 6),
            level(16, 6, 5, 3),
            level(32, 8, 3, 2),
        ])
    }

    #[test]
    fn shapes_and_strides_for_odd_sizes() {
        let device = Default::default();
        for source in [ExtraSource::C5, ExtraSource::P5, ExtraSource::Lateral] {
            let config = FpnConfig::new(vec![4, 6, 8], 5).with_extra_source(source);
            let fpn = config.init::<B>(&device);
            let out = fpn.forward(inputs());
            assert_eq!(out.strides(), vec![8, 16, 32, 64, 128]);
            assert_eq!(out.strides(), config.out_strides(&[8, 16, 32]));
            assert_eq!(out.channels(), vec![5; 5]);
            assert_eq!(out.sizes(), vec![[9, 6], [5, 3], [3, 2], [2, 1], [1, 1]]);
            assert_eq!(out.levels[0].features.dims()[0], 2);
        }
    }

    #[test]
    fn a_lateral_source_feeds_p6_from_the_projected_c5() {
        let device = Default::default();
        let fpn = FpnConfig::new(vec![4, 6, 8], 5)
            .with_extra_source(ExtraSource::Lateral)
            .init::<B>(&device);
        let inputs = inputs();
        let c5 = inputs.levels[2].features.clone();
        let out = fpn.forward(inputs);
        let expected = fpn.extra[0].forward(fpn.lateral[2].forward(c5));
        out.levels[3]
            .features
            .clone()
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::default());
    }

    #[test]
    fn no_extra_levels() {
        let device = Default::default();
        let fpn = FpnConfig::new(vec![4, 6, 8], 3)
            .with_extra_levels(0)
            .init::<B>(&device);
        assert!(fpn.extra.is_empty());
        let out = fpn.forward(inputs());
        assert_eq!(out.strides(), vec![8, 16, 32]);
    }

    /// With identity laterals and identity (centre-tap) smoothing, P_i = C_i + up(P_{i+1}).
    #[test]
    fn top_down_path_hand_checked() {
        let device = Default::default();
        let mut fpn = FpnConfig::new(vec![1, 1], 1)
            .with_extra_levels(0)
            .init::<B>(&device);
        for conv in fpn.lateral.iter_mut() {
            conv.weight = Param::from_tensor(Tensor::ones([1, 1, 1, 1], &device));
        }
        let centre = Tensor::<B, 4>::from_floats(
            [[[[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]]],
            &device,
        );
        for conv in fpn.output.iter_mut() {
            conv.weight = Param::from_tensor(centre.clone());
        }
        let c3 = Tensor::<B, 4>::from_floats([[[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]]], &device);
        let c4 = Tensor::<B, 4>::from_floats([[[[10.0], [20.0]]]], &device);
        let out = fpn.forward(FeatureLevels::new(vec![
            FeatureLevel::new(8, c3),
            FeatureLevel::new(16, c4),
        ]));
        // Rows of the 3×2 level take coarse rows floor(o · 2 / 3) = 0, 0, 1.
        out.levels[0]
            .features
            .clone()
            .into_data()
            .assert_approx_eq::<f32>(
                &TensorData::from([[[[11.0f32, 12.0], [13.0, 14.0], [25.0, 26.0]]]]),
                Tolerance::default(),
            );
        out.levels[1]
            .features
            .clone()
            .into_data()
            .assert_approx_eq::<f32>(
                &TensorData::from([[[[10.0f32], [20.0]]]]),
                Tolerance::default(),
            );
    }

    #[test]
    fn initial_biases_are_zero() {
        let device = Default::default();
        let fpn = FpnConfig::new(vec![2, 3], 4).init::<B>(&device);
        for conv in fpn.lateral.iter().chain(&fpn.output).chain(&fpn.extra) {
            let b = conv.bias.as_ref().unwrap().val();
            assert_eq!(b.abs().sum().into_scalar(), 0.0);
        }
        assert_eq!(fpn.extra[0].weight.dims(), [4, 3, 3, 3]);
        assert_eq!(fpn.extra[1].weight.dims(), [4, 4, 3, 3]);
    }

    #[test]
    fn validate_rejects_bad_configs() {
        assert_eq!(
            FpnConfig::new(vec![], 4).validate(),
            Err(NeckError::NoInputLevels)
        );
        assert!(FpnConfig::new(vec![2, 0], 4).validate().is_err());
        assert!(FpnConfig::new(vec![2], 0).validate().is_err());
    }

    #[test]
    #[should_panic(expected = "FPN configured for input channels")]
    fn wrong_input_levels_panic() {
        let device = Default::default();
        let fpn = FpnConfig::new(vec![4, 6], 3).init::<B>(&device);
        let _ = fpn.forward(inputs());
    }
}
