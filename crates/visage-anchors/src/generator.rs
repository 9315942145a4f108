//! Anchor generation on each pyramid level's grid.
//!
//! Level `l` with stride `s_l` and feature map `H_l × W_l` gets, at cell `(y, x)`, one anchor per
//! `(size, ratio)` pair centred at `((x + 0.5)·s_l, (y + 0.5)·s_l)` with `w = size/√ratio`,
//! `h = size·√ratio` (ratio = height / width). Boxes are xyxy input-image pixels.

use crate::error::AnchorError;
use burn::tensor::{backend::Backend, Tensor, TensorData};
use std::ops::Range;
use visage_boxes::BoxXyxy;

/// One pyramid level's anchor shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelSpec {
    /// Stride of the level's feature map in input pixels (positive, increasing across levels).
    pub stride: u32,
    /// Anchor sizes in pixels: `√(w·h)` of each anchor (finite, > 0, at least one).
    pub sizes: Vec<f32>,
    /// Aspect ratios `height / width` (finite, > 0, at least one).
    pub aspect_ratios: Vec<f32>,
}

/// Where one level's anchors lie in [`Anchors::boxes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelAnchors {
    /// The level's stride in pixels.
    pub stride: u32,
    /// Feature-map height (cells).
    pub height: usize,
    /// Feature-map width (cells).
    pub width: usize,
    /// Anchors per cell: `sizes.len() · aspect_ratios.len()`.
    pub per_location: usize,
    /// Index of the level's first anchor in [`Anchors::boxes`].
    pub offset: usize,
}

impl LevelAnchors {
    /// Number of anchors on this level: `height · width · per_location`.
    pub fn len(&self) -> usize {
        self.height * self.width * self.per_location
    }

    /// Whether the level has no anchors (an empty feature map).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The level's index range in [`Anchors::boxes`].
    pub fn range(&self) -> Range<usize> {
        self.offset..self.offset + self.len()
    }

    /// Global index of anchor `a` at cell `(y, x)` of this level.
    pub fn index(&self, y: usize, x: usize, a: usize) -> usize {
        self.offset + (y * self.width + x) * self.per_location + a
    }
}

/// All anchors of an image, flattened.
///
/// **Order**: level, then `y`, then `x`, then anchor `a`, where `a = size_index ·
/// aspect_ratios.len() + ratio_index` (size-major, then ratio). This is the order of a head's
/// `[B, A·k, H, W]` output permuted to `[B, H, W, A, k]`, flattened and concatenated over levels.
#[derive(Debug, Clone, PartialEq)]
pub struct Anchors {
    /// `[N]` xyxy boxes in input-image pixels.
    pub boxes: Vec<BoxXyxy>,
    /// Per-level layout, in level order.
    pub levels: Vec<LevelAnchors>,
}

impl Anchors {
    /// Total number of anchors `N`.
    pub fn len(&self) -> usize {
        self.boxes.len()
    }

    /// Whether there are no anchors.
    pub fn is_empty(&self) -> bool {
        self.boxes.is_empty()
    }

    /// The level holding anchor `index`, or `None` when out of range.
    pub fn level_of(&self, index: usize) -> Option<usize> {
        self.levels.iter().position(|l| l.range().contains(&index))
    }

    /// The boxes as an `[N, 4]` xyxy tensor on `device`.
    pub fn to_tensor<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2> {
        let flat: Vec<f32> = self.boxes.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [self.boxes.len(), 4]), device)
    }
}

/// Lays anchors on pyramid levels; a validated policy object (see the module doc for geometry).
#[derive(Debug, Clone, PartialEq)]
pub struct AnchorGenerator {
    levels: Vec<LevelSpec>,
    /// Per level, `(w/2, h/2)` of each anchor shape in anchor order.
    half_sizes: Vec<Vec<(f32, f32)>>,
}

fn check_positive(values: &[f32], level: usize, name: &str) -> Result<(), AnchorError> {
    if values.is_empty() {
        return Err(AnchorError::Empty {
            field: format!("levels[{level}].{name}"),
        });
    }
    for (j, &value) in values.iter().enumerate() {
        if !(value.is_finite() && value > 0.0) {
            return Err(AnchorError::NotPositive {
                field: format!("levels[{level}].{name}[{j}]"),
                value,
            });
        }
    }
    Ok(())
}

impl AnchorGenerator {
    /// Validates `levels`: at least one; strides positive and strictly increasing; sizes and
    /// ratios non-empty, finite and > 0.
    pub fn new(levels: Vec<LevelSpec>) -> Result<Self, AnchorError> {
        if levels.is_empty() {
            return Err(AnchorError::NoLevels);
        }
        for (i, level) in levels.iter().enumerate() {
            if level.stride == 0 {
                return Err(AnchorError::ZeroStride {
                    field: format!("levels[{i}].stride"),
                });
            }
            if i > 0 && level.stride <= levels[i - 1].stride {
                return Err(AnchorError::StridesNotIncreasing {
                    field: format!("levels[{i}].stride"),
                    stride: level.stride,
                    previous: levels[i - 1].stride,
                });
            }
            check_positive(&level.sizes, i, "sizes")?;
            check_positive(&level.aspect_ratios, i, "aspect_ratios")?;
        }
        let half_sizes = levels
            .iter()
            .map(|l| {
                l.sizes
                    .iter()
                    .flat_map(|&s| {
                        l.aspect_ratios.iter().map(move |&r| {
                            let sqrt_r = r.sqrt();
                            (0.5 * s / sqrt_r, 0.5 * s * sqrt_r)
                        })
                    })
                    .collect()
            })
            .collect();
        Ok(Self { levels, half_sizes })
    }

    /// The validated level specifications.
    pub fn levels(&self) -> &[LevelSpec] {
        &self.levels
    }

    /// `(w / 2, h / 2)` of each anchor shape of `level`, in anchor order (sizes, then
    /// aspect ratios): what an anchor adds to and subtracts from its cell centre.
    ///
    /// # Panics
    /// If `level >= levels().len()`.
    pub fn anchor_half_sizes(&self, level: usize) -> &[(f32, f32)] {
        &self.half_sizes[level]
    }

    /// Anchors per cell on `level`: `sizes.len() · aspect_ratios.len()`.
    ///
    /// # Panics
    /// If `level >= levels().len()`.
    pub fn anchors_per_location(&self, level: usize) -> usize {
        self.half_sizes[level].len()
    }

    /// Feature-map size `(ceil(h / stride), ceil(w / stride))` of `level` for an
    /// `image_h × image_w` input (the size a stride-2, padding-1 conv chain produces).
    ///
    /// # Panics
    /// If `level >= levels().len()`.
    pub fn feature_size(&self, level: usize, image_h: usize, image_w: usize) -> (usize, usize) {
        let s = self.levels[level].stride as usize;
        (image_h.div_ceil(s), image_w.div_ceil(s))
    }

    /// Anchors for the given per-level feature-map sizes `(h, w)`, in level order (use the
    /// network's actual output sizes).
    ///
    /// # Panics
    /// If `feature_sizes.len() != levels().len()` (a wiring error between model and anchors).
    pub fn generate(&self, feature_sizes: &[(usize, usize)]) -> Anchors {
        assert_eq!(
            feature_sizes.len(),
            self.levels.len(),
            "anchor generator has {} levels but got {} feature-map sizes",
            self.levels.len(),
            feature_sizes.len()
        );
        let total: usize = feature_sizes
            .iter()
            .zip(&self.half_sizes)
            .map(|(&(h, w), hs)| h * w * hs.len())
            .sum();
        let mut boxes = Vec::with_capacity(total);
        let mut levels = Vec::with_capacity(self.levels.len());
        for ((spec, half), &(height, width)) in
            self.levels.iter().zip(&self.half_sizes).zip(feature_sizes)
        {
            levels.push(LevelAnchors {
                stride: spec.stride,
                height,
                width,
                per_location: half.len(),
                offset: boxes.len(),
            });
            let stride = spec.stride as f32;
            for y in 0..height {
                let cy = (y as f32 + 0.5) * stride;
                for x in 0..width {
                    let cx = (x as f32 + 0.5) * stride;
                    boxes.extend(
                        half.iter()
                            .map(|&(hw, hh)| [cx - hw, cy - hh, cx + hw, cy + hh]),
                    );
                }
            }
        }
        Anchors { boxes, levels }
    }

    /// Anchors for an `image_h × image_w` input, with [`feature_size`](Self::feature_size) per level.
    pub fn generate_for_image(&self, image_h: usize, image_w: usize) -> Anchors {
        let sizes: Vec<(usize, usize)> = (0..self.levels.len())
            .map(|l| self.feature_size(l, image_h, image_w))
            .collect();
        self.generate(&sizes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    fn spec(stride: u32, sizes: &[f32], ratios: &[f32]) -> LevelSpec {
        LevelSpec {
            stride,
            sizes: sizes.to_vec(),
            aspect_ratios: ratios.to_vec(),
        }
    }

    #[test]
    fn tiny_grid_order_and_centres() {
        // Level 0: stride 4, sizes {4, 8}, ratio {1, 4}; level 1: stride 8, size 16, ratio 1.
        let g = AnchorGenerator::new(vec![
            spec(4, &[4.0, 8.0], &[1.0, 4.0]),
            spec(8, &[16.0], &[1.0]),
        ])
        .unwrap();
        assert_eq!(g.anchors_per_location(0), 4);
        assert_eq!(g.feature_size(0, 6, 9), (2, 3));
        assert_eq!(g.feature_size(1, 6, 9), (1, 2));
        let a = g.generate_for_image(6, 9);
        assert_eq!(a.len(), 2 * 3 * 4 + 2);
        assert_eq!(a.levels[1].offset, 24);
        // Cell (0, 0), centre (2, 2): size 4 ratio 1 → 4×4; ratio 4 → w 2, h 8; size 8 → 8×8, 4×16.
        assert_eq!(a.boxes[0], [0.0, 0.0, 4.0, 4.0]);
        assert_eq!(a.boxes[1], [1.0, -2.0, 3.0, 6.0]);
        assert_eq!(a.boxes[2], [-2.0, -2.0, 6.0, 6.0]);
        assert_eq!(a.boxes[3], [0.0, -6.0, 4.0, 10.0]);
        // Next is x = 1 (centre (6, 2)), then after x = 2 comes y = 1 (centre (2, 6)).
        assert_eq!(a.boxes[4], [4.0, 0.0, 8.0, 4.0]);
        assert_eq!(a.levels[0].index(1, 0, 0), 12);
        assert_eq!(a.boxes[12], [0.0, 4.0, 4.0, 8.0]);
        // Level 1: centres (4, 4) and (12, 4), 16×16.
        assert_eq!(a.boxes[24], [-4.0, -4.0, 12.0, 12.0]);
        assert_eq!(a.boxes[25], [4.0, -4.0, 20.0, 12.0]);
        assert_eq!(a.level_of(23), Some(0));
        assert_eq!(a.level_of(24), Some(1));
        assert_eq!(a.level_of(26), None);
        let t = a.to_tensor::<Flex>(&Default::default());
        assert_eq!(t.dims(), [26, 4]);
        assert_eq!(
            t.into_data().to_vec::<f32>().unwrap()[100..104],
            [4.0, -4.0, 20.0, 12.0]
        );
    }

    #[test]
    fn generate_uses_given_sizes() {
        let g = AnchorGenerator::new(vec![spec(8, &[8.0], &[1.0])]).unwrap();
        let a = g.generate(&[(3, 1)]);
        assert_eq!(
            a.levels[0],
            LevelAnchors {
                stride: 8,
                height: 3,
                width: 1,
                per_location: 1,
                offset: 0
            }
        );
        assert_eq!(
            a.boxes,
            vec![
                [0.0, 0.0, 8.0, 8.0],
                [0.0, 8.0, 8.0, 16.0],
                [0.0, 16.0, 8.0, 24.0]
            ]
        );
        assert!(g.generate(&[(0, 5)]).is_empty());
    }

    #[test]
    fn fan_sizes() {
        // FAN: P3..P7, sizes 16·2^(i/3) for i = 0..14, three per level, ratios 1 and 1.5.
        let levels: Vec<LevelSpec> = (0..5)
            .map(|l| {
                let sizes: Vec<f32> = (0..3)
                    .map(|k| 16.0 * 2f32.powf((3 * l + k) as f32 / 3.0))
                    .collect();
                spec(8 << l, &sizes, &[1.0, 1.5])
            })
            .collect();
        let g = AnchorGenerator::new(levels).unwrap();
        let p3 = &g.levels()[0].sizes;
        assert!(
            (p3[1] - 20.159).abs() < 1e-3 && (p3[2] - 25.398).abs() < 1e-3,
            "{p3:?}"
        );
        let p7 = &g.levels()[4].sizes;
        assert!(
            (p7[0] - 256.0).abs() < 1e-3 && (p7[2] - 406.37).abs() < 1e-2,
            "{p7:?}"
        );
        assert_eq!(g.anchors_per_location(2), 6);
        // 640×640: 80² + 40² + 20² + 10² + 5² cells, 6 anchors each.
        let a = g.generate_for_image(640, 640);
        assert_eq!(a.len(), 6 * (6400 + 1600 + 400 + 100 + 25));
        // First P3 anchor with ratio 1.5 at size 16: w = 16/√1.5, h = 16·√1.5 around (4, 4).
        let b = a.boxes[1];
        assert!(((b[2] - b[0]) - 13.064).abs() < 1e-3 && ((b[3] - b[1]) - 19.596).abs() < 1e-3);
        assert!(((b[0] + b[2]) / 2.0 - 4.0).abs() < 1e-5);
        // Its area is size².
        assert!(((b[2] - b[0]) * (b[3] - b[1]) - 256.0).abs() < 1e-2);
    }

    #[test]
    fn validation_names_fields() {
        let ok = spec(8, &[16.0], &[1.0]);
        assert_eq!(AnchorGenerator::new(vec![]), Err(AnchorError::NoLevels));
        assert!(matches!(
            AnchorGenerator::new(vec![spec(0, &[16.0], &[1.0])]),
            Err(AnchorError::ZeroStride { field }) if field == "levels[0].stride"
        ));
        assert!(matches!(
            AnchorGenerator::new(vec![ok.clone(), spec(8, &[16.0], &[1.0])]),
            Err(AnchorError::StridesNotIncreasing {
                stride: 8,
                previous: 8,
                ..
            })
        ));
        assert!(matches!(
            AnchorGenerator::new(vec![ok.clone(), spec(16, &[], &[1.0])]),
            Err(AnchorError::Empty { field }) if field == "levels[1].sizes"
        ));
        assert!(matches!(
            AnchorGenerator::new(vec![spec(8, &[16.0], &[1.0, f32::NAN])]),
            Err(AnchorError::NotPositive { field, .. }) if field == "levels[0].aspect_ratios[1]"
        ));
        assert!(AnchorGenerator::new(vec![spec(8, &[-1.0], &[1.0])]).is_err());
    }
}
