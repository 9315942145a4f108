//! Tiny specs of every family — a ResNet-18 at 1/8 width or MobileNet-0.25, 16-channel
//! pyramids, one head conv — that build in milliseconds and train a step in a fraction of a
//! second on a CPU: for tests, examples and checks on small machines, never for results.

use serde::Deserialize;

use crate::retinaface::RetinaFaceSpec;
use crate::retinanet::RetinaNetSpec;
use crate::spec::ModelSpec;
use crate::srn::SrnSpec;

/// RetinaNet: FPN P3..P5, separate one-conv subnets with GroupNorm, two anchors per cell.
pub const RETINANET: &str = r#"
[backbone.resnet]
depth = 18
width_multiplier = 0.125
[neck.fpn]
channels = 16
min_level = 3
max_level = 5
[head]
channels = 16
convs = 1
norm = { group = 4 }
[anchors]
base_factor = 2.0
scales = [1.0, 1.5]
ratios = [1.0]
[assign]
positive_iou = 0.5
negative_iou = 0.4
"#;

/// SRN with STC on the two finest and STR on the two coarsest of P3..P7.
pub const SRN: &str = r#"
architecture = "srn"
[backbone.resnet]
depth = 18
width_multiplier = 0.125
[neck]
channels = 16
min_level = 3
c6_channels = 16
c7_channels = 16
[head]
channels = 16
norm = { group = 4 }
[anchors]
base_factor = 2.0
scales = [1.0, 1.4142]
ratios = [1.25]
[assign]
positive_iou = 0.5
negative_iou = 0.4
[stc]
levels = 2
drop_score = 0.001
[str]
levels = 2
"#;

/// RetinaFace on MobileNet-0.25 with 16-channel FPN and SSH.
pub const RETINAFACE: &str = r#"
architecture = "retinaface"
out_channels = 16
[backbone.mobilenet]
width_multiplier = 0.25
"#;

/// A small dense 3D branch for [`RETINAFACE`] (`[mesh]` inside `[model]`): a 16-value code,
/// narrow decoder, 16-pixel crops, no pre-training.
pub const MESH: &str = r#"
[mesh]
crop_size = 16
max_faces = 4
[mesh.decoder]
code_size = 16
channels = [8, 8, 8, 8]
cheb_k = 3
[mesh.pretrain]
steps = 0
"#;

/// The faces of a batch of two 64 × 64 test images (xyxy input pixels): two faces on the
/// first (one with landmarks), one filling the second (with landmarks).
pub fn two_image_faces() -> Vec<crate::FaceTargets> {
    let marks = |x: f32, y: f32| {
        Some([
            [x + 4.0, y + 5.0],
            [x + 12.0, y + 5.0],
            [x + 8.0, y + 9.0],
            [x + 5.0, y + 13.0],
            [x + 11.0, y + 13.0],
        ])
    };
    vec![
        crate::FaceTargets {
            boxes: vec![[10.0, 12.0, 30.0, 36.0], [40.0, 8.0, 56.0, 28.0]],
            landmarks: vec![marks(12.0, 14.0), None],
        },
        crate::FaceTargets {
            boxes: vec![[4.0, 4.0, 60.0, 60.0]],
            landmarks: vec![marks(20.0, 20.0)],
        },
    ]
}

/// Parses a `[model]` table.
///
/// # Panics
/// If `text` is not a valid `[model]` table (the constants here are).
pub fn parse(text: &str) -> ModelSpec {
    let table: toml::Table = toml::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    ModelSpec::deserialize(toml::Value::Table(table)).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The tiny RetinaNet.
pub fn retinanet() -> RetinaNetSpec {
    match parse(RETINANET) {
        ModelSpec::RetinaNet(spec) => spec,
        other => unreachable!("{other:?}"),
    }
}

/// The tiny SRN.
pub fn srn() -> SrnSpec {
    match parse(SRN) {
        ModelSpec::Srn(spec) => spec,
        other => unreachable!("{other:?}"),
    }
}

/// The tiny RetinaFace.
pub fn retinaface() -> RetinaFaceSpec {
    match parse(RETINAFACE) {
        ModelSpec::RetinaFace(spec) => spec,
        other => unreachable!("{other:?}"),
    }
}

/// One tiny spec per family and configuration, named: RetinaNet, FAN (+ attention),
/// DF²S² (FFP, shared head, segmentation), SRN, AInnoFace (SRN + IoU loss), RetinaFace.
pub fn every_family() -> Vec<(&'static str, ModelSpec)> {
    let fan = format!("{RETINANET}\n[attention]\nchannels = 8\nconvs = 1\n");
    let df2s2 = RETINANET
        .replace("[neck.fpn]", "[neck.ffp]")
        .replace("[head]", "[head]\nshared_convs = true")
        + "\n[segmentation]\nloss_weight = 0.5\n";
    let ainnoface = format!("{SRN}\n[loss]\nbox_loss = \"neg_log_iou\"\n");
    vec![
        ("retinanet", parse(RETINANET)),
        ("fan", parse(&fan)),
        ("df2s2", parse(&df2s2)),
        ("srn", parse(SRN)),
        ("ainnoface", parse(&ainnoface)),
        ("retinaface", parse(RETINAFACE)),
        ("retinaface-mesh", parse(&format!("{RETINAFACE}{MESH}"))),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tiny_spec_validates() {
        for (name, spec) in every_family() {
            spec.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        retinanet().validate().unwrap();
        srn().validate().unwrap();
        retinaface().validate().unwrap();
    }
}
