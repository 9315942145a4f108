//! SSD / RetinaFace box and five-point landmark coding relative to anchors.
//!
//! With anchor centre `(acx, acy)`, size `(aw, ah)` and variances `(v0, v1)`:
//! - box: `d = ((gcx - acx) / (v0·aw), (gcy - acy) / (v0·ah), ln(gw / aw) / v1, ln(gh / ah) / v1)`;
//! - landmarks: `((px - acx) / (v0·aw), (py - acy) / (v0·ah))` per point, as Pytorch_Retinaface.
//!
//! Decoding clamps the exponent `d·v1` at [`BBOX_XFORM_CLIP`] (torchvision's
//! `bbox_xform_clip = ln(1000 / 16)`), so a wild prediction cannot overflow to `inf`.

use crate::error::BoxError;
use crate::iou::{columns, BoxXyxy};
use burn::tensor::{backend::Backend, Tensor};

/// Largest exponent used when decoding a size, `ln(1000 / 16)`.
pub const BBOX_XFORM_CLIP: f32 = 4.135_166_6;

/// Ground-truth sides are floored at this many pixels when encoding, so a degenerate box
/// encodes to a finite (very negative) log-size instead of `-inf`.
const MIN_SIDE: f32 = 1e-3;

/// Box and landmark coder relative to anchors (a policy object, no weights).
///
/// `variances = [v0, v1]`: `v0` scales centre and landmark offsets, `v1` log-sizes.
/// The RetinaFace / SSD default is `[0.1, 0.2]` ([`Default`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxCoder {
    /// `[v0, v1]`, both finite and > 0 (checked by [`BoxCoder::new`]).
    pub variances: [f32; 2],
}

impl Default for BoxCoder {
    fn default() -> Self {
        Self {
            variances: [0.1, 0.2],
        }
    }
}

/// `(cx, cy, w, h)` of an xyxy box.
#[inline]
fn centre_size(b: &BoxXyxy) -> (f32, f32, f32, f32) {
    (
        0.5 * (b[0] + b[2]),
        0.5 * (b[1] + b[3]),
        b[2] - b[0],
        b[3] - b[1],
    )
}

impl BoxCoder {
    /// A coder with validated variances.
    pub fn new(variances: [f32; 2]) -> Result<Self, BoxError> {
        for (index, &value) in variances.iter().enumerate() {
            if !(value.is_finite() && value > 0.0) {
                return Err(BoxError::InvalidVariance { index, value });
            }
        }
        Ok(Self { variances })
    }

    /// Encodes `gt` (xyxy) relative to `anchor` (xyxy, positive sides) → `[dx, dy, dw, dh]`.
    pub fn encode(&self, anchor: &BoxXyxy, gt: &BoxXyxy) -> [f32; 4] {
        let [v0, v1] = self.variances;
        let (acx, acy, aw, ah) = centre_size(anchor);
        let (gcx, gcy, gw, gh) = centre_size(gt);
        [
            (gcx - acx) / (v0 * aw),
            (gcy - acy) / (v0 * ah),
            (gw.max(MIN_SIDE) / aw).ln() / v1,
            (gh.max(MIN_SIDE) / ah).ln() / v1,
        ]
    }

    /// Decodes `delta = [dx, dy, dw, dh]` relative to `anchor` (xyxy) → an xyxy box, the size
    /// exponents clamped at [`BBOX_XFORM_CLIP`].
    pub fn decode(&self, anchor: &BoxXyxy, delta: &[f32; 4]) -> BoxXyxy {
        self.decode_with(anchor, delta, Some(BBOX_XFORM_CLIP))
    }

    /// [`decode`](Self::decode) without the exponent clamp, as Pytorch_Retinaface's `decode`
    /// (a wild size delta may overflow to `inf`).
    pub fn decode_unclamped(&self, anchor: &BoxXyxy, delta: &[f32; 4]) -> BoxXyxy {
        self.decode_with(anchor, delta, None)
    }

    fn decode_with(&self, anchor: &BoxXyxy, delta: &[f32; 4], clip: Option<f32>) -> BoxXyxy {
        let [v0, v1] = self.variances;
        let (acx, acy, aw, ah) = centre_size(anchor);
        let cx = acx + delta[0] * v0 * aw;
        let cy = acy + delta[1] * v0 * ah;
        let exponent = |d: f32| match clip {
            Some(clip) => (d * v1).min(clip),
            None => d * v1,
        };
        let w = aw * exponent(delta[2]).exp();
        let h = ah * exponent(delta[3]).exp();
        [cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h]
    }

    /// Encodes five `(x, y)` points (pixels) → `[dx0, dy0, dx1, dy1, …, dx4, dy4]`.
    pub fn encode_landmarks(&self, anchor: &BoxXyxy, points: &[[f32; 2]; 5]) -> [f32; 10] {
        let v0 = self.variances[0];
        let (acx, acy, aw, ah) = centre_size(anchor);
        let mut out = [0.0; 10];
        for (k, p) in points.iter().enumerate() {
            out[2 * k] = (p[0] - acx) / (v0 * aw);
            out[2 * k + 1] = (p[1] - acy) / (v0 * ah);
        }
        out
    }

    /// Decodes `[dx0, dy0, …, dx4, dy4]` relative to `anchor` → five `(x, y)` points (pixels).
    pub fn decode_landmarks(&self, anchor: &BoxXyxy, delta: &[f32; 10]) -> [[f32; 2]; 5] {
        let v0 = self.variances[0];
        let (acx, acy, aw, ah) = centre_size(anchor);
        let mut out = [[0.0; 2]; 5];
        for (k, p) in out.iter_mut().enumerate() {
            p[0] = acx + delta[2 * k] * v0 * aw;
            p[1] = acy + delta[2 * k + 1] * v0 * ah;
        }
        out
    }

    /// Tensor [`encode`](Self::encode): `anchors` `[N, 4]` xyxy, `gt` `[N, 4]` xyxy (row `i` is
    /// the face matched to anchor `i`) → deltas `[N, 4]`.
    pub fn encode_tensor<B: Backend>(
        &self,
        anchors: Tensor<B, 2>,
        gt: Tensor<B, 2>,
    ) -> Tensor<B, 2> {
        let [v0, v1] = self.variances;
        let (acx, acy, aw, ah) = centre_size_tensor(anchors);
        let (gcx, gcy, gw, gh) = centre_size_tensor(gt);
        Tensor::cat(
            vec![
                (gcx - acx) / (aw.clone() * v0),
                (gcy - acy) / (ah.clone() * v0),
                (gw.clamp_min(MIN_SIDE) / aw).log() / v1,
                (gh.clamp_min(MIN_SIDE) / ah).log() / v1,
            ],
            1,
        )
    }

    /// Tensor [`decode`](Self::decode): `anchors` `[N, 4]` xyxy, `deltas` `[N, 4]` → `[N, 4]` xyxy.
    pub fn decode_tensor<B: Backend>(
        &self,
        anchors: Tensor<B, 2>,
        deltas: Tensor<B, 2>,
    ) -> Tensor<B, 2> {
        let [v0, v1] = self.variances;
        let (acx, acy, aw, ah) = centre_size_tensor(anchors);
        let [dx, dy, dw, dh] = columns(deltas);
        let cx = acx + dx * aw.clone() * v0;
        let cy = acy + dy * ah.clone() * v0;
        let hw = aw * (dw * v1).clamp_max(BBOX_XFORM_CLIP).exp() * 0.5;
        let hh = ah * (dh * v1).clamp_max(BBOX_XFORM_CLIP).exp() * 0.5;
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

    /// Tensor [`encode_landmarks`](Self::encode_landmarks): `anchors` `[N, 4]` xyxy, `points`
    /// `[N, 10]` as `x0, y0, …, x4, y4` (pixels) → `[N, 10]` deltas.
    pub fn encode_landmarks_tensor<B: Backend>(
        &self,
        anchors: Tensor<B, 2>,
        points: Tensor<B, 2>,
    ) -> Tensor<B, 2> {
        let [n, _] = points.dims();
        let (centre, scale) = landmark_frame(anchors, self.variances[0]);
        let points: Tensor<B, 3> = points.reshape([n, 5, 2]);
        ((points - centre) / scale).reshape([n, 10])
    }

    /// Tensor [`decode_landmarks`](Self::decode_landmarks): `anchors` `[N, 4]` xyxy, `deltas`
    /// `[N, 10]` → `[N, 10]` points `x0, y0, …, x4, y4` (pixels).
    pub fn decode_landmarks_tensor<B: Backend>(
        &self,
        anchors: Tensor<B, 2>,
        deltas: Tensor<B, 2>,
    ) -> Tensor<B, 2> {
        let [n, _] = deltas.dims();
        let (centre, scale) = landmark_frame(anchors, self.variances[0]);
        let deltas: Tensor<B, 3> = deltas.reshape([n, 5, 2]);
        (deltas * scale + centre).reshape([n, 10])
    }
}

/// `(cx, cy, w, h)` columns, each `[N, 1]`, of `[N, 4]` xyxy boxes.
fn centre_size_tensor<B: Backend>(
    boxes: Tensor<B, 2>,
) -> (Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 2>) {
    let [x1, y1, x2, y2] = columns(boxes);
    (
        (x1.clone() + x2.clone()) * 0.5,
        (y1.clone() + y2.clone()) * 0.5,
        x2 - x1,
        y2 - y1,
    )
}

/// Anchor centres and `v0`-scaled sizes as `[N, 5, 2]` tensors, one copy per landmark.
fn landmark_frame<B: Backend>(anchors: Tensor<B, 2>, v0: f32) -> (Tensor<B, 3>, Tensor<B, 3>) {
    let [n, _] = anchors.dims();
    let (cx, cy, w, h) = centre_size_tensor(anchors);
    let per_point = |a: Tensor<B, 2>, b: Tensor<B, 2>| -> Tensor<B, 3> {
        Tensor::cat(vec![a, b], 1)
            .reshape([n, 1, 2])
            .expand([n, 5, 2])
    };
    (per_point(cx, cy), per_point(w * v0, h * v0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iou::tests::{arb_box, to_tensor, to_vec};
    use burn::backend::Flex;
    use burn::tensor::TensorData;
    use proptest::prelude::*;

    /// `|a - b| <= tol · max(1, |b|)` elementwise (absolute for small values, relative above 1).
    fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x - y).abs() <= tol * y.abs().max(1.0))
    }

    /// Like [`close`] but row-wise: rows of `width` values share one scale, `max(1, max |b|)`
    /// over the row. A decoded corner `cx − w/2` loses precision in proportion to the box's
    /// largest coordinate (f32 cancellation), not to the corner's own value, which may be ≈ 0.
    fn close_rows(a: &[f32], b: &[f32], width: usize, tol: f32) -> bool {
        a.len() == b.len()
            && a.chunks(width).zip(b.chunks(width)).all(|(ra, rb)| {
                let scale = rb.iter().fold(1.0f32, |m, y| m.max(y.abs()));
                ra.iter().zip(rb).all(|(x, y)| (x - y).abs() <= tol * scale)
            })
    }

    #[test]
    fn encode_hand_computed() {
        let c = BoxCoder::default();
        // Anchor centre (10, 10), size 20×20; gt centre (12, 9), size 40×10.
        let d = c.encode(&[0.0, 0.0, 20.0, 20.0], &[-8.0, 4.0, 32.0, 14.0]);
        // dx = 2 / (0.1·20) = 1, dy = -1 / 2 = -0.5, dw = ln 2 / 0.2, dh = ln 0.5 / 0.2.
        let want = [1.0, -0.5, 2f32.ln() / 0.2, 0.5f32.ln() / 0.2];
        assert!(close(&d, &want, 1e-5), "{d:?}");
        let back = c.decode(&[0.0, 0.0, 20.0, 20.0], &d);
        assert!(close(&back, &[-8.0, 4.0, 32.0, 14.0], 1e-4), "{back:?}");
    }

    #[test]
    fn decode_clamps_exponent() {
        let c = BoxCoder::default();
        let b = c.decode(&[0.0, 0.0, 16.0, 16.0], &[0.0, 0.0, 1e6, 1e6]);
        // exp(ln(1000/16)) · 16 = 1000 pixels wide, centred on 8.
        assert!(close(&b, &[-492.0, -492.0, 508.0, 508.0], 0.05), "{b:?}");
        let t = BoxCoder::default().decode_tensor(
            to_tensor(&[[0.0, 0.0, 16.0, 16.0]]),
            to_tensor(&[[0.0, 0.0, 1e6, 1e6]]),
        );
        assert!(close(&to_vec(t), &[-492.0, -492.0, 508.0, 508.0], 1e-4));
        // A degenerate gt still encodes to finite numbers.
        assert!(c
            .encode(&[0.0, 0.0, 16.0, 16.0], &[5.0, 5.0, 5.0, 5.0])
            .iter()
            .all(|v| v.is_finite()));
    }

    #[test]
    fn landmarks_hand_computed() {
        let c = BoxCoder::default();
        let anchor = [0.0, 0.0, 20.0, 40.0]; // centre (10, 20), v0·size = (2, 4)
        let pts = [
            [10.0, 20.0],
            [12.0, 24.0],
            [8.0, 16.0],
            [30.0, 20.0],
            [10.0, 0.0],
        ];
        let d = c.encode_landmarks(&anchor, &pts);
        let want = [0.0, 0.0, 1.0, 1.0, -1.0, -1.0, 10.0, 0.0, 0.0, -5.0];
        assert!(close(&d, &want, 1e-6), "{d:?}");
        assert_eq!(c.decode_landmarks(&anchor, &d), pts);
    }

    #[test]
    fn new_validates_variances() {
        assert!(BoxCoder::new([0.1, 0.2]).is_ok());
        assert_eq!(
            BoxCoder::new([0.1, 0.0]),
            Err(BoxError::InvalidVariance {
                index: 1,
                value: 0.0
            })
        );
        assert!(BoxCoder::new([f32::NAN, 0.2]).is_err());
    }

    /// Parameters of a gt box relative to an anchor: centre offset within ±3 anchor sizes, sides
    /// `anchor · e^u` with |u| ≤ 4 < ln(1000/16), so decoding stays inside the clamp.
    fn arb_gt() -> impl Strategy<Value = [f32; 4]> {
        (-3.0f32..3.0, -3.0f32..3.0, -4.0f32..4.0, -4.0f32..4.0)
            .prop_map(|(a, b, c, d)| [a, b, c, d])
    }

    fn gt_for(anchor: &BoxXyxy, [dx, dy, uw, uh]: [f32; 4]) -> BoxXyxy {
        let (acx, acy, aw, ah) = centre_size(anchor);
        let (cx, cy, w, h) = (acx + dx * aw, acy + dy * ah, aw * uw.exp(), ah * uh.exp());
        [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]
    }

    fn arb_delta() -> impl Strategy<Value = [f32; 4]> {
        proptest::array::uniform4(-5.0f32..5.0)
    }

    fn arb_points() -> impl Strategy<Value = [[f32; 2]; 5]> {
        proptest::array::uniform5(proptest::array::uniform2(-100.0f32..700.0))
    }

    proptest! {
        #[test]
        fn encode_decode_identity(
            anchor in arb_box(),
            gt in arb_gt(),
            v0 in 0.05f32..1.0,
            v1 in 0.05f32..1.0,
        ) {
            let c = BoxCoder::new([v0, v1]).unwrap();
            let gt = gt_for(&anchor, gt);
            let back = c.decode(&anchor, &c.encode(&anchor, &gt));
            prop_assert!(close_rows(&back, &gt, 4, 1e-4), "{:?} vs {:?}", back, gt);
        }

        #[test]
        fn landmark_identity(anchor in arb_box(), pts in arb_points()) {
            let c = BoxCoder::default();
            let back = c.decode_landmarks(&anchor, &c.encode_landmarks(&anchor, &pts));
            let flat: Vec<f32> = back.iter().flatten().copied().collect();
            let want: Vec<f32> = pts.iter().flatten().copied().collect();
            prop_assert!(close_rows(&flat, &want, 10, 2e-3), "{:?} vs {:?}", flat, want);
        }

        #[test]
        fn tensor_versions_equal_plain(
            pairs in proptest::collection::vec((arb_box(), arb_box(), arb_points(), arb_delta()), 1..5),
        ) {
            let c = BoxCoder::default();
            let anchors: Vec<BoxXyxy> = pairs.iter().map(|p| p.0).collect();
            let gts: Vec<BoxXyxy> = pairs.iter().map(|p| p.1).collect();
            let n = pairs.len();
            let enc: Vec<f32> = pairs.iter().flat_map(|p| c.encode(&p.0, &p.1)).collect();
            let enc_t = to_vec(c.encode_tensor(to_tensor(&anchors), to_tensor(&gts)));
            prop_assert!(close(&enc, &enc_t, 1e-4), "{:?} vs {:?}", enc, enc_t);
            let deltas: Vec<[f32; 4]> = pairs.iter().map(|p| p.3).collect();
            let dec: Vec<f32> = pairs.iter().flat_map(|p| c.decode(&p.0, &p.3)).collect();
            let dec_t = to_vec(c.decode_tensor(to_tensor(&anchors), to_tensor(&deltas)));
            prop_assert!(close_rows(&dec, &dec_t, 4, 1e-5), "{:?} vs {:?}", dec, dec_t);

            let flat_pts: Vec<f32> = pairs.iter().flat_map(|p| p.2.iter().flatten().copied()).collect();
            let pts_t = Tensor::<Flex, 2>::from_data(TensorData::new(flat_pts.clone(), [n, 10]), &Default::default());
            let lenc: Vec<f32> = pairs.iter().flat_map(|p| c.encode_landmarks(&p.0, &p.2)).collect();
            let lenc_t = to_vec(c.encode_landmarks_tensor(to_tensor(&anchors), pts_t));
            prop_assert!(close(&lenc, &lenc_t, 1e-4), "{:?} vs {:?}", lenc, lenc_t);
            let ld_t = Tensor::<Flex, 2>::from_data(TensorData::new(lenc.clone(), [n, 10]), &Default::default());
            let ldec_t = to_vec(c.decode_landmarks_tensor(to_tensor(&anchors), ld_t));
            prop_assert!(close_rows(&flat_pts, &ldec_t, 10, 2e-3), "{:?} vs {:?}", flat_pts, ldec_t);
        }
    }

    #[test]
    fn unclamped_decoding_equals_clamped_within_the_clip_and_grows_past_it() {
        let coder = BoxCoder::default();
        let anchor = [10.0, 20.0, 26.0, 52.0];
        let tame = [0.3, -0.2, 1.0, -2.0];
        assert_eq!(
            coder.decode(&anchor, &tame),
            coder.decode_unclamped(&anchor, &tame)
        );
        let wild = [0.0, 0.0, 30.0, 0.0];
        let clamped = coder.decode(&anchor, &wild);
        let free = coder.decode_unclamped(&anchor, &wild);
        assert!(free[2] - free[0] > clamped[2] - clamped[0]);
        assert_eq!(free[1], clamped[1]);
    }
}
