//! Errors of the neck crate.

/// Errors raised when a neck configuration is invalid.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum NeckError {
    /// `in_channels` is empty: a neck needs at least one input level.
    #[error("in_channels is empty: at least one input level is needed")]
    NoInputLevels,
    /// A channel count is zero; the payload names the field (e.g. `in_channels[1]`).
    #[error("{0} must be > 0")]
    ZeroChannels(String),
    /// Any other invalid setting; the payload names it.
    #[error("{0}")]
    Invalid(String),
}
