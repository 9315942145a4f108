//! Errors of reading, applying and writing weight files.

use std::fmt;
use std::path::PathBuf;

/// One tensor whose shape in the file differs from the module's.
#[derive(Debug, Clone, PartialEq)]
pub struct Misshaped {
    /// The key in the file (PyTorch naming).
    pub key: String,
    /// Shape the module expects.
    pub expected: Vec<usize>,
    /// Shape found in the file.
    pub found: Vec<usize>,
}

/// Everything that kept a state dict from matching a module exactly. Loading is all or
/// nothing: any non-empty list here is an error, never a partial load.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeyMismatch {
    /// Keys the module needs that the file lacks (PyTorch naming).
    pub missing: Vec<String>,
    /// Keys in the file that the module has no place for (and that are not known to be
    /// ignorable, like a classifier head or BatchNorm's `num_batches_tracked`).
    pub unexpected: Vec<String>,
    /// Keys present on both sides with different shapes.
    pub misshaped: Vec<Misshaped>,
}

impl KeyMismatch {
    /// Whether all three lists are empty.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.misshaped.is_empty()
    }
}

/// At most this many keys of each kind are printed; the rest are counted.
const SHOWN: usize = 12;

fn write_list(f: &mut fmt::Formatter<'_>, title: &str, items: &[String]) -> fmt::Result {
    if items.is_empty() {
        return Ok(());
    }
    write!(f, "\n  {} {title}:", items.len())?;
    for item in items.iter().take(SHOWN) {
        write!(f, "\n    {item}")?;
    }
    if items.len() > SHOWN {
        write!(f, "\n    ... and {} more", items.len() - SHOWN)?;
    }
    Ok(())
}

impl fmt::Display for KeyMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_list(
            f,
            "missing key(s) (needed by the model, absent from the file)",
            &self.missing,
        )?;
        write_list(
            f,
            "unexpected key(s) (in the file, unknown to the model)",
            &self.unexpected,
        )?;
        let shapes: Vec<String> = self
            .misshaped
            .iter()
            .map(|m| {
                format!(
                    "{}: file has {:?}, model needs {:?}",
                    m.key, m.found, m.expected
                )
            })
            .collect();
        write_list(f, "key(s) with the wrong shape", &shapes)
    }
}

/// Errors of the weight import and export.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The file is neither a PyTorch checkpoint nor a safetensors file, or it is damaged
    /// (truncated, corrupt zip, bad pickle).
    #[error("{path} is not a readable PyTorch (.pth) or safetensors file: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The reader's explanation.
        message: String,
    },
    /// The file holds no tensors at all.
    #[error("{path} contains no tensors (is it a state dict saved with torch.save(model.state_dict())?)")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A tensor's data could not be decoded or has a type that is not a float.
    #[error("{path}: tensor `{key}`: {message}")]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The tensor's key.
        key: String,
        /// What went wrong.
        message: String,
    },
    /// The file's keys or shapes do not match the module; nothing was loaded.
    #[error("{path} does not match a {layout} (nothing was loaded):{mismatch}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// The architecture the file was loaded into, e.g. `ResNet-50`.
        layout: String,
        /// Every difference found.
        mismatch: KeyMismatch,
    },
    /// Writing a file failed.
    #[error("cannot write {path}: {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}
