//! Checkpoints: a directory holding the model weights, the optimiser state, the training
//! state and the resolved config, so that `--weights DIR` alone rebuilds the detector.
//!
//! ```text
//! runs/<name>/epoch-0003/{model.safetensors, optimizer.mpk, state.json, config.toml}
//! runs/<name>/last/   the latest epoch (same files)
//! runs/<name>/best/   the best validated epoch, or the latest when validation is off
//! ```
//! Every directory is written under a temporary name and renamed into place, so a crash never
//! leaves a half-written checkpoint where a reader looks.
//!
//! The model is a safetensors file keyed by parameter path
//! ([`DetectorFamily::save_weights`]), readable by any safetensors tool; the optimiser state
//! is Burn's named MessagePack record.

use std::path::{Path, PathBuf};

use burn::module::AutodiffModule;
use burn::optim::Optimizer;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::{Deserialize, Serialize};
use visage_backbone::weights::{parameter_shapes, StateDict};
use visage_model::{DetectorFamily, ModelError};

use crate::config::ExperimentConfig;
use crate::error::{io, TrainError};

const MODEL: &str = "model.safetensors";
const OPTIMIZER: &str = "optimizer";
const STATE: &str = "state.json";
const CONFIG: &str = "config.toml";

/// Progress of a run, saved with each checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Global iterations completed.
    pub iteration: usize,
    /// Best validation score so far (mean of Easy / Medium / Hard AP), if validated.
    pub best_score: Option<f64>,
    /// This checkpoint's validation score, if validated.
    pub score: Option<f64>,
}

fn recorder() -> NamedMpkFileRecorder<FullPrecisionSettings> {
    NamedMpkFileRecorder::new()
}

/// Loads `dir/model.safetensors` into `model`: every tensor, or an error naming the file.
pub fn load_checkpoint_weights<B: Backend, M: DetectorFamily<B>>(
    model: M,
    dir: &Path,
) -> Result<M, TrainError> {
    let path = dir.join(MODEL);
    if !path.is_file() {
        return Err(checkpoint_error(
            &path,
            "missing (checkpoints written before model.safetensors are not readable)",
        ));
    }
    Ok(model.load_weights(&path)?)
}

fn checkpoint_error(path: &Path, message: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Writes `dir` atomically: everything goes to `dir.tmp` first, which is renamed into place.
pub fn save_checkpoint<B, M, O>(
    dir: &Path,
    model: &M,
    optimizer: &O,
    state: &TrainState,
    config: &ExperimentConfig,
) -> Result<(), TrainError>
where
    B: AutodiffBackend,
    M: DetectorFamily<B> + AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    let tmp = sibling(dir, "tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    model.save_weights(&tmp.join(MODEL))?;
    Recorder::<B>::record(&recorder(), optimizer.to_record(), tmp.join(OPTIMIZER))
        .map_err(|e| checkpoint_error(&tmp, e))?;
    let state_json = serde_json::to_string_pretty(state).expect("state serialises");
    std::fs::write(tmp.join(STATE), state_json).map_err(io(tmp.join(STATE)))?;
    std::fs::write(tmp.join(CONFIG), config.to_toml()).map_err(io(tmp.join(CONFIG)))?;
    replace_dir(&tmp, dir)
}
/// Makes `dest` a copy of the checkpoint `src` (hard links where possible), atomically.
pub fn publish_checkpoint(src: &Path, dest: &Path) -> Result<(), TrainError> {
    let tmp = sibling(dest, "tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    for entry in std::fs::read_dir(src).map_err(io(src))? {
        let from = entry.map_err(io(src))?.path();
        let to = tmp.join(from.file_name().expect("directory entries have names"));
        if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).map_err(io(&from))?;
        }
    }
    replace_dir(&tmp, dest)
}

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".{suffix}"));
    dir.with_file_name(name)
}

/// Renames `tmp` to `dest`, moving an existing `dest` aside first and deleting it after.
fn replace_dir(tmp: &Path, dest: &Path) -> Result<(), TrainError> {
    if dest.exists() {
        let old = sibling(dest, "old");
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io(&old))?;
        }
        std::fs::rename(dest, &old).map_err(io(dest))?;
        std::fs::rename(tmp, dest).map_err(io(tmp))?;
        std::fs::remove_dir_all(&old).map_err(io(&old))?;
    } else {
        std::fs::rename(tmp, dest).map_err(io(tmp))?;
    }
    Ok(())
}

/// Resolves what a user passes as `--weights`: a checkpoint directory, or a run directory
/// (its `best`, else its `last`). A checkpoint interrupted mid-replacement (`best.old`) is
/// found too.
pub fn resolve_checkpoint(path: &Path) -> Result<PathBuf, TrainError> {
    let is_checkpoint = |p: &Path| p.join(CONFIG).is_file() && p.join(STATE).is_file();
    let mut candidates = vec![path.to_path_buf(), sibling(path, "old")];
    for name in ["best", "last", "best.old", "last.old"] {
        candidates.push(path.join(name));
    }
    candidates
        .into_iter()
        .find(|p| is_checkpoint(p))
        .ok_or_else(|| {
            checkpoint_error(
                path,
                "not a checkpoint (expected config.toml, state.json and model.safetensors) nor a run \
                 directory with `best/` or `last/`",
            )
        })
}

/// Reads the config and training state of a checkpoint.
pub fn read_checkpoint_meta(dir: &Path) -> Result<(ExperimentConfig, TrainState), TrainError> {
    let config = ExperimentConfig::load(&dir.join(CONFIG))?;
    let state_path = dir.join(STATE);
    let text = std::fs::read_to_string(&state_path).map_err(io(&state_path))?;
    let state = serde_json::from_str(&text).map_err(|e| checkpoint_error(&state_path, e))?;
    Ok((config, state))
}

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
/// - `W` a checkpoint or run directory: its checkpoint, with its own config unless `C` is
///   given;
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
pub fn load_inference_weights<B: Backend, M: DetectorFamily<B>>(
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
/// ([`load_inference_weights`]): what `visage detect` and `visage eval --split` run.
pub fn inference_model<B: Backend, M: DetectorFamily<B>>(
    spec: &M::Spec,
    source: &WeightsSource,
    device: &B::Device,
) -> Result<M, TrainError> {
    load_inference_weights(M::new(spec, device)?, source)
}

/// Loads model weights and optimiser state into a run being resumed.
pub fn load_for_resume<B, M, O>(
    dir: &Path,
    model: M,
    optimizer: O,
    device: &B::Device,
) -> Result<(M, O, TrainState), TrainError>
where
    B: AutodiffBackend,
    M: DetectorFamily<B> + AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    let (_, state) = read_checkpoint_meta(dir)?;
    let model = load_checkpoint_weights(model, dir)?;
    let record = Recorder::<B>::load(&recorder(), dir.join(OPTIMIZER), device)
        .map_err(|e| checkpoint_error(dir, e))?;
    Ok((model, optimizer.load_record(record), state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_dir_swaps_atomically_and_cleans_up() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("last");
        for round in 0..2 {
            let tmp = sibling(&dest, "tmp");
            std::fs::create_dir_all(&tmp).unwrap();
            std::fs::write(tmp.join("x"), format!("{round}")).unwrap();
            replace_dir(&tmp, &dest).unwrap();
            assert_eq!(
                std::fs::read_to_string(dest.join("x")).unwrap(),
                format!("{round}")
            );
            assert!(!tmp.exists());
            assert!(!sibling(&dest, "old").exists());
        }
    }

    #[test]
    fn resolve_prefers_best_and_explains_failure() {
        let root = tempfile::tempdir().unwrap();
        let err = resolve_checkpoint(root.path()).unwrap_err().to_string();
        assert!(err.contains("not a checkpoint"), "{err}");
        for name in ["last", "best"] {
            let d = root.path().join(name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(CONFIG), "").unwrap();
            std::fs::write(d.join(STATE), "{}").unwrap();
        }
        assert_eq!(
            resolve_checkpoint(root.path()).unwrap(),
            root.path().join("best")
        );
        let last = root.path().join("last");
        assert_eq!(resolve_checkpoint(&last).unwrap(), last);
    }
}
