//! Running the `visage` binary from the integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use visage_backbone::weights::TorchLayout;
use visage_model::retinaface::formula::write_formula_mnet_checkpoint;

/// The `[data]` tables of a tiny RetinaFace run: 8 training and 4 validation synthetic images
/// with landmarks (`label.txt`), 128-px crops, Pytorch_Retinaface's BGR input.
pub const RETINAFACE_TINY_DATA: &str = r#"
[data]
root = "data/tiny"
train_labels = "train/label.txt"
input_size = 128
crop_scale = { choices = [0.6, 1.0] }
pad_to_square = true
channel_order = "bgr"
mean = [104.0, 117.0, 123.0]
std = [1.0, 1.0, 1.0]
threads = 2

[data.synth]
seed = 3
train_images = 8
val_images = 4
"#;

/// The `[model]` tables of a tiny RetinaFace (MobileNet-0.25, 16 channels).
pub const RETINAFACE_TINY_MODEL: &str = r#"
[model]
architecture = "retinaface"
out_channels = 16

[model.backbone.mobilenet]
width_multiplier = 0.25
"#;

/// The `[model]` tables of a tiny RetinaNet (ResNet-18 at 1/8 width, batch norm in training
/// mode, FPN P3–P5 of 16 channels, one head conv), for test configs.
pub const TINY_RETINANET_MODEL: &str = r#"
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
ratios = [1.0]

[model.assign]
positive_iou = 0.5
negative_iou = 0.4
"#;

/// Runs `visage args...` in `cwd`.
pub fn visage(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_visage"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the visage binary runs")
}

/// Asserts success (printing both streams otherwise) and returns stdout.
pub fn ok(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "visage failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Asserts failure and returns stderr.
pub fn failed(output: &Output) -> String {
    assert!(!output.status.success(), "visage should have failed");
    stderr(output)
}

/// stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes `mobilenet0.25_Final.safetensors` in `dir`: a Pytorch_Retinaface MobileNet-0.25
/// with the shared formula weights (configs/retinaface-mnet.toml), its keys in `layout`.
pub fn formula_mnet_checkpoint(dir: &Path, layout: &TorchLayout) -> PathBuf {
    let path = dir.join("mobilenet0.25_Final.safetensors");
    write_formula_mnet_checkpoint(&path, layout).unwrap();
    path
}
