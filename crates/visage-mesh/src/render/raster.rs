//! Host rasterisation of triangle ids (the non-differentiable half of the renderer).
//!
//! A pixel belongs to a triangle when its centre `(j + ½, i + ½)` lies inside it; on a
//! shared edge a top-left style tie rule gives it to exactly one of the two triangles, so a
//! closed mesh has neither holes nor double coverage. Both windings are drawn (no back-face
//! culling: a face seen from behind is still the nearest surface along its rays). The nearest
//! triangle wins; depth is interpolated perspective-correctly (`1 / depth` is affine in
//! screen space). Triangles with a vertex nearer than [`NEAR`] (or not finite), and
//! degenerate triangles (|screen area| < [`MIN_AREA`] px²) are left out.
//!
//! Arithmetic is in f64 on the f32 inputs; edge functions are evaluated with the edge's
//! endpoints in ascending vertex-index order (and negated when the triangle lists them the
//! other way), so the two triangles sharing an edge see exactly opposite values there.

use super::camera::NEAR;

/// Smallest screen-space triangle area drawn, in square pixels.
pub const MIN_AREA: f64 = 1e-8;

/// Triangle ids and depths of one rasterised `S × S` crop, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Fragments {
    /// Index into the triangle list of the nearest triangle at each pixel, `None` where the
    /// pixel centre is in no (drawn) triangle.
    pub ids: Vec<Option<u32>>,
    /// Depth of that triangle at the pixel centre (camera units), `f32::INFINITY` where none.
    pub depth: Vec<f32>,
}

/// Edge function of the directed edge `a → b` at `(x, y)`: twice the signed area of
/// `(a, b, p)`, positive when `p` is to the left of `a → b` in a y-up frame (to the right on
/// screen, y down).
fn edge(a: [f64; 2], b: [f64; 2], x: f64, y: f64) -> f64 {
    (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0])
}

/// [`edge`] evaluated with the endpoints in ascending vertex-index order, so that the value is
/// exactly antisymmetric in `(ia, ib)`.
fn canonical_edge(ia: usize, a: [f64; 2], ib: usize, b: [f64; 2], x: f64, y: f64) -> f64 {
    if ia < ib {
        edge(a, b, x, y)
    } else {
        -edge(b, a, x, y)
    }
}

/// Whether an edge with (orientation-normalised) direction `(dx, dy)` owns the pixel centres
/// lying exactly on it. Exactly one of `d` and `−d` owns them (for `d ≠ 0`).
fn owns_ties(dx: f64, dy: f64) -> bool {
    dy > 0.0 || (dy == 0.0 && dx < 0.0)
}

/// Rasterises one mesh's triangle ids into an `S × S` crop.
///
/// `projected` holds `(u, v, depth)` per vertex (row-major `[V, 3]`, as [`super::project`]
/// returns), `u`, `v` in crop pixels. Returns the id of the nearest triangle whose interior
/// contains each pixel centre, row-major (`i · S + j`). See the module doc for the rules.
///
/// # Panics
/// If `projected.len()` is not a multiple of 3 or a triangle names a vertex past its end.
pub fn rasterise(projected: &[f32], triangles: &[[usize; 3]], size: usize) -> Vec<Option<u32>> {
    rasterise_with_depth(projected, triangles, size).ids
}

/// [`rasterise`], also returning the depth of the winning triangle at each pixel.
///
/// # Panics
/// As [`rasterise`].
pub fn rasterise_with_depth(projected: &[f32], triangles: &[[usize; 3]], size: usize) -> Fragments {
    assert_eq!(projected.len() % 3, 0, "projected: expected [V, 3] values");
    let vertices = projected.len() / 3;
    let mut ids = vec![None; size * size];
    let mut inverse_depth = vec![0.0f64; size * size];
    let last = size as f64 - 1.0;
    for (t, tri) in triangles.iter().enumerate() {
        assert!(
            tri.iter().all(|&k| k < vertices),
            "triangle {t} {tri:?} names a vertex past {vertices}"
        );
        let corner = |k: usize| {
            let o = 3 * tri[k];
            [
                f64::from(projected[o]),
                f64::from(projected[o + 1]),
                f64::from(projected[o + 2]),
            ]
        };
        let [c0, c1, c2] = [corner(0), corner(1), corner(2)];
        if [c0, c1, c2]
            .iter()
            .any(|c| !(c.iter().all(|x| x.is_finite()) && c[2] >= NEAR))
        {
            continue;
        }
        let [p0, p1, p2] = [[c0[0], c0[1]], [c1[0], c1[1]], [c2[0], c2[1]]];
        let area2 = edge(p0, p1, p2[0], p2[1]);
        // (A repeated vertex index gives area2 = 0 exactly.)
        if area2.abs() < 2.0 * MIN_AREA {
            continue;
        }
        let sign = area2.signum();
        // Edges opposite corners 0, 1, 2 (a → b in the triangle's own order), their
        // orientation-normalised tie ownership.
        let edges = [(1, 2), (2, 0), (0, 1)];
        let points = [p0, p1, p2];
        let owns: [bool; 3] = edges.map(|(a, b)| {
            let (pa, pb) = (points[a], points[b]);
            owns_ties(sign * (pb[0] - pa[0]), sign * (pb[1] - pa[1]))
        });
        let min_u = p0[0].min(p1[0]).min(p2[0]);
        let max_u = p0[0].max(p1[0]).max(p2[0]);
        let min_v = p0[1].min(p1[1]).min(p2[1]);
        let max_v = p0[1].max(p1[1]).max(p2[1]);
        // Pixel centres c + ½ within [min, max], clamped to the crop.
        let (j0, j1) = (
            (min_u - 0.5).ceil().max(0.0),
            (max_u - 0.5).floor().min(last),
        );
        let (i0, i1) = (
            (min_v - 0.5).ceil().max(0.0),
            (max_v - 0.5).floor().min(last),
        );
        if j0 > j1 || i0 > i1 {
            continue;
        }
        let inv = [1.0 / c0[2], 1.0 / c1[2], 1.0 / c2[2]];
        for i in i0 as usize..=i1 as usize {
            let y = i as f64 + 0.5;
            for j in j0 as usize..=j1 as usize {
                let x = j as f64 + 0.5;
                let mut w = [0.0; 3];
                let mut inside = true;
                for (k, &(a, b)) in edges.iter().enumerate() {
                    w[k] = sign * canonical_edge(tri[a], points[a], tri[b], points[b], x, y);
                    inside &= w[k] > 0.0 || (w[k] == 0.0 && owns[k]);
                }
                if !inside {
                    continue;
                }
                let total = w[0] + w[1] + w[2];
                let inverse = (w[0] * inv[0] + w[1] * inv[1] + w[2] * inv[2]) / total;
                let pixel = i * size + j;
                if inverse > inverse_depth[pixel] {
                    inverse_depth[pixel] = inverse;
                    ids[pixel] = Some(t as u32);
                }
            }
        }
    }
    let depth = inverse_depth
        .iter()
        .zip(&ids)
        .map(|(&inv, id)| {
            if id.is_some() {
                (1.0 / inv) as f32
            } else {
                f32::INFINITY
            }
        })
        .collect();
    Fragments { ids, depth }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(u, v, depth)` rows.
    fn flat(points: &[[f32; 3]]) -> Vec<f32> {
        points.iter().flatten().copied().collect()
    }

    fn covered(ids: &[Option<u32>], size: usize, id: u32) -> Vec<(usize, usize)> {
        (0..size * size)
            .filter(|&p| ids[p] == Some(id))
            .map(|p| (p / size, p % size))
            .collect()
    }

    #[test]
    fn single_triangle_covers_the_centres_inside() {
        // Triangle A = (1, 1), (7, 1), (1, 7) on 8 × 8: centres (j + ½, i + ½) with
        // j + ½ > 1, i + ½ > 1 and (j + ½) + (i + ½) < 8, i.e. i, j ≥ 1 and i + j ≤ 6, and
        // the six centres with i + j = 7 lie on its hypotenuse. The tie rule gives them to A
        // (its hypotenuse runs (7, 1) → (1, 7), dv > 0 once the orientation is normalised),
        // and not to B = (7, 7), (1, 7), (7, 1), the other half of the square [1, 7]²,
        // which covers i, j ≤ 6, i + j ≥ 8. Both windings give the same pixels.
        let p = flat(&[
            [1.0, 1.0, 2.5],
            [7.0, 1.0, 2.5],
            [1.0, 7.0, 2.5],
            [7.0, 7.0, 2.5],
        ]);
        let pixels = |keep: &dyn Fn(usize, usize) -> bool| -> Vec<(usize, usize)> {
            (0..8)
                .flat_map(|i| (0..8).map(move |j| (i, j)))
                .filter(|&(i, j)| keep(i, j))
                .collect()
        };
        let expected_a = pixels(&|i, j| i >= 1 && j >= 1 && i + j <= 7);
        let expected_b = pixels(&|i, j| i <= 6 && j <= 6 && i + j >= 8);
        for (a, b) in [([0, 1, 2], [3, 2, 1]), ([0, 2, 1], [3, 1, 2])] {
            let f = rasterise_with_depth(&p, &[a, b], 8);
            assert_eq!(covered(&f.ids, 8, 0), expected_a, "winding {a:?}");
            assert_eq!(covered(&f.ids, 8, 1), expected_b, "winding {b:?}");
            for (p, id) in f.ids.iter().enumerate() {
                let d = f.depth[p];
                assert!(if id.is_some() {
                    (d - 2.5).abs() < 1e-6
                } else {
                    d.is_infinite()
                });
            }
        }
    }

    #[test]
    fn interpolated_depth_is_perspective_correct() {
        // Depth 1 on the left edge u = 0, 3 on the right u = 4 (a plane seen at a slant):
        // 1/depth is affine in u, so at u = 2: 1 / ((1 + 1/3) / 2) = 1.5.
        let p = flat(&[
            [0.0, 0.0, 1.0],
            [4.0, 0.0, 3.0],
            [4.0, 4.0, 3.0],
            [0.0, 4.0, 1.0],
        ]);
        let f = rasterise_with_depth(&p, &[[0, 1, 2], [0, 2, 3]], 4);
        for i in 0..4 {
            for j in 0..4 {
                let u = j as f32 + 0.5;
                let expected = 1.0 / (1.0 + (1.0 / 3.0 - 1.0) * u / 4.0);
                assert!(
                    (f.depth[i * 4 + j] - expected).abs() < 1e-5,
                    "({i}, {j}) {:?}",
                    f.depth
                );
            }
        }
    }

    #[test]
    fn nearer_triangle_wins() {
        // Two triangles over the whole 4 × 4 crop; the first far, the second near, then the
        // other way round (the order drawn must not matter).
        let tri = |d: f32| [[-1.0, -1.0, d], [12.0, -1.0, d], [-1.0, 12.0, d]];
        for (d0, d1, winner) in [(5.0, 2.0, 1), (2.0, 5.0, 0)] {
            let p = flat(&[tri(d0), tri(d1)].concat());
            let f = rasterise_with_depth(&p, &[[0, 1, 2], [3, 4, 5]], 4);
            assert!(f.ids.iter().all(|&id| id == Some(winner)), "{:?}", f.ids);
            assert!(f.depth.iter().all(|&d| (d - d0.min(d1)).abs() < 1e-6));
        }
    }

    #[test]
    fn shared_edges_have_no_holes_and_no_overlap() {
        // A fan of eight triangles filling the square [0, 9]² around a centre that is a pixel
        // corner, a pixel centre, or neither; its edges run through many pixel centres
        // (the diagonals, the lines u = 4.5 and v = 4.5).
        for centre in [[4.0f32, 4.0], [4.5, 4.5], [3.5, 4.0]] {
            let ring = [
                [0.0f32, 0.0],
                [4.5, 0.0],
                [9.0, 0.0],
                [9.0, 4.5],
                [9.0, 9.0],
                [4.5, 9.0],
                [0.0, 9.0],
                [0.0, 4.5],
            ];
            let mut points = vec![[centre[0], centre[1], 3.0]];
            points.extend(ring.iter().map(|r| [r[0], r[1], 3.0]));
            let p = flat(&points);
            let tris: Vec<[usize; 3]> = (0..8).map(|k| [0, 1 + k, 1 + (k + 1) % 8]).collect();
            // Every pixel centre of the 8 × 8 crop lies in the square: each must be covered by
            // exactly one triangle drawn on its own.
            let mut count = [0usize; 64];
            for tri in &tris {
                for (pixel, id) in rasterise(&p, &[*tri], 8).iter().enumerate() {
                    count[pixel] += usize::from(id.is_some());
                }
            }
            assert!(
                count.iter().all(|&c| c == 1),
                "centre {centre:?}: {count:?}"
            );
            assert!(rasterise(&p, &tris, 8).iter().all(Option::is_some));
        }
    }

    #[test]
    fn skips_degenerate_and_behind_the_camera() {
        let p = flat(&[
            [1.0, 1.0, 2.0],
            [7.0, 1.0, 2.0],
            [4.0, 1.0, 2.0],
            [1.0, 7.0, -1.0],
            [f32::NAN, 0.0, 2.0],
        ]);
        let ids = rasterise(&p, &[[0, 1, 2], [0, 1, 3], [0, 1, 4], [0, 0, 3]], 8);
        assert!(ids.iter().all(Option::is_none), "{ids:?}");
    }
}
