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
    /// Any other invalid setting.
    #[error("{field}: {message}")]
    Invalid {
        /// The configuration field, e.g. `upsample_kernel`.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

impl NeckError {
    /// The configuration field the error is about (`in_channels`, `out_channels`,
    /// `in_channels[1]`, `upsample_kernel`, ...), so that a config layer can name its own key.
    pub fn field(&self) -> &str {
        match self {
            NeckError::NoInputLevels => "in_channels",
            NeckError::ZeroChannels(field) => field,
            NeckError::Invalid { field, .. } => field,
        }
    }
}
