//! `configs/fan.toml` and `configs/fan-tiny.toml` describe FAN detectors: their `[model]`
//! tables parse (unknown keys rejected), validate and build, and their `[test]` tables parse.

use burn::backend::Flex;
use burn::prelude::*;
use visage_model::{
    AttentionLevelsSpec, DetectorFamily, FaceTargets, ModelSpec, NeckSpec, RetinaNet,
    RetinaNetSpec, TestSpec,
};

mod common;

fn read(name: &str) -> (RetinaNetSpec, TestSpec) {
    let (_, model, test) = common::read_config(name);
    let ModelSpec::RetinaNet(spec) = model else {
        panic!("{name}: FAN is a RetinaNet-style detector")
    };
    (spec, test)
}

/// What both configs share: FAN's anchors, thresholds and attention on P3..P7.
fn check_fan(spec: &RetinaNetSpec) {
    assert_eq!(spec.level_strides(), vec![8, 16, 32, 64, 128]);
    assert_eq!(spec.anchors.ratios, vec![1.0, 1.5]);
    assert_eq!(spec.anchors_per_location(), 6);
    // Anchor sizes 16 · 2^(i/3): 16 px on P3 up to 406 px on P7.
    let smallest = spec.anchors.base_factor * 8.0 * spec.anchors.scales[0];
    let largest = spec.anchors.base_factor * 128.0 * spec.anchors.scales[2];
    assert!((smallest - 16.0).abs() < 1e-3, "{smallest}");
    assert!((largest - 406.4).abs() < 0.1, "{largest}");
    assert_eq!(
        (spec.assign.positive_iou, spec.assign.negative_iou),
        (0.5, 0.4)
    );
    assert_eq!((spec.loss.focal_alpha, spec.loss.focal_gamma), (0.25, 2.0));
    let attention = spec.attention.as_ref().expect("[model.attention]");
    assert_eq!(
        attention.levels,
        AttentionLevelsSpec::AnchorArea {
            min_area_factor: 0.5,
            max_area_factor: 2.0
        }
    );
    assert_eq!(attention.loss_weight, 1.0);
}

#[test]
fn fan_toml_is_the_paper_s_detector() {
    let (spec, _) = read("fan.toml");
    check_fan(&spec);
    let NeckSpec::Fpn(fpn) = &spec.neck else {
        panic!("FAN has an FPN")
    };
    assert_eq!(fpn.channels, 256);
    assert_eq!((spec.head.channels, spec.head.convs), (256, 4));
    let attention = spec.attention.as_ref().unwrap();
    assert_eq!((attention.channels, attention.convs), (256, 4));
    let visage_model::BackboneSpec::Resnet(resnet) = &spec.backbone else {
        panic!("ResNet backbone")
    };
    assert_eq!(resnet.depth, 50);
    // It builds (ResNet-50, 256-channel FPN and subnets), with the attention subnet's
    // parameters beside the head's.
    let det = RetinaNet::<Flex>::new(&spec, &Default::default()).unwrap();
    let attention = det.attention.as_ref().unwrap();
    assert_eq!(attention.subnet.convs.len(), 4);
    assert_eq!(attention.subnet.predictor.weight.dims(), [1, 256, 3, 3]);
}

#[test]
fn fan_tiny_builds_and_its_loss_has_an_attention_part() {
    let (spec, _) = read("fan-tiny.toml");
    check_fan(&spec);
    let device = Default::default();
    let det = RetinaNet::<Flex>::new(&spec, &device).unwrap();
    let out = det.forward(Tensor::<Flex, 4>::zeros([1, 3, 192, 192], &device));
    assert_eq!(
        out.feature_sizes,
        vec![(24, 24), (12, 12), (6, 6), (3, 3), (2, 2)]
    );
    let logits = out.attention_logits.as_ref().unwrap();
    for (logit, &(h, w)) in logits.iter().zip(&out.feature_sizes) {
        assert_eq!(logit.dims(), [1, 1, h, w]);
    }
    let n: usize = out.feature_sizes.iter().map(|(h, w)| h * w * 6).sum();
    assert_eq!(out.cls_logits.dims(), [1, n, 1]);
    let faces = [FaceTargets {
        boxes: vec![[40.0, 40.0, 72.0, 80.0]],
        ..Default::default()
    }];
    let v = det.loss(&out, &faces).unwrap().values().unwrap();
    let names: Vec<&str> = v.parts.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["cls", "box", "attn"]);
    assert!(v.num_positive > 0);
}
