//! Training augmentation: random square crop, horizontal flip, square resize, CHW tensor layout.
//!
//! Coordinates are continuous pixels: pixel `(i, j)` covers `[i, i+1) × [j, j+1)`, so a crop
//! at `(x0, y0)` subtracts `(x0, y0)`, a flip maps `x → W − x`, and a resize multiplies by the
//! size ratio. Boxes are `[x1, y1, x2, y2]` in pixels of the sample's own image.

use image::imageops;
use image::RgbImage;
use rand::Rng;

use crate::label_txt::Landmarks;
use crate::resize::resize_rgb;

/// An image with its faces. `boxes[i]` and `landmarks[i]` describe the same face.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The RGB image.
    pub image: RgbImage,
    /// Face boxes `[x1, y1, x2, y2]`, pixels of `image`.
    pub boxes: Vec<[f32; 4]>,
    /// Landmarks per face (pixels of `image`), `None` when the face has none.
    pub landmarks: Vec<Option<Landmarks>>,
}

/// How many random crops are tried before falling back to a crop around a face.
const CROP_TRIES: usize = 8;

/// Crops the `side × side` square at `(x0, y0)` (inside the image) and keeps the faces whose
/// centre lies inside it, clipped to it. Landmarks are shifted; those now outside the crop are
/// marked not visible.
fn crop_at(sample: &Sample, x0: u32, y0: u32, side: u32) -> Sample {
    let (fx, fy, s) = (x0 as f32, y0 as f32, side as f32);
    let mut boxes = Vec::new();
    let mut landmarks = Vec::new();
    for (b, lm) in sample.boxes.iter().zip(&sample.landmarks) {
        let (cx, cy) = ((b[0] + b[2]) * 0.5 - fx, (b[1] + b[3]) * 0.5 - fy);
        if !(cx >= 0.0 && cx < s && cy >= 0.0 && cy < s) {
            continue;
        }
        boxes.push([
            (b[0] - fx).clamp(0.0, s),
            (b[1] - fy).clamp(0.0, s),
            (b[2] - fx).clamp(0.0, s),
            (b[3] - fy).clamp(0.0, s),
        ]);
        landmarks.push(lm.map(|mut l| {
            for k in 0..5 {
                l.points[k] = [l.points[k][0] - fx, l.points[k][1] - fy];
                let [px, py] = l.points[k];
                if !(0.0..s).contains(&px) || !(0.0..s).contains(&py) {
                    l.visible[k] = false;
                }
            }
            l
        }));
    }
    Sample {
        image: imageops::crop_imm(&sample.image, x0, y0, side, side).to_image(),
        boxes,
        landmarks,
    }
}

/// Random square crop (FAN / RetinaFace style).
///
/// The side is `U(scale[0], scale[1]) × short edge` (clamped to the short edge, at least 1 px),
/// the position uniform. Faces whose centre is inside are kept and clipped. When the sample has
/// faces but a crop keeps none, up to a few more crops are drawn; then the fallback is a crop of
/// side = short edge placed to contain a randomly chosen face's centre. The output is square.
pub fn random_square_crop(sample: Sample, rng: &mut impl Rng, scale: [f32; 2]) -> Sample {
    let (w, h) = sample.image.dimensions();
    let short = w.min(h);
    if short == 0 {
        return sample;
    }
    let (lo, hi) = (scale[0].min(scale[1]), scale[0].max(scale[1]));
    for _ in 0..CROP_TRIES {
        let f = if hi > lo {
            rng.random_range(lo..=hi)
        } else {
            lo
        };
        let side = ((f * short as f32).round() as u32).clamp(1, short);
        let x0 = rng.random_range(0..=w - side);
        let y0 = rng.random_range(0..=h - side);
        let out = crop_at(&sample, x0, y0, side);
        if !out.boxes.is_empty() || sample.boxes.is_empty() {
            return out;
        }
    }
    // Fallback: the largest square, positioned over the centre of one face.
    let b = sample.boxes[rng.random_range(0..sample.boxes.len())];
    let (cx, cy) = ((b[0] + b[2]) * 0.5, (b[1] + b[3]) * 0.5);
    let range = |c: f32, extent: u32| {
        let max0 = extent - short;
        let lo = ((c - short as f32).floor() + 1.0).clamp(0.0, max0 as f32) as u32;
        let hi = (c.floor().max(0.0) as u32).min(max0);
        (lo.min(hi), hi)
    };
    let (xl, xh) = range(cx, w);
    let (yl, yh) = range(cy, h);
    let x0 = rng.random_range(xl..=xh);
    let y0 = rng.random_range(yl..=yh);
    crop_at(&sample, x0, y0, short)
}

/// Mirrors the image left-right; boxes and landmarks follow (`x → W − x`), and the left/right
/// eye and left/right mouth corner are swapped so that index 0 stays the image-left eye.
pub fn horizontal_flip(sample: Sample) -> Sample {
    let w = sample.image.width() as f32;
    let boxes = sample
        .boxes
        .iter()
        .map(|b| [w - b[2], b[1], w - b[0], b[3]])
        .collect();
    let landmarks = sample
        .landmarks
        .iter()
        .map(|lm| {
            lm.map(|l| {
                let order = [1, 0, 2, 4, 3];
                let mut out = l;
                for (dst, &src) in order.iter().enumerate() {
                    out.points[dst] = [w - l.points[src][0], l.points[src][1]];
                    out.visible[dst] = l.visible[src];
                }
                out
            })
        })
        .collect();
    Sample {
        image: imageops::flip_horizontal(&sample.image),
        boxes,
        landmarks,
    }
}

/// Resizes to `size × size` with a triangle (bilinear) filter ([`resize_rgb`]); boxes and landmarks are scaled
/// per axis. A non-square input is stretched.
pub fn resize_square(sample: Sample, size: u32) -> Sample {
    let (w, h) = sample.image.dimensions();
    if w == size && h == size {
        return sample;
    }
    let (sx, sy) = (size as f32 / w.max(1) as f32, size as f32 / h.max(1) as f32);
    let image = resize_rgb(&sample.image, size, size);
    let boxes = sample
        .boxes
        .iter()
        .map(|b| [b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy])
        .collect();
    let landmarks = sample
        .landmarks
        .iter()
        .map(|lm| {
            lm.map(|mut l| {
                for p in &mut l.points {
                    *p = [p[0] * sx, p[1] * sy];
                }
                l
            })
        })
        .collect();
    Sample {
        image,
        boxes,
        landmarks,
    }
}

/// The image as a `[3, H, W]` row-major `f32` array in RGB order: `(pixel − mean[c]) / std[c]`
/// with pixels in 0..255.
pub fn to_chw(image: &RgbImage, mean: [f32; 3], std: [f32; 3]) -> Vec<f32> {
    let (w, h) = image.dimensions();
    let plane = (w * h) as usize;
    let mut out = vec![0.0f32; 3 * plane];
    let inv = [1.0 / std[0], 1.0 / std[1], 1.0 / std[2]];
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (((px, r), g), b) in image.as_raw().chunks_exact(3).zip(r).zip(g).zip(b) {
        *r = (px[0] as f32 - mean[0]) * inv[0];
        *g = (px[1] as f32 - mean[1]) * inv[1];
        *b = (px[2] as f32 - mean[2]) * inv[2];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const RED: Rgb<u8> = Rgb([250, 0, 0]);
    const BLUE: Rgb<u8> = Rgb([0, 0, 250]);

    /// A 200×140 grey image with one face; its five landmarks carry 7×7 marker squares, the
    /// left eye red and every other point blue.
    fn marked_sample() -> Sample {
        let mut image = RgbImage::from_pixel(200, 140, Rgb([128, 128, 128]));
        let points = [
            [80.5, 60.5],
            [110.5, 60.5],
            [95.5, 75.5],
            [84.5, 90.5],
            [106.5, 90.5],
        ];
        for (k, p) in points.iter().enumerate() {
            let colour = if k == 0 { RED } else { BLUE };
            for dy in -3i32..=3 {
                for dx in -3i32..=3 {
                    image.put_pixel((p[0] as i32 + dx) as u32, (p[1] as i32 + dy) as u32, colour);
                }
            }
        }
        Sample {
            image,
            boxes: vec![[70.0, 45.0, 121.0, 100.0]],
            landmarks: vec![Some(Landmarks {
                points,
                visible: [true; 5],
            })],
        }
    }

    fn colour_at(s: &Sample, p: [f32; 2]) -> Rgb<u8> {
        *s.image.get_pixel(p[0].floor() as u32, p[1].floor() as u32)
    }

    /// Checks the marker colour under every visible landmark; returns how many were checked.
    fn assert_markers(s: &Sample, red_index: usize) -> usize {
        let lm = s.landmarks[0].expect("landmarks kept");
        let mut checked = 0;
        for k in 0..5 {
            if !lm.visible[k] {
                continue;
            }
            checked += 1;
            let c = colour_at(s, lm.points[k]);
            if k == red_index {
                assert!(c[0] > 200 && c[2] < 50, "point {k} should be red, is {c:?}");
            } else {
                assert!(
                    c[2] > 200 && c[0] < 50,
                    "point {k} should be blue, is {c:?}"
                );
            }
        }
        checked
    }

    #[test]
    fn markers_follow_crop_flip_resize() {
        let mut checked = 0;
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let s = random_square_crop(marked_sample(), &mut rng, [0.5, 1.0]);
            assert_eq!(s.image.width(), s.image.height());
            assert_eq!(s.boxes.len(), 1, "the only face must survive (fallback)");
            let n = assert_markers(&s, 0);
            let s = horizontal_flip(s);
            // The red marker (originally the left eye) is now on the right: index 1.
            assert_eq!(assert_markers(&s, 1), n);
            let lm = s.landmarks[0].unwrap();
            assert!(
                lm.points[0][0] < lm.points[1][0],
                "left eye is left after flip"
            );
            let s = resize_square(s, 96);
            assert_eq!(s.image.dimensions(), (96, 96));
            assert_eq!(assert_markers(&s, 1), n);
            checked += n;
        }
        assert!(
            checked >= 60,
            "too few visible landmarks checked: {checked}"
        );
    }

    #[test]
    fn flip_mirrors_boxes_and_swaps_eyes() {
        let s = horizontal_flip(marked_sample());
        assert_eq!(s.boxes[0], [200.0 - 121.0, 45.0, 200.0 - 70.0, 100.0]);
        let lm = s.landmarks[0].unwrap();
        assert_eq!(lm.points[0], [200.0 - 110.5, 60.5]);
        assert_eq!(lm.points[1], [200.0 - 80.5, 60.5]);
        assert_eq!(lm.points[3], [200.0 - 106.5, 90.5]);
        assert_eq!(lm.points[2], [200.0 - 95.5, 75.5]);
        let twice = horizontal_flip(s);
        assert_eq!(twice.boxes, marked_sample().boxes);
        assert_eq!(twice.landmarks, marked_sample().landmarks);
        assert_eq!(twice.image, marked_sample().image);
    }

    #[test]
    fn crop_keeps_centre_inside_and_clips() {
        let mut s = marked_sample();
        s.boxes.push([0.0, 0.0, 20.0, 20.0]);
        s.landmarks.push(None);
        let out = crop_at(&s, 60, 10, 100);
        assert_eq!(out.boxes, vec![[10.0, 35.0, 61.0, 90.0]]);
        let out = crop_at(&s, 5, 5, 100);
        assert_eq!(out.boxes.len(), 2);
        assert_eq!(out.boxes[0], [65.0, 40.0, 100.0, 95.0]);
        assert_eq!(out.boxes[1], [0.0, 0.0, 15.0, 15.0]);
        assert_eq!(out.landmarks[1], None);
    }

    #[test]
    fn crop_without_faces_is_square() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let s = Sample {
            image: RgbImage::new(50, 30),
            boxes: vec![],
            landmarks: vec![],
        };
        let out = random_square_crop(s, &mut rng, [0.3, 1.0]);
        let (w, h) = out.image.dimensions();
        assert!(w == h && (9..=30).contains(&w), "{w}x{h}");
    }

    #[test]
    fn chw_layout_and_normalisation() {
        let mut img = RgbImage::new(2, 1);
        img.put_pixel(0, 0, Rgb([10, 20, 30]));
        img.put_pixel(1, 0, Rgb([40, 50, 60]));
        let v = to_chw(&img, [10.0, 20.0, 30.0], [1.0, 2.0, 5.0]);
        assert_eq!(v, vec![0.0, 30.0, 0.0, 15.0, 0.0, 6.0]);
    }
}
