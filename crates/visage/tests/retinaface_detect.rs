//! `visage detect` with a Pytorch_Retinaface checkpoint reproduces the port's `detect.py`
//! through the CLI: a MobileNet-0.25 RetinaFace with the shared formula weights, saved in the
//! port's key layout with nn.DataParallel's `module.` prefix, run on an 8-bit PNG at its
//! original size (BGR minus (104, 117, 123)) with configs/retinaface-mnet.toml. The expected
//! detections come from `tools/parity/retinaface_cli_fixture.py` (detect.py on the same image
//! and weights, equal scores ordered by prior index as a stable sort does — detect.py leaves
//! their order to numpy): same count, each matched one-to-one with box IoU > 0.99, score
//! within 1e-3, landmarks within 0.05 px.

mod common;

use common::{failed, ok, visage};

use std::path::{Path, PathBuf};

use visage_backbone::weights::{StateDict, TorchLayout};
use visage_model::RETINAFACE_MNET;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn with_module_prefix(path: &str) -> String {
    format!("module.{}", (RETINAFACE_MNET.path_to_key)(path))
}

fn without_module_prefix(key: &str) -> String {
    (RETINAFACE_MNET.key_to_path)(key.strip_prefix("module.").unwrap_or(key))
}

/// Pytorch_Retinaface's keys as a `nn.DataParallel` checkpoint holds them.
const DATA_PARALLEL_MNET: TorchLayout = TorchLayout {
    name: "Pytorch_Retinaface (DataParallel)",
    key_to_path: without_module_prefix,
    path_to_key: with_module_prefix,
    is_ignored: visage_backbone::weights::is_batch_norm_counter,
};

/// Writes `mobilenet0.25_Final.safetensors` in `dir`: the formula weights, `module.` keys.
fn write_checkpoint(dir: &Path) -> PathBuf {
    let path = common::formula_mnet_checkpoint(dir, &DATA_PARALLEL_MNET);
    let written = StateDict::read(&path).unwrap();
    assert!(written.keys().all(|k| !k.starts_with("module.")));
    path
}

fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
}

struct Face {
    bbox: [f32; 4],
    score: f32,
    landmarks: Vec<f32>,
}

fn read_json(path: &Path) -> Vec<Face> {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let images = json.as_array().unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(
        (images[0]["width"].as_u64(), images[0]["height"].as_u64()),
        (Some(163), Some(117))
    );
    let f = |v: &serde_json::Value| v.as_f64().unwrap() as f32;
    images[0]["detections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let b: Vec<f32> = d["box"].as_array().unwrap().iter().map(f).collect();
            let marks = d["landmarks"].as_array().expect("landmarks in the JSON");
            assert_eq!(marks.len(), 5);
            Face {
                bbox: [b[0], b[1], b[2], b[3]],
                score: f(&d["score"]),
                landmarks: marks
                    .iter()
                    .flat_map(|p| p.as_array().unwrap().iter().map(f).collect::<Vec<_>>())
                    .collect(),
            }
        })
        .collect()
}

#[test]
fn detect_with_a_pytorch_retinaface_checkpoint_matches_detect_py() {
    let dir = tempfile::tempdir().unwrap();
    let weights = write_checkpoint(dir.path());
    let config = repo().join("configs/retinaface-mnet.toml");
    let image = fixture("retinaface_image.png");
    let out = ok(&visage(
        &[
            "detect",
            "--config",
            config.to_str().unwrap(),
            "--weights",
            weights.to_str().unwrap(),
            "--json",
            "out.json",
            "--draw",
            "drawn",
            image.to_str().unwrap(),
        ],
        dir.path(),
    ));
    assert!(out.contains("1 images"), "{out}");
    assert_eq!(
        std::fs::read_dir(dir.path().join("drawn")).unwrap().count(),
        1
    );
    let ours = read_json(&dir.path().join("out.json"));

    let expected = StateDict::read(fixture("retinaface_image_detect.safetensors")).unwrap();
    let dets: Vec<f32> = expected.to_f32("dets").unwrap().to_vec().unwrap();
    let landms: Vec<f32> = expected.to_f32("landms").unwrap().to_vec().unwrap();
    let theirs: Vec<(&[f32], &[f32])> = dets.chunks(5).zip(landms.chunks(10)).collect();
    assert!(theirs.len() > 100, "the fixture exercises NMS");
    assert_eq!(ours.len(), theirs.len(), "detection count");
    let mut used = vec![false; ours.len()];
    for (d, marks) in theirs {
        let bbox = [d[0], d[1], d[2], d[3]];
        let best = (0..ours.len())
            .filter(|&i| !used[i] && (ours[i].score - d[4]).abs() < 1e-3)
            .max_by(|&i, &j| iou(ours[i].bbox, bbox).total_cmp(&iou(ours[j].bbox, bbox)))
            .unwrap_or_else(|| panic!("no detection with score {}", d[4]));
        used[best] = true;
        assert!(
            iou(ours[best].bbox, bbox) > 0.99,
            "{:?} vs {bbox:?}",
            ours[best].bbox
        );
        for (a, b) in ours[best].landmarks.iter().zip(marks) {
            assert!((a - b).abs() < 0.05, "landmark {a} vs {b}");
        }
    }

    // The flags override the config's [test]: scores strictly above 0.6, at most 5 kept.
    ok(&visage(
        &[
            "detect",
            "--config",
            config.to_str().unwrap(),
            "--weights",
            weights.to_str().unwrap(),
            "--json",
            "strict.json",
            "--score-threshold",
            "0.6",
            "--keep",
            "5",
            "--nms-threshold",
            "0.3",
            "--top-k",
            "100",
            image.to_str().unwrap(),
        ],
        dir.path(),
    ));
    let strict = read_json(&dir.path().join("strict.json"));
    assert!(!strict.is_empty() && strict.len() <= 5, "{}", strict.len());
    assert!(strict.iter().all(|d| d.score > 0.6));
}

#[test]
fn a_weights_file_needs_a_config_and_the_right_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let weights = write_checkpoint(dir.path());
    let image = fixture("retinaface_image.png");
    let err = failed(&visage(
        &[
            "detect",
            "--weights",
            weights.to_str().unwrap(),
            image.to_str().unwrap(),
        ],
        dir.path(),
    ));
    assert!(err.contains("--config"), "{err}");
    // A RetinaNet config cannot take Pytorch_Retinaface weights.
    let quickstart = repo().join("configs/quickstart.toml");
    let err = failed(&visage(
        &[
            "detect",
            "--config",
            quickstart.to_str().unwrap(),
            "--weights",
            weights.to_str().unwrap(),
            image.to_str().unwrap(),
        ],
        dir.path(),
    ));
    assert!(err.contains("mobilenet0.25_Final"), "{err}");
}
