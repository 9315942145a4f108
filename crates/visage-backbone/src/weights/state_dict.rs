//! A flat map of named tensors read from a PyTorch `.pth` or a safetensors file.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use burn::module::ParamId;
use burn::tensor::{DType, TensorData};
use burn_store::pytorch::PytorchReader;
use burn_store::TensorSnapshot;
use safetensors::SafeTensors;

use super::WeightsError;

/// Keys under which training scripts save the model beside other things
/// (`torch.save({"epoch": .., "state_dict": .., "optimizer": ..})`): when a file has keys under
/// one of these, only those are kept, unwrapped.
const CHECKPOINT_WRAPPERS: [&str; 2] = ["state_dict.", "model_state_dict."];
/// A wrapper removed only when every key carries it (a model could have a `model` field).
const MODEL_WRAPPER: &str = "model.";
/// The prefix `nn.DataParallel` / `DistributedDataParallel` adds to every key.
const DATA_PARALLEL_PREFIX: &str = "module.";

/// The file formats a [`StateDict`] is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    /// `torch.save` output: the zip format (PyTorch ≥ 1.6) or the legacy pickle format.
    Pytorch,
    /// A safetensors file (what `visage import` writes).
    Safetensors,
}

/// Named tensors from a weight file, keyed as PyTorch names them (`layer1.0.conv1.weight`).
///
/// Reading keeps only the `state_dict` (or `model_state_dict`) entry of a training checkpoint
/// that has one (dropping the optimiser state and the like), removes a `model.` wrapper that
/// every key carries, and then the `module.` prefix of data-parallel training. Tensor data is
/// read lazily, when a tensor is applied to a module.
pub struct StateDict {
    source: PathBuf,
    tensors: BTreeMap<String, TensorSnapshot>,
}

impl std::fmt::Debug for StateDict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDict")
            .field("source", &self.source)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

/// Detects the format from the first bytes of the file.
fn sniff(path: &Path) -> Result<WeightFormat, WeightsError> {
    let io = |e: std::io::Error| WeightsError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut head = Vec::with_capacity(9);
    std::fs::File::open(path)
        .map_err(io)?
        .take(9)
        .read_to_end(&mut head)
        .map_err(io)?;
    let format_error = |message: &str| WeightsError::Format {
        path: path.to_path_buf(),
        message: message.to_string(),
    };
    match head.as_slice() {
        [] => Err(format_error("the file is empty")),
        [b'P', b'K', 3, 4, ..] => Ok(WeightFormat::Pytorch),
        // Legacy `torch.save` files start with a pickle protocol marker.
        [0x80, ..] => Ok(WeightFormat::Pytorch),
        [_, _, _, _, _, _, _, _, b'{'] => Ok(WeightFormat::Safetensors),
        _ => Err(format_error(
            "unrecognised header (expected a zip or pickle PyTorch checkpoint, or safetensors)",
        )),
    }
}

fn snapshot_from_data(key: &str, data: TensorData) -> TensorSnapshot {
    TensorSnapshot::from_data(data, split_key(key), Vec::new(), ParamId::new())
}

fn split_key(key: &str) -> Vec<String> {
    key.split('.').map(str::to_string).collect()
}

/// Reads a safetensors file into snapshots (eagerly: these files are the project's own).
fn read_safetensors(path: &Path) -> Result<Vec<(String, TensorSnapshot)>, WeightsError> {
    let bytes = std::fs::read(path).map_err(|e| WeightsError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| WeightsError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut out = Vec::with_capacity(file.len());
    for (key, view) in file.tensors() {
        let shape = view.shape().to_vec();
        let raw = view.data();
        let data = match view.dtype() {
            safetensors::Dtype::F32 => TensorData::from_bytes_vec(raw.to_vec(), shape, DType::F32),
            safetensors::Dtype::F64 => TensorData::from_bytes_vec(raw.to_vec(), shape, DType::F64),
            safetensors::Dtype::F16 => TensorData::from_bytes_vec(raw.to_vec(), shape, DType::F16),
            safetensors::Dtype::BF16 => {
                TensorData::from_bytes_vec(raw.to_vec(), shape, DType::BF16)
            }
            safetensors::Dtype::I64 => TensorData::from_bytes_vec(raw.to_vec(), shape, DType::I64),
            other => {
                return Err(WeightsError::Tensor {
                    path: path.to_path_buf(),
                    key,
                    message: format!("unsupported safetensors dtype {other:?}"),
                })
            }
        };
        let snapshot = snapshot_from_data(&key, data);
        out.push((key, snapshot));
    }
    Ok(out)
}

/// Explains a PyTorch reader failure; for the one known reader limitation, says how to get
/// a file it reads.
fn pytorch_read_error(path: &Path, error: impl std::fmt::Display) -> WeightsError {
    let mut message = error.to_string();
    if message.contains("dict key must be a string") {
        message.push_str(&format!(
            "\n  The file holds a dict with non-string keys (typically an optimiser state saved \
             beside the weights), which burn-store 0.21's pickle reader cannot parse. Save the \
             weights alone once:\n    python -c \"import torch; c = torch.load('{0}', \
             map_location='cpu'); torch.save(c.get('state_dict', c), 'weights.pth')\"",
            path.display()
        ));
    }
    WeightsError::Format {
        path: path.to_path_buf(),
        message,
    }
}

impl StateDict {
    /// Reads a `.pth` / `.pt` (zip or legacy) or `.safetensors` file; the format is detected
    /// from the file's first bytes, not its extension.
    ///
    /// # Errors
    /// [`WeightsError::Io`] if the file cannot be read, [`WeightsError::Format`] if it is not a
    /// readable checkpoint (wrong format, truncated, corrupt), [`WeightsError::Empty`] if it
    /// holds no tensors.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, WeightsError> {
        let path = path.as_ref();
        let entries: Vec<(String, TensorSnapshot)> = match sniff(path)? {
            WeightFormat::Pytorch => PytorchReader::new(path)
                .map_err(|e| pytorch_read_error(path, e))?
                .into_tensors()
                .into_iter()
                .collect(),
            WeightFormat::Safetensors => read_safetensors(path)?,
        };
        if entries.is_empty() {
            return Err(WeightsError::Empty {
                path: path.to_path_buf(),
            });
        }
        let mut dict = StateDict {
            source: path.to_path_buf(),
            tensors: entries.into_iter().collect(),
        };
        if let Some(wrapper) = CHECKPOINT_WRAPPERS
            .iter()
            .find(|w| dict.keys().any(|k| k.starts_with(*w)))
        {
            dict = dict.with_prefix_removed(wrapper);
        } else if dict.all_keys_start_with(MODEL_WRAPPER) {
            dict = dict.with_prefix_removed(MODEL_WRAPPER);
        }
        if dict.all_keys_start_with(DATA_PARALLEL_PREFIX) {
            dict = dict.with_prefix_removed(DATA_PARALLEL_PREFIX);
        }
        Ok(dict)
    }

    /// A state dict from in-memory tensors (tests, synthetic weights). `source` names it in
    /// error messages.
    pub fn from_tensors(
        source: impl Into<PathBuf>,
        tensors: impl IntoIterator<Item = (String, TensorData)>,
    ) -> Self {
        StateDict {
            source: source.into(),
            tensors: tensors
                .into_iter()
                .map(|(key, data)| {
                    let snapshot = snapshot_from_data(&key, data);
                    (key, snapshot)
                })
                .collect(),
        }
    }

    /// The file this was read from (or the name given to [`from_tensors`](Self::from_tensors)).
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether there are no tensors.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Keys in sorted order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Shape of one tensor.
    pub fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.tensors.get(key).map(|s| s.shape.to_vec())
    }

    /// Stored element type of one tensor (before any conversion).
    pub fn dtype(&self, key: &str) -> Option<DType> {
        self.tensors.get(key).map(|s| s.dtype)
    }

    /// One tensor's data converted to `f32`.
    ///
    /// # Errors
    /// [`WeightsError::Tensor`] if the key is absent, the data cannot be read, or the tensor is
    /// not a floating-point tensor.
    pub fn to_f32(&self, key: &str) -> Result<TensorData, WeightsError> {
        let err = |message: String| WeightsError::Tensor {
            path: self.source.clone(),
            key: key.to_string(),
            message,
        };
        let snapshot = self
            .tensors
            .get(key)
            .ok_or_else(|| err("no such tensor".into()))?;
        if !is_float(snapshot.dtype) {
            return Err(err(format!(
                "is {:?}, a float tensor is needed",
                snapshot.dtype
            )));
        }
        let data = snapshot.to_data().map_err(|e| err(e.to_string()))?;
        Ok(data.convert_dtype(DType::F32))
    }

    /// The tensors whose key starts with `prefix`, with the prefix removed (e.g. `body.` to
    /// take a detector checkpoint's backbone).
    pub fn with_prefix_removed(&self, prefix: &str) -> Self {
        StateDict {
            source: self.source.clone(),
            tensors: self
                .tensors
                .iter()
                .filter_map(|(key, snapshot)| {
                    let rest = key.strip_prefix(prefix)?;
                    let mut snapshot = snapshot.clone();
                    snapshot.path_stack = Some(split_key(rest));
                    Some((rest.to_string(), snapshot))
                })
                .collect(),
        }
    }

    fn all_keys_start_with(&self, prefix: &str) -> bool {
        !self.tensors.is_empty() && self.tensors.keys().all(|k| k.starts_with(prefix))
    }

    /// A lazily converted (`f32`) snapshot of the float tensor `key`, addressed by `path` in
    /// the module (callers check [`is_float`] first).
    pub(crate) fn f32_snapshot(&self, key: &str, path: &str) -> Option<TensorSnapshot> {
        let snapshot = self.tensors.get(key)?;
        let source = snapshot.clone_data_fn();
        let convert = Rc::new(move || source().map(|d| d.convert_dtype(DType::F32)));
        Some(TensorSnapshot::from_closure(
            convert,
            DType::F32,
            snapshot.shape.clone(),
            split_key(path),
            Vec::new(),
            ParamId::new(),
        ))
    }
}

/// Whether `dtype` is a floating-point type that converts to `f32`.
pub(crate) fn is_float(dtype: DType) -> bool {
    matches!(dtype, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
}
