//! Errors of the detector crate.

use thiserror::Error;

/// What can go wrong building or running a detector.
#[derive(Debug, Error)]
pub enum ModelError {
    /// A config value is out of range or inconsistent with another; `key` is the TOML key.
    #[error("invalid config `{key}`: {message}")]
    InvalidConfig {
        /// Dotted TOML key, e.g. `model.assign.negative_iou`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// The input batch does not fit the detector (wrong shape, mismatched targets).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Backbone weights could not be loaded (the message names the file and the keys).
    #[error("backbone weights: {0}")]
    Weights(#[from] visage_backbone::weights::WeightsError),
    /// A model weight file could not be written or read.
    #[error("{path}: {message}")]
    WeightsFile {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong (missing, unreadable, keys or shapes that do not fit).
        message: String,
    },
    /// The loss became NaN or infinite.
    #[error("non-finite loss: {0}")]
    NonFiniteLoss(String),
}
