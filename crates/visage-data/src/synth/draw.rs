//! Drawing primitives for the synthetic set: anti-aliased shapes from signed distances, a
//! premultiplied RGBA layer, separable blur and alpha compositing.
//!
//! Coordinates are continuous image pixels; pixel `(i, j)` is sampled at `(i + 0.5, j + 0.5)`.
//! Colours are `f32` in 0..255, alpha in 0..1; layers store premultiplied colour.

use image::{Rgb, RgbImage};

/// A filled shape in image coordinates.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shape {
    /// Ellipse with centre, semi-axes and rotation (radians, clockwise on screen).
    Ellipse {
        cx: f32,
        cy: f32,
        rx: f32,
        ry: f32,
        angle: f32,
    },
    /// Segment `a`–`b` thickened by radius `r` (a stroke with round caps).
    Capsule {
        ax: f32,
        ay: f32,
        bx: f32,
        by: f32,
        r: f32,
    },
    /// Rotated rectangle with half sizes `hw`, `hh` and corner radius `round`.
    Rect {
        cx: f32,
        cy: f32,
        hw: f32,
        hh: f32,
        angle: f32,
        round: f32,
    },
}

impl Shape {
    /// Signed distance in pixels from `(x, y)` to the outline, negative inside. Exact for
    /// capsules and rectangles, first-order (accurate near the outline) for ellipses.
    pub(crate) fn sdf(&self, x: f32, y: f32) -> f32 {
        match *self {
            Shape::Ellipse {
                cx,
                cy,
                rx,
                ry,
                angle,
            } => {
                let (s, c) = angle.sin_cos();
                let (dx, dy) = (x - cx, y - cy);
                let (u, v) = (dx * c + dy * s, -dx * s + dy * c);
                let k0 = ((u / rx).powi(2) + (v / ry).powi(2)).sqrt();
                let k1 = ((u / (rx * rx)).powi(2) + (v / (ry * ry)).powi(2)).sqrt();
                if k1 < 1e-9 {
                    -rx.min(ry)
                } else {
                    k0 * (k0 - 1.0) / k1
                }
            }
            Shape::Capsule { ax, ay, bx, by, r } => {
                let (px, py, ex, ey) = (x - ax, y - ay, bx - ax, by - ay);
                let len2 = ex * ex + ey * ey;
                let t = if len2 > 0.0 {
                    ((px * ex + py * ey) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let (qx, qy) = (px - ex * t, py - ey * t);
                (qx * qx + qy * qy).sqrt() - r
            }
            Shape::Rect {
                cx,
                cy,
                hw,
                hh,
                angle,
                round,
            } => {
                let (s, c) = angle.sin_cos();
                let (dx, dy) = (x - cx, y - cy);
                let (u, v) = ((dx * c + dy * s).abs(), (-dx * s + dy * c).abs());
                let round = round.min(hw).min(hh).max(0.0);
                let (qx, qy) = (u - (hw - round), v - (hh - round));
                let outside = (qx.max(0.0).powi(2) + qy.max(0.0).powi(2)).sqrt();
                outside + qx.max(qy).min(0.0) - round
            }
        }
    }

    /// Anti-aliased coverage of the pixel centred at `(x, y)`, in 0..1.
    pub(crate) fn coverage(&self, x: f32, y: f32) -> f32 {
        (0.5 - self.sdf(x, y)).clamp(0.0, 1.0)
    }

    /// Axis-aligned bounds `[x1, y1, x2, y2]` of the shape (exact for all three kinds).
    pub(crate) fn bounds(&self) -> [f32; 4] {
        match *self {
            Shape::Ellipse {
                cx,
                cy,
                rx,
                ry,
                angle,
            } => {
                let (s, c) = angle.sin_cos();
                let hw = ((rx * c).powi(2) + (ry * s).powi(2)).sqrt();
                let hh = ((rx * s).powi(2) + (ry * c).powi(2)).sqrt();
                [cx - hw, cy - hh, cx + hw, cy + hh]
            }
            Shape::Capsule { ax, ay, bx, by, r } => [
                ax.min(bx) - r,
                ay.min(by) - r,
                ax.max(bx) + r,
                ay.max(by) + r,
            ],
            Shape::Rect {
                cx,
                cy,
                hw,
                hh,
                angle,
                ..
            } => {
                let (s, c) = angle.sin_cos();
                let ew = hw * c.abs() + hh * s.abs();
                let eh = hw * s.abs() + hh * c.abs();
                [cx - ew, cy - eh, cx + ew, cy + eh]
            }
        }
    }

    /// Shapes thinner than a pixel are drawn half a pixel thick with proportionally lower
    /// opacity, so tiny features keep roughly their true ink instead of a full-pixel blot.
    fn thickened(&self) -> (Shape, f32) {
        const MIN: f32 = 0.5;
        match *self {
            Shape::Ellipse {
                cx,
                cy,
                rx,
                ry,
                angle,
            } => {
                let f = (rx / MIN).min(1.0) * (ry / MIN).min(1.0);
                (
                    Shape::Ellipse {
                        cx,
                        cy,
                        rx: rx.max(MIN),
                        ry: ry.max(MIN),
                        angle,
                    },
                    f,
                )
            }
            Shape::Capsule { ax, ay, bx, by, r } => (
                (Shape::Capsule {
                    ax,
                    ay,
                    bx,
                    by,
                    r: r.max(MIN),
                }),
                (r / MIN).min(1.0),
            ),
            Shape::Rect {
                cx,
                cy,
                hw,
                hh,
                angle,
                round,
            } => {
                let f = (hw / MIN).min(1.0) * (hh / MIN).min(1.0);
                (
                    Shape::Rect {
                        cx,
                        cy,
                        hw: hw.max(MIN),
                        hh: hh.max(MIN),
                        angle,
                        round,
                    },
                    f,
                )
            }
        }
    }
}

/// A premultiplied RGBA raster covering `[x0, x0 + width) × [y0, y0 + height)` of the image.
pub(crate) struct Layer {
    pub x0: i32,
    pub y0: i32,
    pub width: usize,
    pub height: usize,
    pub data: Vec<[f32; 4]>,
}

impl Layer {
    /// A transparent layer.
    pub(crate) fn new(x0: i32, y0: i32, width: usize, height: usize) -> Self {
        Layer {
            x0,
            y0,
            width,
            height,
            data: vec![[0.0; 4]; width * height],
        }
    }

    /// The pixel range `[x1, x2) × [y1, y2)` (layer-local) touched by `b` (image coordinates).
    fn span(&self, b: [f32; 4]) -> Option<(usize, usize, usize, usize)> {
        let clampx =
            |v: f32| ((v.floor() as i64 - self.x0 as i64).clamp(0, self.width as i64)) as usize;
        let clampy =
            |v: f32| ((v.floor() as i64 - self.y0 as i64).clamp(0, self.height as i64)) as usize;
        let (x1, x2) = (clampx(b[0] - 1.0), clampx(b[2] + 2.0));
        let (y1, y2) = (clampy(b[1] - 1.0), clampy(b[3] + 2.0));
        (x1 < x2 && y1 < y2).then_some((x1, x2, y1, y2))
    }

    /// Paints `shape` with a colour computed per pixel by `paint(x, y)` (image coordinates of the
    /// pixel centre), at `opacity`.
    pub(crate) fn fill_with(
        &mut self,
        shape: &Shape,
        opacity: f32,
        mut paint: impl FnMut(f32, f32) -> [f32; 3],
    ) {
        let (shape, thin) = shape.thickened();
        let opacity = opacity * thin;
        let Some((x1, x2, y1, y2)) = self.span(shape.bounds()) else {
            return;
        };
        for ly in y1..y2 {
            let y = (ly as i32 + self.y0) as f32 + 0.5;
            for lx in x1..x2 {
                let x = (lx as i32 + self.x0) as f32 + 0.5;
                let a = shape.coverage(x, y) * opacity;
                if a <= 0.0 {
                    continue;
                }
                let c = paint(x, y);
                let d = &mut self.data[ly * self.width + lx];
                let k = 1.0 - a;
                *d = [
                    c[0] * a + d[0] * k,
                    c[1] * a + d[1] * k,
                    c[2] * a + d[2] * k,
                    a + d[3] * k,
                ];
            }
        }
    }

    /// Paints `shape` in a solid colour.
    pub(crate) fn fill(&mut self, shape: &Shape, colour: [f32; 3], opacity: f32) {
        self.fill_with(shape, opacity, |_, _| colour);
    }

    /// Multiplies the colour channels by `factor` (brightness change; alpha unchanged).
    pub(crate) fn scale_colour(&mut self, factor: f32) {
        for d in &mut self.data {
            d[0] *= factor;
            d[1] *= factor;
            d[2] *= factor;
        }
    }

    /// Approximately Gaussian blur of standard deviation `sigma` pixels (three box passes per
    /// axis, transparent outside the layer).
    pub(crate) fn blur(&mut self, sigma: f32) {
        if sigma < 0.3 {
            return;
        }
        let r = ((((12.0 * sigma * sigma / 3.0) + 1.0).sqrt() - 1.0) * 0.5)
            .round()
            .max(1.0) as usize;
        let (w, h) = (self.width, self.height);
        let mut line = Vec::new();
        for _ in 0..3 {
            for y in 0..h {
                line.clear();
                line.extend((0..w).map(|x| self.data[y * w + x]));
                box_pass(&line, r, |x, v| self.data[y * w + x] = v);
            }
            for x in 0..w {
                line.clear();
                line.extend((0..h).map(|y| self.data[y * w + x]));
                box_pass(&line, r, |y, v| self.data[y * w + x] = v);
            }
        }
    }

    /// Composites this layer over `dst` (premultiplied "over").
    pub(crate) fn composite_onto(&self, dst: &mut Layer) {
        for ly in 0..self.height {
            let gy = ly as i64 + self.y0 as i64 - dst.y0 as i64;
            if gy < 0 || gy >= dst.height as i64 {
                continue;
            }
            for lx in 0..self.width {
                let gx = lx as i64 + self.x0 as i64 - dst.x0 as i64;
                if gx < 0 || gx >= dst.width as i64 {
                    continue;
                }
                let s = self.data[ly * self.width + lx];
                if s[3] <= 0.0 {
                    continue;
                }
                let d = &mut dst.data[gy as usize * dst.width + gx as usize];
                let k = 1.0 - s[3].min(1.0);
                *d = [
                    s[0] + d[0] * k,
                    s[1] + d[1] * k,
                    s[2] + d[2] * k,
                    s[3] + d[3] * k,
                ];
            }
        }
    }

    /// The layer as an 8-bit RGB image (colour taken as is: meant for an opaque canvas).
    pub(crate) fn to_rgb(&self) -> RgbImage {
        let mut img = RgbImage::new(self.width as u32, self.height as u32);
        for (p, d) in img.pixels_mut().zip(&self.data) {
            *p = Rgb([to_u8(d[0]), to_u8(d[1]), to_u8(d[2])]);
        }
        img
    }
}

fn to_u8(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// One box filter of radius `r` over `src` (zero outside), written through `out(index, value)`.
fn box_pass(src: &[[f32; 4]], r: usize, mut out: impl FnMut(usize, [f32; 4])) {
    let n = src.len();
    let norm = 1.0 / (2 * r + 1) as f32;
    let mut acc = [0.0f32; 4];
    for v in src.iter().take(r.min(n)) {
        add(&mut acc, v, 1.0);
    }
    for i in 0..n {
        if i + r < n {
            add(&mut acc, &src[i + r], 1.0);
        }
        if i > r {
            add(&mut acc, &src[i - r - 1], -1.0);
        }
        out(
            i,
            [acc[0] * norm, acc[1] * norm, acc[2] * norm, acc[3] * norm],
        );
    }
}

fn add(acc: &mut [f32; 4], v: &[f32; 4], s: f32) {
    for c in 0..4 {
        acc[c] += v[c] * s;
    }
}

/// Linear interpolation between two colours.
pub(crate) fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

/// A colour multiplied by `f`.
pub(crate) fn shade(c: [f32; 3], f: f32) -> [f32; 3] {
    [c[0] * f, c[1] * f, c[2] * f]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdf_signs_and_bounds() {
        let e = Shape::Ellipse {
            cx: 10.0,
            cy: 10.0,
            rx: 5.0,
            ry: 3.0,
            angle: 0.0,
        };
        assert!(e.sdf(10.0, 10.0) < 0.0 && e.sdf(16.0, 10.0) > 0.0);
        assert!((e.sdf(15.0, 10.0)).abs() < 1e-4 && (e.sdf(10.0, 13.5) - 0.5).abs() < 0.05);
        let r = Shape::Ellipse {
            cx: 0.0,
            cy: 0.0,
            rx: 5.0,
            ry: 3.0,
            angle: std::f32::consts::FRAC_PI_2,
        };
        let b = r.bounds();
        assert!((b[2] - 3.0).abs() < 1e-4 && (b[3] - 5.0).abs() < 1e-4);
        let c = Shape::Capsule {
            ax: 0.0,
            ay: 0.0,
            bx: 10.0,
            by: 0.0,
            r: 2.0,
        };
        assert!((c.sdf(5.0, 5.0) - 3.0).abs() < 1e-5 && (c.sdf(-4.0, 0.0) - 2.0).abs() < 1e-5);
        let q = Shape::Rect {
            cx: 0.0,
            cy: 0.0,
            hw: 4.0,
            hh: 2.0,
            angle: 0.0,
            round: 0.0,
        };
        assert!((q.sdf(6.0, 0.0) - 2.0).abs() < 1e-5 && (q.sdf(0.0, 0.0) + 2.0).abs() < 1e-5);
    }

    #[test]
    fn fill_blur_composite_conserve_ink() {
        let mut layer = Layer::new(0, 0, 40, 40);
        let disc = Shape::Ellipse {
            cx: 20.0,
            cy: 20.0,
            rx: 6.0,
            ry: 6.0,
            angle: 0.0,
        };
        layer.fill(&disc, [200.0, 100.0, 0.0], 1.0);
        let area: f32 = layer.data.iter().map(|d| d[3]).sum();
        assert!(
            (area - std::f32::consts::PI * 36.0).abs() < 3.0,
            "area {area}"
        );
        layer.blur(2.0);
        let blurred: f32 = layer.data.iter().map(|d| d[3]).sum();
        assert!((blurred - area).abs() < 0.5, "{blurred} vs {area}");
        let mut canvas = Layer::new(0, 0, 40, 40);
        for d in &mut canvas.data {
            *d = [0.0, 0.0, 255.0, 1.0];
        }
        layer.composite_onto(&mut canvas);
        let img = canvas.to_rgb();
        let centre = img.get_pixel(20, 20);
        assert!(centre[0] > 150 && centre[2] < 60, "{centre:?}");
        assert_eq!(img.get_pixel(0, 0)[2], 255);
    }
}
