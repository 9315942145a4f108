//! Writing a module's parameters as a safetensors file with PyTorch key names.

use std::collections::HashMap;
use std::path::Path;

use burn::prelude::*;
use burn::tensor::DType;
use burn_store::ModuleSnapshot;
use safetensors::tensor::TensorView;
use visage_kernels::KernelBackend;

use super::{TorchLayout, WeightsError};

/// Writes every parameter of `module` (as `f32`) to `path` in safetensors format, keyed by
/// `layout`'s PyTorch names, so the file loads back with [`super::StateDict::read`] and also
/// into the reference PyTorch module (`load_state_dict(safetensors.torch.load_file(path),
/// strict=False)`; `num_batches_tracked` is not written). `metadata` is stored in the header.
///
/// The file is written to a temporary sibling and renamed, so a crash never leaves a
/// half-written file under `path`.
///
/// # Errors
/// [`WeightsError::Write`] if a tensor cannot be read or the file cannot be written.
pub fn save_safetensors<B: KernelBackend, M: Module<B>>(
    module: &M,
    layout: &TorchLayout,
    path: &Path,
    metadata: HashMap<String, String>,
) -> Result<(), WeightsError> {
    let write_err = |message: String| WeightsError::Write {
        path: path.to_path_buf(),
        message,
    };
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for snapshot in ModuleSnapshot::<B>::collect(module, None, None, true) {
        let key = (layout.path_to_key)(&snapshot.full_path());
        let data = snapshot
            .to_data()
            .map_err(|e| write_err(format!("tensor {key}: {e}")))?
            .convert_dtype(DType::F32);
        tensors.push((key, data.shape.to_vec(), data.as_bytes().to_vec()));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let views = tensors
        .iter()
        .map(|(key, shape, bytes)| {
            TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .map(|view| (key.as_str(), view))
                .map_err(|e| write_err(format!("tensor {key}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let file_name = path
        .file_name()
        .ok_or_else(|| write_err("not a file path".into()))?
        .to_string_lossy();
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    safetensors::serialize_to_file(views, Some(metadata), &tmp)
        .map_err(|e| write_err(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| write_err(e.to_string()))
}
