//! `visage detect --device wgpu` gives the CPU's detections: a Pytorch_Retinaface
//! MobileNet-0.25 checkpoint (the shared formula weights) on the 163 × 117 parity image with
//! configs/retinaface-mnet.toml, run once on Flex and once on wgpu (lavapipe where there is
//! no GPU). Both must match `detect.py`'s detections of the same image and weights
//! (`tools/parity/retinaface_cli_fixture.py`) with the tolerances of the CPU's own parity
//! test: the same count, matched one to one with scores within 1e-3, box IoU > 0.99 and
//! landmarks within 0.05 px. See `wgpu_common` for when the test is skipped.

#![cfg(feature = "wgpu")]

mod common;
mod wgpu_common;

use std::path::{Path, PathBuf};

use common::{ok, visage};
use visage_backbone::weights::StateDict;
use visage_model::RETINAFACE_MNET;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One detection: xyxy box in image pixels, score, five (x, y) landmarks.
struct Face {
    bbox: [f32; 4],
    score: f32,
    landmarks: Vec<f32>,
}

fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
}

/// The detections of the one image in a `--json` file.
fn read_json(path: &Path) -> Vec<Face> {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let f = |v: &serde_json::Value| v.as_f64().unwrap() as f32;
    json[0]["detections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let b: Vec<f32> = d["box"].as_array().unwrap().iter().map(f).collect();
            Face {
                bbox: [b[0], b[1], b[2], b[3]],
                score: f(&d["score"]),
                landmarks: d["landmarks"]
                    .as_array()
                    .expect("landmarks")
                    .iter()
                    .flat_map(|p| p.as_array().unwrap().iter().map(f).collect::<Vec<_>>())
                    .collect(),
            }
        })
        .collect()
}

/// `detect.py`'s detections of the parity image.
fn reference() -> Vec<Face> {
    let expected =
        StateDict::read(manifest().join("tests/fixtures/retinaface_image_detect.safetensors"))
            .unwrap();
    let dets: Vec<f32> = expected.to_f32("dets").unwrap().to_vec().unwrap();
    let landms: Vec<f32> = expected.to_f32("landms").unwrap().to_vec().unwrap();
    dets.chunks(5)
        .zip(landms.chunks(10))
        .map(|(d, m)| Face {
            bbox: [d[0], d[1], d[2], d[3]],
            score: d[4],
            landmarks: m.to_vec(),
        })
        .collect()
}

/// Asserts that `ours` matches `theirs` one to one (see the module doc).
fn assert_matches(device: &str, ours: &[Face], theirs: &[Face]) {
    assert_eq!(ours.len(), theirs.len(), "{device}: detection count");
    let mut used = vec![false; ours.len()];
    for t in theirs {
        let best = (0..ours.len())
            .filter(|&i| !used[i] && (ours[i].score - t.score).abs() < 1e-3)
            .max_by(|&i, &j| iou(ours[i].bbox, t.bbox).total_cmp(&iou(ours[j].bbox, t.bbox)))
            .unwrap_or_else(|| panic!("{device}: no detection with score {}", t.score));
        used[best] = true;
        let overlap = iou(ours[best].bbox, t.bbox);
        assert!(
            overlap > 0.99,
            "{device}: {:?} vs {:?}",
            ours[best].bbox,
            t.bbox
        );
        for (a, b) in ours[best].landmarks.iter().zip(&t.landmarks) {
            assert!((a - b).abs() < 0.05, "{device}: landmark {a} vs {b}");
        }
    }
}

#[test]
fn detect_on_wgpu_matches_the_cpu_and_detect_py() {
    if !wgpu_common::wgpu_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let weights = common::formula_mnet_checkpoint(dir.path(), &RETINAFACE_MNET);
    let config = manifest().join("../../configs/retinaface-mnet.toml");
    let image = manifest().join("tests/fixtures/retinaface_image.png");
    let theirs = reference();
    assert!(theirs.len() > 100, "the fixture exercises NMS");
    for device in ["cpu", "wgpu"] {
        let json = format!("{device}.json");
        let out = ok(&visage(
            &[
                "detect",
                "--device",
                device,
                "--config",
                config.to_str().unwrap(),
                "--weights",
                weights.to_str().unwrap(),
                "--json",
                &json,
                image.to_str().unwrap(),
            ],
            dir.path(),
        ));
        assert!(out.contains("1 images"), "{out}");
        assert_matches(device, &read_json(&dir.path().join(&json)), &theirs);
    }
}
