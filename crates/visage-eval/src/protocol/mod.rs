//! The official WIDER FACE protocol (MATLAB `eval_tools`), reproduced to the last bit of its
//! f64 arithmetic, computed in one pass per image.
//!
//! Per image, predictions are sorted by score, descending (stable, as MATLAB's `sort`), scores
//! normalised with one global min/max over the split, and each prediction takes its
//! best-overlapping ground-truth box (+1 pixel IoU in f64, first maximum on ties). IoU ≥ 0.5 with
//! a box outside the setting's `gt_list` drops the prediction (it is not a proposal); with a
//! listed box it recalls that box once; duplicates stay proposals. For the 1000 thresholds
//! `1 − (t+1)/1000` (f64), each image adds its proposals and recalled boxes among the predictions
//! scoring ≥ the threshold. Since the passing predictions always form a prefix of the sorted
//! list, each prediction adds its increments to a difference array at the first threshold it
//! passes; one prefix sum per setting then gives the curve (no per-threshold pass per image).
//!
//! Definitions for the degenerate cases (documented choices):
//! - **precision at a threshold with no proposals** is 0. The Python port yields NaN there
//!   (0/0); those thresholds always have recall 0, so the AP is the same either way.
//! - **recall with no faces in a setting** is 0 (the port yields NaN), so the AP is 0.
//! - **max == min** over all scores (e.g. a single detection): every normalised score is 1, so
//!   every detection passes every threshold. (The official code divides by zero, gets NaN, and
//!   no detection ever passes.)
//! - Min and max are taken over the predictions of ground-truth images only, as MATLAB's
//!   `read_pred` loads only those. For scores in [0, 1] this equals the Python port.
//! - An image whose `boxes` are empty (zero faces) is evaluated against one ignored `[0 0 0 0]`
//!   box, as the real files store it; images without predictions are skipped after their faces
//!   are counted.

use std::cmp::Ordering;

use crate::{GroundTruth, Predictions, Setting};

mod report;
#[cfg(test)]
mod tests;

pub use report::{EvalReport, ReportFile, ReportParseError, SettingResult};

/// Number of score thresholds of the official protocol.
pub const NUM_THRESHOLDS: usize = 1000;

/// IoU a prediction needs with a ground-truth box to match it.
pub const IOU_THRESHOLD: f64 = 0.5;

/// The IoU of the official `bbox_overlaps` (+1 pixel convention), boxes as `[x1, y1, x2, y2]`
/// with `x2 = x + w`; 0 when the boxes do not overlap. Operation order matches the reference.
#[inline]
pub fn overlap_plus1(p: &[f64; 4], g: &[f64; 4]) -> f64 {
    let iw = p[2].min(g[2]) - p[0].max(g[0]) + 1.0;
    if iw <= 0.0 {
        return 0.0;
    }
    let ih = p[3].min(g[3]) - p[1].max(g[1]) + 1.0;
    if ih <= 0.0 {
        return 0.0;
    }
    let g_area = (g[2] - g[0] + 1.0) * (g[3] - g[1] + 1.0);
    let ua = (p[2] - p[0] + 1.0) * (p[3] - p[1] + 1.0) + g_area - iw * ih;
    iw * ih / ua
}

/// The first threshold index t (0..1000) with `score >= 1 − (t+1)/1000`, or 1000 if none.
fn first_threshold(score: f64) -> usize {
    let passes = |t: usize| score >= 1.0 - (t + 1) as f64 / NUM_THRESHOLDS as f64;
    let guess = ((1.0 - score) * NUM_THRESHOLDS as f64).ceil() - 1.0;
    let mut t = if guess.is_finite() {
        guess.clamp(0.0, NUM_THRESHOLDS as f64) as usize
    } else {
        0
    };
    while t > 0 && passes(t - 1) {
        t -= 1;
    }
    while t < NUM_THRESHOLDS && !passes(t) {
        t += 1;
    }
    t
}

/// VOC AP of the official code: precision made non-increasing from the right, summed over
/// recall changes.
pub fn voc_ap(recall: &[f64], precision: &[f64]) -> f64 {
    let mut mrec = Vec::with_capacity(recall.len() + 2);
    mrec.push(0.0);
    mrec.extend_from_slice(recall);
    mrec.push(1.0);
    let mut mpre = Vec::with_capacity(precision.len() + 2);
    mpre.push(0.0);
    mpre.extend_from_slice(precision);
    mpre.push(0.0);
    for i in (1..mpre.len()).rev() {
        mpre[i - 1] = mpre[i - 1].max(mpre[i]);
    }
    (0..mrec.len() - 1)
        .filter(|&i| mrec[i + 1] != mrec[i])
        .map(|i| (mrec[i + 1] - mrec[i]) * mpre[i + 1])
        .sum()
}

/// Reusable per-image buffers (no allocation per image once they have grown).
#[derive(Default)]
struct Scratch {
    order: Vec<usize>,
    gt: Vec<[f64; 4]>,
    in_setting: Vec<u8>,
    recalled: Vec<u8>,
}

/// Evaluates `preds` against `gt` with the official protocol (see the module docs).
pub fn evaluate(gt: &GroundTruth, preds: &Predictions) -> EvalReport {
    let images = || {
        gt.events
            .iter()
            .flat_map(|e| e.images.iter().map(move |i| (e, i)))
    };
    // Global min / max over the predictions of ground-truth images.
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (e, i) in images() {
        for p in preds.get(&e.name, &i.name).unwrap_or(&[]) {
            lo = lo.min(p[4]);
            hi = hi.max(p[4]);
        }
    }
    let diff = hi - lo;
    // diff[s][t] holds the increments (proposals, true positives) first counted at threshold t.
    let mut deltas = [[(0u64, 0u64); NUM_THRESHOLDS + 1]; 3];
    let mut faces = [0usize; 3];
    let mut s = Scratch::default();
    for (e, img) in images() {
        for (k, setting) in Setting::ALL.into_iter().enumerate() {
            faces[k] += img.kept(setting).len();
        }
        let Some(p) = preds.get(&e.name, &img.name).filter(|p| !p.is_empty()) else {
            continue;
        };
        s.gt.clear();
        s.gt.extend(img.boxes.iter().map(|b| {
            let [x, y, w, h] = b.map(f64::from);
            [x, y, x + w, y + h]
        }));
        if s.gt.is_empty() {
            s.gt.push([0.0; 4]); // the zero-face image's stored row, in no setting
        }
        s.in_setting.clear();
        s.in_setting.resize(s.gt.len(), 0);
        for (k, setting) in Setting::ALL.into_iter().enumerate() {
            for &ix in img.kept(setting) {
                if let Some(f) = s.in_setting.get_mut((ix as usize).wrapping_sub(1)) {
                    *f |= 1 << k;
                }
            }
        }
        s.recalled.clear();
        s.recalled.resize(s.gt.len(), 0);
        s.order.clear();
        s.order.extend(0..p.len());
        s.order
            .sort_by(|&a, &b| p[b][4].partial_cmp(&p[a][4]).unwrap_or(Ordering::Equal));
        for &h in &s.order {
            let [x, y, w, h_, score] = p[h];
            let pb = [x, y, x + w, y + h_];
            let (mut best, mut best_ov) = (0usize, 0.0f64);
            for (g, gb) in s.gt.iter().enumerate() {
                let ov = overlap_plus1(&pb, gb);
                if ov > best_ov {
                    (best, best_ov) = (g, ov);
                }
            }
            let norm = if diff > 0.0 { (score - lo) / diff } else { 1.0 };
            let t = first_threshold(norm);
            for (k, d) in deltas.iter_mut().enumerate() {
                let bit = 1u8 << k;
                let (mut prop, mut tp) = (1u64, 0u64);
                if best_ov >= IOU_THRESHOLD {
                    if s.in_setting[best] & bit == 0 {
                        prop = 0;
                    } else if s.recalled[best] & bit == 0 {
                        s.recalled[best] |= bit;
                        tp = 1;
                    }
                }
                d[t].0 += prop;
                d[t].1 += tp;
            }
        }
    }
    let [easy, medium, hard] = std::array::from_fn(|k| {
        let num_faces = faces[k];
        let (mut prop, mut tp) = (0u64, 0u64);
        let mut precision = Vec::with_capacity(NUM_THRESHOLDS);
        let mut recall = Vec::with_capacity(NUM_THRESHOLDS);
        for &(dp, dt) in &deltas[k][..NUM_THRESHOLDS] {
            prop += dp;
            tp += dt;
            precision.push(if prop > 0 {
                tp as f64 / prop as f64
            } else {
                0.0
            });
            recall.push(if num_faces > 0 {
                tp as f64 / num_faces as f64
            } else {
                0.0
            });
        }
        SettingResult {
            ap: voc_ap(&recall, &precision),
            precision,
            recall,
            num_faces,
        }
    });
    EvalReport { easy, medium, hard }
}
