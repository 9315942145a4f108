//! Which checkpoint a resumed run continues from, and putting the run directory back in the
//! state the interrupted run had when it wrote that checkpoint.
//!
//! A run killed at any moment leaves one of: `last` (the newest), `last.old` without `last`
//! (killed between the two renames of a replacement), an `epoch-N` newer than `last` (killed
//! before publishing it), and temporary `*.tmp` directories (killed while writing). The
//! newest checkpoint that reads and verifies is the one to continue from; temporary
//! directories are never read.

use std::path::{Path, PathBuf};

use burn::module::{AutodiffModule, ParamId};
use burn::optim::Optimizer;
use burn::record::Recorder;
use visage_kernels::KernelAutodiffBackend;
use visage_model::DetectorFamily;

use super::{
    checkpoint_error, finite, load_checkpoint_weights, publish_checkpoint, read_state, recorder,
    verify_files, TrainState, CONFIG, MODEL, OPTIMIZER, STATE,
};
use crate::error::{io, write_error, TrainError};
use crate::param_paths::ParamPaths;

/// The checkpoint a resumed run continues from.
#[derive(Debug, Clone, PartialEq)]
pub struct Resumable {
    /// Its directory.
    pub dir: PathBuf,
    /// Its training state.
    pub state: TrainState,
    /// Checkpoints that could not be used, with the reason (corrupt, incomplete).
    pub passed_over: Vec<(PathBuf, String)>,
}

/// The checkpoint directories of `run_dir` a run may continue from: `last`, `last.old` and
/// every `epoch-N`.
fn candidates(run_dir: &Path) -> Result<Vec<PathBuf>, TrainError> {
    let mut dirs = vec![run_dir.join("last"), run_dir.join("last.old")];
    for entry in std::fs::read_dir(run_dir).map_err(io(run_dir))? {
        let path = entry.map_err(io(run_dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("epoch-") && !name.contains('.') && path.is_dir() {
            dirs.push(path);
        }
    }
    Ok(dirs.into_iter().filter(|d| d.is_dir()).collect())
}

/// The newest checkpoint of `run_dir` whose files are complete and match their checksums
/// (checked newest first, until one does).
///
/// # Errors
/// When there is none: a message saying what was found and how to recover.
pub fn find_resumable(run_dir: &Path) -> Result<Resumable, TrainError> {
    let mut complete = Vec::new();
    let mut rejected = Vec::new();
    for dir in candidates(run_dir)? {
        let read = [MODEL, OPTIMIZER, CONFIG]
            .into_iter()
            .find(|name| !dir.join(name).is_file())
            .map_or_else(
                || read_state(&dir),
                |name| Err(checkpoint_error(&dir.join(name), "missing")),
            );
        match read {
            Ok(state) => complete.push((dir, state)),
            Err(e) => rejected.push((dir, e.to_string())),
        }
    }
    // Newest first; only as many are hashed as it takes to find one that verifies.
    complete.sort_by_key(|(_, s)| std::cmp::Reverse((s.iteration, s.epochs_done)));
    for (dir, state) in complete {
        match verify_files(&dir, &[MODEL, OPTIMIZER, STATE, CONFIG]) {
            Ok(()) => {
                return Ok(Resumable {
                    dir,
                    state,
                    passed_over: rejected,
                })
            }
            Err(e) => rejected.push((dir, e.to_string())),
        }
    }
    let found = if rejected.is_empty() {
        "it holds no checkpoint (`last/`, `last.old/` or `epoch-N/`)".to_string()
    } else {
        let reasons: Vec<String> = rejected.iter().map(|(_, why)| why.clone()).collect();
        format!("no checkpoint in it is usable: {}", reasons.join("; "))
    };
    Err(checkpoint_error(
        run_dir,
        format!(
            "nothing to resume: {found}. Start over with --overwrite (deletes the run's \
             checkpoints and metrics), or copy a good checkpoint directory to {}",
            run_dir.join("last").display()
        ),
    ))
}

/// Puts `run_dir` back as the interrupted run left it when it wrote `from`: `last` (and
/// `best`, when `from` was published as best) hold that checkpoint, and `metrics.jsonl`
/// ends where it ended then.
pub fn prepare_resume(run_dir: &Path, from: &Resumable) -> Result<(), TrainError> {
    let last = run_dir.join("last");
    if from.dir != last {
        publish_checkpoint(&from.dir, &last)?;
    }
    let best = run_dir.join("best");
    if from.state.is_best && read_state(&best).map_or(true, |b| b.iteration != from.state.iteration)
    {
        publish_checkpoint(&from.dir, &best)?;
    }
    if let Some(len) = from.state.metrics_bytes {
        let path = run_dir.join("metrics.jsonl");
        if let Ok(file) = std::fs::OpenOptions::new().write(true).open(&path) {
            let current = file.metadata().map_err(io(&path))?.len();
            if current > len {
                file.set_len(len).map_err(write_error(&path))?;
            }
        }
    }
    Ok(())
}

/// Loads model weights and optimiser state from `dir` into a run being resumed; the state's
/// parameter paths are mapped to `model`'s parameter ids.
pub fn load_for_resume<B, M, O>(
    dir: &Path,
    model: M,
    optimizer: O,
    device: &B::Device,
) -> Result<(M, O, TrainState), TrainError>
where
    B: KernelAutodiffBackend,
    M: DetectorFamily<B> + AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    let state = read_state(dir)?;
    let model = load_checkpoint_weights(model, dir)?;
    let path = dir.join(OPTIMIZER);
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    let paths = ParamPaths::of(&model);
    let to_id = |key: &str| match paths.id(key) {
        Some(id) => Ok(id.to_string()),
        // A state written before states were keyed by path: its ids match nothing (it is
        // dropped, as it always was), but it still loads.
        None if ParamId::try_deserialize(key).is_some() => Ok(key.to_string()),
        None => Err(format!(
            "optimiser state for `{key}`, which the model does not have"
        )),
    };
    let unreadable = |detail: String| {
        checkpoint_error(
            &path,
            format!(
                "unreadable optimiser state ({detail}): written for another optimiser \
                 (train.optimizer) or another model, or corrupt"
            ),
        )
    };
    let bytes = finite::rekey_record(&bytes, &to_id).map_err(unreadable)?;
    let record = Recorder::<B>::load(&recorder(), bytes, device).map_err(|_| {
        checkpoint_error(
            &path,
            "unreadable optimiser state: written for another optimiser (train.optimizer) or \
             another model, or corrupt",
        )
    })?;
    Ok((model, optimizer.load_record(record), state))
}

#[cfg(test)]
#[path = "resume_tests.rs"]
mod tests;
