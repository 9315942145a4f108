//! Feature necks: turn a backbone's [`FeatureLevels`](visage_backbone::FeatureLevels) into a
//! pyramid for the heads. RetinaNet's [`Fpn`], and RetinaFace's [`RetinaFaceFpn`] and [`Ssh`]
//! context modules (FAN attention, DF²S² fusion and SRN follow).

mod error;
pub mod fpn;
pub mod retinaface_fpn;
pub mod ssh;

pub use error::NeckError;
pub use fpn::{upsample_nearest_to, ExtraSource, Fpn, FpnConfig};
pub use retinaface_fpn::RetinaFaceFpn;
pub use ssh::{Ssh, SSH_TORCH_BLOCKS};
