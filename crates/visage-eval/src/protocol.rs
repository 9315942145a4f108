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
use std::fmt;

use crate::{GroundTruth, Predictions, Setting};

/// Number of score thresholds of the official protocol.
pub const NUM_THRESHOLDS: usize = 1000;

/// IoU a prediction needs with a ground-truth box to match it.
pub const IOU_THRESHOLD: f64 = 0.5;

/// One setting's result.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingResult {
    /// VOC average precision.
    pub ap: f64,
    /// Precision at thresholds `1 − (t+1)/1000`, t = 0..1000 (0 where there are no proposals).
    pub precision: Vec<f64>,
    /// Recall at the same thresholds.
    pub recall: Vec<f64>,
    /// Faces counted (the total of the setting's `gt_list`).
    pub num_faces: usize,
}

/// Easy / Medium / Hard results.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalReport {
    /// Easy setting.
    pub easy: SettingResult,
    /// Medium setting.
    pub medium: SettingResult,
    /// Hard setting.
    pub hard: SettingResult,
}

impl EvalReport {
    /// The result of one setting.
    pub fn get(&self, setting: Setting) -> &SettingResult {
        match setting {
            Setting::Easy => &self.easy,
            Setting::Medium => &self.medium,
            Setting::Hard => &self.hard,
        }
    }

    /// The report as JSON, without a run label: see [`EvalReport::to_json_labelled`].
    pub fn to_json(&self) -> String {
        self.to_json_labelled(None)
    }

    /// `{"easy": ap, "medium": ap, "hard": ap, "num_faces": {...}, "label": "..",
    /// "curves": {"easy": {"precision": [..], "recall": [..]}, ..}}`, numbers in shortest
    /// round-trip form (so [`ReportFile::parse`] reads back exactly this report). `label` is
    /// left out when `None`; the curves hold the 1000 thresholds of the protocol.
    pub fn to_json_labelled(&self, label: Option<&str>) -> String {
        let num = |v: f64| serde_json::to_string(&v).unwrap_or_else(|_| "null".into());
        let list = |v: &[f64]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        let mut out = format!(
            "{{\"easy\": {}, \"medium\": {}, \"hard\": {}, \"num_faces\": {{\"easy\": {}, \"medium\": {}, \"hard\": {}}}",
            num(self.easy.ap),
            num(self.medium.ap),
            num(self.hard.ap),
            self.easy.num_faces,
            self.medium.num_faces,
            self.hard.num_faces
        );
        if let Some(label) = label {
            let label = serde_json::to_string(label).unwrap_or_else(|_| "null".into());
            out.push_str(&format!(", \"label\": {label}"));
        }
        out.push_str(", \"curves\": {");
        for (i, setting) in Setting::ALL.into_iter().enumerate() {
            let r = self.get(setting);
            out.push_str(&format!(
                "{}\"{}\": {{\"precision\": {}, \"recall\": {}}}",
                if i > 0 { ", " } else { "" },
                setting.name(),
                list(&r.precision),
                list(&r.recall)
            ));
        }
        out.push_str("}}");
        out
    }

    /// Reads back the JSON of [`EvalReport::to_json`] (the label, if any, is dropped: see
    /// [`ReportFile::parse`]).
    pub fn from_json(json: &str) -> Result<EvalReport, ReportParseError> {
        ReportFile::parse(json).map(|f| f.report)
    }
}

/// Why a saved report (`visage eval --json`) could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum ReportParseError {
    /// Not JSON, or not the report's shape.
    #[error("not an evaluation report: {0}")]
    Json(#[from] serde_json::Error),
    /// A report written before the PR curves were saved, or one whose curves are inconsistent.
    #[error("{0}")]
    Curves(String),
}

/// A report as saved by [`EvalReport::to_json_labelled`]: the run label and the report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportFile {
    /// The run label, if one was saved.
    pub label: Option<String>,
    /// APs, face counts and PR curves.
    pub report: EvalReport,
}

#[derive(serde::Deserialize)]
struct RawCurve {
    precision: Vec<f64>,
    recall: Vec<f64>,
}

#[derive(serde::Deserialize)]
struct RawCounts {
    easy: usize,
    medium: usize,
    hard: usize,
}

#[derive(serde::Deserialize)]
struct RawCurves {
    easy: RawCurve,
    medium: RawCurve,
    hard: RawCurve,
}

#[derive(serde::Deserialize)]
struct RawReport {
    easy: f64,
    medium: f64,
    hard: f64,
    num_faces: RawCounts,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    curves: Option<RawCurves>,
}

impl ReportFile {
    /// Parses the JSON of [`EvalReport::to_json_labelled`]. A report without `"curves"` (as
    /// written before they were saved) is an error: it cannot be plotted.
    pub fn parse(json: &str) -> Result<ReportFile, ReportParseError> {
        let raw: RawReport = serde_json::from_str(json)?;
        let curves = raw.curves.ok_or_else(|| {
            ReportParseError::Curves(
                "the report has no \"curves\" (written by an older visage: re-run `visage eval --json`)"
                    .into(),
            )
        })?;
        let setting = |name: &str, ap: f64, num_faces: usize, c: RawCurve| {
            if c.precision.len() != c.recall.len() {
                return Err(ReportParseError::Curves(format!(
                    "curves.{name}: {} precision values but {} recall values",
                    c.precision.len(),
                    c.recall.len()
                )));
            }
            Ok(SettingResult {
                ap,
                precision: c.precision,
                recall: c.recall,
                num_faces,
            })
        };
        Ok(ReportFile {
            label: raw.label,
            report: EvalReport {
                easy: setting("easy", raw.easy, raw.num_faces.easy, curves.easy)?,
                medium: setting("medium", raw.medium, raw.num_faces.medium, curves.medium)?,
                hard: setting("hard", raw.hard, raw.num_faces.hard, curves.hard)?,
            },
        })
    }
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<8} {:>8} {:>8}", "Setting", "AP", "Faces")?;
        for (label, r) in [
            ("Easy", &self.easy),
            ("Medium", &self.medium),
            ("Hard", &self.hard),
        ] {
            writeln!(f, "{label:<8} {:>8.4} {:>8}", r.ap, r.num_faces)?;
        }
        Ok(())
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{read_submission, EventGt, ImageGt};

    fn shared_dir() -> Option<std::path::PathBuf> {
        let d = std::env::var_os("VISAGE_SHARED_DIR").map(std::path::PathBuf::from);
        if d.is_none() {
            println!("skipping: VISAGE_SHARED_DIR is not set");
        }
        d
    }

    /// An image whose faces are all in every setting unless listed otherwise.
    fn image(name: &str, boxes: &[[i32; 4]]) -> ImageGt {
        let all: Vec<u32> = (1..=boxes.len() as u32).collect();
        ImageGt {
            name: name.into(),
            boxes: boxes.to_vec(),
            attributes: vec![Default::default(); boxes.len()],
            easy: all.clone(),
            medium: all.clone(),
            hard: all,
        }
    }

    fn one_event(images: Vec<ImageGt>) -> GroundTruth {
        GroundTruth {
            events: vec![EventGt {
                name: "0--E".into(),
                images,
            }],
        }
    }

    fn preds(rows: &[(&str, Vec<[f64; 5]>)]) -> Predictions {
        let mut p = Predictions::new();
        for (img, boxes) in rows {
            p.insert_raw("0--E", img, boxes.clone()).unwrap();
        }
        p
    }

    #[test]
    fn fixture_matches_reference_sorted_and_unsorted() {
        let Some(shared) = shared_dir() else { return };
        let fx = shared.join("wider/fixture");
        let gt = GroundTruth::read_dir(&fx.join("gt")).unwrap();
        for sub in ["pred", "pred_unsorted"] {
            let s = read_submission(&fx.join(sub), &gt).unwrap();
            assert!(s.missing.is_empty() && s.unknown_events.is_empty());
            let r = evaluate(&gt, &s.predictions);
            println!("{sub}:\n{r}{}", r.to_json());
            assert!(
                (r.easy.ap - 0.9166666666666666).abs() <= 1e-9,
                "{sub} easy {}",
                r.easy.ap
            );
            assert!(
                (r.medium.ap - 0.7200000000000001).abs() <= 1e-9,
                "{sub} medium {}",
                r.medium.ap
            );
            assert!(
                (r.hard.ap - 0.7041666666666667).abs() <= 1e-9,
                "{sub} hard {}",
                r.hard.ap
            );
            assert_eq!(
                [r.easy.num_faces, r.medium.num_faces, r.hard.num_faces],
                [3, 5, 6]
            );
        }
    }

    #[test]
    fn duplicate_is_a_false_positive() {
        // Two faces; G1 found at score 1, again at 0.5 (duplicate), G2 found at 0.
        // t < 499: P 1, R .5; 499..998: P 1/2, R .5; t = 999: P 2/3, R 1.
        // AP = .5 · 1 + .5 · max(.5, 2/3) = 5/6.
        let gt = one_event(vec![image("a", &[[0, 0, 9, 9], [50, 50, 19, 19]])]);
        let p = preds(&[(
            "a",
            vec![
                [0., 0., 9., 9., 1.0],
                [0., 0., 9., 9., 0.5],
                [50., 50., 19., 19., 0.0],
            ],
        )]);
        let r = evaluate(&gt, &p).hard;
        assert_eq!((r.precision[498], r.recall[498]), (1.0, 0.5));
        assert_eq!((r.precision[499], r.recall[499]), (0.5, 0.5));
        assert_eq!((r.precision[999], r.recall[999]), (2.0 / 3.0, 1.0));
        assert!((r.ap - 5.0 / 6.0).abs() < 1e-12, "{}", r.ap);
    }

    #[test]
    fn match_to_ignored_face_is_dropped() {
        // G2 is in Hard only. In Easy the score-1 detection on G2 is not a proposal: precision
        // is 0 (no proposals) until t = 999, where the detection on G1 gives P 1, R 1: AP 1.
        // Counted as a false positive it would give P 1/2 there and AP 1/2.
        let mut img = image("a", &[[0, 0, 9, 9], [50, 50, 19, 19]]);
        img.easy = vec![1];
        img.medium = vec![1];
        let p = preds(&[("a", vec![[50., 50., 19., 19., 1.0], [0., 0., 9., 9., 0.0]])]);
        let r = evaluate(&one_event(vec![img]), &p);
        assert_eq!((r.easy.precision[0], r.easy.recall[0]), (0.0, 0.0));
        assert_eq!((r.easy.precision[999], r.easy.recall[999]), (1.0, 1.0));
        assert_eq!(r.easy.ap, 1.0);
        assert_eq!(r.easy.num_faces, 1);
        assert_eq!((r.hard.precision[0], r.hard.recall[0]), (1.0, 0.5));
        assert_eq!(r.hard.ap, 1.0);
    }

    #[test]
    fn image_without_predictions_counts_its_faces_only() {
        // One detection (max == min: normalised to 1, passes every threshold) finds the face of
        // "a"; "b" has no entry, "c" an empty one. Recall 1/3, precision 1 everywhere.
        let gt = one_event(vec![
            image("a", &[[0, 0, 9, 9]]),
            image("b", &[[0, 0, 9, 9]]),
            image("c", &[[5, 5, 5, 5]]),
        ]);
        let p = preds(&[("a", vec![[0., 0., 9., 9., 0.3]]), ("c", vec![])]);
        let r = evaluate(&gt, &p).easy;
        assert_eq!(r.num_faces, 3);
        assert!(r.precision.iter().all(|&v| v == 1.0));
        assert!(r.recall.iter().all(|&v| v == 1.0 / 3.0));
        assert!((r.ap - 1.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn zero_face_image_has_one_ignored_zero_box() {
        // "z" has no faces: a detection at [0 0 0 0] matches its stored all-zero row (IoU 1) and
        // is dropped; one elsewhere is a false positive, as in the official code.
        let gt = one_event(vec![image("a", &[[0, 0, 9, 9]]), image("z", &[])]);
        let p = preds(&[
            ("a", vec![[0., 0., 9., 9., 1.0]]),
            (
                "z",
                vec![[0., 0., 0., 0., 0.5], [100., 100., 10., 10., 0.0]],
            ),
        ]);
        let r = evaluate(&gt, &p).medium;
        assert_eq!(r.num_faces, 1);
        assert_eq!(r.precision[998], 1.0);
        assert_eq!(r.precision[999], 0.5);
    }

    #[test]
    fn argmax_takes_the_first_maximum() {
        // The detection overlaps both boxes with IoU 121/176 = 0.6875; the first (ignored in
        // Easy) wins, so in Easy it is dropped and nothing is recalled.
        let mut img = image("a", &[[0, 0, 10, 10], [5, 0, 10, 10]]);
        img.easy = vec![2];
        let p = preds(&[("a", vec![[0., 0., 15., 10., 0.9]])]);
        let pb = [0.0, 0.0, 15.0, 10.0];
        assert_eq!(overlap_plus1(&pb, &[0.0, 0.0, 10.0, 10.0]), 0.6875);
        assert_eq!(overlap_plus1(&pb, &[5.0, 0.0, 15.0, 10.0]), 0.6875);
        let r = evaluate(&one_event(vec![img]), &p);
        assert_eq!(r.easy.ap, 0.0);
        assert!(r.easy.precision.iter().all(|&v| v == 0.0));
        assert_eq!(r.hard.recall[0], 0.5);
    }

    #[test]
    fn first_threshold_matches_the_definition() {
        let mut x = 12345u64;
        for i in 0..20000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let s = match i % 4 {
                0 => (x >> 11) as f64 / (1u64 << 53) as f64,
                1 => (x % 1001) as f64 / 1000.0,
                2 => 1.0 - (x % 1001) as f64 / 1000.0,
                _ => f64::from_bits(
                    ((x % 1001) as f64 / 1000.0)
                        .to_bits()
                        .wrapping_add(x % 3)
                        .wrapping_sub(1),
                ),
            };
            let brute = (0..NUM_THRESHOLDS)
                .find(|&t| s >= 1.0 - (t + 1) as f64 / 1000.0)
                .unwrap_or(NUM_THRESHOLDS);
            assert_eq!(first_threshold(s), brute, "score {s:e}");
        }
    }

    #[test]
    fn voc_ap_hand_value() {
        // rec .2 .2 .6, prec .5 1 .4 -> mpre 1 1 .4 ; AP = .2·1 + .4·.4 + .4·0 = .36
        assert!((voc_ap(&[0.2, 0.2, 0.6], &[0.5, 1.0, 0.4]) - 0.36).abs() < 1e-15);
    }

    #[test]
    fn report_json_and_table() {
        let gt = one_event(vec![image("a", &[[0, 0, 9, 9]])]);
        let r = evaluate(&gt, &preds(&[("a", vec![[0., 0., 9., 9., 1.0]])]));
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["easy"], 1.0);
        assert!(r
            .to_json()
            .starts_with("{\"easy\": 1.0, \"medium\": 1.0, \"hard\": 1.0"));
        assert!(r.to_string().contains("Medium"));
        assert_eq!(json["num_faces"]["hard"], 1);
        assert_eq!(
            json["curves"]["easy"]["precision"]
                .as_array()
                .unwrap()
                .len(),
            1000
        );
        assert!(json.get("label").is_none());
    }

    #[test]
    fn report_json_round_trip() {
        let gt = one_event(vec![image("a", &[[0, 0, 9, 9], [50, 50, 19, 19]])]);
        let p = preds(&[(
            "a",
            vec![
                [0., 0., 9., 9., 0.9],
                [0., 0., 9., 9., 0.37],
                [50., 50., 19., 19., 0.1234567],
            ],
        )]);
        let r = evaluate(&gt, &p);
        assert_eq!(EvalReport::from_json(&r.to_json()).unwrap(), r);
        let f = ReportFile::parse(&r.to_json_labelled(Some("run \"a\""))).unwrap();
        assert_eq!(f.label.as_deref(), Some("run \"a\""));
        assert_eq!(f.report, r);
        let json: serde_json::Value = serde_json::from_str(&r.to_json_labelled(Some("x"))).unwrap();
        assert_eq!(json["easy"], r.easy.ap);
        assert_eq!(json["label"], "x");
        // A report without curves (older files) is refused with a hint.
        let old = "{\"easy\": 1.0, \"medium\": 1.0, \"hard\": 1.0, \"num_faces\": {\"easy\": 1, \"medium\": 1, \"hard\": 1}}";
        let e = ReportFile::parse(old).unwrap_err().to_string();
        assert!(e.contains("curves"), "{e}");
        assert!(ReportFile::parse("[1, 2]").is_err());
    }
}
