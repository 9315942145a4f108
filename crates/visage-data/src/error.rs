//! The error type of the data crate: every variant names the file, line or config field at fault.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// Everything that can go wrong while reading, writing, generating or loading data.
#[derive(Debug, Error)]
pub enum DataError {
    /// A file could not be opened, read, written or created.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A text annotation file is malformed at `path:line` (1-based).
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        /// The annotation file.
        path: PathBuf,
        /// 1-based line number of the offending line (one past the last line at end of file).
        line: usize,
        /// What was expected and what was found.
        message: String,
    },
    /// An image could not be decoded or encoded.
    #[error("{}: image error: {source}", path.display())]
    Image {
        /// The image file.
        path: PathBuf,
        /// The decoder / encoder error.
        #[source]
        source: image::ImageError,
    },
    /// Writing or reading the `.mat` ground truth failed.
    #[error("{}: ground truth: {source}", path.display())]
    GroundTruth {
        /// The ground-truth directory.
        path: PathBuf,
        /// The evaluation crate's error.
        #[source]
        source: visage_eval::EvalError,
    },
    /// A configuration value is out of range.
    #[error("invalid config `{field}`: {message}")]
    Config {
        /// The config field, as named in the struct.
        field: &'static str,
        /// Why the value was rejected.
        message: String,
    },
    /// A training image cannot be used: missing, unreadable, empty, not an image, corrupt or
    /// truncated, or over the pixel limit. With `on_bad_image = "skip"` the loader replaces it
    /// and reports it; with `"error"` this error stops training.
    #[error("{}: bad image ({kind}): {detail}", path.display())]
    BadImage {
        /// The image file.
        path: PathBuf,
        /// What is wrong with it.
        kind: BadImageKind,
        /// The underlying error, or the dimensions over the limit.
        detail: String,
    },
    /// With `on_bad_image = "skip"`, every image tried in place of a bad one was bad too.
    #[error("no readable image: {tried} images tried in a row were bad (last: {last})")]
    NoReadableImage {
        /// Images tried.
        tried: usize,
        /// The last bad image and why.
        last: String,
    },
    /// The loader's worker threads failed (pool not built, or a worker panicked).
    #[error("loader workers: {0}")]
    Worker(String),
}

/// Why an image was rejected (see [`DataError::BadImage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BadImageKind {
    /// The file does not exist.
    Missing,
    /// The file exists but cannot be opened or read.
    Unreadable,
    /// The file is empty (zero bytes).
    Empty,
    /// The content is no known image format (e.g. a text file named `.jpg`).
    NotAnImage,
    /// The header or data is invalid.
    Corrupt,
    /// The file ends early: a JPEG before its end-of-image marker, or a PNG before its last
    /// chunk (the JPEG decoder would otherwise fill the missing part with grey, silently).
    Truncated,
    /// Width × height is over `max_image_pixels` (checked on the header, before decoding).
    TooLarge,
}

impl std::fmt::Display for BadImageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BadImageKind::Missing => "missing",
            BadImageKind::Unreadable => "unreadable",
            BadImageKind::Empty => "empty",
            BadImageKind::NotAnImage => "not an image",
            BadImageKind::Corrupt => "corrupt",
            BadImageKind::Truncated => "truncated",
            BadImageKind::TooLarge => "too large",
        })
    }
}

impl DataError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A parse error at `path:line`.
    pub(crate) fn parse(path: &Path, line: usize, message: impl Into<String>) -> Self {
        Self::Parse {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    /// An image decode / encode error on `path`.
    pub(crate) fn image(path: &Path, source: image::ImageError) -> Self {
        Self::Image {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A rejected config value.
    pub(crate) fn config(field: &'static str, message: impl Into<String>) -> Self {
        Self::Config {
            field,
            message: message.into(),
        }
    }
}

/// Reads a whole text file, mapping the error to [`DataError::Io`].
pub(crate) fn read_text(path: &Path) -> Result<String, DataError> {
    std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))
}

/// Writes a whole text file, creating parent directories.
pub(crate) fn write_text(path: &Path, text: &str) -> Result<(), DataError> {
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
        }
    }
    std::fs::write(path, text).map_err(|e| DataError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_names_file_and_line() {
        let e = DataError::parse(Path::new("a/b.txt"), 7, "expected a count");
        assert_eq!(e.to_string(), "a/b.txt:7: expected a count");
    }

    #[test]
    fn missing_file_names_the_file() {
        let e = read_text(Path::new("/nonexistent/visage/x.txt")).unwrap_err();
        assert!(
            e.to_string().starts_with("/nonexistent/visage/x.txt: "),
            "{e}"
        );
    }

    #[test]
    fn write_text_creates_parents() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x/y/z.txt");
        write_text(&p, "hi").unwrap();
        assert_eq!(read_text(&p).unwrap(), "hi");
    }
}
