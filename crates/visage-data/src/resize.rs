//! Fast separable RGB resizes: triangle (bilinear, antialiased when shrinking), nearest, area,
//! Catmull-Rom bicubic and Lanczos-3.
//!
//! Same sampling convention as `image::imageops::resize`: output pixel `i` samples source
//! position `(i + 0.5) / scale − 0.5`, and when shrinking the kernel widens to `1 / scale`
//! source pixels (triangle, bicubic, Lanczos). Area averages the source pixels under the output
//! pixel's footprint `[i / scale, (i + 1) / scale)`, weighted by overlap (OpenCV's `INTER_AREA`
//! when shrinking; a nearest-like zoom with blended seams when enlarging). Nearest takes the
//! source pixel under the output pixel's centre. Written with precomputed weight tables because
//! generic `image` code is compiled at this crate's (low) optimisation level in dev builds, where
//! it was ten times slower.

use image::RgbImage;

/// The interpolation of a resize (Pytorch_Retinaface draws one of OpenCV's five at random).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interpolation {
    /// The source pixel under the output pixel's centre (OpenCV `INTER_NEAREST`).
    Nearest,
    /// Triangle filter, antialiased when shrinking (OpenCV `INTER_LINEAR`; the default).
    #[default]
    Bilinear,
    /// Overlap-weighted box average (OpenCV `INTER_AREA`).
    Area,
    /// Catmull-Rom cubic, antialiased when shrinking (OpenCV `INTER_CUBIC` uses a = −0.75).
    Bicubic,
    /// Lanczos with 3 lobes, antialiased when shrinking (OpenCV `INTER_LANCZOS4` uses 4).
    Lanczos3,
}

impl Interpolation {
    /// Every interpolation, in Pytorch_Retinaface's draw order (linear, cubic, area, nearest,
    /// Lanczos).
    pub const ALL: [Interpolation; 5] = [
        Interpolation::Bilinear,
        Interpolation::Bicubic,
        Interpolation::Area,
        Interpolation::Nearest,
        Interpolation::Lanczos3,
    ];
}

/// Per output coordinate: first source index and normalised weights.
struct Taps {
    start: Vec<usize>,
    len: usize,
    weights: Vec<f32>,
}

fn taps(src: usize, dst: usize, interp: Interpolation) -> Taps {
    match interp {
        Interpolation::Bilinear => kernel_taps(src, dst, 1.0, triangle),
        Interpolation::Nearest => nearest_taps(src, dst),
        Interpolation::Area => area_taps(src, dst),
        Interpolation::Bicubic => kernel_taps(src, dst, 2.0, catmull_rom),
        Interpolation::Lanczos3 => kernel_taps(src, dst, 3.0, lanczos3),
    }
}

fn triangle(x: f32) -> f32 {
    (1.0 - x.abs()).max(0.0)
}

fn catmull_rom(x: f32) -> f32 {
    let a = x.abs();
    if a < 1.0 {
        (1.5 * a - 2.5) * a * a + 1.0
    } else if a < 2.0 {
        ((-0.5 * a + 2.5) * a - 4.0) * a + 2.0
    } else {
        0.0
    }
}

fn sinc(x: f32) -> f32 {
    if x.abs() < 1e-6 {
        1.0
    } else {
        let px = std::f32::consts::PI * x;
        px.sin() / px
    }
}

fn lanczos3(x: f32) -> f32 {
    if x.abs() < 3.0 {
        sinc(x) * sinc(x / 3.0)
    } else {
        0.0
    }
}

/// Taps of a symmetric kernel of `radius` source pixels, widened by `1 / scale` when shrinking.
fn kernel_taps(src: usize, dst: usize, radius: f32, kernel: fn(f32) -> f32) -> Taps {
    let scale = dst as f32 / src as f32;
    let widen = (1.0 / scale).max(1.0);
    let support = radius * widen;
    let len = (2.0 * support).ceil() as usize + 1;
    let mut start = Vec::with_capacity(dst);
    let mut weights = vec![0.0f32; dst * len];
    for i in 0..dst {
        let centre = (i as f32 + 0.5) / scale - 0.5;
        let lo = ((centre - support).ceil().max(0.0) as usize).min(src - 1);
        let w = &mut weights[i * len..(i + 1) * len];
        let mut sum = 0.0;
        for (k, wk) in w.iter_mut().enumerate() {
            let j = lo + k;
            if j >= src || j as f32 > centre + support {
                break;
            }
            *wk = kernel((j as f32 - centre) / widen);
            sum += *wk;
        }
        if sum.abs() > 1e-6 {
            w.iter_mut().for_each(|v| *v /= sum);
        } else {
            w.iter_mut().for_each(|v| *v = 0.0);
            w[0] = 1.0;
        }
        start.push(lo);
    }
    Taps {
        start,
        len,
        weights,
    }
}

fn nearest_taps(src: usize, dst: usize) -> Taps {
    let scale = dst as f64 / src as f64;
    let start = (0..dst)
        .map(|i| (((i as f64 + 0.5) / scale).floor() as usize).min(src - 1))
        .collect();
    Taps {
        start,
        len: 1,
        weights: vec![1.0; dst],
    }
}

fn area_taps(src: usize, dst: usize) -> Taps {
    let inv = src as f64 / dst as f64;
    let len = inv.ceil() as usize + 1;
    let mut start = Vec::with_capacity(dst);
    let mut weights = vec![0.0f32; dst * len];
    for i in 0..dst {
        let (a, b) = (i as f64 * inv, ((i + 1) as f64 * inv).min(src as f64));
        let lo = (a.floor() as usize).min(src - 1);
        let w = &mut weights[i * len..(i + 1) * len];
        for (k, wk) in w.iter_mut().enumerate() {
            let j = lo + k;
            if j >= src {
                break;
            }
            let overlap = (b.min(j as f64 + 1.0) - a.max(j as f64)).max(0.0);
            *wk = (overlap / (b - a)) as f32;
        }
        start.push(lo);
    }
    Taps {
        start,
        len,
        weights,
    }
}

/// Resizes `img` to `width × height` (both ≥ 1) with a triangle filter.
pub fn resize_rgb(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    resize_rgb_with(img, width, height, Interpolation::Bilinear)
}

/// Resizes `img` to `width × height` (both ≥ 1) with `interp`.
pub fn resize_rgb_with(img: &RgbImage, width: u32, height: u32, interp: Interpolation) -> RgbImage {
    let (sw, sh) = (img.width() as usize, img.height() as usize);
    let (dw, dh) = (width.max(1) as usize, height.max(1) as usize);
    if sw == 0 || sh == 0 {
        return RgbImage::new(dw as u32, dh as u32);
    }
    if (sw, sh) == (dw, dh) {
        return img.clone();
    }
    let src = img.as_raw();
    // Horizontal pass: sh rows of dw pixels, f32.
    let tx = taps(sw, dw, interp);
    let mut mid = vec![0.0f32; sh * dw * 3];
    for y in 0..sh {
        let row = &src[y * sw * 3..(y + 1) * sw * 3];
        let out = &mut mid[y * dw * 3..(y + 1) * dw * 3];
        for x in 0..dw {
            let (s0, w) = (tx.start[x], &tx.weights[x * tx.len..(x + 1) * tx.len]);
            let mut acc = [0.0f32; 3];
            for (k, &wk) in w.iter().enumerate() {
                if wk == 0.0 {
                    continue;
                }
                let p = &row[(s0 + k) * 3..(s0 + k) * 3 + 3];
                acc[0] += wk * p[0] as f32;
                acc[1] += wk * p[1] as f32;
                acc[2] += wk * p[2] as f32;
            }
            out[x * 3..x * 3 + 3].copy_from_slice(&acc);
        }
    }
    // Vertical pass: accumulate whole rows.
    let ty = taps(sh, dh, interp);
    let mut dst = vec![0u8; dw * dh * 3];
    let mut acc = vec![0.0f32; dw * 3];
    for y in 0..dh {
        acc.iter_mut().for_each(|v| *v = 0.0);
        let (s0, w) = (ty.start[y], &ty.weights[y * ty.len..(y + 1) * ty.len]);
        for (k, &wk) in w.iter().enumerate() {
            if wk == 0.0 {
                continue;
            }
            let row = &mid[(s0 + k) * dw * 3..(s0 + k + 1) * dw * 3];
            for (a, &r) in acc.iter_mut().zip(row) {
                *a += wk * r;
            }
        }
        for (d, &a) in dst[y * dw * 3..(y + 1) * dw * 3].iter_mut().zip(&acc) {
            *d = (a + 0.5).clamp(0.0, 255.0) as u8;
        }
    }
    RgbImage::from_raw(dw as u32, dh as u32, dst)
        .unwrap_or_else(|| RgbImage::new(dw as u32, dh as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::imageops::{self, FilterType};
    use image::Rgb;

    fn pattern(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([
                (x * 7 % 256) as u8,
                (y * 13 % 256) as u8,
                ((x * y) % 251) as u8,
            ])
        })
    }

    #[test]
    fn matches_image_triangle_filter() {
        for (sw, sh, dw, dh) in [
            (50, 40, 64, 64),
            (120, 90, 32, 32),
            (33, 77, 33, 20),
            (10, 10, 3, 17),
        ] {
            let img = pattern(sw, sh);
            let ours = resize_rgb(&img, dw, dh);
            let theirs = imageops::resize(&img, dw, dh, FilterType::Triangle);
            let max = ours
                .as_raw()
                .iter()
                .zip(theirs.as_raw())
                .map(|(a, b)| (*a as i32 - *b as i32).abs())
                .max()
                .unwrap();
            let mean = ours
                .as_raw()
                .iter()
                .zip(theirs.as_raw())
                .map(|(a, b)| (*a as i32 - *b as i32).abs())
                .sum::<i32>() as f32
                / ours.as_raw().len() as f32;
            assert!(
                max <= 12 && mean < 1.0,
                "{sw}x{sh}->{dw}x{dh}: max {max} mean {mean}"
            );
        }
    }

    #[test]
    fn constant_image_stays_constant() {
        let img = RgbImage::from_pixel(37, 23, Rgb([10, 200, 77]));
        for interp in Interpolation::ALL {
            let out = resize_rgb_with(&img, 64, 9, interp);
            assert!(out.pixels().all(|p| *p == Rgb([10, 200, 77])), "{interp:?}");
            assert_eq!(resize_rgb_with(&img, 37, 23, interp), img);
        }
    }

    fn diff(a: &RgbImage, b: &RgbImage) -> (i32, f32) {
        let d: Vec<i32> = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| (*x as i32 - *y as i32).abs())
            .collect();
        let max = d.iter().copied().max().unwrap();
        (max, d.iter().sum::<i32>() as f32 / d.len() as f32)
    }

    #[test]
    fn kernels_match_image_filters() {
        let sizes = [(50, 40, 64, 64), (120, 90, 32, 32), (33, 77, 33, 20)];
        for (interp, filter) in [
            (Interpolation::Bicubic, FilterType::CatmullRom),
            (Interpolation::Lanczos3, FilterType::Lanczos3),
            (Interpolation::Nearest, FilterType::Nearest),
        ] {
            for (sw, sh, dw, dh) in sizes {
                let img = pattern(sw, sh);
                let ours = resize_rgb_with(&img, dw, dh, interp);
                let theirs = imageops::resize(&img, dw, dh, filter);
                let (max, mean) = diff(&ours, &theirs);
                // Nearest may pick the neighbouring pixel where a centre falls on a seam.
                let mean_limit = if interp == Interpolation::Nearest {
                    6.0
                } else {
                    1.0
                };
                assert!(
                    mean < mean_limit,
                    "{interp:?} {sw}x{sh}->{dw}x{dh}: max {max} mean {mean}"
                );
            }
        }
    }

    #[test]
    fn area_averages_blocks_and_zooms_like_nearest() {
        let img = pattern(40, 30);
        let half = resize_rgb_with(&img, 20, 15, Interpolation::Area);
        for (x, y, p) in half.enumerate_pixels() {
            for c in 0..3 {
                let sum: u32 = (0..4)
                    .map(|k| img.get_pixel(2 * x + k % 2, 2 * y + k / 2)[c] as u32)
                    .sum();
                let mean = sum as f32 / 4.0;
                assert!((p[c] as f32 - mean).abs() <= 0.5 + 1e-3, "{x},{y}");
            }
        }
        let double = resize_rgb_with(&img, 80, 60, Interpolation::Area);
        for (x, y, p) in double.enumerate_pixels() {
            assert_eq!(*p, *img.get_pixel(x / 2, y / 2));
        }
    }
}
