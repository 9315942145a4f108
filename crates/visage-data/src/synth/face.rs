//! One synthetic face: its random appearance ([`FaceSpec`]), its geometry (box, landmarks) and
//! its rendering into a layer (head, ears, hair, eyes with iris, brows, nose, mouth, neck).
//!
//! The face lives in a local frame: origin at the head ellipse's centre, `u` to the image right
//! and `v` down for an upright face, in pixels; the frame is rotated by `angle` into the image.
//! The box is the tight axis-aligned box of the head ellipse and the visible ears (forehead to
//! chin, ear to ear); hair volume above the forehead lies outside it, as in WIDER.

use rand::Rng;

use super::draw::{mix, shade, Layer, Shape};

/// Skin tones from light to dark (sRGB); a face picks a point between two neighbours.
const SKIN: [[f32; 3]; 6] = [
    [255.0, 224.0, 196.0],
    [241.0, 194.0, 150.0],
    [224.0, 172.0, 125.0],
    [198.0, 134.0, 90.0],
    [141.0, 85.0, 50.0],
    [92.0, 56.0, 33.0],
];
const HAIR: [[f32; 3]; 6] = [
    [20.0, 16.0, 14.0],
    [60.0, 40.0, 25.0],
    [105.0, 70.0, 40.0],
    [200.0, 165.0, 100.0],
    [160.0, 160.0, 160.0],
    [140.0, 60.0, 30.0],
];
const IRIS: [[f32; 3]; 4] = [
    [70.0, 45.0, 25.0],
    [40.0, 30.0, 25.0],
    [60.0, 100.0, 150.0],
    [70.0, 110.0, 70.0],
];

/// A random skin tone.
pub(crate) fn skin_tone(rng: &mut impl Rng) -> [f32; 3] {
    let i = rng.random_range(0..SKIN.len() - 1);
    let c = mix(SKIN[i], SKIN[i + 1], rng.random::<f32>());
    shade(c, rng.random_range(0.92..1.06))
}

/// Hair styles; each changes the silhouette around the head.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum HairStyle {
    Bald,
    Short,
    Long,
    Afro,
    Cap,
}

/// Everything random about one face.
#[derive(Debug, Clone)]
pub(crate) struct FaceSpec {
    /// Centre of the head ellipse (image pixels).
    pub cx: f32,
    pub cy: f32,
    /// Semi-axes of the head ellipse: `a` across, `b` from centre to chin.
    pub a: f32,
    pub b: f32,
    /// In-plane rotation (radians).
    pub angle: f32,
    /// Horizontal head turn in −1..1 (0 frontal): features shift and the far side narrows.
    pub yaw: f32,
    pub skin: [f32; 3],
    pub hair: [f32; 3],
    pub style: HairStyle,
    pub iris: [f32; 3],
    /// Mouth open (the WIDER "expression" attribute).
    pub open_mouth: bool,
    /// Light direction across the face in −1..1 (shading).
    pub light: f32,
}

impl FaceSpec {
    /// A random face of box height about `height` px centred at `(cx, cy)`.
    pub(crate) fn random(rng: &mut impl Rng, cx: f32, cy: f32, height: f32) -> Self {
        let aspect = rng.random_range(0.70..0.84);
        let angle = if rng.random_bool(0.7) {
            rng.random_range(-0.2f32..0.2)
        } else {
            rng.random_range(-0.44f32..0.44)
        };
        let yaw = if rng.random_bool(0.65) {
            rng.random_range(-0.25..0.25)
        } else {
            rng.random_range(-0.7..0.7)
        };
        let b = height * 0.5;
        let style = match rng.random_range(0..10) {
            0 => HairStyle::Bald,
            1..=3 => HairStyle::Short,
            4..=6 => HairStyle::Long,
            7 => HairStyle::Afro,
            _ => HairStyle::Cap,
        };
        FaceSpec {
            cx,
            cy,
            a: b * aspect * (1.0 - 0.12 * f32::abs(yaw)),
            b,
            angle,
            yaw,
            skin: skin_tone(rng),
            hair: HAIR[rng.random_range(0..HAIR.len())],
            style,
            iris: IRIS[rng.random_range(0..IRIS.len())],
            open_mouth: rng.random_bool(0.2),
            light: rng.random_range(-1.0..1.0),
        }
    }

    /// Local `(u, v)` → image `(x, y)`.
    pub(crate) fn to_image(&self, u: f32, v: f32) -> [f32; 2] {
        let (s, c) = self.angle.sin_cos();
        [self.cx + u * c - v * s, self.cy + u * s + v * c]
    }

    /// An ellipse given in the local frame.
    fn ellipse(&self, u: f32, v: f32, rx: f32, ry: f32, tilt: f32) -> Shape {
        let [cx, cy] = self.to_image(u, v);
        Shape::Ellipse {
            cx,
            cy,
            rx,
            ry,
            angle: self.angle + tilt,
        }
    }

    /// A capsule given in the local frame.
    fn capsule(&self, a: [f32; 2], b: [f32; 2], r: f32) -> Shape {
        let [ax, ay] = self.to_image(a[0], a[1]);
        let [bx, by] = self.to_image(b[0], b[1]);
        Shape::Capsule { ax, ay, bx, by, r }
    }

    /// The head (skin) ellipse in image coordinates.
    pub(crate) fn head(&self) -> Shape {
        self.ellipse(0.0, 0.0, self.a, self.b, 0.0)
    }

    /// Horizontal feature shift from yaw, and the width factor of the left / right half.
    fn yaw_layout(&self) -> (f32, f32, f32) {
        (
            self.yaw * 0.32 * self.a,
            1.0 + 0.1 * self.yaw.min(0.0).abs() - 0.45 * self.yaw.max(0.0),
            1.0 + 0.1 * self.yaw.max(0.0) - 0.45 * self.yaw.min(0.0).abs(),
        )
    }

    /// Local u of a feature at nominal offset `u` (negative: image-left side).
    fn feature_u(&self, u: f32) -> f32 {
        let (shift, left, right) = self.yaw_layout();
        shift + if u < 0.0 { u * left } else { u * right }
    }

    /// Ears that are drawn (the far one hides behind the head when the face turns).
    fn ears(&self) -> Vec<Shape> {
        let mut out = Vec::new();
        for side in [-1.0f32, 1.0] {
            if self.yaw * side > 0.35 {
                continue;
            }
            out.push(self.ellipse(
                side * self.a * 0.97,
                self.b * 0.02,
                self.a * 0.13,
                self.b * 0.2,
                0.0,
            ));
        }
        out
    }

    /// The face box `[x1, y1, x2, y2]`: head ellipse plus visible ears.
    pub(crate) fn box_xyxy(&self) -> [f32; 4] {
        let mut b = self.head().bounds();
        for e in self.ears() {
            let eb = e.bounds();
            b = [
                b[0].min(eb[0]),
                b[1].min(eb[1]),
                b[2].max(eb[2]),
                b[3].max(eb[3]),
            ];
        }
        b
    }

    /// Landmarks in image pixels: left eye, right eye, nose tip, left / right mouth corner.
    pub(crate) fn landmarks(&self) -> [[f32; 2]; 5] {
        let (a, b) = (self.a, self.b);
        let eye_v = -0.08 * b;
        let mouth_hw = 0.3 * a;
        [
            self.to_image(self.feature_u(-0.4 * a), eye_v),
            self.to_image(self.feature_u(0.4 * a), eye_v),
            self.to_image(self.feature_u(0.0) * 1.35, 0.3 * b),
            self.to_image(self.feature_u(-mouth_hw), 0.56 * b),
            self.to_image(self.feature_u(mouth_hw), 0.56 * b),
        ]
    }

    /// The square region (image pixels, `[x1, y1, x2, y2]`) that holds everything drawn.
    pub(crate) fn extent(&self) -> [f32; 4] {
        let r = 1.75 * self.b.max(self.a);
        [self.cx - r, self.cy - r, self.cx + r, self.cy + r]
    }

    /// Draws the face (hair, ears, neck, head, features) onto `layer`.
    pub(crate) fn draw(&self, layer: &mut Layer) {
        let (a, b) = (self.a, self.b);
        // Hair behind the head.
        match self.style {
            HairStyle::Long => {
                layer.fill(
                    &self.ellipse(0.0, 0.18 * b, 1.28 * a, 1.22 * b, 0.0),
                    self.hair,
                    1.0,
                );
            }
            HairStyle::Afro => {
                layer.fill(
                    &self.ellipse(0.0, -0.3 * b, 1.45 * a, 1.05 * b, 0.0),
                    self.hair,
                    1.0,
                );
            }
            HairStyle::Short => {
                layer.fill(
                    &self.ellipse(0.0, -0.16 * b, 1.06 * a, 0.95 * b, 0.0),
                    self.hair,
                    1.0,
                );
            }
            HairStyle::Bald | HairStyle::Cap => {}
        }
        // Neck and ears.
        let neck_skin = shade(self.skin, 0.78);
        layer.fill(
            &self.capsule([0.0, 0.6 * b], [0.0, 1.45 * b], 0.42 * a),
            neck_skin,
            1.0,
        );
        for ear in self.ears() {
            layer.fill(&ear, shade(self.skin, 0.88), 1.0);
        }
        // Head with a soft 3-D shading and a light direction.
        let head = self.head();
        let (s, c) = self.angle.sin_cos();
        let (cx, cy, skin, light) = (self.cx, self.cy, self.skin, self.light);
        layer.fill_with(&head, 1.0, |x, y| {
            let (dx, dy) = (x - cx, y - cy);
            let (u, v) = ((dx * c + dy * s) / a, (-dx * s + dy * c) / b);
            let r2 = (u * u + v * v).min(1.0);
            let f = 0.8 + 0.2 * (1.0 - r2).sqrt() + 0.07 * light * u;
            shade(skin, f)
        });
        self.draw_features(layer);
        // Hair in front: the hairline over the forehead.
        match self.style {
            HairStyle::Short | HairStyle::Long | HairStyle::Afro => {
                let fringe_tilt = self.yaw * 0.15;
                layer.fill(
                    &self.ellipse(0.0, -0.66 * b, 0.97 * a, 0.4 * b, fringe_tilt),
                    self.hair,
                    1.0,
                );
            }
            HairStyle::Cap => {
                let crown = self.ellipse(0.0, -0.62 * b, 1.02 * a, 0.48 * b, 0.0);
                let cap_colour = [
                    self.hair[2] + 60.0,
                    self.hair[0] + 40.0,
                    self.hair[1] + 90.0,
                ];
                layer.fill(&crown, cap_colour, 1.0);
                let brim = self.capsule([-0.95 * a, -0.42 * b], [0.95 * a, -0.42 * b], 0.07 * b);
                layer.fill(&brim, shade(cap_colour, 0.7), 1.0);
            }
            HairStyle::Bald => {
                layer.fill(
                    &self.ellipse(0.0, -0.55 * b, 0.6 * a, 0.3 * b, 0.0),
                    shade(self.skin, 1.08),
                    0.35,
                );
            }
        }
    }

    /// Eyes (white, iris, pupil, lid), brows, nose, mouth.
    fn draw_features(&self, layer: &mut Layer) {
        let (a, b) = (self.a, self.b);
        let (_, left, right) = self.yaw_layout();
        let lm = self.landmarks();
        let brow = shade(mix(self.hair, [40.0, 30.0, 25.0], 0.5), 0.9);
        for (k, side) in [(0usize, left), (1usize, right)] {
            let sign = if k == 0 { -1.0 } else { 1.0 };
            let eu = self.feature_u(sign * 0.4 * a);
            let (rx, ry) = (0.19 * a * side, 0.085 * b);
            // Socket shadow, white, iris, pupil, upper lid.
            layer.fill(
                &self.ellipse(eu, -0.09 * b, rx * 1.35, ry * 1.8, 0.0),
                shade(self.skin, 0.82),
                0.7,
            );
            layer.fill(
                &self.ellipse(eu, -0.08 * b, rx, ry, 0.0),
                [245.0, 245.0, 240.0],
                1.0,
            );
            let [ix, iy] = lm[k];
            let ir = 0.075 * b;
            let iris = Shape::Ellipse {
                cx: ix,
                cy: iy,
                rx: ir * side.min(1.0),
                ry: ir,
                angle: self.angle,
            };
            layer.fill(&iris, self.iris, 1.0);
            let pupil = Shape::Ellipse {
                cx: ix,
                cy: iy,
                rx: ir * 0.5 * side.min(1.0),
                ry: ir * 0.5,
                angle: self.angle,
            };
            layer.fill(&pupil, [10.0, 10.0, 10.0], 1.0);
            let lid = self.capsule([eu - rx, -0.1 * b], [eu + rx, -0.12 * b], 0.022 * b);
            layer.fill(&lid, [35.0, 25.0, 20.0], 0.9);
            // Brow.
            let bl = self.capsule(
                [eu - 0.2 * a * side, -0.3 * b],
                [eu + 0.2 * a * side, -0.32 * b - sign * 0.01 * b],
                0.035 * b,
            );
            layer.fill(&bl, brow, 1.0);
        }
        // Nose: ridge shadow, tip, nostrils.
        let tip_u = self.feature_u(0.0) * 1.35;
        let ridge = self.capsule(
            [self.feature_u(0.0) + 0.06 * a, -0.02 * b],
            [tip_u + 0.08 * a, 0.26 * b],
            0.035 * b,
        );
        layer.fill(&ridge, shade(self.skin, 0.75), 0.6);
        layer.fill(
            &self.ellipse(tip_u, 0.28 * b, 0.13 * a, 0.075 * b, 0.0),
            shade(self.skin, 0.93),
            1.0,
        );
        for d in [-0.075, 0.075] {
            layer.fill(
                &self.ellipse(tip_u + d * a, 0.32 * b, 0.045 * a, 0.028 * b, 0.0),
                shade(self.skin, 0.4),
                1.0,
            );
        }
        // Mouth between the two corner landmarks.
        let (ml, mr) = (self.feature_u(-0.3 * a), self.feature_u(0.3 * a));
        let (mu, mhw) = ((ml + mr) * 0.5, (mr - ml) * 0.5);
        let lip = mix(self.skin, [170.0, 50.0, 60.0], 0.55);
        if self.open_mouth {
            layer.fill(&self.ellipse(mu, 0.58 * b, mhw, 0.13 * b, 0.0), lip, 1.0);
            layer.fill(
                &self.ellipse(mu, 0.58 * b, mhw * 0.8, 0.09 * b, 0.0),
                [60.0, 15.0, 20.0],
                1.0,
            );
            layer.fill(
                &self.ellipse(mu, 0.53 * b, mhw * 0.6, 0.035 * b, 0.0),
                [240.0, 240.0, 230.0],
                1.0,
            );
        } else {
            layer.fill(&self.ellipse(mu, 0.57 * b, mhw, 0.065 * b, 0.0), lip, 1.0);
            let line = self.capsule([ml, 0.56 * b], [mr, 0.56 * b], 0.018 * b);
            layer.fill(&line, [70.0, 25.0, 25.0], 0.9);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn box_tight_and_landmarks_inside() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..50 {
            let f = FaceSpec::random(&mut rng, 200.0, 200.0, 100.0);
            let b = f.box_xyxy();
            let h = b[3] - b[1];
            assert!((90.0..=125.0).contains(&h), "height {h}");
            for p in f.landmarks() {
                assert!(
                    p[0] > b[0] && p[0] < b[2] && p[1] > b[1] && p[1] < b[3],
                    "{p:?} outside {b:?}"
                );
            }
            let lm = f.landmarks();
            // Left eye left of the right eye in the local frame; mouth below the eyes.
            let (s, c) = f.angle.sin_cos();
            let local = |p: [f32; 2]| {
                (
                    (p[0] - f.cx) * c + (p[1] - f.cy) * s,
                    -(p[0] - f.cx) * s + (p[1] - f.cy) * c,
                )
            };
            assert!(local(lm[0]).0 < local(lm[1]).0);
            assert!(local(lm[3]).1 > local(lm[0]).1 && local(lm[2]).1 > local(lm[1]).1);
        }
    }

    #[test]
    fn drawn_face_has_eyes_at_landmarks() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut f = FaceSpec::random(&mut rng, 64.0, 64.0, 80.0);
        f.iris = [40.0, 30.0, 25.0];
        let mut layer = Layer::new(0, 0, 128, 128);
        f.draw(&mut layer);
        let lm = f.landmarks();
        for p in &lm[..2] {
            let d = layer.data[p[1] as usize * 128 + p[0] as usize];
            assert!(d[3] > 0.99 && d[0] < 60.0, "pupil at {p:?} is {d:?}");
        }
        let head_px = layer.data[64 * 128 + 64];
        assert!(head_px[3] > 0.99 && head_px[0] > 60.0);
    }
}
