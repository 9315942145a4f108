//! Box geometry: area, IoU, IoU matrices and `xyxy` ↔ `cxcywh` conversions.
//!
//! Boxes are `[x1, y1, x2, y2]` in pixels, continuous convention: `area = (x2 - x1) * (y2 - y1)`.
//! A box with `x2 < x1` or `y2 < y1` is degenerate and has area 0 (its side is clamped at 0).

use burn::tensor::{backend::Backend, Tensor};

/// A box as `[x1, y1, x2, y2]`, pixels, continuous convention.
pub type BoxXyxy = [f32; 4];

/// A box as `[cx, cy, w, h]`, pixels.
pub type BoxCxcywh = [f32; 4];

/// Area of an `xyxy` box; sides shorter than 0 count as 0.
#[inline]
pub fn area(b: &BoxXyxy) -> f32 {
    (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0)
}

/// Intersection area of two boxes with the areas already known, and their IoU.
#[inline]
fn iou_with_areas(a: &BoxXyxy, area_a: f32, b: &BoxXyxy, area_b: f32) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = area_a + area_b - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// Intersection over union of two `xyxy` boxes, in `[0, 1]`.
///
/// Two boxes whose union is empty (both degenerate) have IoU 0.
#[inline]
pub fn iou(a: &BoxXyxy, b: &BoxXyxy) -> f32 {
    iou_with_areas(a, area(a), b, area(b))
}

/// IoU of every box of `a` with every box of `b`, row-major `[a.len(), b.len()]`:
/// entry `i * b.len() + j` is `iou(&a[i], &b[j])`.
pub fn iou_matrix(a: &[BoxXyxy], b: &[BoxXyxy]) -> Vec<f32> {
    let areas_b: Vec<f32> = b.iter().map(area).collect();
    let mut out = Vec::with_capacity(a.len() * b.len());
    for bx_a in a {
        let area_a = area(bx_a);
        out.extend(
            b.iter()
                .zip(&areas_b)
                .map(|(bx_b, &area_b)| iou_with_areas(bx_a, area_a, bx_b, area_b)),
        );
    }
    out
}

/// Splits an `[N, 4]` tensor into its four `[N, 1]` columns.
pub(crate) fn columns<B: Backend>(t: Tensor<B, 2>) -> [Tensor<B, 2>; 4] {
    [
        t.clone().narrow(1, 0, 1),
        t.clone().narrow(1, 1, 1),
        t.clone().narrow(1, 2, 1),
        t.narrow(1, 3, 1),
    ]
}

/// Tensor IoU matrix: `a` `[N, 4]` xyxy, `b` `[M, 4]` xyxy → `[N, M]`, the same values as
/// [`iou_matrix`] (degenerate sides clamped at 0, empty unions give 0).
pub fn iou_matrix_tensor<B: Backend>(a: Tensor<B, 2>, b: Tensor<B, 2>) -> Tensor<B, 2> {
    let [n, _] = a.dims();
    let [m, _] = b.dims();
    let [ax1, ay1, ax2, ay2] = columns(a);
    let [bx1, by1, bx2, by2] = columns(b);
    let area_a =
        (ax2.clone() - ax1.clone()).clamp_min(0.0) * (ay2.clone() - ay1.clone()).clamp_min(0.0);
    let area_b =
        (bx2.clone() - bx1.clone()).clamp_min(0.0) * (by2.clone() - by1.clone()).clamp_min(0.0);
    // [N, 1] → [N, M] and [M, 1] → [1, M] → [N, M].
    let rows = |t: Tensor<B, 2>| t.expand([n, m]);
    let cols = |t: Tensor<B, 2>| t.transpose().expand([n, m]);
    let w = (rows(ax2).min_pair(cols(bx2)) - rows(ax1).max_pair(cols(bx1))).clamp_min(0.0);
    let h = (rows(ay2).min_pair(cols(by2)) - rows(ay1).max_pair(cols(by1))).clamp_min(0.0);
    let inter = w * h;
    let union = rows(area_a) + cols(area_b) - inter.clone();
    // An empty union has an empty intersection: 0 / tiny = 0, like the plain version.
    inter / union.clamp_min(f32::MIN_POSITIVE)
}

/// `[x1, y1, x2, y2]` → `[cx, cy, w, h]`.
#[inline]
pub fn xyxy_to_cxcywh(b: &BoxXyxy) -> BoxCxcywh {
    [
        0.5 * (b[0] + b[2]),
        0.5 * (b[1] + b[3]),
        b[2] - b[0],
        b[3] - b[1],
    ]
}

/// `[cx, cy, w, h]` → `[x1, y1, x2, y2]`.
#[inline]
pub fn cxcywh_to_xyxy(b: &BoxCxcywh) -> BoxXyxy {
    let (hw, hh) = (0.5 * b[2], 0.5 * b[3]);
    [b[0] - hw, b[1] - hh, b[0] + hw, b[1] + hh]
}

/// Tensor version of [`xyxy_to_cxcywh`]: `[N, 4]` xyxy → `[N, 4]` cxcywh.
pub fn xyxy_to_cxcywh_tensor<B: Backend>(boxes: Tensor<B, 2>) -> Tensor<B, 2> {
    let [x1, y1, x2, y2] = columns(boxes);
    Tensor::cat(
        vec![
            (x1.clone() + x2.clone()) * 0.5,
            (y1.clone() + y2.clone()) * 0.5,
            x2 - x1,
            y2 - y1,
        ],
        1,
    )
}

/// Tensor version of [`cxcywh_to_xyxy`]: `[N, 4]` cxcywh → `[N, 4]` xyxy.
pub fn cxcywh_to_xyxy_tensor<B: Backend>(boxes: Tensor<B, 2>) -> Tensor<B, 2> {
    let [cx, cy, w, h] = columns(boxes);
    let (hw, hh) = (w * 0.5, h * 0.5);
    Tensor::cat(
        vec![
            cx.clone() - hw.clone(),
            cy.clone() - hh.clone(),
            cx + hw,
            cy + hh,
        ],
        1,
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::TensorData;
    use proptest::prelude::*;

    type B = Flex;

    pub(crate) fn to_tensor(rows: &[[f32; 4]]) -> Tensor<B, 2> {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), 4]), &Default::default())
    }

    pub(crate) fn to_vec(t: Tensor<B, 2>) -> Vec<f32> {
        t.into_data().to_vec::<f32>().unwrap()
    }

    #[test]
    fn hand_computed_ious() {
        // Identical boxes.
        assert_eq!(iou(&[0.0, 0.0, 10.0, 10.0], &[0.0, 0.0, 10.0, 10.0]), 1.0);
        // Half overlap along x: inter 50, union 150.
        let v = iou(&[0.0, 0.0, 10.0, 10.0], &[5.0, 0.0, 15.0, 10.0]);
        assert!((v - 1.0 / 3.0).abs() < 1e-6, "{v}");
        // Quarter-corner overlap: inter 25, union 175.
        let v = iou(&[0.0, 0.0, 10.0, 10.0], &[5.0, 5.0, 15.0, 15.0]);
        assert!((v - 25.0 / 175.0).abs() < 1e-6, "{v}");
        // Containment: 4 / 100.
        let v = iou(&[0.0, 0.0, 10.0, 10.0], &[2.0, 2.0, 4.0, 4.0]);
        assert!((v - 0.04).abs() < 1e-6, "{v}");
        // Touching edges and disjoint boxes.
        assert_eq!(iou(&[0.0, 0.0, 10.0, 10.0], &[10.0, 0.0, 20.0, 10.0]), 0.0);
        assert_eq!(iou(&[0.0, 0.0, 1.0, 1.0], &[5.0, 5.0, 6.0, 6.0]), 0.0);
        // Degenerate boxes.
        assert_eq!(area(&[5.0, 5.0, 3.0, 8.0]), 0.0);
        assert_eq!(iou(&[1.0, 1.0, 1.0, 1.0], &[1.0, 1.0, 1.0, 1.0]), 0.0);
    }

    #[test]
    fn matrix_layout_and_tensor_agree() {
        let a = [[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 15.0, 15.0]];
        let b = [
            [5.0, 0.0, 15.0, 10.0],
            [0.0, 0.0, 10.0, 10.0],
            [3.0, 3.0, 2.0, 2.0],
        ];
        let m = iou_matrix(&a, &b);
        assert_eq!(m.len(), 6);
        assert!((m[0] - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(m[1], 1.0);
        assert_eq!(m[2], 0.0);
        assert!((m[3] - 1.0 / 3.0).abs() < 1e-6); // inter 50, union 150
        assert!((m[4] - 25.0 / 175.0).abs() < 1e-6);
        let t = to_vec(iou_matrix_tensor(to_tensor(&a), to_tensor(&b)));
        for (x, y) in m.iter().zip(&t) {
            assert!((x - y).abs() < 1e-6, "{m:?} vs {t:?}");
        }
    }

    #[test]
    fn conversions_hand_computed() {
        assert_eq!(xyxy_to_cxcywh(&[2.0, 4.0, 10.0, 8.0]), [6.0, 6.0, 8.0, 4.0]);
        assert_eq!(cxcywh_to_xyxy(&[6.0, 6.0, 8.0, 4.0]), [2.0, 4.0, 10.0, 8.0]);
        let t = xyxy_to_cxcywh_tensor(to_tensor(&[[2.0, 4.0, 10.0, 8.0]]));
        assert_eq!(to_vec(t.clone()), vec![6.0, 6.0, 8.0, 4.0]);
        assert_eq!(to_vec(cxcywh_to_xyxy_tensor(t)), vec![2.0, 4.0, 10.0, 8.0]);
    }

    pub(crate) fn arb_box() -> impl Strategy<Value = BoxXyxy> {
        (0.0f32..500.0, 0.0f32..500.0, 0.5f32..200.0, 0.5f32..200.0)
            .prop_map(|(x, y, w, h)| [x, y, x + w, y + h])
    }

    proptest! {
        #[test]
        fn iou_properties(a in arb_box(), b in arb_box()) {
            let ab = iou(&a, &b);
            prop_assert_eq!(ab, iou(&b, &a));
            prop_assert!((0.0..=1.0).contains(&ab));
            prop_assert!((iou(&a, &a) - 1.0).abs() < 1e-6);
        }

        #[test]
        fn conversions_round_trip(a in arb_box()) {
            let back = cxcywh_to_xyxy(&xyxy_to_cxcywh(&a));
            for k in 0..4 {
                prop_assert!((back[k] - a[k]).abs() < 1e-3, "{:?} vs {:?}", back, a);
            }
        }

        #[test]
        fn tensor_matrix_equals_plain(
            a in proptest::collection::vec(arb_box(), 1..6),
            b in proptest::collection::vec(arb_box(), 1..6),
        ) {
            let plain = iou_matrix(&a, &b);
            let t = to_vec(iou_matrix_tensor(to_tensor(&a), to_tensor(&b)));
            prop_assert_eq!(plain.len(), t.len());
            for (x, y) in plain.iter().zip(&t) {
                prop_assert!((x - y).abs() < 1e-5, "{} vs {}", x, y);
            }
        }
    }
}
