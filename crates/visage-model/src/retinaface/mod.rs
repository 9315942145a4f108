//! RetinaFace (Deng et al.) as Pytorch_Retinaface: its network in the port's exact module
//! layout ([`net`]: backbone, three-level FPN, SSH, 1×1 class / box / landmark heads), its
//! priors (squares of `min_sizes` from the shared anchor generator), `match()` and
//! `MultiBoxLoss` ([`loss`]), and `detect.py`'s decoding rules
//! ([`DecodeRules::PYTORCH_RETINAFACE`]) for the one post-processing. Its checkpoints load
//! through [`DetectorFamily::load_reference_weights`].
//!
//! With `[model.mesh]`, the dense 3D branch ([`mesh`]) predicts a coloured face mesh, camera
//! and light per anchor and trains with the rendered pixels' `L_pixel`.
//!
//! Files: [`spec`] (`[model]` with `architecture = "retinaface"` and its components),
//! [`net`], [`loss`], [`mesh`].

pub mod formula;
pub mod loss;
pub mod mesh;
pub mod net;
mod scores;
pub mod spec;

use std::path::PathBuf;

use burn::prelude::*;
use visage_anchors::{AnchorGenerator, MaxIouAssigner};
use visage_backbone::weights::{load_state_dict, StateDict, TorchLayout};
use visage_boxes::BoxCoder;
use visage_kernels::KernelBackend;

pub use loss::{retinaface_loss, RetinaFaceLoss, RetinaFaceTargets};
pub use mesh::{FittedMesh, MeshBranch, MeshSpec};
pub use net::{
    RetinaFaceNet, RetinaFaceNetConfig, RetinaFaceOutputs, RETINAFACE_MNET, RETINAFACE_R50,
    RETINAFACE_STRIDES,
};
pub use spec::{RetinaFaceAssignSpec, RetinaFaceLossSpec, RetinaFaceSpec};

use mesh::fit::{fit_meshes, render_fits};
use mesh::pixel_loss::{pixel_loss, PixelLossInputs};
use mesh::values_per_anchor;
use scores::face_probabilities;

use crate::common::pixels::PixelNormalisation;
use crate::common::postprocess::{
    host, AnchorPredictions, BatchAnchors, DecodeRules, DenseRows, MeshParams,
};
use crate::common::targets::FaceTargets;
use crate::error::ModelError;
use crate::family::{DetectorFamily, FaceLoss};
use crate::spec::BackboneSpec;

/// Everything about a RetinaFace that has no weights.
#[derive(Debug, Clone)]
pub(crate) struct RetinaFacePolicy {
    spec: RetinaFaceSpec,
    /// The port's `PriorBox`: squares of `min_sizes` centred on each cell, in its order.
    priors: AnchorGenerator,
    assigner: MaxIouAssigner,
    coder: BoxCoder,
    /// How the input was normalised: the mesh branch's pixel loss undoes it.
    pixels: Option<PixelNormalisation>,
}

/// RetinaFace (Pytorch_Retinaface's network) and its policy.
#[derive(Module, Debug)]
pub struct RetinaFace<B: Backend> {
    /// The network, in Pytorch_Retinaface's layout.
    pub net: RetinaFaceNet<B>,
    /// The dense 3D branch (`[model.mesh]`): per-level head and mesh decoder.
    pub mesh: Option<MeshBranch<B>>,
    #[module(skip)]
    pub(crate) policy: RetinaFacePolicy,
}

impl<B: KernelBackend> RetinaFace<B> {
    /// The key layout of Pytorch_Retinaface checkpoints for this backbone.
    pub fn torch_layout(&self) -> &'static TorchLayout {
        match self.policy.spec.backbone {
            BackboneSpec::Mobilenet(_) => &RETINAFACE_MNET,
            BackboneSpec::Resnet(_) => &RETINAFACE_R50,
        }
    }

    /// The priors' generator (Pytorch_Retinaface's `PriorBox`: per level the stride and the
    /// `min_sizes` squares), e.g. for generating the priors elsewhere (an ONNX graph).
    pub fn prior_generator(&self) -> &AnchorGenerator {
        &self.policy.priors
    }

    /// The box and landmark coder (the spec's variances).
    pub fn coder(&self) -> BoxCoder {
        self.policy.coder
    }

    /// The priors of `outputs` (xyxy pixels of the input), in the port's order: level, y, x,
    /// then each `min_sizes` side.
    pub fn priors(&self, outputs: &RetinaFaceOutputs<B>) -> Vec<visage_boxes::BoxXyxy> {
        self.policy.priors.generate(&outputs.feature_sizes).boxes
    }

    /// The training loss of `outputs` against the faces of each image (boxes and landmarks
    /// in input pixels; `faces.len()` = batch size), part by part.
    pub fn loss_parts(
        &self,
        outputs: &RetinaFaceOutputs<B>,
        faces: &[FaceTargets],
    ) -> Result<RetinaFaceLoss<B>, ModelError> {
        let [batch, n, _] = outputs.class_logits.dims();
        if faces.len() != batch {
            return Err(ModelError::InvalidInput(format!(
                "{} target lists for a batch of {batch} images",
                faces.len()
            )));
        }
        let priors = self.priors(outputs);
        if priors.len() != n {
            return Err(ModelError::InvalidInput(format!(
                "{} priors for {n} outputs per image",
                priors.len()
            )));
        }
        let targets =
            RetinaFaceTargets::build(&priors, faces, &self.policy.assigner, &self.policy.coder)?;
        let loss = retinaface_loss(outputs, &targets, &self.policy.spec.loss);
        let (Some(branch), Some(spec)) = (&self.mesh, &self.policy.spec.mesh) else {
            return Ok(loss);
        };
        let (Some(dense), Some(images)) = (&outputs.dense, &outputs.images) else {
            return Err(ModelError::InvalidInput(
                "the mesh branch's outputs are missing (outputs not from RetinaFace::forward)"
                    .into(),
            ));
        };
        let Some(pixels) = &self.policy.pixels else {
            return Err(ModelError::InvalidInput(
                "the mesh branch's pixel loss needs the input normalisation \
                 (DetectorFamily::with_input_normalisation)"
                    .into(),
            ));
        };
        let inputs = PixelLossInputs {
            dense,
            images,
            positives: &targets.positive_index,
            priors: &priors,
            pixels,
        };
        let pixel = pixel_loss(branch, spec, &inputs);
        let rendered = targets.positive_index.len().min(spec.max_faces);
        Ok(loss.with_pixel(pixel, spec.pixel_weight, rendered))
    }
}

impl<B: KernelBackend> DetectorFamily<B> for RetinaFace<B> {
    type Spec = RetinaFaceSpec;
    type Outputs = RetinaFaceOutputs<B>;

    fn new(spec: &RetinaFaceSpec, device: &B::Device) -> Result<Self, ModelError> {
        let components = spec.components()?;
        let mesh = match &spec.mesh {
            Some(mesh) => Some(MeshBranch::new(
                mesh,
                RETINAFACE_STRIDES.len(),
                spec.out_channels,
                spec.anchors_per_location(),
                device,
            )?),
            None => None,
        };
        Ok(Self {
            net: components.net.init(device),
            mesh,
            policy: RetinaFacePolicy {
                spec: spec.clone(),
                priors: components.priors,
                assigner: components.assigner,
                coder: components.coder,
                pixels: None,
            },
        })
    }

    fn spec(&self) -> &RetinaFaceSpec {
        &self.policy.spec
    }

    fn fold_norms(self) -> Self {
        let net = self.net;
        Self {
            net: RetinaFaceNet {
                body: net.body.fold_norms(),
                fpn: net.fpn.fold_norms(),
                ssh1: net.ssh1.fold_norms(),
                ssh2: net.ssh2.fold_norms(),
                ssh3: net.ssh3.fold_norms(),
                ..net
            },
            ..self
        }
    }

    /// The backbone's initial weights and, with `[model.mesh]`, the mesh decoder's
    /// autoencoder pre-training (`[model.mesh.pretrain]`).
    fn load_initial_backbone_weights(mut self) -> Result<(Self, Option<PathBuf>), ModelError> {
        let (body, file) = self.policy.spec.backbone.load_initial(self.net.body)?;
        self.net.body = body;
        if let (Some(branch), Some(spec)) = (self.mesh.take(), &self.policy.spec.mesh) {
            let (branch, _) = branch.pretrain_decoder(spec, |_, _| {})?;
            self.mesh = Some(branch);
        }
        Ok((self, file))
    }

    fn with_input_normalisation(mut self, pixels: PixelNormalisation) -> Self {
        self.policy.pixels = Some(pixels);
        self
    }

    fn face_meshes(&self, params: &[&MeshParams]) -> Vec<FittedMesh> {
        match (&self.mesh, &self.policy.spec.mesh) {
            (Some(branch), Some(spec)) => fit_meshes(
                branch,
                spec,
                params,
                &self.net.class_head[0].weight.device(),
            ),
            _ => Vec::new(),
        }
    }

    fn render_face_meshes(&self, params: &[&MeshParams], size: usize) -> Vec<Vec<f32>> {
        match (&self.mesh, &self.policy.spec.mesh) {
            (Some(branch), Some(spec)) => render_fits(
                branch,
                spec,
                params,
                size,
                &self.net.class_head[0].weight.device(),
            ),
            _ => Vec::new(),
        }
    }

    /// Loads every weight from a Pytorch_Retinaface state dict (`mobilenet0.25_Final.pth`,
    /// `Resnet50_Final.pth`; [`StateDict::read`] has removed the `module.` prefix).
    fn load_reference_weights(mut self, dict: &StateDict) -> Result<Self, ModelError> {
        let layout = self.torch_layout();
        self.net = load_state_dict::<B, _>(self.net, dict, layout)?;
        Ok(self)
    }

    /// Runs the network (see [`RetinaFaceNet::forward`] for shapes) and, with `[model.mesh]`,
    /// the dense branch's head (`dense`: `[B, N, code + 16]`), keeping the input for the
    /// pixel loss.
    fn forward(&self, images: Tensor<B, 4>) -> RetinaFaceOutputs<B> {
        let Some(branch) = &self.mesh else {
            return self.net.forward(images);
        };
        let (mut outputs, features) = self.net.forward_with_features(images.clone());
        let per_anchor = self.policy.spec.mesh.as_ref().map_or(0, values_per_anchor);
        outputs.dense = Some(branch.forward(&features, per_anchor));
        outputs.images = Some(images);
        outputs
    }

    fn loss(
        &self,
        outputs: &RetinaFaceOutputs<B>,
        faces: &[FaceTargets],
    ) -> Result<FaceLoss<B>, ModelError> {
        Ok(self.loss_parts(outputs, faces)?.into())
    }

    /// Softmax face probabilities, box and landmark deltas and the priors, under
    /// `detect.py`'s decoding rules.
    ///
    /// # Panics
    /// If the outputs' prior count differs from the priors of the spec's `min_sizes`.
    fn predictions(&self, outputs: &RetinaFaceOutputs<B>) -> AnchorPredictions {
        let [batch, n, _] = outputs.boxes.dims();
        let priors = self.priors(outputs);
        assert_eq!(
            priors.len(),
            n,
            "RetinaFace: {n} outputs for {} priors",
            priors.len()
        );
        AnchorPredictions {
            batch,
            anchors_per_image: n,
            scores: face_probabilities(&host(outputs.class_logits.clone())),
            box_deltas: host(outputs.boxes.clone()),
            landmark_deltas: Some(host(outputs.landmarks.clone())),
            dense: outputs.dense.as_ref().map(|dense| DenseRows {
                per_anchor: dense.dims()[2],
                values: host(dense.clone()),
            }),
            anchors: BatchAnchors::Shared(priors),
            coder: self.policy.coder,
            rules: DecodeRules::PYTORCH_RETINAFACE,
            input_size: outputs.input_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::TestSpec;
    use burn::backend::{Autodiff, Flex};
    use burn::optim::{GradientsParams, Optimizer, SgdConfig};

    type Ad = Autodiff<Flex>;

    fn spec() -> RetinaFaceSpec {
        toml::from_str(
            r#"
            out_channels = 16
            [backbone.mobilenet]
            width_multiplier = 0.25
            "#,
        )
        .unwrap()
    }

    fn faces() -> Vec<FaceTargets> {
        let marks = |x: f32, y: f32| {
            Some([
                [x + 4.0, y + 5.0],
                [x + 12.0, y + 5.0],
                [x + 8.0, y + 9.0],
                [x + 5.0, y + 13.0],
                [x + 11.0, y + 13.0],
            ])
        };
        vec![
            FaceTargets {
                boxes: vec![[8.0, 8.0, 24.0, 26.0], [36.0, 30.0, 60.0, 58.0]],
                landmarks: vec![marks(8.0, 8.0), None],
            },
            FaceTargets {
                boxes: vec![[2.0, 20.0, 34.0, 54.0]],
                landmarks: vec![marks(10.0, 25.0)],
            },
        ]
    }

    #[test]
    fn output_shapes_per_level_and_prior_count() {
        let device = Default::default();
        let model = RetinaFace::<Flex>::new(&spec(), &device).unwrap();
        let out = model.forward(Tensor::zeros([2, 3, 72, 40], &device));
        assert_eq!(out.feature_sizes, vec![(9, 5), (5, 3), (3, 2)]);
        let n = (45 + 15 + 6) * 2;
        assert_eq!(out.boxes.dims(), [2, n, 4]);
        assert_eq!(out.class_logits.dims(), [2, n, 2]);
        assert_eq!(out.landmarks.dims(), [2, n, 10]);
        let dets = model.postprocess(&out, &TestSpec::default());
        assert_eq!(dets.len(), 2);
        assert!(dets[0].iter().all(|d| d.landmarks.is_some()));
    }

    #[test]
    fn a_few_sgd_steps_lower_the_loss() {
        let device = Default::default();
        let mut model = RetinaFace::<Ad>::new(&spec(), &device).unwrap();
        let images = Tensor::<Ad, 4>::random(
            [2, 3, 64, 64],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let faces = faces();
        let mut optim = SgdConfig::new().init();
        let first = model
            .loss(&model.forward(images.clone()), &faces)
            .unwrap()
            .values()
            .unwrap();
        assert!(first.num_positive >= 3, "{first:?}");
        assert!(first.part("landmark").unwrap() > 0.0);
        let mut last = first.total;
        for _ in 0..6 {
            let parts = model.loss(&model.forward(images.clone()), &faces).unwrap();
            last = parts.values().unwrap().total;
            let grads = GradientsParams::from_grads(parts.total.backward(), &model);
            model = optim.step(0.01, model, grads);
        }
        assert!(last < first.total, "{} -> {last}", first.total);
    }

    #[test]
    fn mismatched_targets_are_an_error() {
        let device = Default::default();
        let model = RetinaFace::<Flex>::new(&spec(), &device).unwrap();
        let out = model.forward(Tensor::zeros([2, 3, 32, 32], &device));
        assert!(matches!(
            model.loss(&out, &[FaceTargets::default()]),
            Err(ModelError::InvalidInput(_))
        ));
    }

    #[test]
    fn priors_follow_pytorch_retinaface_order() {
        let device = Default::default();
        let model = RetinaFace::<Flex>::new(&spec(), &device).unwrap();
        let p = model
            .policy
            .priors
            .generate(&[(2, 3), (1, 2), (1, 1)])
            .boxes;
        assert_eq!(p.len(), (6 + 2 + 1) * 2);
        // Level 0, y 0, x 0: sides 16 then 32 around (4, 4).
        assert_eq!(p[0], [-4.0, -4.0, 12.0, 12.0]);
        assert_eq!(p[1], [-12.0, -12.0, 20.0, 20.0]);
        // Level 0, y 0, x 1: centre (12, 4).
        assert_eq!(p[2], [4.0, -4.0, 20.0, 12.0]);
        // Level 0, y 1, x 0: centre (4, 12).
        assert_eq!(p[6], [-4.0, 4.0, 12.0, 20.0]);
        // Level 2: side 256 around (16, 16).
        assert_eq!(p[16], [-112.0, -112.0, 144.0, 144.0]);
    }

    #[test]
    fn retinaface_loss_has_three_named_parts_and_detections_landmarks() {
        let device = Default::default();
        let model = RetinaFace::<Flex>::new(&spec(), &device).unwrap();
        let out = model.forward(Tensor::zeros([1, 3, 64, 64], &device));
        let faces = [FaceTargets {
            boxes: vec![[10.0, 10.0, 40.0, 44.0]],
            landmarks: vec![None],
        }];
        let v = model.loss(&out, &faces).unwrap().values().unwrap();
        let names: Vec<&str> = v.parts.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["cls", "box", "landmark"]);
        assert_eq!(v.part("landmark"), Some(0.0));
        let dets = model.postprocess(&out, &TestSpec::default());
        assert!(dets[0].iter().all(|d| d.landmarks.is_some()));
    }

    #[test]
    fn pytorch_retinaface_weights_load_and_keys_keep_the_net_prefix() {
        use visage_backbone::weights::{formula_state_dict, parameter_shapes};
        let device = Default::default();
        let model = RetinaFace::<Flex>::new(&spec(), &device).unwrap();
        let dict = formula_state_dict::<Flex, _>(&model.net, model.torch_layout());
        let paths: Vec<String> = parameter_shapes::<Flex, _>(&model)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert!(paths.iter().all(|p| p.starts_with("net.")), "{paths:?}");
        model.load_reference_weights(&dict).unwrap();
    }
}
