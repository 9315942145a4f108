//! Cluttered backgrounds for the synthetic set: gradients, value-noise texture, random
//! rectangles / ellipses / lines / stripes, and face-like distractors that lack the face layout
//! (featureless skin blobs, hands, round objects with two dots, heads seen from behind, clocks).

use rand::Rng;

use super::draw::{mix, shade, Layer, Shape};
use super::face::skin_tone;

/// A random, mostly muted colour.
pub(crate) fn random_colour(rng: &mut impl Rng) -> [f32; 3] {
    let base: f32 = rng.random_range(30.0..220.0);
    let spread: f32 = rng.random_range(10.0..90.0);
    [
        (base + rng.random_range(-spread..spread)).clamp(0.0, 255.0),
        (base + rng.random_range(-spread..spread)).clamp(0.0, 255.0),
        (base + rng.random_range(-spread..spread)).clamp(0.0, 255.0),
    ]
}

/// An opaque canvas: a linear gradient between two colours plus value noise.
pub(crate) fn gradient_canvas(rng: &mut impl Rng, width: usize, height: usize) -> Layer {
    let (c1, c2) = (random_colour(rng), random_colour(rng));
    let theta: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    let (s, c) = theta.sin_cos();
    let span = (width as f32 * c.abs() + height as f32 * s.abs()).max(1.0);
    let offset = (if c < 0.0 { -(width as f32) * c } else { 0.0 })
        + (if s < 0.0 { -(height as f32) * s } else { 0.0 });
    // Value noise: a coarse random grid, bilinearly interpolated.
    let cell = rng.random_range(6.0f32..48.0);
    let amp = rng.random_range(6.0f32..30.0);
    let gw = (width as f32 / cell) as usize + 2;
    let gh = (height as f32 / cell) as usize + 2;
    let grid: Vec<f32> = (0..gw * gh)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let mut layer = Layer::new(0, 0, width, height);
    for y in 0..height {
        let gy = y as f32 / cell;
        let (iy, fy) = (gy as usize, gy.fract());
        for x in 0..width {
            let gx = x as f32 / cell;
            let (ix, fx) = (gx as usize, gx.fract());
            let g = |i: usize, j: usize| grid[j * gw + i];
            let n = (g(ix, iy) * (1.0 - fx) + g(ix + 1, iy) * fx) * (1.0 - fy)
                + (g(ix, iy + 1) * (1.0 - fx) + g(ix + 1, iy + 1) * fx) * fy;
            let t = ((x as f32 * c + y as f32 * s + offset) / span).clamp(0.0, 1.0);
            let base = mix(c1, c2, t);
            let v = n * amp;
            layer.data[y * width + x] = [base[0] + v, base[1] + v, base[2] + v, 1.0];
        }
    }
    layer
}

/// Random clutter: rectangles (signs, windows, buildings), ellipses, lines and stripe patterns.
pub(crate) fn clutter(rng: &mut impl Rng, canvas: &mut Layer) {
    let (w, h) = (canvas.width as f32, canvas.height as f32);
    let n = rng.random_range(8..30);
    for _ in 0..n {
        let colour = if rng.random_bool(0.1) {
            skin_tone(rng)
        } else {
            random_colour(rng)
        };
        let opacity = rng.random_range(0.5..1.0);
        let (cx, cy) = (rng.random_range(0.0..w), rng.random_range(0.0..h));
        let size = w.min(h) * rng.random_range(0.02f32..0.4);
        let shape = match rng.random_range(0..10) {
            0..=3 => Shape::Rect {
                cx,
                cy,
                hw: size * rng.random_range(0.3..1.5),
                hh: size * rng.random_range(0.3..1.5),
                angle: if rng.random_bool(0.6) {
                    0.0
                } else {
                    rng.random_range(-0.8..0.8)
                },
                round: size * rng.random_range(0.0..0.2),
            },
            4..=6 => Shape::Ellipse {
                cx,
                cy,
                rx: size * rng.random_range(0.2..1.0),
                ry: size * rng.random_range(0.2..1.0),
                angle: rng.random_range(0.0..3.2),
            },
            7 => {
                // Stripes: a fence or a striped shirt.
                let (dx, dy) = (
                    rng.random_range(-1.0f32..1.0) * size,
                    rng.random_range(-1.0f32..1.0) * size,
                );
                let r = rng.random_range(0.6..3.0);
                let gap = rng.random_range(3.0f32..12.0) + 2.0 * r;
                for k in 0..rng.random_range(3..10) {
                    let o = k as f32 * gap;
                    let s = Shape::Capsule {
                        ax: cx + o,
                        ay: cy,
                        bx: cx + o + dx,
                        by: cy + dy,
                        r,
                    };
                    canvas.fill(&s, colour, opacity);
                }
                continue;
            }
            _ => Shape::Capsule {
                ax: cx,
                ay: cy,
                bx: cx + rng.random_range(-2.0f32..2.0) * size,
                by: cy + rng.random_range(-2.0f32..2.0) * size,
                r: rng.random_range(0.5..4.0),
            },
        };
        canvas.fill(&shape, colour, opacity);
    }
}

/// Draws one random distractor of about `size` px at `(cx, cy)`.
pub(crate) fn distractor(rng: &mut impl Rng, canvas: &mut Layer, cx: f32, cy: f32, size: f32) {
    let r = size * 0.5;
    match rng.random_range(0..6) {
        0 => {
            // A featureless skin-coloured ellipse (arm, bald patch, ball).
            let skin = skin_tone(rng);
            let e = Shape::Ellipse {
                cx,
                cy,
                rx: r * rng.random_range(0.5..1.0),
                ry: r * rng.random_range(0.6..1.4),
                angle: rng.random_range(0.0..3.2),
            };
            canvas.fill_with(&e, 1.0, |x, y| {
                shade(
                    skin,
                    1.0 - 0.15 * (((x - cx).powi(2) + (y - cy).powi(2)).sqrt() / r).min(1.0),
                )
            });
        }
        1 => {
            // A round object with two dots (button eyes but no brows, nose or mouth).
            let colour = if rng.random_bool(0.3) {
                skin_tone(rng)
            } else {
                random_colour(rng)
            };
            canvas.fill(
                &Shape::Ellipse {
                    cx,
                    cy,
                    rx: r,
                    ry: r,
                    angle: 0.0,
                },
                colour,
                1.0,
            );
            let dot = shade(colour, rng.random_range(0.1..0.4));
            let (dx, dy) = (
                r * rng.random_range(0.25..0.5),
                r * rng.random_range(-0.5..0.3),
            );
            for sx in [-1.0, 1.0] {
                canvas.fill(
                    &Shape::Ellipse {
                        cx: cx + sx * dx,
                        cy: cy + dy,
                        rx: r * 0.12,
                        ry: r * 0.12,
                        angle: 0.0,
                    },
                    dot,
                    1.0,
                );
            }
        }
        2 => {
            // A hand: palm and four fingers.
            let skin = skin_tone(rng);
            let angle: f32 = rng.random_range(-0.8..0.8);
            let (s, c) = angle.sin_cos();
            canvas.fill(
                &Shape::Ellipse {
                    cx,
                    cy,
                    rx: r * 0.45,
                    ry: r * 0.55,
                    angle,
                },
                skin,
                1.0,
            );
            for k in 0..4 {
                let u = (k as f32 - 1.5) * r * 0.22;
                let (bx, by) = (cx + u * c + 0.4 * r * s, cy + u * s - 0.4 * r * c);
                let len = r * (0.55 + 0.1 * (1.5 - (k as f32 - 1.5).abs()));
                let (ex, ey) = (bx + len * s, by - len * c);
                canvas.fill(
                    &Shape::Capsule {
                        ax: bx,
                        ay: by,
                        bx: ex,
                        by: ey,
                        r: r * 0.09,
                    },
                    shade(skin, 0.95),
                    1.0,
                );
            }
        }
        3 => {
            // A head seen from behind: hair over the whole skull, ears, neck.
            let skin = skin_tone(rng);
            let hair = shade(random_colour(rng), 0.4);
            canvas.fill(
                &Shape::Capsule {
                    ax: cx,
                    ay: cy,
                    bx: cx,
                    by: cy + r * 1.3,
                    r: r * 0.35,
                },
                shade(skin, 0.8),
                1.0,
            );
            for sx in [-1.0, 1.0] {
                canvas.fill(
                    &Shape::Ellipse {
                        cx: cx + sx * r * 0.72,
                        cy,
                        rx: r * 0.12,
                        ry: r * 0.2,
                        angle: 0.0,
                    },
                    skin,
                    1.0,
                );
            }
            canvas.fill(
                &Shape::Ellipse {
                    cx,
                    cy: cy - r * 0.1,
                    rx: r * 0.75,
                    ry: r * 0.95,
                    angle: 0.0,
                },
                hair,
                1.0,
            );
        }
        4 => {
            // A clock / wheel: a ring with two hands.
            let colour = random_colour(rng);
            canvas.fill(
                &Shape::Ellipse {
                    cx,
                    cy,
                    rx: r,
                    ry: r,
                    angle: 0.0,
                },
                shade(colour, 0.5),
                1.0,
            );
            canvas.fill(
                &Shape::Ellipse {
                    cx,
                    cy,
                    rx: r * 0.88,
                    ry: r * 0.88,
                    angle: 0.0,
                },
                [235.0, 235.0, 225.0],
                1.0,
            );
            for _ in 0..2 {
                let t: f32 = rng.random_range(0.0..std::f32::consts::TAU);
                let cap = Shape::Capsule {
                    ax: cx,
                    ay: cy,
                    bx: cx + r * 0.7 * t.cos(),
                    by: cy + r * 0.7 * t.sin(),
                    r: r * 0.05,
                };
                canvas.fill(&cap, [20.0, 20.0, 20.0], 1.0);
            }
        }
        _ => {
            // A skin-toned oval with a scrambled layout: dots placed off the face pattern.
            let skin = skin_tone(rng);
            canvas.fill(
                &Shape::Ellipse {
                    cx,
                    cy,
                    rx: r * 0.75,
                    ry: r,
                    angle: rng.random_range(-0.5..0.5),
                },
                skin,
                1.0,
            );
            let dark = shade(skin, 0.35);
            for _ in 0..rng.random_range(1..3) {
                let (px, py) = (
                    cx + r * rng.random_range(-0.5..0.5),
                    cy + r * rng.random_range(0.1..0.7),
                );
                canvas.fill(
                    &Shape::Ellipse {
                        cx: px,
                        cy: py,
                        rx: r * 0.1,
                        ry: r * 0.07,
                        angle: 0.0,
                    },
                    dark,
                    1.0,
                );
            }
        }
    }
}

/// Adds uniform sensor noise of amplitude `amp` (0..255 units) to every channel.
pub(crate) fn sensor_noise(rng: &mut impl Rng, canvas: &mut Layer, amp: f32) {
    for d in &mut canvas.data {
        for v in d.iter_mut().take(3) {
            *v += rng.random_range(-amp..amp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn canvas_is_opaque_and_varied() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut canvas = gradient_canvas(&mut rng, 64, 48);
        clutter(&mut rng, &mut canvas);
        for k in 0..6 {
            distractor(&mut rng, &mut canvas, 32.0, 24.0, 20.0 + k as f32);
        }
        assert!(canvas.data.iter().all(|d| (d[3] - 1.0).abs() < 1e-4));
        let img = canvas.to_rgb();
        let first = img.get_pixel(0, 0);
        assert!(img
            .pixels()
            .any(|p| (p[0] as i32 - first[0] as i32).abs() > 10));
    }
}
