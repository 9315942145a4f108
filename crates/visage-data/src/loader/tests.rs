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
        crop_scale: [0.5, 1.0],
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
            crop_scale: [0.0, 1.0],
            ..cfg(1)
        },
    );
    let e = bad.err().expect("rejected").to_string();
    assert!(e.contains("`crop_scale`"), "{e}");
}
