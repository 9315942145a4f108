//! Tests of the RetinaNet-family spec: parsing, defaults, and errors naming the key.

use super::*;
use crate::spec::{BoxLossSpec, ResNetSpec};

/// The tiny RetinaNet of every family's tests.
const TINY: &str = crate::tiny::RETINANET;

#[test]
fn parses_a_tiny_spec_with_defaults() {
    let spec: RetinaNetSpec = toml::from_str(TINY).unwrap();
    spec.validate().unwrap();
    assert_eq!(spec.level_strides(), vec![8, 16, 32]);
    assert_eq!(spec.anchors_per_location(), 2);
    assert_eq!(spec.head.norm, HeadNormSpec::Group(4));
    assert_eq!(spec.coder.variances, [0.1, 0.2]);
    assert_eq!(
        spec.loss.box_loss,
        BoxLossSpec::SmoothL1 { beta: 1.0 / 9.0 }
    );
    assert!(spec.assign.force_best);
}

#[test]
fn unknown_keys_and_variants_are_rejected() {
    let typo = TINY.replace("channels = 16\nconvs", "chanels = 16\nconvs");
    let err = toml::from_str::<RetinaNetSpec>(&typo)
        .unwrap_err()
        .to_string();
    assert!(err.contains("chanels"), "{err}");
    let variant = TINY.replace("[neck.fpn]", "[neck.bifpn]");
    let err = toml::from_str::<RetinaNetSpec>(&variant)
        .unwrap_err()
        .to_string();
    assert!(err.contains("bifpn"), "{err}");
}

#[test]
fn validation_names_the_key() {
    let mut spec: RetinaNetSpec = toml::from_str(TINY).unwrap();
    spec.assign.negative_iou = 0.6;
    let err = spec.validate().unwrap_err().to_string();
    assert!(err.contains("model.assign.negative_iou"), "{err}");
    let mut spec: RetinaNetSpec = toml::from_str(TINY).unwrap();
    spec.head.norm = HeadNormSpec::Group(3);
    let err = spec.validate().unwrap_err().to_string();
    assert!(err.contains("model.head.norm.group"), "{err}");
    let mut spec: RetinaNetSpec = toml::from_str(TINY).unwrap();
    spec.backbone = BackboneSpec::Resnet(ResNetSpec {
        depth: 20,
        width_multiplier: 1.0,
        frozen_bn: false,
        freeze_stem: false,
        frozen_stages: 0,
        weights: None,
    });
    assert!(spec
        .validate()
        .unwrap_err()
        .to_string()
        .contains("model.backbone.resnet.depth"));
}

#[test]
fn attention_is_optional_and_parses_with_defaults() {
    let spec: RetinaNetSpec = toml::from_str(TINY).unwrap();
    assert_eq!(spec.attention, None);
    // A RetinaNet spec serialises without an attention table.
    assert!(!toml::to_string(&spec).unwrap().contains("attention"));
    let spec: RetinaNetSpec =
        toml::from_str(&format!("{TINY}\n[attention]\nchannels = 16\n")).unwrap();
    spec.validate().unwrap();
    let attention = spec.attention.clone().unwrap();
    assert_eq!(attention.convs, 4);
    assert_eq!(attention.norm, HeadNormSpec::None);
    assert_eq!(attention.loss_weight, 1.0);
    assert_eq!(
        attention.levels,
        AttentionLevelsSpec::AnchorArea {
            min_area_factor: 0.5,
            max_area_factor: 2.0
        }
    );
    let written = toml::to_string(&spec).unwrap();
    assert_eq!(toml::from_str::<RetinaNetSpec>(&written).unwrap(), spec);
    let matched: RetinaNetSpec = toml::from_str(&format!(
        "{TINY}\n[attention]\nchannels = 16\nlevels = \"matched\"\n"
    ))
    .unwrap();
    assert_eq!(
        matched.attention.unwrap().levels,
        AttentionLevelsSpec::Matched
    );
    let area: RetinaNetSpec = toml::from_str(&format!(
            "{TINY}\n[attention]\nchannels = 16\nlevels = {{ anchor_area = {{ max_area_factor = 3.0 }} }}\n"
        ))
        .unwrap();
    assert_eq!(
        area.attention.unwrap().levels,
        AttentionLevelsSpec::AnchorArea {
            min_area_factor: 0.5,
            max_area_factor: 3.0
        }
    );
}

#[test]
fn bad_attention_values_name_the_key() {
    let with = |extra: &str| -> Result<RetinaNetSpec, String> {
        toml::from_str::<RetinaNetSpec>(&format!("{TINY}\n[attention]\n{extra}\n"))
            .map_err(|e| e.to_string())
    };
    let err = with("channels = 16\nchanels = 3").unwrap_err();
    assert!(err.contains("chanels"), "{err}");
    let err = with("channels = 16\nlevels = \"nearest\"").unwrap_err();
    assert!(err.contains("nearest"), "{err}");
    for (extra, key) in [
        ("channels = 0", "model.attention.channels"),
        (
            "channels = 16\nnorm = { group = 5 }",
            "model.attention.norm.group",
        ),
        (
            "channels = 16\nloss_weight = -1.0",
            "model.attention.loss_weight",
        ),
        (
            "channels = 16\nlevels = { anchor_area = { min_area_factor = 0.0 } }",
            "model.attention.levels.anchor_area.min_area_factor",
        ),
        (
            "channels = 16\nlevels = { anchor_area = { max_area_factor = -2.0 } }",
            "model.attention.levels.anchor_area.max_area_factor",
        ),
    ] {
        let err = with(extra).unwrap().validate().unwrap_err().to_string();
        assert!(err.contains(key), "{extra}: {err}");
    }
}

/// TINY with DF²S²'s feature fusion pyramid, shared head convs and segmentation.
fn df2s2(ffp: &str, head_extra: &str, segmentation: &str) -> String {
    TINY.replace(
        "[neck.fpn]\nchannels = 16\nmin_level = 3\nmax_level = 5",
        &format!("[neck.ffp]\n{ffp}"),
    )
    .replace("[head]", &format!("[head]\n{head_extra}"))
        + &format!("\n[segmentation]\n{segmentation}\n")
}

#[test]
fn ffp_neck_shared_head_and_segmentation_parse_with_defaults() {
    let spec: RetinaNetSpec =
        toml::from_str(&df2s2("channels = 16", "shared_convs = true", "")).unwrap();
    spec.validate().unwrap();
    let NeckSpec::Ffp(ffp) = &spec.neck else {
        panic!("{:?}", spec.neck)
    };
    assert_eq!(
        (ffp.min_level, ffp.max_level, ffp.upsample_kernel),
        (2, 7, 4)
    );
    assert_eq!(spec.level_strides(), vec![4, 8, 16, 32, 64, 128]);
    assert_eq!(spec.neck.key(), "model.neck.ffp");
    assert!(spec.head.shared_convs);
    let segmentation = spec.segmentation.clone().unwrap();
    assert_eq!(segmentation.loss_weight, 1.0);
    assert_eq!(segmentation.levels, AttentionLevelsSpec::default());
    let written = toml::to_string(&spec).unwrap();
    assert_eq!(toml::from_str::<RetinaNetSpec>(&written).unwrap(), spec);
    // A RetinaNet spec serialises as before: no shared_convs, no segmentation.
    let plain = toml::to_string(&toml::from_str::<RetinaNetSpec>(TINY).unwrap()).unwrap();
    assert!(!plain.contains("shared_convs") && !plain.contains("segmentation"));
}

#[test]
fn df2s2_errors_name_the_key() {
    let err = toml::from_str::<RetinaNetSpec>(&df2s2("channels = 16\nkernel = 4", "", ""))
        .unwrap_err()
        .to_string();
    assert!(err.contains("kernel"), "{err}");
    for (ffp, head, segmentation, key) in [
        ("channels = 16", "", "", "model.segmentation"),
        (
            "channels = 16",
            "shared_convs = false",
            "",
            "model.head.shared_convs",
        ),
        (
            "channels = 16\nupsample_kernel = 2",
            "shared_convs = true",
            "",
            "model.neck.ffp.upsample_kernel",
        ),
        (
            "channels = 16\nmax_level = 8",
            "shared_convs = true",
            "",
            "model.neck.ffp.max_level",
        ),
        (
            "channels = 16\nmin_level = 4",
            "shared_convs = true",
            "",
            "model.neck.ffp.min_level",
        ),
        (
            "channels = 0",
            "shared_convs = true",
            "",
            "model.neck.ffp.channels",
        ),
        (
            "channels = 16",
            "shared_convs = true",
            "loss_weight = -1.0",
            "model.segmentation.loss_weight",
        ),
        (
            "channels = 16",
            "shared_convs = true",
            "levels = { anchor_area = { min_area_factor = 0.0 } }",
            "model.segmentation.levels.anchor_area.min_area_factor",
        ),
    ] {
        let spec: RetinaNetSpec = toml::from_str(&df2s2(ffp, head, segmentation)).unwrap();
        let err = spec.validate().unwrap_err().to_string();
        assert!(err.contains(key), "{ffp} / {head} / {segmentation}: {err}");
    }
}

#[test]
fn box_loss_variants_parse() {
    #[derive(Deserialize)]
    struct W {
        b: BoxLossSpec,
    }
    let w: W = toml::from_str("b = \"neg_log_iou\"").unwrap();
    assert_eq!(w.b, BoxLossSpec::NegLogIou);
    let w: W = toml::from_str("b = { smooth_l1 = { beta = 0.5 } }").unwrap();
    assert_eq!(w.b, BoxLossSpec::SmoothL1 { beta: 0.5 });
}
