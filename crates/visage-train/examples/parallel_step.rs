//! Times a training step (forward, loss, backward, SGD) of a config's model (any architecture) on the CPU
//! (`Flex`) with the batch split over 1, 2, … CPU devices (data-parallel peers, as
//! `[train] devices = ["cpu", "cpu"]`):
//! `cargo run -p visage-train --example parallel_step -- CONFIG.toml BATCH SIZE DEVICES,.. [STEPS]`.
//! Prints the median step time of each device count; the first step of each is a warm-up.

use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use burn::optim::SgdConfig;
use burn::prelude::*;
use burn::tensor::Distribution;
use visage_data::{Batch, FaceStats, Landmarks, Target};
use visage_model::{ModelSpec, TrainableFamily, WithTrainableFamily};
use visage_train::distributed::{PeerGroup, Topology};
use visage_train::step::TrainStep;

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
    let targets: Vec<Target> = (0..batch)
        .map(|i| {
            let boxes = vec![
                [10.0 + i as f32, 20.0, 60.0, 80.0],
                [100.0, 100.0, 160.0, 170.0],
            ];
            let landmarks = boxes
                .iter()
                .map(|b: &[f32; 4]| {
                    let (cx, cy) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
                    Some(Landmarks {
                        points: [
                            [cx - 8.0, cy - 8.0],
                            [cx + 8.0, cy - 8.0],
                            [cx, cy],
                            [cx - 6.0, cy + 10.0],
                            [cx + 6.0, cy + 10.0],
                        ],
                        visible: [true; 5],
                    })
                })
                .collect();
            Target { boxes, landmarks }
        })
        .collect();
    let batch = Batch {
        images: pixels,
        size,
        indices: (0..batch).collect(),
        targets,
        skipped: Vec::new(),
        faces: FaceStats::default(),
    };
    for &replicas in &replica_counts {
        spec.with_trainable_family::<Ad, _>(Timing {
            batch: &batch,
            replicas,
            steps,
        });
    }
}

/// Times `steps` training steps of one family with the batch over `replicas` CPU devices.
struct Timing<'a> {
    batch: &'a Batch,
    replicas: usize,
    steps: usize,
}

impl WithTrainableFamily<Ad> for Timing<'_> {
    type Output = ();

    fn run<M: TrainableFamily<Ad>>(self, spec: &M::Spec) {
        let device = Default::default();
        let mut model = M::new(spec, &device).unwrap();
        let optimizer = SgdConfig::new().init::<Ad, M>();
        let mut step = if self.replicas == 1 {
            TrainStep::new(optimizer, &device)
        } else {
            let topology = Topology {
                local_devices: self.replicas,
                ..Topology::default()
            };
            let peers = PeerGroup::register(&topology, vec![device; self.replicas]).unwrap();
            TrainStep::parallel(optimizer, peers)
        };
        let mut times = Vec::new();
        for _ in 0..self.steps {
            let t = Instant::now();
            let (updated, _) = step.run(model, self.batch.clone(), 0.001).unwrap();
            model = updated;
            times.push(t.elapsed().as_secs_f64());
        }
        let mut measured = times[1..].to_vec();
        measured.sort_by(f64::total_cmp);
        let median = measured[measured.len() / 2];
        let images = self.batch.targets.len();
        println!(
            "devices {}: median step {:.0} ms over {} steps => {:.1} img/s",
            self.replicas,
            median * 1e3,
            measured.len(),
            images as f64 / median
        );
    }
}
