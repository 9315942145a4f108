//! A fast separable triangle-filter (bilinear, antialiased when shrinking) RGB resize.
//!
//! Same sampling convention as `image::imageops::resize` with `FilterType::Triangle`: output
//! pixel `i` samples source position `(i + 0.5) / scale − 0.5`, and when shrinking the kernel
//! widens to `1 / scale` source pixels. Written with precomputed weight tables because generic
//! `image` code is compiled at this crate's (low) optimisation level in dev builds, where it
//! was ten times slower.

use image::RgbImage;

/// Per output coordinate: first source index and normalised weights.
struct Taps {
    start: Vec<usize>,
    len: usize,
    weights: Vec<f32>,
}

fn taps(src: usize, dst: usize) -> Taps {
    let scale = dst as f32 / src as f32;
    let support = (1.0 / scale).max(1.0);
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
            if j >= src {
                break;
            }
            *wk = (1.0 - ((j as f32 - centre) / support).abs()).max(0.0);
            sum += *wk;
        }
        if sum > 0.0 {
            w.iter_mut().for_each(|v| *v /= sum);
        } else {
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

/// Resizes `img` to `width × height` (both ≥ 1) with a triangle filter.
pub fn resize_rgb(img: &RgbImage, width: u32, height: u32) -> RgbImage {
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
    let tx = taps(sw, dw);
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
    let ty = taps(sh, dh);
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
        let out = resize_rgb(&img, 64, 9);
        assert!(out.pixels().all(|p| *p == Rgb([10, 200, 77])));
        assert_eq!(resize_rgb(&img, 37, 23), img);
    }
}
