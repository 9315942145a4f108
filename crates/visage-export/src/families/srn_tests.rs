//! SRN's exported network against Burn's forward and `Srn::predictions`, in tract: the raw
//! outputs of both steps, the STC-filtered scores (`-inf` on the host is `-1` in the graph)
//! and the per-image anchors refined by STR; with and without RFE, with overlapping,
//! disjoint and no first-step levels; and the whole `export_model` without post-processing.

use burn::backend::Flex;
use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::Distribution;
use visage_model::{BatchAnchors, DetectorFamily, Srn, SrnOutputs, SrnSpec};

use crate::families::{ExportFamily, GraphAnchors};
use crate::graph::host_f32;
use crate::layers::backbone::tests::{
    graph_with_images, model_of, output, random_images, randomise_norms,
};
use crate::testing::{max_relative_error, run_tract, RunOutput};
use crate::{export_model, ExportOptions, InputConvention, InputNormalisation, PlaneOrder};

/// An SRN with random weights: norms as [`randomise_norms`], every convolution weight
/// `N(0, 2 / fan_in)` (the head's `N(0, 0.01²)` would make every output nearly constant),
/// group norms' scales in 0.5..1.5 and shifts in −0.5..0.5.
fn model(spec: &SrnSpec) -> Srn<Flex> {
    let model = Srn::<Flex>::new(spec, &Default::default()).unwrap();
    randomise_norms(model).map(&mut RandomiseWeights { path: Vec::new() })
}

struct RandomiseWeights {
    path: Vec<String>,
}

impl ModuleMapper<Flex> for RandomiseWeights {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(
        &mut self,
        param: Param<Tensor<Flex, D>>,
    ) -> Param<Tensor<Flex, D>> {
        let distribution = match (D, self.path.last().map(String::as_str)) {
            (4, _) => {
                let dims = param.val().dims();
                let fan_in: usize = dims[1..].iter().product();
                Distribution::Normal(0.0, (2.0 / fan_in as f64).sqrt())
            }
            (1, Some("gamma")) => Distribution::Uniform(0.5, 1.5),
            (1, Some("beta")) => Distribution::Uniform(-0.5, 0.5),
            _ => return param,
        };
        param.map(|t| Tensor::random(t.shape(), distribution, &t.device()))
    }
}

/// The tiny SRN (P3..P7, STC on 2, STR on 2 levels) with `edit` applied.
fn spec(edit: impl FnOnce(&mut SrnSpec)) -> SrnSpec {
    let mut spec = visage_model::tiny::srn();
    // Drop about half of the STC anchors, so the filter is really exercised.
    spec.stc.drop_score = 0.5;
    edit(&mut spec);
    spec.validate().unwrap();
    spec
}

/// The raw outputs Burn gives, by export name.
fn expected_raw(outputs: &SrnOutputs<Flex>) -> Vec<(&'static str, Tensor<Flex, 3>)> {
    let mut raw = vec![
        ("cls_logits", outputs.cls_logits.clone()),
        ("box_deltas", outputs.box_deltas.clone()),
    ];
    if let Some(t) = &outputs.first_cls_logits {
        raw.push(("first_cls_logits", t.clone()));
    }
    if let Some(t) = &outputs.first_box_deltas {
        raw.push(("first_box_deltas", t.clone()));
    }
    raw
}

fn compare(got: &RunOutput, dims: &[usize], want: &[f32], what: &str, at: [usize; 4]) -> f32 {
    assert_eq!(got.dims, dims, "{what} at {at:?}");
    let err = max_relative_error(&got.values, want);
    assert!(err <= 1e-4, "{what} at {at:?}: error {err}");
    err
}

/// Checks the network and its decode inputs at `dims`; returns the largest relative error
/// and how many anchors STC dropped.
fn check_network(model: &Srn<Flex>, dims: [usize; 4]) -> (f32, usize) {
    let (x, values) = random_images(dims);
    let outputs = model.forward(x);
    let predictions = model.predictions(&outputs);
    let (mut g, images) = graph_with_images();
    let network = model.export_network(&mut g, &images).unwrap();
    let raw = expected_raw(&outputs);
    let names: Vec<&str> = network.raw.iter().map(|r| r.name).collect();
    assert_eq!(names, raw.iter().map(|(n, _)| *n).collect::<Vec<_>>());
    for out in &network.raw {
        output(&mut g, &out.value, out.name, 3);
    }
    output(&mut g, &network.decode.scores, "scores", 2);
    let GraphAnchors::PerImage(anchors) = &network.decode.anchors else {
        panic!("SRN's anchors are per image");
    };
    output(&mut g, anchors, "anchors", 3);
    output(&mut g, &network.decode.box_deltas, "decode_boxes", 3);
    let got = run_tract(&model_of(g), &values, &dims);

    let mut worst = 0.0f32;
    for (i, (name, want)) in raw.iter().enumerate() {
        let want_dims = want.dims().to_vec();
        worst = worst.max(compare(
            &got[i],
            &want_dims,
            &host_f32(want.clone()),
            name,
            dims,
        ));
    }
    let k = raw.len();
    let (batch, a) = (predictions.batch, predictions.anchors_per_image);
    let scores: Vec<f32> = predictions
        .scores
        .iter()
        .map(|&s| if s == f32::NEG_INFINITY { -1.0 } else { s })
        .collect();
    let dropped = scores.iter().filter(|&&s| s == -1.0).count();
    worst = worst.max(compare(&got[k], &[batch, a], &scores, "scores", dims));
    let BatchAnchors::PerImage(per_image) = &predictions.anchors else {
        panic!("SRN's predictions hold anchors per image");
    };
    let base = model.anchors(&outputs).boxes;
    let refined = per_image[0]
        .iter()
        .zip(&base)
        .filter(|(r, b)| r != b)
        .count();
    if outputs.first_box_deltas.is_some() {
        assert!(refined > 0, "STR refines no anchor at {dims:?}");
    } else {
        assert_eq!(refined, 0, "anchors refined without STR at {dims:?}");
    }
    let want_anchors: Vec<f32> = per_image.iter().flatten().flatten().copied().collect();
    worst = worst.max(compare(
        &got[k + 1],
        &[batch, a, 4],
        &want_anchors,
        "anchors",
        dims,
    ));
    assert_eq!(
        got[k + 2],
        got[1],
        "decode box deltas are the raw second-step ones"
    );
    assert_eq!(network.decode.coder, predictions.coder);
    assert_eq!(network.decode.rules, predictions.rules);
    assert!(network.decode.landmark_deltas.is_none());
    (worst, dropped)
}

/// Checks `spec` at 64×96 (batch 2), 80×80 and 72×100; returns the largest error.
fn check_sizes(spec: &SrnSpec, what: &str) -> f32 {
    let model = model(spec);
    let mut worst = 0.0f32;
    let mut dropped = 0;
    for dims in [[2, 3, 64, 96], [1, 3, 80, 80], [1, 3, 72, 100]] {
        let (err, d) = check_network(&model, dims);
        worst = worst.max(err);
        dropped += d;
    }
    if spec.stc.levels > 0 {
        assert!(
            dropped > 0,
            "{what}: STC dropped no anchor; the test is too weak"
        );
    }
    eprintln!("{what}: max relative error {worst:e}, {dropped} anchors dropped by STC");
    worst
}

#[test]
fn tiny_srn_with_rfe_matches_burn_and_its_predictions() {
    let _stream = crate::testing::seeded(19);
    check_sizes(&spec(|_| {}), "SRN (RFE, STC 2, STR 2)");
}

#[test]
fn srn_without_rfe_with_overlapping_steps_matches_burn() {
    let _stream = crate::testing::seeded(20);
    // STC on P3..P5 and STR on P5..P7: P5's first step runs both branches.
    let spec = spec(|s| {
        s.head.rfe = false;
        s.stc.levels = 3;
        s.two_step_regression.levels = 3;
    });
    check_sizes(&spec, "SRN (no RFE, STC 3, STR 3)");
}

#[test]
fn srn_with_only_one_step_kind_or_none_matches_burn() {
    let _stream = crate::testing::seeded(21);
    let only_stc = spec(|s| s.two_step_regression.levels = 0);
    check_sizes(&only_stc, "SRN (STC 2, no STR)");
    let only_str = spec(|s| s.stc.levels = 0);
    check_sizes(&only_str, "SRN (no STC, STR 2)");
    let neither = spec(|s| {
        s.stc.levels = 0;
        s.two_step_regression.levels = 0;
    });
    check_sizes(&neither, "SRN (no first step)");
}

fn options() -> ExportOptions {
    ExportOptions {
        opset: crate::DEFAULT_OPSET,
        input: InputConvention::Normalised(InputNormalisation {
            mean: [123.675, 116.28, 103.53],
            std: [58.395, 57.12, 57.375],
            order: PlaneOrder::Rgb,
        }),
        postprocess: None,
        metadata: Vec::new(),
    }
}

#[test]
fn export_model_reads_every_parameter_and_its_raw_outputs_match() {
    let _stream = crate::testing::seeded(22);
    for (what, spec) in [
        ("srn", spec(|_| {})),
        (
            "no first step",
            spec(|s| {
                s.stc.levels = 0;
                s.two_step_regression.levels = 0;
            }),
        ),
    ] {
        let model = model(&spec);
        let proto = export_model(&model, &options()).unwrap_or_else(|e| panic!("{what}: {e}"));
        let graph = proto.graph.as_ref().unwrap();
        let copies = |prefix: &str| {
            graph
                .initializer
                .iter()
                .filter(|t| t.name.starts_with(prefix))
                .count()
        };
        // The head runs on 5 levels of each step, with one copy of its weights.
        assert_eq!(copies("head.cls_branch.predictor.weight"), 1, "{what}");
        assert_eq!(copies("head.box_branch.conv_in.norm.gamma"), 1, "{what}");
        let dims = [2, 3, 72, 100];
        let (x, values) = random_images(dims);
        let outputs = model.forward(x);
        let got = run_tract(&proto, &values, &dims);
        let raw = expected_raw(&outputs);
        let graph_outputs: Vec<&str> = proto
            .graph
            .as_ref()
            .unwrap()
            .output
            .iter()
            .map(|o| o.name.as_str())
            .collect();
        assert_eq!(
            graph_outputs,
            raw.iter().map(|(n, _)| *n).collect::<Vec<_>>()
        );
        for (i, (name, want)) in raw.iter().enumerate() {
            let want_dims = want.dims().to_vec();
            compare(&got[i], &want_dims, &host_f32(want.clone()), name, dims);
        }
    }
}
