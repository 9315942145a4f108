//! Tests of the RetinaNet family's network: output shapes per level, parameter paths.

use super::*;
use crate::spec::BackboneSpec;
use burn::backend::Flex;

/// The tiny RetinaNet with one more level (P3..P6).
pub(crate) fn tiny_spec() -> RetinaNetSpec {
    toml::from_str(&crate::tiny::RETINANET.replace("max_level = 5", "max_level = 6")).unwrap()
}

#[test]
fn output_shapes_match_the_anchors_per_level() {
    let device = Default::default();
    let det = RetinaNet::<Flex>::new(&tiny_spec(), &device).unwrap();
    // 70 × 45: odd sizes exercise the ceil semantics of every stride.
    let images = Tensor::<Flex, 4>::zeros([2, 3, 70, 45], &device);
    let out = det.forward(images);
    assert_eq!(out.feature_sizes, vec![(9, 6), (5, 3), (3, 2), (2, 1)]);
    let n = (9 * 6 + 5 * 3 + 3 * 2 + 2) * 2;
    assert_eq!(out.cls_logits.dims(), [2, n, 1]);
    assert_eq!(out.box_deltas.dims(), [2, n, 4]);
    assert_eq!(det.anchors(&out).boxes.len(), n);
    assert!(out.attention_logits.is_none());
    assert!(det.attention.is_none());
}

#[test]
fn attention_logits_match_every_level_size() {
    let device = Default::default();
    let mut spec = tiny_spec();
    spec.attention = Some(toml::from_str("channels = 8\nconvs = 2\nnorm = { group = 4 }").unwrap());
    let det = RetinaNet::<Flex>::new(&spec, &device).unwrap();
    let attention = det.attention.as_ref().unwrap();
    assert_eq!(attention.subnet.convs.len(), 2);
    assert_eq!(attention.subnet.predictor.weight.dims(), [1, 8, 3, 3]);
    let out = det.forward(Tensor::<Flex, 4>::zeros([2, 3, 70, 45], &device));
    assert_eq!(out.feature_sizes, vec![(9, 6), (5, 3), (3, 2), (2, 1)]);
    let logits = out.attention_logits.as_ref().unwrap();
    assert_eq!(logits.len(), 4);
    for (logit, &(h, w)) in logits.iter().zip(&out.feature_sizes) {
        assert_eq!(logit.dims(), [2, 1, h, w]);
    }
    let n = (9 * 6 + 5 * 3 + 3 * 2 + 2) * 2;
    assert_eq!(out.cls_logits.dims(), [2, n, 1]);
    assert_eq!(out.box_deltas.dims(), [2, n, 4]);
    // The attention parameters live under `attention.subnet.*`.
    let paths: Vec<String> = visage_backbone::weights::parameter_shapes::<Flex, _>(&det)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("attention.subnet.predictor")),
        "{paths:?}"
    );
}

/// DF²S² at test size: FFP from C_min to P6, one shared conv, segmentation on.
pub(crate) fn df2s2_spec(min_level: u32) -> RetinaNetSpec {
    toml::from_str(&format!(
        r#"
            [backbone.resnet]
            depth = 18
            width_multiplier = 0.125
            [neck.ffp]
            channels = 16
            min_level = {min_level}
            max_level = 6
            upsample_kernel = 3
            [head]
            channels = 16
            convs = 1
            shared_convs = true
            norm = {{ group = 4 }}
            [anchors]
            base_factor = 4.0
            scales = [1.0]
            ratios = [1.0, 1.5]
            [assign]
            positive_iou = 0.5
            negative_iou = 0.5
            [segmentation]
            loss_weight = 1.0
            "#
    ))
    .unwrap()
}

fn paths(det: &RetinaNet<Flex>) -> Vec<String> {
    visage_backbone::weights::parameter_shapes::<Flex, _>(det)
        .into_iter()
        .map(|(p, _)| p)
        .collect()
}

#[test]
fn ffp_output_shapes_and_segmentation_logits_per_level() {
    let device = Default::default();
    for (min_level, sizes) in [
        // 70 × 45 from C2: 18×12, then ceil halvings down to P6.
        (2, vec![(18, 12), (9, 6), (5, 3), (3, 2), (2, 1)]),
        (3, vec![(9, 6), (5, 3), (3, 2), (2, 1)]),
    ] {
        let det = RetinaNet::<Flex>::new(&df2s2_spec(min_level), &device).unwrap();
        assert!(matches!(det.neck, Neck::Ffp(_)));
        let out = det.forward(Tensor::<Flex, 4>::zeros([2, 3, 70, 45], &device));
        assert_eq!(out.feature_sizes, sizes);
        let n: usize = sizes.iter().map(|(h, w)| h * w * 2).sum();
        assert_eq!(out.cls_logits.dims(), [2, n, 1]);
        assert_eq!(out.box_deltas.dims(), [2, n, 4]);
        assert_eq!(det.anchors(&out).boxes.len(), n);
        assert!(out.attention_logits.is_none());
        let seg = out
            .segmentation_logits
            .as_ref()
            .expect("segmentation logits");
        assert_eq!(seg.len(), sizes.len());
        for (logit, &(h, w)) in seg.iter().zip(&sizes) {
            assert_eq!(logit.dims(), [2, 1, h, w]);
        }
    }
}

#[test]
fn the_shared_head_holds_one_conv_stack_and_the_segmentation_predictor() {
    let device = Default::default();
    let det = RetinaNet::<Flex>::new(&df2s2_spec(3), &device).unwrap();
    let DetectionHead::Shared(head) = &det.head else {
        panic!("a shared head")
    };
    assert_eq!(head.convs.len(), 1);
    assert_eq!(head.cls_predictor.weight.dims(), [2, 16, 3, 3]);
    assert_eq!(head.box_predictor.weight.dims(), [8, 16, 3, 3]);
    assert_eq!(
        head.seg_predictor.as_ref().unwrap().weight.dims(),
        [1, 16, 3, 3]
    );
    let keys = paths(&det);
    for prefix in [
        "neck.upsample.0",
        "neck.projection.3",
        "head.convs.0.conv",
        "head.cls_predictor",
        "head.box_predictor",
        "head.seg_predictor",
    ] {
        assert!(
            keys.iter().any(|p| p.starts_with(prefix)),
            "{prefix}: {keys:?}"
        );
    }
    assert!(!keys.iter().any(|p| p.contains("subnet")), "{keys:?}");
    // Without [model.segmentation] the shared head has no segmentation predictor.
    let mut spec = df2s2_spec(3);
    spec.segmentation = None;
    let det = RetinaNet::<Flex>::new(&spec, &device).unwrap();
    assert!(!paths(&det).iter().any(|p| p.contains("seg_predictor")));
    let out = det.forward(Tensor::<Flex, 4>::zeros([1, 3, 32, 32], &device));
    assert!(out.segmentation_logits.is_none());
}

#[test]
fn retinanet_parameter_paths_do_not_name_the_neck_or_head_variant() {
    // The FPN and the separate subnets keep the keys they had as plain struct fields:
    // the detector's `neck.*` / `head.*` keys are the modules' own, prefixed.
    let device = Default::default();
    let det = RetinaNet::<Flex>::new(&tiny_spec(), &device).unwrap();
    let Neck::Fpn(fpn) = &det.neck else {
        panic!("an FPN")
    };
    let DetectionHead::Separate(head) = &det.head else {
        panic!("separate subnets")
    };
    let own = |prefix: &str, inner: Vec<(String, Vec<usize>)>| -> Vec<String> {
        inner
            .into_iter()
            .map(|(p, _)| format!("{prefix}.{p}"))
            .collect()
    };
    let mut expected = own(
        "neck",
        visage_backbone::weights::parameter_shapes::<Flex, _>(fpn),
    );
    expected.extend(own(
        "head",
        visage_backbone::weights::parameter_shapes::<Flex, _>(head),
    ));
    let mut got: Vec<String> = paths(&det)
        .into_iter()
        .filter(|p| p.starts_with("neck.") || p.starts_with("head."))
        .collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    assert!(got.iter().any(|p| p.starts_with("head.cls_subnet.")));
    assert!(got.iter().any(|p| p.starts_with("neck.lateral.")));
}

fn mobilenet_spec(min_level: u32) -> RetinaNetSpec {
    let mut spec = tiny_spec();
    spec.backbone = BackboneSpec::Mobilenet(crate::spec::MobileNetSpec {
        width_multiplier: 0.25,
        frozen_bn: false,
        weights: None,
    });
    let NeckSpec::Fpn(fpn) = &mut spec.neck else {
        unreachable!("tiny_spec has an FPN")
    };
    fpn.min_level = min_level;
    spec
}

#[test]
fn mobilenet_backbone_feeds_the_fpn_from_stride_8() {
    let device = Default::default();
    let spec = mobilenet_spec(3);
    let det = RetinaNet::<Flex>::new(&spec, &device).unwrap();
    let out = det.forward(Tensor::<Flex, 4>::zeros([1, 3, 64, 96], &device));
    assert_eq!(out.feature_sizes, vec![(8, 12), (4, 6), (2, 3), (1, 2)]);
    // MobileNet has no stride-4 level: an FPN from P2 is refused, naming the key.
    let err = mobilenet_spec(2).validate().unwrap_err().to_string();
    assert!(
        err.contains("model.neck.fpn.min_level") && err.contains("stride-4"),
        "{err}"
    );
}

#[test]
fn initial_weights_file_errors_name_the_file() {
    let device = Default::default();
    let mut spec = tiny_spec();
    if let BackboneSpec::Resnet(r) = &mut spec.backbone {
        r.weights = Some("no/such/resnet18.pth".into());
    }
    let det = RetinaNet::<Flex>::new(&spec, &device).unwrap();
    let err = det.load_initial_backbone_weights().unwrap_err().to_string();
    assert!(err.contains("no/such/resnet18.pth"), "{err}");
    // Without a file nothing is read.
    let det = RetinaNet::<Flex>::new(&tiny_spec(), &device).unwrap();
    assert!(det.load_initial_backbone_weights().unwrap().1.is_none());
}
