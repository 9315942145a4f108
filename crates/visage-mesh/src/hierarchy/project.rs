//! Up-sampling weights (COMA's scheme): a kept vertex copies its coarse self; a collapsed
//! vertex takes the barycentric coordinates of its closest point on the nearest coarse
//! triangle (clamped to the triangle, so the weights are convex).

use super::collapse::{dot, sub};
use super::Upsampling;

/// The closest point of triangle `abc` to `p`: its barycentric coordinates (non-negative,
/// summing to 1) and its squared distance to `p` (Ericson, *Real-Time Collision
/// Detection*, §5.1.5).
pub(crate) fn closest_on_triangle(
    p: [f64; 3],
    a: [f64; 3],
    b: [f64; 3],
    c: [f64; 3],
) -> ([f64; 3], f64) {
    let weights = |w: [f64; 3]| {
        let q = [0, 1, 2].map(|k| w[0] * a[k] + w[1] * b[k] + w[2] * c[k]);
        let d = sub(p, q);
        (w, dot(d, d))
    };
    let ab = sub(b, a);
    let ac = sub(c, a);
    let ap = sub(p, a);
    let d1 = dot(ab, ap);
    let d2 = dot(ac, ap);
    if d1 <= 0.0 && d2 <= 0.0 {
        return weights([1.0, 0.0, 0.0]);
    }
    let bp = sub(p, b);
    let d3 = dot(ab, bp);
    let d4 = dot(ac, bp);
    if d3 >= 0.0 && d4 <= d3 {
        return weights([0.0, 1.0, 0.0]);
    }
    let vc = d1 * d4 - d3 * d2;
    if vc <= 0.0 && d1 >= 0.0 && d3 <= 0.0 {
        let v = d1 / (d1 - d3);
        return weights([1.0 - v, v, 0.0]);
    }
    let cp = sub(p, c);
    let d5 = dot(ab, cp);
    let d6 = dot(ac, cp);
    if d6 >= 0.0 && d5 <= d6 {
        return weights([0.0, 0.0, 1.0]);
    }
    let vb = d5 * d2 - d1 * d6;
    if vb <= 0.0 && d2 >= 0.0 && d6 <= 0.0 {
        let w = d2 / (d2 - d6);
        return weights([1.0 - w, 0.0, w]);
    }
    let va = d3 * d6 - d5 * d4;
    if va <= 0.0 && d4 - d3 >= 0.0 && d5 - d6 >= 0.0 {
        let w = (d4 - d3) / ((d4 - d3) + (d5 - d6));
        return weights([0.0, 1.0 - w, w]);
    }
    let denom = 1.0 / (va + vb + vc);
    let v = vb * denom;
    let w = vc * denom;
    weights([1.0 - v - w, v, w])
}

/// Up-sampling from the coarse level (`kept`, `coarse_triangles` in coarse indices) back to
/// the fine level with vertex `positions`.
pub(crate) fn upsampling(
    positions: &[[f64; 3]],
    kept: &[usize],
    coarse_triangles: &[[usize; 3]],
) -> Upsampling {
    let mut coarse_of = vec![None; positions.len()];
    for (j, &k) in kept.iter().enumerate() {
        coarse_of[k] = Some(j);
    }
    let sources = positions
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            if let Some(j) = coarse_of[i] {
                return ([j, j, j], [1.0, 0.0, 0.0]);
            }
            let mut best: Option<([usize; 3], [f64; 3], f64)> = None;
            for t in coarse_triangles {
                let [a, b, c] = t.map(|j| positions[kept[j]]);
                let (w, d2) = closest_on_triangle(p, a, b, c);
                if best.as_ref().is_none_or(|&(_, _, bd)| d2 < bd) {
                    best = Some((*t, w, d2));
                }
            }
            let (t, w, _) = best.expect("a coarse level has triangles");
            (t, to_f32_weights(w))
        })
        .collect();
    Upsampling {
        fine: positions.len(),
        coarse: kept.len(),
        sources,
    }
}

/// Convex `f64` weights as `f32`, clamped to `[0, 1]`, the first absorbing the rounding so
/// that they sum to 1 as closely as `f32` allows.
fn to_f32_weights(w: [f64; 3]) -> [f32; 3] {
    let w1 = w[1].clamp(0.0, 1.0) as f32;
    let w2 = w[2].clamp(0.0, 1.0) as f32;
    [(1.0 - w1 - w2).max(0.0), w1, w2]
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [f64; 3] = [0.0, 0.0, 0.0];
    const B: [f64; 3] = [2.0, 0.0, 0.0];
    const C: [f64; 3] = [0.0, 2.0, 0.0];

    fn close(a: [f64; 3], b: [f64; 3]) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    #[test]
    fn closest_point_in_every_region() {
        // Inside, above the plane.
        let (w, d2) = closest_on_triangle([0.5, 0.5, 3.0], A, B, C);
        assert!(close(w, [0.5, 0.25, 0.25]) && (d2 - 9.0).abs() < 1e-12);
        // Vertex regions.
        assert!(close(
            closest_on_triangle([-1.0, -1.0, 0.0], A, B, C).0,
            [1.0, 0.0, 0.0]
        ));
        assert!(close(
            closest_on_triangle([3.0, -1.0, 0.0], A, B, C).0,
            [0.0, 1.0, 0.0]
        ));
        assert!(close(
            closest_on_triangle([-1.0, 3.0, 0.0], A, B, C).0,
            [0.0, 0.0, 1.0]
        ));
        // Edge regions: ab, ac, bc.
        let (w, d2) = closest_on_triangle([0.5, -1.0, 0.0], A, B, C);
        assert!(close(w, [0.75, 0.25, 0.0]) && (d2 - 1.0).abs() < 1e-12);
        assert!(close(
            closest_on_triangle([-1.0, 1.5, 0.0], A, B, C).0,
            [0.25, 0.0, 0.75]
        ));
        let (w, d2) = closest_on_triangle([2.0, 2.0, 0.0], A, B, C);
        assert!(close(w, [0.0, 0.5, 0.5]) && (d2 - 2.0).abs() < 1e-12);
    }

    #[test]
    fn kept_vertices_copy_themselves_and_removed_ones_interpolate() {
        // A square split in two with its centre vertex 4 removed.
        let p = [
            [0.0, 0.0, 0.0],
            [2.0, 0.0, 0.0],
            [2.0, 2.0, 0.0],
            [0.0, 2.0, 0.0],
            [1.0, 0.5, 0.1],
        ];
        let up = upsampling(&p, &[0, 1, 2, 3], &[[0, 1, 2], [0, 2, 3]]);
        assert_eq!((up.fine, up.coarse), (5, 4));
        assert_eq!(up.sources[2], ([2, 2, 2], [1.0, 0.0, 0.0]));
        let (idx, w) = up.sources[4];
        assert_eq!(idx, [0, 1, 2]);
        assert!((w[0] - 0.5).abs() < 1e-6 && (w[1] - 0.25).abs() < 1e-6);
        assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }
}
