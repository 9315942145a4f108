//! The fused training-mode batch norm (`Flex`'s kernel under `Autodiff`, and the composed
//! default that GPU backends run) against Burn's autodiff of the composed definition.

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::activation::leaky_relu;
use burn::tensor::{Distribution, TensorPrimitive};

use crate::batch_norm_train;

type Ad = Autodiff<Flex>;

/// max |a − b| / max |b|.
fn relative<const D: usize>(a: Tensor<Flex, D>, b: Tensor<Flex, D>) -> f32 {
    let scale = b.clone().abs().max().into_scalar().max(1e-12);
    (a - b).abs().max().into_scalar() / scale
}

/// The definition in Burn's tensor ops (its autodiff gives the reference gradients).
fn definition(
    x: Tensor<Ad, 4>,
    weight: Tensor<Ad, 1>,
    bias: Tensor<Ad, 1>,
    epsilon: f64,
    slope: Option<f64>,
) -> (Tensor<Ad, 4>, Tensor<Ad, 1>, Tensor<Ad, 1>) {
    let [b, c, h, w] = x.dims();
    let n = (b * h * w) as f64;
    let x = x.reshape([b, c, h * w]);
    let mean = x.clone().sum_dim(2).sum_dim(0).div_scalar(n);
    let centered = x - mean.clone();
    let variance = centered
        .clone()
        .square()
        .sum_dim(2)
        .sum_dim(0)
        .div_scalar(n);
    let scale = weight.reshape([1, c, 1]) / variance.clone().add_scalar(epsilon).sqrt();
    let y = (centered * scale + bias.reshape([1, c, 1])).reshape([b, c, h, w]);
    let y = match slope {
        Some(s) => leaky_relu(y, s),
        None => y,
    };
    (y, mean.reshape([c]), variance.reshape([c]))
}

/// Shapes with and without a scalar tail, a 1×1 plane, batch 1 and > 1, inputs far from zero
/// (mean 2, std 3), no activation, ReLU (0), leaky (0.1) and a slope outside `[0, 1]`.
#[test]
fn batch_norm_train_values_and_gradients_equal_the_definition() {
    let device = Default::default();
    let cases = [
        ([3, 5, 7, 9], Some(0.0)),
        ([2, 4, 16, 16], None),
        ([1, 6, 5, 3], Some(0.1)),
        ([4, 3, 1, 1], Some(0.0)),
        ([2, 8, 13, 11], Some(1.5)),
        ([2, 3, 40, 33], Some(0.1)),
    ];
    for (shape, slope) in cases {
        let c = shape[1];
        let x = Tensor::<Flex, 4>::random(shape, Distribution::Normal(2.0, 3.0), &device);
        let weight = Tensor::<Flex, 1>::random([c], Distribution::Normal(1.0, 0.5), &device);
        let bias = Tensor::<Flex, 1>::random([c], Distribution::Normal(0.0, 0.5), &device);
        let upstream = Tensor::<Ad, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let leaves = || {
            (
                Tensor::<Ad, 4>::from_inner(x.clone()).require_grad(),
                Tensor::<Ad, 1>::from_inner(weight.clone()).require_grad(),
                Tensor::<Ad, 1>::from_inner(bias.clone()).require_grad(),
            )
        };
        let (xa, wa, ba) = leaves();
        let (y, mean, variance) = batch_norm_train(xa.clone(), wa.clone(), ba.clone(), 1e-5, slope);
        let (xb, wb, bb) = leaves();
        let (y_ref, mean_ref, variance_ref) =
            definition(xb.clone(), wb.clone(), bb.clone(), 1e-5, slope);
        let what = format!("{shape:?}, slope {slope:?}");
        assert!(
            relative(y.clone().inner(), y_ref.clone().inner()) < 1e-5,
            "y {what}"
        );
        assert!(
            relative(mean.inner(), mean_ref.inner()) < 1e-5,
            "mean {what}"
        );
        assert!(
            relative(variance.inner(), variance_ref.inner()) < 1e-5,
            "variance {what}"
        );
        let grads = (y * upstream.clone()).sum().backward();
        let grads_ref = (y_ref * upstream).sum().backward();
        for (name, ours, theirs) in [
            (
                "x",
                xa.grad(&grads).map(|g| g.flatten::<1>(0, 3)),
                xb.grad(&grads_ref).map(|g| g.flatten::<1>(0, 3)),
            ),
            ("weight", wa.grad(&grads), wb.grad(&grads_ref)),
            ("bias", ba.grad(&grads), bb.grad(&grads_ref)),
        ] {
            let d = relative(ours.expect("a gradient"), theirs.expect("a gradient"));
            assert!(d < 1e-4, "∂{name} {what}: {d:e}");
        }
    }
}

/// The composed default (what wgpu and CUDA run) gives the definition's gradients too.
#[test]
fn the_composed_backward_equals_the_definitions_gradients() {
    let device = Default::default();
    let shape = [3, 4, 6, 5];
    for slope in [None, Some(0.0), Some(0.1)] {
        let x = Tensor::<Flex, 4>::random(shape, Distribution::Normal(-1.0, 2.0), &device);
        let weight = Tensor::<Flex, 1>::random([4], Distribution::Normal(1.0, 0.5), &device);
        let bias = Tensor::<Flex, 1>::random([4], Distribution::Normal(0.0, 0.5), &device);
        let upstream = Tensor::<Flex, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let out = crate::composed::batch_norm_train::<Flex>(
            x.clone().into_primitive().tensor(),
            weight.clone().into_primitive().tensor(),
            bias.clone().into_primitive().tensor(),
            1e-5,
            slope,
        );
        let [dx, dw, db] = crate::composed::batch_norm_train_backward::<Flex>(
            x.clone().into_primitive().tensor(),
            weight.clone().into_primitive().tensor(),
            bias.clone().into_primitive().tensor(),
            out.mean,
            out.variance,
            1e-5,
            slope,
            upstream.clone().into_primitive().tensor(),
        );
        let xa = Tensor::<Ad, 4>::from_inner(x).require_grad();
        let wa = Tensor::<Ad, 1>::from_inner(weight).require_grad();
        let ba = Tensor::<Ad, 1>::from_inner(bias).require_grad();
        let (y, _, _) = definition(xa.clone(), wa.clone(), ba.clone(), 1e-5, slope);
        let grads = (y * Tensor::from_inner(upstream)).sum().backward();
        let float = |t| Tensor::<Flex, 1>::from_primitive(TensorPrimitive::Float(t));
        let dx = Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(dx));
        assert!(
            relative(dx, xa.grad(&grads).unwrap()) < 1e-4,
            "∂x, slope {slope:?}"
        );
        assert!(
            relative(float(dw), wa.grad(&grads).unwrap()) < 1e-4,
            "∂w, slope {slope:?}"
        );
        assert!(
            relative(float(db), ba.grad(&grads).unwrap()) < 1e-4,
            "∂b, slope {slope:?}"
        );
    }
}

/// A constant channel (variance 0) normalises to the bias, with finite gradients.
#[test]
fn a_constant_channel_normalises_to_its_bias() {
    let device = Default::default();
    let x = Tensor::<Ad, 4>::full([2, 1, 3, 3], 7.0, &device).require_grad();
    let weight = Tensor::<Ad, 1>::from_floats([2.0], &device).require_grad();
    let bias = Tensor::<Ad, 1>::from_floats([0.5], &device);
    let (y, mean, variance) = batch_norm_train(x.clone(), weight, bias, 1e-5, None);
    let values: Vec<f32> = y.clone().into_data().to_vec().unwrap();
    assert!(values.iter().all(|&v| (v - 0.5).abs() < 1e-6), "{values:?}");
    assert_eq!(mean.into_scalar(), 7.0);
    assert_eq!(variance.into_scalar(), 0.0);
    let grads = y.sum().backward();
    let dx: Vec<f32> = x.grad(&grads).unwrap().into_data().to_vec().unwrap();
    assert!(dx.iter().all(|v| v.is_finite() && v.abs() < 1e-3), "{dx:?}");
}
