//! ResNet parity with torchvision and the `.pth` import path.
//!
//! Fixtures come from `tools/parity/backbone_fixtures.py` (torchvision, float64 reference):
//! both sides fill every weight from the formula of `visage_backbone::weights`, so only inputs
//! and outputs are committed. Tolerance: `max |Δ| / max |ref| ≤ 1e-4` per level, in f32.

mod common;

use burn::backend::Flex;
use burn::prelude::*;
use common::{assert_levels_match, fixture, fixture_path, TOLERANCE};
use visage_backbone::resnet::ResidualBlock;
use visage_backbone::weights::{
    formula_state_dict, formula_values, load_state_dict, save_safetensors, StateDict, WeightsError,
};
use visage_backbone::{ResNet, ResNetConfig, ResNetDepth, TORCHVISION_RESNET};

type B = Flex;

fn run_parity(depth: ResNetDepth, frozen_bn: bool, fixture_name: &str) {
    let device = Default::default();
    let net: ResNet<B> = ResNetConfig::new(depth)
        .with_frozen_bn(frozen_bn)
        .init(&device);
    let dict = formula_state_dict::<B, _>(&net, &TORCHVISION_RESNET);
    let net = load_state_dict::<B, _>(net, &dict, &TORCHVISION_RESNET).unwrap();
    let fx = fixture(fixture_name);
    let out = net.forward(fx.tensor::<B>("input", &device));
    assert_eq!(out.strides(), vec![4, 8, 16, 32]);
    assert_levels_match(
        &fx,
        &["c2", "c3", "c4", "c5"],
        out.into_tensors(),
        TOLERANCE,
    );
}

#[test]
fn resnet50_matches_torchvision() {
    // Trainable batch norm, evaluated with its running statistics (no autodiff).
    run_parity(ResNetDepth::D50, false, "resnet50.safetensors");
}

#[test]
fn resnet152_matches_torchvision() {
    run_parity(ResNetDepth::D152, true, "resnet152.safetensors");
}

fn small_resnet50(device: &burn::tensor::Device<B>) -> ResNet<B> {
    ResNetConfig::new(ResNetDepth::D50)
        .with_width_multiplier(1.0 / 32.0)
        .init(device)
}

/// The formula's value rounded to f16 (the file stores half precision), back in f32.
fn half_formula(key: &str, shape: &[usize]) -> Vec<f32> {
    formula_values(key, shape)
        .into_iter()
        .map(|v| half::f16::from_f32(v).to_f32())
        .collect()
}

#[test]
fn real_half_precision_pth_with_module_prefix_loads_exactly() {
    let dict = StateDict::read(fixture_path("resnet50_w1-32_half.pth")).unwrap();
    // `module.` removed; fc and num_batches_tracked present in the file (ignored on load).
    assert!(dict.keys().all(|k| !k.starts_with("module.")));
    assert_eq!(dict.dtype("conv1.weight"), Some(burn::tensor::DType::F16));
    assert!(dict.shape("fc.weight").is_some());
    assert!(dict.keys().any(|k| k.ends_with("num_batches_tracked")));

    let device = Default::default();
    let net = load_state_dict::<B, _>(small_resnet50(&device), &dict, &TORCHVISION_RESNET).unwrap();
    // Every parameter holds exactly the file's value.
    for (path, shape) in visage_backbone::weights::parameter_shapes::<B, _>(&net) {
        let key = (TORCHVISION_RESNET.path_to_key)(&path);
        let want = half_formula(&key, &shape);
        let got = dict.to_f32(&key).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(got, want, "{key}");
    }
    let ResidualBlock::Bottleneck(block) = &net.layer2[0] else {
        panic!("ResNet-50 has bottlenecks")
    };
    let shortcut = block.downsample.as_ref().expect("first block projects");
    let loaded: Vec<f32> = shortcut.conv.weight.val().into_data().to_vec().unwrap();
    let want = half_formula("layer2.0.downsample.0.weight", &[16, 8, 1, 1]);
    assert_eq!(loaded, want);
}

#[test]
fn legacy_format_training_checkpoint_is_unwrapped() {
    // torch's pre-1.6 (non-zip) format, {"epoch", "arch", "state_dict": {module.*},
    // "best_prec1"}.
    let dict = StateDict::read(fixture_path("resnet50_w1-64_checkpoint.tar")).unwrap();
    assert!(dict
        .keys()
        .all(|k| !k.starts_with("module.") && !k.starts_with("optimizer")));
    assert_eq!(dict.dtype("conv1.weight"), Some(burn::tensor::DType::F32));
    let device = Default::default();
    let net: ResNet<B> = ResNetConfig::new(ResNetDepth::D50)
        .with_width_multiplier(1.0 / 64.0)
        .init(&device);
    let net = load_state_dict::<B, _>(net, &dict, &TORCHVISION_RESNET).unwrap();
    let got: Vec<f32> = net.conv1.weight.val().into_data().to_vec().unwrap();
    assert_eq!(got, formula_values("conv1.weight", &[1, 3, 7, 7]));
}

#[test]
fn optimizer_state_with_integer_keys_gets_an_explained_error() {
    let err = StateDict::read(fixture_path("with_optimizer_state.pth")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("with_optimizer_state.pth"), "{text}");
    assert!(
        text.contains("non-string keys") && text.contains("torch.save(c.get('state_dict'"),
        "{text}"
    );
}

#[test]
fn wrong_architecture_lists_missing_and_unexpected_keys() {
    let dict = StateDict::read(fixture_path("resnet50_w1-32_half.pth")).unwrap();
    let device = Default::default();
    let r18: ResNet<B> = ResNetConfig::new(ResNetDepth::D18)
        .with_width_multiplier(1.0 / 32.0)
        .init(&device);
    let err = load_state_dict::<B, _>(r18, &dict, &TORCHVISION_RESNET).unwrap_err();
    let WeightsError::Mismatch { mismatch, .. } = &err else {
        panic!("expected a mismatch, got {err}")
    };
    assert!(mismatch
        .unexpected
        .iter()
        .any(|k| k == "layer1.0.conv3.weight"));
    assert!(mismatch
        .unexpected
        .iter()
        .any(|k| k == "layer3.5.bn2.running_var"));
    let text = err.to_string();
    assert!(text.contains("resnet50_w1-32_half.pth"), "{text}");
    assert!(
        text.contains("unexpected key(s)") && text.contains("nothing was loaded"),
        "{text}"
    );
}

#[test]
fn wrong_width_lists_misshaped_keys() {
    let dict = StateDict::read(fixture_path("resnet50_w1-32_half.pth")).unwrap();
    let device = Default::default();
    let wider: ResNet<B> = ResNetConfig::new(ResNetDepth::D50)
        .with_width_multiplier(1.0 / 16.0)
        .init(&device);
    let err = load_state_dict::<B, _>(wider, &dict, &TORCHVISION_RESNET).unwrap_err();
    let WeightsError::Mismatch { mismatch, .. } = &err else {
        panic!("expected a mismatch, got {err}")
    };
    let conv1 = mismatch
        .misshaped
        .iter()
        .find(|m| m.key == "conv1.weight")
        .expect("conv1 listed");
    assert_eq!(
        (conv1.found.clone(), conv1.expected.clone()),
        (vec![2, 3, 7, 7], vec![4, 3, 7, 7])
    );
    assert!(err.to_string().contains("wrong shape"), "{err}");
}

#[test]
fn missing_keys_are_listed_with_torch_names() {
    let dict = StateDict::read(fixture_path("resnet50_w1-32_half.pth")).unwrap();
    let partial = StateDict::from_tensors(
        "partial.pth",
        dict.keys()
            .filter(|k| !k.starts_with("layer4.") && !k.starts_with("fc."))
            .filter(|k| !k.ends_with("num_batches_tracked"))
            .map(|k| (k.to_string(), dict.to_f32(k).unwrap()))
            .collect::<Vec<_>>(),
    );
    let device = Default::default();
    let err = load_state_dict::<B, _>(small_resnet50(&device), &partial, &TORCHVISION_RESNET)
        .unwrap_err();
    let WeightsError::Mismatch { mismatch, .. } = &err else {
        panic!("expected a mismatch, got {err}")
    };
    assert!(mismatch
        .missing
        .contains(&"layer4.0.downsample.0.weight".to_string()));
    assert!(mismatch.missing.iter().all(|k| k.starts_with("layer4.")));
    assert!(mismatch.unexpected.is_empty() && mismatch.misshaped.is_empty());
}

#[test]
fn truncated_garbage_and_empty_files_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture_path("resnet50_w1-32_half.pth")).unwrap();
    let device = Default::default();
    for (name, content) in [
        ("truncated.pth", bytes[..bytes.len() / 2].to_vec()),
        ("garbage.pth", b"this is not a checkpoint at all".to_vec()),
        ("empty.pth", Vec::new()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        // A damaged file fails either when read or, for lazily read tensor data, when loaded.
        let err = match StateDict::read(&path) {
            Err(e) => e,
            Ok(dict) => {
                load_state_dict::<B, _>(small_resnet50(&device), &dict, &TORCHVISION_RESNET)
                    .expect_err("a truncated file must not load")
            }
        };
        let text = err.to_string();
        assert!(text.contains(name), "{name}: {text}");
    }
    let missing = StateDict::read(dir.path().join("absent.pth")).unwrap_err();
    assert!(matches!(missing, WeightsError::Io { .. }), "{missing}");
}

#[test]
fn safetensors_export_round_trips() {
    let device = Default::default();
    let dict = StateDict::read(fixture_path("resnet50_w1-32_half.pth")).unwrap();
    let net = load_state_dict::<B, _>(small_resnet50(&device), &dict, &TORCHVISION_RESNET).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r50.safetensors");
    save_safetensors::<B, _>(&net, &TORCHVISION_RESNET, &out, Default::default()).unwrap();
    let back = StateDict::read(&out).unwrap();
    // torchvision key names in the file, no classifier, no counters.
    assert!(back.shape("layer1.0.downsample.0.weight").is_some());
    assert!(back.shape("fc.weight").is_none());
    let reloaded =
        load_state_dict::<B, _>(small_resnet50(&device), &back, &TORCHVISION_RESNET).unwrap();
    let x = Tensor::<B, 4>::random([1, 3, 40, 52], burn::tensor::Distribution::Default, &device);
    let a = net.forward(x.clone()).into_tensors();
    let b = reloaded.forward(x).into_tensors();
    for (a, b) in a.into_iter().zip(b) {
        assert_eq!(a.into_data(), b.into_data());
    }
}

/// A full-size torchvision ResNet-50 `.pth` (written by `backbone_fixtures.py
/// --full-resnet50 PATH` with the formula weights, ~100 MB, so not committed) loads through the
/// file path and reproduces the torchvision fixture.
#[test]
fn full_size_torchvision_resnet50_pth() {
    let Some(path) = std::env::var_os("VISAGE_RESNET50_PTH") else {
        eprintln!(
            "skipped: set VISAGE_RESNET50_PTH to a file written by \
             `tools/parity/backbone_fixtures.py --full-resnet50 PATH`"
        );
        return;
    };
    let device = Default::default();
    let dict = StateDict::read(&path).unwrap();
    let net: ResNet<B> = ResNetConfig::new(ResNetDepth::D50).init(&device);
    let net = load_state_dict::<B, _>(net, &dict, &TORCHVISION_RESNET).unwrap();
    let fx = fixture("resnet50.safetensors");
    let out = net.forward(fx.tensor::<B>("input", &device));
    assert_levels_match(
        &fx,
        &["c2", "c3", "c4", "c5"],
        out.into_tensors(),
        TOLERANCE,
    );
}
