//! MobileNetV1 (×0.25 by default), exactly as Pytorch_Retinaface's `models/net.py` builds it:
//! the RetinaFace "mobilenet0.25" backbone, returning the outputs of its three stages
//! (strides 8, 16, 32; 64, 128, 256 channels at width 0.25).
//!
//! `stage1` is a 3×3 stride-2 convolution (`conv_bn`) followed by five depthwise-separable
//! blocks (`conv_dw`), `stage2` six and `stage3` two `conv_dw` blocks; every convolution is
//! bias-free and followed by a batch norm and a leaky ReLU of slope 0.1. There is no
//! `avg`/`fc` head: the network ends at the output of `stage3`.
//!
//! Parameter paths are `stage1.0.conv.weight`, `stage1.1.depthwise_bn.running_mean`,
//! `stage2.3.pointwise.weight`, ... (enum variants skipped); [`torch_key_to_path`] and
//! [`path_to_torch_key`] map them to and from Pytorch_Retinaface's state-dict keys
//! (`stage1.0.0.weight`, `stage1.1.1.running_mean`, `stage2.3.3.weight`, ...).

mod blocks;
mod config;
mod keys;

pub use blocks::{ConvBn, ConvDw, MobileBlock};
pub use config::MobileNetV1Config;
pub use keys::{path_to_torch_key, torch_key_to_path, RETINAFACE_MOBILENET};

use burn::prelude::*;
use visage_kernels::KernelBackend;

use crate::{FeatureLevel, FeatureLevels};
use config::BASE_PLAN;

/// Strides of the outputs of `stage1`, `stage2`, `stage3` with respect to the input image.
pub const MOBILENET_STRIDES: [usize; 3] = [8, 16, 32];

/// A MobileNetV1 backbone returning the outputs of its three stages.
#[derive(Module, Debug)]
pub struct MobileNetV1<B: Backend> {
    /// A `conv_bn` (3 → 8 channels, stride 2) and five `conv_dw` blocks; output stride 8,
    /// 64 channels at width 0.25.
    pub stage1: Vec<MobileBlock<B>>,
    /// Six `conv_dw` blocks (the first with stride 2); output stride 16, 128 channels.
    pub stage2: Vec<MobileBlock<B>>,
    /// Two `conv_dw` blocks (the first with stride 2); output stride 32, 256 channels.
    pub stage3: Vec<MobileBlock<B>>,
    /// Channels of the three outputs.
    pub channels: [usize; 3],
}

impl MobileNetV1Config {
    /// Builds the network. Convolutions are initialised as the ResNet ones (Kaiming normal,
    /// fan-out), norms as identity (weight 1, bias 0, mean 0, variance 1).
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails (a non-positive or non-finite width multiplier).
    pub fn init<B: KernelBackend>(&self, device: &B::Device) -> MobileNetV1<B> {
        if let Err(e) = self.validate() {
            panic!("invalid MobileNetV1Config: {e}");
        }
        let mut in_channels = 3;
        let mut stages: Vec<Vec<MobileBlock<B>>> = Vec::with_capacity(3);
        for (s, plan) in BASE_PLAN.iter().enumerate() {
            let mut stage = Vec::with_capacity(plan.len());
            for (i, &(base, stride)) in plan.iter().enumerate() {
                let out = self.scaled(base);
                let (frozen, slope) = (self.frozen_bn, self.leaky_slope);
                stage.push(if s == 0 && i == 0 {
                    MobileBlock::ConvBn(ConvBn::new(
                        in_channels,
                        out,
                        3,
                        stride,
                        Some(slope),
                        frozen,
                        device,
                    ))
                } else {
                    MobileBlock::ConvDw(ConvDw::new(
                        in_channels,
                        out,
                        stride,
                        frozen,
                        slope,
                        device,
                    ))
                });
                in_channels = out;
            }
            stages.push(stage);
        }
        let mut stages = stages.into_iter();
        let mut next = || stages.next().expect("three stages were built");
        MobileNetV1 {
            stage1: next(),
            stage2: next(),
            stage3: next(),
            channels: self.out_channels(),
        }
    }
}

impl<B: KernelBackend> MobileNetV1<B> {
    /// Channels of the three outputs: 64, 128, 256 at width 0.25.
    pub fn out_channels(&self) -> [usize; 3] {
        self.channels
    }

    /// Strides of the three outputs: 8, 16, 32.
    pub fn strides(&self) -> [usize; 3] {
        MOBILENET_STRIDES
    }

    /// Runs the backbone.
    ///
    /// # Shapes
    /// - `input`: `[batch, 3, h, w]` (any `h, w ≥ 1`)
    /// - output: three levels, finest first:
    ///   - stride 8: `[batch, out_channels()[0], ceil(h / 8), ceil(w / 8)]` (64 channels at
    ///     width 0.25)
    ///   - stride 16: `[batch, out_channels()[1], ceil(h / 16), ceil(w / 16)]` (128)
    ///   - stride 32: `[batch, out_channels()[2], ceil(h / 32), ceil(w / 32)]` (256)
    ///
    /// Each stride-2 3×3 convolution with padding 1 maps `n` to `floor((n - 1) / 2) + 1 =
    /// ceil(n / 2)`, and `k` of them compose to `ceil(n / 2^k)` (e.g. 37 → 19 → 10 → 5 → 3 → 2).
    pub fn forward(&self, input: Tensor<B, 4>) -> FeatureLevels<B> {
        let mut x = input;
        let mut levels = Vec::with_capacity(3);
        for (stage, stride) in [&self.stage1, &self.stage2, &self.stage3]
            .into_iter()
            .zip(MOBILENET_STRIDES)
        {
            for block in stage {
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
    use crate::Norm;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::Distribution;
    use std::collections::BTreeMap;

    type B = Flex;
    type AD = Autodiff<Flex>;

    /// Pytorch_Retinaface's `MobileNetV1.__init__`, block by block: `(inp, oup, stride)`.
    /// The first block of `stage1` is `conv_bn`, every other one `conv_dw`.
    const REFERENCE: [&[(usize, usize, usize)]; 3] = [
        &[
            (3, 8, 2),
            (8, 16, 1),
            (16, 32, 2),
            (32, 32, 1),
            (32, 64, 2),
            (64, 64, 1),
        ],
        &[
            (64, 128, 2),
            (128, 128, 1),
            (128, 128, 1),
            (128, 128, 1),
            (128, 128, 1),
            (128, 128, 1),
        ],
        &[(128, 256, 2), (256, 256, 1)],
    ];

    fn check_shapes(h: usize, w: usize, expected_sizes: [[usize; 2]; 3]) {
        let device = Default::default();
        let net = MobileNetV1Config::new().init::<B>(&device);
        let x = Tensor::random([1, 3, h, w], Distribution::Normal(0.0, 1.0), &device);
        let out = net.forward(x);
        assert_eq!(out.strides(), vec![8, 16, 32]);
        assert_eq!(out.channels(), vec![64, 128, 256]);
        assert_eq!(out.sizes(), expected_sizes.to_vec(), "{h}x{w}");
        for level in &out.levels {
            let [_, c, _, _] = level.features.dims();
            assert_eq!(c, level.channels());
        }
    }

    #[test]
    fn shapes_64x96() {
        check_shapes(64, 96, [[8, 12], [4, 6], [2, 3]]);
    }

    #[test]
    fn shapes_odd_size_round_up() {
        // 37 → 19 → 10 → 5 → 3 → 2 and 53 → 27 → 14 → 7 → 4 → 2 (ceil(n / 2) per stride 2).
        check_shapes(37, 53, [[5, 7], [3, 4], [2, 2]]);
        check_shapes(1, 1, [[1, 1], [1, 1], [1, 1]]);
    }

    #[test]
    fn channel_plan_matches_reference() {
        let config = MobileNetV1Config::new();
        let expected: Vec<Vec<usize>> = REFERENCE
            .iter()
            .map(|stage| stage.iter().map(|&(_, oup, _)| oup).collect())
            .collect();
        assert_eq!(config.stage_channels().to_vec(), expected);
        assert_eq!(config.out_channels(), [64, 128, 256]);

        let device = Default::default();
        let net = config.init::<B>(&device);
        assert_eq!(net.out_channels(), [64, 128, 256]);
        assert_eq!(net.strides(), [8, 16, 32]);
        for (s, (stage, reference)) in [&net.stage1, &net.stage2, &net.stage3]
            .into_iter()
            .zip(REFERENCE)
            .enumerate()
        {
            assert_eq!(stage.len(), reference.len());
            for (i, (block, &(inp, oup, stride))) in stage.iter().zip(reference).enumerate() {
                match block {
                    MobileBlock::ConvBn(b) => {
                        assert!(s == 0 && i == 0, "conv_bn at stage{}.{i}", s + 1);
                        assert_eq!(b.conv.weight.dims(), [oup, inp, 3, 3]);
                        assert_eq!(b.conv.stride, [stride, stride]);
                        assert_eq!(b.leaky_slope, 0.1);
                    }
                    MobileBlock::ConvDw(b) => {
                        assert!(s != 0 || i != 0, "stage1.0 must be a conv_bn");
                        assert_eq!(b.depthwise.weight.dims(), [inp, 1, 3, 3]);
                        assert_eq!(b.depthwise.groups, inp);
                        assert_eq!(b.depthwise.stride, [stride, stride]);
                        assert_eq!(b.pointwise.weight.dims(), [oup, inp, 1, 1]);
                        assert_eq!(b.pointwise.stride, [1, 1]);
                        assert_eq!(b.leaky_slope, 0.1);
                    }
                }
            }
        }
    }

    /// Every float tensor with its path (enum variants skipped, as burn-store does when
    /// loading), shape and whether it requires a gradient.
    #[derive(Default)]
    struct TensorCollector {
        path: Vec<Option<String>>,
        tensors: Vec<(String, Vec<usize>, bool)>,
    }

    impl<BB: Backend> burn::module::ModuleVisitor<BB> for TensorCollector {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            let skip = container_type.starts_with("Enum:");
            self.path.push((!skip).then(|| name.to_string()));
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<BB, D>>) {
            let parts: Vec<&str> = self.path.iter().flatten().map(String::as_str).collect();
            let value = param.val();
            self.tensors.push((
                parts.join("."),
                value.dims().to_vec(),
                value.is_require_grad(),
            ));
        }
    }

    fn collect<BB: Backend>(net: &MobileNetV1<BB>) -> Vec<(String, Vec<usize>, bool)> {
        let mut collector = TensorCollector::default();
        net.visit(&mut collector);
        collector.tensors
    }

    /// The reference's `state_dict()` without `fc.*` and `num_batches_tracked`, key → shape,
    /// built as the Python builds it.
    fn reference_state_dict() -> BTreeMap<String, Vec<usize>> {
        fn bn(keys: &mut BTreeMap<String, Vec<usize>>, prefix: String, c: usize) {
            for name in ["weight", "bias", "running_mean", "running_var"] {
                keys.insert(format!("{prefix}.{name}"), vec![c]);
            }
        }
        let mut keys = BTreeMap::new();
        for (s, stage) in REFERENCE.iter().enumerate() {
            for (i, &(inp, oup, _)) in stage.iter().enumerate() {
                let block = format!("stage{}.{i}", s + 1);
                if s == 0 && i == 0 {
                    // conv_bn: Conv2d(inp, oup, 3), BatchNorm2d(oup), LeakyReLU.
                    keys.insert(format!("{block}.0.weight"), vec![oup, inp, 3, 3]);
                    bn(&mut keys, format!("{block}.1"), oup);
                } else {
                    // conv_dw: Conv2d(inp, inp, 3, groups=inp), BatchNorm2d(inp), LeakyReLU,
                    // Conv2d(inp, oup, 1), BatchNorm2d(oup), LeakyReLU.
                    keys.insert(format!("{block}.0.weight"), vec![inp, 1, 3, 3]);
                    bn(&mut keys, format!("{block}.1"), inp);
                    keys.insert(format!("{block}.3.weight"), vec![oup, inp, 1, 1]);
                    bn(&mut keys, format!("{block}.4"), oup);
                }
            }
        }
        keys
    }

    #[test]
    fn parameter_paths_map_to_reference_state_dict() {
        let device = Default::default();
        let expected = reference_state_dict();
        // One conv_bn (1 conv + 4 norm tensors) and 13 conv_dw (2 convs + 8 norm tensors).
        assert_eq!(expected.len(), 5 + 13 * 10);
        for frozen in [false, true] {
            let net = MobileNetV1Config::new()
                .with_frozen_bn(frozen)
                .init::<B>(&device);
            let tensors = collect(&net);
            let mapped: BTreeMap<String, Vec<usize>> = tensors
                .iter()
                .map(|(path, dims, _)| (path_to_torch_key(path), dims.clone()))
                .collect();
            assert_eq!(mapped.len(), tensors.len(), "two paths map to one key");
            assert_eq!(mapped, expected, "frozen_bn = {frozen}");
            for (path, _, _) in &tensors {
                assert_eq!(torch_key_to_path(&path_to_torch_key(path)), *path);
            }
            for key in expected.keys() {
                assert_eq!(path_to_torch_key(&torch_key_to_path(key)), *key);
            }
            for path in [
                "stage1.0.conv.weight",
                "stage1.0.bn.running_var",
                "stage1.1.depthwise_bn.running_mean",
                "stage2.3.pointwise.weight",
                "stage3.1.pointwise_bn.bias",
            ] {
                assert!(tensors.iter().any(|(p, _, _)| p == path), "missing {path}");
            }
        }
    }

    #[test]
    fn parameter_count_matches_reference() {
        // Pytorch_Retinaface's MobileNetV1 at width 0.25 without fc (fc: 256 · 1000 + 1000):
        // convolutions (no bias):
        //   stage1: 3·8·9 = 216; conv_dw(inp, oup) = 9·inp + inp·oup:
        //           (8,16) 200, (16,32) 656, (32,32) 1312, (32,64) 2336, (64,64) 4672
        //           → 9,392
        //   stage2: (64,128) 8,768 + 5 · (128,128) 17,536 → 96,448
        //   stage3: (128,256) 33,920 + (256,256) 67,840 → 101,760
        //   total 207,600.
        // batch-norm channels: stage1 8 + 24 + 48 + 64 + 96 + 128 = 368, stage2 192 + 5 · 256 =
        //   1,472, stage3 384 + 512 = 896 → 2,736 channels.
        // torch `parameters()` (conv weights + BN weight and bias): 207,600 + 2 · 2,736 = 213,072
        //   (torch reports 470,072 with fc). Running mean and variance (buffers, which Burn's
        //   `num_params` counts too): 2 · 2,736 = 5,472; `num_batches_tracked` is not counted.
        let device = Default::default();
        let net = MobileNetV1Config::new().init::<B>(&device);
        let tensors = collect(&net);
        let count = |running: bool| -> usize {
            tensors
                .iter()
                .filter(|(p, _, _)| {
                    (p.ends_with(".running_mean") || p.ends_with(".running_var")) == running
                })
                .map(|(_, dims, _)| dims.iter().product::<usize>())
                .sum()
        };
        assert_eq!(count(false), 213_072);
        assert_eq!(count(true), 5_472);
        assert_eq!(net.num_params(), 213_072 + 5_472);
        let conv: usize = tensors
            .iter()
            .filter(|(_, dims, _)| dims.len() == 4)
            .map(|(_, dims, _)| dims.iter().product::<usize>())
            .sum();
        assert_eq!(conv, 207_600);
    }

    #[test]
    fn frozen_bn_has_no_trainable_norm_parameter() {
        let device = Default::default();
        let trainable = |frozen: bool| -> (usize, usize) {
            let net = MobileNetV1Config::new()
                .with_frozen_bn(frozen)
                .init::<AD>(&device);
            let tensors = collect(&net);
            let count = |norm: bool| -> usize {
                tensors
                    .iter()
                    .filter(|(_, dims, grad)| *grad && (dims.len() == 1) == norm)
                    .map(|(_, dims, _)| dims.iter().product::<usize>())
                    .sum()
            };
            (count(false), count(true))
        };
        // Convolutions are trainable either way; norms contribute weight and bias only when
        // not frozen (running statistics never require a gradient).
        assert_eq!(trainable(false), (207_600, 2 * 2_736));
        assert_eq!(trainable(true), (207_600, 0));
    }

    #[test]
    fn frozen_bn_receives_no_gradient() {
        let device = Default::default();
        let net = MobileNetV1Config::new()
            .with_frozen_bn(true)
            .init::<AD>(&device);
        let x = Tensor::<AD, 4>::random([1, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
        let loss = net
            .forward(x)
            .into_tensors()
            .into_iter()
            .map(|t| t.sum())
            .reduce(|a, b| a + b)
            .unwrap();
        let grads = loss.backward();
        let MobileBlock::ConvBn(stem) = &net.stage1[0] else {
            panic!("stage1.0 is a conv_bn")
        };
        assert!(stem.conv.weight.grad(&grads).is_some());
        let Norm::Frozen(bn) = &stem.bn else {
            panic!("frozen_bn builds frozen norms")
        };
        assert!(bn.weight.grad(&grads).is_none());
        assert!(bn.bias.grad(&grads).is_none());
        let MobileBlock::ConvDw(last) = &net.stage3[1] else {
            panic!("stage3.1 is a conv_dw")
        };
        assert!(last.depthwise.weight.grad(&grads).is_some());
        assert!(last.pointwise.weight.grad(&grads).is_some());
        let Norm::Frozen(bn) = &last.pointwise_bn else {
            panic!("frozen_bn builds frozen norms")
        };
        assert!(bn.weight.grad(&grads).is_none());
        assert!(bn.running_var.grad(&grads).is_none());
    }
}
