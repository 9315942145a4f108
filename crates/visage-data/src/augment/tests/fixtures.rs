//! Shared fixtures of the augmentation tests: samples whose landmarks (and box corners) carry
//! coloured marker blocks, and the checks that the markers stay under the transformed points.

use image::Rgb;

use crate::augment::*;

const RED: Rgb<u8> = Rgb([250, 0, 0]);
const BLUE: Rgb<u8> = Rgb([0, 0, 250]);

/// A 200×140 grey image with one face; its five landmarks carry 7×7 marker squares, the
/// left eye red and every other point blue.
pub(super) fn marked_sample() -> Sample {
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
pub(super) fn assert_markers(s: &Sample, red_index: usize) -> usize {
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

/// Landmark `k` carries a 3×3 block of `PALETTE[k]`; box corners carry white blocks 3.5 px
/// inside each corner; everything else is near-black.
pub(super) const PALETTE: [[u8; 3]; 5] = [
    [255, 0, 0],
    [0, 255, 0],
    [0, 0, 255],
    [255, 0, 255],
    [255, 255, 0],
];
const WHITE: [u8; 3] = [255, 255, 255];
pub(super) const DARK: Rgb<u8> = Rgb([8, 8, 8]);
const CORNER_INSET: f32 = 3.5;

fn block(image: &mut RgbImage, p: [f32; 2], colour: [u8; 3]) {
    let (cx, cy) = (p[0].floor() as i64, p[1].floor() as i64);
    for y in cy - 1..=cy + 1 {
        for x in cx - 1..=cx + 1 {
            if x >= 0 && y >= 0 && (x as u32) < image.width() && (y as u32) < image.height() {
                image.put_pixel(x as u32, y as u32, Rgb(colour));
            }
        }
    }
}

/// A `w × h` dark image with one `bw × bh` face at `(bx, by)` (integers), markers drawn.
pub(super) fn marker_sample(w: u32, h: u32, bx: u32, by: u32, bw: u32, bh: u32) -> Sample {
    let mut image = RgbImage::from_pixel(w, h, DARK);
    let (x, y, fw, fh) = (bx as f32, by as f32, bw as f32, bh as f32);
    let at = |fx: f32, fy: f32| [(x + fx * fw).floor() + 0.5, (y + fy * fh).floor() + 0.5];
    let points = [
        at(0.28, 0.35),
        at(0.72, 0.35),
        at(0.5, 0.55),
        at(0.3, 0.8),
        at(0.7, 0.8),
    ];
    for (k, p) in points.iter().enumerate() {
        block(&mut image, *p, PALETTE[k]);
    }
    let b = [x, y, x + fw, y + fh];
    for p in corner_points(&b, 1.0, 1.0) {
        block(&mut image, p, WHITE);
    }
    Sample {
        image,
        boxes: vec![b],
        landmarks: vec![Some(Landmarks {
            points,
            visible: [true; 5],
        })],
    }
}

/// The corner marker positions of box `b` whose image was scaled by `(sx, sy)` in total.
fn corner_points(b: &[f32; 4], sx: f32, sy: f32) -> [[f32; 2]; 4] {
    let (dx, dy) = (CORNER_INSET * sx, CORNER_INSET * sy);
    [
        [b[0] + dx, b[1] + dy],
        [b[2] - dx, b[1] + dy],
        [b[0] + dx, b[3] - dy],
        [b[2] - dx, b[3] - dy],
    ]
}

/// Whether a pixel within `radius` of `p` shows `colour` (its lit channels bright, the others
/// at most half as bright: blurring against the dark background keeps the hue).
pub(super) fn marker_near(image: &RgbImage, p: [f32; 2], colour: [u8; 3], radius: i64) -> bool {
    let (cx, cy) = (p[0].floor() as i64, p[1].floor() as i64);
    for y in cy - radius..=cy + radius {
        for x in cx - radius..=cx + radius {
            if x < 0 || y < 0 || x as u32 >= image.width() || y as u32 >= image.height() {
                continue;
            }
            let px = image.get_pixel(x as u32, y as u32).0;
            let on = (0..3)
                .filter(|&c| colour[c] > 0)
                .map(|c| px[c])
                .min()
                .unwrap();
            let off = (0..3).filter(|&c| colour[c] == 0).map(|c| px[c]).max();
            if on >= 90 && off.is_none_or(|o| (o as u32) * 2 <= on as u32) {
                return true;
            }
        }
    }
    false
}

/// Checks every visible landmark (landmark `k` must show `PALETTE[perm[k]]`) and, when the box
/// was not clipped, its four corner markers. `scale` is the total resize factor.
pub(super) fn check_markers(
    s: &Sample,
    perm: [usize; 5],
    bw: f32,
    bh: f32,
    scale: [f32; 2],
    radius: i64,
) {
    assert_eq!(s.boxes.len(), 1, "the face is kept");
    let lm = s.landmarks[0].expect("landmarks kept");
    for k in 0..5 {
        if lm.visible[k] {
            assert!(
                marker_near(&s.image, lm.points[k], PALETTE[perm[k]], radius),
                "landmark {k} at {:?} lost its marker",
                lm.points[k]
            );
        }
    }
    let b = s.boxes[0];
    let unclipped = ((b[2] - b[0]) - bw * scale[0]).abs() < 1e-2
        && ((b[3] - b[1]) - bh * scale[1]).abs() < 1e-2;
    if unclipped {
        for p in corner_points(&b, scale[0], scale[1]) {
            assert!(
                marker_near(&s.image, p, WHITE, radius),
                "box corner at {p:?} lost its marker"
            );
        }
    }
}

pub(super) fn same(a: &Sample, b: &Sample) -> bool {
    a.image == b.image && a.boxes == b.boxes && a.landmarks == b.landmarks
}
