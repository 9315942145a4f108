//! What `visage detect` writes for RetinaFace's dense 3D branch: per face an OBJ mesh
//! (vertices in image pixels plus depth, vertex colours, the template's triangles) and a
//! PNG of the image's anchor crop beside the rendered mesh; the mesh's wireframe for
//! `--draw`; and each face's camera and light for the JSON outputs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use image::{Rgb, RgbImage};
use serde::Serialize;
use visage_kernels::KernelBackend;
use visage_mesh::render::{AMBIENT_BASE, CAMERA_DISTANCE, FOCAL, LIGHT_BASE};
use visage_mesh::FaceMesh;
use visage_model::{Detection, DetectorFamily, FittedMesh, MeshParams};

/// Side in pixels of the rendered crops in the fit PNGs.
const FIT_SIZE: usize = 96;

/// The meshes of the detections scoring at least `threshold` (index into `detections`,
/// mesh), for models with a mesh branch; empty otherwise.
pub fn fit_detections<B: KernelBackend, M: DetectorFamily<B>>(
    model: &M,
    detections: &[Detection],
    threshold: f32,
) -> Vec<(usize, FittedMesh)> {
    let chosen: Vec<(usize, &MeshParams)> = detections
        .iter()
        .enumerate()
        .filter(|(_, d)| d.score >= threshold)
        .filter_map(|(i, d)| d.mesh.as_ref().map(|m| (i, m)))
        .collect();
    let params: Vec<&MeshParams> = chosen.iter().map(|(_, m)| *m).collect();
    let fits = model.face_meshes(&params);
    chosen.into_iter().map(|(i, _)| i).zip(fits).collect()
}

/// `visage detect --meshes DIR`: one OBJ and one fit PNG per face.
pub struct MeshWriter {
    dir: PathBuf,
    written: usize,
    faces: usize,
}

impl MeshWriter {
    /// Creates the folder.
    pub fn open(dir: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self {
            dir,
            written: 0,
            faces: 0,
        })
    }

    /// Writes `<index>_<stem>_face<k>.obj` and `..._fit.png` (image crop | rendering) for
    /// every fitted face of one image.
    pub fn write<B: KernelBackend, M: DetectorFamily<B>>(
        &mut self,
        model: &M,
        path: &Path,
        image: &RgbImage,
        detections: &[Detection],
        fits: &[(usize, FittedMesh)],
    ) -> Result<()> {
        let index = self.written;
        self.written += 1;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        let params: Vec<&MeshParams> = fits
            .iter()
            .filter_map(|(i, _)| detections[*i].mesh.as_ref())
            .collect();
        let renders = model.render_face_meshes(&params, FIT_SIZE);
        let triangles = &FaceMesh::canonical().triangles;
        for (k, ((_, fit), render)) in fits.iter().zip(&renders).enumerate() {
            let base = self.dir.join(format!("{index:05}_{stem}_face{k}"));
            let mesh = FaceMesh {
                vertices: fit.vertices.clone(),
                triangles: triangles.clone(),
            };
            let obj = base.with_extension("obj");
            std::fs::write(&obj, mesh.to_obj(Some(&fit.colours)))
                .with_context(|| format!("writing {}", obj.display()))?;
            let png = PathBuf::from(format!("{}_fit.png", base.display()));
            fit_picture(image, &fit.anchor, render)
                .save(&png)
                .with_context(|| format!("writing {}", png.display()))?;
            self.faces += 1;
        }
        Ok(())
    }

    /// One line for the summary.
    pub fn summary(&self) -> String {
        format!(
            "{} face meshes of {} images -> {}",
            self.faces,
            self.written,
            self.dir.display()
        )
    }
}

/// The image inside `anchor` resized to the rendering's size, beside the rendering.
fn fit_picture(image: &RgbImage, anchor: &[f32; 4], render: &[f32]) -> RgbImage {
    let size = FIT_SIZE as u32;
    let mut out = RgbImage::new(2 * size, size);
    let [x1, y1, x2, y2] = *anchor;
    let (w, h) = (image.width() as f32, image.height() as f32);
    for i in 0..size {
        for j in 0..size {
            // Nearest pixel of the anchor crop; outside the image stays black.
            let x = x1 + (j as f32 + 0.5) / size as f32 * (x2 - x1);
            let y = y1 + (i as f32 + 0.5) / size as f32 * (y2 - y1);
            if x >= 0.0 && y >= 0.0 && x < w && y < h {
                out.put_pixel(j, i, *image.get_pixel(x as u32, y as u32));
            }
            let p = (i * size + j) as usize * 3;
            let to_u8 = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            out.put_pixel(
                size + j,
                i,
                Rgb([to_u8(render[p]), to_u8(render[p + 1]), to_u8(render[p + 2])]),
            );
        }
    }
    out
}

/// Draws each fitted mesh's edges (projected vertices, image pixels) on `image`.
pub fn draw_meshes(image: &mut RgbImage, fits: &[(usize, FittedMesh)]) {
    let colour = Rgb([255, 220, 60]);
    let edges = FaceMesh::canonical().edges();
    for (_, fit) in fits {
        for [a, b] in &edges {
            let (p, q) = (fit.vertices[*a], fit.vertices[*b]);
            draw_line(image, [p[0], p[1]], [q[0], q[1]], colour);
        }
    }
}

/// A one-pixel line from `a` to `b` (image pixels), clipped to the image.
fn draw_line(image: &mut RgbImage, a: [f32; 2], b: [f32; 2], colour: Rgb<u8>) {
    let steps = (b[0] - a[0]).abs().max((b[1] - a[1]).abs()).ceil().max(1.0) as usize;
    if steps > 100_000 {
        return;
    }
    for s in 0..=steps {
        let t = s as f32 / steps as f32;
        let (x, y) = (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]));
        if x >= 0.0 && y >= 0.0 && (x as u32) < image.width() && (y as u32) < image.height() {
            image.put_pixel(x as u32, y as u32, colour);
        }
    }
}

/// A face's camera in the JSON output, in the mesh template's units (the face spans about
/// [−1, 1]; see `visage_mesh::render`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JsonCamera {
    /// The square crop (`[x1, y1, x2, y2]` image pixels: the detection's anchor) the camera
    /// projects into: crop pixels `u = S/2 · (1 + focal · x / depth)`, `v = S/2 · (1 − focal
    /// · y / depth)` for a crop of side `S`.
    pub crop: [f32; 4],
    /// Camera position.
    pub eye: [f32; 3],
    /// The point it looks at (up vector fixed to +y).
    pub target: [f32; 3],
    /// Focal length in half-crop units (the crop spans [−1, 1] at focal 1).
    pub focal: f32,
}

/// A face's lighting in the JSON output.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JsonLight {
    /// Point-light position (template units).
    pub position: [f32; 3],
    /// Point-light RGB colour.
    pub colour: [f32; 3],
    /// Ambient RGB colour.
    pub ambient: [f32; 3],
}

/// The camera and light of a detection's mesh parameters (the last 16 raw values).
pub fn camera_and_light(mesh: &MeshParams) -> (JsonCamera, JsonLight) {
    let v = &mesh.values[mesh.values.len() - 16..];
    let (distance, focal) = (CAMERA_DISTANCE as f32, FOCAL as f32);
    let (light_base, ambient_base) = (LIGHT_BASE as f32, AMBIENT_BASE as f32);
    let camera = JsonCamera {
        crop: mesh.anchor,
        eye: [v[0], v[1], distance + v[2]],
        target: [v[3], v[4], v[5]],
        focal: focal * v[6].exp(),
    };
    let light = JsonLight {
        position: [v[7], v[8], distance + v[9]],
        colour: [light_base + v[10], light_base + v[11], light_base + v[12]],
        ambient: [
            ambient_base + v[13],
            ambient_base + v[14],
            ambient_base + v[15],
        ],
    };
    (camera, light)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_parameters_are_the_default_camera_and_light() {
        let mesh = MeshParams {
            anchor: [0.0; 4],
            values: vec![0.0; 144],
        };
        let (camera, light) = camera_and_light(&mesh);
        assert_eq!(camera.eye, [0.0, 0.0, 4.0]);
        assert_eq!(camera.target, [0.0; 3]);
        assert_eq!(camera.focal, 3.6);
        assert_eq!(light.position, [0.0, 0.0, 4.0]);
        assert_eq!(light.colour, [0.7; 3]);
        assert_eq!(light.ambient, [0.3; 3]);
    }

    #[test]
    fn lines_are_clipped_to_the_image() {
        let mut image = RgbImage::new(8, 8);
        draw_line(&mut image, [-4.0, 2.5], [20.0, 2.5], Rgb([1, 2, 3]));
        assert_eq!(*image.get_pixel(0, 2), Rgb([1, 2, 3]));
        assert_eq!(*image.get_pixel(7, 2), Rgb([1, 2, 3]));
        assert_eq!(*image.get_pixel(3, 3), Rgb([0, 0, 0]));
    }
}
