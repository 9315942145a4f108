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
//! the original's `_convert`. The distortion is pointwise, so where in the pipeline it runs does
//! not change the pixels it produces, only what it costs: the loader applies it after the crop,
//! to the crop only, as Pytorch_Retinaface's `preproc` does.
//!
//! How it is computed (one pass over the pixels, all in 8-bit integers):
//! - brightness and contrast are 256-entry tables; consecutive ones are composed into one table
//!   (exact: each step is a function of the 8-bit value);
//! - RGB → HSV is OpenCV's own 8-bit fixed-point code (`RGB2HSV_b`: the `sdiv` / `hdiv` tables
//!   with a 12-bit shift), so H, S and V are bit-exact with `cv2.cvtColor`;
//! - saturation and hue are tables over S and H;
//! - HSV → RGB multiplies V by a per-(H, S) factor for each channel, tabulated once from OpenCV's
//!   floating-point `HSV2RGB` formula (15-bit fixed point), so a channel may differ from
//!   OpenCV's by one level where the exact value lies on a rounding boundary.
//!
//! Differences from the original, by design: the RGB ↔ HSV round trip is skipped when neither
//! saturation nor hue is drawn (the original always converts, losing a little precision in 8
//! bits). The image's geometry is never touched.

use std::sync::OnceLock;

use image::RgbImage;
use rand::Rng;

/// numpy's `clip(x, 0, 255)` stored into a `uint8` array: truncation toward zero.
fn store(x: f64) -> u8 {
    x.clamp(0.0, 255.0) as u8
}

/// The table of `p → store(p · alpha + beta)`.
fn affine_lut(alpha: f64, beta: f64) -> [u8; 256] {
    std::array::from_fn(|p| store(p as f64 * alpha + beta))
}

/// Applies `p → store(p · alpha + beta)` to every channel of every pixel.
#[cfg(test)]
pub(super) fn convert(image: &mut RgbImage, alpha: f64, beta: f64) {
    let lut = affine_lut(alpha, beta);
    for v in image.iter_mut() {
        *v = lut[*v as usize];
    }
}

/// OpenCV's `hsv_shift`.
const HSV_SHIFT: u32 = 12;

/// OpenCV's `sdiv_table` and `hdiv_table180` (`color_hsv.simd.hpp`): `round(255·2¹² / i)` and
/// `round(180·2¹² / (6 i))`, 0 at 0 (rounding half to even, as `cvRound`).
fn hsv_div_tables() -> &'static ([i32; 256], [i32; 256]) {
    static T: OnceLock<([i32; 256], [i32; 256])> = OnceLock::new();
    T.get_or_init(|| {
        let mut sdiv = [0i32; 256];
        let mut hdiv = [0i32; 256];
        for i in 1..256 {
            sdiv[i] = ((255u32 << HSV_SHIFT) as f64 / i as f64).round_ties_even() as i32;
            hdiv[i] = ((180u32 << HSV_SHIFT) as f64 / (6.0 * i as f64)).round_ties_even() as i32;
        }
        (sdiv, hdiv)
    })
}

/// OpenCV's 8-bit RGB → HSV on one pixel with the division tables.
#[inline(always)]
fn hsv_of(r: i32, g: i32, b: i32, sdiv: &[i32; 256], hdiv: &[i32; 256]) -> (usize, usize, i32) {
    let v = r.max(g).max(b);
    let diff = v - r.min(g).min(b);
    let half = 1 << (HSV_SHIFT - 1);
    let s = (diff * sdiv[v as usize & 255] + half) >> HSV_SHIFT;
    let raw = if v == r {
        g - b
    } else if v == g {
        b - r + 2 * diff
    } else {
        r - g + 4 * diff
    };
    let mut h = (raw * hdiv[diff as usize & 255] + half) >> HSV_SHIFT;
    if h < 0 {
        h += 180;
    }
    (h as usize, s as usize, v)
}

/// OpenCV `COLOR_RGB2HSV` for 8-bit images: H in 0..180 (degrees / 2), S and V in 0..=255.
/// Bit-exact with OpenCV's fixed-point code.
pub fn rgb_to_hsv_cv(rgb: [u8; 3]) -> [u8; 3] {
    let (sdiv, hdiv) = hsv_div_tables();
    let [r, g, b] = rgb.map(|c| c as i32);
    let (h, s, v) = hsv_of(r, g, b, sdiv, hdiv);
    [h as u8, s as u8, v as u8]
}

/// The RGB multipliers of OpenCV's `HSV2RGB` for (H, S): `[r, g, b] = V · f`, each factor in
/// [0, 1].
fn hsv_factors(h: u8, s: u8) -> [f32; 3] {
    let s = s as f32 / 255.0;
    let mut h = (h as f32 * 6.0 / 180.0) % 6.0;
    if h < 0.0 {
        h += 6.0;
    }
    let sector = h.floor();
    let f = h - sector;
    let p = 1.0 - s;
    let q = 1.0 - s * f;
    let t = 1.0 - s * (1.0 - f);
    match sector as u32 {
        0 => [1.0, t, p],
        1 => [q, 1.0, p],
        2 => [p, 1.0, t],
        3 => [p, q, 1.0],
        4 => [t, p, 1.0],
        _ => [1.0, p, q],
    }
}

/// OpenCV `COLOR_HSV2RGB` for 8-bit images (H in 0..180), in floating point.
pub fn hsv_cv_to_rgb(hsv: [u8; 3]) -> [u8; 3] {
    let v = hsv[2] as f32 / 255.0;
    hsv_factors(hsv[0], hsv[1]).map(|f| (v * f * 255.0).round().clamp(0.0, 255.0) as u8)
}

/// Fixed-point bits of [`hsv_to_rgb_table`].
const RGB_SHIFT: u32 = 15;

/// [`hsv_factors`] for every (H < 180, S) in 15-bit fixed point, indexed `H · 256 + S`.
fn hsv_to_rgb_table() -> &'static [[u16; 3]] {
    static T: OnceLock<Vec<[u16; 3]>> = OnceLock::new();
    T.get_or_init(|| {
        (0..180 * 256)
            .map(|i| {
                hsv_factors((i / 256) as u8, (i % 256) as u8)
                    .map(|f| (f * (1 << RGB_SHIFT) as f32).round() as u16)
            })
            .collect()
    })
}

/// The drawn parameters of one [`colour_jitter`]: the steps to apply, as tables.
#[derive(Debug, Clone)]
pub(crate) struct Distortion {
    /// Brightness / contrast before the HSV step (composed), if any.
    pre: Option<[u8; 256]>,
    /// Saturation table over S, if drawn.
    sat: Option<[u8; 256]>,
    /// Hue table over H (0..180), if drawn.
    hue: Option<[u8; 256]>,
    /// Contrast after the HSV step (branch B), if any.
    post: Option<[u8; 256]>,
}

fn compose(a: Option<[u8; 256]>, b: Option<[u8; 256]>) -> Option<[u8; 256]> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.map(|v| b[v as usize])),
        (a, None) => a,
        (None, b) => b,
    }
}

impl Distortion {
    /// Draws the parameters, in Pytorch_Retinaface's order: branch, brightness coin (+ δ), then
    /// for branch A contrast coin (+ α); saturation coin (+ α), hue coin (+ k); for branch B
    /// contrast coin (+ α).
    pub(crate) fn draw(rng: &mut impl Rng) -> Distortion {
        let contrast_first = rng.random_bool(0.5);
        let bright = rng
            .random_bool(0.5)
            .then(|| affine_lut(1.0, rng.random_range(-32.0..=32.0)));
        fn contrast(rng: &mut impl Rng) -> Option<[u8; 256]> {
            rng.random_bool(0.5)
                .then(|| affine_lut(rng.random_range(0.5..=1.5), 0.0))
        }
        let mut pre = bright;
        if contrast_first {
            pre = compose(pre, contrast(rng));
        }
        let sat = rng.random_bool(0.5).then(|| {
            let a = rng.random_range(0.5..=1.5f64);
            std::array::from_fn(|s| store(s as f64 * a))
        });
        let hue = rng.random_bool(0.5).then(|| {
            let k = rng.random_range(-18..=18i32);
            std::array::from_fn(|h| (h as i32 + k).rem_euclid(180) as u8)
        });
        let post = if contrast_first { None } else { contrast(rng) };
        if sat.is_none() && hue.is_none() {
            // No HSV round trip: the whole distortion is one table.
            return Distortion {
                pre: compose(pre, post),
                sat,
                hue,
                post: None,
            };
        }
        Distortion {
            pre,
            sat,
            hue,
            post,
        }
    }

    /// Whether the distortion leaves every pixel as it is.
    pub(crate) fn is_identity(&self) -> bool {
        self.pre.is_none() && self.sat.is_none() && self.hue.is_none() && self.post.is_none()
    }

    /// Applies the distortion, in place, to the `w × h` rectangle at `(x, y)` of `image`
    /// (clipped to the image).
    pub(crate) fn apply_rect(&self, image: &mut RgbImage, x: u32, y: u32, w: u32, h: u32) {
        if self.is_identity() {
            return;
        }
        let (iw, ih) = image.dimensions();
        let (x0, y0) = (x.min(iw) as usize, y.min(ih) as usize);
        let (x1, y1) = (
            (x as u64 + w as u64).min(iw as u64) as usize,
            (y as u64 + h as u64).min(ih as u64) as usize,
        );
        if x0 >= x1 || y0 >= y1 {
            return;
        }
        let stride = iw as usize * 3;
        for row in image.chunks_exact_mut(stride).take(y1).skip(y0) {
            self.apply_pixels(&mut row[x0 * 3..x1 * 3]);
        }
    }

    /// Applies the distortion to packed RGB pixels.
    fn apply_pixels(&self, px: &mut [u8]) {
        if self.sat.is_none() && self.hue.is_none() {
            if let Some(lut) = &self.pre {
                px.iter_mut().for_each(|v| *v = lut[*v as usize]);
            }
            return;
        }
        let (sdiv, hdiv) = hsv_div_tables();
        let table = hsv_to_rgb_table();
        let identity: [u8; 256] = std::array::from_fn(|i| i as u8);
        let pre = self.pre.as_ref().unwrap_or(&identity);
        let sat = self.sat.as_ref().unwrap_or(&identity);
        let hue = self.hue.as_ref().unwrap_or(&identity);
        let post = self.post.as_ref().unwrap_or(&identity);
        let round = 1u32 << (RGB_SHIFT - 1);
        for p in px.chunks_exact_mut(3) {
            let (r, g, b) = (
                pre[p[0] as usize] as i32,
                pre[p[1] as usize] as i32,
                pre[p[2] as usize] as i32,
            );
            let (h, s, v) = hsv_of(r, g, b, sdiv, hdiv);
            let f = table[hue[h & 255] as usize * 256 + sat[s & 255] as usize];
            let v = v as u32;
            p[0] = post[((v * f[0] as u32 + round) >> RGB_SHIFT) as usize & 255];
            p[1] = post[((v * f[1] as u32 + round) >> RGB_SHIFT) as usize & 255];
            p[2] = post[((v * f[2] as u32 + round) >> RGB_SHIFT) as usize & 255];
        }
    }
}

/// Pytorch_Retinaface's `_distort` (see the module documentation), in place on the whole image.
/// The draws, in order: branch, brightness coin (+ δ), then for branch A contrast coin (+ α);
/// saturation coin (+ α), hue coin (+ k); for branch B contrast coin (+ α).
pub fn colour_jitter(image: &mut RgbImage, rng: &mut impl Rng) {
    let (w, h) = image.dimensions();
    Distortion::draw(rng).apply_rect(image, 0, 0, w, h);
}
