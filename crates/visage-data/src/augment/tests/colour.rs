//! Pixel-value steps: OpenCV's HSV conventions, the colour jitter (against its per-pixel
//! reference, and its probabilities) and the CHW normalisation in RGB and BGR order.

use image::Rgb;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::augment::*;

#[test]
fn chw_layout_and_normalisation() {
    let mut img = RgbImage::new(2, 1);
    img.put_pixel(0, 0, Rgb([10, 20, 30]));
    img.put_pixel(1, 0, Rgb([40, 50, 60]));
    let v = to_chw(&img, [10.0, 20.0, 30.0], [1.0, 2.0, 5.0]);
    assert_eq!(v, vec![0.0, 30.0, 0.0, 15.0, 0.0, 6.0]);
}

#[test]
fn opencv_hsv_conventions() {
    assert_eq!(rgb_to_hsv_cv([255, 0, 0]), [0, 255, 255]);
    assert_eq!(rgb_to_hsv_cv([0, 255, 0]), [60, 255, 255]);
    assert_eq!(rgb_to_hsv_cv([0, 0, 255]), [120, 255, 255]);
    assert_eq!(rgb_to_hsv_cv([0, 0, 0]), [0, 0, 0]);
    assert_eq!(rgb_to_hsv_cv([128, 128, 128]), [0, 0, 128]);
    assert_eq!(hsv_cv_to_rgb([60, 255, 255]), [0, 255, 0]);
    assert_eq!(hsv_cv_to_rgb([90, 255, 255]), [0, 255, 255]);
    // Colours where exact division and OpenCV's 12-bit fixed-point tables disagree on S
    // (`cv2.cvtColor(..., COLOR_RGB2HSV)`, OpenCV 5.0): ours is OpenCV's integer code.
    for (rgb, hsv) in [
        ([52, 104, 72], [72, 127, 104]),
        ([46, 102, 33], [54, 173, 102]),
        ([212, 185, 37], [25, 211, 212]),
        ([75, 12, 245], [128, 242, 245]),
        ([73, 189, 184], [89, 156, 189]),
        ([130, 180, 30], [40, 213, 180]),
    ] {
        assert_eq!(rgb_to_hsv_cv(rgb), hsv, "{rgb:?}");
    }
    // `cv2.cvtColor(..., COLOR_HSV2RGB)`.
    for (hsv, rgb) in [
        ([17, 200, 180], [180, 119, 39]),
        ([95, 33, 250], [218, 245, 250]),
        ([179, 255, 128], [128, 0, 4]),
        ([44, 128, 77], [59, 77, 38]),
    ] {
        assert_eq!(hsv_cv_to_rgb(hsv), rgb, "{hsv:?}");
    }
    // Round trips lose at most a few levels (8-bit H is 2 degrees; OpenCV's own 8-bit round
    // trip is off by up to 5 over all 2^24 colours).
    let mut worst = 0;
    for r in (0..256).step_by(15) {
        for g in (0..256).step_by(17) {
            for b in (0..256).step_by(13) {
                let rgb = [r as u8, g as u8, b as u8];
                let back = hsv_cv_to_rgb(rgb_to_hsv_cv(rgb));
                for c in 0..3 {
                    worst = worst.max((back[c] as i32 - rgb[c] as i32).abs());
                }
            }
        }
    }
    assert!(worst <= 5, "round trip error {worst}");
}

#[test]
fn convert_clips_and_truncates_like_numpy_uint8() {
    let mut img = RgbImage::from_raw(2, 1, vec![3, 250, 100, 0, 128, 255]).unwrap();
    crate::augment::colour::convert(&mut img, 1.0, 10.7);
    assert_eq!(img.as_raw(), &vec![13, 255, 110, 10, 138, 255]);
    crate::augment::colour::convert(&mut img, 0.5, 0.0);
    assert_eq!(img.as_raw(), &vec![6, 127, 55, 5, 69, 127]);
}

/// The one-pass table-driven distortion equals the per-pixel reference (OpenCV's HSV, the
/// saturation and hue steps, back to RGB in floating point) within one level (two after a
/// contrast step), on a colour cube.
#[test]
fn fast_distortion_matches_the_per_pixel_reference() {
    let cube: Vec<u8> = (0..32u32 * 32 * 32)
        .flat_map(|i| {
            [(i % 32) * 8 + 3, (i / 32 % 32) * 8 + 5, (i / 1024) * 8 + 1].map(|c| c as u8)
        })
        .collect();
    let image = RgbImage::from_raw(32 * 32, 32, cube).unwrap();
    let mut checked_hsv = 0;
    for seed in 0..64u64 {
        // Replays the draws of `Distortion::draw` to know the parameters.
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let contrast_first = rng.random_bool(0.5);
        let bright = rng
            .random_bool(0.5)
            .then(|| rng.random_range(-32.0..=32.0f64));
        let c_pre =
            (contrast_first && rng.random_bool(0.5)).then(|| rng.random_range(0.5..=1.5f64));
        let sat = rng.random_bool(0.5).then(|| rng.random_range(0.5..=1.5f64));
        let hue = rng.random_bool(0.5).then(|| rng.random_range(-18..=18i32));
        let c_post =
            (!contrast_first && rng.random_bool(0.5)).then(|| rng.random_range(0.5..=1.5f64));
        let store = |x: f64| x.clamp(0.0, 255.0) as u8;
        let reference = |p: [u8; 3]| {
            let mut p = p;
            if let Some(d) = bright {
                p = p.map(|v| store(v as f64 + d));
            }
            if let Some(a) = c_pre {
                p = p.map(|v| store(v as f64 * a));
            }
            if sat.is_some() || hue.is_some() {
                let mut hsv = rgb_to_hsv_cv(p);
                if let Some(a) = sat {
                    hsv[1] = store(hsv[1] as f64 * a);
                }
                if let Some(k) = hue {
                    hsv[0] = (hsv[0] as i32 + k).rem_euclid(180) as u8;
                }
                p = hsv_cv_to_rgb(hsv);
            }
            if let Some(a) = c_post {
                p = p.map(|v| store(v as f64 * a));
            }
            p
        };
        let mut out = image.clone();
        colour_jitter(&mut out, &mut ChaCha8Rng::seed_from_u64(seed));
        // One level from HSV → RGB, scaled by up to 1.5 by a later contrast step.
        let tolerance = if c_post.is_some() { 2 } else { 1 };
        for (a, b) in image.pixels().zip(out.pixels()) {
            let want = reference(a.0);
            for c in 0..3 {
                assert!(
                    (want[c] as i32 - b[c] as i32).abs() <= tolerance,
                    "seed {seed}: {a:?} -> {b:?}, reference {want:?}"
                );
            }
        }
        checked_hsv += (sat.is_some() || hue.is_some()) as usize;
    }
    assert!(checked_hsv > 20);
}

#[test]
fn colour_jitter_probabilities() {
    // Four independent coins (brightness, contrast, saturation, hue) at ½: an image is left
    // untouched 1/16 of the time.
    let image = RgbImage::from_fn(8, 8, |x, y| Rgb([(x * 30) as u8, (y * 30) as u8, 100]));
    let unchanged = (0..800)
        .filter(|&seed| {
            let mut out = image.clone();
            colour_jitter(&mut out, &mut ChaCha8Rng::seed_from_u64(seed));
            out == image
        })
        .count();
    assert!(
        (25..=80).contains(&unchanged),
        "{unchanged} of 800 (expect 50)"
    );
}

#[test]
fn bgr_normalisation_reverses_planes_and_mean_pixel() {
    let mut img = RgbImage::new(2, 1);
    img.put_pixel(0, 0, Rgb([10, 20, 30]));
    img.put_pixel(1, 0, Rgb([40, 50, 60]));
    let v = to_chw_ordered(&img, [30.0, 20.0, 10.0], [1.0, 2.0, 5.0], ChannelOrder::Bgr);
    assert_eq!(v, vec![0.0, 30.0, 0.0, 15.0, 0.0, 6.0]);
    assert_eq!(
        mean_pixel([104.0, 117.0, 123.0], ChannelOrder::Bgr),
        Rgb([123, 117, 104])
    );
    assert_eq!(
        mean_pixel([123.675, 116.28, 103.53], ChannelOrder::Rgb),
        Rgb([124, 116, 104])
    );
}
