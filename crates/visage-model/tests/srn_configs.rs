//! `configs/srn.toml`, `ainnoface.toml` and their `-tiny` variants describe SRN-family
//! detectors: their `[model]` tables parse (unknown keys rejected), validate and build, with
//! SRN's structure (PAPERS.md): anchors {2, 2√2} × stride at ratio 1.25, STC on the fine
//! levels with first-step matching 0.7 / 0.3 and drop score 0.01, STR on the three coarsest.

use burn::backend::Flex;
use burn::prelude::*;
use visage_model::{
    BackboneSpec, BoxLossSpec, DetectorFamily, FaceTargets, ModelSpec, Srn, SrnSpec,
};

mod common;

fn read(name: &str) -> (toml::Table, SrnSpec, visage_model::TestSpec) {
    let (table, model, test) = common::read_config(name);
    let ModelSpec::Srn(spec) = model else {
        panic!("{name}: architecture = \"srn\" expected")
    };
    (table, spec, test)
}

/// What every SRN-family config shares.
fn check_srn(spec: &SrnSpec) {
    assert_eq!(spec.anchors.base_factor, 2.0);
    assert_eq!(spec.anchors.scales.len(), 2);
    assert!((spec.anchors.scales[1] - 2f32.sqrt()).abs() < 1e-5);
    assert_eq!(spec.anchors.ratios, vec![1.25]);
    assert_eq!(
        (spec.assign.positive_iou, spec.assign.negative_iou),
        (0.5, 0.4)
    );
    assert_eq!(
        (spec.stc.assign.positive_iou, spec.stc.assign.negative_iou),
        (0.7, 0.3)
    );
    assert_eq!(spec.stc.drop_score, 0.01);
    assert_eq!(spec.two_step_regression.levels, 3);
    assert!(spec.head.rfe);
    // STC covers strides ≤ 16, STR strides ≥ 32, as the paper splits them.
    let strides = spec.level_strides();
    assert_eq!(*strides.last().unwrap(), 128);
    assert!(strides[..spec.stc.levels].iter().all(|&s| s <= 16));
    let str_start = strides.len() - spec.two_step_regression.levels;
    assert!(strides[str_start..].iter().all(|&s| s >= 32));
    assert_eq!((spec.loss.focal_alpha, spec.loss.focal_gamma), (0.25, 2.0));
}

fn depth(spec: &SrnSpec) -> u32 {
    let BackboneSpec::Resnet(resnet) = &spec.backbone else {
        panic!("a ResNet backbone")
    };
    resnet.depth
}

#[test]
fn srn_and_ainnoface_tomls_are_the_papers_detectors() {
    let (_, srn, srn_test) = read("srn.toml");
    let (_, ainno, _) = read("ainnoface.toml");
    for spec in [&srn, &ainno] {
        check_srn(spec);
        assert_eq!(spec.level_strides(), vec![4, 8, 16, 32, 64, 128]);
        assert_eq!(spec.stc.levels, 3);
        assert_eq!(
            (
                spec.neck.channels,
                spec.neck.c6_channels,
                spec.neck.c7_channels
            ),
            (256, 1024, 256)
        );
        assert_eq!(spec.head.channels, 256);
    }
    assert_eq!(depth(&srn), 50);
    assert!(matches!(srn.loss.box_loss, BoxLossSpec::SmoothL1 { .. }));
    // AInnoFace = SRN + ResNet-152 + IoU loss: nothing else differs in [model].
    assert_eq!(depth(&ainno), 152);
    assert_eq!(ainno.loss.box_loss, BoxLossSpec::NegLogIou);
    let mut same = ainno.clone();
    same.backbone = srn.backbone.clone();
    same.loss = srn.loss.clone();
    assert_eq!(same, srn);
    // SRN's test code: score ≥ 0.05, NMS 0.4, keep 750; multi-scale and flip.
    let tta = srn_test.tta.as_ref().expect("[test.tta]");
    assert_eq!(tta.scales, vec![0.5, 1.0, 1.5]);
    assert!(tta.flip);
    assert_eq!(srn_test.score_threshold, 0.05);
    assert_eq!(srn_test.nms_threshold, 0.4);
    assert_eq!(srn_test.max_detections, 750);
}

#[test]
fn the_tiny_variants_build_run_and_have_four_loss_parts() {
    let device = Default::default();
    for (name, box_loss) in [
        ("srn-tiny.toml", "smooth_l1"),
        ("ainnoface-tiny.toml", "neg_log_iou"),
    ] {
        let (table, spec, test) = read(name);
        check_srn(&spec);
        assert_eq!(spec.level_strides(), vec![8, 16, 32, 64, 128], "{name}");
        assert_eq!(spec.stc.levels, 2, "{name}");
        let data = table["data"].as_table().unwrap();
        assert_eq!(data["root"].as_str(), Some("data/synth"), "{name}");
        match (box_loss, spec.loss.box_loss) {
            ("smooth_l1", BoxLossSpec::SmoothL1 { .. })
            | ("neg_log_iou", BoxLossSpec::NegLogIou) => {}
            (want, got) => panic!("{name}: box loss {got:?}, expected {want}"),
        }
        let model = Srn::<Flex>::new(&spec, &device).unwrap();
        let outputs = model.forward(Tensor::zeros([1, 3, 192, 192], &device));
        let out = &outputs;
        assert_eq!(
            out.feature_sizes,
            vec![(24, 24), (12, 12), (6, 6), (3, 3), (2, 2)]
        );
        let n: usize = out.feature_sizes.iter().map(|(h, w)| h * w * 2).sum();
        assert_eq!(out.cls_logits.dims(), [1, n, 1]);
        assert_eq!(
            out.first_cls_logits.as_ref().unwrap().dims(),
            [1, (24 * 24 + 12 * 12) * 2, 1]
        );
        assert_eq!(
            out.first_box_deltas.as_ref().unwrap().dims(),
            [1, (36 + 9 + 4) * 2, 4]
        );
        let faces = [FaceTargets {
            boxes: vec![[40.0, 40.0, 72.0, 80.0]],
            ..Default::default()
        }];
        let v = model.loss(&outputs, &faces).unwrap().values().unwrap();
        let names: Vec<&str> = v.parts.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["cls_first", "box_first", "cls", "box"], "{name}");
        assert!(v.num_positive > 0, "{name}");
        // Fresh weights (prior 0.01 everywhere) detect nothing at the 0.02 threshold.
        assert!(model.postprocess(&outputs, &test)[0].is_empty(), "{name}");
    }
}
