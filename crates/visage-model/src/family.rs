//! The family contract. Every detector family (RetinaNet with FAN and DF²S², SRN /
//! AInnoFace, RetinaFace) is a Burn module that implements [`DetectorFamily`]: built from
//! its `[model]` spec, `forward` returns its raw outputs, `loss` the named loss parts, and
//! `predictions` the per-anchor scores, deltas and anchors that the one post-processing
//! ([`crate::common::postprocess`]) turns into detections, with the family's decoding rules.
//!
//! Code that runs any family (the trainer, the predictor, checkpoints) is generic over
//! `M: DetectorFamily<B>`; [`ModelSpec::with_family`](crate::ModelSpec::with_family) and
//! [`ModelSpec::with_trainable_family`](crate::ModelSpec::with_trainable_family) call it with
//! the family a config names. A model's outputs are its own associated type, so the outputs
//! of one family can never reach another's `loss` or `postprocess`.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use burn::module::AutodiffModule;
use burn::prelude::*;
use burn_store::{ModuleSnapshot, SafetensorsStore};
use visage_backbone::weights::StateDict;
use visage_kernels::{KernelAutodiffBackend, KernelBackend};

use crate::common::loss::LossValues;
use crate::common::pixels::PixelNormalisation;
use crate::common::postprocess::{postprocess, AnchorPredictions, Detection, MeshParams};
use crate::common::shards::{shard_total, LossTerm};
use crate::common::targets::FaceTargets;
use crate::error::ModelError;
use crate::retinaface::FittedMesh;
use crate::spec::{Architecture, BackboneSpec, ModelSpec, TestSpec};

/// What every family's `[model]` spec answers.
pub trait FamilySpec: Debug {
    /// The value of `[model] architecture` for this family.
    fn architecture(&self) -> Architecture;

    /// Checks every rule serde cannot; errors name the `model.*` key.
    fn validate(&self) -> Result<(), ModelError>;

    /// `[model.backbone.*]`.
    fn backbone(&self) -> &BackboneSpec;
}

/// A detector family: a network with its weight-free policy (anchors, matching, coding,
/// loss), built from its spec. Box format everywhere: `[x1, y1, x2, y2]` pixels of the
/// network input. `Sync`: detection runs the forward pass on one of rayon's worker threads.
pub trait DetectorFamily<B: KernelBackend>: Module<B> + Sync + Sized {
    /// The family's `[model]` spec.
    type Spec: FamilySpec + Clone + PartialEq + Into<ModelSpec>;

    /// The raw outputs of one batch.
    type Outputs: Clone + Debug;

    /// A freshly initialised model (the spec is validated here).
    fn new(spec: &Self::Spec, device: &B::Device) -> Result<Self, ModelError>;

    /// The spec the model was built from.
    fn spec(&self) -> &Self::Spec;

    /// Loads the backbone's initial weights named by `model.backbone.<kind>.weights`, if any
    /// (a new run's initialisation; checkpoints hold every weight). Returns the file loaded.
    ///
    /// # Errors
    /// [`ModelError::Weights`] naming the file and every missing / unexpected / mis-shaped key.
    fn load_initial_backbone_weights(self) -> Result<(Self, Option<PathBuf>), ModelError>;

    /// Loads every weight from a checkpoint of the reference implementation the family
    /// follows (Pytorch_Retinaface for RetinaFace). Families without one refuse.
    ///
    /// # Errors
    /// [`ModelError::InvalidInput`] for a family without a reference layout;
    /// [`ModelError::Weights`] naming every key that does not fit.
    fn load_reference_weights(self, dict: &StateDict) -> Result<Self, ModelError> {
        Err(ModelError::InvalidInput(format!(
            "{} holds Pytorch_Retinaface weights, which need `architecture = \"retinaface\"` \
             in [model] (this model is `{}`)",
            dict.source().display(),
            self.spec().architecture().name()
        )))
    }

    /// Writes every weight to a safetensors file keyed by parameter path (RetinaNet:
    /// `backbone.layer1.0.conv1.weight`, `neck.lateral.0.weight`, ...; RetinaFace:
    /// `net.body.*`, ...): a checkpoint's `model.safetensors`. Enum variants (norm, block,
    /// neck and head kinds) are not part of a key.
    ///
    /// # Errors
    /// [`ModelError::WeightsFile`] naming the file.
    fn save_weights(&self, path: &Path) -> Result<(), ModelError> {
        self.save_into(&mut weights_store(path))
            .map_err(|e| weights_error(path, e))
    }

    /// The bytes [`save_weights`](Self::save_weights) writes, in memory (a checkpoint checks
    /// and checksums them before anything reaches the disk).
    ///
    /// # Errors
    /// [`ModelError::InvalidInput`] if the weights cannot be serialised.
    fn weights_bytes(&self) -> Result<Vec<u8>, ModelError> {
        let mut store = SafetensorsStore::from_bytes(None).skip_enum_variants(true);
        self.save_into(&mut store)
            .and_then(|_| store.get_bytes())
            .map_err(|e| ModelError::InvalidInput(format!("serialising the weights: {e}")))
    }

    /// Loads every weight from a file [`save_weights`](Self::save_weights) wrote for the same
    /// spec (any backend): every tensor, or an error naming the file.
    ///
    /// # Errors
    /// [`ModelError::WeightsFile`] naming the file and what does not fit.
    fn load_weights(mut self, path: &Path) -> Result<Self, ModelError> {
        self.load_from(&mut weights_store(path))
            .map_err(|e| weights_error(path, e))?;
        Ok(self)
    }

    /// Loads every weight from bytes [`weights_bytes`](Self::weights_bytes) gave for the same
    /// spec (any backend), e.g. to move a model to another backend.
    ///
    /// # Errors
    /// [`ModelError::InvalidInput`] naming what does not fit.
    fn load_weights_bytes(mut self, bytes: Vec<u8>) -> Result<Self, ModelError> {
        let mut store = SafetensorsStore::from_bytes(Some(bytes)).skip_enum_variants(true);
        self.load_from(&mut store)
            .map_err(|e| ModelError::InvalidInput(format!("loading weights from memory: {e}")))?;
        Ok(self)
    }

    /// This model prepared for detection: every batch norm folded into the convolution before
    /// it (`visage_backbone::fold`), so the outputs are unchanged to rounding (tested to 1e-5)
    /// and each norm's pass over the feature maps disappears. Only for inference on a backend
    /// without autodiff: the folded model is never trained or saved.
    fn fold_norms(self) -> Self;

    /// Tells the model how its input was normalised (the `[data]` table's mean, std and
    /// plane order). Only losses that compare predictions with the image's own pixels need
    /// it (RetinaFace's mesh branch); other families ignore it.
    fn with_input_normalisation(self, pixels: PixelNormalisation) -> Self {
        let _ = pixels;
        self
    }

    /// The face meshes of detections that carry mesh parameters ([`Detection::mesh`]), in
    /// the pixels of the boxes' image; empty for models without a mesh branch.
    fn face_meshes(&self, params: &[&MeshParams]) -> Vec<FittedMesh> {
        let _ = params;
        Vec::new()
    }

    /// The meshes of `params` rendered into their anchor crops, `size × size` RGB in [0, 1]
    /// (`[size · size · 3]` each, uncovered pixels black); empty without a mesh branch.
    fn render_face_meshes(&self, params: &[&MeshParams], size: usize) -> Vec<Vec<f32>> {
        let _ = (params, size);
        Vec::new()
    }

    /// Runs the network.
    ///
    /// # Shapes
    /// - `images`: `[B, 3, H, W]`, normalised as the data config says.
    fn forward(&self, images: Tensor<B, 4>) -> Self::Outputs;

    /// The training loss of `outputs` against the faces of each image of the batch
    /// (`faces.len()` = batch size; boxes and landmarks in input pixels).
    ///
    /// # Errors
    /// [`ModelError::InvalidInput`] if the targets do not fit the batch.
    fn loss(
        &self,
        outputs: &Self::Outputs,
        faces: &[FaceTargets],
    ) -> Result<FaceLoss<B>, ModelError>;

    /// The per-anchor predictions of every image, on the host, with the family's anchors,
    /// coder and decoding rules: what [`postprocess`](Self::postprocess) reads.
    fn predictions(&self, outputs: &Self::Outputs) -> AnchorPredictions;

    /// Detections of every image of the batch, best first (pixels of the network input;
    /// landmarks where the family predicts them), with the `[test]` settings `test`.
    fn postprocess(&self, outputs: &Self::Outputs, test: &TestSpec) -> Vec<Vec<Detection>> {
        postprocess(&self.predictions(outputs), test)
    }
}

/// The store of a model weight file: keys are parameter paths without enum variants, so the
/// file reads back into any model of the same spec.
fn weights_store(path: &Path) -> SafetensorsStore {
    SafetensorsStore::from_file(path)
        .skip_enum_variants(true)
        .overwrite(true)
}

fn weights_error(path: &Path, message: impl std::fmt::Display) -> ModelError {
    ModelError::WeightsFile {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// A family on an autodiff backend whose inference copy ([`AutodiffModule::valid`]) is the
/// same family on the inner backend: what training (which validates as it goes) needs.
pub trait TrainableFamily<B: KernelAutodiffBackend>: DetectorFamily<B> + AutodiffModule<B> {
    /// The model without autodiff.
    type Valid: DetectorFamily<B::InnerBackend, Spec = Self::Spec>;

    /// The model without autodiff, for validation ([`AutodiffModule::valid`]).
    fn valid_model(&self) -> Self::Valid;
}

impl<B, M> TrainableFamily<B> for M
where
    B: KernelAutodiffBackend,
    M: DetectorFamily<B> + AutodiffModule<B>,
    M::InnerModule: DetectorFamily<B::InnerBackend, Spec = M::Spec>,
{
    type Valid = M::InnerModule;

    fn valid_model(&self) -> Self::Valid {
        self.valid()
    }
}

/// A computation over a model of the family a `[model]` table names (inference: any
/// backend); see [`ModelSpec::with_family`].
pub trait WithFamily<B: KernelBackend> {
    /// What the computation returns.
    type Output;

    /// Runs with the family's type `M` and its spec.
    fn run<M: DetectorFamily<B>>(self, spec: &M::Spec) -> Self::Output;
}

/// A computation over a trainable model of the family a `[model]` table names; see
/// [`ModelSpec::with_trainable_family`].
pub trait WithTrainableFamily<B: KernelAutodiffBackend> {
    /// What the computation returns.
    type Output;

    /// Runs with the family's type `M` and its spec.
    fn run<M: TrainableFamily<B>>(self, spec: &M::Spec) -> Self::Output;
}

/// The loss of one batch, whatever the family: what is minimised and its named parts
/// (differentiable scalars).
#[derive(Debug, Clone)]
pub struct FaceLoss<B: Backend> {
    /// `[1]`: the weighted sum of the parts.
    pub total: Tensor<B, 1>,
    /// Named parts before their weights, e.g. `cls`, `box`, `landmark`, in a fixed order per
    /// family.
    pub parts: Vec<(&'static str, Tensor<B, 1>)>,
    /// Positive anchors in the batch.
    pub num_positive: usize,
    /// Each part's weight in the total and normalisation, in part order: what
    /// [`shard_total`](Self::shard_total) needs.
    pub terms: Vec<LossTerm>,
}

impl<B: KernelBackend> FaceLoss<B> {
    /// The counts each part was normalised with, in part order (summed over the shards of a
    /// batch, they give [`shard_total`](Self::shard_total)'s `batch_counts`).
    pub fn counts(&self) -> Vec<usize> {
        self.terms.iter().map(LossTerm::count).collect()
    }

    /// This shard's share of the loss of the whole batch whose part counts (summed over every
    /// shard, in part order) are `batch_counts`: each part divided by the batch's count
    /// instead of the shard's. The gradients of the shards' shares sum to the gradient of the
    /// batch loss, whatever the split (see [`crate::common::shards`]).
    ///
    /// # Panics
    /// If `batch_counts` does not have one count per part, or one is below the shard's.
    pub fn shard_total(&self, batch_counts: &[usize]) -> Tensor<B, 1> {
        shard_total(&self.parts, &self.terms, batch_counts)
    }

    /// Reads the scalars back to the host; errors when any is NaN or infinite.
    pub fn values(&self) -> Result<LossValues, ModelError> {
        let parts: Vec<(&'static str, &Tensor<B, 1>)> =
            self.parts.iter().map(|(name, t)| (*name, t)).collect();
        LossValues::read(&self.total, &parts, self.num_positive)
    }
}
