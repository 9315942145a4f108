//! Per-operation time of MobileNet-0.25's forward on the CPU (Flex): every layer of every
//! block timed on its own, summed by kind (stem 3×3 convolution, depthwise convolution by
//! stride, pointwise convolution, batch norm, leaky ReLU), for `benches/RESULTS.md`.
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo run -p visage-backbone --example layer_profile -- 480 640 [iterations]
//! ```
//! Convolutions run as the models run them (`visage_kernels::conv2d_layer`). Batch 1, frozen
//! batch norm (not folded, so that its cost shows), the parity formula's weights; each layer's
//! time is the median over the iterations, after two warm-up passes.

use std::collections::BTreeMap;
use std::time::Instant;

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::activation::leaky_relu;
use burn::tensor::TensorData;
use visage_backbone::mobilenet::MobileBlock;
use visage_backbone::weights::formula_values;
use visage_backbone::{Backbone, BackboneConfig, MobileNetV1Config};
use visage_kernels::conv2d_layer;

type B = Flex;

/// Runs `op` on `input`, recording its wall time under `kind`.
fn timed(
    samples: &mut BTreeMap<String, Vec<f64>>,
    kind: String,
    op: impl FnOnce() -> Tensor<B, 4>,
) -> Tensor<B, 4> {
    let start = Instant::now();
    let out = op();
    samples
        .entry(kind)
        .or_default()
        .push(start.elapsed().as_secs_f64() * 1e3);
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let h: usize = args.first().map_or(480, |v| v.parse().expect("height"));
    let w: usize = args.get(1).map_or(640, |v| v.parse().expect("width"));
    let iterations: usize = args.get(2).map_or(10, |v| v.parse().expect("iterations"));
    let device = Default::default();
    let config = BackboneConfig::MobileNet(MobileNetV1Config::new().with_frozen_bn(true));
    let net: Backbone<B> = config.init(&device);
    let dict = visage_backbone::weights::formula_state_dict::<B, _>(&net, net.torch_layout());
    let net = net.load_state_dict(&dict).expect("formula weights fit");
    let Backbone::MobileNet(net) = net else {
        unreachable!("a MobileNet config builds a MobileNet")
    };
    let input = Tensor::<B, 4>::from_data(
        TensorData::new(formula_values("input", &[1, 3, h, w]), [1, 3, h, w]),
        &device,
    );
    // Per layer (kind, then index so that repeated layers stay apart): one time per pass.
    let mut per_layer: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for pass in 0..iterations + 2 {
        let mut samples = BTreeMap::new();
        let mut x = input.clone();
        let blocks = net.stage1.iter().chain(&net.stage2).chain(&net.stage3);
        for (i, block) in blocks.enumerate() {
            match block {
                MobileBlock::ConvBn(b) => {
                    let [_, c, hh, ww] = x.dims();
                    let tag = format!("{i:02} {c}x{hh}x{ww}");
                    x = timed(&mut samples, format!("stem conv 3x3 s2|{tag}"), || {
                        conv2d_layer(&b.conv, x)
                    });
                    x = timed(&mut samples, format!("batch norm|{tag}"), || {
                        b.bn.forward(x)
                    });
                    x = timed(&mut samples, format!("leaky relu|{tag}"), || {
                        leaky_relu(x, b.leaky_slope)
                    });
                }
                MobileBlock::ConvDw(b) => {
                    let [_, c, hh, ww] = x.dims();
                    let tag = format!("{i:02} {c}x{hh}x{ww}");
                    let stride = b.depthwise.stride[0];
                    x = timed(
                        &mut samples,
                        format!("depthwise 3x3 s{stride}|{tag}"),
                        || conv2d_layer(&b.depthwise, x),
                    );
                    x = timed(&mut samples, format!("batch norm|{tag} dw"), || {
                        b.depthwise_bn.forward(x)
                    });
                    x = timed(&mut samples, format!("leaky relu|{tag} dw"), || {
                        leaky_relu(x, b.leaky_slope)
                    });
                    let out = b.pointwise.weight.dims()[0];
                    x = timed(&mut samples, format!("pointwise 1x1|{tag}→{out}"), || {
                        conv2d_layer(&b.pointwise, x)
                    });
                    x = timed(&mut samples, format!("batch norm|{tag} pw"), || {
                        b.pointwise_bn.forward(x)
                    });
                    x = timed(&mut samples, format!("leaky relu|{tag} pw"), || {
                        leaky_relu(x, b.leaky_slope)
                    });
                }
            }
        }
        if pass >= 2 {
            for (k, v) in samples {
                per_layer.entry(k).or_default().extend(v);
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut by_kind: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    let mut layers = Vec::new();
    for (key, mut times) in per_layer {
        let m = median(&mut times);
        let (kind, layer) = key.split_once('|').expect("kind|layer");
        let entry = by_kind.entry(kind.to_string()).or_default();
        entry.0 += m;
        entry.1 += 1;
        layers.push((m, kind.to_string(), layer.to_string()));
    }
    let total: f64 = by_kind.values().map(|(t, _)| t).sum();
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
    println!("MobileNet-0.25 {h}x{w}, batch 1, threads={threads}: {total:.1} ms summed over layers (medians of {iterations})");
    println!("| kind | layers | ms | share |\n|---|---|---|---|");
    let mut kinds: Vec<_> = by_kind.into_iter().collect();
    kinds.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
    for (kind, (t, n)) in kinds {
        println!("| {kind} | {n} | {t:.2} | {:.1} % |", 100.0 * t / total);
    }
    layers.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!("\nslowest layers (input C×H×W):");
    for (m, kind, layer) in layers.iter().take(12) {
        println!("  {m:7.2} ms  {kind:18} {layer}");
    }
}
