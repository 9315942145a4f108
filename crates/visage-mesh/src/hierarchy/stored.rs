//! The stored hierarchy: JSON reading, writing and validation, and the embedded copy built
//! from the template (`data/hierarchy.json`).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::OnceLock;

use super::MeshHierarchy;
use crate::MeshError;

/// `build(FaceMesh::canonical(), 5)`, written by `examples/build_hierarchy.rs`.
const STORED_JSON: &str = include_str!("../../data/hierarchy.json");

/// How far a fine vertex's up-sampling weights may sum from 1.
const WEIGHT_SUM_TOLERANCE: f32 = 1e-4;

impl MeshHierarchy {
    /// The template's hierarchy (`data/hierarchy.json`: 5 levels of 468 / 234 / 117 / 59 / 30
    /// vertices), parsed and validated once.
    pub fn stored() -> &'static MeshHierarchy {
        static STORED: OnceLock<MeshHierarchy> = OnceLock::new();
        STORED.get_or_init(|| {
            MeshHierarchy::from_json(STORED_JSON, "data/hierarchy.json").unwrap_or_else(|e| {
                panic!(
                    "{e}; re-run `cargo run -p visage-mesh --example build_hierarchy` to \
                     regenerate it"
                )
            })
        })
    }

    /// Parses and validates a hierarchy written by [`MeshHierarchy::to_json`] (or any JSON
    /// of the same structure); `origin` names it in errors.
    ///
    /// # Errors
    /// [`MeshError::Hierarchy`] for malformed JSON (with its line and column) or a failed
    /// [`MeshHierarchy::validate`].
    pub fn from_json(text: &str, origin: &str) -> Result<MeshHierarchy, MeshError> {
        let hierarchy: MeshHierarchy =
            serde_json::from_str(text).map_err(|e| MeshError::Hierarchy {
                origin: origin.to_string(),
                message: e.to_string(),
            })?;
        hierarchy
            .validate()
            .map_err(|message| MeshError::Hierarchy {
                origin: origin.to_string(),
                message,
            })?;
        Ok(hierarchy)
    }

    /// Checks the hierarchy's consistency: at least one level; `levels.len() − 1` down- and
    /// up-sampling steps; every level with vertices and triangles whose indices are in range
    /// and distinct; `down[k]` of `levels[k + 1].vertex_count` distinct level-`k` indices;
    /// `up[k]` from `levels[k + 1]` to `levels[k]` with one source per fine vertex, indices in
    /// range, weights in `[0, 1]` summing to 1 (within 1e-4), and every kept vertex
    /// (`down[k][j]`) reproduced by coarse vertex `j` alone.
    ///
    /// # Errors
    /// A message naming the level, vertex or triangle that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let levels = self.levels.len();
        if levels == 0 {
            return Err("no levels".to_string());
        }
        if self.down.len() != levels - 1 || self.up.len() != levels - 1 {
            return Err(format!(
                "{levels} levels need {} down- and up-sampling steps, found {} and {}",
                levels - 1,
                self.down.len(),
                self.up.len()
            ));
        }
        for (k, level) in self.levels.iter().enumerate() {
            let n = level.vertex_count;
            if n == 0 || level.triangles.is_empty() {
                return Err(format!("levels[{k}] has no vertices or no triangles"));
            }
            for (t, tri) in level.triangles.iter().enumerate() {
                if tri.iter().any(|&i| i >= n) {
                    return Err(format!(
                        "levels[{k}].triangles[{t}] = {tri:?} out of range ({n} vertices)"
                    ));
                }
                if tri[0] == tri[1] || tri[1] == tri[2] || tri[0] == tri[2] {
                    return Err(format!(
                        "levels[{k}].triangles[{t}] = {tri:?} is degenerate (repeats a vertex)"
                    ));
                }
            }
        }
        for (k, down) in self.down.iter().enumerate() {
            let (fine, coarse) = (self.levels[k].vertex_count, self.levels[k + 1].vertex_count);
            if down.len() != coarse {
                return Err(format!(
                    "down[{k}] has {} entries, levels[{}] has {coarse} vertices",
                    down.len(),
                    k + 1
                ));
            }
            let mut seen = HashSet::new();
            for (j, &i) in down.iter().enumerate() {
                if i >= fine {
                    return Err(format!(
                        "down[{k}][{j}] = {i} out of range ({fine} vertices)"
                    ));
                }
                if !seen.insert(i) {
                    return Err(format!("down[{k}][{j}] = {i} repeats a vertex"));
                }
            }
        }
        for (k, up) in self.up.iter().enumerate() {
            let (fine, coarse) = (self.levels[k].vertex_count, self.levels[k + 1].vertex_count);
            if up.fine != fine || up.coarse != coarse || up.sources.len() != fine {
                return Err(format!(
                    "up[{k}] maps {} to {} vertices with {} sources, levels {} and {k} have \
                     {coarse} and {fine}",
                    up.coarse,
                    up.fine,
                    up.sources.len(),
                    k + 1
                ));
            }
            for (i, (idx, w)) in up.sources.iter().enumerate() {
                if idx.iter().any(|&j| j >= coarse) {
                    return Err(format!(
                        "up[{k}].sources[{i}] indices {idx:?} out of range ({coarse} vertices)"
                    ));
                }
                let sum: f32 = w.iter().sum();
                if w.iter().any(|x| !(0.0..=1.0).contains(x))
                    || (sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE
                {
                    return Err(format!(
                        "up[{k}].sources[{i}] weights {w:?} are not in [0, 1] summing to 1"
                    ));
                }
            }
            for (j, &i) in self.down[k].iter().enumerate() {
                let (idx, w) = up.sources[i];
                let own: f32 = (0..3).filter(|&s| idx[s] == j).map(|s| w[s]).sum();
                if own < 1.0 - WEIGHT_SUM_TOLERANCE {
                    return Err(format!(
                        "up[{k}].sources[{i}] does not reproduce kept vertex {i} from coarse \
                         vertex {j} (down[{k}][{j}])"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The hierarchy as JSON that [`MeshHierarchy::from_json`] reads: compact numbers, one
    /// triangle, one `down` list or one up-sampling source per line (~75 KB for the
    /// template), so that a regenerated file diffs readably.
    pub fn to_json(&self) -> String {
        fn item<T: serde::Serialize>(value: &T) -> String {
            serde_json::to_string(value).expect("plain numbers serialise")
        }
        fn list(out: &mut String, lines: impl ExactSizeIterator<Item = String>) {
            let count = lines.len();
            out.push_str("[\n");
            for (i, line) in lines.enumerate() {
                out.push_str(&line);
                out.push_str(if i + 1 < count { ",\n" } else { "\n" });
            }
            out.push(']');
        }
        let mut out = String::from("{\n\"levels\": [\n");
        for (k, level) in self.levels.iter().enumerate() {
            let _ = write!(
                out,
                "{{\"vertex_count\": {}, \"triangles\": ",
                level.vertex_count
            );
            list(&mut out, level.triangles.iter().map(item));
            out.push_str(if k + 1 < self.levels.len() {
                "},\n"
            } else {
                "}\n"
            });
        }
        out.push_str("],\n\"down\": ");
        list(&mut out, self.down.iter().map(item));
        out.push_str(",\n\"up\": [\n");
        for (k, up) in self.up.iter().enumerate() {
            let _ = write!(
                out,
                "{{\"fine\": {}, \"coarse\": {}, \"sources\": ",
                up.fine, up.coarse
            );
            list(&mut out, up.sources.iter().map(item));
            out.push_str(if k + 1 < self.up.len() { "},\n" } else { "}\n" });
        }
        out.push_str("]\n}\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::{MeshLevel, Upsampling};
    use super::*;

    /// A valid two-level hierarchy: a square's 4 corners and centre, then the corners.
    fn small() -> MeshHierarchy {
        MeshHierarchy {
            levels: vec![
                MeshLevel {
                    vertex_count: 5,
                    triangles: vec![[0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]],
                },
                MeshLevel {
                    vertex_count: 4,
                    triangles: vec![[0, 1, 2], [0, 2, 3]],
                },
            ],
            down: vec![vec![0, 1, 2, 3]],
            up: vec![Upsampling {
                fine: 5,
                coarse: 4,
                sources: vec![
                    ([0, 0, 0], [1.0, 0.0, 0.0]),
                    ([1, 1, 1], [1.0, 0.0, 0.0]),
                    ([2, 2, 2], [1.0, 0.0, 0.0]),
                    ([3, 3, 3], [1.0, 0.0, 0.0]),
                    ([0, 1, 2], [0.5, 0.1, 0.4]),
                ],
            }],
        }
    }

    fn error_of(h: &MeshHierarchy) -> String {
        let err = MeshHierarchy::from_json(&h.to_json(), "h.json").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("mesh hierarchy h.json: "), "{text}");
        text
    }

    #[test]
    fn json_round_trip() {
        let h = small();
        let text = h.to_json();
        assert_eq!(MeshHierarchy::from_json(&text, "mem").unwrap(), h);
        // Plain serde JSON reads the same.
        let plain = serde_json::to_string(&h).unwrap();
        assert_eq!(MeshHierarchy::from_json(&plain, "mem").unwrap(), h);
        assert!(text.lines().count() > 10);
    }

    #[test]
    fn malformed_json_is_named() {
        let err = MeshHierarchy::from_json("{\"levels\": [", "h.json").unwrap_err();
        assert!(err.to_string().contains("h.json"), "{err}");
    }

    #[test]
    fn inconsistencies_are_named() {
        let mut h = small();
        h.down.clear();
        assert!(error_of(&h).contains("down- and up-sampling steps"));

        let mut h = small();
        h.levels[1].triangles[1] = [0, 2, 4];
        assert!(error_of(&h).contains("levels[1].triangles[1]"));

        let mut h = small();
        h.levels[0].triangles[0] = [0, 0, 4];
        assert!(error_of(&h).contains("degenerate"));

        let mut h = small();
        h.down[0][3] = 1;
        assert!(error_of(&h).contains("down[0][3] = 1 repeats"));

        let mut h = small();
        h.down[0][3] = 7;
        assert!(error_of(&h).contains("down[0][3] = 7 out of range"));

        let mut h = small();
        h.down[0].pop();
        assert!(error_of(&h).contains("down[0] has 3 entries"));

        let mut h = small();
        h.up[0].sources[4].1 = [0.5, 0.1, 0.3];
        assert!(error_of(&h).contains("up[0].sources[4] weights"));

        let mut h = small();
        h.up[0].sources[4].1 = [1.5, -0.1, -0.4];
        assert!(error_of(&h).contains("up[0].sources[4] weights"));

        let mut h = small();
        h.up[0].sources[4].0 = [0, 1, 4];
        assert!(error_of(&h).contains("up[0].sources[4] indices"));

        let mut h = small();
        h.up[0].sources[2] = ([1, 1, 1], [1.0, 0.0, 0.0]);
        assert!(error_of(&h).contains("does not reproduce kept vertex 2"));

        let mut h = small();
        h.up[0].sources.pop();
        assert!(error_of(&h).contains("up[0] maps"));
    }
}
