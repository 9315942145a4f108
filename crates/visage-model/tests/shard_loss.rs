//! The loss of a batch split into shards weighs back into the loss of the whole batch
//! exactly (`FaceLoss::shard_total`, what data-parallel training sums the gradients of), for
//! every family: a batch of three images against its one-image shards, each shard's parts
//! divided by the batch's counts. On the inner backend (batch norm from its running
//! statistics), so an image's outputs do not depend on the other images of its batch.
//!
//! The dense 3D branch is left out: its pixel loss renders at most `max_faces` positives of
//! a batch, chosen over the whole batch, so a shard renders others than the batch does.

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::Distribution;
use visage_model::{DetectorFamily, FaceLoss, FaceTargets, PixelNormalisation, WithFamily};

/// Three 64 × 64 images' faces: two, none, one (landmarks on two).
fn faces() -> Vec<FaceTargets> {
    let marks = |x: f32, y: f32| {
        Some([
            [x + 4.0, y + 5.0],
            [x + 12.0, y + 5.0],
            [x + 8.0, y + 9.0],
            [x + 5.0, y + 13.0],
            [x + 11.0, y + 13.0],
        ])
    };
    vec![
        FaceTargets {
            boxes: vec![[10.0, 12.0, 30.0, 36.0], [40.0, 8.0, 56.0, 28.0]],
            landmarks: vec![marks(12.0, 14.0), None],
        },
        FaceTargets::default(),
        FaceTargets {
            boxes: vec![[4.0, 4.0, 60.0, 60.0]],
            landmarks: vec![marks(20.0, 20.0)],
        },
    ]
}

struct ShardsSumToTheBatch {
    name: &'static str,
}

fn read(t: &Tensor<Flex, 1>) -> f32 {
    t.clone().into_scalar()
}

impl WithFamily<Flex> for ShardsSumToTheBatch {
    type Output = ();

    fn run<M: DetectorFamily<Flex>>(self, spec: &M::Spec) {
        let name = self.name;
        let device = Default::default();
        Flex::seed(&device, 3);
        let model = M::new(spec, &device)
            .unwrap()
            .with_input_normalisation(PixelNormalisation {
                mean: [0.0; 3],
                std: [1.0; 3],
                bgr: false,
            });
        let images =
            Tensor::<Flex, 4>::random([3, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
        let faces = faces();
        let batch: FaceLoss<Flex> = model.loss(&model.forward(images.clone()), &faces).unwrap();
        let shards: Vec<FaceLoss<Flex>> = (0..3)
            .map(|i| {
                let image = images.clone().narrow(0, i, 1);
                model.loss(&model.forward(image), &faces[i..i + 1]).unwrap()
            })
            .collect();
        // The batch's counts are the shards' counts summed.
        let counts: Vec<usize> = (0..batch.parts.len())
            .map(|p| shards.iter().map(|s| s.counts()[p]).sum())
            .collect();
        assert_eq!(counts, batch.counts(), "{name}");
        assert!(batch.num_positive > 0, "{name}");
        let summed: f32 = shards.iter().map(|s| read(&s.shard_total(&counts))).sum();
        let want = read(&batch.total);
        assert!(
            (summed - want).abs() <= 1e-5 * want.abs().max(1.0),
            "{name}: shards {summed} vs batch {want}"
        );
        // Part by part: each shard's part times its divisor over the batch's.
        for (p, (part, want)) in batch.parts.iter().enumerate() {
            let normaliser = batch.terms[p].normaliser;
            let summed: f32 = shards
                .iter()
                .map(|s| read(&s.parts[p].1) * s.terms[p].normaliser.divisor())
                .sum::<f32>()
                / normaliser.divisor();
            let want = read(want);
            assert!(
                (summed - want).abs() <= 1e-5 * want.abs().max(1.0),
                "{name}: part {part}: shards {summed} vs batch {want}"
            );
        }
        // With its own counts, a shard's share is its total.
        let own = read(&shards[0].shard_total(&shards[0].counts()));
        let total = read(&shards[0].total);
        assert!((own - total).abs() <= 1e-6 * total.abs().max(1.0), "{name}");
    }
}

#[test]
fn every_family_splits_its_loss_over_shards_exactly() {
    for (name, spec) in visage_model::tiny::every_family() {
        if name == "retinaface-mesh" {
            continue;
        }
        spec.with_family::<Flex, _>(ShardsSumToTheBatch { name });
    }
}
