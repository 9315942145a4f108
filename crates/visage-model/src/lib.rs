//! Detector = backbone + neck + heads, built from a config: `forward` returns raw head outputs,
//! `loss` named loss parts, `postprocess` detections.
//!
//! Box format everywhere in this crate: `[x1, y1, x2, y2]` in pixels of the network input.

mod detector;
mod error;
mod loss;
mod postprocess;
pub mod retinaface;
pub mod retinaface_detect;
mod spec;
mod targets;

pub use detector::{Detector, RawOutputs};
pub use error::ModelError;
pub use loss::{LossParts, LossValues};
pub use postprocess::Detection;
pub use retinaface::{
    RetinaFaceNet, RetinaFaceNetConfig, RetinaFaceOutputs, RETINAFACE_MNET, RETINAFACE_R50,
};
pub use retinaface_detect::{retinaface_detect, retinaface_priors, FaceDetection, RetinaFaceTest};
pub use spec::{
    AnchorSpec, AssignSpec, BackboneSpec, BoxLossSpec, CoderSpec, DetectorSpec, ExtraSourceSpec,
    FpnSpec, HeadNormSpec, HeadSpec, LossSpec, MobileNetSpec, NeckSpec, ResNetSpec, TestSpec,
};
pub use targets::{DenseTargets, FaceTargets};
