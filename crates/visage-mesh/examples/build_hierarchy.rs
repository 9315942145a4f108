//! Builds the template's mesh hierarchy (5 levels, factor 2 per level) and writes it to
//! `crates/visage-mesh/data/hierarchy.json`, which the crate embeds
//! (`MeshHierarchy::stored()`); a test checks the stored file equals a fresh build.
//!
//! ```text
//! cargo run -p visage-mesh --example build_hierarchy
//! ```

use std::path::Path;

use visage_mesh::{hierarchy, FaceMesh};

/// Levels of the stored hierarchy: 468 / 234 / 117 / 59 / 30 vertices.
const LEVELS: usize = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mesh = FaceMesh::canonical();
    let h = hierarchy::try_build(mesh, LEVELS)?;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/hierarchy.json");
    let text = h.to_json();
    std::fs::write(&path, &text)?;
    let positions = h.positions(&mesh.vertices);
    for (k, level) in h.levels.iter().enumerate() {
        print!(
            "level {k}: {:3} vertices, {:3} triangles",
            level.vertex_count,
            level.triangles.len()
        );
        if k > 0 {
            // How far the collapsed vertices of level k - 1 land from where they were when
            // up-sampled from level k.
            let up = h.up[k - 1].apply(&positions[k]);
            let worst = up
                .iter()
                .zip(&positions[k - 1])
                .map(|(a, b)| (0..3).map(|i| (a[i] - b[i]).powi(2)).sum::<f32>().sqrt())
                .fold(0.0f32, f32::max);
            print!(", max up-sampling error {worst:.4}");
        }
        println!();
    }
    println!("wrote {} ({} bytes)", path.display(), text.len());
    Ok(())
}
