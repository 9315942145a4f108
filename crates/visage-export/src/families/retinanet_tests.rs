//! The RetinaNet family's export against Burn's forward, in tract: RetinaNet (FPN with each
//! extra-level source, group-norm or plain heads, ResNet or MobileNet), FAN (attention) and
//! DF²S² (FFP with either up-sampling kernel, shared head, segmentation left out), with
//! random weights, random group-norm affines and random batch-norm running statistics.

use burn::backend::Flex;
use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::Distribution;
use visage_model::{DetectorFamily, RetinaNet, RetinaNetSpec};

use super::*;
use crate::graph::{host_f32, Dim, ElemType};
use crate::proto::{ModelProto, OperatorSetIdProto};
use crate::testing::{max_relative_error, run_tract};
use crate::{export_model, ExportOptions, InputConvention, InputNormalisation, PlaneOrder};

type B = Flex;

/// Replaces every float tensor (weights, biases, norm affines, running statistics) with
/// random values: conv weights `U(±√(3 / fan_in))`, norm scales and running variances in
/// `[0.5, 1.5]`, everything else (biases, shifts, running means) in `[−0.5, 0.5]`.
struct Randomise {
    path: Vec<String>,
}

impl ModuleMapper<B> for Randomise {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let dims = tensor.dims();
        let field = self.path.last().map(String::as_str).unwrap_or("");
        let (lo, hi) = if D >= 2 {
            let fan_in: usize = dims[1..].iter().product();
            let a = (3.0 / fan_in.max(1) as f64).sqrt();
            (-a, a)
        } else if matches!(field, "running_var" | "gamma" | "weight") {
            (0.5, 1.5)
        } else {
            (-0.5, 0.5)
        };
        let random = Tensor::random(dims, Distribution::Uniform(lo, hi), &tensor.device());
        Param::from_mapped_value(id, random, mapper)
    }
}

fn spec(text: &str) -> RetinaNetSpec {
    match visage_model::tiny::parse(text) {
        visage_model::ModelSpec::RetinaNet(spec) => spec,
        other => panic!("not a RetinaNet spec: {other:?}"),
    }
}

/// The tiny RetinaNet spec with `from` replaced by `to` (each must occur).
fn tiny_with(edits: &[(&str, &str)]) -> String {
    let mut text = visage_model::tiny::RETINANET.to_string();
    for (from, to) in edits {
        assert!(text.contains(from), "{from}");
        text = text.replace(from, to);
    }
    text
}

fn randomised(spec: &RetinaNetSpec) -> RetinaNet<B> {
    let device = Default::default();
    let model = RetinaNet::<B>::new(spec, &device).expect("valid spec");
    model.map(&mut Randomise { path: Vec::new() })
}

const NORMALISED: InputConvention = InputConvention::Normalised(InputNormalisation {
    mean: [0.0; 3],
    std: [1.0; 3],
    order: PlaneOrder::Rgb,
});

/// The network's raw outputs, scores and anchors as graph outputs, at `opset`.
fn network_model(model: &RetinaNet<B>, opset: i64) -> ModelProto {
    let mut g = Graph::new(opset);
    let named = |s: &str| Dim::Named(s.into());
    let images = g.input(
        "images",
        ElemType::F32,
        &[named("N"), Dim::Fixed(3), named("H"), named("W")],
    );
    let net = model.export_network(&mut g, &images).expect("export");
    let GraphAnchors::Shared(anchors) = &net.decode.anchors else {
        panic!("RetinaNet's anchors are shared by the batch")
    };
    let (n, a) = (named("N"), named("A"));
    for raw in &net.raw {
        let dims = [n.clone(), a.clone(), Dim::Fixed(raw.channels as i64)];
        g.output(&raw.value, raw.name, ElemType::F32, &dims);
    }
    g.output(&net.decode.scores, "scores", ElemType::F32, &[n, a.clone()]);
    g.output(anchors, "anchors", ElemType::F32, &[a, Dim::Fixed(4)]);
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        graph: Some(g.finish("retinanet")),
        ..Default::default()
    }
}

/// Exports `model`, runs it in tract on each `[batch, 3, h, w]` random input and compares
/// every output with Burn's forward; returns the largest relative error seen.
fn check(label: &str, model: &RetinaNet<B>, inputs: &[[usize; 4]], opset: i64) -> f32 {
    let full = export_model(
        model,
        &ExportOptions {
            opset,
            input: NORMALISED,
            postprocess: None,
            metadata: Vec::new(),
        },
    )
    .unwrap_or_else(|e| panic!("{label}: {e}"));
    let names: Vec<&str> = full
        .graph
        .as_ref()
        .unwrap()
        .output
        .iter()
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(names, ["cls_logits", "box_deltas"], "{label}");
    let onnx = network_model(model, opset);
    let mut worst = 0.0f32;
    for &dims in inputs {
        let images =
            Tensor::<B, 4>::random(dims, Distribution::Normal(0.0, 1.0), &Default::default());
        let out = model.forward(images.clone());
        let got = run_tract(&onnx, &host_f32(images), &dims);
        let anchors: Vec<f32> = model
            .anchors(&out)
            .boxes
            .iter()
            .flatten()
            .copied()
            .collect();
        let [batch, n, _] = out.cls_logits.dims();
        let scores = burn::tensor::activation::sigmoid(out.cls_logits.clone());
        let expected = [
            (vec![batch, n, 1], host_f32(out.cls_logits.clone())),
            (vec![batch, n, 4], host_f32(out.box_deltas.clone())),
            (vec![batch, n], host_f32(scores)),
            (vec![n, 4], anchors),
        ];
        for (i, ((dims_expected, values), got)) in expected.iter().zip(&got).enumerate() {
            assert_eq!(&got.dims, dims_expected, "{label} {dims:?} output {i}");
            let err = max_relative_error(&got.values, values);
            assert!(err <= 1e-4, "{label} {dims:?} output {i}: {err}");
            worst = worst.max(err);
        }
    }
    eprintln!("{label}: max relative error {worst:e}");
    worst
}

#[test]
fn retinanet_with_group_norm_heads_matches_burn() {
    let _stream = crate::testing::seeded(13);
    let model = randomised(&visage_model::tiny::retinanet());
    // The batch norms are trainable ones whose running statistics were randomised too.
    let visage_backbone::Backbone::ResNet(resnet) = &model.backbone else {
        panic!("a ResNet")
    };
    let visage_backbone::Norm::Batch(bn) = &resnet.bn1 else {
        panic!("a trainable batch norm")
    };
    let var = host_f32(bn.running_var.value());
    assert!(var.iter().all(|&v| (0.5..=1.5).contains(&v)) && var.iter().any(|&v| v != 1.0));
    check("retinanet", &model, &[[2, 3, 64, 96], [1, 3, 72, 100]], 17);
}

#[test]
fn fpn_extra_levels_from_each_source_match_burn() {
    let _stream = crate::testing::seeded(14);
    for (source, opset) in [("c5", 13), ("p5", 17), ("lateral", 21)] {
        let text = tiny_with(&[(
            "max_level = 5",
            &format!("max_level = 7\nextra_source = \"{source}\""),
        )]);
        let model = randomised(&spec(&text));
        check(
            &format!("fpn extra from {source}"),
            &model,
            &[[1, 3, 72, 100]],
            opset,
        );
    }
}

#[test]
fn mobilenet_with_frozen_norms_and_plain_heads_matches_burn() {
    let _stream = crate::testing::seeded(15);
    let text = tiny_with(&[
        (
            "[backbone.resnet]\ndepth = 18\nwidth_multiplier = 0.125",
            "[backbone.mobilenet]\nwidth_multiplier = 0.25\nfrozen_bn = true",
        ),
        ("norm = { group = 4 }\n", ""),
        ("max_level = 5", "max_level = 6"),
    ]);
    let model = randomised(&spec(&text));
    check("mobilenet", &model, &[[1, 3, 80, 80]], 17);
}

#[test]
fn fan_attention_scales_the_features_as_burn() {
    let _stream = crate::testing::seeded(16);
    let text = format!(
        "{}\n[attention]\nchannels = 8\nconvs = 2\nnorm = {{ group = 2 }}\n",
        tiny_with(&[("max_level = 5", "max_level = 6")])
    );
    let model = randomised(&spec(&text));
    assert!(model.attention.is_some());
    check("fan", &model, &[[2, 3, 64, 96], [1, 3, 72, 100]], 17);
}

#[test]
fn df2s2_feature_fusion_and_shared_head_match_burn() {
    let _stream = crate::testing::seeded(17);
    for (min_level, kernel, inputs) in [
        (3, 4, vec![[2, 3, 64, 96], [1, 3, 80, 80]]),
        (2, 3, vec![[1, 3, 72, 100]]),
    ] {
        let text = tiny_with(&[
            ("[neck.fpn]", "[neck.ffp]"),
            ("min_level = 3", &format!("min_level = {min_level}")),
            (
                "max_level = 5",
                &format!("max_level = 7\nupsample_kernel = {kernel}"),
            ),
            ("[head]", "[head]\nshared_convs = true"),
        ]) + "\n[segmentation]\nloss_weight = 0.5\n";
        let model = randomised(&spec(&text));
        let label = format!("df2s2 from C{min_level}, Ψ {kernel}×{kernel}");
        check(&label, &model, &inputs, 17);
    }
}

#[test]
fn the_segmentation_predictor_is_left_out_and_everything_else_read() {
    let _stream = crate::testing::seeded(18);
    let text = tiny_with(&[
        ("[neck.fpn]", "[neck.ffp]"),
        ("[head]", "[head]\nshared_convs = true"),
    ]) + "\n[segmentation]\nloss_weight = 0.5\n";
    let model = randomised(&spec(&text));
    let mut g = Graph::new(17);
    let images = g.input(
        "images",
        ElemType::F32,
        &[Dim::Fixed(1), Dim::Fixed(3), Dim::Fixed(64), Dim::Fixed(64)],
    );
    model.export_network(&mut g, &images).unwrap();
    let visage_heads::DetectionHead::Shared(head) = &model.head else {
        panic!("a shared head")
    };
    let seg = head.seg_predictor.as_ref().unwrap();
    assert!(matches!(
        g.param_uses().get(&seg.weight.id),
        Some(crate::graph::ParamUse::LeftOut(_))
    ));
    assert!(matches!(
        g.param_uses().get(&head.cls_predictor.weight.id),
        Some(crate::graph::ParamUse::Exported)
    ));
}
