//! One batched forward pass: passes of one input size stacked into `[n, 3, H, W]`, the
//! family's post-processing, and every detection mapped back to its original image
//! (unscaled, and mirrored back for a mirrored pass). Plus the grouping of passes by size.

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::TensorData;
use visage_kernels::KernelBackend;
use visage_model::{Detection, DetectorFamily, TestSpec};

use crate::prepare::PreparedPass;

/// Wall time of detection, split between the network and the post-processing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BatchTiming {
    /// Seconds in `forward` (on an asynchronous GPU backend this is mostly the launch; the
    /// wait then shows up in `postprocess_s`, which reads the outputs back).
    pub forward_s: f64,
    /// Seconds in decoding, thresholding, top-k, NMS and mapping boxes back.
    pub postprocess_s: f64,
}

impl BatchTiming {
    /// Adds another batch's times.
    pub fn add(&mut self, other: BatchTiming) {
        self.forward_s += other.forward_s;
        self.postprocess_s += other.postprocess_s;
    }
}

/// Runs `model` on passes of one size; `result[i]` are the detections of `passes[i]` in
/// pixels of its ORIGINAL image (`[x1, y1, x2, y2]`, and landmarks where the family has
/// them), post-processed with `test` (a pass's settings: [`TestSpec::per_pass`] under
/// test-time augmentation).
///
/// # Panics
/// If the passes differ in size (group them with [`group_by_size`] first) or `passes` is
/// empty.
pub fn detect_batch<B: KernelBackend, M: DetectorFamily<B>>(
    model: &M,
    passes: Vec<PreparedPass>,
    test: &TestSpec,
    device: &B::Device,
) -> (Vec<Vec<Detection>>, BatchTiming) {
    let first = passes.first().expect("a batch has at least one pass");
    let (height, width) = first.size();
    assert!(
        passes.iter().all(|p| p.size() == (height, width)),
        "detect_batch needs passes of one size"
    );
    let n = passes.len();
    let frames: Vec<(f32, Option<f32>)> =
        passes.iter().map(|p| (p.scale, p.mirrored_width)).collect();
    let mut pixels = Vec::with_capacity(n * 3 * height * width);
    for pass in passes {
        pixels.extend(pass.pixels);
    }
    let started = Instant::now();
    let input = Tensor::<B, 4>::from_data(TensorData::new(pixels, [n, 3, height, width]), device);
    let outputs = model.forward(input);
    let forward_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let detections = model
        .postprocess(&outputs, test)
        .into_iter()
        .zip(frames)
        .map(|(dets, (scale, mirrored_width))| {
            dets.into_iter()
                .map(|d| {
                    let d = d.unscaled(scale);
                    match mirrored_width {
                        Some(w) => d.flipped(w),
                        None => d,
                    }
                })
                .collect()
        })
        .collect();
    let timing = BatchTiming {
        forward_s,
        postprocess_s: started.elapsed().as_secs_f64(),
    };
    (detections, timing)
}

/// Indices of `sizes` grouped by equal size, each group in increasing index, the groups in
/// order of their first index: the forward passes a batch of passes needs.
pub fn group_by_size<T: PartialEq + Copy>(sizes: &[T]) -> Vec<Vec<usize>> {
    let mut groups: Vec<(T, Vec<usize>)> = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        match groups.iter_mut().find(|(s, _)| *s == size) {
            Some((_, group)) => group.push(i),
            None => groups.push((size, vec![i])),
        }
    }
    groups.into_iter().map(|(_, group)| group).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keep_first_appearance_order() {
        let sizes = [(2, 3), (4, 4), (2, 3), (1, 1), (4, 4), (2, 3)];
        assert_eq!(
            group_by_size(&sizes),
            vec![vec![0, 2, 5], vec![1, 4], vec![3]]
        );
        assert!(group_by_size::<(usize, usize)>(&[]).is_empty());
    }
}
