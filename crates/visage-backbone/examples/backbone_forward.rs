//! Times a backbone's forward pass on the CPU (Flex), for `benches/RESULTS.md` beside
//! `tools/bench/backbone_forward_torch.py` (PyTorch on the same machine, same weights formula).
//!
//! ```text
//! cargo run -p visage-backbone --example backbone_forward -- resnet50 640 640 [iterations]
//! RAYON_NUM_THREADS=1 cargo run -p visage-backbone --example backbone_forward -- resnet50 640 640
//! cargo run -p visage-backbone --example backbone_forward -- mobilenet 480 640
//! ```
//! Weights come from the parity formula (frozen batch norm), the input is the formula's
//! "input" tensor; reported: milliseconds per forward (batch 1), median and min of N runs
//! after two warm-up runs.

use std::time::Instant;

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::TensorData;
use visage_backbone::weights::formula_values;
use visage_backbone::{Backbone, BackboneConfig, MobileNetV1Config, ResNetConfig, ResNetDepth};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arch = args.first().map(String::as_str).unwrap_or("resnet50");
    let h: usize = args.get(1).map_or(640, |v| v.parse().expect("height"));
    let w: usize = args.get(2).map_or(640, |v| v.parse().expect("width"));
    let iterations: usize = args.get(3).map_or(10, |v| v.parse().expect("iterations"));
    let config = match arch {
        "resnet50" => {
            BackboneConfig::ResNet(ResNetConfig::new(ResNetDepth::D50).with_frozen_bn(true))
        }
        "resnet152" => {
            BackboneConfig::ResNet(ResNetConfig::new(ResNetDepth::D152).with_frozen_bn(true))
        }
        "mobilenet" => BackboneConfig::MobileNet(MobileNetV1Config::new().with_frozen_bn(true)),
        other => panic!("unknown arch {other}: resnet50, resnet152 or mobilenet"),
    };
    let device = Default::default();
    let net: Backbone<Flex> = config.init(&device);
    let dict = visage_backbone::weights::formula_state_dict::<Flex, _>(&net, net.torch_layout());
    let net = net.load_state_dict(&dict).expect("formula weights fit");
    let input = Tensor::<Flex, 4>::from_data(
        TensorData::new(formula_values("input", &[1, 3, h, w]), [1, 3, h, w]),
        &device,
    );
    let mut times = Vec::new();
    for i in 0..iterations + 2 {
        let start = Instant::now();
        let out = net.forward(input.clone());
        // Reading the coarsest level forces the whole graph to run.
        let last = out.levels.last().expect("levels").features.clone();
        let _ = last.sum().into_scalar();
        let ms = start.elapsed().as_secs_f64() * 1e3;
        if i >= 2 {
            times.push(ms);
        }
    }
    times.sort_by(f64::total_cmp);
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
    println!(
        "visage/Flex {arch} {h}x{w} threads={threads}: median {:.1} ms, min {:.1} ms over {} runs",
        times[times.len() / 2],
        times[0],
        times.len()
    );
}
