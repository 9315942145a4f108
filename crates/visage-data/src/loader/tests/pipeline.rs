//! Loader pipeline tests: batches independent of the thread count and fixed by the seed
//! (recorded hashes), every augmentation on, BGR planes, configuration validation, and the
//! prefetch queue (bounded look-ahead, early drop).

use super::fixtures::{cfg, fixture};
use crate::augment::{ChannelOrder, CropScale};
use crate::loader::*;

#[test]
fn batches_identical_across_thread_counts() {
    let dir = tempfile::tempdir().unwrap();
    let ds = fixture(dir.path(), 7);
    let one = Loader::new(ds.clone(), cfg(1)).unwrap();
    let three = Loader::new(ds, cfg(3)).unwrap();
    assert_eq!(one.batches_per_epoch(), 3);
    let a: Vec<Batch> = one.epoch(0).collect::<Result<_, _>>().unwrap();
    let b: Vec<Batch> = three.epoch(0).collect::<Result<_, _>>().unwrap();
    assert_eq!(a.len(), 3);
    assert_eq!(a, b);
    assert_eq!(a[1], three.batch(0, 1).unwrap());
    let mut seen: Vec<usize> = a.iter().flat_map(|x| x.indices.clone()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 6, "an epoch visits distinct images");
    for batch in &a {
        assert_eq!((batch.size, batch.len()), (32, 2));
        assert_eq!(batch.images.len(), 2 * 3 * 32 * 32);
        assert!(batch.images.iter().all(|v| v.is_finite()));
        for t in &batch.targets {
            assert_eq!(t.boxes.len(), t.landmarks.len());
            for b in &t.boxes {
                assert!(
                    b[0] >= 0.0
                        && b[1] >= 0.0
                        && b[2] <= 32.0
                        && b[3] <= 32.0
                        && b[0] < b[2]
                        && b[1] < b[3],
                    "{b:?}"
                );
            }
        }
    }
    assert!(a
        .iter()
        .any(|x| x.targets.iter().any(|t| !t.boxes.is_empty())));
    let next: Vec<Batch> = one.epoch(1).collect::<Result<_, _>>().unwrap();
    assert_ne!(a, next, "a new epoch reshuffles and re-augments");
    // A run resumed mid-epoch gets the rest of the epoch, batch for batch.
    let rest: Vec<Batch> = three.epoch_from(0, 1).collect::<Result<_, _>>().unwrap();
    assert_eq!(rest, a[1..]);
    assert_eq!(one.epoch_from(0, 3).count(), 0);
    assert_eq!(one.epoch_from(0, 7).count(), 0, "past the end: nothing");
}

#[test]
fn early_drop_and_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    let ds = fixture(dir.path(), 8);
    let loader = Loader::new(
        ds.clone(),
        LoaderConfig {
            batch_size: 1,
            ..cfg(2)
        },
    )
    .unwrap();
    let mut it = loader.epoch(3);
    assert!(it.next().unwrap().is_ok());
    drop(it);
    let bad = Loader::new(
        ds,
        LoaderConfig {
            crop_scale: CropScale::Uniform([0.0, 1.0]),
            ..cfg(1)
        },
    );
    let e = bad.err().expect("rejected").to_string();
    assert!(e.contains("`crop_scale`"), "{e}");
}

/// FNV-1a over the batch's pixels, boxes and landmarks (bit patterns).
fn batch_hash(batches: &[Batch]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut eat = |v: u32| {
        for b in v.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
    };
    for batch in batches {
        batch.images.iter().for_each(|v| eat(v.to_bits()));
        for t in &batch.targets {
            t.boxes.iter().flatten().for_each(|v| eat(v.to_bits()));
            for lm in t.landmarks.iter().flatten() {
                lm.points.iter().flatten().for_each(|v| eat(v.to_bits()));
                lm.visible.iter().for_each(|v| eat(*v as u32));
            }
        }
        batch.indices.iter().for_each(|i| eat(*i as u32));
    }
    h
}

/// The default pipeline (every optional augmentation off) produces exactly the batches it
/// produced before (hashes recorded when the loader moved to in-place crops, SIMD resizes and
/// the flip folded into the plane writes: the same bytes as the commit before that change).
#[test]
fn default_pipeline_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let ds = fixture(dir.path(), 9);
    let loader = Loader::new(
        ds,
        LoaderConfig {
            batch_size: 3,
            input_size: 40,
            seed: 5,
            threads: 2,
            min_face_px: 1.0,
            ..LoaderConfig::default()
        },
    )
    .unwrap();
    let mut hashes = Vec::new();
    for epoch in 0..3 {
        let a: Vec<Batch> = loader.epoch(epoch).collect::<Result<_, _>>().unwrap();
        hashes.push(batch_hash(&a));
    }
    assert_eq!(
        hashes,
        vec![
            0x7120_4488_a5fc_9cef,
            0x6bcb_eec0_cea9_a016,
            0x8a78_1dfb_4891_09e9
        ]
    );
}

fn all_on(threads: usize) -> LoaderConfig {
    LoaderConfig {
        crop_scale: CropScale::Choices(CropScale::RETINAFACE.to_vec()),
        pad_to_square: true,
        expand_max_ratio: 2.0,
        expand_prob: 0.5,
        colour_jitter: true,
        random_interpolation: true,
        channel_order: ChannelOrder::Bgr,
        mean: [104.0, 117.0, 123.0],
        std: [1.0; 3],
        ..cfg(threads)
    }
}

#[test]
fn every_augmentation_on_is_deterministic_and_valid() {
    let dir = tempfile::tempdir().unwrap();
    let ds = fixture(dir.path(), 7);
    let one = Loader::new(ds.clone(), all_on(1)).unwrap();
    let three = Loader::new(ds.clone(), all_on(3)).unwrap();
    let a: Vec<Batch> = one.epoch(0).collect::<Result<_, _>>().unwrap();
    let b: Vec<Batch> = three.epoch(0).collect::<Result<_, _>>().unwrap();
    assert_eq!(a, b, "same batches whatever the thread count");
    let plain = Loader::new(ds, cfg(1)).unwrap();
    let c: Vec<Batch> = plain.epoch(0).collect::<Result<_, _>>().unwrap();
    assert_ne!(batch_hash(&a), batch_hash(&c));
    for batch in &a {
        assert!(batch.images.iter().all(|v| v.is_finite()));
        for t in &batch.targets {
            for b in &t.boxes {
                assert!(
                    b[0] >= 0.0 && b[1] >= 0.0 && b[2] <= 32.0 && b[3] <= 32.0,
                    "{b:?}"
                );
            }
        }
    }
}

#[test]
fn bgr_planes_are_swapped() {
    let dir = tempfile::tempdir().unwrap();
    let ds = fixture(dir.path(), 4);
    let rgb = Loader::new(ds.clone(), cfg(1))
        .unwrap()
        .batch(0, 0)
        .unwrap();
    let bgr = Loader::new(
        ds,
        LoaderConfig {
            channel_order: ChannelOrder::Bgr,
            mean: [0.0; 3],
            std: [1.0; 3],
            ..cfg(1)
        },
    )
    .unwrap()
    .batch(0, 0)
    .unwrap();
    let plain = Loader::new(
        fixture(tempfile::tempdir().unwrap().path(), 4),
        LoaderConfig {
            mean: [0.0; 3],
            std: [1.0; 3],
            ..cfg(1)
        },
    )
    .unwrap()
    .batch(0, 0)
    .unwrap();
    assert_eq!(
        rgb.targets, bgr.targets,
        "geometry does not depend on the order"
    );
    let p = 32 * 32;
    for i in 0..bgr.len() {
        let (x, y) = (&plain.images[i * 3 * p..], &bgr.images[i * 3 * p..]);
        assert_eq!(&x[..p], &y[2 * p..3 * p], "R plane is last in BGR");
        assert_eq!(&x[p..2 * p], &y[p..2 * p]);
        assert_eq!(&x[2 * p..3 * p], &y[..p], "B plane is first in BGR");
    }
}

#[test]
fn new_keys_are_validated_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let ds = fixture(dir.path(), 2);
    for (cfg, key) in [
        (
            LoaderConfig {
                crop_scale: CropScale::Choices(vec![]),
                ..cfg(1)
            },
            "`crop_scale.choices`",
        ),
        (
            LoaderConfig {
                crop_scale: CropScale::Choices(vec![0.5, 1.2]),
                ..cfg(1)
            },
            "`crop_scale.choices`",
        ),
        (
            LoaderConfig {
                expand_max_ratio: 0.5,
                ..cfg(1)
            },
            "`expand_max_ratio`",
        ),
        (
            LoaderConfig {
                expand_prob: 1.5,
                ..cfg(1)
            },
            "`expand_prob`",
        ),
    ] {
        let e = Loader::new(ds.clone(), cfg)
            .err()
            .expect("rejected")
            .to_string();
        assert!(e.contains(key), "{e}");
    }
}

#[test]
fn prefetch_prepares_ahead_while_the_consumer_holds_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let ds = fixture(dir.path(), 10);
    for depth in [1, 3] {
        let loader = Loader::new(
            ds.clone(),
            LoaderConfig {
                batch_size: 1,
                prefetch_batches: depth,
                ..cfg(2)
            },
        )
        .unwrap();
        let mut it = loader.epoch(0);
        let first = it.next().unwrap().unwrap();
        // While `first` is held: `depth` batches wait in the channel, one more is made.
        let t = std::time::Instant::now();
        while it.prepared() < depth + 2 && t.elapsed().as_secs() < 20 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(it.prepared(), depth + 2, "depth {depth}");
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(it.prepared(), depth + 2, "bounded: depth {depth}");
        let rest: Vec<Batch> = it.collect::<Result<_, _>>().unwrap();
        assert_eq!(rest.len(), 9);
        assert_eq!(first, loader.batch(0, 0).unwrap());
        assert_eq!(rest[4], loader.batch(0, 5).unwrap(), "order is kept");
    }
}

/// Pytorch_Retinaface's order: the distortion is applied to the crop (here the whole image,
/// when no crop keeps a face) before `_pad_to_square`, so the padding keeps the mean colour,
/// i.e. normalises to exactly zero.
#[test]
fn colour_jitter_leaves_the_square_padding_at_the_mean() {
    let dir = tempfile::tempdir().unwrap();
    let ds = fixture(dir.path(), 8);
    let loader = Loader::new(
        ds,
        LoaderConfig {
            // Crops of one pixel almost never hold a face centre: mostly the padded fallback.
            crop_scale: CropScale::Choices(vec![0.01]),
            pad_to_square: true,
            colour_jitter: true,
            channel_order: ChannelOrder::Bgr,
            mean: [104.0, 117.0, 123.0],
            std: [1.0; 3],
            ..cfg(2)
        },
    )
    .unwrap();
    let s = 32;
    let (mut padded, mut samples) = (0, 0);
    for epoch in 0..4 {
        for batch in loader.epoch(epoch) {
            let batch = batch.unwrap();
            for img in batch.images.chunks_exact(3 * s * s) {
                samples += 1;
                // The fixture's images are wider than tall: the bottom rows are padding.
                let last_rows_zero = img
                    .chunks_exact(s * s)
                    .all(|plane| plane[s * (s - 2)..].iter().all(|v| *v == 0.0));
                padded += last_rows_zero as usize;
            }
        }
    }
    assert!(padded * 4 >= samples * 3, "{padded} of {samples}");
}
