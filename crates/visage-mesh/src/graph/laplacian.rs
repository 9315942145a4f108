//! The normalised graph Laplacian of a triangle mesh, scaled for Chebyshev filters.

/// The scaled normalised Laplacian `L̃ = −D^{-1/2} A D^{-1/2}` of a triangle mesh, dense and
/// row-major (`vertex_count × vertex_count`).
///
/// `A` is the symmetric 0/1 adjacency of the triangles' edges (zero diagonal, an edge shared
/// by two triangles counts once) and `D` its degree matrix. This is `2 L / λ_max − I` for the
/// normalised Laplacian `L = I − D^{-1/2} A D^{-1/2}` with `λ_max = 2`, as in the COMA / CMD
/// code, so the spectrum lies in `[−1, 1]` where the Chebyshev polynomials are bounded.
/// Vertices that no triangle uses get zero rows and columns.
///
/// # Shapes
/// - returns `[vertex_count * vertex_count]`, entry `(i, j)` at `i * vertex_count + j`.
///
/// # Panics
/// If a triangle names a vertex `>= vertex_count` (callers validate meshes first, e.g.
/// [`LevelOperators::new`](super::LevelOperators::new)).
pub fn normalised_laplacian(vertex_count: usize, triangles: &[[usize; 3]]) -> Vec<f32> {
    let n = vertex_count;
    let mut adjacency = vec![false; n * n];
    for tri in triangles {
        for (a, b) in [(tri[0], tri[1]), (tri[1], tri[2]), (tri[2], tri[0])] {
            assert!(
                a < n && b < n,
                "triangle {tri:?} names a vertex outside 0..{n}"
            );
            if a != b {
                adjacency[a * n + b] = true;
                adjacency[b * n + a] = true;
            }
        }
    }
    let degree: Vec<f64> = (0..n)
        .map(|i| adjacency[i * n..(i + 1) * n].iter().filter(|&&e| e).count() as f64)
        .collect();
    let inv_sqrt: Vec<f64> = degree
        .iter()
        .map(|&d| if d > 0.0 { 1.0 / d.sqrt() } else { 0.0 })
        .collect();
    let mut out = vec![0.0f32; n * n];
    for i in 0..n {
        for j in 0..n {
            if adjacency[i * n + j] {
                out[i * n + j] = (-inv_sqrt[i] * inv_sqrt[j]) as f32;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_triangle_by_hand() {
        // Every vertex has degree 2: off-diagonal entries −1/2, diagonal 0.
        let l = normalised_laplacian(3, &[[0, 1, 2]]);
        for i in 0..3 {
            for j in 0..3 {
                let want = if i == j { 0.0 } else { -0.5 };
                assert_eq!(l[i * 3 + j], want, "({i}, {j})");
            }
        }
    }

    #[test]
    fn two_triangles_share_an_edge_once() {
        // Square 0-1-2-3 split along 0-2: degrees 3, 2, 3, 2.
        let l = normalised_laplacian(4, &[[0, 1, 2], [0, 2, 3]]);
        let expect = |d1: f32, d2: f32| -1.0 / (d1 * d2).sqrt();
        assert!((l[1] - expect(3.0, 2.0)).abs() < 1e-7); // (0, 1)
        assert!((l[2] - expect(3.0, 3.0)).abs() < 1e-7); // (0, 2)
        assert_eq!(l[4 + 3], 0.0); // (1, 3): not an edge
        for i in 0..4 {
            for j in 0..4 {
                assert_eq!(l[i * 4 + j], l[j * 4 + i], "symmetric");
            }
        }
    }

    #[test]
    fn isolated_vertex_has_zero_row() {
        let l = normalised_laplacian(4, &[[0, 1, 2]]);
        assert!(l[12..16].iter().all(|&v| v == 0.0));
        assert!((0..4).all(|i| l[i * 4 + 3] == 0.0));
    }

    #[test]
    fn constant_over_sqrt_degree_is_an_eigenvector_with_eigenvalue_minus_one() {
        // L̃ D^{1/2} 1 = −D^{-1/2} A 1 = −D^{1/2} 1 on a connected mesh.
        let tris = [[0, 1, 2], [0, 2, 3], [2, 4, 3]];
        let l = normalised_laplacian(5, &tris);
        let degree = [3.0f32, 2.0, 4.0, 3.0, 2.0];
        let v: Vec<f32> = degree.iter().map(|d| d.sqrt()).collect();
        for i in 0..5 {
            let lv: f32 = (0..5).map(|j| l[i * 5 + j] * v[j]).sum();
            assert!((lv + v[i]).abs() < 1e-6, "row {i}: {lv} vs {}", -v[i]);
        }
    }
}
