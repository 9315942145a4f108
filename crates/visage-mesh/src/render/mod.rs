//! A differentiable mesh renderer (Genova et al. 2018, "Unsupervised training for 3D
//! morphable model regression"): rasterise triangle ids on the host, then, with the ids
//! held fixed, recompute each covered pixel's barycentric coordinates from the projected
//! vertices in Burn ops, so that gradients reach the vertices, their colours, the camera and
//! the light. Silhouettes move only through re-rasterisation (no gradient at occlusion
//! boundaries), as in the paper.
//!
//! - [`camera`](mod@camera): look-at pinhole, raw `[M, 7]` parameters, zeros = the default
//!   view; [`project`].
//! - [`raster`](mod@raster): [`rasterise`], nearest triangle per pixel centre, exact
//!   shared-edge ties.
//! - [`shade`](mod@shade): area-weighted vertex normals, one point light + ambient
//!   (Lambert), raw `[M, 9]` parameters.
//! - [`render`] / [`render_with_ids`]: shading per vertex, screen-space (affine, not
//!   perspective-corrected) barycentric interpolation of the shaded vertex colours at each
//!   covered pixel centre (Gouraud), all covered pixels of all meshes in one batch of ops.
//!
//! Everything after the rasteriser works in the inputs' dtype (f32 or f64).

pub mod camera;
pub mod raster;
pub mod shade;
#[cfg(test)]
mod tests;

use burn::tensor::{backend::Backend, Bool, IndexingUpdateOp, Int, Tensor, TensorData};

pub use camera::{project, CAMERA_DISTANCE, CAMERA_PARAMS, FOCAL, NEAR};
pub use raster::{rasterise, rasterise_with_depth, Fragments};
pub use shade::{shade, vertex_normals, AMBIENT_BASE, LIGHT_BASE, LIGHT_PARAMS};

/// The covered pixels of `M` rendered `S × S` crops.
#[derive(Debug, Clone)]
pub struct Rendering<B: Backend> {
    /// Shaded colour at each covered pixel, RGB, in the order of `pixel_index`; `[P, 3]`.
    pub colours: Tensor<B, 2>,
    /// Each covered pixel's index into the `M · S · S` pixels, `m · S · S + i · S + j`
    /// (mesh `m`, row `i`, column `j`), ascending.
    pub pixel_index: Vec<usize>,
    /// The projected vertices `(u, v, depth)` (see [`project`]); `[M, V, 3]`.
    pub projected: Tensor<B, 3>,
    /// Triangle id per pixel of each mesh (`ids[m][i · S + j]`), as rasterised (or given).
    pub ids: Vec<Vec<Option<u32>>>,
    /// Crop side `S` in pixels.
    pub size: usize,
    /// Number of meshes `M`.
    pub meshes: usize,
}

impl<B: Backend> Rendering<B> {
    /// The rendered crops over a background: covered pixels take the rendered colours
    /// (differentiably in both; the background gets zero gradient where it is covered).
    ///
    /// # Shapes
    /// - `background`: `[M, 3, S, S]`
    /// - returns `[M, 3, S, S]`
    pub fn images(&self, background: Tensor<B, 4>) -> Tensor<B, 4> {
        let [m, c, h, w] = background.dims();
        let s = self.size;
        assert!(
            [m, c, h, w] == [self.meshes, 3, s, s],
            "background: expected [{}, 3, {s}, {s}], got [{m}, {c}, {h}, {w}]",
            self.meshes
        );
        if self.pixel_index.is_empty() {
            return background;
        }
        let device = background.device();
        let index = index_tensor::<B>(
            self.pixel_index.iter().map(|&p| p as i64).collect(),
            &device,
        );
        let flat = background.permute([0, 2, 3, 1]).reshape([m * s * s, 3]);
        // The colours at their pixels (exact: added to zeros), then chosen where covered.
        let rendered =
            flat.zeros_like()
                .select_assign(0, index, self.colours.clone(), IndexingUpdateOp::Add);
        let covered: Vec<bool> = self.coverage().into_iter().flat_map(|c| [c; 3]).collect();
        let mask =
            Tensor::<B, 2, Bool>::from_data(TensorData::new(covered, [m * s * s, 3]), &device);
        flat.mask_where(mask, rendered)
            .reshape([m, s, s, 3])
            .permute([0, 3, 1, 2])
    }

    /// Whether each of the `M · S · S` pixels is covered (index `m · S · S + i · S + j`).
    pub fn coverage(&self) -> Vec<bool> {
        let mut covered = vec![false; self.meshes * self.size * self.size];
        for &p in &self.pixel_index {
            covered[p] = true;
        }
        covered
    }
}

/// Renders `M` meshes sharing one triangle list into `S × S` crops.
///
/// Projects the vertices, rasterises each mesh's triangle ids on the host, and interpolates
/// the shaded vertex colours at the covered pixel centres (see the module doc).
///
/// # Shapes
/// - `positions`: `[M, V, 3]` world coordinates (template units, face toward +z)
/// - `colours`: `[M, V, 3]` per-vertex albedo, RGB in [0, 1]
/// - `camera`: `[M, 7]` raw camera values ([`camera`](mod@camera))
/// - `light`: `[M, 9]` raw light values ([`shade`](mod@shade))
///
/// # Panics
/// On inconsistent shapes or a triangle naming a vertex past `V`.
pub fn render<B: Backend>(
    positions: Tensor<B, 3>,
    colours: Tensor<B, 3>,
    camera: Tensor<B, 2>,
    light: Tensor<B, 2>,
    triangles: &[[usize; 3]],
    size: usize,
) -> Rendering<B> {
    let projected = project(positions.clone(), camera, size);
    let [m, v, _] = projected.dims();
    let host: Vec<f32> = projected.to_data().iter::<f32>().collect();
    let ids = (0..m)
        .map(|k| rasterise(&host[3 * v * k..3 * v * (k + 1)], triangles, size))
        .collect();
    interpolate(positions, colours, light, projected, triangles, size, ids)
}

/// [`render`] with the triangle id of every pixel given (`ids[m][i · S + j]`, e.g. the
/// [`Rendering::ids`] of an earlier call) instead of rasterised: the rendering is then a
/// smooth function of all inputs (used to check gradients against finite differences).
///
/// # Shapes
/// As [`render`]; `ids`: `M` vectors of `S · S`.
///
/// # Panics
/// On inconsistent shapes, or an id past the triangle list. A given id whose triangle is
/// degenerate on screen gives non-finite colours at its pixels.
pub fn render_with_ids<B: Backend>(
    positions: Tensor<B, 3>,
    colours: Tensor<B, 3>,
    camera: Tensor<B, 2>,
    light: Tensor<B, 2>,
    triangles: &[[usize; 3]],
    size: usize,
    ids: &[Vec<Option<u32>>],
) -> Rendering<B> {
    let projected = project(positions.clone(), camera, size);
    interpolate(
        positions,
        colours,
        light,
        projected,
        triangles,
        size,
        ids.to_vec(),
    )
}

fn index_tensor<B: Backend>(values: Vec<i64>, device: &B::Device) -> Tensor<B, 1, Int> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

/// Shades the vertices and interpolates their colours at the covered pixels of `ids`.
fn interpolate<B: Backend>(
    positions: Tensor<B, 3>,
    colours: Tensor<B, 3>,
    light: Tensor<B, 2>,
    projected: Tensor<B, 3>,
    triangles: &[[usize; 3]],
    size: usize,
    ids: Vec<Vec<Option<u32>>>,
) -> Rendering<B> {
    let [m, v, _] = projected.dims();
    assert_eq!(colours.dims(), [m, v, 3], "colours: expected [{m}, {v}, 3]");
    assert_eq!(ids.len(), m, "ids: expected one vector per mesh");
    let device = projected.device();
    let dtype = projected.dtype();

    // Host side: covered pixels, their centres and the rows of their three vertices in the
    // flattened [M · V, 3] vertex tensors.
    let mut pixel_index = Vec::new();
    let mut rows = Vec::new();
    let mut centres = Vec::new();
    for (mesh, mesh_ids) in ids.iter().enumerate() {
        assert_eq!(
            mesh_ids.len(),
            size * size,
            "ids[{mesh}]: expected {size}² pixels"
        );
        for (pixel, id) in mesh_ids.iter().enumerate() {
            let Some(t) = *id else { continue };
            let tri = triangles.get(t as usize).unwrap_or_else(|| {
                panic!(
                    "ids[{mesh}][{pixel}] = {t} is past the {} triangles",
                    triangles.len()
                )
            });
            pixel_index.push(mesh * size * size + pixel);
            rows.extend(tri.iter().map(|&k| (mesh * v + k) as i64));
            centres.push((pixel % size) as f32 + 0.5);
            centres.push((pixel / size) as f32 + 0.5);
        }
    }
    let p = pixel_index.len();
    let colours = if p == 0 {
        Tensor::zeros([0, 3], (&device, dtype))
    } else {
        let shaded = shade(positions, colours, light, triangles).reshape([m * v, 3]);
        let rows = index_tensor::<B>(rows, &device);
        let centres = Tensor::<B, 2>::from_data(TensorData::new(centres, [p, 2]), (&device, dtype));
        // Corners relative to the pixel centre, [P, 3, 2].
        let d = projected
            .clone()
            .reshape([m * v, 3])
            .select(0, rows.clone())
            .reshape([p, 3, 3])
            .slice([0..p, 0..3, 0..2])
            - centres.reshape([p, 1, 2]);
        // w_k = twice the signed area of (centre, corner k+1, corner k+2): the unnormalised
        // barycentric coordinate of corner k; their sum is twice the triangle's area.
        let next = d
            .clone()
            .select(1, index_tensor::<B>(vec![1, 2, 0], &device));
        let after = d.select(1, index_tensor::<B>(vec![2, 0, 1], &device));
        let w = next.clone().slice([0..p, 0..3, 0..1]) * after.clone().slice([0..p, 0..3, 1..2])
            - next.slice([0..p, 0..3, 1..2]) * after.slice([0..p, 0..3, 0..1]);
        let barycentric = w.clone() / w.sum_dim(1); // [P, 3, 1]
        (shaded.select(0, rows).reshape([p, 3, 3]) * barycentric)
            .sum_dim(1)
            .reshape([p, 3])
    };
    Rendering {
        colours,
        pixel_index,
        projected,
        ids,
        size,
        meshes: m,
    }
}
