//! Fast RGB resizes: triangle (bilinear, antialiased when shrinking), nearest, area, Catmull-Rom
//! bicubic and Lanczos-3, on `fast_image_resize`'s SIMD fixed-point convolutions (AVX2 / SSE4.1 /
//! NEON, chosen at run time; compiled optimised even in dev builds, where this crate is not).
//!
//! Same sampling convention as `image::imageops::resize`: output pixel `i` samples source
//! position `(i + 0.5) / scale − 0.5`, and when shrinking the kernel widens to `1 / scale`
//! source pixels (triangle, bicubic, Lanczos, area). Area is the box filter: it averages the
//! source pixels under the output pixel's footprint `[i / scale, (i + 1) / scale)`, weighted by
//! overlap, when shrinking (OpenCV's `INTER_AREA`), and takes the nearest pixel when enlarging.
//! Nearest takes the source pixel under the output pixel's centre. Each worker thread keeps one
//! resizer and its buffers.

use std::cell::RefCell;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
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
    /// Overlap-weighted box average when shrinking (OpenCV `INTER_AREA`), nearest when
    /// enlarging.
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

    fn algorithm(self) -> ResizeAlg {
        match self {
            Interpolation::Nearest => ResizeAlg::Nearest,
            Interpolation::Bilinear => ResizeAlg::Convolution(FilterType::Bilinear),
            Interpolation::Area => ResizeAlg::Convolution(FilterType::Box),
            Interpolation::Bicubic => ResizeAlg::Convolution(FilterType::CatmullRom),
            Interpolation::Lanczos3 => ResizeAlg::Convolution(FilterType::Lanczos3),
        }
    }
}

thread_local! {
    static RESIZER: RefCell<Resizer> = RefCell::new(Resizer::new());
}

/// Resizes the `[x, y, w, h]` rectangle of `src` (inside it, `w, h ≥ 1`) to `dw × dh` packed
/// RGB pixels in `dst` (`dw · dh · 3` bytes, `dw, dh ≥ 1`).
pub(crate) fn resize_region_into(
    src: &RgbImage,
    region: [u32; 4],
    dst: &mut [u8],
    (dw, dh): (u32, u32),
    interp: Interpolation,
) {
    let [x, y, w, h] = region;
    assert!(
        w >= 1 && h >= 1 && x + w <= src.width() && y + h <= src.height(),
        "resize region {region:?} outside a {}x{} image",
        src.width(),
        src.height()
    );
    let row = dw as usize * 3;
    assert_eq!(dst.len(), row * dh as usize, "resize destination size");
    if (w, h) == (dw, dh) {
        let stride = src.width() as usize * 3;
        for (k, out) in dst.chunks_exact_mut(row).enumerate() {
            let start = (y as usize + k) * stride + x as usize * 3;
            out.copy_from_slice(&src.as_raw()[start..start + row]);
        }
        return;
    }
    // Both constructors only fail on a short buffer (checked above) or misalignment (none for
    // U8x3); the resize only fails on mismatched pixel types (both U8x3).
    let src_view = ImageRef::new(src.width(), src.height(), src.as_raw(), PixelType::U8x3)
        .expect("source buffer matches its size");
    let mut dst_view =
        Image::from_slice_u8(dw, dh, dst, PixelType::U8x3).expect("destination buffer size");
    let options = ResizeOptions::new()
        .resize_alg(interp.algorithm())
        .crop(x as f64, y as f64, w as f64, h as f64);
    RESIZER
        .with_borrow_mut(|r| r.resize(&src_view, &mut dst_view, &options))
        .expect("U8x3 to U8x3 resize");
}

/// Resizes `img` to `width × height` (both ≥ 1) with a triangle filter.
pub fn resize_rgb(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    resize_rgb_with(img, width, height, Interpolation::Bilinear)
}

/// Resizes `img` to `width × height` (both ≥ 1) with `interp`.
pub fn resize_rgb_with(img: &RgbImage, width: u32, height: u32, interp: Interpolation) -> RgbImage {
    let (dw, dh) = (width.max(1), height.max(1));
    if img.width() == 0 || img.height() == 0 {
        return RgbImage::new(dw, dh);
    }
    if img.dimensions() == (dw, dh) {
        return img.clone();
    }
    let mut out = vec![0u8; dw as usize * dh as usize * 3];
    resize_region_into(
        img,
        [0, 0, img.width(), img.height()],
        &mut out,
        (dw, dh),
        interp,
    );
    RgbImage::from_raw(dw, dh, out).unwrap_or_else(|| RgbImage::new(dw, dh))
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
                // The two passes round to 8 bits in between: within one level of the mean.
                assert!((p[c] as f32 - mean).abs() <= 1.0, "{x},{y}");
            }
        }
        let double = resize_rgb_with(&img, 80, 60, Interpolation::Area);
        for (x, y, p) in double.enumerate_pixels() {
            assert_eq!(*p, *img.get_pixel(x / 2, y / 2));
        }
    }
}
