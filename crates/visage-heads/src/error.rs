//! Errors of the heads crate.

/// Errors raised when a head configuration is invalid.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum HeadError {
    /// A size that must be positive is zero; the payload names the field.
    #[error("{0} must be > 0")]
    Zero(&'static str),
    /// Group norm needs the channel count to be a multiple of the number of groups.
    #[error("norm.groups = {groups} does not divide channels = {channels}")]
    GroupsDoNotDivide {
        /// Number of groups asked for.
        groups: usize,
        /// Channels of the subnet's convolutions.
        channels: usize,
    },
    /// `prior_prob` must lie strictly between 0 and 1.
    #[error("prior_prob must be in (0, 1), got {0}")]
    InvalidPrior(f64),
    /// Receptive field enrichment splits its channels over four branches.
    #[error("channels = {0} must be a multiple of 4 (RFE's four branches)")]
    RfeChannels(usize),
}

impl HeadError {
    /// The configuration field the error is about (`channels`, `norm.groups`, `prior_prob`,
    /// ...), so that a config layer can name its own key.
    pub fn field(&self) -> &'static str {
        match self {
            HeadError::Zero(field) => field,
            HeadError::GroupsDoNotDivide { .. } => "norm.groups",
            HeadError::InvalidPrior(_) => "prior_prob",
            HeadError::RfeChannels(_) => "channels",
        }
    }
}
