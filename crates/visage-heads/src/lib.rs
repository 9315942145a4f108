//! Detection heads: per-level subnets whose parameters are shared across pyramid levels, and
//! the flattening of their outputs into the anchor order `(level, y, x, anchor)`.
//! RetinaNet's class and box subnets ([`RetinaHead`]), DF²S²'s head whose conv stack is shared
//! by the class, box and segmentation predictors ([`SharedHead`]), both behind
//! [`DetectionHead`], FAN's attention subnet ([`AttentionHead`]), and SRN's head with
//! receptive field enrichment ([`SrnHead`], [`Rfe`]).

pub mod attention;
pub mod detection_head;
mod error;
pub mod flatten;
pub mod group_norm;
pub mod retina_head;
pub mod rfe;
pub mod shared_head;
pub mod srn_head;
pub mod subnet;

pub use attention::{AttentionHead, AttentionHeadConfig};
pub use detection_head::{DetectionHead, DetectionHeadConfig};
pub use error::HeadError;
pub use flatten::flatten_levels;
pub use retina_head::{HeadOutputs, RetinaHead, RetinaHeadConfig};
pub use rfe::{Rfe, RfeBranch, RfeConfig};
pub use shared_head::{SharedHead, SharedHeadConfig};
pub use srn_head::{SrnBranch, SrnHead, SrnHeadConfig};
pub use subnet::{ConvBlock, HeadNorm, Subnet, SubnetConfig};

#[cfg(test)]
mod testing;
