//! [`RetinaFace`]: the RetinaFace network with its weight-free policy (priors, matching,
//! coding, loss and test settings), built from a [`RetinaFaceSpec`], so that `forward`,
//! `loss` and `postprocess` need nothing else.

use std::path::PathBuf;

use burn::prelude::*;
use visage_anchors::MaxIouAssigner;
use visage_backbone::weights::{load_state_dict, StateDict, TorchLayout};
use visage_boxes::BoxCoder;

use crate::error::ModelError;
use crate::postprocess::Detection;
use crate::retinaface::{RetinaFaceNet, RetinaFaceOutputs, RETINAFACE_MNET, RETINAFACE_R50};
use crate::retinaface_detect::{retinaface_detect, retinaface_priors, RetinaFaceTest};
use crate::retinaface_loss::{retinaface_loss, RetinaFaceLossParts, RetinaFaceTargets};
use crate::retinaface_spec::RetinaFaceSpec;
use crate::spec::{BackboneSpec, TestSpec};
use crate::targets::FaceTargets;

/// Everything about a RetinaFace that has no weights.
#[derive(Debug, Clone)]
pub(crate) struct RetinaFacePolicy {
    spec: RetinaFaceSpec,
    test: TestSpec,
    assigner: MaxIouAssigner,
    coder: BoxCoder,
}

/// RetinaFace (Pytorch_Retinaface's network) and its policy.
#[derive(Module, Debug)]
pub struct RetinaFace<B: Backend> {
    /// The network, in Pytorch_Retinaface's layout.
    pub net: RetinaFaceNet<B>,
    #[module(skip)]
    pub(crate) policy: RetinaFacePolicy,
}

impl<B: Backend> RetinaFace<B> {
    /// Builds a freshly initialised RetinaFace from a spec (validated here).
    pub fn new(
        spec: &RetinaFaceSpec,
        test: &TestSpec,
        device: &B::Device,
    ) -> Result<Self, ModelError> {
        let net = spec.net_config()?.init(device);
        test.validate()?;
        let a = &spec.assign;
        Ok(Self {
            net,
            policy: RetinaFacePolicy {
                spec: spec.clone(),
                test: test.clone(),
                assigner: MaxIouAssigner {
                    positive_iou: a.match_iou,
                    negative_iou: a.match_iou,
                    force_best: a.force_best,
                    force_best_min_iou: a.force_best_min_iou,
                },
                coder: BoxCoder {
                    variances: spec.variances,
                },
            },
        })
    }

    /// The spec this model was built from.
    pub fn spec(&self) -> &RetinaFaceSpec {
        &self.policy.spec
    }

    /// The `[test]` settings.
    pub fn test_spec(&self) -> &TestSpec {
        &self.policy.test
    }

    /// Replaces the `[test]` settings (e.g. from `visage detect` flags).
    pub fn set_test_spec(&mut self, test: TestSpec) -> Result<(), ModelError> {
        test.validate()?;
        self.policy.test = test;
        Ok(())
    }

    /// `detect.py`'s settings: priors and variances from the spec; score threshold (strictly
    /// above), top-k, NMS threshold and keep from `[test]`.
    pub fn test_settings(&self) -> RetinaFaceTest {
        self.test_settings_for(&self.policy.test)
    }

    /// `detect.py`'s settings from the given `[test]` settings.
    fn test_settings_for(&self, test: &TestSpec) -> RetinaFaceTest {
        let spec = &self.policy.spec;
        RetinaFaceTest {
            min_sizes: spec.min_sizes.clone(),
            steps: spec.steps(),
            variances: spec.variances,
            score_threshold: test.score_threshold,
            top_k: test.pre_nms_top_k,
            nms_threshold: test.nms_threshold,
            keep: test.max_detections,
        }
    }

    /// The key layout of Pytorch_Retinaface checkpoints for this backbone.
    pub fn torch_layout(&self) -> &'static TorchLayout {
        match self.policy.spec.backbone {
            BackboneSpec::Mobilenet(_) => &RETINAFACE_MNET,
            BackboneSpec::Resnet(_) => &RETINAFACE_R50,
        }
    }

    /// Loads every weight from a Pytorch_Retinaface state dict (`mobilenet0.25_Final.pth`,
    /// `Resnet50_Final.pth`; [`StateDict::read`] has removed the `module.` prefix).
    ///
    /// # Errors
    /// [`ModelError::Weights`] listing every missing, unexpected or mis-shaped key.
    pub fn load_pytorch_retinaface(mut self, dict: &StateDict) -> Result<Self, ModelError> {
        let layout = self.torch_layout();
        self.net = load_state_dict::<B, _>(self.net, dict, layout)?;
        Ok(self)
    }

    /// Loads the backbone's initial weights from `model.backbone.<kind>.weights`, if set.
    pub fn load_initial_backbone_weights(mut self) -> Result<(Self, Option<PathBuf>), ModelError> {
        let Some(path) = self.policy.spec.backbone.weights().map(|p| p.to_path_buf()) else {
            return Ok((self, None));
        };
        self.net.body = self.net.body.load_file(&path)?;
        Ok((self, Some(path)))
    }

    /// Runs the network (see [`RetinaFaceNet::forward`] for shapes).
    pub fn forward(&self, images: Tensor<B, 4>) -> RetinaFaceOutputs<B> {
        self.net.forward(images)
    }

    /// The training loss of `outputs` against the faces of each image (boxes and landmarks
    /// in input pixels; `faces.len()` = batch size).
    pub fn loss(
        &self,
        outputs: &RetinaFaceOutputs<B>,
        faces: &[FaceTargets],
    ) -> Result<RetinaFaceLossParts<B>, ModelError> {
        let [batch, n, _] = outputs.class_logits.dims();
        if faces.len() != batch {
            return Err(ModelError::InvalidInput(format!(
                "{} target lists for a batch of {batch} images",
                faces.len()
            )));
        }
        let spec = &self.policy.spec;
        let priors = retinaface_priors(&outputs.feature_sizes, &spec.min_sizes, &spec.steps());
        if priors.len() != n {
            return Err(ModelError::InvalidInput(format!(
                "{} priors for {n} outputs per image",
                priors.len()
            )));
        }
        let targets =
            RetinaFaceTargets::build(&priors, faces, &self.policy.assigner, &self.policy.coder)?;
        Ok(retinaface_loss(outputs, &targets, &spec.loss))
    }

    /// Detections per image, best first, with landmarks (pixels of the network input).
    pub fn postprocess(&self, outputs: &RetinaFaceOutputs<B>) -> Vec<Vec<Detection>> {
        self.postprocess_with(outputs, &self.policy.test)
    }

    /// [`postprocess`](Self::postprocess) with other `[test]` settings.
    pub fn postprocess_with(
        &self,
        outputs: &RetinaFaceOutputs<B>,
        test: &TestSpec,
    ) -> Vec<Vec<Detection>> {
        retinaface_detect(outputs, &self.test_settings_for(test))
            .into_iter()
            .map(|image| image.into_iter().map(Detection::from).collect())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let model = RetinaFace::<Flex>::new(&spec(), &TestSpec::default(), &device).unwrap();
        let out = model.forward(Tensor::zeros([2, 3, 72, 40], &device));
        assert_eq!(out.feature_sizes, vec![(9, 5), (5, 3), (3, 2)]);
        let n = (45 + 15 + 6) * 2;
        assert_eq!(out.boxes.dims(), [2, n, 4]);
        assert_eq!(out.class_logits.dims(), [2, n, 2]);
        assert_eq!(out.landmarks.dims(), [2, n, 10]);
        let dets = model.postprocess(&out);
        assert_eq!(dets.len(), 2);
        assert!(dets[0].iter().all(|d| d.landmarks.is_some()));
    }

    #[test]
    fn a_few_sgd_steps_lower_the_loss() {
        let device = Default::default();
        let mut model = RetinaFace::<Ad>::new(&spec(), &TestSpec::default(), &device).unwrap();
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
        let model = RetinaFace::<Flex>::new(&spec(), &TestSpec::default(), &device).unwrap();
        let out = model.forward(Tensor::zeros([2, 3, 32, 32], &device));
        assert!(matches!(
            model.loss(&out, &[FaceTargets::default()]),
            Err(ModelError::InvalidInput(_))
        ));
    }
}
