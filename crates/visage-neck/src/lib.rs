//! Feature necks: turn a backbone's [`FeatureLevels`](visage_backbone::FeatureLevels) into a
//! pyramid for the heads. Currently RetinaNet's [`Fpn`] (FAN attention, DF²S² fusion, SRN and
//! SSH follow).

mod error;
pub mod fpn;

pub use error::NeckError;
pub use fpn::{upsample_nearest_to, ExtraSource, Fpn, FpnConfig};
