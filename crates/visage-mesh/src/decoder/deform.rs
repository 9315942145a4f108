//! Random faces for pre-training the decoder without face scans: the template deformed by
//! random smooth fields, with random smooth skin colours.
//!
//! The choice (no scans of real faces are available here): a face's shape differs from the
//! template mostly at low spatial frequency (width, height, depth, jaw, cheek fullness), so a
//! sample is
//! - a global anisotropic scale, each axis `1 ± 0.15` (uniform), applied to the template;
//! - plus, on each of x, y and z, a sum of [`SHAPE_TERMS`] plane waves of the template's
//!   (x, y) coordinates, `a cos(π/2 (f_x x + f_y y) + φ)` with integer frequencies
//!   `f_x ∈ 0..=2`, `f_y ∈ −2..=2` (not both 0: wavelengths of 1.4 to 4 template units, the
//!   face being 2 wide), uniform phase and amplitude `|a| ≤ 0.05` (so at most ±0.15 per
//!   axis, typically ~0.05, i.e. a few percent of the face).
//!
//! Colours are a skin-like base RGB, uniform on the segment between a light and a dark skin
//! tone plus ±0.03 per channel, and a smooth variation of the same wave form with
//! [`COLOUR_TERMS`] terms of `|a| ≤ 0.05` per channel (at most ±0.1), clamped to `[0, 1]`.
//! No darker eye or brow regions: the decoder only has to learn smooth fields here, and
//! detail comes from fine-tuning on images.

use rand::Rng;

/// Plane waves per coordinate axis of the shape field.
pub const SHAPE_TERMS: usize = 3;
/// Plane waves per colour channel.
pub const COLOUR_TERMS: usize = 2;
/// Largest relative change of the global scale per axis.
const SCALE_RANGE: f32 = 0.15;
/// Largest amplitude of one shape wave (template units).
const SHAPE_AMPLITUDE: f32 = 0.05;
/// Largest amplitude of one colour wave.
const COLOUR_AMPLITUDE: f32 = 0.05;
/// Largest per-channel jitter of the base colour.
const BASE_JITTER: f32 = 0.03;
/// A light skin tone (RGB in `[0, 1]`).
const LIGHT_SKIN: [f32; 3] = [0.94, 0.78, 0.68];
/// A dark skin tone.
const DARK_SKIN: [f32; 3] = [0.40, 0.27, 0.20];

/// The mean base colour of [`random_face`] (midway between its light and dark tones): the
/// colour of the "mean shape" baseline.
pub const MID_SKIN: [f32; 3] = [
    0.5 * (LIGHT_SKIN[0] + DARK_SKIN[0]),
    0.5 * (LIGHT_SKIN[1] + DARK_SKIN[1]),
    0.5 * (LIGHT_SKIN[2] + DARK_SKIN[2]),
];

/// One term `amplitude · cos(π/2 (fx x + fy y) + phase)`.
#[derive(Debug, Clone, Copy)]
struct Wave {
    fx: f32,
    fy: f32,
    phase: f32,
    amplitude: f32,
}

impl Wave {
    fn random<R: Rng + ?Sized>(rng: &mut R, max_amplitude: f32) -> Self {
        let (fx, fy) = loop {
            let f = (rng.random_range(0..=2i32), rng.random_range(-2..=2i32));
            if f != (0, 0) {
                break f;
            }
        };
        Self {
            fx: fx as f32,
            fy: fy as f32,
            phase: rng.random_range(0.0..std::f32::consts::TAU),
            amplitude: rng.random_range(-max_amplitude..=max_amplitude),
        }
    }

    fn at(&self, x: f32, y: f32) -> f32 {
        let t = std::f32::consts::FRAC_PI_2 * (self.fx * x + self.fy * y) + self.phase;
        self.amplitude * t.cos()
    }
}

/// A random smooth field of `terms` waves per component.
fn random_field<R: Rng + ?Sized>(rng: &mut R, terms: usize, amplitude: f32) -> [Vec<Wave>; 3] {
    std::array::from_fn(|_| (0..terms).map(|_| Wave::random(rng, amplitude)).collect())
}

fn evaluate(field: &[Vec<Wave>; 3], x: f32, y: f32) -> [f32; 3] {
    field
        .each_ref()
        .map(|waves| waves.iter().map(|w| w.at(x, y)).sum())
}

/// A random face: the template deformed by a random global scale and smooth field, and
/// random smooth skin colours (see the module docs for the distribution).
///
/// # Shapes
/// - `template`: `V` vertex positions (template units, as [`FaceMesh::canonical`])
/// - returns `(positions, colours)`, `V` each; colours RGB in `[0, 1]`
///
/// [`FaceMesh::canonical`]: crate::FaceMesh::canonical
pub fn random_face<R: Rng + ?Sized>(
    rng: &mut R,
    template: &[[f32; 3]],
) -> (Vec<[f32; 3]>, Vec<[f32; 3]>) {
    let scale: [f32; 3] =
        std::array::from_fn(|_| 1.0 + rng.random_range(-SCALE_RANGE..=SCALE_RANGE));
    let shape = random_field(rng, SHAPE_TERMS, SHAPE_AMPLITUDE);
    let tone: f32 = rng.random();
    let base: [f32; 3] = std::array::from_fn(|c| {
        LIGHT_SKIN[c]
            + tone * (DARK_SKIN[c] - LIGHT_SKIN[c])
            + rng.random_range(-BASE_JITTER..=BASE_JITTER)
    });
    let tint = random_field(rng, COLOUR_TERMS, COLOUR_AMPLITUDE);

    let positions = template
        .iter()
        .map(|&[x, y, z]| {
            let d = evaluate(&shape, x, y);
            [
                scale[0] * x + d[0],
                scale[1] * y + d[1],
                scale[2] * z + d[2],
            ]
        })
        .collect();
    let colours = template
        .iter()
        .map(|&[x, y, _]| {
            let d = evaluate(&tint, x, y);
            std::array::from_fn(|c| (base[c] + d[c]).clamp(0.0, 1.0))
        })
        .collect();
    (positions, colours)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FaceMesh;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn deterministic_for_a_seed_and_varied_across_seeds() {
        let template = &FaceMesh::canonical().vertices;
        let a = random_face(&mut ChaCha8Rng::seed_from_u64(3), template);
        let b = random_face(&mut ChaCha8Rng::seed_from_u64(3), template);
        let c = random_face(&mut ChaCha8Rng::seed_from_u64(4), template);
        assert_eq!(a, b);
        assert_ne!(a.0, c.0);
        assert_eq!((a.0.len(), a.1.len()), (template.len(), template.len()));
    }

    #[test]
    fn deformations_stay_within_their_bounds() {
        let template = &FaceMesh::canonical().vertices;
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut mean_colour = [0.0f64; 3];
        let samples = 200;
        for _ in 0..samples {
            let (positions, colours) = random_face(&mut rng, template);
            for (p, t) in positions.iter().zip(template) {
                for a in 0..3 {
                    let bound = SCALE_RANGE * t[a].abs() + SHAPE_TERMS as f32 * SHAPE_AMPLITUDE;
                    assert!((p[a] - t[a]).abs() <= bound + 1e-5, "{p:?} vs {t:?}");
                }
            }
            for c in &colours {
                assert!(c.iter().all(|v| (0.0..=1.0).contains(v)));
            }
            for (c, m) in mean_colour.iter_mut().enumerate() {
                *m += colours.iter().map(|v| v[c] as f64).sum::<f64>() / colours.len() as f64;
            }
        }
        for (c, m) in mean_colour.iter().enumerate() {
            let m = m / samples as f64;
            assert!(
                (m - MID_SKIN[c] as f64).abs() < 0.05,
                "channel {c}: mean {m}"
            );
        }
    }

    #[test]
    fn fields_are_smooth_along_mesh_edges() {
        // Neighbouring vertices move by nearly the same amount: the displacement difference
        // along an edge is far below the displacement itself.
        let mesh = FaceMesh::canonical();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (positions, _) = random_face(&mut rng, &mesh.vertices);
        let disp: Vec<[f32; 3]> = positions
            .iter()
            .zip(&mesh.vertices)
            .map(|(p, t)| std::array::from_fn(|a| p[a] - t[a]))
            .collect();
        let norm = |v: [f32; 3]| (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
        let edges = mesh.edges();
        let along: f32 = edges
            .iter()
            .map(|&[i, j]| norm(std::array::from_fn(|a| disp[i][a] - disp[j][a])))
            .sum::<f32>()
            / edges.len() as f32;
        let mean: f32 = disp.iter().map(|&d| norm(d)).sum::<f32>() / disp.len() as f32;
        assert!(
            along < 0.2 * mean,
            "edge difference {along}, displacement {mean}"
        );
    }
}
