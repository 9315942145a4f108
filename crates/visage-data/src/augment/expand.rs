//! Canvas enlargements: pad to a square (Pytorch_Retinaface `_pad_to_square`) and SSD's zoom-out
//! `expand` (the image at a random offset on a larger canvas).

use image::{imageops, Rgb, RgbImage};
use rand::Rng;

use super::Sample;

/// Places `sample` at `(left, top)` on a `w × h` canvas of `fill`; boxes and landmarks shift.
fn place(sample: Sample, w: u32, h: u32, left: u32, top: u32, fill: Rgb<u8>) -> Sample {
    let mut canvas = RgbImage::from_pixel(w, h, fill);
    imageops::replace(&mut canvas, &sample.image, left as i64, top as i64);
    let (dx, dy) = (left as f32, top as f32);
    sample.remapped(canvas, |x, y| [x + dx, y + dy])
}

/// Pads the shorter side so the image becomes a `long × long` square filled with `fill`, the
/// image at the top-left (Pytorch_Retinaface's `_pad_to_square`); boxes and landmarks are
/// unchanged. A square image is returned as is.
pub fn pad_to_square(sample: Sample, fill: Rgb<u8>) -> Sample {
    let (w, h) = sample.image.dimensions();
    if w == h {
        return sample;
    }
    let long = w.max(h);
    place(sample, long, long, 0, 0, fill)
}

/// SSD's zoom-out: a ratio `r ~ U(1, max_ratio)` is drawn, the canvas is
/// `⌊r·W⌋ × ⌊r·H⌋` filled with `fill`, and the image goes at a uniformly drawn offset
/// (`left ∈ 0..=canvas W − W`, `top` likewise). Whether to expand at all (SSD: probability 0.5)
/// is the caller's draw. `max_ratio ≤ 1` returns the sample unchanged without drawing.
pub fn expand(sample: Sample, rng: &mut impl Rng, max_ratio: f32, fill: Rgb<u8>) -> Sample {
    expand_placed(sample, rng, max_ratio, fill).0
}

/// [`expand`], also returning where the image went on the canvas (`[left, top]`; `[0, 0]` when
/// not expanded).
pub(crate) fn expand_placed(
    sample: Sample,
    rng: &mut impl Rng,
    max_ratio: f32,
    fill: Rgb<u8>,
) -> (Sample, [u32; 2]) {
    if max_ratio.is_nan() || max_ratio <= 1.0 {
        return (sample, [0, 0]);
    }
    let (w, h) = sample.image.dimensions();
    let r = rng.random_range(1.0..=max_ratio);
    let cw = ((r * w as f32) as u32).max(w);
    let ch = ((r * h as f32) as u32).max(h);
    let left = rng.random_range(0..=cw - w);
    let top = rng.random_range(0..=ch - h);
    (place(sample, cw, ch, left, top, fill), [left, top])
}
