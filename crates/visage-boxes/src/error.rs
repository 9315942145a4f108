//! Errors of the box crate: only the coder's configuration can be invalid.

use thiserror::Error;

/// Why a box-coding configuration was rejected.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum BoxError {
    /// `variances[index]` is not a finite number greater than zero.
    #[error("box coder: variances[{index}] = {value} must be finite and > 0")]
    InvalidVariance {
        /// Index into `variances` (0: centre, 1: size).
        index: usize,
        /// The rejected value.
        value: f32,
    },
}

impl BoxError {
    /// The configuration field the error is about (`variances`), so that a config layer can
    /// name its own key.
    pub fn field(&self) -> &'static str {
        match self {
            BoxError::InvalidVariance { .. } => "variances",
        }
    }
}
