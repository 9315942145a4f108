//! Shared fixture of the loader tests: a small dataset of PNG images with one or two "faces"
//! and landmarks each, written by the tests, and the small-batch configuration they load it with.

use std::path::Path;

use image::{Rgb, RgbImage};
use visage_eval::FaceAttributes;

use crate::augment::CropScale;
use crate::dataset::{Dataset, SelectionPolicy};
use crate::label_txt::Landmarks;
use crate::loader::LoaderConfig;
use crate::wider_txt::{FaceAnnotation, ImageAnnotation};

/// Writes `n` PNG images (sizes vary) each with one or two "faces" and landmarks.
pub(super) fn fixture(dir: &Path, n: usize) -> Dataset {
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

pub(super) fn cfg(threads: usize) -> LoaderConfig {
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
