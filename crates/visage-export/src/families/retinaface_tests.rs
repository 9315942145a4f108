//! RetinaFace's exported network against Burn's forward, in tract: the raw outputs, the face
//! probabilities and the in-graph priors (exactly `RetinaFace::priors`), with MobileNet-0.25
//! and ResNet-18 backbones; and the whole `export_model` without post-processing.

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::activation::softmax;
use visage_model::{DetectorFamily, RetinaFace, RetinaFaceOutputs, RetinaFaceSpec};

use crate::families::{ExportFamily, GraphAnchors};
use crate::graph::host_f32;
use crate::layers::backbone::tests::{
    calibrated, graph_with_images, model_of, output, perturbed, random_images, Ad,
};
use crate::testing::{max_relative_error, run_tract, RunOutput};
use crate::{export_model, ExportOptions, InputConvention, InputNormalisation, PlaneOrder};

/// Input sizes checked: two plain, one odd (levels of 9, 5, 3 × 13, 7, 4), one with batch 2.
const SIZES: [[usize; 4]; 3] = [[1, 3, 64, 96], [2, 3, 80, 80], [1, 3, 72, 100]];

/// RetinaFace on a ResNet-18 at 1/8 width.
const RESNET_RETINAFACE: &str = r#"
architecture = "retinaface"
out_channels = 16
[backbone.resnet]
depth = 18
width_multiplier = 0.125
"#;

/// A RetinaFace of `spec` with random norms, calibrated (see [`calibrated`]).
fn model(spec: &RetinaFaceSpec) -> RetinaFace<Flex> {
    let model = RetinaFace::<Ad>::new(spec, &Default::default()).unwrap();
    calibrated(model, |m, x| {
        m.forward(x);
    })
}

/// The raw outputs in export order and the face probabilities, as host values.
fn expected(outputs: &RetinaFaceOutputs<Flex>) -> [(Vec<usize>, Vec<f32>); 4] {
    let [n, a, _] = outputs.class_logits.dims();
    let scores = softmax(outputs.class_logits.clone(), 2)
        .narrow(2, 1, 1)
        .reshape([n, a]);
    let [b, c, l] = [&outputs.boxes, &outputs.class_logits, &outputs.landmarks]
        .map(|t| (t.dims().to_vec(), host_f32(t.clone())));
    [b, c, l, (vec![n, a], host_f32(scores))]
}

/// Per output of [`expected`], the tolerance: 1e-4, or 4× how far Burn's own output moves
/// under a 1e-6 relative perturbation of `x` where that is larger (untrained networks with
/// random frozen statistics amplify f32 rounding; see the backbone tests).
fn tolerances(
    model: &RetinaFace<Flex>,
    x: &Tensor<Flex, 4>,
    clean: &[(Vec<usize>, Vec<f32>); 4],
) -> [f32; 4] {
    let moved = expected(&model.forward(perturbed(x)));
    std::array::from_fn(|i| f32::max(1e-4, 4.0 * max_relative_error(&moved[i].1, &clean[i].1)))
}

/// Checks the network at `dims`; returns the largest relative error of the raw outputs and
/// scores.
fn check_network(model: &RetinaFace<Flex>, dims: [usize; 4]) -> f32 {
    let (x, values) = random_images(dims);
    let outputs = model.forward(x.clone());
    let want = expected(&outputs);
    let tolerance = tolerances(model, &x, &want);
    let (mut g, images) = graph_with_images();
    let network = model.export_network(&mut g, &images).unwrap();
    let names: Vec<&str> = network.raw.iter().map(|r| r.name).collect();
    assert_eq!(names, ["box_deltas", "class_logits", "landmark_deltas"]);
    for raw in &network.raw {
        output(&mut g, &raw.value, raw.name, 3);
    }
    output(&mut g, &network.decode.scores, "scores", 2);
    let GraphAnchors::Shared(priors) = &network.decode.anchors else {
        panic!("RetinaFace's priors are shared by the batch");
    };
    output(&mut g, priors, "priors", 2);
    output(&mut g, &network.decode.box_deltas, "decode_boxes", 3);
    let landmarks = network.decode.landmark_deltas.as_ref().expect("landmarks");
    output(&mut g, landmarks, "decode_landmarks", 3);
    let got = run_tract(&model_of(g), &values, &dims);

    let what = ["box_deltas", "class_logits", "landmark_deltas", "scores"];
    let mut worst = 0.0f32;
    for (i, (want_dims, want)) in want.iter().enumerate() {
        let err = compare(&got[i], want_dims, want, what[i], dims, tolerance[i]);
        worst = worst.max(err);
    }
    let a = want[3].0[1];
    let want_priors: Vec<f32> = model.priors(&outputs).into_iter().flatten().collect();
    assert_eq!(got[4].dims, [a, 4], "priors at {dims:?}");
    assert_eq!(got[4].values, want_priors, "priors at {dims:?}");
    assert_eq!(got[5], got[0], "decode box deltas are the raw ones");
    assert_eq!(got[6], got[2], "decode landmark deltas are the raw ones");
    assert_eq!(network.decode.coder, model.coder());
    assert_eq!(
        network.decode.rules,
        visage_model::DecodeRules::PYTORCH_RETINAFACE
    );
    worst
}

fn compare(
    got: &RunOutput,
    dims: &[usize],
    want: &[f32],
    what: &str,
    at: [usize; 4],
    tolerance: f32,
) -> f32 {
    assert_eq!(got.dims, dims, "{what} at {at:?}");
    let err = max_relative_error(&got.values, want);
    assert!(
        err <= tolerance,
        "{what} at {at:?}: error {err} > {tolerance}"
    );
    err
}

fn check_every_size(spec: &RetinaFaceSpec, what: &str) {
    let model = model(spec);
    let worst = SIZES
        .into_iter()
        .map(|dims| check_network(&model, dims))
        .fold(0.0, f32::max);
    eprintln!("{what}: max relative error {worst:e}");
}

#[test]
fn mobilenet_retinaface_matches_burn() {
    let _stream = crate::testing::seeded(9);
    check_every_size(
        &visage_model::tiny::retinaface(),
        "RetinaFace MobileNet-0.25",
    );
}

#[test]
fn mobilenet_retinaface_with_frozen_neck_matches_burn() {
    let _stream = crate::testing::seeded(10);
    let text =
        visage_model::tiny::RETINAFACE.replace("out_channels", "frozen_bn = true\nout_channels");
    let visage_model::ModelSpec::RetinaFace(spec) = visage_model::tiny::parse(&text) else {
        panic!("a RetinaFace spec");
    };
    assert!(spec.frozen_bn);
    check_every_size(&spec, "RetinaFace MobileNet-0.25, frozen FPN and SSH");
}

#[test]
fn resnet_retinaface_matches_burn() {
    let _stream = crate::testing::seeded(11);
    let visage_model::ModelSpec::RetinaFace(spec) = visage_model::tiny::parse(RESNET_RETINAFACE)
    else {
        panic!("a RetinaFace spec");
    };
    check_every_size(&spec, "RetinaFace ResNet-18");
}

#[test]
fn export_model_reads_every_parameter_and_its_raw_outputs_match() {
    let _stream = crate::testing::seeded(12);
    let model = model(&visage_model::tiny::retinaface());
    let options = ExportOptions {
        opset: crate::DEFAULT_OPSET,
        input: InputConvention::Normalised(InputNormalisation {
            mean: [104.0, 117.0, 123.0],
            std: [1.0, 1.0, 1.0],
            order: PlaneOrder::Bgr,
        }),
        postprocess: None,
        metadata: Vec::new(),
    };
    let proto = export_model(&model, &options).unwrap();
    let dims = [2, 3, 72, 100];
    let (x, values) = random_images(dims);
    let outputs = model.forward(x);
    let got = run_tract(&proto, &values, &dims);
    assert_eq!(got.len(), 3);
    let names = ["box_deltas", "class_logits", "landmark_deltas"];
    let graph_outputs: Vec<&str> = proto
        .graph
        .as_ref()
        .unwrap()
        .output
        .iter()
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(graph_outputs, names);
    for (i, (want_dims, want)) in expected(&outputs).iter().take(3).enumerate() {
        compare(&got[i], want_dims, want, names[i], dims, 1e-4);
    }
}
