//! Shading: area-weighted vertex normals, one point light (Lambert) plus ambient, per vertex
//! (the rasterised pixels interpolate the shaded vertex colours: Gouraud shading).
//!
//! A raw light row is `(x_l, y_l, z_l, r_l, g_l, b_l, r_a, g_a, b_a)`: the point light sits at
//! `(x_l, y_l, CAMERA_DISTANCE + z_l)` (with the camera at zeros), its colour is
//! `LIGHT_BASE + (r_l, g_l, b_l)` and the ambient light `AMBIENT_BASE + (r_a, g_a, b_a)`.
//! A vertex with albedo `a`, position `p` and unit normal `n` is shaded
//! `a ⊙ (ambient + light_colour · max(0, n · normalize(light − p)))`.

use burn::tensor::{backend::Backend, IndexingUpdateOp, Int, Tensor, TensorData};

use super::camera::{normalize, CAMERA_DISTANCE};

/// Light colour at zero raw values (each RGB channel).
pub const LIGHT_BASE: f64 = 0.7;

/// Ambient light at zero raw values (each RGB channel). A surface facing the light at zeros
/// is shaded with `LIGHT_BASE + AMBIENT_BASE = 1`: its albedo.
pub const AMBIENT_BASE: f64 = 0.3;

/// Length guard of the normal and light-direction normalisations (`v / sqrt(|v|² + ε²)`): a
/// vertex without area around it (isolated, or only in degenerate triangles) gets the zero
/// normal and only ambient light, not NaN.
pub const SHADE_EPS: f64 = 1e-12;

/// Number of raw light values per mesh.
pub const LIGHT_PARAMS: usize = 9;

/// Area-weighted vertex normals: the sum of the unnormalised face normals
/// `(v1 − v0) × (v2 − v0)` of the triangles around each vertex, normalised. With the
/// template's counter-clockwise triangles (seen from +z) they point toward +z.
///
/// # Shapes
/// - `positions`: `[M, V, 3]`
/// - returns `[M, V, 3]` (unit, or zero where a vertex has no area around it)
pub fn vertex_normals<B: Backend>(
    positions: Tensor<B, 3>,
    triangles: &[[usize; 3]],
) -> Tensor<B, 3> {
    let [m, v, _] = positions.dims();
    let t = triangles.len();
    if t == 0 {
        return positions.zeros_like();
    }
    let device = positions.device();
    let corners: Vec<Tensor<B, 1, Int>> = (0..3)
        .map(|k| {
            let idx: Vec<i64> = triangles.iter().map(|tri| tri[k] as i64).collect();
            Tensor::from_data(TensorData::new(idx, [t]), &device)
        })
        .collect();
    let p0 = positions.clone().select(1, corners[0].clone());
    let p1 = positions.clone().select(1, corners[1].clone());
    let p2 = positions.clone().select(1, corners[2].clone());
    let face = (p1 - p0.clone()).cross(p2 - p0, 2); // [M, T, 3]
    let sum = positions.zeros_like().select_assign(
        1,
        Tensor::cat(corners, 0),
        Tensor::cat(vec![face.clone(), face.clone(), face], 1),
        IndexingUpdateOp::Add,
    );
    debug_assert_eq!(sum.dims(), [m, v, 3]);
    normalize(sum, 2, SHADE_EPS)
}

/// Shaded vertex colours (Lambert + ambient, see the module doc).
///
/// # Shapes
/// - `positions`: `[M, V, 3]` world coordinates
/// - `albedo`: `[M, V, 3]` RGB in [0, 1]
/// - `light`: `[M, 9]` raw light values
/// - returns `[M, V, 3]`
pub fn shade<B: Backend>(
    positions: Tensor<B, 3>,
    albedo: Tensor<B, 3>,
    light: Tensor<B, 2>,
    triangles: &[[usize; 3]],
) -> Tensor<B, 3> {
    let [m, _, _] = positions.dims();
    let [lm, k] = light.dims();
    assert!(
        k == LIGHT_PARAMS && lm == m,
        "light: expected [{m}, {LIGHT_PARAMS}], got [{lm}, {k}]"
    );
    let normals = vertex_normals(positions.clone(), triangles);
    let at = Tensor::cat(
        vec![
            light.clone().slice([0..m, 0..2]),
            light
                .clone()
                .slice([0..m, 2..3])
                .add_scalar(CAMERA_DISTANCE),
        ],
        1,
    );
    let colour = light.clone().slice([0..m, 3..6]).add_scalar(LIGHT_BASE);
    let ambient = light.slice([0..m, 6..9]).add_scalar(AMBIENT_BASE);
    let direction = normalize(at.reshape([m, 1, 3]) - positions, 2, SHADE_EPS);
    let lambert = (normals * direction).sum_dim(2).clamp_min(0.0); // [M, V, 1]
    albedo * (ambient.reshape([m, 1, 3]) + colour.reshape([m, 1, 3]) * lambert)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{tensor, values};

    #[test]
    fn normals_are_area_weighted() {
        // Triangle 0 = (0, 1, 2) in z = 0: face normal (1, 0, 0) × (0, 1, 0) = (0, 0, 1).
        // Triangle 1 = (3, 0, 4) in x = 0, twice the area: (0, 0, 1) × (0, 2, 0) = (−2, 0, 0).
        let p = tensor(
            vec![0., 0., 0., 1., 0., 0., 0., 1., 0., 0., 0., -1., 0., 2., -1.],
            [1, 5, 3],
        );
        let n = values(vertex_normals(p, &[[0, 1, 2], [3, 0, 4]]));
        // Vertex 0 is in both: (−2, 0, 1) / √5; vertices 1, 2: +z; vertices 3, 4: −x.
        let s = 5f32.sqrt();
        let expected = [
            -2. / s,
            0.,
            1. / s,
            0.,
            0.,
            1.,
            0.,
            0.,
            1.,
            -1.,
            0.,
            0.,
            -1.,
            0.,
            0.,
        ];
        for (g, e) in n.iter().zip(expected) {
            assert!((g - e).abs() < 1e-5, "{n:?}");
        }
    }

    #[test]
    fn default_light_gives_albedo_facing_the_camera() {
        // Vertex at the origin facing +z, light at (0, 0, 4): shade = albedo · (0.3 + 0.7).
        // A vertex of a triangle facing away (−z) gets ambient only.
        let p = tensor(
            vec![
                0., 0., 0., 1., 0., 0., 0., 1., 0., 5., 0., 0., 5., 1., 0., 6., 0., 0.,
            ],
            [1, 6, 3],
        );
        let albedo = tensor([0.5, 0.25, 1.0].repeat(6), [1, 6, 3]);
        let light = tensor(vec![0.0; 9], [1, 9]);
        let got = values(shade(p, albedo, light, &[[0, 1, 2], [3, 4, 5]]));
        assert!(
            (got[0] - 0.5).abs() < 1e-5
                && (got[1] - 0.25).abs() < 1e-5
                && (got[2] - 1.0).abs() < 1e-5
        );
        assert!(
            (got[9] - 0.15).abs() < 1e-5 && (got[11] - 0.3).abs() < 1e-5,
            "{got:?}"
        );
        // Ambient and light colour offsets: (0, 0, 0) facing the light at distance 4,
        // colour 0.7 + 0.1 = 0.8, ambient 0.3 − 0.1 = 0.2: 0.5 · 1.0.
        let light = tensor(vec![0., 0., 0., 0.1, 0.1, 0.1, -0.1, -0.1, -0.1], [1, 9]);
        let p = tensor(vec![0., 0., 0., 1., 0., 0., 0., 1., 0.], [1, 3, 3]);
        let got = values(shade(
            p,
            tensor(vec![0.5; 9], [1, 3, 3]),
            light,
            &[[0, 1, 2]],
        ));
        assert!((got[0] - 0.5).abs() < 1e-5, "{got:?}");
    }

    #[test]
    fn degenerate_and_isolated_vertices_stay_finite() {
        let p = tensor(
            vec![0., 0., 0., 0., 0., 0., 1., 1., 1., 2., 2., 2.],
            [1, 4, 3],
        );
        let got = values(shade(
            p.clone(),
            p.ones_like(),
            tensor(vec![0.0; 9], [1, 9]),
            &[[0, 1, 2]],
        ));
        assert!(got.iter().all(|x| x.is_finite()), "{got:?}");
        // Vertex 3 (isolated) and all of the degenerate triangle: ambient only.
        assert!(got.iter().all(|x| (x - 0.3).abs() < 1e-6), "{got:?}");
    }
}
