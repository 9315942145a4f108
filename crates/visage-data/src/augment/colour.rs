//! Photometric distortion as Pytorch_Retinaface's `_distort` (`data/data_augment.py`) does it.
//!
//! With probability ½ each branch:
//! - A: brightness, contrast, then (in HSV) saturation and hue;
//! - B: brightness, (in HSV) saturation and hue, then contrast.
//!
//! Each step is applied with probability ½:
//! - brightness: `p + δ`, `δ ~ U(−32, 32)`, the same for the three channels;
//! - contrast: `p · α`, `α ~ U(0.5, 1.5)`;
//! - saturation: `S · α`, `α ~ U(0.5, 1.5)` on OpenCV's 8-bit HSV (S in 0..=255);
//! - hue: `H ← (H + k) mod 180`, integer `k ~ U{−18, …, 18}` on OpenCV's 8-bit hue (H in 0..180
//!   is degrees / 2), so the shift is up to ±36 degrees.
//!
//! Every step clips to [0, 255] and truncates to an integer (numpy's float → uint8 store), as
//! the original's `_convert`. Differences from the original, by design: the RGB ↔ HSV round trip
//! is skipped when neither saturation nor hue is drawn (the original always converts, losing a
//! little precision in 8 bits), and the conversions follow OpenCV's 8-bit formulas in floating
//! point, so a channel may differ from OpenCV's table-driven code by one level. The image's
//! geometry is never touched.

use image::RgbImage;
use rand::Rng;

/// numpy's `clip(x, 0, 255)` stored into a `uint8` array: truncation toward zero.
fn store(x: f64) -> u8 {
    x.clamp(0.0, 255.0) as u8
}

/// Applies `p → store(p · alpha + beta)` to every channel of every pixel.
pub(super) fn convert(image: &mut RgbImage, alpha: f64, beta: f64) {
    let lut: Vec<u8> = (0..256).map(|p| store(p as f64 * alpha + beta)).collect();
    for v in image.iter_mut() {
        *v = lut[*v as usize];
    }
}

/// OpenCV `COLOR_RGB2HSV` for 8-bit images: H in 0..180 (degrees / 2), S and V in 0..=255.
pub fn rgb_to_hsv_cv(rgb: [u8; 3]) -> [u8; 3] {
    let [r, g, b] = rgb.map(|c| c as i32);
    let v = r.max(g).max(b);
    let diff = v - r.min(g).min(b);
    let s = if v == 0 {
        0
    } else {
        (255.0 * diff as f32 / v as f32).round() as i32
    };
    let h = if diff == 0 {
        0
    } else {
        let raw = if v == r {
            (g - b) as f32
        } else if v == g {
            (b - r) as f32 + 2.0 * diff as f32
        } else {
            (r - g) as f32 + 4.0 * diff as f32
        };
        let mut h = (raw * 30.0 / diff as f32).round() as i32;
        if h < 0 {
            h += 180;
        }
        h % 180
    };
    [h as u8, s as u8, v as u8]
}

/// OpenCV `COLOR_HSV2RGB` for 8-bit images (H in 0..180).
pub fn hsv_cv_to_rgb(hsv: [u8; 3]) -> [u8; 3] {
    let (s, v) = (hsv[1] as f32 / 255.0, hsv[2] as f32 / 255.0);
    let mut h = (hsv[0] as f32 * 6.0 / 180.0) % 6.0;
    if h < 0.0 {
        h += 6.0;
    }
    let sector = h.floor();
    let f = h - sector;
    let p = v * (1.0 - s);
    let q = v * (1.0 - s * f);
    let t = v * (1.0 - s * (1.0 - f));
    let (r, g, b) = match sector as u32 {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    };
    [r, g, b].map(|c| (c * 255.0).round().clamp(0.0, 255.0) as u8)
}

/// Saturation `× sat` (if any) and hue `+ hue` (if any) through OpenCV's 8-bit HSV.
fn hsv_step(image: &mut RgbImage, sat: Option<f64>, hue: Option<i32>) {
    if sat.is_none() && hue.is_none() {
        return;
    }
    for px in image.pixels_mut() {
        let mut hsv = rgb_to_hsv_cv(px.0);
        if let Some(a) = sat {
            hsv[1] = store(hsv[1] as f64 * a);
        }
        if let Some(k) = hue {
            hsv[0] = (hsv[0] as i32 + k).rem_euclid(180) as u8;
        }
        px.0 = hsv_cv_to_rgb(hsv);
    }
}

/// Pytorch_Retinaface's `_distort` (see the module documentation), in place. The draws, in
/// order: branch, brightness coin (+ δ), then for branch A contrast coin (+ α); saturation coin
/// (+ α), hue coin (+ k); for branch B contrast coin (+ α).
pub fn colour_jitter(image: &mut RgbImage, rng: &mut impl Rng) {
    let contrast_first = rng.random_bool(0.5);
    if rng.random_bool(0.5) {
        convert(image, 1.0, rng.random_range(-32.0..=32.0));
    }
    if contrast_first && rng.random_bool(0.5) {
        convert(image, rng.random_range(0.5..=1.5), 0.0);
    }
    let sat = rng.random_bool(0.5).then(|| rng.random_range(0.5..=1.5f64));
    let hue = rng.random_bool(0.5).then(|| rng.random_range(-18..=18i32));
    hsv_step(image, sat, hue);
    if !contrast_first && rng.random_bool(0.5) {
        convert(image, rng.random_range(0.5..=1.5), 0.0);
    }
}
