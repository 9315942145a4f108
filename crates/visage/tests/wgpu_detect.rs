//! Detection on Burn's wgpu backend (lavapipe where there is no GPU) against PyTorch.
//!
//! - The network: RetinaFace MobileNet-0.25 and ResNet-50 with the shared formula weights on
//!   wgpu give `tools/parity/retinaface_fixtures.py`'s float64 PyTorch outputs (loc, conf,
//!   landms) within the CPU parity test's tolerance, `max |Δ| / max |ref| ≤ 1e-4`.
//! - The command: `visage detect --device cpu` and `--device wgpu` with a Pytorch_Retinaface
//!   MobileNet-0.25 checkpoint on the 163 × 117 parity image with configs/retinaface-mnet.toml,
//!   against `detect.py`'s detections (`tools/parity/retinaface_cli_fixture.py`): matched one to
//!   one with scores within 1e-3, box IoU > 0.99 and landmarks within 0.05 px. On the CPU every
//!   detection matches. The formula weights score ~430 overlapping boxes within 1e-4 of each
//!   other, so which of two overlapping boxes NMS keeps turns on score differences of 1e-6 that
//!   any other summation order makes (wgpu's matmul kernel is chosen by timing at run time, and
//!   one choice flips ~30 such near ties, each changing what else is suppressed). So on wgpu
//!   this run checks the plumbing: counts within 1 %, at least 80 % of `detect.py`'s
//!   detections matched. The numbers are checked where order cannot matter: with NMS and the
//!   caps off (`--nms-threshold 1`, every candidate above the score threshold), wgpu's
//!   detections equal the CPU's one to one with the tolerances above. (Post-processing runs on
//!   the host in both cases, the same code.)
//!
//! See `wgpu_common` for when the tests are skipped.

#![cfg(feature = "wgpu")]

mod common;
mod wgpu_common;

use std::path::{Path, PathBuf};

use burn::backend::wgpu::WgpuDevice;
use burn::backend::Wgpu;
use burn::prelude::*;
use common::{ok, visage};
use visage_backbone::weights::{formula_state_dict, load_state_dict, StateDict, TorchLayout};
use visage_backbone::{BackboneConfig, MobileNetV1Config, ResNetConfig, ResNetDepth};
use visage_model::{RetinaFaceNet, RetinaFaceNetConfig, RETINAFACE_MNET, RETINAFACE_R50};

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

/// The detections of `a` with no detection of `b` of the same score (±1e-3) and IoU > 0.99,
/// each as (score, the largest IoU with a detection of `b` scored at least as high): what tells
/// a detection near the score threshold or the NMS IoU threshold from a wrong one.
fn unmatched(a: &[Face], b: &[Face]) -> Vec<(f32, f32)> {
    a.iter()
        .filter(|d| {
            !b.iter()
                .any(|e| (e.score - d.score).abs() < 1e-3 && iou(e.bbox, d.bbox) > 0.99)
        })
        .map(|d| {
            let overlap = b
                .iter()
                .filter(|e| e.score >= d.score)
                .map(|e| iou(e.bbox, d.bbox))
                .fold(0f32, f32::max);
            (d.score, overlap)
        })
        .collect()
}

/// Asserts that `ours` matches `theirs` one to one (see the module doc); with `near_ties`,
/// detections may differ where NMS broke a near tie differently.
fn assert_matches(device: &str, ours: &[Face], theirs: &[Face], near_ties: bool) {
    let (ours_left, theirs_left) = (unmatched(ours, theirs), unmatched(theirs, ours));
    let report = format!(
        "{device}: {} detections, detect.py {}; unmatched (score, best IoU with the other \
         side's higher-scored detections): ours {ours_left:?}, detect.py's {theirs_left:?}",
        ours.len(),
        theirs.len()
    );
    if !near_ties {
        assert_eq!(ours.len(), theirs.len(), "{report}");
        assert!(ours_left.is_empty() && theirs_left.is_empty(), "{report}");
    } else {
        assert!(
            ours.len().abs_diff(theirs.len()) * 100 <= theirs.len(),
            "{report}"
        );
        assert!(theirs_left.len() * 5 <= theirs.len(), "{report}");
    }
    let mut used = vec![false; ours.len()];
    for t in theirs.iter().filter(|t| {
        ours.iter()
            .any(|d| (d.score - t.score).abs() < 1e-3 && iou(d.bbox, t.bbox) > 0.99)
    }) {
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

/// The network on wgpu against the float64 PyTorch fixture of visage-model's parity test.
fn network_matches_pytorch(config: RetinaFaceNetConfig, layout: &TorchLayout, fixture: &str) {
    let device = WgpuDevice::default();
    let net: RetinaFaceNet<Wgpu> = config.init(&device);
    let dict = formula_state_dict::<Wgpu, _>(&net, layout);
    let net = load_state_dict::<Wgpu, _>(net, &dict, layout).unwrap();
    let path = manifest()
        .join("../visage-model/tests/fixtures")
        .join(fixture);
    let fx = StateDict::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let out = net.forward(Tensor::from_data(fx.to_f32("input").unwrap(), &device));
    for (name, got) in [
        ("loc", out.boxes),
        ("conf", out.class_logits),
        ("landms", out.landmarks),
    ] {
        let want: Vec<f32> = fx.to_f32(name).unwrap().to_vec().unwrap();
        let got: Vec<f32> = got.into_data().to_vec().unwrap();
        assert_eq!(got.len(), want.len(), "{fixture} {name}");
        let max_ref = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let max_diff = got
            .iter()
            .zip(&want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        println!(
            "{fixture} {name} on wgpu: max|Δ|/max|ref| = {:.2e}",
            max_diff / max_ref
        );
        assert!(
            max_diff <= 1e-4 * max_ref,
            "{fixture} {name}: {max_diff} of {max_ref}"
        );
    }
}

#[test]
fn retinaface_networks_on_wgpu_match_pytorch() {
    if !wgpu_common::wgpu_available() {
        return;
    }
    let mnet = RetinaFaceNetConfig {
        backbone: BackboneConfig::MobileNet(MobileNetV1Config::new()),
        out_channels: 64,
        anchors_per_location: 2,
        frozen_bn: false,
    };
    network_matches_pytorch(mnet, &RETINAFACE_MNET, "retinaface_mnet.safetensors");
    // ResNet-50 also runs the shortcuts' 1×1 stride-2 convolutions.
    let r50 = RetinaFaceNetConfig {
        backbone: BackboneConfig::ResNet(ResNetConfig::new(ResNetDepth::D50).with_frozen_bn(true)),
        out_channels: 256,
        anchors_per_location: 2,
        frozen_bn: true,
    };
    network_matches_pytorch(r50, &RETINAFACE_R50, "retinaface_r50.safetensors");
}

/// `visage detect --device DEVICE ... --json` of the parity image with the formula checkpoint.
fn detect(device: &str, extra: &[&str], dir: &Path, weights: &Path) -> Vec<Face> {
    let config = manifest().join("../../configs/retinaface-mnet.toml");
    let image = manifest().join("tests/fixtures/retinaface_image.png");
    let json = format!("{device}-{}.json", extra.len());
    let mut args = vec![
        "detect",
        "--device",
        device,
        "--config",
        config.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
        "--json",
        &json,
    ];
    args.extend_from_slice(extra);
    args.push(image.to_str().unwrap());
    let out = ok(&visage(&args, dir));
    assert!(out.contains("1 images"), "{out}");
    read_json(&dir.join(&json))
}

#[test]
fn detect_on_wgpu_matches_the_cpu_and_detect_py() {
    if !wgpu_common::wgpu_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let weights = common::formula_mnet_checkpoint(dir.path(), &RETINAFACE_MNET);
    let theirs = reference();
    assert!(theirs.len() > 100, "the fixture exercises NMS");
    for device in ["cpu", "wgpu"] {
        let ours = detect(device, &[], dir.path(), &weights);
        assert_matches(device, &ours, &theirs, device == "wgpu");
    }
    // Without suppression or caps the order of near ties cannot matter: every candidate above
    // the score threshold, on wgpu and on the CPU, one to one.
    let every_candidate = [
        "--nms-threshold",
        "1",
        "--top-k",
        "100000",
        "--keep",
        "100000",
    ];
    let cpu = detect("cpu", &every_candidate, dir.path(), &weights);
    let wgpu = detect("wgpu", &every_candidate, dir.path(), &weights);
    assert!(cpu.len() > theirs.len(), "{} candidates", cpu.len());
    assert_matches("wgpu, every candidate", &wgpu, &cpu, false);
}
