//! Turning ground-truth faces into per-anchor training targets.

use visage_anchors::{AnchorMatch, MaxIouAssigner};
use visage_boxes::{BoxCoder, BoxXyxy};

use crate::error::ModelError;

/// The ground-truth faces of one image.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaceTargets {
    /// Face boxes, `[x1, y1, x2, y2]` in pixels of the network input.
    pub boxes: Vec<BoxXyxy>,
    /// Five landmarks per face (left eye, right eye, nose, left and right mouth corner;
    /// `[x, y]` pixels of the network input), `None` for a face without landmarks. Empty, or
    /// one entry per box. Architectures without a landmark head ignore it.
    pub landmarks: Vec<Option<[[f32; 2]; 5]>>,
}

/// Checks that a batch of `batch` images with `outputs` outputs per image can be matched:
/// one target list per image, one anchor per output.
pub(crate) fn check_fit(
    faces: &[FaceTargets],
    batch: usize,
    anchors: usize,
    outputs: usize,
) -> Result<(), ModelError> {
    if faces.len() != batch {
        return Err(ModelError::InvalidInput(format!(
            "{} target lists for a batch of {batch} images",
            faces.len()
        )));
    }
    if anchors != outputs {
        return Err(ModelError::InvalidInput(format!(
            "{anchors} anchors for {outputs} outputs per image"
        )));
    }
    Ok(())
}

/// Per-anchor targets of a batch of `B` images with `N` anchors each, flattened image-major
/// (`b · N + n`, the order of the detector's flattened outputs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DenseTargets {
    /// Anchors per image, `N`.
    pub anchors_per_image: usize,
    /// `[B·N]`: 1 for a positive anchor, 0 otherwise.
    pub labels: Vec<f32>,
    /// `[B·N]`: 1 for anchors that count in the classification loss (positive or negative),
    /// 0 for the ignored ones.
    pub weights: Vec<f32>,
    /// Flat index `b · N + n` of each positive anchor, in increasing order.
    pub positive_index: Vec<usize>,
    /// For each positive: the matched face encoded against its anchor (centre/size deltas).
    pub box_deltas: Vec<[f32; 4]>,
    /// For each positive: the matched face, xyxy pixels.
    pub matched_boxes: Vec<BoxXyxy>,
    /// For each positive: its anchor, xyxy pixels.
    pub positive_anchors: Vec<BoxXyxy>,
    /// For each positive: the index of the matched face among its image's boxes.
    pub positive_faces: Vec<usize>,
}

impl DenseTargets {
    /// Assigns every image's faces to the anchors (shared by all images of the batch) and
    /// encodes the positives' boxes.
    pub fn build(
        anchors: &[BoxXyxy],
        faces: &[FaceTargets],
        assigner: &MaxIouAssigner,
        coder: &BoxCoder,
    ) -> Self {
        let mut targets = Self::ignoring_all(anchors.len(), faces.len());
        for (b, image) in faces.iter().enumerate() {
            targets.assign_image(b, anchors, None, &image.boxes, assigner, coder);
        }
        targets
    }

    /// Targets of a batch of `batch` images with `n` anchors each, every anchor ignored until
    /// [`assign_image`](Self::assign_image) fills its image.
    pub fn ignoring_all(n: usize, batch: usize) -> Self {
        DenseTargets {
            anchors_per_image: n,
            labels: vec![0.0; n * batch],
            weights: vec![0.0; n * batch],
            ..Default::default()
        }
    }

    /// Assigns image `b`'s faces (xyxy) to its `anchors` (`N` boxes, xyxy; they may differ
    /// from image to image, as SRN's refined anchors do) and encodes the positives against
    /// their own anchor. With `subset`, only the anchors at those indices (increasing) take
    /// part in the matching, the others stay ignored; without, all of them.
    ///
    /// Images must be assigned in increasing `b`, so that `positive_index` stays sorted.
    ///
    /// # Panics
    /// If `anchors.len()` is not `N` or `b` is out of the batch.
    pub fn assign_image(
        &mut self,
        b: usize,
        anchors: &[BoxXyxy],
        subset: Option<&[usize]>,
        faces: &[BoxXyxy],
        assigner: &MaxIouAssigner,
        coder: &BoxCoder,
    ) {
        let n = self.anchors_per_image;
        assert_eq!(anchors.len(), n, "one anchor per output");
        assert!(
            (b + 1) * n <= self.labels.len(),
            "image {b} is outside the batch"
        );
        let assignment = match subset {
            None => assigner.assign(anchors, faces),
            Some(subset) => {
                let boxes: Vec<BoxXyxy> = subset.iter().map(|&a| anchors[a]).collect();
                assigner.assign(&boxes, faces)
            }
        };
        for (k, m) in assignment.matches.iter().enumerate() {
            let a = subset.map_or(k, |subset| subset[k]);
            let flat = b * n + a;
            match *m {
                AnchorMatch::Positive { face, .. } => {
                    self.labels[flat] = 1.0;
                    self.weights[flat] = 1.0;
                    let face_box = faces[face];
                    self.positive_index.push(flat);
                    self.box_deltas.push(coder.encode(&anchors[a], &face_box));
                    self.matched_boxes.push(face_box);
                    self.positive_anchors.push(anchors[a]);
                    self.positive_faces.push(face);
                }
                AnchorMatch::Negative => self.weights[flat] = 1.0,
                AnchorMatch::Ignored => {}
            }
        }
    }

    /// Number of positive anchors over the batch.
    pub fn num_positive(&self) -> usize {
        self.positive_index.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assigner() -> MaxIouAssigner {
        MaxIouAssigner {
            positive_iou: 0.5,
            negative_iou: 0.4,
            force_best: true,
            force_best_min_iou: 0.2,
        }
    }

    #[test]
    fn positives_negatives_and_ignored_are_flattened_image_major() {
        // Three anchors; image 0 has a face on anchor 0 and a partial overlap with anchor 1;
        // image 1 has no faces.
        let anchors = [
            [0.0, 0.0, 10.0, 10.0],
            [5.0, 0.0, 15.0, 10.0],
            [50.0, 50.0, 60.0, 60.0],
        ];
        let faces = [
            FaceTargets {
                boxes: vec![[0.0, 0.0, 10.0, 10.0]],
                ..Default::default()
            },
            FaceTargets::default(),
        ];
        let coder = BoxCoder {
            variances: [0.1, 0.2],
        };
        let t = DenseTargets::build(&anchors, &faces, &assigner(), &coder);
        assert_eq!(t.anchors_per_image, 3);
        // anchor 1 overlaps the face with IoU 50/150 = 1/3 < 0.4 -> negative.
        assert_eq!(t.labels, vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(t.weights, vec![1.0; 6]);
        assert_eq!(t.positive_index, vec![0]);
        assert_eq!(t.box_deltas, vec![[0.0; 4]]);
        assert_eq!(t.positive_faces, vec![0]);
        assert_eq!(t.num_positive(), 1);
    }

    #[test]
    fn a_subset_matches_only_its_anchors_and_leaves_the_rest_ignored() {
        // The face sits exactly on anchor 0, but only anchors 1 and 2 take part: the best of
        // them (anchor 1, IoU 1/3) becomes the forced positive.
        let anchors = [
            [0.0, 0.0, 10.0, 10.0],
            [5.0, 0.0, 15.0, 10.0],
            [50.0, 50.0, 60.0, 60.0],
        ];
        let face = [0.0, 0.0, 10.0, 10.0];
        let coder = BoxCoder {
            variances: [0.1, 0.2],
        };
        let mut t = DenseTargets::ignoring_all(3, 2);
        t.assign_image(0, &anchors, None, &[], &assigner(), &coder);
        t.assign_image(1, &anchors, Some(&[1, 2]), &[face], &assigner(), &coder);
        assert_eq!(t.labels, vec![0.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!(t.weights, vec![1.0, 1.0, 1.0, 0.0, 1.0, 1.0]);
        assert_eq!(t.positive_index, vec![4]);
        assert_eq!(t.positive_anchors, vec![anchors[1]]);
        assert_eq!(t.box_deltas, vec![coder.encode(&anchors[1], &face)]);
    }

    #[test]
    fn the_ignore_band_has_zero_weight() {
        // Face overlapping anchor 1 with IoU 0.45 (between 0.4 and 0.5) and anchor 0 exactly.
        let anchors = [[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 4.5]];
        let faces = [FaceTargets {
            boxes: vec![[0.0, 0.0, 10.0, 10.0]],
            ..Default::default()
        }];
        let coder = BoxCoder {
            variances: [0.1, 0.2],
        };
        let t = DenseTargets::build(&anchors, &faces, &assigner(), &coder);
        assert_eq!(t.labels, vec![1.0, 0.0]);
        assert_eq!(t.weights, vec![1.0, 0.0]);
    }
}
