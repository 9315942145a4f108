//! ResNet-18/34/50/101/152 in torchvision's exact structure and parameter names.
//!
//! Parameter paths are torchvision's (`conv1.weight`, `bn1.running_mean`,
//! `layer3.5.conv2.weight`, ...) with one difference that the weight import
//! ([`crate::weights`]) maps: `downsample.0`/`downsample.1` are `downsample.conv`/`downsample.bn`.
//! Both norms (trainable and frozen) use torchvision's `weight`/`bias`; the enum variants
//! (`Batch`/`Frozen`, `Basic`/`Bottleneck`) are not part of a path. There is no `fc`: the
//! network ends at C5.

mod basic_block;
mod bottleneck;
mod config;
mod downsample;
mod torch_keys;

pub use basic_block::BasicBlock;
pub use bottleneck::Bottleneck;
pub use config::{ResNetConfig, ResNetDepth};
pub use downsample::Downsample;
pub use torch_keys::{path_to_torch_key, torch_key_to_path, TORCHVISION_RESNET};

use crate::conv::conv_norm_leaky_relu;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use visage_kernels::{max_pool2d_layer, KernelBackend};

use crate::conv::conv_no_bias;
use crate::{FeatureLevel, FeatureLevels, Norm};

/// One residual block: basic (ResNet-18/34) or bottleneck (ResNet-50/101/152).
///
/// The variants differ in size by under 1 KB and a network holds only one kind, so boxing
/// (which would add an indirection to every block) buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum ResidualBlock<B: Backend> {
    /// Two 3×3 convolutions.
    Basic(BasicBlock<B>),
    /// 1×1, 3×3, 1×1 convolutions, expansion 4.
    Bottleneck(Bottleneck<B>),
}

impl<B: KernelBackend> ResidualBlock<B> {
    /// # Shapes
    /// - `input`: `[batch, in_channels, h, w]`
    /// - output: `[batch, out_channels, ceil(h / stride), ceil(w / stride)]`
    pub fn forward(&self, input: Tensor<B, 4>) -> Tensor<B, 4> {
        match self {
            ResidualBlock::Basic(b) => b.forward(input),
            ResidualBlock::Bottleneck(b) => b.forward(input),
        }
    }
}

/// A ResNet backbone returning C2..C5.
#[derive(Module, Debug)]
pub struct ResNet<B: Backend> {
    /// Stem: 7×7 convolution, stride 2, padding 3, no bias, `3 → stem` channels.
    pub conv1: Conv2d<B>,
    /// Norm after the stem convolution.
    pub bn1: Norm<B>,
    /// 3×3 max pool, stride 2, padding 1.
    pub maxpool: MaxPool2d,
    /// conv2_x, output C2 (stride 4).
    pub layer1: Vec<ResidualBlock<B>>,
    /// conv3_x, output C3 (stride 8).
    pub layer2: Vec<ResidualBlock<B>>,
    /// conv4_x, output C4 (stride 16).
    pub layer3: Vec<ResidualBlock<B>>,
    /// conv5_x, output C5 (stride 32).
    pub layer4: Vec<ResidualBlock<B>>,
    /// Channels of C2..C5.
    pub channels: [usize; 4],
}

/// Strides of C2..C5 with respect to the input image.
pub const RESNET_STRIDES: [usize; 4] = [4, 8, 16, 32];

impl ResNetConfig {
    /// Builds the network. Convolutions are initialised as torchvision's (Kaiming normal,
    /// fan-out), norms as identity (weight 1, bias 0, mean 0, variance 1).
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails (a non-positive or non-finite width multiplier).
    pub fn init<B: KernelBackend>(&self, device: &B::Device) -> ResNet<B> {
        if let Err(e) = self.validate() {
            panic!("invalid ResNetConfig: {e}");
        }
        let stem = self.stem_channels();
        let planes = self.stage_planes();
        let blocks = self.depth.blocks_per_stage();
        let mut in_channels = stem;
        let mut stages: Vec<Vec<ResidualBlock<B>>> = Vec::with_capacity(4);
        for (stage, (&p, &n)) in planes.iter().zip(blocks.iter()).enumerate() {
            let first_stride = if stage == 0 { 1 } else { 2 };
            let frozen_stage = stage < self.frozen_stages;
            let frozen_bn = self.frozen_bn || frozen_stage;
            let layer = (0..n)
                .map(|i| {
                    let stride = if i == 0 { first_stride } else { 1 };
                    let block = if self.depth.is_bottleneck() {
                        ResidualBlock::Bottleneck(Bottleneck::new(
                            in_channels,
                            p,
                            stride,
                            frozen_bn,
                            device,
                        ))
                    } else {
                        ResidualBlock::Basic(BasicBlock::new(
                            in_channels,
                            p,
                            stride,
                            frozen_bn,
                            device,
                        ))
                    };
                    in_channels = p * self.depth.expansion();
                    if frozen_stage {
                        block.no_grad()
                    } else {
                        block
                    }
                })
                .collect();
            stages.push(layer);
        }
        let mut stages = stages.into_iter();
        let mut next = || stages.next().expect("four stages were built");
        let conv1 = conv_no_bias(3, stem, 7, 2, 1, device);
        ResNet {
            conv1: if self.freeze_stem {
                conv1.no_grad()
            } else {
                conv1
            },
            bn1: Norm::new(stem, self.frozen_bn || self.freeze_stem, device),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            layer1: next(),
            layer2: next(),
            layer3: next(),
            layer4: next(),
            channels: self.out_channels(),
        }
    }
}

impl<B: KernelBackend> ResNet<B> {
    /// Channels of C2..C5.
    pub fn out_channels(&self) -> [usize; 4] {
        self.channels
    }

    /// Strides of C2..C5: 4, 8, 16, 32.
    pub fn strides(&self) -> [usize; 4] {
        RESNET_STRIDES
    }

    /// Runs the backbone.
    ///
    /// # Shapes
    /// - `input`: `[batch, 3, h, w]` (any `h, w ≥ 1`)
    /// - output: four levels C2..C5, finest first; level `k` (stride `s = 4, 8, 16, 32`) is
    ///   `[batch, out_channels()[k], ceil(h / s), ceil(w / s)]` (each stride-2 step rounds up).
    pub fn forward(&self, input: Tensor<B, 4>) -> FeatureLevels<B> {
        let x = conv_norm_leaky_relu(&self.conv1, &self.bn1, input, 0.0);
        let mut x = max_pool2d_layer(&self.maxpool, x);
        let mut levels = Vec::with_capacity(4);
        for (layer, stride) in [&self.layer1, &self.layer2, &self.layer3, &self.layer4]
            .into_iter()
            .zip(RESNET_STRIDES)
        {
            for block in layer {
                x = block.forward(x);
            }
            levels.push(FeatureLevel::new(stride, x.clone()));
        }
        FeatureLevels::new(levels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::Distribution;

    type B = Flex;

    const DEPTHS: [ResNetDepth; 5] = [
        ResNetDepth::D18,
        ResNetDepth::D34,
        ResNetDepth::D50,
        ResNetDepth::D101,
        ResNetDepth::D152,
    ];

    fn check_shapes(depth: ResNetDepth, h: usize, w: usize, expected_sizes: [[usize; 2]; 4]) {
        let device = Default::default();
        let config = ResNetConfig::new(depth)
            .with_width_multiplier(0.125)
            .with_frozen_bn(true);
        let net = config.init::<B>(&device);
        let x = Tensor::random([1, 3, h, w], Distribution::Normal(0.0, 1.0), &device);
        let out = net.forward(x);
        assert_eq!(out.strides(), vec![4, 8, 16, 32], "{depth:?}");
        assert_eq!(out.channels(), net.out_channels().to_vec(), "{depth:?}");
        assert_eq!(out.sizes(), expected_sizes.to_vec(), "{depth:?} {h}x{w}");
        let e = depth.expansion();
        assert_eq!(net.out_channels(), [8 * e, 16 * e, 32 * e, 64 * e]);
    }

    #[test]
    fn shapes_every_depth_64x64() {
        for depth in DEPTHS {
            check_shapes(depth, 64, 64, [[16, 16], [8, 8], [4, 4], [2, 2]]);
        }
    }

    #[test]
    fn shapes_every_depth_odd_size_round_up() {
        // 65 → 33 → 17 → 9 → 5 → 3 and 47 → 24 → 12 → 6 → 3 → 2.
        for depth in DEPTHS {
            check_shapes(depth, 65, 47, [[17, 12], [9, 6], [5, 3], [3, 2]]);
        }
    }

    #[test]
    fn frozen_stem_and_stages_get_no_gradients_and_frozen_norms() {
        let device = Default::default();
        let net = ResNetConfig::new(ResNetDepth::D50)
            .with_width_multiplier(0.0625)
            .with_freeze_stem(true)
            .with_frozen_stages(2)
            .init::<Autodiff<B>>(&device);
        assert!(!net.conv1.weight.is_require_grad());
        assert!(matches!(net.bn1, Norm::Frozen(_)));
        let first_conv = |block: &ResidualBlock<Autodiff<B>>| match block {
            ResidualBlock::Bottleneck(b) => (
                b.conv1.weight.is_require_grad(),
                matches!(b.bn1, Norm::Frozen(_)),
            ),
            ResidualBlock::Basic(b) => (
                b.conv1.weight.is_require_grad(),
                matches!(b.bn1, Norm::Frozen(_)),
            ),
        };
        for block in net.layer1.iter().chain(&net.layer2) {
            assert_eq!(first_conv(block), (false, true));
        }
        for block in net.layer3.iter().chain(&net.layer4) {
            assert_eq!(first_conv(block), (true, false));
        }
        // Gradients reach only the trainable stages.
        let x = Tensor::<Autodiff<B>, 4>::ones([1, 3, 32, 32], &device);
        let grads = net
            .forward(x)
            .into_tensors()
            .pop()
            .unwrap()
            .sum()
            .backward();
        let ResidualBlock::Bottleneck(l3) = &net.layer3[0] else {
            unreachable!()
        };
        assert!(l3.conv1.weight.grad(&grads).is_some());
        assert!(net.conv1.weight.grad(&grads).is_none());
    }

    #[test]
    fn block_counts_and_kinds() {
        let device = Default::default();
        let net = ResNetConfig::new(ResNetDepth::D101)
            .with_width_multiplier(0.0625)
            .init::<B>(&device);
        let counts = [&net.layer1, &net.layer2, &net.layer3, &net.layer4].map(|l| l.len());
        assert_eq!(counts, [3, 4, 23, 3]);
        assert!(matches!(net.layer1[0], ResidualBlock::Bottleneck(_)));
        // Only the first block of each stage projects.
        for layer in [&net.layer1, &net.layer2, &net.layer3, &net.layer4] {
            for (i, block) in layer.iter().enumerate() {
                let ResidualBlock::Bottleneck(b) = block else {
                    panic!("ResNet-101 has bottlenecks")
                };
                assert_eq!(b.downsample.is_some(), i == 0);
            }
        }
    }

    /// Counts float tensors as torchvision's `parameters()` does: everything except the
    /// running statistics (buffers), which Burn's `num_params` includes.
    struct TorchParamCounter {
        path: Vec<String>,
        params: usize,
        running_stats: usize,
    }

    impl<BB: Backend> burn::module::ModuleVisitor<BB> for TorchParamCounter {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<BB, D>>) {
            let n = param.lazy_shape().num_elements();
            match self.path.last().map(String::as_str) {
                Some("running_mean" | "running_var") => self.running_stats += n,
                _ => self.params += n,
            }
        }
    }

    fn torch_param_count(depth: ResNetDepth) -> (usize, usize, usize) {
        let device = Default::default();
        let net = ResNetConfig::new(depth).init::<B>(&device);
        let mut counter = TorchParamCounter {
            path: Vec::new(),
            params: 0,
            running_stats: 0,
        };
        net.visit(&mut counter);
        (counter.params, counter.running_stats, net.num_params())
    }

    #[test]
    fn resnet50_parameter_count_matches_torchvision() {
        // torchvision resnet50: 25,557,032 parameters, of which fc has 2048 · 1000 + 1000.
        let (params, running, total) = torch_param_count(ResNetDepth::D50);
        assert_eq!(params, 23_508_032);
        // 26,560 batch-norm channels, each with a running mean and variance.
        assert_eq!(running, 2 * 26_560);
        assert_eq!(total, params + running);
    }

    #[test]
    fn resnet18_parameter_count_matches_torchvision() {
        // torchvision resnet18: 11,689,512 parameters, of which fc has 512 · 1000 + 1000.
        let (params, running, _) = torch_param_count(ResNetDepth::D18);
        assert_eq!(params, 11_689_512 - 513_000);
        assert_eq!(running, 2 * 4_800);
    }

    /// Parameter paths with enum variants skipped (as burn-store does when loading).
    struct PathCollector {
        path: Vec<Option<String>>,
        paths: Vec<String>,
    }

    impl<BB: Backend> burn::module::ModuleVisitor<BB> for PathCollector {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            let skip = container_type.starts_with("Enum:");
            self.path.push((!skip).then(|| name.to_string()));
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, _param: &burn::module::Param<Tensor<BB, D>>) {
            let parts: Vec<&str> = self.path.iter().flatten().map(String::as_str).collect();
            self.paths.push(parts.join("."));
        }
    }

    #[test]
    fn parameter_paths_follow_torchvision() {
        let device = Default::default();
        for frozen in [false, true] {
            let net = ResNetConfig::new(ResNetDepth::D50)
                .with_width_multiplier(0.0625)
                .with_frozen_bn(frozen)
                .init::<B>(&device);
            let mut collector = PathCollector {
                path: Vec::new(),
                paths: Vec::new(),
            };
            net.visit(&mut collector);
            let (scale, shift) = ("weight", "bias");
            for expected in [
                "conv1.weight".to_string(),
                format!("bn1.{scale}"),
                format!("bn1.{shift}"),
                "bn1.running_mean".to_string(),
                "layer1.0.downsample.conv.weight".to_string(),
                "layer1.0.downsample.bn.running_var".to_string(),
                "layer3.5.conv2.weight".to_string(),
                format!("layer4.2.bn3.{scale}"),
            ] {
                assert!(
                    collector.paths.contains(&expected),
                    "missing {expected} in {:?}",
                    &collector.paths[..12]
                );
            }
            assert!(!collector.paths.iter().any(|p| p.starts_with("layer3.6.")));
        }
    }

    #[test]
    fn frozen_bn_receives_no_gradient() {
        type AD = Autodiff<Flex>;
        let device = Default::default();
        let net = ResNetConfig::new(ResNetDepth::D50)
            .with_width_multiplier(0.0625)
            .with_frozen_bn(true)
            .init::<AD>(&device);
        let x = Tensor::<AD, 4>::random([1, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
        let out = net.forward(x);
        let loss = out
            .into_tensors()
            .into_iter()
            .map(|t| t.sum())
            .reduce(|a, b| a + b)
            .unwrap();
        let grads = loss.backward();
        assert!(net.conv1.weight.grad(&grads).is_some());
        let Norm::Frozen(bn1) = &net.bn1 else {
            panic!("frozen_bn builds frozen norms")
        };
        assert!(bn1.weight.grad(&grads).is_none());
        assert!(bn1.bias.grad(&grads).is_none());
        let ResidualBlock::Bottleneck(block) = &net.layer4[0] else {
            panic!("ResNet-50 has bottlenecks")
        };
        assert!(block.conv3.weight.grad(&grads).is_some());
        let Some(Downsample {
            bn: Norm::Frozen(ds_bn),
            ..
        }) = &block.downsample
        else {
            panic!("first block of layer4 projects with a frozen norm")
        };
        assert!(ds_bn.weight.grad(&grads).is_none());
        assert!(ds_bn.running_var.grad(&grads).is_none());
    }
}
