//! The layers visage's detectors are built from, one at a time, on Burn's wgpu backend against
//! Flex: output, input gradient and weight gradient of `sum(op(x, w) · r)` for a fixed random
//! `r`. Where the whole-family step (`wgpu_step`) disagrees, this says which op does.
//!
//! Sizes are odd on purpose (13×11 inputs, 8→12 channels, batch 2) so that strided ops have
//! partial windows. Tolerance: max |a − b| ≤ 1e-4 · max |a| + 1e-6 per tensor.

#![cfg(feature = "wgpu")]

mod wgpu_common;
mod wgpu_values;

use burn::backend::wgpu::WgpuDevice;
use burn::backend::{Autodiff, Flex, Wgpu};
use burn::module::{ModuleMapper, Param};
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::prelude::*;
use burn::tensor::module::{conv2d, conv_transpose2d, interpolate, max_pool2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions, InterpolateMode, InterpolateOptions};
use burn::tensor::{Slice, TensorData};
use visage_backbone::{FeatureLevel, FeatureLevels};
use visage_heads::flatten::flatten_levels;
use visage_kernels::{KernelAutodiffBackend, KernelBackend};
use visage_neck::FpnConfig;
use wgpu_values::{tensor, values, worst, REL};

/// Outputs of one case on one backend: output, x's gradient, the weight's gradient.
type Results = [TensorData; 3];

fn measure<B: KernelAutodiffBackend>(
    case_fn: impl Fn(Tensor<B, 4>, Tensor<B, 4>) -> Tensor<B, 4>,
    weight: [usize; 4],
    device: &B::Device,
) -> Results {
    let x = tensor::<B, 4>([2, 8, 13, 11], 1, device).require_grad();
    let w = tensor::<B, 4>(weight, 2, device).require_grad();
    let y = case_fn(x.clone(), w.clone());
    let r = tensor::<B, 4>(y.dims(), 3, device);
    let grads = (y.clone() * r).sum().backward();
    let gx = x
        .grad(&grads)
        .map(|g| g.into_data())
        .unwrap_or_else(|| TensorData::new(vec![0f32], [1]));
    let gw = w
        .grad(&grads)
        .map(|g| g.into_data())
        .unwrap_or_else(|| TensorData::new(vec![0f32], [1]));
    [y.into_data(), gx, gw]
}

macro_rules! op {
    ($name:literal, $weight:expr, |$x:ident, $w:ident| $body:expr) => {
        (
            $name,
            $weight,
            measure::<Autodiff<Flex>>(|$x, $w| $body, $weight, &Default::default()),
            measure::<Autodiff<Wgpu>>(|$x, $w| $body, $weight, &WgpuDevice::default()),
        )
    };
}

fn batch_norm<B: KernelBackend>(x: Tensor<B, 4>, w: Tensor<B, 4>) -> Tensor<B, 4> {
    // Train-mode batch norm (batch statistics), then a learnable per-channel scale from `w`.
    let norm: BatchNorm<B> = BatchNormConfig::new(8).init(&x.device());
    let scale = w.reshape([1, 8, 1, 1]);
    norm.forward(x) * scale
}

#[test]
fn every_layer_matches_flex_on_wgpu() {
    if !wgpu_common::wgpu_available() {
        return;
    }
    let conv = |s: usize, p: usize, g: usize| ConvOptions::new([s, s], [p, p], [1, 1], g);
    let cases = vec![
        op!("conv 3x3 s1", [12, 8, 3, 3], |x, w| conv2d(
            x,
            w,
            None,
            conv(1, 1, 1)
        )),
        op!("conv 3x3 s2", [12, 8, 3, 3], |x, w| conv2d(
            x,
            w,
            None,
            conv(2, 1, 1)
        )),
        op!("conv 1x1 s1", [12, 8, 1, 1], |x, w| conv2d(
            x,
            w,
            None,
            conv(1, 0, 1)
        )),
        // The ResNet shortcut's 1×1 stride-2 convolution as visage computes it (see
        // `burn_transposes_a_convolution_whose_kernel_is_smaller_than_its_stride`).
        op!("conv 1x1 s2 as subsampling", [12, 8, 1, 1], |x, w| conv2d(
            x.slice([
                Slice::full(),
                Slice::full(),
                Slice::new(0, None, 2),
                Slice::new(0, None, 2)
            ]),
            w,
            None,
            conv(1, 0, 1)
        )),
        op!("conv 7x7 s2 p3", [12, 8, 7, 7], |x, w| conv2d(
            x,
            w,
            None,
            conv(2, 3, 1)
        )),
        op!("depthwise 3x3 s1", [8, 1, 3, 3], |x, w| conv2d(
            x,
            w,
            None,
            conv(1, 1, 8)
        )),
        op!("depthwise 3x3 s2", [8, 1, 3, 3], |x, w| conv2d(
            x,
            w,
            None,
            conv(2, 1, 8)
        )),
        op!("grouped 3x3 g2", [12, 4, 3, 3], |x, w| conv2d(
            x,
            w,
            None,
            conv(1, 1, 2)
        )),
        op!("conv_transpose 4x4 s2", [8, 12, 4, 4], |x, w| {
            conv_transpose2d(
                x,
                w,
                None,
                ConvTransposeOptions::new([2, 2], [1, 1], [0, 0], [1, 1], 1),
            )
        }),
        op!("max_pool 3x3 s2 p1", [8, 1, 1, 1], |x, w| {
            max_pool2d(
                x * w.reshape([1, 8, 1, 1]),
                [3, 3],
                [2, 2],
                [1, 1],
                [1, 1],
                false,
            )
        }),
        op!("max_pool 2x2 s2 ceil", [8, 1, 1, 1], |x, w| {
            max_pool2d(
                x * w.reshape([1, 8, 1, 1]),
                [2, 2],
                [2, 2],
                [0, 0],
                [1, 1],
                true,
            )
        }),
        op!("nearest x2", [8, 1, 1, 1], |x, w| {
            interpolate(
                x * w.reshape([1, 8, 1, 1]),
                [26, 22],
                InterpolateOptions::new(InterpolateMode::Nearest),
            )
        }),
        op!("nearest to 7x6", [8, 1, 1, 1], |x, w| {
            interpolate(
                x * w.reshape([1, 8, 1, 1]),
                [7, 6],
                InterpolateOptions::new(InterpolateMode::Nearest),
            )
        }),
        op!("nearest 2x2 to 4x4", [8, 1, 1, 1], |x, w| {
            let small = x.slice([0..2, 0..8, 0..2, 0..2]) * w.reshape([1, 8, 1, 1]);
            interpolate(
                small,
                [4, 4],
                InterpolateOptions::new(InterpolateMode::Nearest),
            )
        }),
        op!("nearest 4x3 to 7x6", [8, 1, 1, 1], |x, w| {
            let small = x.slice([0..2, 0..8, 0..4, 0..3]) * w.reshape([1, 8, 1, 1]);
            interpolate(
                small,
                [7, 6],
                InterpolateOptions::new(InterpolateMode::Nearest),
            )
        }),
        op!(
            "conv 1x1 then nearest 2x2 to 4x4 + skip",
            [12, 8, 1, 1],
            |x, w| {
                let small = conv2d(
                    x.clone().slice([0..2, 0..8, 0..2, 0..2]),
                    w.clone(),
                    None,
                    conv(1, 0, 1),
                );
                let skip = conv2d(x.slice([0..2, 0..8, 0..4, 0..4]), w, None, conv(1, 0, 1));
                skip + interpolate(
                    small,
                    [4, 4],
                    InterpolateOptions::new(InterpolateMode::Nearest),
                )
            }
        ),
        op!("conv 1x1 64 to 16 on 2x2", [16, 64, 1, 1], |x, w| {
            let c5 = x.slice([0..2, 0..8, 0..8, 0..4]).reshape([2, 64, 2, 2]);
            conv2d(c5, w, None, conv(1, 0, 1))
        }),
        op!("conv 3x3 16 to 16 on 2x2", [16, 16, 3, 3], |x, w| {
            let p5 = x.slice([0..2, 0..8, 0..4, 0..2]).reshape([2, 16, 2, 2]);
            conv2d(p5, w, None, conv(1, 1, 1))
        }),
        op!("conv 3x3 16 to 16 on 1x1", [16, 16, 3, 3], |x, w| {
            let p = x.slice([0..2, 0..8, 0..2, 0..1]).reshape([2, 16, 1, 1]);
            conv2d(p, w, None, conv(1, 1, 1))
        }),
        op!("conv 3x3 s2 16 to 16 on 2x2", [16, 16, 3, 3], |x, w| {
            let p5 = x.slice([0..2, 0..8, 0..4, 0..2]).reshape([2, 16, 2, 2]);
            conv2d(p5, w, None, conv(2, 1, 1))
        }),
        op!("batch norm (train)", [8, 1, 1, 1], |x, w| batch_norm(x, w)),
        op!("relu", [8, 1, 1, 1], |x, w| burn::tensor::activation::relu(
            x * w.reshape([1, 8, 1, 1])
        )),
        op!("leaky relu", [8, 1, 1, 1], |x, w| {
            burn::tensor::activation::leaky_relu(x * w.reshape([1, 8, 1, 1]), 0.1)
        }),
        op!("sigmoid", [8, 1, 1, 1], |x, w| {
            burn::tensor::activation::sigmoid(x * w.reshape([1, 8, 1, 1]))
        }),
        op!("log_sigmoid", [8, 1, 1, 1], |x, w| {
            burn::tensor::activation::log_sigmoid(x.mul_scalar(4.0) * w.reshape([1, 8, 1, 1]))
        }),
        op!("exp", [8, 1, 1, 1], |x, w| (x * w.reshape([1, 8, 1, 1]))
            .exp()),
        op!("log", [8, 1, 1, 1], |x, w| (x * w.reshape([1, 8, 1, 1]))
            .abs()
            .add_scalar(0.1)
            .log()),
        op!("softplus", [8, 1, 1, 1], |x, w| {
            burn::tensor::activation::softplus(x * w.reshape([1, 8, 1, 1]), 1.0)
        }),
        op!("permute+reshape", [8, 1, 1, 1], |x, w| {
            (x * w.reshape([1, 8, 1, 1]))
                .permute([0, 2, 3, 1])
                .reshape([2, 13 * 11 * 8, 1, 1])
        }),
        op!("slice", [8, 1, 1, 1], |x, w| {
            (x * w.reshape([1, 8, 1, 1])).slice([0..2, 0..8, 0..4, 0..4])
        }),
        op!("cat dim1", [8, 1, 1, 1], |x, w| {
            let y = x * w.reshape([1, 8, 1, 1]);
            Tensor::cat(vec![y.clone(), y.mul_scalar(2.0)], 1)
        }),
        op!("cat of two reshaped", [8, 1, 1, 1], |x, w| {
            let y = x * w.reshape([1, 8, 1, 1]);
            let a = y.clone().reshape([2, 13 * 11 * 8, 1]);
            let b = y.mul_scalar(2.0).reshape([2, 13 * 11 * 8, 1]);
            Tensor::cat(vec![a, b], 1).reshape([2, 2 * 13 * 11 * 8, 1, 1])
        }),
        op!("flatten_levels, 1 per anchor", [8, 1, 1, 1], |x, w| {
            let y = x * w.reshape([1, 8, 1, 1]);
            let coarse = max_pool2d(y.clone(), [2, 2], [2, 2], [0, 0], [1, 1], false);
            let flat = flatten_levels(vec![y, coarse], 1);
            let n = flat.dims()[1];
            flat.reshape([2, n, 1, 1])
        }),
        op!("flatten_levels, 4 per anchor", [8, 1, 1, 1], |x, w| {
            let y = x * w.reshape([1, 8, 1, 1]);
            let coarse = max_pool2d(y.clone(), [2, 2], [2, 2], [0, 0], [1, 1], false);
            let flat = flatten_levels(vec![y, coarse], 4);
            let n = flat.dims()[1];
            flat.reshape([2, n, 4, 1])
        }),
        op!("row weights", [8, 1, 1, 1], |x, w| {
            let y = (x * w.reshape([1, 8, 1, 1]))
                .permute([0, 2, 3, 1])
                .reshape([2 * 13 * 11 * 8, 1]);
            let weights = Tensor::<_, 1>::from_data(
                TensorData::new(values(2 * 13 * 11 * 8, 9), [2 * 13 * 11 * 8]),
                &y.device(),
            );
            (y * weights.unsqueeze_dim::<2>(1)).reshape([2, 13 * 11 * 8, 1, 1])
        }),
    ];
    let mut failures = Vec::new();
    for (name, _, flex, wgpu) in &cases {
        let mut line = format!("{name:>24}:");
        for (part, (a, b)) in ["out", "dx", "dw"].iter().zip(flex.iter().zip(wgpu.iter())) {
            let (diff, scale) = worst(a, b);
            let ok = diff <= REL * scale + 1e-6;
            line += &format!(
                "  {part} {:.1e}/{:.1e}{}",
                diff,
                scale,
                if ok { "" } else { " ✗" }
            );
            if !ok {
                failures.push(format!(
                    "{name} {part}: max |Δ| {diff:.3e}, max |flex| {scale:.3e}"
                ));
            }
        }
        println!("{line}");
    }
    assert!(
        failures.is_empty(),
        "wgpu differs from Flex:\n{}",
        failures.join("\n")
    );
}

/// C3, C4, C5 of `[2, 16, 8, 8]`, `[2, 32, 4, 4]`, `[2, 64, 2, 2]` (requiring gradients), and
/// the same tensors as feature levels of strides 8, 16, 32.
fn pyramid_inputs<B: KernelAutodiffBackend>(
    device: &B::Device,
) -> (Vec<Tensor<B, 4>>, FeatureLevels<B>) {
    let inputs = [(16, 8), (32, 4), (64, 2)]
        .into_iter()
        .zip(1..)
        .map(|((channels, side), seed)| {
            tensor::<B, 4>([2, channels, side, side], seed, device).require_grad()
        })
        .collect::<Vec<_>>();
    let levels = inputs
        .iter()
        .zip([8, 16, 32])
        .map(|(x, stride)| FeatureLevel::new(stride, x.clone()))
        .collect();
    (inputs, FeatureLevels::new(levels))
}

/// `Σ_l sum(P_l · r_l)` for fixed random `r_l`: a scalar whose gradient reaches every output.
fn weighted_sum<B: KernelAutodiffBackend>(
    outputs: Vec<Tensor<B, 4>>,
    device: &B::Device,
) -> Tensor<B, 1> {
    outputs
        .into_iter()
        .zip(50..)
        .map(|(p, seed)| (p.clone() * tensor::<B, 4>(p.dims(), seed, device)).sum())
        .reduce(|a, b| a + b)
        .expect("at least one level")
}

/// Asserts that every named tensor of `flex` and `wgpu` agrees within [`REL`], printing each.
fn assert_named_agree(flex: &[(String, TensorData)], wgpu: &[(String, TensorData)]) {
    let mut failures = Vec::new();
    for ((name, a), (_, b)) in flex.iter().zip(wgpu) {
        let (diff, scale) = worst(a, b);
        println!("{name}: max |Δ| {diff:.1e}, max |flex| {scale:.1e}");
        if diff > REL * scale + 1e-6 {
            failures.push(name.clone());
        }
    }
    assert!(failures.is_empty(), "wgpu differs from Flex: {failures:?}");
}

/// One FPN gradient readout: the gradients of C3, C4, C5 and of every lateral and output
/// convolution's weight, named.
fn fpn_gradients<B: KernelAutodiffBackend>(device: &B::Device) -> Vec<(String, TensorData)> {
    let mut fpn = FpnConfig::new(vec![16, 32, 64], 16)
        .with_extra_levels(0)
        .init::<B>(device);
    for (seed, conv) in (100..).zip(fpn.lateral.iter_mut().chain(fpn.output.iter_mut())) {
        let weight = tensor::<B, 4>(conv.weight.dims(), seed, device).mul_scalar(0.3);
        conv.weight = Param::from_tensor(weight);
    }
    let (inputs, levels) = pyramid_inputs::<B>(device);
    let outputs = fpn.forward(levels).into_tensors();
    let grads = weighted_sum(outputs, device).backward();
    let mut named = Vec::new();
    for (name, x) in ["C3", "C4", "C5"].iter().zip(&inputs) {
        named.push((name.to_string(), x.grad(&grads).expect("input").into_data()));
    }
    for (kind, convs) in [("lateral", &fpn.lateral), ("output", &fpn.output)] {
        for (i, conv) in convs.iter().enumerate() {
            let g = conv.weight.grad(&grads).expect("weight").into_data();
            named.push((format!("{kind}.{i}.weight"), g));
        }
    }
    named
}

/// RetinaNet's FPN (C3..C5 of 8×8, 4×4, 2×2, 16 channels out, no extra levels) on wgpu
/// against Flex, outputs and gradients. With Burn's nearest `interpolate` in the top-down path
/// the gradients reaching C5 and `lateral.2` were wrong on Burn 0.21's cubecl backends (max |Δ|
/// 13 for max |g| 12): its backward kernel indexes a vectorised channels-last gradient (the
/// output of the previous level's `interpolate` backward) with element offsets.
/// `visage_neck::upsample_nearest_to` now gathers rows and columns instead.
#[test]
fn fpn_gradients_match_flex_on_wgpu() {
    if !wgpu_common::wgpu_available() {
        return;
    }
    let flex = fpn_gradients::<Autodiff<Flex>>(&Default::default());
    let wgpu = fpn_gradients::<Autodiff<Wgpu>>(&WgpuDevice::default());
    assert_named_agree(&flex, &wgpu);
}

/// Replaces every float parameter by [`tensor`] values (scaled by 0.3, plus 1 for the
/// batch-norm-like vectors so they stay positive), one seed per parameter in visiting order:
/// the same weights on every backend.
struct Seeded {
    seed: u64,
}

impl<B: KernelBackend> ModuleMapper<B> for Seeded {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, old, _) = param.consume();
        self.seed += 1;
        let mut new = tensor::<B, D>(old.dims(), self.seed, &old.device()).mul_scalar(0.3);
        if D == 1 {
            new = new.add_scalar(1.0);
        }
        Param::initialized(id, new.detach().require_grad())
    }
}

/// RetinaFace's FPN (C3..C5 of 8×8, 4×4, 2×2 → 16 channels, batch norm in training mode,
/// leaky ReLU) on wgpu against Flex: the three outputs and the gradients of the inputs.
fn retinaface_fpn_readout<B: KernelAutodiffBackend>(
    device: &B::Device,
) -> Vec<(String, TensorData)> {
    let fpn = visage_neck::RetinaFaceFpn::<B>::new([16, 32, 64], 16, false, device)
        .map(&mut Seeded { seed: 200 });
    let (inputs, levels) = pyramid_inputs::<B>(device);
    let outputs = fpn.forward(levels).into_tensors();
    let mut named: Vec<(String, TensorData)> = outputs
        .iter()
        .zip(["P3", "P4", "P5"])
        .map(|(p, name)| (name.to_string(), p.clone().into_data()))
        .collect();
    let grads = weighted_sum(outputs, device).backward();
    for (name, x) in ["dC3", "dC4", "dC5"].iter().zip(&inputs) {
        named.push((name.to_string(), x.grad(&grads).expect("input").into_data()));
    }
    named
}

#[test]
fn retinaface_fpn_matches_flex_on_wgpu() {
    if !wgpu_common::wgpu_available() {
        return;
    }
    let flex = retinaface_fpn_readout::<Autodiff<Flex>>(&Default::default());
    let wgpu = retinaface_fpn_readout::<Autodiff<Wgpu>>(&WgpuDevice::default());
    assert_named_agree(&flex, &wgpu);
}
