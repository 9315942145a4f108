//! `configs/df2s2.toml` and `configs/df2s2-tiny.toml` describe DF²S² detectors: their
//! `[model]` tables parse (unknown keys rejected), validate and build, and their `[test]`
//! tables parse. And a RetinaNet checkpoint written before the neck and head became enum
//! modules still has exactly the keys and shapes of today's detector.

use std::path::PathBuf;

use burn::backend::Flex;
use burn::prelude::*;
use visage_heads::DetectionHead;
use visage_model::{
    AttentionLevelsSpec, DetectorFamily, FaceTargets, ModelSpec, Neck, NeckSpec, RetinaNet,
    RetinaNetSpec, TestSpec,
};

mod common;

fn read(name: &str) -> (toml::Table, RetinaNetSpec, TestSpec) {
    let (table, model, test) = common::read_config(name);
    let ModelSpec::RetinaNet(spec) = model else {
        panic!("{name}: DF²S² is a RetinaNet-family detector")
    };
    (table, spec, test)
}

/// What both configs share: FFP neck, shared head, ratios 1 and 1.5, one scale, IoU 0.5 / 0.5,
/// focal + smooth-L1 with λ1 = 1, segmentation.
fn check_df2s2(spec: &RetinaNetSpec) {
    assert!(matches!(spec.neck, NeckSpec::Ffp(_)), "{:?}", spec.neck);
    assert!(spec.head.shared_convs);
    assert_eq!(spec.anchors.ratios, vec![1.0, 1.5]);
    assert_eq!(
        (spec.assign.positive_iou, spec.assign.negative_iou),
        (0.5, 0.5)
    );
    assert_eq!((spec.loss.focal_alpha, spec.loss.focal_gamma), (0.25, 2.0));
    assert_eq!(spec.loss.box_weight, 1.0);
    assert!(spec.attention.is_none());
    let segmentation = spec.segmentation.as_ref().expect("[model.segmentation]");
    assert_eq!(segmentation.loss_weight, 1.0);
    assert_eq!(segmentation.levels, AttentionLevelsSpec::default());
}

#[test]
fn df2s2_toml_is_the_paper_s_detector() {
    let (table, spec, test) = read("df2s2.toml");
    // §3.4: one anchor scale per level; §4: tested at short side 800.
    assert_eq!(spec.anchors.scales, vec![1.0]);
    assert_eq!(test.short_side, Some(800));
    check_df2s2(&spec);
    let NeckSpec::Ffp(ffp) = &spec.neck else {
        unreachable!()
    };
    assert_eq!((ffp.channels, ffp.min_level, ffp.max_level), (256, 2, 7));
    assert_eq!(spec.level_strides(), vec![4, 8, 16, 32, 64, 128]);
    // Anchors 16..512: 4 × stride.
    let sizes: Vec<f32> = spec
        .level_strides()
        .iter()
        .map(|&s| spec.anchors.base_factor * s as f32)
        .collect();
    assert_eq!(sizes, vec![16.0, 32.0, 64.0, 128.0, 256.0, 512.0]);
    assert_eq!((spec.head.channels, spec.head.convs), (256, 4));
    let visage_model::BackboneSpec::Resnet(resnet) = &spec.backbone else {
        panic!("ResNet backbone")
    };
    assert_eq!(resnet.depth, 50);
    // §3.4's schedule.
    let train = table["train"].as_table().unwrap();
    assert_eq!(train["batch_size"].as_integer(), Some(32));
    assert_eq!(train["epochs"].as_integer(), Some(120));
    assert_eq!(train["lr"].as_float(), Some(0.004));
    assert_eq!(train["momentum"].as_float(), Some(0.9));
    assert_eq!(train["weight_decay"].as_float(), Some(1e-4));
    assert_eq!(train["lr_steps"].as_array().unwrap().len(), 2);
    // It builds: ResNet-50, FFP2..FFP7 projected to 256, one shared stack of 4 convs.
    let det = RetinaNet::<Flex>::new(&spec, &Default::default()).unwrap();
    let Neck::Ffp(neck) = &det.neck else {
        panic!("an FFP neck")
    };
    assert_eq!(neck.in_channels, vec![256, 512, 1024, 2048]);
    assert_eq!(neck.projection.len(), 6);
    let DetectionHead::Shared(head) = &det.head else {
        panic!("a shared head")
    };
    assert_eq!(head.convs.len(), 4);
    assert_eq!(head.cls_predictor.weight.dims(), [2, 256, 3, 3]);
    assert_eq!(head.box_predictor.weight.dims(), [8, 256, 3, 3]);
    assert_eq!(
        head.seg_predictor.as_ref().unwrap().weight.dims(),
        [1, 256, 3, 3]
    );
}

#[test]
fn df2s2_tiny_builds_and_its_loss_has_a_segmentation_part() {
    let (table, spec, _) = read("df2s2-tiny.toml");
    check_df2s2(&spec);
    assert_eq!(table["run_dir"].as_str(), Some("runs/df2s2-tiny"));
    assert_eq!(spec.level_strides(), vec![8, 16, 32, 64, 128]);
    // Two scales per level at CPU size (one scale per level stays below Easy 0.8 there).
    assert_eq!(spec.anchors.scales.len(), 2);
    assert_eq!(spec.anchors.scales[0], 1.0);
    assert!((spec.anchors.scales[1] - std::f32::consts::SQRT_2).abs() < 1e-5);
    let device = Default::default();
    let det = RetinaNet::<Flex>::new(&spec, &device).unwrap();
    let out = det.forward(Tensor::<Flex, 4>::zeros([1, 3, 192, 192], &device));
    assert_eq!(
        out.feature_sizes,
        vec![(24, 24), (12, 12), (6, 6), (3, 3), (2, 2)]
    );
    let logits = out.segmentation_logits.as_ref().unwrap();
    assert_eq!(logits.len(), 5);
    for (logit, &(h, w)) in logits.iter().zip(&out.feature_sizes) {
        assert_eq!(logit.dims(), [1, 1, h, w]);
    }
    let n: usize = out.feature_sizes.iter().map(|(h, w)| h * w * 4).sum();
    assert_eq!(out.cls_logits.dims(), [1, n, 1]);
    let faces = [FaceTargets {
        boxes: vec![[40.0, 40.0, 72.0, 80.0]],
        ..Default::default()
    }];
    let v = det.loss(&out, &faces).unwrap().values().unwrap();
    let names: Vec<&str> = v.parts.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["cls", "box", "seg"]);
    assert!(v.num_positive > 0);
}

#[test]
fn a_quickstart_checkpoint_s_keys_and_shapes_are_unchanged() {
    let fixture =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/quickstart_keys.txt");
    let text = std::fs::read_to_string(&fixture).unwrap();
    let mut expected: Vec<(String, Vec<usize>)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (key, shape) = l.split_once(' ').unwrap();
            let shape = shape.split(',').map(|d| d.parse().unwrap()).collect();
            (key.to_string(), shape)
        })
        .collect();
    let (_, spec, _) = read("quickstart.toml");
    let det = RetinaNet::<Flex>::new(&spec, &Default::default()).unwrap();
    let mut got = visage_backbone::weights::parameter_shapes::<Flex, _>(&det);
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
}
