//! Backbones: ResNet-18..152 in torchvision's exact layout, and the typed multi-level feature
//! maps ([`FeatureLevels`]) that every neck and head consumes.
//!
//! Parameter paths follow torchvision (`conv1`, `bn1`, `layer1.0.conv1`, `layer1.0.downsample`)
//! so that ImageNet checkpoints can be loaded with a small key remap (see [`resnet`]).

mod batch_norm;
mod error;
mod features;
pub mod norm;
pub mod resnet;

pub use batch_norm::{per_channel_affine, BatchNorm2d, BatchNorm2dConfig};
pub use error::BackboneError;
pub use features::{FeatureLevel, FeatureLevels};
pub use norm::{FrozenBatchNorm, FrozenBatchNormConfig, Norm};
pub use resnet::{ResNet, ResNetConfig, ResNetDepth};
