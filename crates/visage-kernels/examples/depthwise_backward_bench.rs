//! Times the two gradients of the depthwise 3×3 convolutions of RetinaFace's MobileNet-0.25
//! (the training step's backward) at one batch and image size: Flex's own (a transposed
//! convolution, and one convolution per group for the weight) beside visage's
//! (`KernelBackend::visage_conv2d_{x,weight}_backward` on `Flex`), medians per layer.
//!
//! `cargo run --example depthwise_backward_bench --features visage/wgpu -- 4 320 320 5`
//! (`RAYON_NUM_THREADS=1` for one thread).

mod common;

use std::time::Instant;

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::ops::{ConvOptions, ModuleOps};
use burn::tensor::Distribution;
use visage_kernels::KernelBackend;

fn median_ms(iterations: usize, mut run: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..iterations)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("batch h w iterations"))
        .collect();
    let (batch, h, w, iterations) = match args[..] {
        [b, h, w, n] => (b, h, w, n),
        _ => (4, 320, 320, 5),
    };
    let device = Default::default();
    let random = |shape: [usize; 4]| {
        Tensor::<Flex, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device)
            .into_primitive()
            .tensor()
    };
    let (mut flex_total, mut ours_total) = (0.0, 0.0);
    println!("batch {batch}, {h}x{w}: layer, Flex's input + weight gradients, visage's");
    for (channels, scale, stride) in common::MOBILENET_025_DEPTHWISE {
        let [ih, iw] = [h.div_ceil(scale), w.div_ceil(scale)];
        let [oh, ow] = [ih, iw].map(|n| (n - 1) / stride + 1);
        let x = random([batch, channels, ih, iw]);
        let weight = random([channels, 1, 3, 3]);
        let dy = random([batch, channels, oh, ow]);
        let options = ConvOptions::new([stride, stride], [1, 1], [1, 1], channels);
        let flex = median_ms(iterations, || {
            let _ = Flex::conv2d_x_backward(x.clone(), weight.clone(), dy.clone(), options.clone());
            let _ = Flex::conv2d_weight_backward(
                x.clone(),
                weight.clone(),
                dy.clone(),
                options.clone(),
            );
        });
        let ours = median_ms(iterations, || {
            let _ = Flex::visage_conv2d_x_backward(
                x.clone(),
                weight.clone(),
                dy.clone(),
                options.clone(),
            );
            let _ = Flex::visage_conv2d_weight_backward(
                x.clone(),
                weight.clone(),
                dy.clone(),
                options.clone(),
            );
        });
        println!("C={channels:3} {ih:>3}x{iw:<3} stride {stride}: {flex:8.2} ms {ours:8.2} ms");
        flex_total += flex;
        ours_total += ours;
    }
    println!(
        "all depthwise layers: Flex {flex_total:.1} ms, visage {ours_total:.1} ms ({:.1}x)",
        flex_total / ours_total
    );
}
