//! Detection over a WIDER FACE split and its official evaluation, through the one
//! [`Predictor`]: what `visage eval --split` and validation during training run.

use std::path::Path;

use visage_data::layout::{ground_truth_dir, images_dir, split_images, Split};
use visage_eval::{evaluate, write_submission, EvalReport, GroundTruth, Predictions};
use visage_kernels::KernelBackend;
use visage_model::{Detection, DetectorFamily};

use crate::error::InferError;
use crate::predictor::{Predictor, RunStats};

/// Detects every image of `split` under the WIDER root `root`, writing the submission
/// (`<out>/<event>/<name>.txt`) when `out` is given; `progress(done, total)` is called after
/// each image. An image that cannot be read, is truncated or is over the predictor's pixel
/// limit ([`Predictor::with_max_image_pixels`]) stops the run with an error naming it: the
/// official protocol scores every image of the split.
pub fn detect_split<B: KernelBackend, M: DetectorFamily<B>>(
    predictor: &Predictor<'_, B, M>,
    root: &Path,
    split: Split,
    out: Option<&Path>,
    mut progress: impl FnMut(usize, usize),
) -> Result<(Predictions, RunStats), InferError> {
    let images = split_images(root, split)?;
    let dir = images_dir(root, split);
    let paths = images.iter().map(|i| dir.join(&i.relative)).collect();
    let total = images.len();
    let mut predictions = Predictions::new();
    let stats = predictor.run(paths, |detected| -> Result<(), InferError> {
        detected.image?;
        let image = &images[detected.index];
        let entries = to_wider(&detected.detections);
        if let Some(out) = out {
            write_submission(out, &image.event, &image.name, &entries)?;
        }
        predictions.insert(&image.event, &image.name, &entries)?;
        progress(detected.index + 1, total);
        Ok(())
    })?;
    Ok((predictions, stats))
}

/// Detects over `split` (writing the submission to `out` when given) and scores it with
/// the official protocol against `<root>/eval_tools/ground_truth`.
pub fn evaluate_split<B: KernelBackend, M: DetectorFamily<B>>(
    predictor: &Predictor<'_, B, M>,
    root: &Path,
    split: Split,
    out: Option<&Path>,
    progress: impl FnMut(usize, usize),
) -> Result<(EvalReport, RunStats), InferError> {
    let gt = GroundTruth::read_dir(&ground_truth_dir(root))?;
    let (predictions, stats) = detect_split(predictor, root, split, out, progress)?;
    Ok((evaluate(&gt, &predictions), stats))
}

/// Detections as WIDER FACE submission entries (`x y w h score`, pixels).
pub fn to_wider(detections: &[Detection]) -> Vec<visage_eval::Detection> {
    detections
        .iter()
        .map(|d| {
            let [x1, y1, x2, y2] = d.bbox;
            visage_eval::Detection {
                x: x1,
                y: y1,
                w: x2 - x1,
                h: y2 - y1,
                score: d.score,
            }
        })
        .collect()
}
