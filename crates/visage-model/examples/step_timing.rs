//! Times the forward pass and a full training step (forward, loss, backward, SGD) of a detector
//! spec on the CPU (`Flex`): `cargo run -p visage-model --example step_timing -- SPEC.toml B S [STEPS]`.
//! `STEP_IN_POOL=1` runs the training steps inside a rayon pool (the backend's parallel
//! kernels then start from a worker thread instead of being handed over from the main one).

use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::prelude::*;
use visage_model::{DetectorFamily, FaceTargets, RetinaNet, RetinaNetSpec};

type Ad = Autodiff<Flex>;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let text = std::fs::read_to_string(&args[1]).expect("spec file");
    let table: toml::Table = toml::from_str(&text).expect("toml");
    let model_table = table
        .get("model")
        .cloned()
        .unwrap_or(toml::Value::Table(table.clone()));
    let spec: RetinaNetSpec = model_table.try_into().expect("model spec");
    let batch: usize = args.get(2).map_or(8, |s| s.parse().unwrap());
    let size: usize = args.get(3).map_or(256, |s| s.parse().unwrap());
    let device = Default::default();
    let mut det = RetinaNet::<Ad>::new(&spec, &device).unwrap();
    println!(
        "parameters (Burn's count, running statistics included): {}",
        det.num_params()
    );
    let images = Tensor::<Ad, 4>::random(
        [batch, 3, size, size],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let faces: Vec<FaceTargets> = (0..batch)
        .map(|i| FaceTargets {
            boxes: vec![
                [10.0 + i as f32, 20.0, 60.0, 80.0],
                [100.0, 100.0, 200.0, 230.0],
            ],
            ..Default::default()
        })
        .collect();
    let inference = det.valid();
    let plain = Tensor::<Flex, 4>::random(
        [batch, 3, size, size],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    for _ in 0..2 {
        let t = Instant::now();
        let out = inference.forward(plain.clone());
        let _ = out.cls_logits.into_data();
        println!(
            "inference forward: {:.0} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    let steps: usize = args.get(4).map_or(3, |s| s.parse().unwrap());
    let mut optim = SgdConfig::new().init();
    let run = move || {
        for _ in 0..steps {
            let t = Instant::now();
            let out = det.forward(images.clone());
            let t_fwd = t.elapsed();
            let parts = det.loss(&out, &faces).unwrap();
            let v = parts.values().unwrap();
            let t_loss = t.elapsed();
            let grads = GradientsParams::from_grads(parts.total.backward(), &det);
            let t_bwd = t.elapsed();
            det = optim.step(0.001, det, grads);
            let t_all = t.elapsed();
            println!(
                "train step: forward {:.0} ms, +loss {:.0} ms, +backward {:.0} ms, +sgd {:.0} ms (loss {:.3}) => {:.1} img/s",
                t_fwd.as_secs_f64() * 1e3, t_loss.as_secs_f64() * 1e3, t_bwd.as_secs_f64() * 1e3, t_all.as_secs_f64() * 1e3, v.total,
                batch as f64 / t_all.as_secs_f64()
            );
        }
    };
    if std::env::var("STEP_IN_POOL").is_ok() {
        rayon::ThreadPoolBuilder::new()
            .build()
            .expect("a rayon pool")
            .install(run);
    } else {
        run();
    }
}
