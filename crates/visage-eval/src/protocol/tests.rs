//! Tests of the protocol: hand-computed matching cases (duplicates, ignored faces, empty
//! images, ties), the threshold and AP helpers, the shared fixture and the JSON report.

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
