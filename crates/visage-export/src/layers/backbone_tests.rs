//! The backbone exporter against Burn: every level of ResNet-18 (basic blocks), ResNet-50
//! (bottlenecks, a stride-1 projection, frozen stem and `layer1`) and MobileNet-0.25, with
//! trainable batch norm (random affine, statistics calibrated on data) or frozen batch norm
//! (random statistics), run in tract at three sizes. Also the test support other exporters'
//! tests share (random norms, calibration, a test graph and model, perturbed inputs).

use burn::backend::{Autodiff, Flex};
use burn::module::{AutodiffModule, Module, ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::Distribution;
use visage_backbone::{Backbone, BackboneConfig, MobileNetV1Config, ResNetConfig, ResNetDepth};
use visage_kernels::KernelBackend;

use super::backbone;
use crate::graph::{host_f32, Dim, ElemType, Graph, Value};
use crate::proto::{ModelProto, OperatorSetIdProto};
use crate::testing::{max_relative_error, run_tract};

/// The autodiff backend, whose forward updates batch norms' running statistics.
pub(crate) type Ad = Autodiff<Flex>;

/// Forward passes on random images that calibrate the running statistics.
const CALIBRATION_STEPS: usize = 30;

/// `module` (built on [`Ad`]) with every norm's affine randomised ([`randomise_norms`]),
/// the running statistics of its trainable batch norms calibrated by `forward` passes on
/// random `[2, 3, 64, 64]` images (momentum 0.1: the statistics of the data, so activations
/// keep the scale of a trained network), on [`Flex`]. Frozen norms keep random statistics.
pub(crate) fn calibrated<M: AutodiffModule<Ad>>(
    module: M,
    forward: impl Fn(&M, Tensor<Ad, 4>),
) -> M::InnerModule {
    let module = randomise_norms(module);
    for _ in 0..CALIBRATION_STEPS {
        let x = Tensor::random(
            [2, 3, 64, 64],
            Distribution::Normal(0.0, 1.0),
            &Default::default(),
        );
        forward(&module, x);
    }
    module.valid()
}

/// Every rank-1 parameter of a norm or bias (named `weight`, `bias`, `running_mean`,
/// `running_var`) replaced by random values: scales in 0.5..1.5, shifts and means in
/// −0.5..0.5, variances in 0.5..2, so that folding the norms is really tested.
pub(crate) fn randomise_norms<B: KernelBackend, M: Module<B>>(module: M) -> M {
    module.map(&mut RandomiseNorms { path: Vec::new() })
}

struct RandomiseNorms {
    path: Vec<String>,
}

impl<B: KernelBackend> ModuleMapper<B> for RandomiseNorms {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        if D != 1 {
            return param;
        }
        let distribution = match self.path.last().map(String::as_str) {
            Some("weight") => Distribution::Uniform(0.5, 1.5),
            Some("bias" | "running_mean") => Distribution::Uniform(-0.5, 0.5),
            Some("running_var") => Distribution::Uniform(0.5, 2.0),
            _ => return param,
        };
        param.map(|t| Tensor::random(t.shape(), distribution, &t.device()))
    }
}

/// A model holding `g` (written for opset 17).
pub(crate) fn model_of(g: Graph) -> ModelProto {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: g.opset(),
        }],
        producer_name: "visage-test".into(),
        graph: Some(g.finish("test")),
        ..Default::default()
    }
}

/// A graph for opset 17 with the float input `images` `[N, 3, H, W]`.
pub(crate) fn graph_with_images() -> (Graph, Value) {
    let mut g = Graph::new(17);
    let named = |s: &str| Dim::Named(s.to_string());
    let images = g.input(
        "images",
        ElemType::F32,
        &[named("N"), Dim::Fixed(3), named("H"), named("W")],
    );
    (g, images)
}

/// Declares `value` as the float output `name` of rank `rank` (symbolic dims).
pub(crate) fn output(g: &mut Graph, value: &Value, name: &str, rank: usize) {
    let dims: Vec<Dim> = (0..rank)
        .map(|i| Dim::Named(format!("{name}_{i}")))
        .collect();
    g.output(value, name, ElemType::F32, &dims);
}

/// A random `[n, 3, h, w]` input: the Burn tensor and its values.
pub(crate) fn random_images(dims: [usize; 4]) -> (Tensor<Flex, 4>, Vec<f32>) {
    let x = Tensor::<Flex, 4>::random(dims, Distribution::Normal(0.0, 1.0), &Default::default());
    let values = host_f32(x.clone());
    (x, values)
}

/// `x` with every element perturbed by a random relative amount up to 1e-6.
pub(crate) fn perturbed(x: &Tensor<Flex, 4>) -> Tensor<Flex, 4> {
    let noise = Tensor::random(x.dims(), Distribution::Uniform(-1e-6, 1e-6), &x.device());
    x.clone() * (noise + 1.0)
}

/// How far Burn's own levels move when the input is perturbed by a relative 1e-6 (about
/// f32 rounding): a deep untrained network amplifies rounding noise (ResNet-50's C5 ~100×),
/// so its export can differ by that much without being wrong.
fn rounding_sensitivity(net: &Backbone<Flex>, x: &Tensor<Flex, 4>) -> Vec<f32> {
    let perturbed = net.forward(perturbed(x)).into_tensors();
    let clean = net.forward(x.clone()).into_tensors();
    perturbed
        .into_iter()
        .zip(clean)
        .map(|(p, c)| max_relative_error(&host_f32(p), &host_f32(c)))
        .collect()
}

/// Runs `net` in Burn and its export in tract at `dims`; checks every level's element-wise
/// relative error: at most 1e-4, or 4× Burn's own [`rounding_sensitivity`] where that is
/// larger. Returns the largest error.
fn check_backbone(net: &Backbone<Flex>, dims: [usize; 4]) -> f32 {
    let (x, values) = random_images(dims);
    let sensitivity = rounding_sensitivity(net, &x);
    let expected = net.forward(x);
    let (mut g, images) = graph_with_images();
    let levels = backbone(&mut g, &images, net, "backbone").unwrap();
    assert_eq!(
        levels.iter().map(|l| l.stride).collect::<Vec<_>>(),
        expected.strides()
    );
    for (i, l) in levels.iter().enumerate() {
        output(&mut g, &l.value, &format!("level{i}"), 4);
    }
    let got = run_tract(&model_of(g), &values, &dims);
    let mut worst = 0.0f32;
    for (level, (out, want)) in got.iter().zip(expected.into_tensors()).enumerate() {
        assert_eq!(out.dims, want.dims().to_vec(), "level {level} of {dims:?}");
        let err = max_relative_error(&out.values, &host_f32(want));
        let tolerance = f32::max(1e-4, 4.0 * sensitivity[level]);
        assert!(
            err <= tolerance,
            "level {level} of {dims:?}: error {err} (Burn's own rounding sensitivity {})",
            sensitivity[level]
        );
        worst = worst.max(err);
    }
    worst
}

fn check_sizes(config: BackboneConfig) {
    let net = calibrated(config.init::<Ad>(&Default::default()), |net, x| {
        net.forward(x);
    });
    let mut worst = 0.0f32;
    for dims in [[1, 3, 64, 96], [2, 3, 72, 100], [1, 3, 37, 50]] {
        worst = worst.max(check_backbone(&net, dims));
    }
    eprintln!("{config:?}: max relative error {worst:e}");
}

#[test]
fn resnet18_basic_blocks_match_burn_at_every_level() {
    let _stream = crate::testing::seeded(23);
    check_sizes(BackboneConfig::ResNet(
        ResNetConfig::new(ResNetDepth::D18).with_width_multiplier(0.125),
    ));
}

#[test]
fn frozen_resnet18_matches_burn_at_every_level() {
    let _stream = crate::testing::seeded(24);
    check_sizes(BackboneConfig::ResNet(
        ResNetConfig::new(ResNetDepth::D18)
            .with_width_multiplier(0.125)
            .with_frozen_bn(true),
    ));
}

/// Bottlenecks (a stride-1 projection in `layer1`), the stem and `layer1` frozen.
#[test]
fn resnet50_bottlenecks_match_burn_at_every_level() {
    let _stream = crate::testing::seeded(25);
    check_sizes(BackboneConfig::ResNet(
        ResNetConfig::new(ResNetDepth::D50)
            .with_width_multiplier(0.125)
            .with_freeze_stem(true)
            .with_frozen_stages(1),
    ));
}

#[test]
fn mobilenet_025_matches_burn_at_every_level() {
    let _stream = crate::testing::seeded(26);
    check_sizes(BackboneConfig::MobileNet(MobileNetV1Config::new()));
}

#[test]
fn frozen_mobilenet_matches_burn_at_every_level() {
    let _stream = crate::testing::seeded(27);
    check_sizes(BackboneConfig::MobileNet(
        MobileNetV1Config::new().with_frozen_bn(true),
    ));
}
