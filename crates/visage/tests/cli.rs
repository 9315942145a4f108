//! End-to-end tests of the `visage` binary: synth → train → resume → detect → eval on a tiny
//! synthetic set, bad input, and the official-protocol numbers on the shared WIDER fixture.

mod common;

use common::{failed, ok, visage};

use std::path::PathBuf;

const TINY_CONFIG: &str = r#"
name = "tiny"
run_dir = "runs/tiny"

[data]
root = "data/tiny"
input_size = 128
threads = 2

[data.synth]
seed = 7
train_images = 8
val_images = 4

[model.backbone.resnet]
depth = 18
width_multiplier = 0.125

[model.neck.fpn]
channels = 16
min_level = 3
max_level = 5

[model.head]
channels = 16
convs = 1

[model.anchors]
base_factor = 2.0
scales = [1.0, 1.5]
ratios = [1.25]

[model.assign]
positive_iou = 0.5
negative_iou = 0.4

[train]
epochs = 2
batch_size = 4
lr = 0.001
warmup_iters = 2
eval_every = 1

[test]
score_threshold = 0.0
pre_nms_top_k = 100
max_detections = 20
"#;

fn shared_dir() -> Option<PathBuf> {
    match std::env::var_os("VISAGE_SHARED_DIR") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => {
            eprintln!("skipping: VISAGE_SHARED_DIR is not set");
            None
        }
    }
}

#[test]
fn synth_train_resume_detect_eval_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("tiny.toml"), TINY_CONFIG).unwrap();

    // Train one epoch (this generates the synthetic set first), then resume for the second.
    let out = ok(&visage(
        &["train", "--config", "tiny.toml", "--max-iterations", "2"],
        root,
    ));
    assert!(out.contains("run directory"), "{out}");
    assert!(root
        .join("data/tiny/eval_tools/ground_truth/wider_hard_val.mat")
        .is_file());
    let err = failed(&visage(&["train", "--config", "tiny.toml"], root));
    assert!(err.contains("--overwrite"), "{err}");
    // A dry run may shrink the batch; the resolved config records the value used.
    ok(&visage(
        &[
            "train",
            "--config",
            "tiny.toml",
            "--dry-run",
            "--batch-size",
            "2",
            "--run-dir",
            "dry",
        ],
        root,
    ));
    let resolved = std::fs::read_to_string(root.join("dry/config.toml")).unwrap();
    assert!(resolved.contains("batch_size = 2"), "{resolved}");
    ok(&visage(
        &["train", "--config", "tiny.toml", "--overwrite"],
        root,
    ));
    let run = root.join("runs/tiny");
    for name in ["best", "last", "epoch-0002"] {
        assert!(
            run.join(name).join("model.safetensors").is_file(),
            "{name} missing"
        );
    }
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().filter(|l| l.contains("\"val\"")).count(), 2);
    // Resuming a finished run trains nothing more and keeps the checkpoints.
    let out = ok(&visage(
        &["train", "--config", "tiny.toml", "--resume"],
        root,
    ));
    assert!(out.contains("run directory"), "{out}");

    // Detect on one val image and a directory, with JSON and drawn images.
    let val_images = root.join("data/tiny/WIDER_val/images");
    let out = ok(&visage(
        &[
            "detect",
            val_images.to_str().unwrap(),
            "--weights",
            "runs/tiny",
            "--json",
            "dets.json",
            "--draw",
            "drawn",
            "--keep",
            "5",
        ],
        root,
    ));
    assert!(out.contains("4 images"), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("dets.json")).unwrap()).unwrap();
    let images = json.as_array().unwrap();
    assert_eq!(images.len(), 4);
    for image in images {
        let dets = image["detections"].as_array().unwrap();
        assert!(dets.len() <= 5);
        for d in dets {
            assert_eq!(d["box"].as_array().unwrap().len(), 4);
            let score = d["score"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&score));
        }
    }
    assert_eq!(std::fs::read_dir(root.join("drawn")).unwrap().count(), 4);

    // Evaluate the split, then re-score the written submission: the same numbers.
    let out = ok(&visage(
        &[
            "eval",
            "--split",
            "val",
            "--weights",
            "runs/tiny/best",
            "--out",
            "sub",
            "--json",
            "a.json",
        ],
        root,
    ));
    assert!(out.contains("Easy") || out.contains("easy"), "{out}");
    ok(&visage(
        &[
            "eval",
            "--predictions",
            "sub",
            "--gt",
            "data/tiny/eval_tools/ground_truth",
            "--json",
            "b.json",
        ],
        root,
    ));
    let a: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("a.json")).unwrap()).unwrap();
    let b: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("b.json")).unwrap()).unwrap();
    for setting in ["easy", "medium", "hard"] {
        let (x, y) = (a[setting].as_f64().unwrap(), b[setting].as_f64().unwrap());
        assert!((0.0..=1.0).contains(&x));
        // The submission is written with limited decimals: AP agrees closely, not bit-exactly.
        assert!((x - y).abs() < 1e-3, "{setting}: {x} vs {y}");
    }

    // Batch detection (3 images per pass, mixed sizes grouped) writing JSON lines and a WIDER
    // submission: the submission scores as `eval --split val` did.
    ok(&visage(
        &[
            "detect",
            val_images.to_str().unwrap(),
            "--weights",
            "runs/tiny/best",
            "--jsonl",
            "dets.jsonl",
            "--submission",
            "detsub",
            "--batch-size",
            "3",
        ],
        root,
    ));
    let lines = std::fs::read_to_string(root.join("dets.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 4);
    for line in lines.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(record["detections"].is_array() && record["width"].as_u64().unwrap() > 0);
    }
    ok(&visage(
        &[
            "eval",
            "--predictions",
            "detsub",
            "--gt",
            "data/tiny/eval_tools/ground_truth",
            "--json",
            "c.json",
        ],
        root,
    ));
    let c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("c.json")).unwrap()).unwrap();
    for setting in ["easy", "medium", "hard"] {
        let (x, z) = (a[setting].as_f64().unwrap(), c[setting].as_f64().unwrap());
        assert!(
            (x - z).abs() < 1e-3,
            "{setting}: eval {x} vs detect --submission {z}"
        );
    }

    // Test-time augmentation from the flags: batched passes of two scales, mirrored too, merged
    // per image in its own frame.
    ok(&visage(
        &[
            "detect",
            val_images.to_str().unwrap(),
            "--weights",
            "runs/tiny/best",
            "--jsonl",
            "tta.jsonl",
            "--batch-size",
            "3",
            "--tta-scales",
            "0.5,1",
            "--tta-flip",
        ],
        root,
    ));
    let lines = std::fs::read_to_string(root.join("tta.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 4);
    for line in lines.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let (w, h) = (
            record["width"].as_f64().unwrap(),
            record["height"].as_f64().unwrap(),
        );
        for det in record["detections"].as_array().unwrap() {
            let b: Vec<f64> = det["box"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert!(
                0.0 <= b[0] && b[0] < b[2] && b[2] <= w + 1e-3,
                "{b:?} in {w}"
            );
            assert!(
                0.0 <= b[1] && b[1] < b[3] && b[3] <= h + 1e-3,
                "{b:?} in {h}"
            );
        }
    }
    // One unmirrored pass at scale 1 is the plain detector: the same AP.
    ok(&visage(
        &[
            "eval",
            "--split",
            "val",
            "--weights",
            "runs/tiny/best",
            "--tta-scales",
            "1",
            "--json",
            "d.json",
        ],
        root,
    ));
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("d.json")).unwrap()).unwrap();
    for setting in ["easy", "medium", "hard"] {
        assert_eq!(a[setting], d[setting], "{setting}");
    }
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let bad = TINY_CONFIG.replace("[train]\n", "[train]\nlearning_rate = 1.0\n");
    std::fs::write(root.join("bad.toml"), bad).unwrap();
    let err = failed(&visage(&["train", "--config", "bad.toml"], root));
    assert!(
        err.contains("bad.toml") && err.contains("learning_rate"),
        "{err}"
    );
    std::fs::write(root.join("tiny.toml"), TINY_CONFIG).unwrap();
    let err = failed(&visage(
        &["train", "--config", "tiny.toml", "--batch-size", "0"],
        root,
    ));
    assert!(err.contains("train.batch_size"), "{err}");

    let err = failed(&visage(
        &["detect", "nope.jpg", "--weights", "runs/none"],
        root,
    ));
    assert!(err.contains("nope.jpg"), "{err}");

    std::fs::write(root.join("corrupt.jpg"), b"not a jpeg").unwrap();
    let err = failed(&visage(
        &["detect", "corrupt.jpg", "--weights", "runs/none"],
        root,
    ));
    assert!(err.contains("runs/none"), "{err}");

    let err = failed(&visage(
        &["train", "--config", "tiny.toml", "--device", "tpu"],
        root,
    ));
    assert!(err.contains("tpu"), "{err}");
}

#[test]
fn eval_of_the_shared_fixture_prints_the_reference_ap() {
    let Some(shared) = shared_dir() else { return };
    let fixture = shared.join("wider/fixture");
    let dir = tempfile::tempdir().unwrap();
    for pred in ["pred", "pred_unsorted"] {
        let json = dir.path().join(format!("{pred}.json"));
        ok(&visage(
            &[
                "eval",
                "--predictions",
                fixture.join(pred).to_str().unwrap(),
                "--gt",
                fixture.join("gt").to_str().unwrap(),
                "--json",
                json.to_str().unwrap(),
            ],
            dir.path(),
        ));
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let expected = [
            ("easy", 0.9166666666666666),
            ("medium", 0.7200000000000001),
            ("hard", 0.7041666666666667),
        ];
        for (setting, ap) in expected {
            let got = report[setting].as_f64().unwrap();
            assert!((got - ap).abs() <= 1e-9, "{pred} {setting}: {got} vs {ap}");
        }
    }
}
