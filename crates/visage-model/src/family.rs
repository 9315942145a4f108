//! [`FaceModel`]: any architecture a `[model]` table describes, behind one module, so that
//! training, checkpoints, validation and inference are written once.

use std::path::PathBuf;

use burn::prelude::*;
use visage_backbone::weights::StateDict;

use crate::detector::{Detector, RawOutputs};
use crate::error::ModelError;
use crate::loss::LossValues;
use crate::model_spec::{Architecture, ModelSpec};
use crate::postprocess::Detection;
use crate::retinaface::RetinaFaceOutputs;
use crate::retinaface_model::RetinaFace;
use crate::spec::TestSpec;
use crate::srn_model::{Srn, SrnOutputs};
use crate::targets::FaceTargets;

/// A face detector of any architecture. The variant is not part of parameter paths
/// (burn-store skips enum variants): a RetinaNet checkpoint keeps its `backbone.*`,
/// `neck.*`, `head.*` keys; a RetinaFace one has `net.body.*`, `net.fpn.*`, ...
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum FaceModel<B: Backend> {
    /// `architecture = "retinanet"`.
    RetinaNet(Detector<B>),
    /// `architecture = "retinaface"`.
    RetinaFace(RetinaFace<B>),
    /// `architecture = "srn"`.
    Srn(Srn<B>),
}

/// Raw outputs of a batch, per architecture.
#[derive(Debug, Clone)]
pub enum FaceOutputs<B: Backend> {
    /// Face logits and box deltas per anchor.
    RetinaNet(RawOutputs<B>),
    /// Class logits, box and landmark deltas per prior.
    RetinaFace(RetinaFaceOutputs<B>),
    /// Both steps' logits and deltas per anchor.
    Srn(SrnOutputs<B>),
}

/// The loss of one batch: what is minimised and its named parts (differentiable scalars).
#[derive(Debug, Clone)]
pub struct FaceLoss<B: Backend> {
    /// `[1]`: the weighted sum of the parts.
    pub total: Tensor<B, 1>,
    /// Named parts before their weights, e.g. `cls`, `box`, `landmark`.
    pub parts: Vec<(&'static str, Tensor<B, 1>)>,
    /// Positive anchors in the batch.
    pub num_positive: usize,
}

impl<B: Backend> FaceLoss<B> {
    /// Reads the scalars back to the host; errors when any is NaN or infinite.
    pub fn values(&self) -> Result<LossValues, ModelError> {
        let parts: Vec<(&'static str, &Tensor<B, 1>)> =
            self.parts.iter().map(|(name, t)| (*name, t)).collect();
        LossValues::read(&self.total, &parts, self.num_positive)
    }
}

impl<B: Backend> FaceModel<B> {
    /// Builds a freshly initialised model from a `[model]` spec and the `[test]` settings.
    pub fn new(spec: &ModelSpec, test: &TestSpec, device: &B::Device) -> Result<Self, ModelError> {
        Ok(match spec {
            ModelSpec::RetinaNet(spec) => FaceModel::RetinaNet(Detector::new(spec, test, device)?),
            ModelSpec::RetinaFace(spec) => {
                FaceModel::RetinaFace(RetinaFace::new(spec, test, device)?)
            }
            ModelSpec::Srn(spec) => FaceModel::Srn(Srn::new(spec, test, device)?),
        })
    }

    /// Which architecture this is.
    pub fn architecture(&self) -> Architecture {
        match self {
            FaceModel::RetinaNet(_) => Architecture::RetinaNet,
            FaceModel::RetinaFace(_) => Architecture::RetinaFace,
            FaceModel::Srn(_) => Architecture::Srn,
        }
    }

    /// Loads the backbone's initial weights named by `model.backbone.<kind>.weights`, if any
    /// (a new run's initialisation). Returns the file that was loaded.
    pub fn load_initial_backbone_weights(self) -> Result<(Self, Option<PathBuf>), ModelError> {
        Ok(match self {
            FaceModel::RetinaNet(m) => {
                let (m, file) = m.load_initial_backbone_weights()?;
                (FaceModel::RetinaNet(m), file)
            }
            FaceModel::RetinaFace(m) => {
                let (m, file) = m.load_initial_backbone_weights()?;
                (FaceModel::RetinaFace(m), file)
            }
            FaceModel::Srn(m) => {
                let (m, file) = m.load_initial_backbone_weights()?;
                (FaceModel::Srn(m), file)
            }
        })
    }

    /// Loads a Pytorch_Retinaface state dict (RetinaFace only).
    ///
    /// # Errors
    /// [`ModelError::InvalidInput`] for another architecture; [`ModelError::Weights`] naming
    /// every key that does not fit.
    pub fn load_pytorch_retinaface(self, dict: &StateDict) -> Result<Self, ModelError> {
        match self {
            FaceModel::RetinaFace(m) => Ok(FaceModel::RetinaFace(m.load_pytorch_retinaface(dict)?)),
            FaceModel::RetinaNet(_) | FaceModel::Srn(_) => Err(ModelError::InvalidInput(format!(
                "{} holds Pytorch_Retinaface weights, which need `architecture = \"retinaface\"` \
                 in [model]",
                dict.source().display()
            ))),
        }
    }

    /// Runs the network.
    ///
    /// # Shapes
    /// - `images`: `[B, 3, H, W]`, normalised as the data config says.
    pub fn forward(&self, images: Tensor<B, 4>) -> FaceOutputs<B> {
        match self {
            FaceModel::RetinaNet(m) => FaceOutputs::RetinaNet(m.forward(images)),
            FaceModel::RetinaFace(m) => FaceOutputs::RetinaFace(m.forward(images)),
            FaceModel::Srn(m) => FaceOutputs::Srn(m.forward(images)),
        }
    }

    /// The training loss of `outputs` against the faces of each image of the batch.
    ///
    /// # Errors
    /// [`ModelError::InvalidInput`] if the targets do not fit the batch, or the outputs come
    /// from another architecture.
    pub fn loss(
        &self,
        outputs: &FaceOutputs<B>,
        faces: &[FaceTargets],
    ) -> Result<FaceLoss<B>, ModelError> {
        match (self, outputs) {
            (FaceModel::RetinaNet(m), FaceOutputs::RetinaNet(o)) => {
                let p = m.loss(o, faces)?;
                Ok(FaceLoss {
                    parts: p.named_parts(),
                    total: p.total,
                    num_positive: p.num_positive,
                })
            }
            (FaceModel::RetinaFace(m), FaceOutputs::RetinaFace(o)) => {
                let p = m.loss(o, faces)?;
                Ok(FaceLoss {
                    total: p.total,
                    parts: vec![
                        ("cls", p.classification),
                        ("box", p.box_regression),
                        ("landmark", p.landmarks),
                    ],
                    num_positive: p.num_positive,
                })
            }
            (FaceModel::Srn(m), FaceOutputs::Srn(o)) => {
                let p = m.loss(o, faces)?;
                Ok(FaceLoss {
                    parts: p.named_parts(),
                    total: p.total,
                    num_positive: p.num_positive,
                })
            }
            _ => Err(mismatch()),
        }
    }

    /// Detections of every image of the batch, best first (pixels of the network input;
    /// landmarks where the architecture predicts them).
    ///
    /// # Panics
    /// If `outputs` come from another architecture.
    pub fn postprocess(&self, outputs: &FaceOutputs<B>) -> Vec<Vec<Detection>> {
        self.postprocess_with(outputs, self.test_spec())
    }

    /// [`postprocess`](Self::postprocess) with other `[test]` settings than the model's (e.g.
    /// the per-pass settings of test-time augmentation, [`TestSpec::per_pass`]).
    ///
    /// # Panics
    /// If `outputs` come from another architecture.
    pub fn postprocess_with(
        &self,
        outputs: &FaceOutputs<B>,
        test: &TestSpec,
    ) -> Vec<Vec<Detection>> {
        match (self, outputs) {
            (FaceModel::RetinaNet(m), FaceOutputs::RetinaNet(o)) => m.postprocess_with(o, test),
            (FaceModel::RetinaFace(m), FaceOutputs::RetinaFace(o)) => m.postprocess_with(o, test),
            (FaceModel::Srn(m), FaceOutputs::Srn(o)) => m.postprocess_with(o, test),
            _ => panic!("{}", mismatch()),
        }
    }

    /// The `[test]` settings.
    pub fn test_spec(&self) -> &TestSpec {
        match self {
            FaceModel::RetinaNet(m) => m.test_spec(),
            FaceModel::RetinaFace(m) => m.test_spec(),
            FaceModel::Srn(m) => m.test_spec(),
        }
    }

    /// Replaces the `[test]` settings (e.g. from `visage detect` flags).
    pub fn set_test_spec(&mut self, test: TestSpec) -> Result<(), ModelError> {
        match self {
            FaceModel::RetinaNet(m) => m.set_test_spec(test),
            FaceModel::RetinaFace(m) => m.set_test_spec(test),
            FaceModel::Srn(m) => m.set_test_spec(test),
        }
    }
}

fn mismatch() -> ModelError {
    ModelError::InvalidInput("outputs of another architecture than the model's".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use visage_backbone::weights::{formula_state_dict, parameter_shapes};

    fn retinaface() -> ModelSpec {
        ModelSpec::RetinaFace(
            toml::from_str("out_channels = 16\n[backbone.mobilenet]\nwidth_multiplier = 0.25\n")
                .unwrap(),
        )
    }

    #[test]
    fn retinaface_loss_has_three_named_parts_and_detections_landmarks() {
        let device = Default::default();
        let model = FaceModel::<Flex>::new(&retinaface(), &TestSpec::default(), &device).unwrap();
        assert_eq!(model.architecture(), Architecture::RetinaFace);
        let out = model.forward(Tensor::zeros([1, 3, 64, 64], &device));
        let faces = [FaceTargets {
            boxes: vec![[10.0, 10.0, 40.0, 44.0]],
            landmarks: vec![None],
        }];
        let v = model.loss(&out, &faces).unwrap().values().unwrap();
        let names: Vec<&str> = v.parts.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["cls", "box", "landmark"]);
        assert_eq!(v.part("landmark"), Some(0.0));
        let dets = model.postprocess(&out);
        assert!(dets[0].iter().all(|d| d.landmarks.is_some()));
    }

    #[test]
    fn pytorch_retinaface_weights_load_and_keys_keep_the_net_prefix() {
        let device = Default::default();
        let model = FaceModel::<Flex>::new(&retinaface(), &TestSpec::default(), &device).unwrap();
        let FaceModel::RetinaFace(inner) = &model else {
            unreachable!()
        };
        let dict = formula_state_dict::<Flex, _>(&inner.net, inner.torch_layout());
        let paths: Vec<String> = parameter_shapes::<Flex, _>(&model)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert!(paths.iter().all(|p| p.starts_with("net.")), "{paths:?}");
        let model = model.load_pytorch_retinaface(&dict).unwrap();
        let mut test = model.test_spec().clone();
        test.score_threshold = 0.5;
        let mut model = model;
        model.set_test_spec(test).unwrap();
        assert_eq!(model.test_spec().score_threshold, 0.5);
    }
}
