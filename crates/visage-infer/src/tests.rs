//! Tests of the predictor on a tiny RetinaNet: batching, test-time augmentation, files in
//! order with bad ones reported (unreadable, truncated, over the pixel limit), and a WIDER
//! split evaluated end to end.

use burn::backend::Flex;
use image::RgbImage;
use visage_data::ChannelOrder;
use visage_model::{DetectorFamily, RetinaNet, TestSpec, TtaSpec};

use super::*;

type B = Flex;

fn tiny_model() -> RetinaNet<B> {
    RetinaNet::new(&visage_model::tiny::retinanet(), &Default::default()).unwrap()
}

fn norm(std: f32) -> InputNorm {
    InputNorm {
        mean: [0.0; 3],
        std: [std; 3],
        order: ChannelOrder::Rgb,
    }
}

fn textured(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([
            (x * 7 % 251) as u8,
            (y * 13 % 241) as u8,
            ((x ^ y) % 200) as u8,
        ])
    })
}

fn predictor(model: &RetinaNet<B>, test: TestSpec, std: f32) -> Predictor<'_, B, RetinaNet<B>> {
    Predictor::new(model, test, norm(std), &Default::default()).unwrap()
}

#[test]
fn a_batch_gives_each_image_its_own_detections() {
    let test = TestSpec {
        score_threshold: 0.0,
        ..Default::default()
    };
    let model = tiny_model();
    let image = |seed: u8| {
        RgbImage::from_fn(40, 32, |x, y| {
            image::Rgb([(x as u8).wrapping_mul(seed), (y as u8) ^ seed, seed])
        })
    };
    let prepared: Vec<PreparedPass> = [3u8, 7]
        .iter()
        .map(|&s| prepare_passes(&image(s), &norm(255.0), &test).remove(0))
        .collect();
    let single: Vec<Vec<visage_model::Detection>> = prepared
        .iter()
        .map(|p| {
            detect_batch(&model, vec![p.clone()], &test, &Default::default())
                .0
                .remove(0)
        })
        .collect();
    let (batched, timing) = detect_batch(&model, prepared, &test, &Default::default());
    assert!(timing.forward_s > 0.0 && timing.postprocess_s > 0.0);
    assert_eq!(batched.len(), 2);
    assert_ne!(
        single[0], single[1],
        "different images, different detections"
    );
    for (b, s) in batched.iter().zip(&single) {
        assert_eq!(b.len(), s.len());
        for (x, y) in b.iter().zip(s) {
            assert!((x.score - y.score).abs() < 1e-5);
            assert!(x.bbox.iter().zip(y.bbox).all(|(u, v)| (u - v).abs() < 1e-3));
        }
    }
}

#[test]
fn one_unmirrored_pass_at_scale_one_equals_no_tta() {
    let base = TestSpec {
        score_threshold: 0.0,
        nms_threshold: 0.3,
        max_detections: 40,
        ..Default::default()
    };
    let image = textured(96, 64);
    let model = tiny_model();
    let run = |test: &TestSpec| predictor(&model, test.clone(), 255.0).detect_image(&image);
    let plain = run(&base);
    assert!(!plain.is_empty() && plain.len() <= 40, "{}", plain.len());
    let single = TestSpec {
        tta: Some(TtaSpec {
            scales: vec![1.0],
            flip: false,
        }),
        ..base.clone()
    };
    assert_eq!(run(&single), plain);
}

#[test]
fn tta_merges_passes_into_the_original_frame() {
    let test = TestSpec {
        score_threshold: 0.0,
        nms_threshold: 0.4,
        max_detections: 50,
        tta: Some(TtaSpec {
            scales: vec![1.0, 0.5, 1.5],
            flip: true,
        }),
        ..Default::default()
    };
    let model = tiny_model();
    let image = textured(96, 64);
    let passes = prepare_passes(&image, &norm(255.0), &test);
    assert_eq!(passes.len(), 6);
    let dets = predictor(&model, test, 255.0).detect_image(&image);
    assert!(!dets.is_empty() && dets.len() <= 50, "{}", dets.len());
    assert!(dets.windows(2).all(|w| w[0].score >= w[1].score));
    for d in &dets {
        let [x1, y1, x2, y2] = d.bbox;
        assert!(0.0 <= x1 && x1 < x2 && x2 <= 96.0 + 1e-3, "{:?}", d.bbox);
        assert!(0.0 <= y1 && y1 < y2 && y2 <= 64.0 + 1e-3, "{:?}", d.bbox);
    }
    // After the merge no two kept boxes overlap by more than the NMS threshold.
    for (i, a) in dets.iter().enumerate() {
        for b in &dets[i + 1..] {
            assert!(visage_boxes::iou(&a.bbox, &b.bbox) <= 0.4 + 1e-6);
        }
    }
}

#[test]
fn files_come_back_in_order_batched_by_size_with_bad_ones_reported() {
    let dir = tempfile::tempdir().unwrap();
    let sizes = [(48, 32), (32, 32), (48, 32), (40, 24), (48, 32)];
    let mut paths = Vec::new();
    for (i, &(w, h)) in sizes.iter().enumerate() {
        let path = dir.path().join(format!("img_{i}.png"));
        textured(w + i as u32 % 2, h).save(&path).unwrap();
        paths.push(path);
        if i == 2 {
            let bad = dir.path().join("broken.jpg");
            std::fs::write(&bad, b"not an image").unwrap();
            paths.push(bad);
        }
    }
    let test = TestSpec {
        score_threshold: 0.0,
        max_detections: 10,
        ..Default::default()
    };
    let model = tiny_model();
    for batch_size in [1, 3, 8] {
        let predictor = predictor(&model, test.clone(), 255.0).with_batch_size(batch_size);
        let mut seen = Vec::new();
        let stats = predictor
            .run(paths.clone(), |d| -> Result<(), String> {
                match &d.image {
                    Ok(image) => {
                        assert_eq!(d.detections, predictor.detect_image(image));
                        assert!(!d.detections.is_empty() && d.detections.len() <= 10);
                    }
                    Err(e) => {
                        assert!(e.to_string().contains("broken.jpg"), "{e}");
                        assert!(d.detections.is_empty());
                    }
                }
                seen.push((d.index, d.path.clone()));
                Ok(())
            })
            .unwrap();
        let expected: Vec<(usize, std::path::PathBuf)> =
            paths.iter().cloned().enumerate().collect();
        assert_eq!(seen, expected, "batch size {batch_size}");
        assert_eq!((stats.images, stats.failures), (5, 1));
    }
    // The callback's error stops the run.
    let err = predictor(&model, test, 255.0)
        .run(paths, |d| if d.index == 1 { Err("stop") } else { Ok(()) })
        .unwrap_err();
    assert_eq!(err, "stop");
}

#[test]
fn a_synthetic_val_split_is_detected_written_and_scored() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("synth");
    visage_data::generate(
        &root,
        &visage_data::SynthConfig {
            seed: 3,
            train_images: 1,
            val_images: 3,
            ..visage_data::SynthConfig::default()
        },
    )
    .unwrap();
    let model = tiny_model();
    let test = TestSpec {
        score_threshold: 0.0,
        max_detections: 20,
        ..Default::default()
    };
    let predictor = predictor(&model, test, 58.0).with_batch_size(2);
    let out = dir.path().join("submission");
    let mut ticks = Vec::new();
    let (report, stats) = evaluate_split(
        &predictor,
        &root,
        visage_data::layout::Split::Val,
        Some(&out),
        |done, total| ticks.push((done, total)),
    )
    .unwrap();
    assert_eq!(ticks, vec![(1, 3), (2, 3), (3, 3)]);
    assert_eq!((stats.images, stats.failures), (3, 0));
    for ap in [report.easy.ap, report.medium.ap, report.hard.ap] {
        assert!((0.0..=1.0).contains(&ap), "{ap}");
    }
    let written = walk(&out);
    assert_eq!(written.len(), 3, "{written:?}");
    // Re-scoring the written submission gives the same numbers (to its decimals).
    let gt =
        visage_eval::GroundTruth::read_dir(&visage_data::layout::ground_truth_dir(&root)).unwrap();
    let read = visage_eval::read_submission(&out, &gt).unwrap();
    let again = visage_eval::evaluate(&gt, &read.predictions);
    assert!((again.easy.ap - report.easy.ap).abs() < 1e-9);
    // Images over the pixel limit stop the split with an error naming the file and the limit.
    let small = predictor.with_max_image_pixels(100);
    let e = evaluate_split(
        &small,
        &root,
        visage_data::layout::Split::Val,
        None,
        |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains(".jpg") && e.contains("too large") && e.contains("max_image_pixels = 100"),
        "{e}"
    );
}

#[test]
fn images_over_the_pixel_limit_or_truncated_are_refused_and_the_others_run() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.png");
    // Grey and flat: a few hundred bytes on disk for 1.2 megapixels.
    image::GrayImage::new(1200, 1000).save(&big).unwrap();
    assert!(std::fs::metadata(&big).unwrap().len() < 10_000);
    let jpeg = dir.path().join("whole.jpg");
    textured(160, 120).save(&jpeg).unwrap();
    let bytes = std::fs::read(&jpeg).unwrap();
    let cut = dir.path().join("cut.jpg");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let small = dir.path().join("small.png");
    textured(48, 32).save(&small).unwrap();
    let paths = vec![small.clone(), big.clone(), cut.clone(), jpeg.clone()];
    let test = TestSpec {
        score_threshold: 0.0,
        max_detections: 5,
        ..Default::default()
    };
    let model = tiny_model();
    let limited = predictor(&model, test, 255.0)
        .with_batch_size(2)
        .with_max_image_pixels(1_000_000);
    let mut errors = Vec::new();
    let stats = limited
        .run(paths, |d| -> Result<(), String> {
            match d.image {
                Ok(_) => assert!(!d.detections.is_empty(), "{}", d.path.display()),
                Err(e) => {
                    assert!(d.detections.is_empty());
                    errors.push((d.path, e.to_string()));
                }
            }
            Ok(())
        })
        .unwrap();
    assert_eq!((stats.images, stats.failures), (2, 2));
    assert_eq!(errors[0].0, big);
    assert!(
        errors[0].1.contains("big.png")
            && errors[0].1.contains("1200×1000")
            && errors[0].1.contains("max_image_pixels = 1000000"),
        "{}",
        errors[0].1
    );
    assert_eq!(errors[1].0, cut);
    assert!(errors[1].1.contains("truncated"), "{}", errors[1].1);
    // The default limit (50 megapixels) lets the 1.2-megapixel image through.
    let stats = predictor(&model, TestSpec::default(), 255.0)
        .run(vec![big], |_| -> Result<(), String> { Ok(()) })
        .unwrap();
    assert_eq!((stats.images, stats.failures), (1, 0));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
