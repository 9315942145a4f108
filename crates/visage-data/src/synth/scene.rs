//! One synthetic image: background and clutter, distractors, people (torso + face) placed
//! without heavy overlap, per-face blur / illumination, occluders, and the WIDER attributes
//! measured from what was drawn.

use image::RgbImage;
use rand::Rng;
use visage_eval::FaceAttributes;

use super::background::{clutter, distractor, gradient_canvas, random_colour, sensor_noise};
use super::draw::{Layer, Shape};
use super::face::{skin_tone, FaceSpec};
use crate::label_txt::Landmarks;
use crate::wider_txt::FaceAnnotation;

/// A rendered image and its faces (`bbox` integer xywh pixels, all ten attributes, landmarks
/// for valid faces of height ≥ 10 px).
pub(crate) struct Scene {
    pub image: RgbImage,
    pub faces: Vec<FaceAnnotation>,
}

/// Faces smaller than this (box height, px) are marked invalid.
const MIN_VALID_HEIGHT: i32 = 6;
/// Faces at least this tall get landmarks.
const MIN_LANDMARK_HEIGHT: i32 = 10;

fn log_uniform(rng: &mut impl Rng, lo: f32, hi: f32) -> f32 {
    if hi <= lo {
        return lo;
    }
    (rng.random_range(lo.ln()..hi.ln())).exp()
}

/// Face heights for one image: portraits (few, large), groups (mixed, many small), crowds.
fn plan_heights(rng: &mut impl Rng, short_side: f32, max_faces: usize) -> Vec<f32> {
    let hmax = (0.8 * short_side).min(300.0);
    let max_faces = max_faces.max(1);
    let mode = rng.random_range(0.0f32..1.0);
    let (n, lo, hi) = if mode < 0.3 {
        (rng.random_range(1..=3.min(max_faces)), 40.0, hmax)
    } else if mode < 0.8 {
        (
            rng.random_range(2.min(max_faces)..=max_faces),
            7.0,
            hmax.min(180.0),
        )
    } else {
        (rng.random_range(5.min(max_faces)..=max_faces), 4.5, 40.0)
    };
    let mut hs: Vec<f32> = (0..n).map(|_| log_uniform(rng, lo, hi)).collect();
    hs.sort_by(|a, b| b.total_cmp(a));
    hs
}

/// Intersection over the smaller area, for `[x1, y1, x2, y2]` boxes.
fn overlap_of_smaller(a: [f32; 4], b: [f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let area = |r: [f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    iw * ih / area(a).min(area(b)).max(1e-6)
}

/// Places faces of the planned heights; a face that finds no free spot is left out.
fn place_faces(rng: &mut impl Rng, w: f32, h: f32, heights: &[f32]) -> Vec<FaceSpec> {
    let mut placed: Vec<(FaceSpec, [f32; 4])> = Vec::new();
    for &fh in heights {
        for _ in 0..40 {
            let (cx, cy) = (rng.random_range(0.0..w), rng.random_range(0.0..h));
            let spec = FaceSpec::random(rng, cx, cy, fh);
            let b = spec.box_xyxy();
            if b[0] < 0.5 || b[1] < 0.5 || b[2] > w - 0.5 || b[3] > h - 0.5 {
                continue;
            }
            let r = 0.8 * fh;
            let zone = [cx - r, cy - r, cx + r, cy + r];
            if placed
                .iter()
                .all(|(_, z)| overlap_of_smaller(*z, zone) < 0.12)
            {
                placed.push((spec, zone));
                break;
            }
        }
    }
    placed.into_iter().map(|(s, _)| s).collect()
}

/// A shirt below the face (drawn before every face, so it never covers one).
fn torso(rng: &mut impl Rng, f: &FaceSpec) -> (Shape, [f32; 3]) {
    let tilt = f.angle * 0.3;
    let (s, c) = tilt.sin_cos();
    let d = 2.5 * f.b;
    let shape = Shape::Rect {
        cx: f.cx - d * s,
        cy: f.cy + d * c,
        hw: 1.9 * f.a,
        hh: 1.1 * f.b,
        angle: tilt,
        round: 0.6 * f.a,
    };
    (shape, random_colour(rng))
}

/// Occluder shapes placed over part of the face `f`.
fn occluder(rng: &mut impl Rng, f: &FaceSpec) -> (Vec<Shape>, [f32; 3]) {
    let (a, b) = (f.a, f.b);
    let (ox, oy) = (
        f.cx + a * rng.random_range(-1.1..1.1),
        f.cy + b * rng.random_range(-0.9..0.9),
    );
    match rng.random_range(0..3) {
        0 => {
            let shape = Shape::Rect {
                cx: ox,
                cy: oy,
                hw: a * rng.random_range(0.3..1.2),
                hh: b * rng.random_range(0.25..1.0),
                angle: rng.random_range(-0.4..0.4),
                round: a * 0.05,
            };
            (vec![shape], random_colour(rng))
        }
        1 => {
            let t: f32 = rng.random_range(0.0..std::f32::consts::PI);
            let len = 3.0 * b;
            let shape = Shape::Capsule {
                ax: ox - len * t.cos(),
                ay: oy - len * t.sin(),
                bx: ox + len * t.cos(),
                by: oy + len * t.sin(),
                r: a * rng.random_range(0.1..0.35),
            };
            (vec![shape], random_colour(rng))
        }
        _ => {
            let r = a * rng.random_range(0.35..0.7);
            let mut shapes = vec![Shape::Ellipse {
                cx: ox,
                cy: oy,
                rx: r,
                ry: r * 1.2,
                angle: rng.random_range(-0.6..0.6),
            }];
            for k in 0..4 {
                let fx = ox + (k as f32 - 1.5) * r * 0.45;
                shapes.push(Shape::Capsule {
                    ax: fx,
                    ay: oy,
                    bx: fx + r * 0.2,
                    by: oy - r * 1.9,
                    r: r * 0.19,
                });
            }
            (shapes, skin_tone(rng))
        }
    }
}

/// Fraction of the head ellipse covered by any occluder, sampled on a grid of pixel centres.
fn covered_fraction(f: &FaceSpec, occluders: &[Shape]) -> f32 {
    let head = f.head();
    let bb = head.bounds();
    let step = ((bb[3] - bb[1]) / 24.0).max(0.5);
    let (mut inside, mut covered) = (0usize, 0usize);
    let mut y = bb[1] + step * 0.5;
    while y < bb[3] {
        let mut x = bb[0] + step * 0.5;
        while x < bb[2] {
            if head.sdf(x, y) < 0.0 {
                inside += 1;
                if occluders.iter().any(|o| o.sdf(x, y) < 0.0) {
                    covered += 1;
                }
            }
            x += step;
        }
        y += step;
    }
    if inside == 0 {
        0.0
    } else {
        covered as f32 / inside as f32
    }
}

/// Renders one `width × height` image with up to `max_faces` faces.
pub(crate) fn render_scene(rng: &mut impl Rng, width: u32, height: u32, max_faces: usize) -> Scene {
    let (w, h) = (width as f32, height as f32);
    let mut canvas = gradient_canvas(rng, width as usize, height as usize);
    clutter(rng, &mut canvas);
    let heights = plan_heights(rng, w.min(h), max_faces);
    let faces = place_faces(rng, w, h, &heights);
    for _ in 0..rng.random_range(0..5) {
        let size = log_uniform(rng, 8.0, 0.5 * w.min(h));
        let (cx, cy) = (rng.random_range(0.0..w), rng.random_range(0.0..h));
        distractor(rng, &mut canvas, cx, cy, size);
    }
    // People: torsos first, then faces from small (far) to large (near).
    let mut order: Vec<usize> = (0..faces.len()).collect();
    order.sort_by(|&i, &j| faces[i].b.total_cmp(&faces[j].b));
    for &i in &order {
        if rng.random_bool(0.8) {
            let (shape, colour) = torso(rng, &faces[i]);
            canvas.fill(&shape, colour, 1.0);
        }
    }
    let mut attrs = vec![FaceAttributes::default(); faces.len()];
    for &i in &order {
        let f = &faces[i];
        let fh = 2.0 * f.b;
        let ext = f.extent();
        let (blur_level, sigma) = match rng.random_range(0.0f32..1.0) {
            p if p < 0.62 => (0u8, 0.0),
            p if p < 0.82 => (1, (0.5 + 0.025 * fh).min(3.0)),
            _ => (2, (1.0 + 0.05 * fh).min(5.0)),
        };
        let margin = (3.0 * sigma).ceil() as i32 + 2;
        let (x0, y0) = (
            (ext[0].floor() as i32 - margin).max(0),
            (ext[1].floor() as i32 - margin).max(0),
        );
        let x1 = (ext[2].ceil() as i32 + margin).min(width as i32);
        let y1 = (ext[3].ceil() as i32 + margin).min(height as i32);
        if x1 <= x0 || y1 <= y0 {
            continue;
        }
        let mut layer = Layer::new(x0, y0, (x1 - x0) as usize, (y1 - y0) as usize);
        f.draw(&mut layer);
        layer.blur(sigma);
        let illumination = if rng.random_bool(0.12) {
            let factor = if rng.random_bool(0.5) {
                rng.random_range(0.3..0.55)
            } else {
                rng.random_range(1.4..1.8)
            };
            layer.scale_colour(factor);
            1
        } else {
            0
        };
        layer.composite_onto(&mut canvas);
        attrs[i] = FaceAttributes {
            blur: blur_level,
            expression: f.open_mouth as u8,
            illumination,
            invalid: 0,
            occlusion: 0,
            pose: (f.angle.abs() > 0.35 || f.yaw.abs() > 0.45) as u8,
        };
    }
    // Occluders over some faces; every face's occlusion is measured against all of them.
    let mut occluders: Vec<Shape> = Vec::new();
    for f in &faces {
        if 2.0 * f.b >= 8.0 && rng.random_bool(0.22) {
            let (shapes, colour) = occluder(rng, f);
            for s in &shapes {
                canvas.fill(s, colour, 1.0);
            }
            occluders.extend(shapes);
        }
    }
    if rng.random_bool(0.5) {
        let amp = rng.random_range(1.5..5.0);
        sensor_noise(rng, &mut canvas, amp);
    }
    let mut out = Vec::with_capacity(faces.len());
    for (f, mut attr) in faces.iter().zip(attrs) {
        let b = f.box_xyxy();
        let (x, y) = (b[0].round() as i32, b[1].round() as i32);
        let (bw, bh) = (
            (b[2].round() as i32 - x).max(1),
            (b[3].round() as i32 - y).max(1),
        );
        let frac = covered_fraction(f, &occluders);
        attr.occlusion = if frac <= 0.02 {
            0
        } else if frac <= 0.3 {
            1
        } else {
            2
        };
        attr.invalid = (frac > 0.85 || bh < MIN_VALID_HEIGHT) as u8;
        let landmarks = (attr.invalid == 0 && bh >= MIN_LANDMARK_HEIGHT).then(|| {
            let points = f.landmarks();
            let mut visible = [true; 5];
            for (v, p) in visible.iter_mut().zip(&points) {
                *v = !occluders.iter().any(|o| o.sdf(p[0], p[1]) < 0.0);
            }
            Landmarks { points, visible }
        });
        out.push(FaceAnnotation {
            bbox: [x as f32, y as f32, bw as f32, bh as f32],
            attributes: attr,
            landmarks,
        });
    }
    Scene {
        image: canvas.to_rgb(),
        faces: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn scenes_have_faces_inside_the_image() {
        let mut total = 0;
        for seed in 0..6 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let s = render_scene(&mut rng, 160, 120, 10);
            assert_eq!(s.image.dimensions(), (160, 120));
            for f in &s.faces {
                let [x, y, w, h] = f.bbox;
                assert!(
                    x >= 0.0 && y >= 0.0 && x + w <= 160.0 && y + h <= 120.0,
                    "{:?}",
                    f.bbox
                );
                assert!(w >= 1.0 && h >= 1.0);
                if f.attributes.invalid == 0 && h >= 10.0 {
                    assert!(f.landmarks.is_some());
                }
            }
            total += s.faces.len();
        }
        assert!(total >= 6, "only {total} faces in 6 images");
    }

    #[test]
    fn occlusion_measures_covered_fraction() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let f = FaceSpec::random(&mut rng, 50.0, 50.0, 40.0);
        assert_eq!(covered_fraction(&f, &[]), 0.0);
        let all = Shape::Rect {
            cx: 50.0,
            cy: 50.0,
            hw: 60.0,
            hh: 60.0,
            angle: 0.0,
            round: 0.0,
        };
        assert_eq!(covered_fraction(&f, &[all]), 1.0);
        let left = Shape::Rect {
            cx: 0.0,
            cy: 50.0,
            hw: 50.0,
            hh: 60.0,
            angle: 0.0,
            round: 0.0,
        };
        let frac = covered_fraction(&f, &[left]);
        assert!((0.3..0.7).contains(&frac), "{frac}");
    }
}
