//! The meshes of detections: each detection's code decoded, its vertices projected with its
//! camera into its anchor crop and mapped to image pixels, with its colours, camera and light
//! (what `visage detect --meshes` writes as OBJ files and JSON).

use burn::prelude::*;
use burn::tensor::TensorData;
use visage_boxes::BoxXyxy;
use visage_kernels::KernelBackend;
use visage_mesh::render::{project, CAMERA_DISTANCE, FOCAL};
use visage_mesh::FaceMesh;

use super::{render_values, split_values, MeshBranch, MeshSpec, CAMERA_VALUES, LIGHT_VALUES};
use crate::common::postprocess::MeshParams;

/// One detection's face mesh.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedMesh {
    /// `[V]` vertices (the template's order and triangles): x, y in pixels of the image the
    /// anchor box is in; z the camera depth in the same pixel scale at the face (depth ×
    /// focal × anchor width / (2 · camera distance); larger is farther).
    pub vertices: Vec<[f32; 3]>,
    /// `[V]` albedo RGB in [0, 1] (the decoder's colours, clamped).
    pub colours: Vec<[f32; 3]>,
    /// Raw camera values (eye offset, look-at point, log focal factor).
    pub camera: [f32; CAMERA_VALUES],
    /// Raw light values (point-light offset, light colour offset, ambient colour offset).
    pub light: [f32; LIGHT_VALUES],
    /// The anchor crop, xyxy pixels.
    pub anchor: BoxXyxy,
}

/// Resolution of the projection before it is scaled to the anchor box.
const PROJECTION_SIZE: usize = 1024;

/// `[M, code + 16]` rows of the parameters' values.
///
/// # Panics
/// If a `params` entry does not hold `code_size + 16` values.
fn rows<B: KernelBackend>(
    params: &[&MeshParams],
    spec: &MeshSpec,
    device: &B::Device,
) -> Tensor<B, 2> {
    let per = spec.decoder.code_size + CAMERA_VALUES + LIGHT_VALUES;
    assert!(
        params.iter().all(|p| p.values.len() == per),
        "mesh parameters of another [model.mesh] (not {per} values each)"
    );
    let flat: Vec<f32> = params.iter().flat_map(|p| p.values.clone()).collect();
    Tensor::from_data(TensorData::new(flat, [params.len(), per]), device)
}

fn host<B: KernelBackend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().expect("f32 values")
}

/// The meshes of `params` (one per detection), decoded in one batch.
///
/// # Panics
/// If a `params` entry does not hold `code_size + 16` values.
pub fn fit_meshes<B: KernelBackend>(
    branch: &MeshBranch<B>,
    spec: &MeshSpec,
    params: &[&MeshParams],
    device: &B::Device,
) -> Vec<FittedMesh> {
    if params.is_empty() {
        return Vec::new();
    }
    let (code, camera, light) =
        split_values(rows::<B>(params, spec, device), spec.decoder.code_size);
    let mesh = branch.decoder.decode(code);
    let projected = host(project(mesh.positions, camera.clone(), PROJECTION_SIZE));
    let colours = host(mesh.colours);
    let cameras = host(camera);
    let lights = host(light);
    let v = FaceMesh::canonical().vertices.len();
    params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let [x1, y1, x2, y2] = p.anchor;
            let (sx, sy) = (
                (x2 - x1) / PROJECTION_SIZE as f32,
                (y2 - y1) / PROJECTION_SIZE as f32,
            );
            let mut cam = [0.0; CAMERA_VALUES];
            cam.copy_from_slice(&cameras[i * CAMERA_VALUES..(i + 1) * CAMERA_VALUES]);
            let mut lit = [0.0; LIGHT_VALUES];
            lit.copy_from_slice(&lights[i * LIGHT_VALUES..(i + 1) * LIGHT_VALUES]);
            let depth_scale =
                FOCAL as f32 * cam[6].exp() * (x2 - x1) / (2.0 * CAMERA_DISTANCE as f32);
            let vertices = (0..v)
                .map(|k| {
                    let q = &projected[(i * v + k) * 3..(i * v + k) * 3 + 3];
                    [x1 + q[0] * sx, y1 + q[1] * sy, q[2] * depth_scale]
                })
                .collect();
            let colours = (0..v)
                .map(|k| {
                    let c = &colours[(i * v + k) * 3..(i * v + k) * 3 + 3];
                    [
                        c[0].clamp(0.0, 1.0),
                        c[1].clamp(0.0, 1.0),
                        c[2].clamp(0.0, 1.0),
                    ]
                })
                .collect();
            FittedMesh {
                vertices,
                colours,
                camera: cam,
                light: lit,
                anchor: p.anchor,
            }
        })
        .collect()
}

/// The shaded renderings of `params` in their anchor crops, `size × size` RGB in [0, 1]
/// (row-major, pixel-major `[size · size · 3]`), uncovered pixels black: what the pixel
/// loss compares with the image.
pub fn render_fits<B: KernelBackend>(
    branch: &MeshBranch<B>,
    spec: &MeshSpec,
    params: &[&MeshParams],
    size: usize,
    device: &B::Device,
) -> Vec<Vec<f32>> {
    if params.is_empty() {
        return Vec::new();
    }
    let m = params.len();
    let rendering = render_values(&branch.decoder, rows::<B>(params, spec, device), size);
    let colours = host(rendering.colours.clone());
    let mut images = vec![vec![0.0f32; size * size * 3]; m];
    for (row, &p) in rendering.pixel_index.iter().enumerate() {
        let (image, pixel) = (p / (size * size), p % (size * size));
        for c in 0..3 {
            images[image][pixel * 3 + c] = colours[row * 3 + c].clamp(0.0, 1.0);
        }
    }
    images
}
