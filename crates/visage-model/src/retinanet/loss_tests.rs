//! Tests of the RetinaNet family's loss: its parts by hand, FAN's attention and DF²S²'s
//! segmentation parts, and a few SGD steps lowering it.

use super::*;
use crate::family::DetectorFamily;
use burn::backend::{Autodiff, Flex};
use burn::optim::{GradientsParams, Optimizer, SgdConfig};

type Ad = Autodiff<Flex>;

fn spec(box_loss: &str) -> crate::RetinaNetSpec {
    spec_with(box_loss, "")
}

fn spec_with(box_loss: &str, extra: &str) -> crate::RetinaNetSpec {
    let tiny = crate::tiny::RETINANET;
    toml::from_str(&format!("{tiny}\n[loss]\nbox_loss = {box_loss}\n{extra}\n")).unwrap()
}

/// FAN: the attention subnet on top of the tiny RetinaNet.
fn fan_spec(levels: &str) -> crate::RetinaNetSpec {
    spec_with(
        "{ smooth_l1 = { beta = 0.11 } }",
        &format!("[attention]\nchannels = 16\nconvs = 1\nloss_weight = 1.0\nlevels = {levels}"),
    )
}

fn batch(device: &burn::backend::flex::FlexDevice) -> (Tensor<Ad, 4>, Vec<FaceTargets>) {
    let images = Tensor::<Ad, 4>::random(
        [2, 3, 64, 64],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        device,
    );
    let faces = vec![
        FaceTargets {
            boxes: vec![[10.0, 12.0, 30.0, 36.0], [40.0, 8.0, 56.0, 28.0]],
            ..Default::default()
        },
        FaceTargets {
            boxes: vec![[4.0, 4.0, 60.0, 60.0]],
            ..Default::default()
        },
    ];
    (images, faces)
}

fn a_few_steps_lower_the_loss(box_loss: &str) {
    a_few_steps_lower_the_loss_of(spec(box_loss));
}

fn a_few_steps_lower_the_loss_of(spec: crate::RetinaNetSpec) -> (LossValues, LossValues) {
    let device = Default::default();
    let mut det = RetinaNet::<Ad>::new(&spec, &device).unwrap();
    let (images, faces) = batch(&device);
    let mut optim = SgdConfig::new().init();
    let first = det.loss(&det.forward(images.clone()), &faces).unwrap();
    let first_value = first.values().unwrap();
    assert!(first_value.num_positive >= 3, "{first_value:?}");
    let mut last = first_value.clone();
    for _ in 0..5 {
        let parts = det.loss(&det.forward(images.clone()), &faces).unwrap();
        last = parts.values().unwrap();
        let grads = GradientsParams::from_grads(parts.total.backward(), &det);
        det = optim.step(0.01, det, grads);
    }
    assert!(
        last.total < first_value.total,
        "loss did not decrease: {} -> {}",
        first_value.describe(),
        last.describe()
    );
    (first_value, last)
}

#[test]
fn a_few_sgd_steps_lower_the_fan_loss_and_its_attention_part() {
    let (first, last) = a_few_steps_lower_the_loss_of(fan_spec("\"matched\""));
    let names: Vec<&str> = first.parts.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["cls", "box", "attn"]);
    let (a0, a1) = (first.part("attn").unwrap(), last.part("attn").unwrap());
    assert!(a1 < a0, "attention loss did not decrease: {a0} -> {a1}");
    // The total includes the weighted attention part.
    let sum = first.part("cls").unwrap() + first.part("box").unwrap() + a0;
    assert!(
        (first.total - sum).abs() < 1e-4 * sum,
        "{}",
        first.describe()
    );
}

/// DF²S² at test size: FFP3..FFP5, one shared conv, segmentation with λ2.
fn df2s2_spec(loss_weight: f32) -> crate::RetinaNetSpec {
    toml::from_str(&format!(
        r#"
            [backbone.resnet]
            depth = 18
            width_multiplier = 0.125
            [neck.ffp]
            channels = 16
            min_level = 3
            max_level = 5
            [head]
            channels = 16
            convs = 1
            shared_convs = true
            norm = {{ group = 4 }}
            [anchors]
            base_factor = 2.0
            scales = [1.0]
            ratios = [1.0, 1.5]
            [assign]
            positive_iou = 0.5
            negative_iou = 0.5
            [loss]
            box_loss = {{ smooth_l1 = {{ beta = 0.11 }} }}
            [segmentation]
            loss_weight = {loss_weight:?}
            levels = "matched"
            "#
    ))
    .unwrap()
}

#[test]
fn a_few_sgd_steps_lower_the_df2s2_loss_and_its_segmentation_part() {
    let (first, last) = a_few_steps_lower_the_loss_of(df2s2_spec(0.5));
    let names: Vec<&str> = first.parts.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["cls", "box", "seg"]);
    let (s0, s1) = (first.part("seg").unwrap(), last.part("seg").unwrap());
    assert!(s1 < s0, "segmentation loss did not decrease: {s0} -> {s1}");
    // The total includes λ2 · seg.
    let sum = first.part("cls").unwrap() + first.part("box").unwrap() + 0.5 * s0;
    assert!(
        (first.total - sum).abs() < 1e-4 * sum,
        "{}",
        first.describe()
    );
}

#[test]
fn segmentation_loss_is_the_mean_cross_entropy_per_level_summed_over_levels() {
    let device = Default::default();
    let det = RetinaNet::<Flex>::new(&df2s2_spec(2.0), &device).unwrap();
    let out = det.forward(Tensor::<Flex, 4>::zeros([2, 3, 64, 64], &device));
    // Faceless images: empty masks; the loss of every pixel is ln(1 + e^x).
    let parts = det
        .loss(&out, &[FaceTargets::default(), FaceTargets::default()])
        .unwrap();
    let logits = out.segmentation_logits.as_ref().unwrap();
    assert_eq!(logits.len(), 3);
    let expected: f32 = logits
        .iter()
        .map(|l| {
            let v: Vec<f32> = l.to_data().to_vec().unwrap();
            v.iter().map(|x| (1.0 + x.exp()).ln()).sum::<f32>() / v.len() as f32
        })
        .sum();
    let v = parts.values().unwrap();
    let got = v.part("seg").unwrap();
    assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
    // Initial logits ≈ 0: about 3 · ln 2; the total is cls + 2 · seg (no positives).
    assert!((got - 3.0 * std::f32::consts::LN_2).abs() < 0.1, "{got}");
    let total = v.part("cls").unwrap() + 2.0 * got;
    assert!((v.total - total).abs() < 1e-4, "{}", v.describe());
}

#[test]
fn segmentation_masks_fill_the_faces_of_each_level() {
    // A 24 × 24 face: area 576 px² lies in FFP4's [0.5 · 32², 2 · 32²] only (FFP3's
    // range ends at 2 · 16² = 512); on FFP4 (stride 16, centres 8, 24, 40, 56) it fills
    // rows and columns 1..=2.
    let device = Default::default();
    let mut spec = df2s2_spec(1.0);
    spec.segmentation.as_mut().unwrap().levels = crate::retinanet::AttentionLevelsSpec::default();
    let det = RetinaNet::<Flex>::new(&spec, &device).unwrap();
    let out = det.forward(Tensor::<Flex, 4>::zeros([1, 3, 64, 64], &device));
    let faces = [FaceTargets {
        boxes: vec![[16.0, 16.0, 40.0, 40.0]],
        ..Default::default()
    }];
    let anchors = det.anchors(&out);
    let dense = DenseTargets::build(
        &anchors.boxes,
        &faces,
        &det.policy.assigner,
        &det.policy.coder,
    );
    let assigner = det.policy.segmentation.as_ref().unwrap();
    let targets = RetinaNetTargets {
        segmentation: Some(assigner.build(&faces, &out.feature_sizes, &dense)),
        attention: None,
        dense,
    };
    let masks = targets.segmentation.as_ref().unwrap();
    let ones = |m: &[f32]| -> Vec<usize> {
        m.iter()
            .enumerate()
            .filter(|(_, &v)| v == 1.0)
            .map(|(i, _)| i)
            .collect()
    };
    assert!(ones(&masks.masks[0]).is_empty());
    assert_eq!(ones(&masks.masks[1]), vec![4 + 1, 4 + 2, 8 + 1, 8 + 2]);
    assert!(ones(&masks.masks[2]).is_empty());
    let from_loss = det.loss_from_targets(&out, &targets).values().unwrap();
    let direct = det.loss(&out, &faces).unwrap().values().unwrap();
    assert_eq!(from_loss, direct);
}

#[test]
fn attention_loss_is_the_mean_cross_entropy_per_level_averaged_over_levels() {
    let device = Default::default();
    let det = RetinaNet::<Flex>::new(
        &fan_spec("{ anchor_area = { min_area_factor = 0.5 } }"),
        &device,
    )
    .unwrap();
    // Faceless images: empty masks; the loss of every pixel is ln(1 + e^x).
    let out = det.forward(Tensor::<Flex, 4>::zeros([2, 3, 64, 64], &device));
    let parts = det
        .loss(&out, &[FaceTargets::default(), FaceTargets::default()])
        .unwrap();
    let logits = out.attention_logits.as_ref().unwrap();
    let expected: f32 = logits
        .iter()
        .map(|l| {
            let v: Vec<f32> = l.to_data().to_vec().unwrap();
            v.iter().map(|x| (1.0 + x.exp()).ln()).sum::<f32>() / v.len() as f32
        })
        .sum::<f32>()
        / logits.len() as f32;
    let v = parts.values().unwrap();
    let got = v.part("attn").unwrap();
    assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
    // Initial attention σ ≈ 0.5: about ln 2.
    assert!((got - std::f32::consts::LN_2).abs() < 0.05, "{got}");
}

#[test]
fn retinanet_keeps_two_parts_and_attention_weight_scales_the_total() {
    let device = Default::default();
    let det = RetinaNet::<Flex>::new(&spec("\"one_minus_iou\""), &device).unwrap();
    let out = det.forward(Tensor::<Flex, 4>::zeros([1, 3, 32, 32], &device));
    let v = det
        .loss(&out, &[FaceTargets::default()])
        .unwrap()
        .values()
        .unwrap();
    let names: Vec<&str> = v.parts.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["cls", "box"]);

    let mut fan = fan_spec("\"matched\"");
    fan.attention.as_mut().unwrap().loss_weight = 3.0;
    let det = RetinaNet::<Flex>::new(&fan, &device).unwrap();
    let out = det.forward(Tensor::<Flex, 4>::zeros([1, 3, 32, 32], &device));
    let v = det
        .loss(&out, &[FaceTargets::default()])
        .unwrap()
        .values()
        .unwrap();
    let expected = v.part("cls").unwrap() + 3.0 * v.part("attn").unwrap();
    assert!((v.total - expected).abs() < 1e-5, "{}", v.describe());
}

#[test]
fn a_few_sgd_steps_lower_the_smooth_l1_loss() {
    a_few_steps_lower_the_loss("{ smooth_l1 = { beta = 0.11 } }");
}

#[test]
fn a_few_sgd_steps_lower_the_iou_loss() {
    a_few_steps_lower_the_loss("\"neg_log_iou\"");
}

#[test]
fn an_image_without_faces_gives_a_finite_zero_box_loss() {
    let device = Default::default();
    let det = RetinaNet::<Flex>::new(&spec("\"one_minus_iou\""), &device).unwrap();
    let images = Tensor::<Flex, 4>::zeros([1, 3, 32, 32], &device);
    let parts = det
        .loss(&det.forward(images), &[FaceTargets::default()])
        .unwrap();
    let v = parts.values().unwrap();
    assert_eq!(v.num_positive, 0);
    assert_eq!(v.part("box"), Some(0.0));
    assert!(v.part("cls").unwrap() > 0.0);
}

#[test]
fn mismatched_targets_are_an_error() {
    let device = Default::default();
    let det = RetinaNet::<Flex>::new(&spec("\"one_minus_iou\""), &device).unwrap();
    let images = Tensor::<Flex, 4>::zeros([2, 3, 32, 32], &device);
    let err = det.loss(&det.forward(images), &[FaceTargets::default()]);
    assert!(matches!(err, Err(ModelError::InvalidInput(_))));
}
