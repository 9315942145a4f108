//! Times a training step (forward, loss, backward, SGD) of a config's model (any architecture) on the CPU
//! (`Flex`) with the batch split over 1, 2, … data-parallel replicas:
//! `cargo run -p visage-train --example parallel_step -- CONFIG.toml BATCH SIZE REPLICAS,.. [STEPS]`.
//! Prints the median step time of each replica count; the first step of each is a warm-up.

use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use burn::optim::{Optimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use visage_model::{FaceModel, FaceTargets, ModelSpec, TestSpec};
use visage_train::data_parallel::{parallel_gradients, shard_ranges, ShardLoss};

type Ad = Autodiff<Flex>;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let text = std::fs::read_to_string(&args[1]).expect("config file");
    let table: toml::Table = toml::from_str(&text).expect("toml");
    let spec: ModelSpec = table["model"].clone().try_into().expect("[model]");
    let batch: usize = args[2].parse().expect("batch");
    let size: usize = args[3].parse().expect("size");
    let replica_counts: Vec<usize> = args[4].split(',').map(|s| s.parse().unwrap()).collect();
    let steps: usize = args.get(5).map_or(6, |s| s.parse().unwrap());
    let device = Default::default();
    let pixels: Vec<f32> = Tensor::<Flex, 1>::random(
        [batch * 3 * size * size],
        Distribution::Normal(0.0, 1.0),
        &device,
    )
    .into_data()
    .to_vec()
    .unwrap();
    // Two faces per image, with landmarks (used by architectures that have a landmark head).
    let faces: Vec<FaceTargets> = (0..batch)
        .map(|i| {
            let boxes = vec![
                [10.0 + i as f32, 20.0, 60.0, 80.0],
                [100.0, 100.0, 160.0, 170.0],
            ];
            let landmarks = boxes
                .iter()
                .map(|b: &[f32; 4]| {
                    let (cx, cy) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
                    Some([
                        [cx - 8.0, cy - 8.0],
                        [cx + 8.0, cy - 8.0],
                        [cx, cy],
                        [cx - 6.0, cy + 10.0],
                        [cx + 6.0, cy + 10.0],
                    ])
                })
                .collect();
            FaceTargets { boxes, landmarks }
        })
        .collect();
    let per_image = 3 * size * size;
    for &replicas in &replica_counts {
        let mut det = FaceModel::<Ad>::new(&spec, &TestSpec::default(), &device).unwrap();
        let mut optim = SgdConfig::new().init();
        let mut times = Vec::new();
        for _ in 0..steps {
            let t = Instant::now();
            let shards = shard_ranges(batch, replicas)
                .into_iter()
                .map(|r| (r.clone(), r.len()))
                .collect();
            let step = parallel_gradients(&det, shards, |model: &FaceModel<Ad>, rows| {
                let n = rows.len();
                let images = Tensor::<Ad, 4>::from_data(
                    TensorData::new(
                        pixels[rows.start * per_image..rows.end * per_image].to_vec(),
                        [n, 3, size, size],
                    ),
                    &device,
                );
                let outputs = model.forward(images);
                let parts = model.loss(&outputs, &faces[rows])?;
                let values = parts.values()?;
                Ok::<_, visage_model::ModelError>(ShardLoss {
                    total: parts.total,
                    values,
                })
            })
            .unwrap();
            det = optim.step(0.001, det, step.grads);
            times.push(t.elapsed().as_secs_f64());
        }
        let mut measured = times[1..].to_vec();
        measured.sort_by(f64::total_cmp);
        let median = measured[measured.len() / 2];
        println!(
            "replicas {replicas}: median step {:.0} ms over {} steps => {:.1} img/s",
            median * 1e3,
            measured.len(),
            batch as f64 / median
        );
    }
}
