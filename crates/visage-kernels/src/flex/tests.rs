//! The Flex kernels against Burn's own ops (forward values; the gradients are Burn's, see
//! `crate::backends`).

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::module::conv2d as burn_conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::Distribution;

use crate::{conv2d, conv2d_leaky_relu};

type B = Flex;

fn random<const D: usize>(shape: [usize; D]) -> Tensor<B, D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
}

/// max |a − b| / max |b|.
fn relative<const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f32 {
    let scale = b.clone().abs().max().into_scalar().max(1e-12);
    (a - b).abs().max().into_scalar() / scale
}

/// Odd sizes, strides 1 and 2, padding, dilation, bias, batch > 1, 1×1 with and without
/// stride, a kernel wider than the input, depthwise 3×3 (strides 1 and 2, with bias, a
/// 1×2 input) and other groupings (Flex's own kernel).
#[test]
fn conv2d_equals_burns() {
    // (batch, in, out, h, w, kernel, stride, padding, dilation, groups, bias)
    let cases = [
        (1, 3, 8, 31, 45, [3, 3], [2, 2], [1, 1], [1, 1], 1, false),
        (2, 8, 16, 17, 13, [1, 1], [1, 1], [0, 0], [1, 1], 1, true),
        (3, 5, 7, 11, 9, [1, 1], [2, 2], [0, 0], [1, 1], 1, false),
        (2, 16, 12, 15, 20, [3, 3], [1, 1], [1, 1], [1, 1], 1, true),
        (1, 4, 6, 19, 23, [7, 7], [2, 2], [3, 3], [1, 1], 1, true),
        (2, 6, 5, 12, 14, [3, 5], [1, 2], [2, 1], [2, 1], 1, false),
        (1, 3, 4, 2, 3, [5, 5], [1, 1], [2, 2], [1, 1], 1, true),
        (2, 8, 8, 9, 11, [3, 3], [2, 2], [1, 1], [1, 1], 8, false),
        (2, 6, 6, 13, 10, [3, 3], [1, 1], [1, 1], [1, 1], 6, true),
        (1, 5, 5, 1, 2, [3, 3], [2, 2], [1, 1], [1, 1], 5, true),
        (1, 4, 8, 9, 7, [3, 3], [1, 1], [1, 1], [1, 1], 4, false),
        (1, 8, 4, 9, 11, [3, 3], [1, 1], [1, 1], [1, 1], 2, true),
    ];
    for (n, c, o, h, w, k, stride, padding, dilation, groups, bias) in cases {
        let x = random([n, c, h, w]);
        let weight = random([o, c / groups, k[0], k[1]]);
        let b = bias.then(|| random([o]));
        let options = ConvOptions::new(stride, padding, dilation, groups);
        let ours = conv2d(x.clone(), weight.clone(), b.clone(), options.clone());
        let burns = burn_conv2d(x, weight, b, options);
        assert_eq!(ours.dims(), burns.dims());
        let d = relative(ours, burns);
        assert!(d < 1e-5, "{n}x{c}x{h}x{w} → {o}, k {k:?} s {stride:?} p {padding:?} d {dilation:?} g {groups}: {d:e}");
    }
}

/// The convolution with its leaky ReLU applied as the output is written equals, bit for bit,
/// the convolution followed by Flex's `leaky_relu`, and Burn's composed ops to 1e-5: the
/// column path, the per-tap path, 1×1 with stride, depthwise (strides 1 and 2, odd sizes),
/// another grouping (composed), batch > 1, slopes 0.1, 0 (ReLU) and 1.5 (scalar path).
#[test]
fn conv2d_leaky_relu_equals_the_composition() {
    use burn::tensor::activation::leaky_relu;
    // (batch, in, out, h, w, kernel, stride, padding, groups)
    let cases = [
        (1, 3, 8, 31, 45, [3, 3], [2, 2], [1, 1], 1),
        (2, 16, 12, 15, 20, [3, 3], [1, 1], [1, 1], 1),
        (3, 5, 7, 11, 9, [1, 1], [2, 2], [0, 0], 1),
        (2, 6, 6, 13, 10, [3, 3], [1, 1], [1, 1], 6),
        (2, 8, 8, 9, 11, [3, 3], [2, 2], [1, 1], 8),
        (1, 8, 4, 9, 11, [3, 3], [1, 1], [1, 1], 2),
    ];
    for (n, c, o, h, w, k, stride, padding, groups) in cases {
        for slope in [0.1, 0.0, 1.5] {
            let x = random([n, c, h, w]);
            let weight = random([o, c / groups, k[0], k[1]]);
            let b = Some(random([o]));
            let options = ConvOptions::new(stride, padding, [1, 1], groups);
            let fused =
                conv2d_leaky_relu(x.clone(), weight.clone(), b.clone(), options.clone(), slope);
            let ours = leaky_relu(
                conv2d(x.clone(), weight.clone(), b.clone(), options.clone()),
                slope,
            );
            let case = format!("{n}x{c}x{h}x{w} → {o}, k {k:?} s {stride:?} g {groups}, {slope}");
            assert_eq!(
                fused.to_data().to_vec::<f32>().unwrap(),
                ours.to_data().to_vec::<f32>().unwrap(),
                "{case}"
            );
            let burns = leaky_relu(burn_conv2d(x, weight, b, options), slope);
            let d = relative(fused, burns);
            assert!(d < 1e-5, "{case}: {d:e}");
        }
    }
}

/// Under autodiff the fused call is the composition: the same input, weight and bias
/// gradients as `leaky_relu(conv2d(..))` (a depthwise and a dense case).
#[test]
fn conv2d_leaky_relu_gradients_equal_the_composition() {
    use burn::tensor::activation::leaky_relu;
    type AD = Autodiff<Flex>;
    let device = Default::default();
    let random_ad = |shape: [usize; 4]| {
        Tensor::<AD, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device).require_grad()
    };
    for (c, o, groups, stride) in [(6, 6, 6, 2), (4, 5, 1, 1)] {
        let x = random_ad([2, c, 9, 7]);
        let weight = random_ad([o, c / groups, 3, 3]);
        let bias =
            Tensor::<AD, 1>::random([o], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let options = ConvOptions::new([stride, stride], [1, 1], [1, 1], groups);
        let loss = |y: Tensor<AD, 4>| (y.clone() * y.sin()).sum();
        let gradients = |y: Tensor<AD, 4>| {
            let grads = loss(y).backward();
            [x.grad(&grads), weight.grad(&grads)]
                .map(Option::unwrap)
                .map(|g| g.to_data().to_vec::<f32>().unwrap())
        };
        let fused = gradients(conv2d_leaky_relu(
            x.clone(),
            weight.clone(),
            Some(bias.clone()),
            options.clone(),
            0.1,
        ));
        let composed = gradients(leaky_relu(
            conv2d(x.clone(), weight.clone(), Some(bias.clone()), options),
            0.1,
        ));
        assert_eq!(fused, composed, "groups {groups}, stride {stride}");
    }
}

/// A strided view as input (a slice of a larger tensor) gives the same result as a copy.
#[test]
fn conv2d_reads_strided_views() {
    let big = random([2, 6, 20, 20]);
    let view = big.slice([0..2, 1..5, 3..17, 2..19]);
    let weight = random([3, 4, 3, 3]);
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let ours = conv2d(view.clone(), weight.clone(), None, options.clone());
    let burns = burn_conv2d(view, weight, None, options);
    assert!(relative(ours, burns) < 1e-5);
}

/// Under autodiff: the output and the gradients of the input, the weight and the bias equal
/// Burn's `conv2d` under autodiff (≤ 1e-5 of each tensor's magnitude), for strided, padded,
/// dilated, 1×1, biased and depthwise convolutions at batch > 1 (depthwise 3×3 at strides 1
/// and 2 on odd and even sizes: its own gradients), and stride-1 ones (the
/// column-free path) with padding, without, dilated and on a 1×2 input.
#[test]
fn autodiff_values_and_gradients_equal_burns() {
    type AD = Autodiff<Flex>;
    let device = Default::default();
    let random_ad = |shape: [usize; 4]| {
        Tensor::<AD, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device).require_grad()
    };
    // (batch, in, out, h, w, kernel, stride, padding, dilation, groups)
    let cases = [
        (2, 3, 4, 9, 8, [3, 3], [2, 2], [1, 1], [1, 1], 1),
        (2, 8, 5, 7, 6, [1, 1], [1, 1], [0, 0], [1, 1], 1),
        (3, 4, 6, 11, 10, [1, 1], [2, 2], [0, 0], [1, 1], 1),
        (2, 5, 3, 12, 9, [3, 5], [1, 2], [2, 1], [2, 1], 1),
        (2, 4, 4, 9, 11, [7, 7], [2, 2], [3, 3], [1, 1], 1),
        (2, 6, 6, 9, 8, [3, 3], [2, 2], [1, 1], [1, 1], 6),
        (2, 6, 5, 11, 9, [3, 3], [1, 1], [1, 1], [1, 1], 1),
        (3, 4, 3, 8, 7, [3, 3], [1, 1], [0, 0], [2, 2], 1),
        (2, 3, 4, 1, 2, [3, 3], [1, 1], [1, 1], [1, 1], 1),
        (3, 5, 5, 13, 11, [3, 3], [1, 1], [1, 1], [1, 1], 5),
        (3, 5, 5, 13, 11, [3, 3], [2, 2], [1, 1], [1, 1], 5),
        (2, 4, 4, 10, 12, [3, 3], [2, 2], [1, 1], [1, 1], 4),
        (2, 3, 3, 1, 2, [3, 3], [2, 2], [1, 1], [1, 1], 3),
    ];
    for (n, c, o, h, w, k, stride, padding, dilation, groups) in cases {
        let x = random_ad([n, c, h, w]);
        let weight = random_ad([o, c / groups, k[0], k[1]]);
        let bias =
            Tensor::<AD, 1>::random([o], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let options = ConvOptions::new(stride, padding, dilation, groups);
        // A loss whose output gradient varies per element and is the same for both outputs
        // (a gradient that depends on `y` would carry the outputs' rounding differences into
        // the bias gradient, a sum of cancelling terms: 1.02e-5 once on random data).
        let [_, _, oh, ow] = burn_conv2d(x.clone(), weight.clone(), None, options.clone()).dims();
        let upstream =
            Tensor::<AD, 4>::random([n, o, oh, ow], Distribution::Normal(0.0, 1.0), &device);
        let loss = |y: Tensor<AD, 4>| (y * upstream.clone()).sum();
        let ours = conv2d(
            x.clone(),
            weight.clone(),
            Some(bias.clone()),
            options.clone(),
        );
        let grads = loss(ours.clone()).backward();
        let mine = [x.grad(&grads), weight.grad(&grads)].map(Option::unwrap);
        let my_bias = bias.grad(&grads).unwrap();
        let burns = burn_conv2d(x.clone(), weight.clone(), Some(bias.clone()), options);
        let grads = loss(burns.clone()).backward();
        let theirs = [x.grad(&grads), weight.grad(&grads)].map(Option::unwrap);
        let case = format!("{n}x{c}x{h}x{w} → {o}, k {k:?} s {stride:?} g {groups}");
        assert!(
            relative(ours.inner(), burns.inner()) < 1e-5,
            "{case}: output"
        );
        for (name, (a, b)) in ["input", "weight"].iter().zip(mine.into_iter().zip(theirs)) {
            let d = relative(a, b);
            assert!(d < 1e-5, "{case}: {name} gradient {d:e}");
        }
        let d = relative(my_bias, bias.grad(&grads).unwrap());
        assert!(d < 1e-5, "{case}: bias gradient {d:e}");
    }
}

/// Max pooling, forward and input gradient, equals Burn's `max_pool2d` on Flex and under
/// autodiff: odd sizes, strides 1 and 2, padding, dilation, batch > 1, a kernel as large as
/// the padded input, many ties (values rounded to integers: the index of the first maximum
/// must match), and ceil mode (Flex's own kernel).
#[test]
fn max_pool_values_and_gradients_equal_burns() {
    use burn::tensor::module::max_pool2d as burn_max_pool2d;
    type AD = Autodiff<Flex>;
    let device = Default::default();
    // (batch, channels, h, w, kernel, stride, padding, dilation, ceil, rounded)
    let cases = [
        (2, 3, 13, 11, [3, 3], [2, 2], [1, 1], [1, 1], false, false),
        (1, 4, 9, 10, [3, 3], [1, 1], [1, 1], [1, 1], false, true),
        (3, 2, 7, 8, [2, 2], [2, 2], [0, 0], [1, 1], false, false),
        (2, 2, 12, 9, [3, 2], [2, 1], [1, 0], [2, 1], false, true),
        (1, 3, 3, 2, [5, 4], [1, 1], [1, 1], [1, 1], false, false),
        (2, 3, 11, 11, [3, 3], [2, 2], [1, 1], [1, 1], true, false),
    ];
    for (n, c, h, w, k, stride, padding, dilation, ceil, rounded) in cases {
        let case = format!("{n}x{c}x{h}x{w} k {k:?} s {stride:?} p {padding:?} d {dilation:?}");
        let mut x = Tensor::<AD, 4>::random([n, c, h, w], Distribution::Normal(0.0, 2.0), &device);
        if rounded {
            x = x.round();
        }
        let x = x.require_grad();
        let ours = Tensor::<AD, 4>::from_primitive(burn::tensor::TensorPrimitive::Float(
            <AD as crate::KernelBackend>::visage_max_pool2d(
                x.clone().into_primitive().tensor(),
                k,
                stride,
                padding,
                dilation,
                ceil,
            ),
        ));
        let burns = burn_max_pool2d(x.clone(), k, stride, padding, dilation, ceil);
        assert_eq!(ours.dims(), burns.dims(), "{case}");
        assert!(
            relative(ours.clone().inner(), burns.clone().inner()) == 0.0,
            "{case}: output"
        );
        let loss = |y: Tensor<AD, 4>| (y.clone() * y.sin()).sum();
        let mine = x.grad(&loss(ours).backward()).unwrap();
        let theirs = x.grad(&loss(burns).backward()).unwrap();
        assert!(relative(mine, theirs) < 1e-6, "{case}: input gradient");
    }
}
