//! What `--weights W [--config C]` names, for `visage detect`, `visage eval --split` and
//! export: the experiment config, and the weights (a verified checkpoint or a weights file).

use std::path::{Path, PathBuf};

use visage_backbone::weights::{parameter_shapes, StateDict};
use visage_kernels::KernelBackend;
use visage_model::{DetectorFamily, ModelError};

use super::{
    checkpoint_error, load_checkpoint_weights, read_checkpoint_meta, resolve_checkpoint,
    verify_files, CONFIG, MODEL, STATE,
};
use crate::config::ExperimentConfig;
use crate::error::TrainError;

/// Where the weights of `visage detect --weights W [--config C]` come from.
#[derive(Debug, Clone, PartialEq)]
pub enum WeightsSource {
    /// A checkpoint directory (its `model.safetensors`).
    Checkpoint(PathBuf),
    /// A weights file: a visage `model.safetensors`, or a checkpoint of the reference
    /// implementation the family follows (Pytorch_Retinaface's `.pth` / safetensors).
    File(PathBuf),
}

/// What `--weights W [--config C]` names: the experiment config describing the model, its
/// input normalisation and test settings, and where its weights are.
///
/// - `W` a checkpoint or run directory: its checkpoint (its weights, state and config checked
///   against its checksums), with its own config unless `C` is given;
/// - `W` a file (needs `C`): see [`WeightsSource::File`].
pub fn inference_source(
    weights: &Path,
    config: Option<&Path>,
) -> Result<(ExperimentConfig, WeightsSource), TrainError> {
    if weights.is_file() {
        let Some(config) = config else {
            return Err(checkpoint_error(
                weights,
                "a weights file needs --config (the experiment config describing its model)",
            ));
        };
        return Ok((
            ExperimentConfig::load(config)?,
            WeightsSource::File(weights.to_path_buf()),
        ));
    }
    let dir = resolve_checkpoint(weights)?;
    verify_files(&dir, &[MODEL, STATE, CONFIG])?;
    let config = match config {
        Some(config) => ExperimentConfig::load(config)?,
        None => read_checkpoint_meta(&dir)?.0,
    };
    Ok((config, WeightsSource::Checkpoint(dir)))
}

/// Loads the weights `source` names into `model`. A file whose keys are the model's own
/// parameter paths is a visage weights file; any other file is read as the family's
/// reference checkpoint ([`DetectorFamily::load_reference_weights`]: Pytorch_Retinaface's
/// keys for RetinaFace; other families refuse, naming the file).
pub fn load_inference_weights<B: KernelBackend, M: DetectorFamily<B>>(
    model: M,
    source: &WeightsSource,
) -> Result<M, TrainError> {
    match source {
        WeightsSource::Checkpoint(dir) => load_checkpoint_weights(model, dir),
        WeightsSource::File(path) => {
            let dict = StateDict::read(path).map_err(ModelError::from)?;
            let paths = parameter_shapes::<B, _>(&model);
            let is_visage = paths.iter().any(|(p, _)| dict.shape(p).is_some());
            if is_visage {
                Ok(model.load_weights(path)?)
            } else {
                Ok(model.load_reference_weights(&dict)?)
            }
        }
    }
}

/// A model of family `M` built from its spec, with the weights `source` names
/// ([`load_inference_weights`]) and its batch norms folded into their convolutions
/// ([`DetectorFamily::fold_norms`]): what `visage detect`, `visage eval --split` and
/// `visage export` run.
pub fn inference_model<B: KernelBackend, M: DetectorFamily<B>>(
    spec: &M::Spec,
    source: &WeightsSource,
    device: &B::Device,
) -> Result<M, TrainError> {
    Ok(load_inference_weights(M::new(spec, device)?, source)?.fold_norms())
}
