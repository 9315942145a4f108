//! `visage import` and `model.backbone.*.weights`: a real `.pth` (written by torch, committed as
//! a small fixture of visage-backbone) converted to safetensors gives the same network, and a
//! training run starts from it with its frozen stem untouched.

mod common;

use common::{stderr, visage};

use std::path::{Path, PathBuf};

use burn::backend::Flex;
use burn::prelude::*;
use visage_backbone::weights::StateDict;
use visage_backbone::{Backbone, BackboneConfig, ResNetConfig, ResNetDepth};

/// ResNet-50 at 1/32 width, float16, `module.` prefix, with fc (see
/// `tools/parity/backbone_fixtures.py`).
fn small_pth() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../visage-backbone/tests/fixtures/resnet50_w1-32_half.pth")
}

fn small_resnet50() -> Backbone<Flex> {
    BackboneConfig::ResNet(ResNetConfig::new(ResNetDepth::D50).with_width_multiplier(1.0 / 32.0))
        .init(&Default::default())
}

#[test]
fn import_round_trips_to_the_same_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r50.safetensors");
    let run = visage(
        &[
            "import",
            small_pth().to_str().unwrap(),
            "--arch",
            "resnet50",
            "--width-multiplier",
            "0.03125",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(stderr(&run).contains("verified"), "{}", stderr(&run));

    let from_pth = small_resnet50().load_file(&small_pth()).unwrap();
    let from_safetensors = small_resnet50().load_file(&out).unwrap();
    let x = Tensor::<Flex, 4>::random(
        [2, 3, 48, 40],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &Default::default(),
    );
    let a = from_pth.forward(x.clone()).into_tensors();
    let b = from_safetensors.forward(x).into_tensors();
    assert_eq!(a.len(), 4);
    for (a, b) in a.into_iter().zip(b) {
        assert_eq!(a.into_data(), b.into_data());
    }
}

#[test]
fn import_errors_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pth");
    std::fs::write(&garbage, b"not a checkpoint").unwrap();
    let run = visage(
        &[
            "import",
            "garbage.pth",
            "--arch",
            "resnet50",
            "--out",
            "x.safetensors",
        ],
        dir.path(),
    );
    assert!(!run.status.success());
    assert!(stderr(&run).contains("garbage.pth"), "{}", stderr(&run));

    // Right file, wrong architecture: every unexpected key is counted, nothing is written.
    let run = visage(
        &[
            "import",
            small_pth().to_str().unwrap(),
            "--arch",
            "resnet18",
            "--width-multiplier",
            "0.03125",
            "--out",
            "x.safetensors",
        ],
        dir.path(),
    );
    assert!(!run.status.success());
    let err = stderr(&run);
    assert!(
        err.contains("unexpected key(s)") && err.contains("layer1.0.conv3.weight"),
        "{err}"
    );
    assert!(!dir.path().join("x.safetensors").exists());
}

const CONFIG: &str = r#"
name = "pretrained"
run_dir = "runs/pretrained"

[data]
root = "data/tiny"
input_size = 96
threads = 2

[data.synth]
seed = 3
train_images = 8
val_images = 2

[model.backbone.resnet]
depth = 50
width_multiplier = 0.03125
freeze_stem = true
frozen_stages = 1
weights = "WEIGHTS"

[model.neck.fpn]
channels = 8
min_level = 3
max_level = 5

[model.head]
channels = 8
convs = 1

[model.anchors]
base_factor = 2.0
scales = [1.0]
ratios = [1.0]

[model.assign]
positive_iou = 0.5
negative_iou = 0.4

[train]
epochs = 1
batch_size = 4
lr = 0.01
warmup_iters = 1
eval_every = 0
"#;

#[test]
fn training_starts_from_imported_weights_with_frozen_stages_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("absent.toml"),
        CONFIG.replace("WEIGHTS", "absent.pth"),
    )
    .unwrap();
    let run = visage(&["train", "--config", "absent.toml"], root);
    assert!(!run.status.success());
    assert!(stderr(&run).contains("absent.pth"), "{}", stderr(&run));

    std::fs::write(
        root.join("pretrained.toml"),
        CONFIG.replace("WEIGHTS", small_pth().to_str().unwrap()),
    )
    .unwrap();
    let run = visage(
        &["train", "--config", "pretrained.toml", "--overwrite"],
        root,
    );
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("backbone initialised from"),
        "{}",
        stderr(&run)
    );

    let file = StateDict::read(small_pth()).unwrap();
    let checkpoint = StateDict::read(root.join("runs/pretrained/last/model.safetensors")).unwrap();
    let values = |dict: &StateDict, key: &str| dict.to_f32(key).unwrap().to_vec::<f32>().unwrap();
    // Frozen: the stem and layer1 (weights and batch-norm statistics) are the file's, exactly.
    for key in [
        "conv1.weight",
        "bn1.running_var",
        "layer1.0.conv2.weight",
        "layer1.2.bn3.weight",
    ] {
        let ours = key.replace("downsample.0", "downsample.conv");
        assert_eq!(
            values(&checkpoint, &format!("backbone.{ours}")),
            values(&file, key),
            "{key} changed although frozen"
        );
    }
    // Trained: layer2 moved away from the file's values.
    assert_ne!(
        values(&checkpoint, "backbone.layer2.0.conv2.weight"),
        values(&file, "layer2.0.conv2.weight"),
        "layer2 should train"
    );
}
