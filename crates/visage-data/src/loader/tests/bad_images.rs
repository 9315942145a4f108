//! Bad-image tests: each kind of unreadable image named by `load_rgb_limited`, the skip mode
//! (full batches, the summary of skipped files), the error mode, and a dataset with no
//! readable image at all.

use std::path::Path;

use image::{Rgb, RgbImage};

use super::fixtures::{cfg, fixture};
use crate::error::BadImageKind;
use crate::loader::*;

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
        ("ev/trunc.jpg", BadImageKind::Truncated),
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
        "truncated: trunc.jpg",
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
