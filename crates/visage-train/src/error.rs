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
    /// Data-parallel training across devices or machines failed: a peer did not answer
    /// within the timeout, the coordinator could not be reached, or the peers disagree.
    #[error("data parallel: {0}")]
    Collective(String),
    /// A file could not be written: the disk is full, or another write error.
    #[error("{}", write_message(path, source))]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The loss or the gradients became NaN or infinite and `train.on_non_finite = "stop"`:
    /// the step was not applied and no checkpoint was written after the last good one.
    #[error(
        "non-finite {detail} at epoch {epoch}, iteration {iteration}; the run stops \
         (train.on_non_finite = \"stop\"): the last checkpoint is intact (resume with \
         --resume, perhaps with a lower train.lr)"
    )]
    NonFiniteLoss {
        /// 0-based epoch.
        epoch: usize,
        /// Global iteration of the step (1-based).
        iteration: usize,
        /// What was not finite: the loss parts, or the gradients.
        detail: String,
    },
    /// `train.on_non_finite = "skip"` skipped `train.max_consecutive_skips` steps in a row.
    #[error(
        "{skips} consecutive steps skipped for non-finite loss or gradients (the last at \
         epoch {epoch}, iteration {iteration}: {detail}), train.max_consecutive_skips = \
         {skips}; the run stops: the last checkpoint is intact"
    )]
    TooManySkips {
        /// Consecutive skipped steps.
        skips: usize,
        /// 0-based epoch of the last.
        epoch: usize,
        /// Global iteration of the last (1-based).
        iteration: usize,
        /// What was not finite in the last.
        detail: String,
    },
    /// A checkpoint about to be written holds NaN or infinite values; nothing was written.
    #[error(
        "not writing checkpoint {path}: {count} non-finite values in its {what} (first in \
         `{first}`); the run stops and the earlier checkpoints are intact"
    )]
    NonFiniteCheckpoint {
        /// The checkpoint directory that was not written.
        path: PathBuf,
        /// `model weights` or `optimiser state`.
        what: &'static str,
        /// How many values are not finite.
        count: usize,
        /// The first tensor holding one.
        first: String,
    },
    /// Another process holds the run directory's lock.
    #[error(
        "run directory {path} is in use by another `visage train` ({holder}); wait for it to \
         finish or stop it, or train into another run_dir (--run-dir)"
    )]
    RunDirLocked {
        /// The run directory.
        path: PathBuf,
        /// Who holds it, from the lock file (`pid N on HOST`).
        holder: String,
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

/// The message of [`TrainError::Write`]: a full disk said in words.
fn write_message(path: &std::path::Path, source: &std::io::Error) -> String {
    if source.kind() == std::io::ErrorKind::StorageFull {
        format!("no space left on device (while writing {})", path.display())
    } else {
        format!("cannot write {}: {source}", path.display())
    }
}

/// Attaches a path to an error of writing it.
pub(crate) fn write_error(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.into();
    move |source| TrainError::Write { path, source }
}

/// Attaches a path to an I/O error.
pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.into();
    move |source| TrainError::Io { path, source }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_full_disk_is_said_in_words_naming_the_file() {
        // /dev/full answers every write with ENOSPC.
        let path = std::path::Path::new("/dev/full");
        let Ok(mut file) = std::fs::OpenOptions::new().write(true).open(path) else {
            eprintln!("skipping: no /dev/full on this system");
            return;
        };
        let err = file.write_all(b"x").and_then(|_| file.flush()).unwrap_err();
        let message = write_error(path)(err).to_string();
        assert_eq!(message, "no space left on device (while writing /dev/full)");
        let other = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let message = write_error("a/b")(other).to_string();
        assert!(message.starts_with("cannot write a/b: "), "{message}");
    }
}
