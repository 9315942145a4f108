//! Detector = backbone + neck + heads, built from a config: `forward` returns raw head outputs,
//! `loss` named loss parts, `postprocess` detections.
//!
//! Box format everywhere in this crate: `[x1, y1, x2, y2]` in pixels of the network input.

mod attention_targets;
mod detector;
mod error;
mod face_model;
mod loss;
mod model_spec;
mod neck;
mod postprocess;
pub mod retinaface;
pub mod retinaface_detect;
mod retinaface_loss;
mod retinaface_model;
mod retinaface_spec;
mod spec;
mod srn_loss;
mod srn_model;
mod srn_spec;
mod targets;
mod test_time;

pub use attention_targets::{AttentionAssigner, AttentionRule, AttentionTargets};
pub use detector::{Detector, RawOutputs};
pub use error::ModelError;
pub use face_model::{FaceLoss, FaceModel, FaceOutputs};
pub use loss::{LossParts, LossValues};
pub use model_spec::{Architecture, ModelSpec};
pub use neck::Neck;
pub use postprocess::Detection;
pub use retinaface::{
    RetinaFaceNet, RetinaFaceNetConfig, RetinaFaceOutputs, RETINAFACE_MNET, RETINAFACE_R50,
    RETINAFACE_STRIDES,
};
pub use retinaface_detect::{retinaface_detect, retinaface_priors, FaceDetection, RetinaFaceTest};
pub use retinaface_loss::{retinaface_loss, RetinaFaceLossParts, RetinaFaceTargets};
pub use retinaface_model::RetinaFace;
pub use retinaface_spec::{RetinaFaceAssignSpec, RetinaFaceLossSpec, RetinaFaceSpec};
pub use spec::{
    AnchorSpec, AssignSpec, AttentionLevelsSpec, AttentionSpec, BackboneSpec, BoxLossSpec,
    CoderSpec, DetectorSpec, ExtraSourceSpec, FfpSpec, FpnSpec, HeadNormSpec, HeadSpec, LossSpec,
    MobileNetSpec, NeckSpec, ResNetSpec, SegmentationSpec, TestSpec, TtaSpec,
};
pub use srn_loss::{SrnLossParts, SrnTargets};
pub use srn_model::{Srn, SrnOutputs};
pub use srn_spec::{SrnHeadSpec, SrnNeckSpec, SrnSpec, StcSpec, StrSpec, SRN_MAX_LEVEL};
pub use targets::{DenseTargets, FaceTargets};
pub use test_time::merge_passes;
