//! Errors of the backbone crate.

/// Errors raised when a backbone configuration or a feature selection is invalid.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum BackboneError {
    /// `width_multiplier` must be finite and strictly positive.
    #[error("width_multiplier must be finite and > 0, got {0}")]
    InvalidWidth(f32),
    /// `frozen_stages` counts stages of a four-stage network.
    #[error("frozen_stages must be between 0 and 4, got {0}")]
    InvalidFrozenStages(usize),
    /// A requested stride is not among the available feature levels.
    #[error("no feature level with stride {stride} (available strides: {available:?})")]
    MissingStride {
        /// The stride that was asked for.
        stride: usize,
        /// The strides that exist.
        available: Vec<usize>,
    },
}

impl BackboneError {
    /// The configuration field the error is about (`width_multiplier`, `frozen_stages`,
    /// `strides`), so that a config layer can name its own key.
    pub fn field(&self) -> &'static str {
        match self {
            BackboneError::InvalidWidth(_) => "width_multiplier",
            BackboneError::InvalidFrozenStages(_) => "frozen_stages",
            BackboneError::MissingStride { .. } => "strides",
        }
    }
}
