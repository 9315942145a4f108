//! A RetinaFace run end to end through the CLI: train on a tiny synthetic set with
//! landmarks (label.txt), then `eval --split val` and `detect` on the run directory.

mod common;

use common::{ok, visage, RETINAFACE_TINY_DATA, RETINAFACE_TINY_MODEL};

fn config() -> String {
    format!(
        r#"
name = "rf-tiny"
run_dir = "runs/rf"
{RETINAFACE_TINY_DATA}{RETINAFACE_TINY_MODEL}
[train]
epochs = 1
batch_size = 4
devices = ["cpu", "cpu"]    # the data-parallel step: two local peers of two images each
lr = 0.001

[test]
score_threshold = 0.02
pre_nms_top_k = 200
max_detections = 20
"#
    )
}

#[test]
fn retinaface_trains_evaluates_and_detects_with_landmarks() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("rf.toml"), config()).unwrap();
    let out = ok(&visage(&["train", "--config", "rf.toml"], root));
    assert!(out.contains("landmark"), "{out}");
    let resolved = std::fs::read_to_string(root.join("runs/rf/last/config.toml")).unwrap();
    assert!(
        resolved.contains("architecture = \"retinaface\""),
        "{resolved}"
    );
    let metrics = std::fs::read_to_string(root.join("runs/rf/metrics.jsonl")).unwrap_or_default();
    assert!(
        metrics.is_empty() || metrics.contains("loss_landmark"),
        "{metrics}"
    );

    let out = ok(&visage(
        &[
            "eval",
            "--split",
            "val",
            "--weights",
            "runs/rf",
            "--json",
            "a.json",
        ],
        root,
    ));
    assert!(out.to_lowercase().contains("easy"), "{out}");

    let val = root.join("data/tiny/WIDER_val/images");
    ok(&visage(
        &[
            "detect",
            val.to_str().unwrap(),
            "--weights",
            "runs/rf",
            "--json",
            "dets.json",
            "--keep",
            "3",
        ],
        root,
    ));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("dets.json")).unwrap()).unwrap();
    let images = json.as_array().unwrap();
    assert_eq!(images.len(), 4);
    for image in images {
        for d in image["detections"].as_array().unwrap() {
            assert_eq!(d["landmarks"].as_array().unwrap().len(), 5);
        }
    }
}
