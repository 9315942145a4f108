//! The camera: a look-at pinhole whose raw parameters are zero at the default view.
//!
//! A raw camera row is `(x_c, y_c, z_c, x'_c, y'_c, z'_c, f_c)`:
//!
//! - eye = `(x_c, y_c, CAMERA_DISTANCE + z_c)`, target = `(x'_c, y'_c, z'_c)`, fixed up
//!   vector `(0, 1, 0)`;
//! - forward = normalize(target − eye), right = normalize(forward × up), true up =
//!   right × forward; camera-space `(x, y, depth)` = `(right·(p − eye), up'·(p − eye),
//!   forward·(p − eye))`;
//! - focal = `FOCAL · exp(f_c)`; for a crop of side `S` pixels
//!   `u = S/2 · (1 + focal · x / depth)`, `v = S/2 · (1 − focal · y / depth)` (image y
//!   down), the pixel in row `i`, column `j` having its centre at `(u, v) = (j + ½, i + ½)`.
//!
//! All zeros look at the origin from `(0, 0, 4)` down −z, with +x to the right and +y up in
//! the image: the template (spanning [−1, 1]) fills `FOCAL / CAMERA_DISTANCE` = 90 % of the
//! crop at depth 4.

use burn::tensor::{backend::Backend, Tensor};

/// Distance of the default eye from the origin along +z, in template units (the face spans
/// [−1, 1] in x and y).
pub const CAMERA_DISTANCE: f64 = 4.0;

/// Focal length at `f_c = 0`, in units of the crop's half side: a point at `x = depth / FOCAL`
/// lands on the crop's right border.
pub const FOCAL: f64 = 3.6;

/// Nearest depth drawn. Projection divides by `max(depth, NEAR)`, and the rasteriser leaves
/// out every triangle with a vertex nearer than this (no clipping: the whole triangle goes).
pub const NEAR: f64 = 1e-2;

/// Guard of the look-at basis. `right = normalize(forward × up + LOOK_EPS · x̂)`: when the
/// camera looks straight along ±y (`forward × up = 0`) the right vector falls back to +x
/// instead of dividing zero by zero; for any other view it tilts the basis by at most about
/// `LOOK_EPS` radians. Lengths are normalised as `v / sqrt(|v|² + NORM_EPS²)`.
pub const LOOK_EPS: f64 = 1e-6;

/// Length guard of every normalisation in the camera (see [`LOOK_EPS`]): zero vectors map to
/// zero (target = eye gives a degenerate but finite view).
pub const NORM_EPS: f64 = 1e-12;

/// Number of raw camera values per mesh.
pub const CAMERA_PARAMS: usize = 7;

/// `v / sqrt(|v|² + eps²)` along `dim`.
pub(crate) fn normalize<B: Backend, const D: usize>(
    v: Tensor<B, D>,
    dim: usize,
    eps: f64,
) -> Tensor<B, D> {
    let norm = v
        .clone()
        .powi_scalar(2)
        .sum_dim(dim)
        .add_scalar(eps * eps)
        .sqrt();
    v / norm
}

/// The eye position and the rows (right, true up, forward) of the world-to-camera rotation.
///
/// # Shapes
/// - `camera`: `[M, 7]` raw camera values
/// - returns `(eye [M, 3], rotation [M, 3, 3])`, rotation rows right, up', forward
pub fn camera_frame<B: Backend>(camera: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 3>) {
    let [m, k] = camera.dims();
    assert_eq!(k, CAMERA_PARAMS, "camera: expected [M, 7], got [{m}, {k}]");
    let eye = Tensor::cat(
        vec![
            camera.clone().slice([0..m, 0..2]),
            camera
                .clone()
                .slice([0..m, 2..3])
                .add_scalar(CAMERA_DISTANCE),
        ],
        1,
    );
    let target = camera.slice([0..m, 3..6]);
    let forward = normalize(target - eye.clone(), 1, NORM_EPS);
    // forward × (0, 1, 0) = (−f_z, 0, f_x), nudged toward +x (LOOK_EPS).
    let f_x = forward.clone().slice([0..m, 0..1]);
    let f_z = forward.clone().slice([0..m, 2..3]);
    let right = Tensor::cat(
        vec![
            f_z.clone().neg().add_scalar(LOOK_EPS),
            f_x.zeros_like(),
            f_x,
        ],
        1,
    );
    let right = normalize(right, 1, NORM_EPS);
    let up = right.clone().cross(forward.clone(), 1);
    let rotation = Tensor::stack(vec![right, up, forward], 1);
    (eye, rotation)
}

/// Camera-space coordinates `(x, y, depth)` of every vertex.
///
/// # Shapes
/// - `positions`: `[M, V, 3]` world coordinates (template units)
/// - `camera`: `[M, 7]` raw camera values
/// - returns `[M, V, 3]`
pub fn to_camera<B: Backend>(positions: Tensor<B, 3>, camera: Tensor<B, 2>) -> Tensor<B, 3> {
    let [m, _, _] = positions.dims();
    let (eye, rotation) = camera_frame(camera);
    let relative = positions - eye.reshape([m, 1, 3]);
    relative.matmul(rotation.swap_dims(1, 2))
}

/// Projects vertices into an `S × S` crop.
///
/// Returns `(u, v, depth)`: `u`, `v` in crop pixels (`(0, 0)` the top-left corner of the
/// top-left pixel), computed with the depth clamped below at [`NEAR`]; `depth` unclamped,
/// so that the rasteriser can leave out triangles behind the camera. Works in the input's
/// dtype (f32 or f64).
///
/// # Shapes
/// - `positions`: `[M, V, 3]` world coordinates
/// - `camera`: `[M, 7]` raw camera values (see the module doc)
/// - returns `[M, V, 3]`
pub fn project<B: Backend>(
    positions: Tensor<B, 3>,
    camera: Tensor<B, 2>,
    size: usize,
) -> Tensor<B, 3> {
    let [m, v, _] = positions.dims();
    let focal_raw = camera.clone().slice([0..m, 6..7]);
    let cam = to_camera(positions, camera);
    let x = cam.clone().slice([0..m, 0..v, 0..1]);
    let y = cam.clone().slice([0..m, 0..v, 1..2]);
    let depth = cam.slice([0..m, 0..v, 2..3]);
    let half = size as f64 / 2.0;
    // S/2 · focal / depth, [M, V, 1].
    let scale =
        focal_raw.exp().mul_scalar(FOCAL * half).reshape([m, 1, 1]) / depth.clone().clamp_min(NEAR);
    let u = (x * scale.clone()).add_scalar(half);
    let v = (y * scale).neg().add_scalar(half);
    Tensor::cat(vec![u, v, depth], 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{tensor, values};

    #[test]
    fn default_view_projects_by_hand() {
        // Points at depth 4 (z = 0) and 3 (z = 1), size 10: u = 5 (1 + 0.9 x · 4 / depth).
        let p = tensor(
            vec![0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, -1.0, 1.0],
            [1, 4, 3],
        );
        let got = values(project(p, tensor(vec![0.0; 7], [1, 7]), 10));
        let expected = [
            5.0,
            5.0,
            4.0, //
            9.5,
            5.0,
            4.0, // u = 5 (1 + 3.6 / 4)
            5.0,
            0.5,
            4.0, // v = 5 (1 − 0.9), image y down
            5.0 * (1.0 + 1.2),
            5.0 * (1.0 + 1.2),
            3.0,
        ];
        for (g, e) in got.iter().zip(expected) {
            assert!((g - e).abs() < 1e-5, "{got:?}");
        }
    }

    #[test]
    fn focal_and_eye_offsets() {
        // f_c = ln 2 doubles the offset from the centre; moving the eye and the target by
        // (0.5, 0, 0) together shifts the point left by 0.5 in camera x.
        let p = tensor(vec![1.0, 0.0, 0.0], [1, 1, 3]);
        let zoom = values(project(
            p.clone(),
            tensor(vec![0., 0., 0., 0., 0., 0., 2f32.ln()], [1, 7]),
            10,
        ));
        assert!((zoom[0] - 5.0 * (1.0 + 1.8)).abs() < 1e-4, "{zoom:?}");
        let shift = values(project(
            p,
            tensor(vec![0.5, 0., 0., 0.5, 0., 0., 0.], [1, 7]),
            10,
        ));
        assert!((shift[0] - 5.0 * (1.0 + 0.45)).abs() < 1e-4, "{shift:?}");
    }

    #[test]
    fn basis_is_orthonormal_and_finite_when_looking_up() {
        // Looking straight up (+y) from (0, 0, 4): right falls back to +x, up' to +z.
        let camera = tensor(
            vec![
                0., 0., 0., 0., 5., 4., 0., 0.3, -0.2, 0.1, 0.2, 0.1, -0.1, 0.,
            ],
            [2, 7],
        );
        let (_, rotation) = camera_frame(camera);
        let r = values(rotation);
        assert!(r.iter().all(|x| x.is_finite()));
        assert!(
            (r[0] - 1.0).abs() < 1e-5 && (r[5] - 1.0).abs() < 1e-5 && (r[7] - 1.0).abs() < 1e-5,
            "{r:?}"
        );
        for m in 0..2 {
            let rows: Vec<&[f32]> = (0..3)
                .map(|k| &r[m * 9 + 3 * k..m * 9 + 3 * k + 3])
                .collect();
            for a in 0..3 {
                for b in 0..3 {
                    let dot: f32 = rows[a].iter().zip(rows[b]).map(|(x, y)| x * y).sum();
                    let want = if a == b { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-5, "mesh {m}: rows {a}·{b} = {dot}");
                }
            }
        }
    }
}
