//! The mesh branch inside RetinaFace: outputs, the pixel loss as a named part, the frozen
//! decoder, the input normalisation it needs, and the meshes of detections.

use burn::backend::{Autodiff, Flex};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Distribution;
use visage_kernels::KernelBackend;

use crate::common::pixels::PixelNormalisation;
use crate::common::targets::FaceTargets;
use crate::family::DetectorFamily;
use crate::retinaface::{RetinaFace, RetinaFaceSpec};
use crate::spec::TestSpec;
use crate::tiny::{MESH, RETINAFACE};

type Ad = Autodiff<Flex>;

const UNIT: PixelNormalisation = PixelNormalisation {
    mean: [127.5; 3],
    std: [127.5; 3],
    bgr: false,
};

fn spec(extra: &str) -> RetinaFaceSpec {
    let mesh = MESH.replace("[mesh]\n", &format!("[mesh]\n{extra}"));
    let text = format!("{RETINAFACE}{mesh}").replace("architecture = \"retinaface\"", "");
    toml::from_str(&text).unwrap_or_else(|e| panic!("{e}"))
}

fn faces() -> Vec<FaceTargets> {
    vec![FaceTargets {
        boxes: vec![[8.0, 8.0, 40.0, 44.0]],
        landmarks: vec![None],
    }]
}

#[test]
fn dense_outputs_cover_every_anchor_and_the_loss_has_a_pixel_part() {
    let device = Default::default();
    let model = RetinaFace::<Flex>::new(&spec(""), &device)
        .unwrap()
        .with_input_normalisation(UNIT);
    let images = Tensor::<Flex, 4>::random([1, 3, 48, 48], Distribution::Normal(0.0, 1.0), &device);
    let out = model.forward(images);
    let n = out.class_logits.dims()[1];
    assert_eq!(out.dense.as_ref().unwrap().dims(), [1, n, 16 + 16]);
    let values = model.loss(&out, &faces()).unwrap().values().unwrap();
    let names: Vec<&str> = values.parts.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["cls", "box", "landmark", "pixel"]);
    let pixel = values.part("pixel").unwrap();
    // Mean L1 over RGB in [0, 1]: between 0 and 3 per pixel.
    assert!(pixel > 0.0 && pixel < 3.0, "{pixel}");
    let without = values.total - 0.01 * pixel;
    let base = 2.0 * values.part("box").unwrap() + values.part("cls").unwrap();
    assert!((without - base).abs() < 1e-4, "{without} vs {base}");
}

#[test]
fn the_pixel_loss_needs_the_input_normalisation() {
    let device = Default::default();
    let model = RetinaFace::<Flex>::new(&spec(""), &device).unwrap();
    let out = model.forward(Tensor::zeros([1, 3, 48, 48], &device));
    let err = model.loss(&out, &faces()).unwrap_err().to_string();
    assert!(err.contains("normalisation"), "{err}");
}

/// Whether any decoder parameter received a gradient from the total loss.
fn decoder_gets_gradients(extra: &str) -> (bool, bool) {
    let device = Default::default();
    let model = RetinaFace::<Ad>::new(&spec(extra), &device)
        .unwrap()
        .with_input_normalisation(UNIT);
    let images = Tensor::<Ad, 4>::random([1, 3, 48, 48], Distribution::Normal(0.0, 1.0), &device);
    let loss = model.loss(&model.forward(images), &faces()).unwrap();
    let grads = GradientsParams::from_grads(loss.total.backward(), &model);
    let branch = model.mesh.as_ref().unwrap();
    let mut decoder_ids = Vec::new();
    branch.decoder.visit(&mut IdCollector(&mut decoder_ids));
    let mut head_ids = Vec::new();
    for conv in &branch.head {
        conv.visit(&mut IdCollector(&mut head_ids));
    }
    let has = |ids: &[burn::module::ParamId]| {
        ids.iter().any(|id| {
            grads.get::<Flex, 4>(*id).is_some()
                || grads.get::<Flex, 3>(*id).is_some()
                || grads.get::<Flex, 2>(*id).is_some()
                || grads.get::<Flex, 1>(*id).is_some()
        })
    };
    (has(&decoder_ids), has(&head_ids))
}

struct IdCollector<'a>(&'a mut Vec<burn::module::ParamId>);

impl<B: KernelBackend> burn::module::ModuleVisitor<B> for IdCollector<'_> {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
        self.0.push(param.id);
    }
}

#[test]
fn a_frozen_decoder_gets_no_gradient_but_the_code_does() {
    let (decoder, head) = decoder_gets_gradients("");
    assert!(!decoder, "frozen decoder updated");
    assert!(
        head,
        "no gradient reached the head through the frozen decoder"
    );
    let (decoder, head) = decoder_gets_gradients("freeze_decoder = false\n");
    assert!(decoder && head);
}

#[test]
fn detections_carry_mesh_parameters_and_their_meshes_sit_in_the_anchor() {
    let device = Default::default();
    let model = RetinaFace::<Flex>::new(&spec(""), &device).unwrap();
    let out = model.forward(Tensor::zeros([2, 3, 64, 64], &device));
    let test = TestSpec {
        score_threshold: 0.0,
        max_detections: 5,
        ..TestSpec::default()
    };
    let dets = model.postprocess(&out, &test);
    assert_eq!(dets.len(), 2);
    let params: Vec<_> = dets[0].iter().map(|d| d.mesh.as_ref().unwrap()).collect();
    assert!(!params.is_empty());
    assert!(params.iter().all(|p| p.values.len() == 32));
    let meshes = model.face_meshes(&params);
    assert_eq!(meshes.len(), params.len());
    for (mesh, p) in meshes.iter().zip(&params) {
        assert_eq!(mesh.vertices.len(), 468);
        assert_eq!(mesh.anchor, p.anchor);
        let [x1, y1, x2, y2] = p.anchor;
        // A near-zero head: the default camera sees the decoder's face inside the crop.
        for v in &mesh.vertices {
            assert!(
                v[0] > x1 && v[0] < x2 && v[1] > y1 && v[1] < y2,
                "{v:?} {:?}",
                p.anchor
            );
            assert!(v[2] > 0.0);
        }
    }
    let renders = model.render_face_meshes(&params, 24);
    assert_eq!(renders.len(), params.len());
    assert!(renders.iter().all(|r| r.len() == 24 * 24 * 3));
    assert!(renders[0].iter().any(|&v| v > 0.0), "nothing rendered");
}
