//! RetinaFace network parity with modules of Pytorch_Retinaface's exact layout
//! (`tools/parity/retinaface_fixtures.py`: float64 reference, weights from the shared formula,
//! keys through the checkpoint layouts). Tolerance: `max |Δ| / max |ref| ≤ 1e-4` per output.

use std::path::PathBuf;

use burn::backend::Flex;
use burn::prelude::*;
use visage_backbone::weights::{formula_state_dict, load_state_dict, StateDict, TorchLayout};
use visage_backbone::{BackboneConfig, MobileNetV1Config, ResNetConfig, ResNetDepth};
use visage_model::{
    DetectorFamily, RetinaFace, RetinaFaceNet, RetinaFaceNetConfig, RetinaFaceSpec, TestSpec,
    RETINAFACE_MNET, RETINAFACE_R50,
};

type B = Flex;

fn fixture(name: &str) -> StateDict {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    StateDict::read(&path)
        .unwrap_or_else(|e| panic!("{e} (run tools/parity/retinaface_fixtures.py)"))
}

fn check(config: RetinaFaceNetConfig, layout: &TorchLayout, fixture_name: &str, keys: usize) {
    let device = Default::default();
    let net: RetinaFaceNet<B> = config.init(&device);
    let dict = formula_state_dict::<B, _>(&net, layout);
    // Every tensor of the reference state dict except BatchNorm's counters.
    assert_eq!(dict.len(), keys, "parameter count of {fixture_name}");
    let net = load_state_dict::<B, _>(net, &dict, layout).unwrap();
    let fx = fixture(fixture_name);
    let input = Tensor::<B, 4>::from_data(fx.to_f32("input").unwrap(), &device);
    let out = net.forward(input);
    for (name, got) in [
        ("loc", out.boxes),
        ("conf", out.class_logits),
        ("landms", out.landmarks),
    ] {
        let want = fx.to_f32(name).unwrap();
        assert_eq!(
            got.dims().to_vec(),
            want.shape.to_vec(),
            "{fixture_name} {name}"
        );
        let got: Vec<f32> = got.into_data().to_vec().unwrap();
        let want: Vec<f32> = want.to_vec().unwrap();
        let max_ref = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let max_diff = got
            .iter()
            .zip(&want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        let ratio = max_diff / max_ref;
        println!("{fixture_name} {name}: max|Δ|/max|ref| = {ratio:.2e}");
        assert!(ratio <= 1e-4, "{fixture_name} {name}: {ratio:.2e}");
    }
}

#[test]
fn retinaface_mobilenet_matches_pytorch_retinaface() {
    let config = RetinaFaceNetConfig {
        backbone: BackboneConfig::MobileNet(MobileNetV1Config::new()),
        out_channels: 64,
        anchors_per_location: 2,
        frozen_bn: false,
    };
    // 300 state-dict keys, 47 of them num_batches_tracked.
    check(
        config,
        &RETINAFACE_MNET,
        "retinaface_mnet.safetensors",
        300 - 47,
    );
}

#[test]
fn retinaface_resnet50_matches_pytorch_retinaface() {
    let config = RetinaFaceNetConfig {
        backbone: BackboneConfig::ResNet(ResNetConfig::new(ResNetDepth::D50).with_frozen_bn(true)),
        out_channels: 256,
        anchors_per_location: 2,
        frozen_bn: true,
    };
    // 456 state-dict keys, 73 of them num_batches_tracked.
    check(
        config,
        &RETINAFACE_R50,
        "retinaface_r50.safetensors",
        456 - 73,
    );
}

/// IoU of two xyxy boxes (continuous areas).
fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
}

/// `detect.py`'s pipeline (priors, softmax, decode, score > 0.02, top 5000, `py_cpu_nms` 0.4,
/// keep 750) on a 120 × 160 input gives the same detections: same count, each matched
/// one-to-one with box IoU > 0.99, score within 1e-3, landmarks within 0.05 px.
#[test]
fn retinaface_detections_match_detect_py() {
    let device = Default::default();
    // Pytorch_Retinaface's `cfg_mnet` network and `detect.py`'s defaults.
    let spec: RetinaFaceSpec =
        toml::from_str("out_channels = 64\n[backbone.mobilenet]\nwidth_multiplier = 0.25\n")
            .unwrap();
    let model = RetinaFace::<B>::new(&spec, &device).unwrap();
    let dict = formula_state_dict::<B, _>(&model.net, &RETINAFACE_MNET);
    let model = model.load_reference_weights(&dict).unwrap();
    let detect_py = TestSpec {
        score_threshold: 0.02,
        pre_nms_top_k: 5000,
        nms_threshold: 0.4,
        max_detections: 750,
        ..TestSpec::default()
    };
    let fx = fixture("retinaface_mnet_detect.safetensors");
    let input = Tensor::<B, 4>::from_data(fx.to_f32("input").unwrap(), &device);
    let ours = model
        .postprocess(&model.forward(input), &detect_py)
        .pop()
        .unwrap();
    let dets: Vec<f32> = fx.to_f32("dets").unwrap().to_vec().unwrap();
    let landms: Vec<f32> = fx.to_f32("landms").unwrap().to_vec().unwrap();
    let theirs: Vec<([f32; 4], f32, &[f32])> = dets
        .chunks(5)
        .zip(landms.chunks(10))
        .map(|(d, l)| ([d[0], d[1], d[2], d[3]], d[4], l))
        .collect();
    assert!(
        theirs.len() > 100,
        "the fixture exercises NMS ({} kept)",
        theirs.len()
    );
    assert_eq!(ours.len(), theirs.len(), "detection count");
    let mut used = vec![false; ours.len()];
    for (bbox, score, marks) in &theirs {
        let best = (0..ours.len())
            .filter(|&i| !used[i] && (ours[i].score - score).abs() < 1e-3)
            .max_by(|&i, &j| iou(ours[i].bbox, *bbox).total_cmp(&iou(ours[j].bbox, *bbox)))
            .unwrap_or_else(|| panic!("no detection with score {score}"));
        used[best] = true;
        assert!(
            iou(ours[best].bbox, *bbox) > 0.99,
            "{:?} vs {bbox:?}",
            ours[best].bbox
        );
        for (k, p) in ours[best].landmarks.expect("landmarks").iter().enumerate() {
            assert!((p[0] - marks[2 * k]).abs() < 0.05 && (p[1] - marks[2 * k + 1]).abs() < 0.05);
        }
    }
}
