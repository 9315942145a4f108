//! The face template: MediaPipe's canonical face model (vendored under `data/`, Apache-2.0,
//! see `data/NOTICE.md`) and a small OBJ reader and writer.
//!
//! Coordinates of [`FaceMesh::canonical`] (right-handed, as in the file): x toward the
//! subject's left, which is the viewer's right (MediaPipe's right-eye outer corner, vertex 33,
//! has negative x), y up, the face looking toward +z (the nose tip, vertex 1, has nearly the
//! largest z); the bounding-box centre is at the origin and the larger of the x and y
//! half-extents is 1 (here y: the template spans 1.75 × 2 × 1.13).
//! Triangles are counter-clockwise seen from +z: the normal `(v1 − v0) × (v2 − v0)` of a
//! front-facing triangle has positive z.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::OnceLock;

use crate::MeshError;

/// The vendored canonical face model (468 vertices, 898 triangles).
const CANONICAL_OBJ: &str = include_str!("../data/canonical_face_model.obj");

/// A triangle mesh: vertex positions and triangles as vertex indices (0-based).
#[derive(Debug, Clone, PartialEq)]
pub struct FaceMesh {
    /// Vertex positions `[x, y, z]`.
    pub vertices: Vec<[f32; 3]>,
    /// Triangles, each three indices into `vertices` (counter-clockwise seen from the front).
    pub triangles: Vec<[usize; 3]>,
}

impl FaceMesh {
    /// The canonical face template (468 vertices, 898 triangles), parsed once: the bounding
    /// box centred on the origin, scaled so that `max(x half-extent, y half-extent) == 1` (z
    /// by the same factor), y up, looking toward +z, triangles counter-clockwise seen from +z.
    ///
    /// The vendored file already winds its triangles that way (checked by a test), so no
    /// triangle is flipped here.
    pub fn canonical() -> &'static FaceMesh {
        static CANONICAL: OnceLock<FaceMesh> = OnceLock::new();
        CANONICAL.get_or_init(|| {
            let mut mesh = parse_obj(CANONICAL_OBJ, "data/canonical_face_model.obj")
                .expect("the vendored canonical face model parses");
            mesh.normalise();
            mesh
        })
    }

    /// Moves the bounding-box centre to the origin and scales uniformly so that the larger of
    /// the x and y half-extents is 1.
    fn normalise(&mut self) {
        let mut lo = [f32::INFINITY; 3];
        let mut hi = [f32::NEG_INFINITY; 3];
        for v in &self.vertices {
            for a in 0..3 {
                lo[a] = lo[a].min(v[a]);
                hi[a] = hi[a].max(v[a]);
            }
        }
        let centre = [0, 1, 2].map(|a| 0.5 * (lo[a] + hi[a]));
        let half = (0.5 * (hi[0] - lo[0])).max(0.5 * (hi[1] - lo[1]));
        let scale = if half > 0.0 { 1.0 / half } else { 1.0 };
        for v in &mut self.vertices {
            for a in 0..3 {
                v[a] = (v[a] - centre[a]) * scale;
            }
        }
    }

    /// The mesh as OBJ text: a comment header, one `v x y z` line per vertex (or
    /// `v x y z r g b` with `colours`, the vertex-colour extension MeshLab and Blender read,
    /// components in `[0, 1]`), one `f a b c` line per triangle (1-based).
    ///
    /// # Panics
    /// If `colours` is given with a length other than the vertex count.
    pub fn to_obj(&self, colours: Option<&[[f32; 3]]>) -> String {
        if let Some(c) = colours {
            assert_eq!(
                c.len(),
                self.vertices.len(),
                "to_obj: one colour per vertex expected"
            );
        }
        let mut out = String::new();
        let _ = writeln!(out, "# visage-mesh face mesh");
        let _ = writeln!(
            out,
            "# {} vertices, {} triangles{}",
            self.vertices.len(),
            self.triangles.len(),
            if colours.is_some() {
                ", vertex colours (r g b in [0, 1]) after the coordinates"
            } else {
                ""
            }
        );
        for (i, v) in self.vertices.iter().enumerate() {
            let _ = write!(out, "v {} {} {}", v[0], v[1], v[2]);
            if let Some(c) = colours {
                let c = c[i];
                let _ = write!(out, " {} {} {}", c[0], c[1], c[2]);
            }
            out.push('\n');
        }
        for t in &self.triangles {
            let _ = writeln!(out, "f {} {} {}", t[0] + 1, t[1] + 1, t[2] + 1);
        }
        out
    }

    /// The mesh's unique undirected edges `[i, j]` with `i < j`, sorted.
    pub fn edges(&self) -> Vec<[usize; 2]> {
        triangle_edges(&self.triangles)
    }
}

/// The unique undirected edges `[i, j]` (`i < j`, sorted) of a triangle list.
pub(crate) fn triangle_edges(triangles: &[[usize; 3]]) -> Vec<[usize; 2]> {
    let mut set = BTreeSet::new();
    for t in triangles {
        for k in 0..3 {
            let (a, b) = (t[k], t[(k + 1) % 3]);
            if a != b {
                set.insert([a.min(b), a.max(b)]);
            }
        }
    }
    set.into_iter().collect()
}

/// Statements the reader skips: texture coordinates, normals, parameter-space vertices,
/// grouping, materials, smoothing, lines and points, display attributes.
const IGNORED: &[&str] = &[
    "vt",
    "vn",
    "vp",
    "mtllib",
    "usemtl",
    "o",
    "g",
    "s",
    "mg",
    "l",
    "p",
    "usemap",
    "maplib",
    "bevel",
    "c_interp",
    "d_interp",
    "lod",
    "shadow_obj",
    "trace_obj",
];

/// Parses OBJ text into a triangle mesh.
///
/// Reads `v x y z` (further components such as vertex colours are ignored) and `f` lines
/// whose corners have the forms `a`, `a/b`, `a/b/c` or `a//c`, with 1-based or negative
/// (relative to the vertices read so far) indices (a positive index may name a vertex defined
/// further down the file); polygons with more than three corners are
/// fan-triangulated from their first corner. Texture coordinates, normals, groups, materials,
/// smoothing groups, comments and blank lines are skipped. `origin` names the text in errors.
///
/// # Errors
/// [`MeshError::Obj`] with the 1-based line for an unparsable or non-finite number, a vertex
/// with fewer than three coordinates, a vertex index 0 or out of range, a face with fewer
/// than three corners, a statement the reader does not know (free-form geometry); and for a
/// text without vertices or without faces (reported at the last line).
pub fn parse_obj(text: &str, origin: &str) -> Result<FaceMesh, MeshError> {
    let err = |line: usize, message: String| MeshError::Obj {
        origin: origin.to_string(),
        line,
        message,
    };
    let mut vertices: Vec<[f32; 3]> = Vec::new();
    // Faces with their line numbers; positive indices are checked once every vertex is read.
    let mut faces: Vec<(usize, Vec<i64>)> = Vec::new();
    let mut last_line = 0;
    for (number, raw) in text.lines().enumerate() {
        let line = number + 1;
        last_line = line;
        let content = raw.split('#').next().unwrap_or("");
        let mut words = content.split_whitespace();
        let Some(keyword) = words.next() else {
            continue;
        };
        match keyword {
            "v" => {
                let mut xyz = [0f32; 3];
                for (a, slot) in xyz.iter_mut().enumerate() {
                    let word = words.next().ok_or_else(|| {
                        err(line, format!("vertex has {a} coordinates, 3 needed"))
                    })?;
                    *slot = word
                        .parse::<f32>()
                        .ok()
                        .filter(|x| x.is_finite())
                        .ok_or_else(|| err(line, format!("bad vertex coordinate {word:?}")))?;
                }
                vertices.push(xyz);
            }
            "f" => {
                let mut corners = Vec::new();
                for word in words {
                    let index =
                        parse_corner(word, vertices.len()).map_err(|message| err(line, message))?;
                    corners.push(index);
                }
                if corners.len() < 3 {
                    return Err(err(
                        line,
                        format!("face has {} corners, 3 or more needed", corners.len()),
                    ));
                }
                faces.push((line, corners));
            }
            k if IGNORED.contains(&k) => {}
            k => return Err(err(line, format!("unsupported OBJ statement {k:?}"))),
        }
    }
    if vertices.is_empty() {
        return Err(err(last_line, "no vertices".to_string()));
    }
    if faces.is_empty() {
        return Err(err(last_line, "no faces".to_string()));
    }
    let n = vertices.len();
    let mut triangles = Vec::new();
    for (line, corners) in faces {
        let mut resolved = Vec::with_capacity(corners.len());
        for c in corners {
            // Negative indices were made absolute (1-based) by `parse_corner`.
            if c < 1 || c as usize > n {
                return Err(err(line, format!("vertex index {c} out of range 1..={n}")));
            }
            resolved.push(c as usize - 1);
        }
        for k in 1..resolved.len() - 1 {
            triangles.push([resolved[0], resolved[k], resolved[k + 1]]);
        }
    }
    Ok(FaceMesh {
        vertices,
        triangles,
    })
}

/// One face corner (`a`, `a/b`, `a/b/c`, `a//c`): its 1-based vertex index, negative
/// (relative) indices resolved against the `seen` vertices read so far.
fn parse_corner(word: &str, seen: usize) -> Result<i64, String> {
    let parts: Vec<&str> = word.split('/').collect();
    if parts.len() > 3 {
        return Err(format!("bad face corner {word:?}"));
    }
    let index: i64 = parts[0]
        .parse()
        .map_err(|_| format!("bad vertex index in face corner {word:?}"))?;
    for extra in &parts[1..] {
        if !extra.is_empty() && extra.parse::<i64>().is_err() {
            return Err(format!(
                "bad texture or normal index in face corner {word:?}"
            ));
        }
    }
    match index {
        0 => Err(format!(
            "vertex index 0 in face corner {word:?} (OBJ is 1-based)"
        )),
        i if i < 0 => {
            let absolute = seen as i64 + 1 + i;
            if absolute < 1 {
                Err(format!(
                    "relative vertex index {i} reaches before the first vertex ({seen} read)"
                ))
            } else {
                Ok(absolute)
            }
        }
        i => Ok(i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_of(e: MeshError) -> usize {
        match e {
            MeshError::Obj { line, .. } => line,
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn reads_all_corner_forms_and_skips_the_rest() {
        let text = "# comment\nmtllib x.mtl\no face\ng g1\ns off\nusemtl m\n\n\
                    v 0 0 0\nv 1 0 0 0.5 0.5 0.5\nv 1 1 0\nv 0 1 0 # trailing\n\
                    vt 0 0\nvn 0 0 1\n\
                    f 1 2 3\nf 1/1 3/1 4/1\nf 1/1/1 2/1/1 3/1/1\nf 1//1 3//1 4//1\n";
        let mesh = parse_obj(text, "t").unwrap();
        assert_eq!(mesh.vertices.len(), 4);
        assert_eq!(mesh.vertices[1], [1.0, 0.0, 0.0]);
        assert_eq!(
            mesh.triangles,
            vec![[0, 1, 2], [0, 2, 3], [0, 1, 2], [0, 2, 3]]
        );
    }

    #[test]
    fn negative_indices_and_polygon_fans() {
        let text = "v 0 0 0\nv 1 0 0\nv 1 1 0\nf -3 -2 -1\nv 0 1 0\nv -1 0.5 0\nf 1 2 3 4 5\n";
        let mesh = parse_obj(text, "t").unwrap();
        assert_eq!(
            mesh.triangles,
            vec![[0, 1, 2], [0, 1, 2], [0, 2, 3], [0, 3, 4]]
        );
    }

    #[test]
    fn errors_name_the_line() {
        let bad = |t: &str| line_of(parse_obj(t, "x.obj").unwrap_err());
        assert_eq!(bad("v 0 0 0\nv 1 0 zz\n"), 2);
        assert_eq!(bad("v 0 0 nan\n"), 1);
        assert_eq!(bad("v 0 0\n"), 1);
        assert_eq!(bad("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n"), 4);
        assert_eq!(bad("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 5\nv 1 1 1\n"), 4);
        assert_eq!(bad("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 -4\n"), 4);
        assert_eq!(bad("v 0 0 0\nv 1 0 0\nf 1 2\n"), 3);
        assert_eq!(bad("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1/a 2 3\n"), 4);
        assert_eq!(bad("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1/1/1/1 2 3\n"), 4);
        assert_eq!(bad("v 0 0 0\ncurv 0 1 1 2\n"), 2);
        assert_eq!(bad("# nothing\n\n"), 2);
        assert_eq!(bad("v 0 0 0\nv 1 0 0\n"), 2);
        let message = parse_obj("v 0 0 0\nv 1 0 x\n", "face.obj")
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("face.obj:2:"), "{message}");
    }

    #[test]
    fn canonical_is_normalised_and_front_facing() {
        let mesh = FaceMesh::canonical();
        assert_eq!(mesh.vertices.len(), 468);
        assert_eq!(mesh.triangles.len(), 898);
        assert_eq!(mesh.edges().len(), 1365);
        let mut lo = [f32::INFINITY; 3];
        let mut hi = [f32::NEG_INFINITY; 3];
        for v in &mesh.vertices {
            for a in 0..3 {
                lo[a] = lo[a].min(v[a]);
                hi[a] = hi[a].max(v[a]);
            }
        }
        for a in 0..3 {
            assert!((lo[a] + hi[a]).abs() < 1e-5, "axis {a} not centred");
        }
        let half = (hi[0] - lo[0]).max(hi[1] - lo[1]) / 2.0;
        assert!((half - 1.0).abs() < 1e-5);
        // y up: the forehead (vertex 10) above the chin (vertex 152); nose tip (vertex 1)
        // toward +z.
        assert!(mesh.vertices[10][1] > mesh.vertices[152][1]);
        assert!(mesh.vertices[1][2] > 0.8 * hi[2]);
        // Counter-clockwise seen from +z: the area-weighted normal points to +z, and nearly
        // every triangle's normal has positive z.
        let mut total_z = 0.0;
        let mut front = 0;
        for t in &mesh.triangles {
            let [a, b, c] = t.map(|i| mesh.vertices[i]);
            let u = [b[0] - a[0], b[1] - a[1]];
            let v = [c[0] - a[0], c[1] - a[1]];
            let z = u[0] * v[1] - u[1] * v[0];
            total_z += z;
            front += usize::from(z > 0.0);
        }
        assert!(total_z > 0.0);
        assert!(
            front * 10 > mesh.triangles.len() * 9,
            "{front} front-facing"
        );
    }

    #[test]
    fn obj_round_trip_with_and_without_colours() {
        let mesh = FaceMesh::canonical();
        let back = parse_obj(&mesh.to_obj(None), "mem").unwrap();
        assert_eq!(&back, mesh);
        let colours: Vec<[f32; 3]> = (0..mesh.vertices.len())
            .map(|i| [i as f32 / 468.0, 0.25, 1.0])
            .collect();
        let text = mesh.to_obj(Some(&colours));
        assert!(text.starts_with('#'));
        assert!(text
            .lines()
            .filter(|l| l.starts_with("v "))
            .all(|l| l.split(' ').count() == 7));
        assert_eq!(&parse_obj(&text, "mem").unwrap(), mesh);
    }

    #[test]
    fn edges_are_unique_and_sorted() {
        let mesh = FaceMesh {
            vertices: vec![[0.0; 3]; 4],
            triangles: vec![[0, 1, 2], [2, 1, 3]],
        };
        assert_eq!(mesh.edges(), vec![[0, 1], [0, 2], [1, 2], [1, 3], [2, 3]]);
    }
}
