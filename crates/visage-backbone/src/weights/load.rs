//! Applying a [`StateDict`] to a module: all tensors or none.

use std::collections::BTreeSet;

use burn::prelude::*;
use burn_store::{ApplyError, ModuleSnapshot};
use visage_kernels::KernelBackend;

use super::state_dict::is_float;
use super::{KeyMismatch, Misshaped, StateDict, WeightsError};

/// How one architecture's parameter paths correspond to the keys of the PyTorch state dicts
/// it loads (torchvision's ResNet, Pytorch_Retinaface's MobileNet).
///
/// Paths are burn-store's: field names joined by `.`, enum variants skipped
/// (`layer1.0.downsample.conv.weight`). Keys are PyTorch's (`layer1.0.downsample.0.weight`).
#[derive(Debug, Clone, Copy)]
pub struct TorchLayout {
    /// Name used in messages, e.g. `torchvision ResNet`.
    pub name: &'static str,
    /// PyTorch key → parameter path (keys it does not know are returned unchanged).
    pub key_to_path: fn(&str) -> String,
    /// Parameter path → PyTorch key; the inverse of `key_to_path`.
    pub path_to_key: fn(&str) -> String,
    /// Keys that reference checkpoints hold and this module deliberately does not (an
    /// ImageNet classifier, BatchNorm's `num_batches_tracked`); they are skipped silently.
    pub is_ignored: fn(&str) -> bool,
}

/// Keys every layout ignores: BatchNorm's step counter, which no visage module keeps.
pub fn is_batch_norm_counter(key: &str) -> bool {
    key.ends_with(".num_batches_tracked") || key == "num_batches_tracked"
}

/// Parameter paths and shapes of a module, enum variants skipped.
pub fn parameter_shapes<B: KernelBackend, M: Module<B>>(module: &M) -> Vec<(String, Vec<usize>)> {
    module
        .collect(None, None, true)
        .into_iter()
        .map(|s| (s.full_path(), s.shape.to_vec()))
        .collect()
}

/// Loads every tensor of `dict` into `module`, mapping keys through `layout` and converting
/// half / double precision to `f32`.
///
/// All or nothing: if any parameter of the module has no tensor in the file, any tensor in the
/// file (not ignored by the layout) has no parameter, or any shape differs, the error lists all
/// of them and the module is dropped.
///
/// # Errors
/// [`WeightsError::Mismatch`] as above; [`WeightsError::Tensor`] if a tensor's data cannot be
/// read (a truncated file) or is not a float tensor.
pub fn load_state_dict<B: KernelBackend, M: Module<B>>(
    mut module: M,
    dict: &StateDict,
    layout: &TorchLayout,
) -> Result<M, WeightsError> {
    let expected: BTreeSet<String> = parameter_shapes::<B, M>(&module)
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    let mut snapshots = Vec::new();
    let mut unexpected = Vec::new();
    for key in dict.keys() {
        if (layout.is_ignored)(key) {
            continue;
        }
        let path = (layout.key_to_path)(key);
        if !expected.contains(&path) {
            unexpected.push(key.to_string());
            continue;
        }
        let dtype = dict.dtype(key).expect("key comes from the dict");
        if !is_float(dtype) {
            return Err(WeightsError::Tensor {
                path: dict.source().to_path_buf(),
                key: key.to_string(),
                message: format!("is {dtype:?}, a float tensor is needed"),
            });
        }
        snapshots.push(
            dict.f32_snapshot(key, &path)
                .expect("key comes from the dict"),
        );
    }
    let result = module_apply::<B, M>(&mut module, snapshots);
    let mut mismatch = KeyMismatch {
        missing: result
            .missing
            .iter()
            .map(|(path, _)| (layout.path_to_key)(path))
            .collect(),
        unexpected,
        misshaped: Vec::new(),
    };
    for error in result.errors {
        match error {
            ApplyError::ShapeMismatch {
                path,
                expected,
                found,
            } => mismatch.misshaped.push(Misshaped {
                key: (layout.path_to_key)(&path),
                expected: expected.to_vec(),
                found: found.to_vec(),
            }),
            ApplyError::DTypeMismatch { ref path, .. }
            | ApplyError::AdapterError { ref path, .. }
            | ApplyError::LoadError { ref path, .. } => {
                return Err(WeightsError::Tensor {
                    path: dict.source().to_path_buf(),
                    key: (layout.path_to_key)(path),
                    message: error.to_string(),
                })
            }
        }
    }
    if mismatch.is_empty() {
        Ok(module)
    } else {
        mismatch.missing.sort();
        mismatch.unexpected.sort();
        Err(WeightsError::Mismatch {
            path: dict.source().to_path_buf(),
            layout: layout.name.to_string(),
            mismatch,
        })
    }
}

fn module_apply<B: KernelBackend, M: Module<B>>(
    module: &mut M,
    snapshots: Vec<burn_store::TensorSnapshot>,
) -> burn_store::ApplyResult {
    ModuleSnapshot::<B>::apply(module, snapshots, None, None, true)
}
