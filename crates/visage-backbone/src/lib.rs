//! Backbones: ResNet-18..152 in torchvision's exact layout and MobileNetV1 ×0.25 in
//! Pytorch_Retinaface's, the typed multi-level feature maps ([`FeatureLevels`]) that every neck
//! and head consumes, and PyTorch weight import ([`weights`]).
//!
//! Parameter paths follow the reference modules (`conv1`, `bn1`, `layer1.0.conv1`, ...) so that
//! their checkpoints load with a small key remap ([`TORCHVISION_RESNET`],
//! [`RETINAFACE_MOBILENET`]).

mod backbone;
mod batch_norm;
pub mod conv;
mod error;
mod features;
pub mod fold;
pub mod mobilenet;
pub mod norm;
pub mod resnet;
pub mod weights;

pub use backbone::{Backbone, BackboneConfig};
pub use batch_norm::{per_channel_affine, BatchNorm2d, BatchNorm2dConfig};
pub use conv::ConvNormAct;
pub use error::BackboneError;
pub use features::{FeatureLevel, FeatureLevels};
pub use mobilenet::{MobileNetV1, MobileNetV1Config, RETINAFACE_MOBILENET};
pub use norm::{FoldedNorm, FrozenBatchNorm, FrozenBatchNormConfig, Norm};
pub use resnet::{ResNet, ResNetConfig, ResNetDepth, TORCHVISION_RESNET};
