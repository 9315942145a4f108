//! Writing the model file: serialised in memory, written beside the target and renamed into
//! place, so a failed write (a full disk) never leaves a truncated `.onnx` behind, and an
//! existing file is replaced only by a complete one.

use std::path::Path;

use prost::Message;

use crate::error::ExportError;
use crate::proto::ModelProto;

/// Writes `model` to `path` (creating its folder); returns the bytes written.
///
/// # Errors
/// [`ExportError::Write`] naming the file.
pub fn write_model(model: &ModelProto, path: &Path) -> Result<usize, ExportError> {
    let error = |source| ExportError::Write {
        path: path.to_path_buf(),
        source,
    };
    let bytes = model.encode_to_vec();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(error)?;
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let written = std::fs::write(&partial, &bytes).and_then(|()| std::fs::rename(&partial, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(error(e));
    }
    Ok(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_model_that_reads_back_and_leaves_no_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/model.onnx");
        let model = ModelProto {
            producer_name: "visage".into(),
            ..Default::default()
        };
        let n = write_model(&model, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), n);
        assert_eq!(ModelProto::decode(bytes.as_slice()).unwrap(), model);
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("model.onnx")]);
    }

    #[test]
    fn an_unwritable_path_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let path = blocker.join("model.onnx");
        let err = write_model(&ModelProto::default(), &path).unwrap_err();
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
}
