//! The error type of `visage-eval`: every variant names the file and, where it has one, the
//! byte offset, variable, line or field that was wrong.

use std::path::PathBuf;

/// Everything that can go wrong while reading or writing ground truth, `.mat` files and
/// submissions.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// An operating-system error while reading or writing `path`.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A `.mat` file is not a MATLAB v5 file this reader understands, or is corrupt at `offset`.
    ///
    /// Inside a compressed element `offset` is the file offset of that element and `detail`
    /// says where in its decompressed data the problem lies.
    #[error("{}: byte {offset}: {detail}", path.display())]
    Mat {
        /// The `.mat` file.
        path: PathBuf,
        /// Byte offset in the file.
        offset: u64,
        /// What was wrong.
        detail: String,
    },
    /// A variable of a `.mat` file is missing or does not have the expected structure.
    #[error("{}: variable `{variable}`: {detail}", path.display())]
    MatVariable {
        /// The `.mat` file.
        path: PathBuf,
        /// Variable name, with a `{i}{j}` cell index where one applies.
        variable: String,
        /// What was wrong.
        detail: String,
    },
    /// A value handed to [`crate::write_mat`] cannot be written (inconsistent dims, a value out
    /// of its class's range, a bad name).
    #[error("{}: cannot write variable `{variable}`: {detail}", path.display())]
    MatWrite {
        /// The `.mat` file being written.
        path: PathBuf,
        /// Variable name.
        variable: String,
        /// What was wrong.
        detail: String,
    },
    /// A submission file is malformed at `line` (1-based).
    #[error("{}:{line}: {detail}", path.display())]
    Submission {
        /// The `<event>/<image>.txt` file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        detail: String,
    },
    /// No file of a submission folder is the `<event>/<image>.txt` of a ground-truth image
    /// (an empty folder, or the wrong folder level): scoring it would report AP 0 as a result.
    #[error("{}: no prediction file matches the ground truth: {detail}", path.display())]
    NoMatchingPredictions {
        /// The submission folder.
        path: PathBuf,
        /// `.txt` files found under it.
        files: usize,
        /// What was found, the layout expected and, where it can tell, the folder to pass.
        detail: String,
    },
    /// In-memory detections handed to [`crate::Predictions`] are not usable.
    #[error("detections for {event}/{image}, #{index}: {detail}")]
    Detection {
        /// Event folder name.
        event: String,
        /// Image name without `.jpg`.
        image: String,
        /// 0-based index of the detection.
        index: usize,
        /// What was wrong.
        detail: String,
    },
}

impl EvalError {
    /// Wraps an I/O error with its path.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EvalError::Io {
            path: path.into(),
            source,
        }
    }
}
