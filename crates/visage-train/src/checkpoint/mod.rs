//! Checkpoints: a directory holding the model weights, the optimiser state, the training
//! state and the resolved config, so that `--weights DIR` alone rebuilds the detector and
//! `--resume` continues the run exactly.
//!
//! ```text
//! runs/<name>/epoch-0003/{model.safetensors, optimizer.mpk, state.json, config.toml,
//!                         checksums.sha256}
//! runs/<name>/last/   the latest checkpoint: an epoch's, or one written mid-epoch
//!                     (`train.checkpoint_every`, `--max-iterations`)
//! runs/<name>/best/   the best validated epoch, or the latest epoch when validation is off
//! ```
//! - **Atomic.** Every directory is written under a temporary name and renamed into place, so
//!   a crash never leaves a half-written checkpoint where a reader looks; a failed write (a
//!   full disk) removes its temporary directory.
//! - **Verified.** `checksums.sha256` (the `sha256sum -c` format) lists every file's SHA-256;
//!   resume, detect and eval check it and name a corrupt file.
//! - **Finite.** The weights and the optimiser state are checked before anything is written:
//!   no checkpoint ever holds a NaN or an infinity.
//! - **Exact.** The model is saved with its batch-norm running statistics synchronised, the
//!   optimiser state is keyed by parameter path instead of the process's parameter ids
//!   ([`crate::param_paths`]) so a new process finds it, and the [`TrainState`] holds
//!   everything else a run continues from (the position in the epoch, the divergence guard,
//!   the metrics log's length).
//!
//! The model is a safetensors file keyed by parameter path
//! ([`DetectorFamily::weights_bytes`]), readable by any safetensors tool; the optimiser state
//! is Burn's named MessagePack record, keyed by parameter path, with its keys in order.
//!
//! Files: `files.rs` (the staged directory, checksums), `finite.rs` (the finiteness check and
//! the canonical MessagePack), `resume.rs` (which checkpoint a resumed run continues from),
//! `inference.rs` (what `--weights` names).

use std::path::{Path, PathBuf};

use burn::module::{AutodiffModule, Module};
use burn::optim::Optimizer;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use serde::{Deserialize, Serialize};
use visage_kernels::{KernelAutodiffBackend, KernelBackend};
use visage_model::DetectorFamily;

use crate::config::ExperimentConfig;
use crate::error::{io, TrainError};
use crate::param_paths::ParamPaths;

mod files;
mod finite;
mod inference;
mod resume;

pub use files::{sha256_hex, verify_files, CHECKSUMS};
pub use inference::{inference_model, inference_source, load_inference_weights, WeightsSource};
pub use resume::{find_resumable, load_for_resume, prepare_resume, Resumable};

const MODEL: &str = "model.safetensors";
const OPTIMIZER: &str = "optimizer.mpk";
const STATE: &str = "state.json";
const CONFIG: &str = "config.toml";

/// Progress of a run, saved with each checkpoint (`state.json`).
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
    /// Whether this checkpoint was published as `best`.
    #[serde(default)]
    pub is_best: bool,
    /// The epoch in progress (all zero at an epoch's end).
    #[serde(default)]
    pub epoch: EpochProgress,
    /// The divergence guard's counters.
    #[serde(default)]
    pub guard: GuardState,
    /// The length of `metrics.jsonl` when the checkpoint was written: a resumed run cuts
    /// off what the interrupted run logged after it.
    #[serde(default)]
    pub metrics_bytes: Option<u64>,
}

/// How far the epoch in progress got.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochProgress {
    /// Batches of the epoch done.
    pub batches_done: usize,
    /// Sum of their total losses (skipped steps excluded).
    pub loss_sum: f64,
    /// Steps whose loss is in `loss_sum`.
    pub steps: usize,
    /// Images trained on.
    pub images: usize,
}

impl EpochProgress {
    /// The mean total loss of the epoch's applied steps (0 without any).
    pub fn mean_loss(&self) -> f64 {
        self.loss_sum / self.steps.max(1) as f64
    }
}

/// The divergence guard (`train.on_non_finite`, `train.loss_spike_factor`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GuardState {
    /// Steps skipped for non-finite loss or gradients, in the whole run.
    pub skipped_steps: usize,
    /// Of which in a row, up to the last step.
    pub consecutive_skips: usize,
    /// Running mean of the total loss (exponential, over about 50 steps).
    pub loss_mean: Option<f64>,
}

fn checkpoint_error(path: &Path, message: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Loads `dir/model.safetensors` into `model`: every tensor, or an error naming the file.
/// (Checksums are checked where a checkpoint is chosen: [`inference_source`],
/// [`find_resumable`].)
pub fn load_checkpoint_weights<B: KernelBackend, M: DetectorFamily<B>>(
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

/// Makes the batch-norm running statistics of `model` current: Burn keeps each thread's
/// latest update aside until the next read, and a weights file reads the value before it.
fn sync_running_stats<B: KernelBackend, M: Module<B>>(model: &M) {
    // Running states share their storage between clones; making a record synchronises it.
    let _ = model.clone().into_record();
}

/// Writes the checkpoint `dir` atomically: the weights (running statistics synchronised) and
/// the optimiser state are serialised and checked to be finite in memory, then everything
/// goes to `dir.tmp` with its checksum, which is renamed into place.
///
/// # Errors
/// [`TrainError::NonFiniteCheckpoint`] (nothing written), [`TrainError::Write`] (a full disk:
/// the temporary directory is removed), or an I/O error naming the path.
pub fn save_checkpoint<B, M, O>(
    dir: &Path,
    model: &M,
    optimizer: &O,
    state: &TrainState,
    config: &ExperimentConfig,
) -> Result<(), TrainError>
where
    B: KernelAutodiffBackend,
    M: DetectorFamily<B> + AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    sync_running_stats(model);
    let refuse = |what: &'static str, found: finite::NonFinite| TrainError::NonFiniteCheckpoint {
        path: dir.to_path_buf(),
        what,
        count: found.count,
        first: found.first,
    };
    let (model_bytes, found) = finite::canonical_safetensors(&model.weights_bytes()?)
        .map_err(|e| checkpoint_error(dir, e))?;
    if let Some(found) = found {
        return Err(refuse("model weights", found));
    }
    let record = Recorder::<B>::record(&recorder(), optimizer.to_record(), ())
        .map_err(|e| checkpoint_error(dir, format!("serialising the optimiser state: {e}")))?;
    // Keyed by parameter path instead of the process's parameter ids.
    let paths = ParamPaths::of(model);
    let by_path = |id: &str| {
        paths
            .path(id)
            .map(str::to_string)
            .ok_or_else(|| format!("optimiser state for parameter id {id}, not in the model"))
    };
    let (optimizer_bytes, found) =
        finite::canonical_record(&record, &by_path).map_err(|e| checkpoint_error(dir, e))?;
    if let Some(found) = found {
        return Err(refuse("optimiser state", found));
    }
    let state_json = serde_json::to_string_pretty(state).expect("state serialises");
    let mut staged = files::StagedDir::create(sibling(dir, "tmp"))?;
    staged.write(MODEL, &model_bytes)?;
    staged.write(OPTIMIZER, &optimizer_bytes)?;
    staged.write(STATE, state_json.as_bytes())?;
    staged.write(CONFIG, config.to_toml().as_bytes())?;
    let tmp = staged.finish()?;
    replace_dir(&tmp, dir)
}

fn recorder() -> NamedMpkBytesRecorder<FullPrecisionSettings> {
    NamedMpkBytesRecorder::new()
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
    files::sync_dir(&tmp)?;
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
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        files::sync_dir(parent)?;
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
    Ok((config, read_state(dir)?))
}

/// Reads a checkpoint's `state.json`.
fn read_state(dir: &Path) -> Result<TrainState, TrainError> {
    let state_path = dir.join(STATE);
    let text = std::fs::read_to_string(&state_path).map_err(io(&state_path))?;
    serde_json::from_str(&text).map_err(|e| checkpoint_error(&state_path, e))
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

    /// Without serde_json's `float_roundtrip`, this running mean came back one bit lower,
    /// and a resumed run's guard (and so its state) was not the killed run's.
    #[test]
    fn the_state_comes_back_bit_for_bit() {
        let root = tempfile::tempdir().unwrap();
        let state = TrainState {
            guard: GuardState {
                loss_mean: Some(3.512_319_060_955_047_4),
                ..GuardState::default()
            },
            epoch: EpochProgress {
                loss_sum: 0.1 + 0.2,
                ..EpochProgress::default()
            },
            ..TrainState::default()
        };
        let json = serde_json::to_string_pretty(&state).unwrap();
        std::fs::write(root.path().join(STATE), json).unwrap();
        let back = read_state(root.path()).unwrap();
        let bits = |s: &TrainState| {
            (
                s.guard.loss_mean.map(f64::to_bits),
                s.epoch.loss_sum.to_bits(),
            )
        };
        assert_eq!(bits(&back), bits(&state));
        assert_eq!(back, state);
    }
}
