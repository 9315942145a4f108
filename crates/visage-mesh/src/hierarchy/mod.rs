//! The mesh sampling hierarchy: level 0 is the template itself, each further level has about
//! half the vertices of the one before (quadric-error edge collapse). The decoder walks it
//! from the coarsest level up; the pre-training encoder walks it down.
//!
//! Vertex indices of level `k` are `0..levels[k].vertex_count`.

use serde::{Deserialize, Serialize};

/// One level of the hierarchy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshLevel {
    /// Vertices at this level.
    pub vertex_count: usize,
    /// Triangles (vertex indices of this level, counter-clockwise seen from +z like the
    /// template's).
    pub triangles: Vec<[usize; 3]>,
}

/// Up-sampling from level `k + 1` (coarse) to level `k` (fine): every fine vertex is a convex
/// combination of three coarse vertices (a kept vertex: itself with weight 1; a collapsed
/// vertex: the barycentric coordinates of its projection on the nearest coarse triangle).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Upsampling {
    /// Vertices of the fine level.
    pub fine: usize,
    /// Vertices of the coarse level.
    pub coarse: usize,
    /// Per fine vertex: three coarse vertex indices and their weights (summing to 1).
    pub sources: Vec<([usize; 3], [f32; 3])>,
}

/// The whole hierarchy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshHierarchy {
    /// Levels, finest (the template) first.
    pub levels: Vec<MeshLevel>,
    /// `down[k]`: the level-`k` indices of the vertices kept at level `k + 1`, in level
    /// `k + 1`'s order (`down[k].len() == levels[k + 1].vertex_count`).
    pub down: Vec<Vec<usize>>,
    /// `up[k]`: up-sampling from level `k + 1` to level `k`.
    pub up: Vec<Upsampling>,
}

mod collapse;
mod project;
mod stored;

use crate::{FaceMesh, MeshError};

/// The hierarchy of `mesh` with `levels` levels (the mesh itself first): each level keeps
/// `ceil(n / 2)` of the `n` vertices of the level before by quadric-error half-edge collapse
/// (see the `collapse` module's documentation for the cost, the manifold / boundary /
/// geometry checks and the tie-breaking), the survivors re-indexed in ascending order of
/// their fine indices; `up[k]` uses COMA's closest-triangle barycentrics.
///
/// Deterministic: the same mesh gives the same hierarchy, bit for bit. `data/hierarchy.json`
/// is `build(FaceMesh::canonical(), 5)` (written by `examples/build_hierarchy.rs`).
///
/// # Panics
/// Where [`try_build`] fails: meant for meshes known to work, such as the template.
pub fn build(mesh: &FaceMesh, levels: usize) -> MeshHierarchy {
    try_build(mesh, levels).unwrap_or_else(|e| panic!("building the mesh hierarchy: {e}"))
}

/// [`build`], returning its failures.
///
/// # Errors
/// [`MeshError::Hierarchy`] when `levels` is 0, the mesh has an out-of-range index, a
/// triangle repeating a vertex, a non-finite coordinate or a vertex on no triangle, or when
/// no allowed collapse is left before a level reaches its vertex count.
pub fn try_build(mesh: &FaceMesh, levels: usize) -> Result<MeshHierarchy, MeshError> {
    let fail = |message: String| MeshError::Hierarchy {
        origin: "<build>".to_string(),
        message,
    };
    if levels == 0 {
        return Err(fail("at least one level is needed".to_string()));
    }
    let n = mesh.vertices.len();
    let mut used = vec![false; n];
    for (t, tri) in mesh.triangles.iter().enumerate() {
        if tri.iter().any(|&i| i >= n) {
            return Err(fail(format!(
                "triangle {t} {tri:?} out of range ({n} vertices)"
            )));
        }
        if tri[0] == tri[1] || tri[1] == tri[2] || tri[0] == tri[2] {
            return Err(fail(format!("triangle {t} {tri:?} repeats a vertex")));
        }
        for &i in tri {
            used[i] = true;
        }
    }
    if let Some(i) = used.iter().position(|&u| !u) {
        return Err(fail(format!("vertex {i} lies on no triangle")));
    }
    if let Some(i) = mesh
        .vertices
        .iter()
        .position(|v| !v.iter().all(|x| x.is_finite()))
    {
        return Err(fail(format!("vertex {i} has a non-finite coordinate")));
    }
    let mut positions: Vec<[f64; 3]> = mesh.vertices.iter().map(|v| v.map(f64::from)).collect();
    let mut triangles = mesh.triangles.clone();
    let mut hierarchy = MeshHierarchy {
        levels: vec![MeshLevel {
            vertex_count: n,
            triangles: triangles.clone(),
        }],
        down: Vec::new(),
        up: Vec::new(),
    };
    for level in 1..levels {
        let target = positions.len().div_ceil(2);
        let coarse = collapse::decimate(&positions, &triangles, target)
            .map_err(|e| fail(format!("level {level}: {e}")))?;
        hierarchy.up.push(project::upsampling(
            &positions,
            &coarse.kept,
            &coarse.triangles,
        ));
        positions = coarse.kept.iter().map(|&k| positions[k]).collect();
        triangles = coarse.triangles;
        hierarchy.levels.push(MeshLevel {
            vertex_count: positions.len(),
            triangles: triangles.clone(),
        });
        hierarchy.down.push(coarse.kept);
    }
    Ok(hierarchy)
}

impl MeshHierarchy {
    /// The vertex positions of every level, finest first, given the finest level's
    /// (`levels[0].vertex_count` of them): each level's vertices are the survivors of the one
    /// before, at their original positions.
    ///
    /// # Panics
    /// If `finest.len()` differs from `levels[0].vertex_count`.
    pub fn positions(&self, finest: &[[f32; 3]]) -> Vec<Vec<[f32; 3]>> {
        assert_eq!(
            finest.len(),
            self.levels[0].vertex_count,
            "one position per vertex of the finest level expected"
        );
        let mut out = vec![finest.to_vec()];
        for down in &self.down {
            let previous = &out[out.len() - 1];
            let next = down.iter().map(|&i| previous[i]).collect();
            out.push(next);
        }
        out
    }
}

impl Upsampling {
    /// Applies the up-sampling to per-vertex values of the coarse level (`coarse` of them):
    /// `fine[i] = Σ w · coarse[j]` over the fine vertex's three sources.
    ///
    /// # Panics
    /// If `values.len()` differs from `self.coarse`.
    pub fn apply(&self, values: &[[f32; 3]]) -> Vec<[f32; 3]> {
        assert_eq!(
            values.len(),
            self.coarse,
            "one value per coarse vertex expected"
        );
        self.sources
            .iter()
            .map(|(idx, w)| {
                [0, 1, 2].map(|a| (0..3).map(|k| w[k] * values[idx[k]][a]).sum::<f32>())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    /// Per undirected edge, its directed occurrences `(a, b)` in the triangles.
    fn edge_uses(triangles: &[[usize; 3]]) -> BTreeMap<[usize; 2], Vec<[usize; 2]>> {
        let mut uses: BTreeMap<[usize; 2], Vec<[usize; 2]>> = BTreeMap::new();
        for t in triangles {
            for k in 0..3 {
                let (a, b) = (t[k], t[(k + 1) % 3]);
                uses.entry([a.min(b), a.max(b)]).or_default().push([a, b]);
            }
        }
        uses
    }

    /// Asserts that a level is a consistently oriented manifold disk with one boundary loop
    /// and no degenerate triangle; returns its boundary length.
    fn assert_disk(positions: &[[f32; 3]], triangles: &[[usize; 3]], what: &str) -> usize {
        let n = positions.len();
        let uses = edge_uses(triangles);
        let mut boundary_next = BTreeMap::new();
        for (e, directed) in &uses {
            match directed.as_slice() {
                [d] => assert!(boundary_next.insert(d[1], d[0]).is_none(), "{what}: {e:?}"),
                [d0, d1] => assert_eq!(d0, &[d1[1], d1[0]], "{what}: edge {e:?} misoriented"),
                _ => panic!("{what}: edge {e:?} in {} triangles", directed.len()),
            }
        }
        assert_eq!(
            n + triangles.len(),
            1 + uses.len(),
            "{what}: V - E + F != 1"
        );
        // One boundary loop through every boundary vertex.
        let start = *boundary_next.keys().next().expect("a disk has a boundary");
        let (mut v, mut steps) = (start, 0);
        loop {
            v = boundary_next[&v];
            steps += 1;
            if v == start {
                break;
            }
        }
        assert_eq!(
            steps,
            boundary_next.len(),
            "{what}: more than one boundary loop"
        );
        // Every vertex on a triangle, its triangles one fan (its link one path or cycle).
        for u in 0..n {
            let link: Vec<[usize; 2]> = triangles
                .iter()
                .filter_map(|t| {
                    let k = t.iter().position(|&w| w == u)?;
                    Some([t[(k + 1) % 3], t[(k + 2) % 3]])
                })
                .collect();
            assert!(!link.is_empty(), "{what}: vertex {u} on no triangle");
            let ring: BTreeSet<usize> = link.iter().flatten().copied().collect();
            let closed = !boundary_next.contains_key(&u);
            let expected = if closed { link.len() } else { link.len() + 1 };
            assert_eq!(ring.len(), expected, "{what}: vertex {u} is not one fan");
        }
        for t in triangles {
            let [a, b, c] = t.map(|i| positions[i].map(f64::from));
            let n = collapse::cross(collapse::sub(b, a), collapse::sub(c, a));
            assert!(
                collapse::dot(n, n).sqrt() > 1e-6,
                "{what}: degenerate {t:?}"
            );
        }
        boundary_next.len()
    }

    fn distance(a: [f32; 3], b: [f32; 3]) -> f32 {
        (0..3).map(|i| (a[i] - b[i]).powi(2)).sum::<f32>().sqrt()
    }

    #[test]
    fn stored_file_is_a_fresh_build_of_the_template() {
        let fresh = build(FaceMesh::canonical(), 5);
        assert!(
            MeshHierarchy::stored() == &fresh,
            "data/hierarchy.json is stale: re-run \
             `cargo run -p visage-mesh --example build_hierarchy`"
        );
    }

    #[test]
    fn template_levels_are_manifold_disks_halving_each_time() {
        let h = MeshHierarchy::stored();
        let counts: Vec<usize> = h.levels.iter().map(|l| l.vertex_count).collect();
        assert_eq!(counts, vec![468, 234, 117, 59, 30]);
        let positions = h.positions(&FaceMesh::canonical().vertices);
        let mut boundaries = Vec::new();
        for (k, level) in h.levels.iter().enumerate() {
            boundaries.push(assert_disk(
                &positions[k],
                &level.triangles,
                &format!("level {k}"),
            ));
        }
        assert_eq!(boundaries[0], 36);
        assert!(
            boundaries.windows(2).all(|w| w[1] <= w[0]),
            "{boundaries:?}"
        );
    }

    #[test]
    fn up_sampling_reproduces_kept_vertices_and_approximates_collapsed_ones() {
        let h = MeshHierarchy::stored();
        let positions = h.positions(&FaceMesh::canonical().vertices);
        for k in 0..h.up.len() {
            let up = h.up[k].apply(&positions[k + 1]);
            for (j, &i) in h.down[k].iter().enumerate() {
                assert_eq!(h.up[k].sources[i], ([j, j, j], [1.0, 0.0, 0.0]));
                assert_eq!(up[i], positions[k][i]);
            }
            let worst = up
                .iter()
                .zip(&positions[k])
                .map(|(&a, &b)| distance(a, b))
                .fold(0.0, f32::max);
            // The face is 2 units wide; the coarsest level has 30 vertices.
            assert!(worst < 0.1, "level {k} from {}: {worst}", k + 1);
        }
    }

    #[test]
    fn grid_toy_mesh_collapses_as_expected() {
        // A flat 5 × 5 grid: 25 → 13 → 7 vertices, corners and area (16) kept.
        let mut vertices = Vec::new();
        for r in 0..5 {
            for c in 0..5 {
                vertices.push([c as f32, r as f32, 0.0]);
            }
        }
        let mut triangles = Vec::new();
        for r in 0..4 {
            for c in 0..4 {
                let i = r * 5 + c;
                triangles.push([i, i + 1, i + 6]);
                triangles.push([i, i + 6, i + 5]);
            }
        }
        let mesh = FaceMesh {
            vertices,
            triangles,
        };
        let h = build(&mesh, 3);
        h.validate().unwrap();
        assert_eq!(h, build(&mesh, 3), "deterministic");
        let counts: Vec<usize> = h.levels.iter().map(|l| l.vertex_count).collect();
        assert_eq!(counts, vec![25, 13, 7]);
        let positions = h.positions(&mesh.vertices);
        for (k, level) in h.levels.iter().enumerate() {
            assert_disk(&positions[k], &level.triangles, &format!("grid level {k}"));
            let area: f32 = level
                .triangles
                .iter()
                .map(|t| {
                    let [a, b, c] = t.map(|i| positions[k][i]);
                    ((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])) / 2.0
                })
                .sum();
            assert!((area - 16.0).abs() < 1e-5, "level {k}: area {area}");
            for corner in [
                [0.0, 0.0, 0.0],
                [4.0, 0.0, 0.0],
                [0.0, 4.0, 0.0],
                [4.0, 4.0, 0.0],
            ] {
                assert!(positions[k].contains(&corner), "level {k} lost {corner:?}");
            }
        }
        // In-plane up-sampling is exact for a flat mesh.
        for k in 0..2 {
            let up = h.up[k].apply(&positions[k + 1]);
            for (a, b) in up.iter().zip(&positions[k]) {
                assert!(distance(*a, *b) < 1e-5, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn bad_meshes_and_levels_are_refused() {
        let mesh = FaceMesh {
            vertices: vec![[0.0; 3], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [5.0; 3]],
            triangles: vec![[0, 1, 2]],
        };
        let message = |m: &FaceMesh, l| try_build(m, l).unwrap_err().to_string();
        assert!(message(&mesh, 1).contains("vertex 3 lies on no triangle"));
        assert!(message(FaceMesh::canonical(), 0).contains("at least one level"));
        let mut bad = mesh.clone();
        bad.triangles = vec![[0, 1, 2], [1, 3, 3]];
        assert!(message(&bad, 1).contains("repeats a vertex"));
        bad.triangles = vec![[0, 1, 2], [1, 3, 4]];
        assert!(message(&bad, 1).contains("out of range"));
        // A single level is the mesh itself.
        let one = build(FaceMesh::canonical(), 1);
        assert!(one.down.is_empty() && one.up.is_empty());
        assert_eq!(one.levels[0].triangles, FaceMesh::canonical().triangles);
    }
}
