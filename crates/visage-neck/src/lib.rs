//! Feature necks: turn a backbone's [`FeatureLevels`](visage_backbone::FeatureLevels) into a
//! pyramid for the heads. RetinaNet's [`Fpn`], and RetinaFace's [`RetinaFaceFpn`] and [`Ssh`]
//! context modules, DF²S²'s feature fusion pyramid [`Ffp`], and SRN's two feature sets
//! ([`SrnNeck`]).

mod error;
pub mod ffp;
pub mod fpn;
pub mod retinaface_fpn;
pub mod srn;
pub mod ssh;
mod upsample;

pub use error::NeckError;
pub use ffp::{Ffp, FfpConfig};
pub use fpn::{ExtraSource, Fpn, FpnConfig};
pub use retinaface_fpn::RetinaFaceFpn;
pub use srn::{SrnFeatures, SrnNeck, SrnNeckConfig};
pub use ssh::{validate_ssh_channels, Ssh, SSH_TORCH_BLOCKS};
pub use upsample::upsample_nearest_to;
