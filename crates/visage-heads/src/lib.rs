//! Detection heads: per-level subnets whose parameters are shared across pyramid levels, and
//! the flattening of their outputs into the anchor order `(level, y, x, anchor)`.
//! RetinaNet's class and box subnets ([`RetinaHead`]) and FAN's attention subnet
//! ([`AttentionHead`]).

pub mod attention;
mod error;
pub mod flatten;
pub mod retina_head;
pub mod subnet;

pub use attention::{AttentionHead, AttentionHeadConfig};
pub use error::HeadError;
pub use flatten::flatten_levels;
pub use retina_head::{HeadOutputs, RetinaHead, RetinaHeadConfig};
pub use subnet::{ConvBlock, HeadNorm, Subnet, SubnetConfig};
