//! `L_pixel` (RetinaFace eq. 3): for a bounded number of positive anchors, the mesh decoded
//! from the anchor's code is rendered with its camera and light into the anchor's square
//! crop, and compared with the image's own pixels there:
//! `L_pixel = mean over the rendered anchors of (1 / S²) Σ_pixels ‖R − I*‖₁` (L1 over the
//! RGB channels in [0, 1]).
//!
//! Choices the paper leaves open: the crop is the anchor box resampled to `crop_size²`;
//! pixels the mesh does not cover count, rendered black — they add a constant (the
//! renderer, like Genova et al.'s, has no gradient at silhouettes), so the image's
//! background neither helps nor hurts the fit; at most `max_faces` positives per batch,
//! spread evenly over the batch's positives (image-major order).

use burn::prelude::*;
use burn::tensor::TensorData;
use visage_boxes::BoxXyxy;
use visage_kernels::KernelBackend;

use super::crops::HostImages;
use super::{render_values, MeshBranch, MeshSpec};
use crate::common::pixels::PixelNormalisation;

/// What the pixel loss reads besides the branch: the batch's raw dense outputs and input
/// images, and its positives.
pub(crate) struct PixelLossInputs<'a, B: Backend> {
    /// `[B, N, code + 16]` raw dense outputs.
    pub(crate) dense: &'a Tensor<B, 3>,
    /// `[B, 3, H, W]` the normalised input batch.
    pub(crate) images: &'a Tensor<B, 4>,
    /// Flat (`b · N + n`) indices of the positive anchors, increasing.
    pub(crate) positives: &'a [usize],
    /// `[N]` the anchors (xyxy input pixels), shared by the batch.
    pub(crate) priors: &'a [BoxXyxy],
    /// How the input was normalised.
    pub(crate) pixels: &'a PixelNormalisation,
}

/// At most `max` of `positives`, spread evenly (the first always included).
pub(crate) fn spread(positives: &[usize], max: usize) -> Vec<usize> {
    let k = positives.len().min(max);
    (0..k).map(|i| positives[i * positives.len() / k]).collect()
}

/// `L_pixel` of a batch (`[1]`, differentiable in the dense outputs and, unless frozen, the
/// decoder); a connected zero when the batch has no positive.
pub(crate) fn pixel_loss<B: KernelBackend>(
    branch: &MeshBranch<B>,
    spec: &MeshSpec,
    inputs: &PixelLossInputs<'_, B>,
) -> Tensor<B, 1> {
    let device = inputs.dense.device();
    let [batch, n, per_anchor] = inputs.dense.dims();
    let chosen = spread(inputs.positives, spec.max_faces);
    if chosen.is_empty() {
        return inputs.dense.clone().sum() * 0.0;
    }
    let m = chosen.len();
    let size = spec.crop_size;
    let rows_index: Vec<i32> = chosen.iter().map(|&i| i as i32).collect();
    let rows_index = Tensor::<B, 1, Int>::from_data(TensorData::new(rows_index, [m]), &device);
    let rows = inputs
        .dense
        .clone()
        .reshape([batch * n, per_anchor])
        .select(0, rows_index);
    let rendering = render_values(&branch.decoder_for_loss(spec), rows, size);

    // The photometric targets, on the host.
    let [_, _, height, width] = inputs.images.dims();
    let host = HostImages {
        pixels: inputs
            .images
            .clone()
            .into_data()
            .convert::<f32>()
            .to_vec()
            .expect("f32 images"),
        height,
        width,
    };
    let mut targets = Vec::with_capacity(m * size * size * 3);
    for &flat in &chosen {
        let prior = &inputs.priors[flat % n];
        targets.extend(host.crop(flat / n, prior, size, inputs.pixels));
    }
    // Uncovered pixels are rendered black: their |0 − I*| is a constant.
    let mut covered = vec![false; m * size * size];
    for &p in &rendering.pixel_index {
        covered[p] = true;
    }
    let background: f32 = targets
        .chunks(3)
        .zip(&covered)
        .filter(|(_, c)| !**c)
        .map(|(t, _)| t.iter().map(|v| v.abs()).sum::<f32>())
        .sum();
    let pixels = (m * size * size) as f32;
    let anchor = inputs.dense.clone().sum() * 0.0;
    if rendering.pixel_index.is_empty() {
        return anchor + background / pixels;
    }
    let covered_index: Vec<i32> = rendering.pixel_index.iter().map(|&p| p as i32).collect();
    let count = covered_index.len();
    let covered_index =
        Tensor::<B, 1, Int>::from_data(TensorData::new(covered_index, [count]), &device);
    let targets = Tensor::<B, 2>::from_data(
        TensorData::new(targets, [m * size * size, 3]).convert_dtype(rendering.colours.dtype()),
        &device,
    )
    .select(0, covered_index);
    let difference = (rendering.colours - targets).abs().sum();
    anchor + (difference + background) / pixels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_evenly_spaced_positives() {
        assert_eq!(spread(&[3, 5, 7, 9], 2), vec![3, 7]);
        assert_eq!(spread(&[3, 5], 16), vec![3, 5]);
        assert!(spread(&[], 4).is_empty());
        assert_eq!(spread(&(0..10).collect::<Vec<_>>(), 3), vec![0, 3, 6]);
    }
}
