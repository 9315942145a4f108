//! The detector families of visage, built from a config's `[model]` table, behind one
//! contract ([`DetectorFamily`]): `forward` returns raw outputs, `loss` the named loss parts,
//! `postprocess` detections through one post-processing.
//!
//! ```text
//! spec/        [model] / [test]: the architecture key, backbone, anchors / assign / coder,
//!              head norm, focal + box loss, test time; defaults; component errors → keys
//! common/      targets, loss values and the sigmoid families' loss parts, post-processing
//! family.rs    the contract every family implements
//! retinanet/   RetinaNet, FAN (+ attention), DF²S² (FFP, shared head, segmentation)
//! srn/         SRN and AInnoFace (two feature sets, RFE, STC and STR)
//! retinaface/  RetinaFace in Pytorch_Retinaface's layout (SSH, landmarks, MultiBox loss)
//!              and its dense 3D branch (mesh decoder, renderer, pixel loss)
//! ```
//!
//! A new family is one folder (its spec, network, loss and predictions, implementing
//! [`DetectorFamily`]) plus one variant of [`ModelSpec`] and a tiny spec in [`tiny`];
//! `tests/conformance.rs` runs the same checks over every family.
//!
//! Box format everywhere in this crate: `[x1, y1, x2, y2]` in pixels of the network input.

pub mod common;
mod error;
pub mod family;
pub mod retinaface;
pub mod retinanet;
pub mod spec;
pub mod srn;
pub mod tiny;

pub use common::loss::LossValues;
pub use common::pixels::PixelNormalisation;
pub use common::postprocess::{
    postprocess, select_detections, AnchorPredictions, BatchAnchors, DecodeRules, DenseRows,
    Detection, ImagePredictions, MeshParams, NmsAreas, ScoreRule,
};
pub use common::shards::{LossTerm, Normaliser};
pub use common::targets::{DenseTargets, FaceTargets};
pub use error::ModelError;
pub use family::{
    DetectorFamily, FaceLoss, FamilySpec, TrainableFamily, WithFamily, WithTrainableFamily,
};
pub use retinaface::{
    FittedMesh, MeshSpec, RetinaFace, RetinaFaceAssignSpec, RetinaFaceLoss, RetinaFaceLossSpec,
    RetinaFaceNet, RetinaFaceNetConfig, RetinaFaceOutputs, RetinaFaceSpec, RetinaFaceTargets,
    RETINAFACE_MNET, RETINAFACE_R50, RETINAFACE_STRIDES,
};
pub use retinanet::{
    AttentionAssigner, AttentionLevelsSpec, AttentionRule, AttentionSpec, AttentionTargets,
    ExtraSourceSpec, FfpSpec, FpnSpec, HeadSpec, Neck, NeckSpec, RetinaNet, RetinaNetLoss,
    RetinaNetOutputs, RetinaNetSpec, RetinaNetTargets, SegmentationSpec,
};
pub use spec::{
    AnchorSpec, Architecture, AssignSpec, BackboneSpec, BoxLossSpec, CoderSpec, HeadNormSpec,
    LossSpec, MobileNetSpec, ModelSpec, ResNetSpec, TestSpec, TtaSpec,
};
pub use srn::{
    Srn, SrnHeadSpec, SrnLoss, SrnNeckSpec, SrnOutputs, SrnSpec, SrnTargets, StcSpec, StrSpec,
    SRN_MAX_LEVEL,
};
