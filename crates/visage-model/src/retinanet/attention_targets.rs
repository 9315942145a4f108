//! FAN's attention supervision (Wang et al. 2017, §3.2 "Attention Function"): per pyramid
//! level, a binary mask made by filling the boxes of the faces that belong to that level.
//! DF²S²'s segmentation supervision (§3.2: "bounding-box segmentation ground truth" per
//! level, for "the faces matching the level's receptive field / anchors") is the same
//! construction, built from `[model.segmentation]` by [`AttentionAssigner::for_segmentation`].
//!
//! Which faces belong to a level ([`AttentionLevelsSpec`]):
//! - `anchor_area` (default): the face's box area `w·h` lies in
//!   `[min_area_factor · a_min², max_area_factor · a_max²]`, `a_min` / `a_max` being the
//!   level's smallest / largest anchor size `base_factor · stride · scale` (an anchor of size
//!   `a` has area `a²` whatever its ratio). FAN's public code hard-codes this for P3..P7 with
//!   its anchors `2^(k+5) · {1, 2^(1/3), 2^(2/3)}`: `[0.5 · (2^(k+5))², 2 · (1.58 · 2^(k+5))²]`,
//!   i.e. factors 0.5 and 2; here the bounds follow the configured levels and anchors. The
//!   ranges of neighbouring levels overlap, so a face may fill the masks of two levels, and a
//!   face outside every range fills none (as in the public code).
//! - `matched`: the levels holding at least one of the face's positive anchors (the paper's
//!   wording; with `force_best`, every face matched to any anchor fills a mask).
//!
//! How a box is filled: on the level of stride `s`, cell `(y, x)` has its centre at
//! `((x + 0.5)·s, (y + 0.5)·s)` (the anchor centres); a box fills the cells whose centres lie
//! in it (closed box). Per axis, if no centre lies in the box (a box thinner than a cell),
//! the cell holding the box's centre is filled instead, so a face never leaves an empty
//! mask. (The public code rounds outwards — `floor(x1)` to `ceil(x2) + 1` on the map — which
//! fills about one extra cell on each side.)

use visage_boxes::BoxXyxy;

use super::spec::{AttentionLevelsSpec, RetinaNetSpec};
use crate::common::targets::{DenseTargets, FaceTargets};

/// Which faces fill which level's mask, resolved against the levels' strides and anchors.
#[derive(Debug, Clone, PartialEq)]
pub enum AttentionRule {
    /// Per level, `[min_area, max_area]` in pixels² of the network input.
    AreaRanges(Vec<[f32; 2]>),
    /// The levels holding a positive anchor of the face; `A` anchors per location.
    Matched {
        /// Anchors per feature-map location, to map an anchor index to its level.
        anchors_per_location: usize,
    },
}

/// Builds FAN's per-level attention masks (a weight-free policy).
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionAssigner {
    /// Strides of the pyramid levels, finest first.
    pub strides: Vec<usize>,
    /// Which faces belong to which level.
    pub rule: AttentionRule,
}

/// The attention masks of a batch: per level, `[B, 1, H_l, W_l]` of 0 / 1 values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttentionTargets {
    /// Images in the batch, `B`.
    pub batch: usize,
    /// `(H_l, W_l)` per level, finest first.
    pub sizes: Vec<(usize, usize)>,
    /// Per level, the `B · H_l · W_l` mask values, image-major then row-major (the layout
    /// of a `[B, 1, H_l, W_l]` tensor).
    pub masks: Vec<Vec<f32>>,
}

impl AttentionAssigner {
    /// The assigner of a spec with `[model.attention]`; `None` without it.
    pub fn from_spec(spec: &RetinaNetSpec) -> Option<Self> {
        let attention = spec.attention.as_ref()?;
        Some(Self::with_levels(spec, attention.levels))
    }

    /// The segmentation-mask assigner of a spec with `[model.segmentation]`; `None` without it.
    pub fn for_segmentation(spec: &RetinaNetSpec) -> Option<Self> {
        let segmentation = spec.segmentation.as_ref()?;
        Some(Self::with_levels(spec, segmentation.levels))
    }

    /// The assigner of `levels` over the spec's pyramid levels and anchors.
    pub fn with_levels(spec: &RetinaNetSpec, levels: AttentionLevelsSpec) -> Self {
        let strides: Vec<usize> = spec
            .level_strides()
            .into_iter()
            .map(|s| s as usize)
            .collect();
        let rule = match levels {
            AttentionLevelsSpec::AnchorArea {
                min_area_factor,
                max_area_factor,
            } => {
                let min_scale = spec
                    .anchors
                    .scales
                    .iter()
                    .copied()
                    .fold(f32::INFINITY, f32::min);
                let max_scale = spec.anchors.scales.iter().copied().fold(0.0, f32::max);
                AttentionRule::AreaRanges(
                    strides
                        .iter()
                        .map(|&stride| {
                            let unit = spec.anchors.base_factor * stride as f32;
                            let (a_min, a_max) = (unit * min_scale, unit * max_scale);
                            [
                                min_area_factor * a_min * a_min,
                                max_area_factor * a_max * a_max,
                            ]
                        })
                        .collect(),
                )
            }
            AttentionLevelsSpec::Matched => AttentionRule::Matched {
                anchors_per_location: spec.anchors_per_location(),
            },
        };
        Self { strides, rule }
    }

    /// The masks of a batch.
    ///
    /// - `faces`: one entry per image, boxes xyxy in pixels of the network input.
    /// - `feature_sizes`: `(H_l, W_l)` of each level, finest first (the detector's outputs).
    /// - `dense`: the batch's anchor targets (read by the `Matched` rule only; the area rule
    ///   accepts `DenseTargets::default()`).
    ///
    /// # Panics
    /// If `feature_sizes` does not have one entry per level, or (`Matched`) `dense` was not
    /// built for these feature sizes and faces.
    pub fn build(
        &self,
        faces: &[FaceTargets],
        feature_sizes: &[(usize, usize)],
        dense: &DenseTargets,
    ) -> AttentionTargets {
        assert_eq!(
            feature_sizes.len(),
            self.strides.len(),
            "one feature size per attention level"
        );
        let batch = faces.len();
        // belongs[b][face][level]
        let mut belongs: Vec<Vec<Vec<bool>>> = faces
            .iter()
            .map(|image| vec![vec![false; self.strides.len()]; image.boxes.len()])
            .collect();
        match &self.rule {
            AttentionRule::AreaRanges(ranges) => {
                for (image, flags) in faces.iter().zip(&mut belongs) {
                    for (face, levels) in image.boxes.iter().zip(flags.iter_mut()) {
                        let area = (face[2] - face[0]).max(0.0) * (face[3] - face[1]).max(0.0);
                        for (flag, [lo, hi]) in levels.iter_mut().zip(ranges) {
                            *flag = area > 0.0 && area >= *lo && area <= *hi;
                        }
                    }
                }
            }
            AttentionRule::Matched {
                anchors_per_location,
            } => {
                // First anchor index of each level, and the total.
                let mut starts = Vec::with_capacity(feature_sizes.len() + 1);
                let mut total = 0;
                for &(h, w) in feature_sizes {
                    starts.push(total);
                    total += h * w * anchors_per_location;
                }
                assert_eq!(
                    dense.anchors_per_image, total,
                    "anchor targets built for other feature sizes"
                );
                for (&flat, &face) in dense.positive_index.iter().zip(&dense.positive_faces) {
                    let (b, n) = (flat / total, flat % total);
                    let level = starts.partition_point(|&start| start <= n) - 1;
                    belongs[b][face][level] = true;
                }
            }
        }
        let masks = feature_sizes
            .iter()
            .zip(&self.strides)
            .enumerate()
            .map(|(level, (&(h, w), &stride))| {
                let mut mask = vec![0.0f32; batch * h * w];
                for (b, image) in faces.iter().enumerate() {
                    let plane = &mut mask[b * h * w..(b + 1) * h * w];
                    for (face, flags) in image.boxes.iter().zip(&belongs[b]) {
                        if flags[level] {
                            fill(plane, (h, w), stride, face);
                        }
                    }
                }
                mask
            })
            .collect();
        AttentionTargets {
            batch,
            sizes: feature_sizes.to_vec(),
            masks,
        }
    }
}

/// Cells `lo..=hi` along one axis of `n` cells of size `stride` whose centres lie in
/// `[a, b]`; if none, the cell holding `(a + b) / 2`. Clamped to the map.
fn cell_range(a: f32, b: f32, stride: usize, n: usize) -> (usize, usize) {
    let s = stride as f32;
    let last = n as i64 - 1;
    let lo = ((a / s - 0.5).ceil() as i64).max(0);
    let hi = ((b / s - 0.5).floor() as i64).min(last);
    if lo <= hi {
        (lo as usize, hi as usize)
    } else {
        let c = (((a + b) * 0.5 / s).floor() as i64).clamp(0, last) as usize;
        (c, c)
    }
}

/// Sets to 1 the cells of an `h × w` plane that `face` covers.
fn fill(plane: &mut [f32], (h, w): (usize, usize), stride: usize, face: &BoxXyxy) {
    if h == 0 || w == 0 {
        return;
    }
    let (x0, x1) = cell_range(face[0], face[2], stride, w);
    let (y0, y1) = cell_range(face[1], face[3], stride, h);
    for y in y0..=y1 {
        plane[y * w + x0..=y * w + x1].fill(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P3..P7, anchors 16·2^(i/3) px as FAN: P3 area range [0.5·16², 2·25.4²] px², i.e.
    /// sides 11.3..35.9; P4 22.6..71.8; P5 45.3..143.7; ...
    fn fan_spec() -> RetinaNetSpec {
        toml::from_str(
            r#"
            [backbone.resnet]
            depth = 18
            [neck.fpn]
            channels = 16
            min_level = 3
            max_level = 7
            [head]
            channels = 16
            [anchors]
            base_factor = 2.0
            scales = [1.0, 1.259921, 1.587401]
            ratios = [1.0, 1.5]
            [assign]
            positive_iou = 0.5
            negative_iou = 0.4
            [attention]
            channels = 16
            "#,
        )
        .unwrap()
    }

    /// Feature sizes of a 128 × 128 input on P3..P7.
    const SIZES: [(usize, usize); 5] = [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)];

    fn image(boxes: Vec<BoxXyxy>) -> FaceTargets {
        FaceTargets {
            boxes,
            ..Default::default()
        }
    }

    fn ones(mask: &[f32]) -> Vec<usize> {
        mask.iter()
            .enumerate()
            .filter(|(_, &v)| v == 1.0)
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn area_ranges_follow_the_anchor_sizes() {
        let assigner = AttentionAssigner::from_spec(&fan_spec()).unwrap();
        assert_eq!(assigner.strides, vec![8, 16, 32, 64, 128]);
        let AttentionRule::AreaRanges(ranges) = &assigner.rule else {
            panic!("{:?}", assigner.rule)
        };
        // The public code's formula with 2^(k+5) replaced by the level's smallest anchor
        // (16 · 2^k) and 1.58 · 2^(k+5) by its largest (16 · 2^k · 2^(2/3)).
        for (k, [lo, hi]) in ranges.iter().enumerate() {
            let base = 16.0 * (1u32 << k) as f32;
            assert!((lo - 0.5 * base * base).abs() < 1e-3 * lo, "{k}: {lo}");
            let top = base * 2f32.powf(2.0 / 3.0);
            assert!((hi - 2.0 * top * top).abs() < 1e-3 * hi, "{k}: {hi}");
        }
    }

    #[test]
    fn a_16px_face_fills_its_cells_on_p3_only() {
        let assigner = AttentionAssigner::from_spec(&fan_spec()).unwrap();
        let faces = [image(vec![[40.0, 40.0, 56.0, 56.0]])];
        let t = assigner.build(&faces, &SIZES, &DenseTargets::default());
        assert_eq!(t.batch, 1);
        assert_eq!(t.sizes, SIZES.to_vec());
        // P3 centres 4, 12, .., 124: 44 and 52 lie in [40, 56] -> columns / rows 5 and 6.
        assert_eq!(
            ones(&t.masks[0]),
            vec![5 * 16 + 5, 5 * 16 + 6, 6 * 16 + 5, 6 * 16 + 6]
        );
        for level in 1..5 {
            assert!(ones(&t.masks[level]).is_empty(), "level {level}");
        }
    }

    #[test]
    fn a_face_in_two_ranges_fills_both_levels_and_no_other() {
        let assigner = AttentionAssigner::from_spec(&fan_spec()).unwrap();
        // 30 px: in P3's 11.3..35.9 and P4's 22.6..71.8; 100 px: P5 (45..144) and P6 (91..287).
        let faces = [
            image(vec![[0.0, 0.0, 30.0, 30.0]]),
            image(vec![[20.0, 20.0, 120.0, 120.0]]),
        ];
        let t = assigner.build(&faces, &SIZES, &DenseTargets::default());
        let plane = |level: usize, b: usize| {
            let (h, w) = SIZES[level];
            ones(&t.masks[level][b * h * w..(b + 1) * h * w])
        };
        // Image 0: P3 centres 4, 12, 20, 28 are in [0, 30]; P4 centres 8 and 24.
        let p3: Vec<usize> = (0..4)
            .flat_map(|y| (0..4).map(move |x| y * 16 + x))
            .collect();
        assert_eq!(plane(0, 0), p3);
        assert_eq!(plane(1, 0), vec![0, 1, 8, 9]);
        for level in 2..5 {
            assert!(plane(level, 0).is_empty(), "image 0, level {level}");
        }
        // Image 1: P5 centres 16, 48, 80, 112 -> cells 1..=3; P6 centres 32, 96 -> both.
        assert!(plane(0, 1).is_empty() && plane(1, 1).is_empty());
        let p5: Vec<usize> = (1..4)
            .flat_map(|y| (1..4).map(move |x| y * 4 + x))
            .collect();
        assert_eq!(plane(2, 1), p5);
        assert_eq!(plane(3, 1), vec![0, 1, 2, 3]);
        assert!(plane(4, 1).is_empty());
    }

    #[test]
    fn an_image_without_faces_has_empty_masks() {
        let assigner = AttentionAssigner::from_spec(&fan_spec()).unwrap();
        let t = assigner.build(
            &[image(vec![]), image(vec![])],
            &SIZES,
            &DenseTargets::default(),
        );
        assert_eq!(t.masks.len(), 5);
        for (mask, (h, w)) in t.masks.iter().zip(SIZES) {
            assert_eq!(mask.len(), 2 * h * w);
            assert!(mask.iter().all(|&v| v == 0.0));
        }
    }

    #[test]
    fn a_box_thinner_than_a_cell_fills_the_cell_of_its_centre() {
        let assigner = AttentionAssigner {
            strides: vec![8],
            rule: AttentionRule::AreaRanges(vec![[1.0, 1e6]]),
        };
        // x in [13, 15] holds no centre (12, 20) -> column of 14: 1; y in [2, 30] -> 0..=3.
        let t = assigner.build(
            &[image(vec![[13.0, 2.0, 15.0, 30.0]])],
            &[(4, 4)],
            &DenseTargets::default(),
        );
        assert_eq!(ones(&t.masks[0]), vec![1, 5, 9, 13]);
        // Boxes over the border are clamped to the map (y: centres 28 in [21, 40], 36 off the map).
        let t = assigner.build(
            &[image(vec![[-10.0, 21.0, 60.0, 40.0]])],
            &[(4, 4)],
            &DenseTargets::default(),
        );
        assert_eq!(ones(&t.masks[0]), vec![12, 13, 14, 15]);
    }

    #[test]
    fn the_matched_rule_uses_the_levels_of_the_positive_anchors() {
        let mut spec = fan_spec();
        spec.attention.as_mut().unwrap().levels = AttentionLevelsSpec::Matched;
        let assigner = AttentionAssigner::from_spec(&spec).unwrap();
        assert_eq!(
            assigner.rule,
            AttentionRule::Matched {
                anchors_per_location: 6
            }
        );
        // Two levels of 2 × 2 cells and 1 × 1, 6 anchors per cell: N = 24 + 6 = 30.
        let assigner = AttentionAssigner {
            strides: vec![8, 16],
            ..assigner
        };
        let sizes = [(2, 2), (1, 1)];
        let faces = [
            image(vec![[0.0, 0.0, 8.0, 8.0], [0.0, 0.0, 16.0, 16.0]]),
            image(vec![[8.0, 8.0, 16.0, 16.0]]),
        ];
        let dense = DenseTargets {
            anchors_per_image: 30,
            // Image 0: face 0 on P3 (anchor 0), face 1 on P4 (anchor 25);
            // image 1: face 0 on P3 (anchor 3·6 = 18, cell (1, 1)).
            positive_index: vec![0, 25, 30 + 18],
            positive_faces: vec![0, 1, 0],
            ..Default::default()
        };
        let t = assigner.build(&faces, &sizes, &dense);
        assert_eq!(t.masks[0], vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
        assert_eq!(t.masks[1], vec![1.0, 0.0]);
    }
}
