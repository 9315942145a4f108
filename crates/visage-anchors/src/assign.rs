//! Max-IoU anchor assignment with an ignore band and forced best matches.
//!
//! For each anchor, its best face (highest IoU; ties → lowest face index) decides:
//! IoU ≥ `positive_iou` → positive for that face; IoU < `negative_iou` → negative; otherwise
//! ignored. With `force_best`, every anchor that attains a face's highest IoU over all anchors
//! (all tied anchors, as torchvision's `allow_low_quality_matches`) becomes positive **for that
//! face** (as Pytorch_Retinaface's `match`) when that IoU is ≥ `force_best_min_iou` and > 0,
//! overriding the threshold rule; if one anchor is the best of several faces, the last face wins.

use crate::error::AnchorError;
use visage_boxes::{area, BoxXyxy};

/// Max-IoU assigner thresholds (a validated policy object; see the module doc for the rule).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaxIouAssigner {
    /// Best IoU ≥ this → positive. In `[0, 1]`.
    pub positive_iou: f32,
    /// Best IoU < this → negative; between the two → ignored. In `[0, positive_iou]`.
    pub negative_iou: f32,
    /// Force each face's best anchor(s) positive.
    pub force_best: bool,
    /// Minimum IoU for a forced match, in `[0, 1]` (forced matches also need IoU > 0).
    pub force_best_min_iou: f32,
}

/// The label of one anchor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AnchorMatch {
    /// Regress towards `faces[face]`; `iou` is the anchor's IoU with it.
    Positive {
        /// Index into the image's faces.
        face: usize,
        /// IoU of the anchor with that face.
        iou: f32,
    },
    /// Background.
    Negative,
    /// Neither: excluded from the classification loss.
    Ignored,
}

/// One [`AnchorMatch`] per anchor, in anchor order.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// `matches[i]` labels anchor `i`.
    pub matches: Vec<AnchorMatch>,
}

impl Assignment {
    /// Number of positive anchors.
    pub fn num_positive(&self) -> usize {
        self.count(|m| matches!(m, AnchorMatch::Positive { .. }))
    }

    /// Number of negative anchors.
    pub fn num_negative(&self) -> usize {
        self.count(|m| matches!(m, AnchorMatch::Negative))
    }

    /// Number of ignored anchors.
    pub fn num_ignored(&self) -> usize {
        self.count(|m| matches!(m, AnchorMatch::Ignored))
    }

    fn count(&self, f: impl Fn(&AnchorMatch) -> bool) -> usize {
        self.matches.iter().filter(|m| f(m)).count()
    }

    /// `(anchor, face)` for every positive anchor, in anchor order.
    pub fn positives(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.matches
            .iter()
            .enumerate()
            .filter_map(|(i, m)| match m {
                AnchorMatch::Positive { face, .. } => Some((i, *face)),
                _ => None,
            })
    }
}

fn check_unit(field: &'static str, value: f32) -> Result<(), AnchorError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(AnchorError::IouOutOfRange { field, value })
    }
}

impl MaxIouAssigner {
    /// A validated assigner: all thresholds in `[0, 1]`, `negative_iou ≤ positive_iou`.
    pub fn new(
        positive_iou: f32,
        negative_iou: f32,
        force_best: bool,
        force_best_min_iou: f32,
    ) -> Result<Self, AnchorError> {
        let a = Self {
            positive_iou,
            negative_iou,
            force_best,
            force_best_min_iou,
        };
        a.validate()?;
        Ok(a)
    }

    /// Checks the invariants [`new`](Self::new) enforces (the fields are public).
    pub fn validate(&self) -> Result<(), AnchorError> {
        check_unit("positive_iou", self.positive_iou)?;
        check_unit("negative_iou", self.negative_iou)?;
        check_unit("force_best_min_iou", self.force_best_min_iou)?;
        if self.negative_iou > self.positive_iou {
            return Err(AnchorError::NegativeAbovePositive {
                negative: self.negative_iou,
                positive: self.positive_iou,
            });
        }
        Ok(())
    }

    /// Labels every anchor. `anchors` `[N]` and `faces` `[M]` are xyxy pixels in the same frame.
    /// No faces → all negative. Cost: `N·M` IoUs in one pass, no `N×M` matrix.
    pub fn assign(&self, anchors: &[BoxXyxy], faces: &[BoxXyxy]) -> Assignment {
        if faces.is_empty() {
            return Assignment {
                matches: vec![AnchorMatch::Negative; anchors.len()],
            };
        }
        let face_areas: Vec<f32> = faces.iter().map(area).collect();
        // Per face: its best IoU so far (> 0 only) and the anchors attaining it.
        let mut face_best = vec![0.0f32; faces.len()];
        let mut face_best_anchors: Vec<Vec<u32>> = vec![Vec::new(); faces.len()];
        let mut matches = Vec::with_capacity(anchors.len());
        for (i, a) in anchors.iter().enumerate() {
            let area_a = area(a);
            let (mut best, mut best_face) = (0.0f32, usize::MAX);
            for (f, (g, &area_g)) in faces.iter().zip(&face_areas).enumerate() {
                let w = a[2].min(g[2]) - a[0].max(g[0]);
                if w <= 0.0 {
                    continue;
                }
                let h = a[3].min(g[3]) - a[1].max(g[1]);
                if h <= 0.0 {
                    continue;
                }
                let inter = w * h;
                let iou = inter / (area_a + area_g - inter);
                if iou > best {
                    best = iou;
                    best_face = f;
                }
                if self.force_best && iou >= face_best[f] {
                    if iou > face_best[f] {
                        face_best[f] = iou;
                        face_best_anchors[f].clear();
                    }
                    face_best_anchors[f].push(i as u32);
                }
            }
            matches.push(if best_face != usize::MAX && best >= self.positive_iou {
                AnchorMatch::Positive {
                    face: best_face,
                    iou: best,
                }
            } else if best < self.negative_iou {
                AnchorMatch::Negative
            } else {
                AnchorMatch::Ignored
            });
        }
        if self.force_best {
            for (f, list) in face_best_anchors.iter().enumerate() {
                let iou = face_best[f];
                if iou > 0.0 && iou >= self.force_best_min_iou {
                    for &i in list {
                        matches[i as usize] = AnchorMatch::Positive { face: f, iou };
                    }
                }
            }
        }
        Assignment { matches }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::{AnchorGenerator, LevelSpec};
    use visage_boxes::iou;
    use AnchorMatch::{Ignored, Negative, Positive};

    /// 2×2 grid of 8×8 anchors: [0,0,8,8], [8,0,16,8], [0,8,8,16], [8,8,16,16].
    fn grid() -> Vec<BoxXyxy> {
        let g = AnchorGenerator::new(vec![LevelSpec {
            stride: 8,
            sizes: vec![8.0],
            aspect_ratios: vec![1.0],
        }])
        .unwrap();
        g.generate_for_image(16, 16).boxes
    }

    fn assigner(pos: f32, neg: f32, force: bool, min: f32) -> MaxIouAssigner {
        MaxIouAssigner::new(pos, neg, force, min).unwrap()
    }

    #[test]
    fn positive_and_negative() {
        let a = grid();
        // Face exactly on anchor 0; a second one shifted 2 px right (IoU 48/80 = 0.6 with anchor 0,
        // 16/112 with anchor 1).
        let r = assigner(0.5, 0.4, false, 0.0).assign(&a, &[[0.0, 0.0, 8.0, 8.0]]);
        assert_eq!(
            r.matches,
            vec![Positive { face: 0, iou: 1.0 }, Negative, Negative, Negative]
        );
        let r = assigner(0.5, 0.4, false, 0.0).assign(&a, &[[2.0, 0.0, 10.0, 8.0]]);
        assert_eq!(r.matches[0], Positive { face: 0, iou: 0.6 });
        assert_eq!(&r.matches[1..], &[Negative, Negative, Negative]);
        assert_eq!(
            (r.num_positive(), r.num_negative(), r.num_ignored()),
            (1, 3, 0)
        );
        assert_eq!(r.positives().collect::<Vec<_>>(), vec![(0, 0)]);
    }

    #[test]
    fn best_face_per_anchor() {
        let a = grid();
        // Face 0 covers anchor 0 with IoU 0.6, face 1 exactly: anchor 0 goes to face 1.
        let faces = [
            [2.0, 0.0, 10.0, 8.0],
            [0.0, 0.0, 8.0, 8.0],
            [8.0, 8.0, 16.0, 16.0],
        ];
        let r = assigner(0.5, 0.4, false, 0.0).assign(&a, &faces);
        assert_eq!(r.positives().collect::<Vec<_>>(), vec![(0, 1), (3, 2)]);
    }

    #[test]
    fn ignore_band_and_forced_ties() {
        let a = grid();
        // Face straddling anchors 0 and 1: IoU 32/96 = 1/3 with each (an exact tie), 0 with 2, 3.
        let face = [[4.0, 0.0, 12.0, 8.0]];
        let third = iou(&a[0], &face[0]);
        assert!((third - 1.0 / 3.0).abs() < 1e-6);
        let r = assigner(0.5, 0.3, false, 0.0).assign(&a, &face);
        assert_eq!(r.matches, vec![Ignored, Ignored, Negative, Negative]);
        // Forced: both tied anchors become positive, overriding the ignore band.
        let r = assigner(0.5, 0.3, true, 0.2).assign(&a, &face);
        let forced = Positive {
            face: 0,
            iou: third,
        };
        assert_eq!(r.matches, vec![forced, forced, Negative, Negative]);
        // Forced, overriding a negative (negative threshold 0.4 > 1/3).
        let r = assigner(0.5, 0.4, true, 0.0).assign(&a, &face);
        assert_eq!(r.matches, vec![forced, forced, Negative, Negative]);
        // Below force_best_min_iou: nothing forced.
        let r = assigner(0.5, 0.4, true, 0.35).assign(&a, &face);
        assert_eq!(r.matches, vec![Negative; 4]);
    }

    #[test]
    fn forced_match_is_for_its_face() {
        let a = grid();
        // Face 0 = anchor 0 exactly. Face 1 is small inside anchor 0 (IoU 4/64), its best anchor
        // is anchor 0, so forcing re-assigns anchor 0 to face 1 (the last face wins).
        let faces = [[0.0, 0.0, 8.0, 8.0], [1.0, 1.0, 3.0, 3.0]];
        let r = assigner(0.5, 0.4, true, 0.0).assign(&a, &faces);
        assert_eq!(
            r.matches[0],
            Positive {
                face: 1,
                iou: 4.0 / 64.0
            }
        );
        let r = assigner(0.5, 0.4, false, 0.0).assign(&a, &faces);
        assert_eq!(r.matches[0], Positive { face: 0, iou: 1.0 });
    }

    #[test]
    fn no_faces_and_unreachable_faces() {
        let a = grid();
        let r = assigner(0.5, 0.4, true, 0.0).assign(&a, &[]);
        assert_eq!(r.matches, vec![Negative; 4]);
        // A face outside every anchor forces nothing, even with min IoU 0.
        let r = assigner(0.5, 0.4, true, 0.0).assign(&a, &[[100.0, 100.0, 110.0, 110.0]]);
        assert_eq!(r.matches, vec![Negative; 4]);
        assert!(assigner(0.5, 0.4, true, 0.0)
            .assign(&[], &[[0.0, 0.0, 1.0, 1.0]])
            .matches
            .is_empty());
    }

    #[test]
    fn agrees_with_iou_matrix_rule() {
        // Random-ish anchors and faces: the threshold rule recomputed from visage-boxes' IoU.
        let g = AnchorGenerator::new(vec![
            LevelSpec {
                stride: 8,
                sizes: vec![16.0, 24.0],
                aspect_ratios: vec![1.0, 1.5],
            },
            LevelSpec {
                stride: 16,
                sizes: vec![40.0],
                aspect_ratios: vec![1.0],
            },
        ])
        .unwrap();
        let anchors = g.generate_for_image(64, 64).boxes;
        let faces = [
            [3.0, 5.0, 21.0, 30.0],
            [30.0, 28.0, 70.0, 66.0],
            [10.0, 40.0, 18.0, 50.0],
        ];
        let s = assigner(0.5, 0.3, false, 0.0);
        let r = s.assign(&anchors, &faces);
        let m = visage_boxes::iou_matrix(&anchors, &faces);
        for (i, got) in r.matches.iter().enumerate() {
            let row = &m[i * 3..i * 3 + 3];
            let (f, best) =
                row.iter()
                    .enumerate()
                    .fold((0, -1.0), |b, (f, &v)| if v > b.1 { (f, v) } else { b });
            let want = if best >= 0.5 {
                Positive { face: f, iou: best }
            } else if best < 0.3 {
                Negative
            } else {
                Ignored
            };
            assert_eq!(*got, want, "anchor {i}");
        }
        assert!(r.num_positive() > 0 && r.num_ignored() > 0);
    }

    #[test]
    fn validation() {
        assert!(matches!(
            MaxIouAssigner::new(1.5, 0.4, false, 0.0),
            Err(AnchorError::IouOutOfRange {
                field: "positive_iou",
                ..
            })
        ));
        assert!(matches!(
            MaxIouAssigner::new(0.5, f32::NAN, false, 0.0),
            Err(AnchorError::IouOutOfRange {
                field: "negative_iou",
                ..
            })
        ));
        assert_eq!(
            MaxIouAssigner::new(0.4, 0.5, false, 0.0),
            Err(AnchorError::NegativeAbovePositive {
                negative: 0.5,
                positive: 0.4
            })
        );
        assert!(MaxIouAssigner::new(0.35, 0.35, true, 0.0).is_ok());
    }
}
