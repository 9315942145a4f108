use thiserror::Error;

/// Errors of the mesh crate: a malformed OBJ or hierarchy file (named, with the line where
/// there is one), or an inconsistent configuration.
#[derive(Debug, Error)]
pub enum MeshError {
    /// A malformed line of an OBJ file.
    #[error("{origin}:{line}: {message}")]
    Obj {
        /// The file (or `"<memory>"`).
        origin: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A hierarchy file that does not parse or is inconsistent.
    #[error("mesh hierarchy {origin}: {message}")]
    Hierarchy {
        /// The file (or `"<embedded>"`).
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A configuration value out of range (the message names the key).
    #[error("{0}")]
    Config(String),
}
