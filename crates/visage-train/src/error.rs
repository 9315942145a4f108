//! Errors of the training crate.

use std::path::PathBuf;

use thiserror::Error;

/// What can go wrong in training, checkpointing or validation.
#[derive(Debug, Error)]
pub enum TrainError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for an experiment (unknown key, wrong type).
    #[error("{path}: {message}")]
    ConfigParse {
        /// The config file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A config value is out of range; `key` is the TOML key.
    #[error("invalid config `{key}`: {message}")]
    InvalidConfig {
        /// Dotted TOML key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The detector rejected its config or input.
    #[error(transparent)]
    Model(#[from] visage_model::ModelError),
    /// Reading the data set failed.
    #[error(transparent)]
    Data(#[from] visage_data::DataError),
    /// Evaluation failed.
    #[error(transparent)]
    Eval(#[from] visage_eval::EvalError),
    /// Detection over the validation split failed.
    #[error(transparent)]
    Infer(#[from] visage_infer::InferError),
    /// The loss became NaN or infinite; nothing of this step was saved.
    #[error("non-finite loss at epoch {epoch}, iteration {iteration}: {detail}; the last checkpoint is intact")]
    NonFiniteLoss {
        /// 0-based epoch.
        epoch: usize,
        /// Global iteration.
        iteration: usize,
        /// The loss parts.
        detail: String,
    },
    /// A checkpoint is missing, incomplete or does not fit the model.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint directory or file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Attaches a path to an I/O error.
pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.into();
    move |source| TrainError::Io { path, source }
}
