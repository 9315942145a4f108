//! The photometric targets of the pixel loss: the image's own pixels cut out at anchor boxes
//! and resampled to a square crop, on the host (the targets carry no gradient).

use visage_boxes::BoxXyxy;

use crate::common::pixels::PixelNormalisation;

/// A batch of normalised input images on the host.
///
/// # Shapes
/// `pixels`: `[B, 3, H, W]` row-major, planes in the input's order.
#[derive(Debug, Clone)]
pub(crate) struct HostImages {
    pub(crate) pixels: Vec<f32>,
    pub(crate) height: usize,
    pub(crate) width: usize,
}

impl HostImages {
    /// The RGB value in [0, 1] of image `b` at the continuous position `(x, y)` (pixel
    /// centres at `i + 0.5`), bilinear, edge pixels repeated outside the image.
    fn sample(&self, b: usize, x: f32, y: f32, norm: &PixelNormalisation) -> [f32; 3] {
        let (h, w) = (self.height, self.width);
        let fx = (x - 0.5).clamp(0.0, (w - 1) as f32);
        let fy = (y - 0.5).clamp(0.0, (h - 1) as f32);
        let (x0, y0) = (fx.floor() as usize, fy.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
        let (ax, ay) = (fx - x0 as f32, fy - y0 as f32);
        let mut planes = [0.0f32; 3];
        for (c, plane) in planes.iter_mut().enumerate() {
            let base = (b * 3 + c) * h * w;
            let at = |yy: usize, xx: usize| self.pixels[base + yy * w + xx];
            let top = at(y0, x0) * (1.0 - ax) + at(y0, x1) * ax;
            let bottom = at(y1, x0) * (1.0 - ax) + at(y1, x1) * ax;
            *plane = top * (1.0 - ay) + bottom * ay;
        }
        norm.to_unit_rgb(planes)
    }

    /// The crop of image `b` inside `bbox` (xyxy input pixels) resampled to `size × size`,
    /// RGB in [0, 1], pixel-major: `[size · size, 3]` flattened (row `i · size + j`).
    pub(crate) fn crop(
        &self,
        b: usize,
        bbox: &BoxXyxy,
        size: usize,
        norm: &PixelNormalisation,
    ) -> Vec<f32> {
        let [x1, y1, x2, y2] = *bbox;
        let (sx, sy) = ((x2 - x1) / size as f32, (y2 - y1) / size as f32);
        let mut out = Vec::with_capacity(size * size * 3);
        for i in 0..size {
            for j in 0..size {
                let x = x1 + (j as f32 + 0.5) * sx;
                let y = y1 + (i as f32 + 0.5) * sy;
                out.extend(self.sample(b, x, y, norm));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIT: PixelNormalisation = PixelNormalisation {
        mean: [0.0; 3],
        std: [255.0; 3],
        bgr: false,
    };

    /// A 2-image batch, 4 × 6, whose R plane is the column index / 10, G the row / 10 and B
    /// the image index.
    fn images() -> HostImages {
        let (h, w) = (4, 6);
        let mut pixels = Vec::new();
        for b in 0..2 {
            for c in 0..3 {
                for y in 0..h {
                    for x in 0..w {
                        pixels.push(match c {
                            0 => x as f32 / 10.0,
                            1 => y as f32 / 10.0,
                            _ => b as f32,
                        });
                    }
                }
            }
        }
        HostImages {
            pixels,
            height: h,
            width: w,
        }
    }

    #[test]
    fn a_pixel_aligned_crop_copies_the_pixels() {
        let crop = images().crop(1, &[2.0, 1.0, 4.0, 3.0], 2, &UNIT);
        // Rows y = 1, 2; columns x = 2, 3.
        let expected = [
            [0.2, 0.1, 1.0],
            [0.3, 0.1, 1.0],
            [0.2, 0.2, 1.0],
            [0.3, 0.2, 1.0],
        ];
        for (got, want) in crop.chunks(3).zip(expected) {
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-6, "{crop:?}");
            }
        }
    }

    #[test]
    fn half_pixel_positions_interpolate_and_outside_repeats_the_edge() {
        // One crop pixel centred at x = 3, y = 2: between columns 2 and 3, rows 1 and 2.
        let crop = images().crop(0, &[2.5, 1.5, 3.5, 2.5], 1, &UNIT);
        assert!((crop[0] - 0.25).abs() < 1e-6 && (crop[1] - 0.15).abs() < 1e-6);
        let crop = images().crop(0, &[-10.0, -10.0, -8.0, -8.0], 1, &UNIT);
        assert_eq!(&crop[..3], &[0.0, 0.0, 0.0]);
    }
}
