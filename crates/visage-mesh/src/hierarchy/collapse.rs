//! One level of quadric-error (Garland–Heckbert) half-edge collapse.
//!
//! A collapse `u → v` removes vertex `u` and hands its triangles to `v`, which keeps its
//! position, so the surviving vertices are a subset of the level's vertices. The cost of
//! `u → v` is `p_vᵀ (Q_u + Q_v) p_v` where `Q` is the sum of the squared distances to the
//! planes of the triangles a vertex (and the vertices collapsed into it) touched; quadrics
//! accumulate over the level's collapses. Every step takes the cheapest collapse that passes
//! the checks below, ties broken by `(u, v)` index, so the result is deterministic.
//!
//! Checks (a collapse failing one is skipped, not stopped at):
//! - link condition (the common neighbours of `u` and `v` are exactly the vertices opposite
//!   the edge), which keeps a manifold disk a manifold disk;
//! - boundary: a boundary vertex only collapses along a boundary edge onto its boundary
//!   neighbour, and only while the boundary loop has more than three vertices; boundary
//!   edges also carry a constraint quadric (a plane through the edge, perpendicular to its
//!   triangle) so that corners of the outline are expensive to remove;
//! - geometry: no triangle around `u` flips (its normal turns by 90° or more) or degenerates
//!   (twice its area below [`MIN_DOUBLE_AREA`]).

use std::collections::BTreeSet;

/// Weight of the boundary constraint planes relative to the triangle planes (which have
/// weight 1 each: the quadrics are not area-weighted).
pub(crate) const BOUNDARY_WEIGHT: f64 = 1.0;

/// Twice the smallest triangle area a collapse may create (in the mesh's units; the
/// normalised template's triangles are ~1e-3).
pub(crate) const MIN_DOUBLE_AREA: f64 = 1e-9;

/// A symmetric 4 × 4 quadric, upper triangle row by row.
#[derive(Debug, Clone, Copy, Default)]
struct Quadric([f64; 10]);

impl Quadric {
    /// `w · (n·x + d)²` for the plane `n·x + d = 0` (`n` of unit length).
    fn plane(n: [f64; 3], d: f64, w: f64) -> Self {
        let [a, b, c] = n;
        Quadric(
            [
                a * a,
                a * b,
                a * c,
                a * d,
                b * b,
                b * c,
                b * d,
                c * c,
                c * d,
                d * d,
            ]
            .map(|x| w * x),
        )
    }

    fn add(&mut self, other: &Quadric) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    /// `[x y z 1] Q [x y z 1]ᵀ`.
    fn eval(&self, p: [f64; 3]) -> f64 {
        let q = &self.0;
        let [x, y, z] = p;
        q[0] * x * x
            + 2.0 * q[1] * x * y
            + 2.0 * q[2] * x * z
            + 2.0 * q[3] * x
            + q[4] * y * y
            + 2.0 * q[5] * y * z
            + 2.0 * q[6] * y
            + q[7] * z * z
            + 2.0 * q[8] * z
            + q[9]
    }
}

pub(crate) fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

pub(crate) fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub(crate) fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// `(p1 − p0) × (p2 − p0)`: twice the area, pointing to where the triangle is
/// counter-clockwise.
pub(crate) fn normal(p: &[[f64; 3]], t: [usize; 3]) -> [f64; 3] {
    cross(sub(p[t[1]], p[t[0]]), sub(p[t[2]], p[t[0]]))
}

fn unit(n: [f64; 3]) -> Option<[f64; 3]> {
    let len = dot(n, n).sqrt();
    (len > 0.0).then(|| n.map(|x| x / len))
}

/// The result of decimating one level.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decimated {
    /// The surviving vertices (indices of the input level), ascending: the coarse level's
    /// vertex `j` is the input's `kept[j]`.
    pub kept: Vec<usize>,
    /// The coarse triangles in coarse indices, in the order of the input triangles they
    /// came from.
    pub triangles: Vec<[usize; 3]>,
}

/// The collapse state of one level.
struct State<'a> {
    p: &'a [[f64; 3]],
    tris: Vec<[usize; 3]>,
    tri_alive: Vec<bool>,
    /// Per vertex, its alive triangles (ascending).
    incident: Vec<BTreeSet<usize>>,
    removed: Vec<bool>,
    quadric: Vec<Quadric>,
}

impl State<'_> {
    fn neighbours(&self, u: usize) -> BTreeSet<usize> {
        let mut set = BTreeSet::new();
        for &t in &self.incident[u] {
            set.extend(self.tris[t].iter().copied().filter(|&w| w != u));
        }
        set
    }

    /// Alive triangles with both `a` and `b`.
    fn edge_triangles(&self, a: usize, b: usize) -> Vec<usize> {
        self.incident[a]
            .iter()
            .copied()
            .filter(|&t| self.tris[t].contains(&b))
            .collect()
    }

    fn is_boundary_vertex(&self, u: usize) -> bool {
        self.neighbours(u)
            .into_iter()
            .any(|v| self.edge_triangles(u, v).len() == 1)
    }

    fn boundary_vertex_count(&self) -> usize {
        (0..self.p.len())
            .filter(|&u| !self.removed[u] && self.is_boundary_vertex(u))
            .count()
    }

    fn cost(&self, u: usize, v: usize) -> f64 {
        let mut q = self.quadric[u];
        q.add(&self.quadric[v]);
        q.eval(self.p[v]).max(0.0)
    }

    /// Whether `u → v` passes the link, boundary and geometry checks.
    fn can_collapse(&self, u: usize, v: usize) -> bool {
        let shared = self.edge_triangles(u, v);
        if shared.is_empty() || shared.len() > 2 {
            return false;
        }
        if self.is_boundary_vertex(u) && (shared.len() != 1 || self.boundary_vertex_count() <= 3) {
            return false;
        }
        let opposite: BTreeSet<usize> = shared
            .iter()
            .flat_map(|&t| self.tris[t])
            .filter(|&w| w != u && w != v)
            .collect();
        let common: BTreeSet<usize> = self
            .neighbours(u)
            .intersection(&self.neighbours(v))
            .copied()
            .collect();
        if common != opposite {
            return false;
        }
        for &t in &self.incident[u] {
            let old = self.tris[t];
            if old.contains(&v) {
                continue;
            }
            let new = old.map(|w| if w == u { v } else { w });
            let n_old = normal(self.p, old);
            let n_new = normal(self.p, new);
            if dot(n_new, n_new).sqrt() < MIN_DOUBLE_AREA || dot(n_old, n_new) <= 0.0 {
                return false;
            }
        }
        true
    }

    fn collapse(&mut self, u: usize, v: usize) {
        let triangles: Vec<usize> = self.incident[u].iter().copied().collect();
        for t in triangles {
            if self.tris[t].contains(&v) {
                self.tri_alive[t] = false;
                for w in self.tris[t] {
                    self.incident[w].remove(&t);
                }
            } else {
                for w in &mut self.tris[t] {
                    if *w == u {
                        *w = v;
                    }
                }
                self.incident[v].insert(t);
            }
        }
        self.incident[u].clear();
        self.removed[u] = true;
        let qu = self.quadric[u];
        self.quadric[v].add(&qu);
    }
}

/// Collapses edges of the mesh `(positions, triangles)` until `target` vertices remain.
///
/// The input must be a manifold triangle mesh whose every vertex lies on a triangle.
///
/// # Errors
/// A message when no allowed collapse is left before `target` is reached.
pub(crate) fn decimate(
    positions: &[[f64; 3]],
    triangles: &[[usize; 3]],
    target: usize,
) -> Result<Decimated, String> {
    let n = positions.len();
    let mut state = State {
        p: positions,
        tris: triangles.to_vec(),
        tri_alive: vec![true; triangles.len()],
        incident: vec![BTreeSet::new(); n],
        removed: vec![false; n],
        quadric: vec![Quadric::default(); n],
    };
    for (t, tri) in triangles.iter().enumerate() {
        let plane = unit(normal(positions, *tri))
            .map(|nrm| Quadric::plane(nrm, -dot(nrm, positions[tri[0]]), 1.0));
        for &w in tri {
            state.incident[w].insert(t);
            if let Some(q) = &plane {
                state.quadric[w].add(q);
            }
        }
    }
    // Boundary constraint planes: through the edge, containing its triangle's normal.
    for tri in triangles {
        for k in 0..3 {
            let (a, b) = (tri[k], tri[(k + 1) % 3]);
            if state.edge_triangles(a, b).len() != 1 {
                continue;
            }
            let face = normal(positions, *tri);
            if let Some(nrm) = unit(cross(sub(positions[b], positions[a]), face)) {
                let q = Quadric::plane(nrm, -dot(nrm, positions[a]), BOUNDARY_WEIGHT);
                state.quadric[a].add(&q);
                state.quadric[b].add(&q);
            }
        }
    }
    let mut alive = n;
    while alive > target {
        let mut candidates: Vec<(f64, usize, usize)> = Vec::new();
        for u in 0..n {
            if state.removed[u] {
                continue;
            }
            for v in state.neighbours(u) {
                candidates.push((state.cost(u, v), u, v));
            }
        }
        candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then((a.1, a.2).cmp(&(b.1, b.2))));
        let Some(&(_, u, v)) = candidates
            .iter()
            .find(|&&(_, u, v)| state.can_collapse(u, v))
        else {
            return Err(format!(
                "no allowed edge collapse left at {alive} vertices (target {target})"
            ));
        };
        state.collapse(u, v);
        alive -= 1;
    }
    let kept: Vec<usize> = (0..n).filter(|&u| !state.removed[u]).collect();
    let mut new_index = vec![usize::MAX; n];
    for (j, &u) in kept.iter().enumerate() {
        new_index[u] = j;
    }
    let triangles = state
        .tris
        .iter()
        .zip(&state.tri_alive)
        .filter(|(_, &a)| a)
        .map(|(t, _)| t.map(|w| new_index[w]))
        .collect();
    Ok(Decimated { kept, triangles })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flat `side × side` vertex grid on the unit spacing, two triangles per cell
    /// (counter-clockwise seen from +z), vertex `r * side + c` at `(c, r, 0)`.
    pub(crate) fn grid(side: usize) -> (Vec<[f64; 3]>, Vec<[usize; 3]>) {
        let mut p = Vec::new();
        for r in 0..side {
            for c in 0..side {
                p.push([c as f64, r as f64, 0.0]);
            }
        }
        let mut t = Vec::new();
        for r in 0..side - 1 {
            for c in 0..side - 1 {
                let i = r * side + c;
                t.push([i, i + 1, i + side + 1]);
                t.push([i, i + side + 1, i + side]);
            }
        }
        (p, t)
    }

    fn area_and_front(p: &[[f64; 3]], kept: &[usize], tris: &[[usize; 3]]) -> (f64, bool) {
        let q: Vec<[f64; 3]> = kept.iter().map(|&k| p[k]).collect();
        let mut area = 0.0;
        let mut front = true;
        for &t in tris {
            let z = normal(&q, t)[2];
            area += z / 2.0;
            front &= z > 0.0;
        }
        (area, front)
    }

    #[test]
    fn quadric_measures_squared_plane_distance() {
        let q = Quadric::plane([0.0, 0.0, 1.0], -2.0, 3.0);
        assert!((q.eval([5.0, -1.0, 4.0]) - 12.0).abs() < 1e-12);
    }

    #[test]
    fn flat_grid_halves_keeping_its_corners_and_area() {
        let (p, t) = grid(5);
        let d = decimate(&p, &t, 13).unwrap();
        assert_eq!(d.kept.len(), 13);
        for corner in [0, 4, 20, 24] {
            assert!(d.kept.contains(&corner), "corner {corner} removed");
        }
        // The outline is straight between the corners, so boundary collapses along it and
        // interior collapses keep the square: area 16, every triangle still facing +z.
        let (area, front) = area_and_front(&p, &d.kept, &d.triangles);
        assert!((area - 16.0).abs() < 1e-9, "area {area}");
        assert!(front);
        // Disk: V - E + F = 1.
        let e = crate::template::triangle_edges(&d.triangles).len();
        assert_eq!(13 + d.triangles.len(), 1 + e);
    }

    #[test]
    fn three_by_three_grid_goes_down_to_its_corners() {
        // 9 vertices: the 4 corners are expensive (two boundary planes meet there), the
        // rest cost nothing, so the cheapest 5 collapses remove every non-corner vertex.
        let (p, t) = grid(3);
        let d = decimate(&p, &t, 4).unwrap();
        assert_eq!(d.kept, vec![0, 2, 6, 8]);
        assert_eq!(d.triangles.len(), 2);
        let (area, front) = area_and_front(&p, &d.kept, &d.triangles);
        assert!((area - 4.0).abs() < 1e-12 && front);
    }

    #[test]
    fn a_ridge_survives_the_flat_sides() {
        // A tent: the middle column of a 5 × 5 grid lifted. Collapsing across the ridge
        // costs, collapsing along it or within a flank does not.
        let (mut p, t) = grid(5);
        for r in 0..5 {
            p[r * 5 + 2][2] = 1.0;
        }
        let d = decimate(&p, &t, 13).unwrap();
        assert!(d.kept.contains(&2) && d.kept.contains(&22), "{:?}", d.kept);
        // No coarse triangle straddles the ridge (x = 2).
        for t in &d.triangles {
            let xs = t.map(|j| p[d.kept[j]][0]);
            assert!(
                xs.iter().all(|&x| x <= 2.0) || xs.iter().all(|&x| x >= 2.0),
                "{t:?}"
            );
        }
    }

    #[test]
    fn stops_with_an_error_when_nothing_may_collapse() {
        let p = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
        let err = decimate(&p, &[[0, 1, 2]], 2).unwrap_err();
        assert!(err.contains("no allowed edge collapse"), "{err}");
    }
}
