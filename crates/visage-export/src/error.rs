//! Errors of the export, each naming the layer, the option or the parameters concerned.

use thiserror::Error;

/// Why a model could not be exported.
#[derive(Debug, Error)]
pub enum ExportError {
    /// A layer or setting the exporter cannot express in ONNX; `layer` is its parameter path
    /// (e.g. `neck.upsample.0`).
    #[error("cannot export layer `{layer}`: {why}")]
    UnsupportedLayer {
        /// Parameter path of the layer.
        layer: String,
        /// What the exporter does not support.
        why: String,
    },
    /// Parameters of the model that no exporter read: the model holds a layer the exporter
    /// does not know, and writing the graph without it would be silently wrong.
    #[error(
        "the exporter does not know the layer(s) holding {}; refusing to write a graph \
         without them",
        list(.0)
    )]
    UnknownLayers(Vec<String>),
    /// An option out of range (`option` names the flag or key).
    #[error("{option}: {why}")]
    InvalidOption {
        /// The flag or key.
        option: String,
        /// What is wrong with it.
        why: String,
    },
    /// Writing the file.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn list(paths: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut text = paths
        .iter()
        .take(SHOWN)
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > SHOWN {
        text.push_str(&format!(" and {} more", paths.len() - SHOWN));
    }
    text
}
