//! Loader tests on a small fixture written by the tests.

use std::path::Path;

use image::{Rgb, RgbImage};
use visage_eval::FaceAttributes;

use super::*;
use crate::dataset::SelectionPolicy;
use crate::wider_txt::{FaceAnnotation, ImageAnnotation};

/// Writes `n` PNG images (sizes vary) each with one or two "faces" and landmarks.
fn fixture(dir: &Path, n: usize) -> Dataset {
    let mut records = Vec::new();
    for i in 0..n {
        let (w, h) = (60 + 7 * i as u32, 48 + 5 * (i as u32 % 3));
        let mut img = RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x * 3 + i as u32) as u8, (y * 5) as u8, 90])
        });
        let mut faces = Vec::new();
        for k in 0..1 + i % 2 {
            let (x, y) = (5.0 + 25.0 * k as f32, 8.0 + i as f32);
            for yy in y as u32..y as u32 + 20 {
                for xx in x as u32..x as u32 + 16 {
                    img.put_pixel(xx, yy, Rgb([220, 180, 150]));
                }
            }
            let p = [
                [x + 4.0, y + 6.0],
                [x + 12.0, y + 6.0],
                [x + 8.0, y + 11.0],
                [x + 5.0, y + 15.0],
                [x + 11.0, y + 15.0],
            ];
            faces.push(FaceAnnotation {
                bbox: [x, y, 16.0, 20.0],
                attributes: FaceAttributes::default(),
                landmarks: Some(Landmarks {
                    points: p,
                    visible: [true; 5],
                }),
            });
        }
        let rel = format!("ev/img_{i}.png");
        let path = dir.join(&rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        img.save(&path).unwrap();
        records.push(ImageAnnotation { path: rel, faces });
    }
    Dataset::select(dir, records, &SelectionPolicy::default())
        .unwrap()
        .0
}

fn cfg(threads: usize) -> LoaderConfig {
    LoaderConfig {
        batch_size: 2,
        input_size: 32,
        seed: 11,
        threads,
        crop_scale: CropScale::Uniform([0.5, 1.0]),
        min_face_px: 1.0,
        ..LoaderConfig::default()
    }
}

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
}

#[test]
fn corrupt_image_is_named_and_ends_the_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let ds = fixture(dir.path(), 4);
    for i in 0..4 {
        std::fs::write(dir.path().join(format!("ev/img_{i}.png")), b"not an image").unwrap();
    }
    let loader = Loader::new(ds, cfg(2)).unwrap();
    let items: Vec<_> = loader.epoch(0).collect();
    assert_eq!(items.len(), 1);
    let e = items[0].as_ref().unwrap_err().to_string();
    assert!(e.contains("ev/img_"), "{e}");
    let e = load_rgb(&dir.path().join("nope.jpg"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope.jpg"), "{e}");
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

/// Makes images 1 (truncated JPEG), 3 (zero bytes), 4 (text named .jpg) and 6 (missing) of an
/// 11-image fixture bad, and image 8 a 200×150 PNG, over the pixel limit of 20 000 of
/// [`skip_cfg`] (the others are at most 130×58). Returns the dataset with record paths
/// pointing at the bad files.
fn bad_fixture(dir: &Path) -> Dataset {
    let mut ds = fixture(dir, 11);
    let jpeg = dir.join("ev/trunc.jpg");
    RgbImage::from_fn(64, 48, |x, y| Rgb([x as u8 * 3, y as u8 * 4, 7]))
        .save(&jpeg)
        .unwrap();
    let bytes = std::fs::read(&jpeg).unwrap();
    std::fs::write(&jpeg, &bytes[..bytes.len() / 3]).unwrap();
    RgbImage::new(200, 150)
        .save(dir.join("ev/img_8.png"))
        .unwrap();
    std::fs::write(dir.join("ev/empty.jpg"), b"").unwrap();
    std::fs::write(dir.join("ev/text.jpg"), b"this is not a JPEG\n").unwrap();
    for (i, name) in [
        (1, "trunc.jpg"),
        (3, "empty.jpg"),
        (4, "text.jpg"),
        (6, "missing.jpg"),
    ] {
        ds.records[i].path = format!("ev/{name}");
    }
    ds
}

fn skip_cfg(threads: usize) -> LoaderConfig {
    LoaderConfig {
        batch_size: 3,
        max_image_pixels: 20_000,
        ..cfg(threads)
    }
}

fn kinds(batches: &[Batch]) -> EpochSummary {
    let mut s = EpochSummary::default();
    batches.iter().for_each(|b| s.add(b));
    s
}

#[test]
fn load_rgb_limited_names_each_kind_of_bad_image() {
    let dir = tempfile::tempdir().unwrap();
    let ds = bad_fixture(dir.path());
    let d = dir.path();
    for (file, kind) in [
        ("ev/trunc.jpg", BadImageKind::Corrupt),
        ("ev/empty.jpg", BadImageKind::Empty),
        ("ev/text.jpg", BadImageKind::NotAnImage),
        ("ev/missing.jpg", BadImageKind::Missing),
        (ds.records[8].path.as_str(), BadImageKind::TooLarge),
    ] {
        match load_rgb_limited(&d.join(file), 20_000) {
            Err(DataError::BadImage { path, kind: k, .. }) => {
                assert_eq!((path, k), (d.join(file), kind), "{file}")
            }
            other => panic!("{file}: {other:?}"),
        }
    }
    let e = load_rgb_limited(&d.join(&ds.records[8].path), 20_000)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("img_8.png") && e.contains("too large") && e.contains("200×150"),
        "{e}"
    );
    assert!(load_rgb_limited(&d.join(&ds.records[7].path), 20_000).is_ok());
    assert!(load_rgb_limited(&d.join(&ds.records[8].path), 30_000).is_ok());
    // A directory is unreadable, not missing.
    let e = load_rgb_limited(&d.join("ev"), 20_000)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad image"), "{e}");
}

#[test]
fn skip_mode_keeps_batches_full_reports_and_is_thread_independent() {
    let dir = tempfile::tempdir().unwrap();
    let ds = bad_fixture(dir.path());
    let bad: Vec<usize> = vec![1, 3, 4, 6, 8];
    let one = Loader::new(ds.clone(), skip_cfg(1)).unwrap();
    let four = Loader::new(
        ds.clone(),
        LoaderConfig {
            prefetch_batches: 1,
            ..skip_cfg(4)
        },
    )
    .unwrap();
    assert_eq!(one.batches_per_epoch(), 3);
    for epoch in 0..3 {
        let a: Vec<Batch> = one.epoch(epoch).collect::<Result<_, _>>().unwrap();
        let b: Vec<Batch> = four.epoch(epoch).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            a, b,
            "epoch {epoch}: same batches whatever the threads / prefetch"
        );
        for (k, batch) in a.iter().enumerate() {
            assert_eq!(batch.len(), 3, "batches stay full");
            assert_eq!(batch.images.len(), 3 * 3 * 32 * 32);
            assert!(batch.indices.iter().all(|i| !bad.contains(i)));
            assert_eq!(*batch, one.batch(epoch, k).unwrap());
            for s in &batch.skipped {
                assert!(bad.contains(&s.index), "{s:?}");
            }
        }
        // Every bad image the epoch order put in a batch was skipped and is reported once.
        let order = one.inner.order(epoch);
        let summary = kinds(&a);
        for i in order[..9].iter().filter(|i| bad.contains(i)) {
            assert!(
                summary.skipped.contains_key(i),
                "epoch {epoch}: {i} not reported"
            );
        }
        assert_eq!(summary.batches, 3);
        assert_eq!(
            summary.faces.kept + summary.faces.dropped_by_crop + summary.faces.dropped_small,
            summary.faces.annotated
        );
    }
    // The summary line groups by reason and names files.
    let all: Vec<Batch> = (0..3)
        .flat_map(|e| one.epoch(e).collect::<Result<Vec<_>, _>>().unwrap())
        .collect();
    let line = kinds(&all).skipped_line(10).unwrap();
    assert!(line.starts_with("5 images skipped ("), "{line}");
    for part in [
        "missing: missing.jpg",
        "empty: empty.jpg",
        "not an image: text.jpg",
        "corrupt: trunc.jpg",
        "too large: img_8.png",
    ] {
        assert!(line.contains(part), "{line}");
    }
    let short = kinds(&all).skipped_line(2).unwrap();
    assert!(
        short.contains("and") || short.matches(".jpg").count() + short.matches(".png").count() == 2,
        "{short}"
    );
    assert_eq!(EpochSummary::default().skipped_line(5), None);
}

#[test]
fn error_mode_stops_with_the_file_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let ds = bad_fixture(dir.path());
    for threads in [1, 3] {
        let loader = Loader::new(
            ds.clone(),
            LoaderConfig {
                on_bad_image: OnBadImage::Error,
                ..skip_cfg(threads)
            },
        )
        .unwrap();
        let items: Vec<_> = loader.epoch(0).collect();
        let e = items.last().unwrap().as_ref().unwrap_err();
        assert!(items[..items.len() - 1].iter().all(|i| i.is_ok()));
        let DataError::BadImage { path, kind, .. } = e else {
            panic!("{e}")
        };
        let idx = ds
            .records
            .iter()
            .position(|r| ds.images_dir.join(&r.path) == *path)
            .unwrap();
        assert!([1, 3, 4, 6, 8].contains(&idx), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains(&kind.to_string()) && msg.contains("ev/"),
            "{msg}"
        );
    }
}

#[test]
fn every_image_bad_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let ds = fixture(dir.path(), 4);
    for i in 0..4 {
        std::fs::write(dir.path().join(format!("ev/img_{i}.png")), b"").unwrap();
    }
    let loader = Loader::new(ds, cfg(2)).unwrap();
    let e = loader.batch(0, 0).unwrap_err().to_string();
    assert!(
        e.contains("no readable image") && e.contains("empty"),
        "{e}"
    );
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
