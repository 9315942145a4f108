//! DF²S²'s feature fusion pyramid (FFP): a top-down path of F-blocks
//! `φ_i ← φ_i ⊙ Ψ(φ_{i+1}) + φ_i`, where `Ψ` is one stride-2 transposed convolution that maps
//! the coarser level to the finer one's channels and resolution in a single step, and `⊙` the
//! element-wise product (a spatial and channel attention from the coarser level). FFP2..FFP5
//! keep the resolutions and channels of C2..C5; the extra levels (FFP6, FFP7) are the coarsest
//! fused level max-pooled once and twice. Every output level is then projected to a common
//! channel count by a 1×1 convolution so that one head can be shared across levels.
//!
//! Choices where the paper is silent (recorded in the config docs):
//! - `Ψ` is a 4×4 transposed convolution (stride 2, padding 1, output exactly `2h × 2w`) or a
//!   3×3 one (padding 1, output padding 1); its output is cropped to the finer level's size
//!   when that size is odd (`h_i = 2·h_{i+1} − 1`, the ceil semantics of stride-2 layers).
//! - The extra levels use a 3×3 max-pool with stride 2 and padding 1, so each is
//!   `ceil(h / 2) × ceil(w / 2)` like the stride-2 convolutions of the other pyramids.
//! - New layers (`Ψ`, the projections) are Xavier-uniform initialised with zero bias, as the
//!   paper says of its new layers.

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::prelude::*;
use visage_backbone::{FeatureLevel, FeatureLevels};
use visage_kernels::{conv2d_layer, max_pool2d_layer, KernelBackend};

use crate::NeckError;

/// Configuration of an [`Ffp`].
#[derive(Config, Debug)]
pub struct FfpConfig {
    /// Channels of the input levels, finest first (ResNet-50's C2..C5: `[256, 512, 1024, 2048]`).
    pub in_channels: Vec<usize>,
    /// Channels of every projected output level (256 in the paper's head).
    pub out_channels: usize,
    /// Extra coarse levels made by max-pooling the coarsest fused level (2: FFP6, FFP7).
    #[config(default = 2)]
    pub extra_levels: usize,
    /// Kernel of the transposed convolution `Ψ`: 3 or 4.
    #[config(default = 4)]
    pub upsample_kernel: usize,
}

impl FfpConfig {
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
        if !matches!(self.upsample_kernel, 3 | 4) {
            return Err(NeckError::Invalid {
                field: "upsample_kernel",
                message: format!("must be 3 or 4, got {}", self.upsample_kernel),
            });
        }
        Ok(())
    }

    /// Number of output levels: input levels plus extra levels.
    pub fn num_outputs(&self) -> usize {
        self.in_channels.len() + self.extra_levels
    }

    /// Builds the pyramid.
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails.
    pub fn init<B: KernelBackend>(&self, device: &B::Device) -> Ffp<B> {
        if let Err(e) = self.validate() {
            panic!("invalid FfpConfig: {e}");
        }
        let (kernel, padding_out) = match self.upsample_kernel {
            3 => (3, 1),
            _ => (4, 0),
        };
        let upsample = self
            .in_channels
            .windows(2)
            .map(|pair| {
                let mut conv = ConvTranspose2dConfig::new([pair[1], pair[0]], [kernel, kernel])
                    .with_stride([2, 2])
                    .with_padding([1, 1])
                    .with_padding_out([padding_out, padding_out])
                    .with_bias(false)
                    .with_initializer(xavier_uniform(
                        pair[0] * kernel * kernel,
                        pair[1] * kernel * kernel,
                    ))
                    .init(device);
                conv.bias = Some(Initializer::Zeros.init([pair[0]], device));
                conv
            })
            .collect();
        let coarsest = *self.in_channels.last().expect("validated non-empty");
        let projection = self
            .in_channels
            .iter()
            .copied()
            .chain(std::iter::repeat_n(coarsest, self.extra_levels))
            .map(|c| {
                let mut conv = Conv2dConfig::new([c, self.out_channels], [1, 1])
                    .with_bias(false)
                    .with_initializer(xavier_uniform(c, self.out_channels))
                    .init(device);
                conv.bias = Some(Initializer::Zeros.init([self.out_channels], device));
                conv
            })
            .collect();
        Ffp {
            upsample,
            projection,
            pool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            in_channels: self.in_channels.clone(),
            extra_levels: self.extra_levels,
        }
    }
}

/// Xavier (Glorot) uniform as PyTorch's `xavier_uniform_`: `U(−a, a)` with
/// `a = √(6 / (fan_in + fan_out))`, fans counting the kernel's cells.
fn xavier_uniform(fan_in: usize, fan_out: usize) -> Initializer {
    let a = (6.0 / (fan_in + fan_out) as f64).sqrt();
    Initializer::Uniform { min: -a, max: a }
}

/// DF²S²'s feature fusion pyramid with per-level 1×1 projections.
#[derive(Module, Debug)]
pub struct Ffp<B: Backend> {
    /// `Ψ` of each F-block, finest first: `upsample[i]` maps level `i + 1` to level `i`.
    pub upsample: Vec<ConvTranspose2d<B>>,
    /// 1×1 projections to the common channel count, one per output level, finest first.
    pub projection: Vec<Conv2d<B>>,
    /// The stride-2 max-pool making the extra levels.
    pub pool: MaxPool2d,
    /// Channels expected on each input level.
    pub in_channels: Vec<usize>,
    /// Number of extra levels.
    pub extra_levels: usize,
}

impl<B: KernelBackend> Ffp<B> {
    /// The fused levels before projection: FFP_i for the input levels, then the extra levels.
    ///
    /// # Shapes
    /// - `features`: exactly the configured input levels, finest first, level `i` being
    ///   `[batch, in_channels[i], h_i, w_i]` with `h_i = ceil(h_{i-1} / 2)`.
    /// - output: the input shapes, then `extra_levels` levels of the coarsest input's channels,
    ///   each `ceil(h / 2) × ceil(w / 2)` of the previous one, strides doubling.
    ///
    /// # Panics
    /// If the levels or their channels differ from the configuration.
    pub fn fuse(&self, features: FeatureLevels<B>) -> FeatureLevels<B> {
        assert_eq!(
            features.channels(),
            self.in_channels,
            "FFP configured for input channels {:?}, got {:?}",
            self.in_channels,
            features.channels()
        );
        let strides = features.strides();
        let mut inputs = features.into_tensors();
        // Top-down: each F-block fuses the already fused coarser level into the finer one.
        for i in (0..inputs.len() - 1).rev() {
            let [_, _, h, w] = inputs[i].dims();
            let up = self.upsample[i].forward(inputs[i + 1].clone());
            let [b, c, _, _] = up.dims();
            let up = up.slice([0..b, 0..c, 0..h, 0..w]);
            let phi = inputs[i].clone();
            inputs[i] = phi.clone() * up + phi;
        }
        let mut stride = *strides.last().expect("at least one level");
        let mut previous = inputs.last().expect("at least one level").clone();
        let mut levels: Vec<FeatureLevel<B>> = inputs
            .into_iter()
            .zip(strides)
            .map(|(x, s)| FeatureLevel::new(s, x))
            .collect();
        for _ in 0..self.extra_levels {
            previous = max_pool2d_layer(&self.pool, previous);
            stride *= 2;
            levels.push(FeatureLevel::new(stride, previous.clone()));
        }
        FeatureLevels::new(levels)
    }

    /// The pyramid the head consumes: [`fuse`](Self::fuse), then each level projected to
    /// `out_channels` (`[batch, out_channels, h_l, w_l]`).
    pub fn forward(&self, features: FeatureLevels<B>) -> FeatureLevels<B> {
        let fused = self.fuse(features);
        FeatureLevels::new(
            fused
                .levels
                .into_iter()
                .zip(&self.projection)
                .map(|(level, conv)| {
                    FeatureLevel::new(level.stride, conv2d_layer(conv, level.features))
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::module::Param;
    use burn::tensor::{Distribution, TensorData, Tolerance};

    type B = Flex;

    /// C2..C5 of a 65×47 image through a ResNet: 17×12, 9×6, 5×3, 3×2.
    fn inputs<B: KernelBackend>(device: &B::Device) -> FeatureLevels<B> {
        let level = |s, c, h, w| {
            FeatureLevel::new(
                s,
                Tensor::random([2, c, h, w], Distribution::Normal(0.0, 1.0), device),
            )
        };
        FeatureLevels::new(vec![
            level(4, 3, 17, 12),
            level(8, 4, 9, 6),
            level(16, 6, 5, 3),
            level(32, 8, 3, 2),
        ])
    }

    #[test]
    fn output_levels_keep_the_inputs_sizes_and_add_pooled_levels() {
        let device = Default::default();
        for kernel in [3, 4] {
            let ffp = FfpConfig::new(vec![3, 4, 6, 8], 5)
                .with_upsample_kernel(kernel)
                .init::<B>(&device);
            let fused = ffp.fuse(inputs(&device));
            assert_eq!(fused.strides(), vec![4, 8, 16, 32, 64, 128]);
            assert_eq!(fused.channels(), vec![3, 4, 6, 8, 8, 8]);
            let sizes: Vec<[usize; 2]> = fused.levels.iter().map(|l| l.size()).collect();
            assert_eq!(
                sizes,
                vec![[17, 12], [9, 6], [5, 3], [3, 2], [2, 1], [1, 1]]
            );
            let out = ffp.forward(inputs(&device));
            assert_eq!(out.channels(), vec![5; 6]);
        }
    }

    #[test]
    fn an_f_block_is_phi_times_upsampled_coarser_plus_phi() {
        // Two levels, one channel each; Ψ = a 4×4 transposed conv with known weights.
        let device = Default::default();
        let mut ffp = FfpConfig::new(vec![1, 1], 1)
            .with_extra_levels(0)
            .init::<B>(&device);
        // A kernel of ones: with stride 2 and padding 1 every output cell of a 2×2 input sums
        // the input cells whose 4×4 footprint covers it.
        ffp.upsample[0].weight = Param::from_tensor(Tensor::ones([1, 1, 4, 4], &device));
        ffp.upsample[0].bias = Some(Param::from_tensor(Tensor::from_floats([0.5], &device)));
        let fine = Tensor::<B, 4>::from_data(
            TensorData::new((0..16).map(|v| v as f32 * 0.1).collect(), [1, 1, 4, 4]),
            &device,
        );
        let coarse = Tensor::<B, 4>::from_data(
            TensorData::new(vec![1.0, 2.0, 3.0, 4.0], [1, 1, 2, 2]),
            &device,
        );
        let fused = ffp.fuse(FeatureLevels::new(vec![
            FeatureLevel::new(8, fine.clone()),
            FeatureLevel::new(16, coarse.clone()),
        ]));
        let expected_up = ffp.upsample[0].forward(coarse.clone());
        assert_eq!(expected_up.dims(), [1, 1, 4, 4]);
        let expected = fine.clone() * expected_up.clone() + fine;
        fused.levels[0]
            .features
            .clone()
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::default());
        // Hand check of one cell: output (0, 0) gathers input (0, 0) only → 1 + bias 0.5.
        let up: Vec<f32> = expected_up.into_data().to_vec().unwrap();
        assert!((up[0] - 1.5).abs() < 1e-6, "{up:?}");
        // The coarsest level passes through unchanged.
        fused.levels[1]
            .features
            .clone()
            .into_data()
            .assert_approx_eq::<f32>(&coarse.into_data(), Tolerance::default());
    }

    #[test]
    fn gradients_reach_every_input_level_and_layer() {
        let device = Default::default();
        let ffp = FfpConfig::new(vec![3, 4, 6, 8], 5).init::<Autodiff<B>>(&device);
        let inputs = inputs::<Autodiff<B>>(&device);
        let leaves: Vec<Tensor<Autodiff<B>, 4>> = inputs
            .levels
            .iter()
            .map(|l| l.features.clone().require_grad())
            .collect();
        let levels = FeatureLevels::new(
            leaves
                .iter()
                .zip(inputs.strides())
                .map(|(x, s)| FeatureLevel::new(s, x.clone()))
                .collect(),
        );
        let out = ffp.forward(levels);
        let loss = out
            .into_tensors()
            .into_iter()
            .map(|t| t.powf_scalar(2.0).mean())
            .reduce(|a, b| a + b)
            .unwrap();
        let grads = loss.backward();
        for (i, leaf) in leaves.iter().enumerate() {
            let g = leaf.grad(&grads).expect("input gradient");
            assert!(
                g.abs().sum().into_scalar() > 0.0,
                "no gradient at level {i}"
            );
        }
        for (i, conv) in ffp.upsample.iter().enumerate() {
            let g = conv.weight.val().grad(&grads).expect("Ψ gradient");
            assert!(g.abs().sum().into_scalar() > 0.0, "no gradient for Ψ {i}");
        }
    }

    #[test]
    fn bad_configs_are_refused() {
        assert_eq!(
            FfpConfig::new(vec![], 4).validate(),
            Err(NeckError::NoInputLevels)
        );
        assert!(FfpConfig::new(vec![4, 8], 4)
            .with_upsample_kernel(5)
            .validate()
            .unwrap_err()
            .to_string()
            .contains("upsample_kernel"));
    }
}
