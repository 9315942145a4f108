//! Truncated-image tests: JPEGs encoded by the `image` crate and cut inside their scan data
//! (which its decoder turns into grey pixels without an error), bytes after EOI, an EXIF
//! thumbnail with its own EOI, a progressive JPEG, a cut PNG, and a cut JPEG in a training
//! set (skipped and counted, or the error that stops the epoch).

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};

use super::fixtures::{cfg, fixture};
use crate::error::BadImageKind;
use crate::loader::*;

/// A textured image (JPEG-encoded it fills its scan data with varied codes). The progressive
/// fixture is this texture at 48 × 32.
fn texture(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let v = (x * 7 + y * 13) ^ (x * y);
        Rgb([(x * 5) as u8, (y * 3) as u8 ^ (v as u8), (v * 3) as u8])
    })
}

/// The bytes of `image` saved as a baseline JPEG by the `image` crate (quality 75).
fn jpeg_bytes(dir: &Path, image: &RgbImage) -> Vec<u8> {
    let path = dir.join("encoded.jpg");
    image.save(&path).unwrap();
    std::fs::read(&path).unwrap()
}

/// Writes `bytes` to `dir/name` and returns the path.
fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The kind and message of the error `load_rgb_limited` gives for `path`.
fn refusal(path: &Path) -> (BadImageKind, String) {
    match load_rgb_limited(path, u64::MAX) {
        Err(e @ DataError::BadImage { kind, .. }) => (kind, e.to_string()),
        other => panic!("{}: {other:?}", path.display()),
    }
}

/// The progressive JPEG fixture (48 × 32, ten scans, 1959 bytes): [`texture`] saved by the
/// `image` crate (which writes baseline JPEGs only), then losslessly transcoded with
/// libjpeg-turbo's `jpegtran -progressive -copy none`.
const PROGRESSIVE: &[u8] = include_bytes!("progressive_48x32.jpg");

#[test]
fn jpeg_cut_in_its_scan_data_is_truncated_not_grey() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = jpeg_bytes(dir.path(), &texture(160, 120));
    assert!(bytes.len() > 10_000, "{} bytes", bytes.len());
    for cut in [
        bytes.len() / 9,
        bytes.len() / 2,
        bytes.len() - 2,
        bytes.len() - 1,
    ] {
        // The decoder alone accepts the cut file: this is what the check is for.
        assert!(image::load_from_memory(&bytes[..cut]).is_ok(), "cut {cut}");
        let path = write(dir.path(), "cut.jpg", &bytes[..cut]);
        let (kind, msg) = refusal(&path);
        assert_eq!(kind, BadImageKind::Truncated, "cut {cut}: {msg}");
        assert!(
            msg.contains("cut.jpg")
                && msg.contains("bad image (truncated)")
                && msg.contains("end-of-image marker"),
            "{msg}"
        );
        let e = load_rgb(&path).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
    }
    let (_, msg) = refusal(&write(dir.path(), "cut.jpg", &bytes[..bytes.len() / 9]));
    assert!(msg.contains("entropy-coded data of scan 1"), "{msg}");
}

#[test]
fn bytes_after_eoi_are_fine() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = jpeg_bytes(dir.path(), &texture(64, 40));
    let whole = load_rgb(&write(dir.path(), "whole.jpg", &bytes)).unwrap();
    let mut padded = bytes.clone();
    padded.extend([0u8; 100]);
    padded.extend([0xFF, 0xD8, 0xFF, 0xE1, 0x00]);
    let read = load_rgb_limited(&write(dir.path(), "padded.jpg", &padded), 64 * 40).unwrap();
    assert_eq!(read, whole);
}

/// `main` with an APP1 segment holding `Exif\0\0` and a whole JPEG (a thumbnail, with its
/// own SOI and EOI) inserted after its SOI.
fn with_exif_thumbnail(main: &[u8], thumbnail: &[u8]) -> Vec<u8> {
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend(thumbnail);
    let mut out = main[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend((payload.len() as u16 + 2).to_be_bytes());
    out.extend(payload);
    out.extend(&main[2..]);
    out
}

#[test]
fn an_exif_thumbnail_does_not_hide_a_cut() {
    let dir = tempfile::tempdir().unwrap();
    let main = jpeg_bytes(dir.path(), &texture(160, 120));
    let thumbnail = jpeg_bytes(dir.path(), &texture(16, 12));
    let bytes = with_exif_thumbnail(&main, &thumbnail);
    let read = load_rgb(&write(dir.path(), "exif.jpg", &bytes)).unwrap();
    assert_eq!(read.dimensions(), (160, 120));
    let cut = &bytes[..bytes.len() / 2];
    // The thumbnail's end-of-image marker is in the cut file.
    assert!(cut.windows(2).any(|w| w == [0xFF, 0xD9]));
    let (kind, msg) = refusal(&write(dir.path(), "exif_cut.jpg", cut));
    assert_eq!(kind, BadImageKind::Truncated, "{msg}");
}

#[test]
fn progressive_jpeg_decodes_and_its_cuts_are_truncated() {
    let dir = tempfile::tempdir().unwrap();
    // SOF2 (progressive) and several scans.
    assert!(PROGRESSIVE.windows(2).any(|w| w == [0xFF, 0xC2]));
    let scans: Vec<usize> = PROGRESSIVE
        .windows(2)
        .enumerate()
        .filter(|(_, w)| *w == [0xFF, 0xDA])
        .map(|(i, _)| i)
        .collect();
    assert!(scans.len() >= 5, "{scans:?}");
    let read = load_rgb(&write(dir.path(), "prog.jpg", PROGRESSIVE)).unwrap();
    let expected = texture(48, 32);
    let error: f64 = read
        .as_raw()
        .iter()
        .zip(expected.as_raw())
        .map(|(&a, &b)| (a as f64 - b as f64).abs())
        .sum::<f64>()
        / expected.as_raw().len() as f64;
    assert!(error < 40.0, "mean |error| {error}");
    // Cut inside the third scan, halfway and just before EOI: the decoder alone gives an
    // image each time. A cut in the tables before the second scan, which the decoder refuses
    // itself, is reported as truncated too.
    for cut in [
        scans[2] + 20,
        PROGRESSIVE.len() / 2,
        PROGRESSIVE.len() - 1,
        scans[1] - 10,
    ] {
        let decoded = image::load_from_memory(&PROGRESSIVE[..cut]);
        assert_eq!(decoded.is_ok(), cut > scans[2], "cut {cut}");
        let path = write(dir.path(), "prog_cut.jpg", &PROGRESSIVE[..cut]);
        let (kind, msg) = refusal(&path);
        assert_eq!(kind, BadImageKind::Truncated, "cut {cut}: {msg}");
    }
}

#[test]
fn png_cut_short_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("whole.png");
    texture(160, 120).save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    // Half the file, and everything but the last chunk (IEND, 12 bytes).
    for cut in [bytes.len() / 2, bytes.len() - 12] {
        let (kind, msg) = refusal(&write(dir.path(), "cut.png", &bytes[..cut]));
        assert_eq!(kind, BadImageKind::Truncated, "cut {cut}: {msg}");
        assert!(
            msg.contains("cut.png") && msg.contains("ends before"),
            "{msg}"
        );
    }
}

/// A 6-image fixture whose image 2 is a JPEG cut in its scan data.
fn fixture_with_cut_jpeg(dir: &Path) -> Dataset {
    let mut ds = fixture(dir, 6);
    let bytes = jpeg_bytes(dir, &texture(80, 60));
    write(dir, "ev/cut.jpg", &bytes[..bytes.len() / 2]);
    ds.records[2].path = "ev/cut.jpg".into();
    ds
}

#[test]
fn truncated_jpeg_in_the_training_set_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let ds = fixture_with_cut_jpeg(dir.path());
    let loader = Loader::new(ds.clone(), cfg(2)).unwrap();
    let mut summary = EpochSummary::default();
    for epoch in 0..2 {
        for batch in loader.epoch(epoch) {
            let batch = batch.unwrap();
            assert_eq!(batch.len(), 2, "batches stay full");
            assert!(!batch.indices.contains(&2));
            summary.add(&batch);
        }
    }
    let skipped = &summary.skipped[&2];
    assert_eq!(skipped.kind, BadImageKind::Truncated);
    let line = summary.skipped_line(5).unwrap();
    assert!(line.contains("truncated: cut.jpg"), "{line}");

    let strict = Loader::new(
        ds,
        LoaderConfig {
            on_bad_image: OnBadImage::Error,
            ..cfg(2)
        },
    )
    .unwrap();
    let items: Vec<_> = (0..2).flat_map(|e| strict.epoch(e)).collect();
    let e = items
        .iter()
        .find_map(|i| i.as_ref().err())
        .expect("the cut image stops an epoch");
    assert!(
        matches!(
            e,
            DataError::BadImage {
                kind: BadImageKind::Truncated,
                ..
            }
        ),
        "{e}"
    );
}
