//! `visage eval --plot` and `visage plot`: precision-recall figures (PNG and SVG) from a tiny
//! hand-made ground truth and from hand-written reports.

mod common;

use common::{failed, ok, visage};

use std::path::Path;

use visage_eval::{EventGt, GroundTruth, ImageGt, ReportFile};

/// A report JSON as `visage eval --json` writes it, with precision `top·(1 − r/2)` along a
/// recall rising to `reach`.
fn report_json(top: f64, reach: f64, label: Option<&str>) -> String {
    let recall: Vec<f64> = (0..1000).map(|t| reach * t as f64 / 999.0).collect();
    let precision: Vec<f64> = recall.iter().map(|r| top * (1.0 - 0.5 * r)).collect();
    let ap = visage_eval::voc_ap(&recall, &precision);
    let curve = serde_json::json!({"precision": precision, "recall": recall});
    let mut json = serde_json::json!({
        "easy": ap, "medium": ap, "hard": ap,
        "num_faces": {"easy": 10, "medium": 20, "hard": 30},
        "curves": {"easy": curve, "medium": curve, "hard": curve},
    });
    if let Some(label) = label {
        json["label"] = label.into();
    }
    json.to_string()
}

/// Checks the six files of a plot folder; returns the Hard SVG's text.
fn check_plots(dir: &Path) -> String {
    for setting in ["easy", "medium", "hard"] {
        let png = dir.join(format!("pr_{setting}.png"));
        let img = image::open(&png)
            .unwrap_or_else(|e| panic!("{}: {e}", png.display()))
            .to_rgb8();
        assert_eq!(img.dimensions(), (800, 600), "{}", png.display());
        let mut colours: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
        colours.sort_unstable();
        colours.dedup();
        assert!(colours.len() > 10, "{}: nearly blank", png.display());
        let svg = std::fs::read_to_string(dir.join(format!("pr_{setting}.svg"))).unwrap();
        assert!(svg.contains("<svg") && svg.contains("Recall") && svg.contains("Precision"));
    }
    std::fs::read_to_string(dir.join("pr_hard.svg")).unwrap()
}

#[test]
fn plot_overlays_saved_reports() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("weak.json"), report_json(0.8, 0.6, None)).unwrap();
    std::fs::write(d.join("b.json"), report_json(0.97, 0.9, Some("strong"))).unwrap();

    // Default labels: the saved one, else the file stem; legend sorted by AP descending.
    let out = ok(&visage(
        &["plot", "weak.json", "b.json", "--out", "plots"],
        d,
    ));
    assert!(out.contains("pr_easy.png"), "{out}");
    let svg = check_plots(&d.join("plots"));
    let (strong, weak) = (svg.find("strong-0.").unwrap(), svg.find("weak-0.").unwrap());
    assert!(strong < weak, "the higher AP comes first in the legend");

    // --labels overrides them, in the order of the files.
    ok(&visage(
        &[
            "plot",
            "weak.json",
            "b.json",
            "--out",
            "named",
            "--labels",
            "r18,r50",
        ],
        d,
    ));
    let svg = check_plots(&d.join("named"));
    assert!(svg.contains("r18-0.") && svg.contains("r50-0."));
    assert!(!svg.contains("strong-"));

    // Errors: label count, reports without curves, no report at all.
    let err = failed(&visage(
        &[
            "plot",
            "weak.json",
            "b.json",
            "--out",
            "x",
            "--labels",
            "one",
        ],
        d,
    ));
    assert!(err.contains("--labels"), "{err}");
    std::fs::write(
        d.join("old.json"),
        r#"{"easy": 0.5, "medium": 0.5, "hard": 0.5, "num_faces": {"easy": 1, "medium": 1, "hard": 1}}"#,
    )
    .unwrap();
    let err = failed(&visage(&["plot", "old.json", "--out", "x"], d));
    assert!(err.contains("old.json") && err.contains("curves"), "{err}");
    failed(&visage(&["plot", "--out", "x"], d));
}

#[test]
fn eval_writes_curves_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Two images, three faces; two found (one with a duplicate), one false positive.
    let image = |name: &str, boxes: &[[i32; 4]]| {
        let all: Vec<u32> = (1..=boxes.len() as u32).collect();
        ImageGt {
            name: name.into(),
            boxes: boxes.to_vec(),
            attributes: vec![Default::default(); boxes.len()],
            easy: all.clone(),
            medium: all.clone(),
            hard: all,
        }
    };
    let gt = GroundTruth {
        events: vec![EventGt {
            name: "0--Parade".into(),
            images: vec![
                image("a", &[[10, 10, 40, 40], [100, 100, 30, 30]]),
                image("b", &[[20, 20, 50, 50]]),
            ],
        }],
    };
    gt.write_dir(&d.join("gt")).unwrap();
    let pred = d.join("pred/0--Parade");
    std::fs::create_dir_all(&pred).unwrap();
    std::fs::write(
        pred.join("a.txt"),
        "a\n3\n10 10 40 40 0.9\n11 11 40 40 0.6\n300 300 20 20 0.7\n",
    )
    .unwrap();
    std::fs::write(pred.join("b.txt"), "b\n1\n20 20 50 50 0.4\n").unwrap();

    let out = ok(&visage(
        &[
            "eval",
            "--predictions",
            "pred",
            "--gt",
            "gt",
            "--json",
            "report.json",
            "--plot",
            "plots",
            "--label",
            "tiny",
        ],
        d,
    ));
    assert!(out.contains("PR curves written"), "{out}");
    let svg = check_plots(&d.join("plots"));
    assert!(svg.contains("tiny-0."), "legend entry of the run");

    let text = std::fs::read_to_string(d.join("report.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(json["easy"].is_f64() && json["num_faces"]["easy"] == 3);
    assert_eq!(
        json["curves"]["hard"]["recall"].as_array().unwrap().len(),
        1000
    );
    let file = ReportFile::parse(&text).unwrap();
    assert_eq!(file.label.as_deref(), Some("tiny"));
    assert_eq!(file.report.easy.ap, json["easy"].as_f64().unwrap());

    // The saved report plots again, under its saved label.
    ok(&visage(&["plot", "report.json", "--out", "again"], d));
    assert!(check_plots(&d.join("again")).contains("tiny-0."));

    // Without --label the plot is named after the predictions folder.
    ok(&visage(
        &[
            "eval",
            "--predictions",
            "pred",
            "--gt",
            "gt",
            "--plot",
            "unnamed",
        ],
        d,
    ));
    assert!(check_plots(&d.join("unnamed")).contains("pred-0."));
}
