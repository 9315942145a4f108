//! RetinaFace network parity with modules of Pytorch_Retinaface's exact layout
//! (`tools/parity/retinaface_fixtures.py`: float64 reference, weights from the shared formula,
//! keys through the checkpoint layouts). Tolerance: `max |Δ| / max |ref| ≤ 1e-4` per output.

use std::path::PathBuf;

use burn::backend::Flex;
use burn::prelude::*;
use visage_backbone::weights::{formula_state_dict, load_state_dict, StateDict, TorchLayout};
use visage_backbone::{BackboneConfig, MobileNetV1Config, ResNetConfig, ResNetDepth};
use visage_model::{RetinaFaceNet, RetinaFaceNetConfig, RETINAFACE_MNET, RETINAFACE_R50};

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
