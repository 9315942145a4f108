//! The run directory around the checkpoints: refusing to mix a fresh run with an earlier one
//! (or clearing it with `--overwrite`), and keeping only the newest per-epoch checkpoints.

use std::path::{Path, PathBuf};

use crate::error::{io, TrainError};

/// The checkpoint directories and metrics of an earlier run in `run_dir`.
fn previous_run_files(run_dir: &Path) -> Result<Vec<PathBuf>, TrainError> {
    Ok(std::fs::read_dir(run_dir)
        .map_err(io(run_dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("epoch-")
                    || n.starts_with("last")
                    || n.starts_with("best")
                    || n == "metrics.jsonl"
            })
        })
        .collect())
}

/// A fresh run refuses to mix with an earlier one unless told to delete it.
pub fn clear_previous_run(run_dir: &Path, overwrite: bool) -> Result<(), TrainError> {
    let previous = previous_run_files(run_dir)?;
    if previous.is_empty() {
        return Ok(());
    }
    if !overwrite {
        return Err(TrainError::Checkpoint {
            path: run_dir.to_path_buf(),
            message: "already holds a run: pass --resume to continue it or --overwrite to \
                      start over (deleting its checkpoints and metrics)"
                .into(),
        });
    }
    for path in previous {
        if path.is_dir() {
            std::fs::remove_dir_all(&path).map_err(io(&path))?;
        } else {
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    Ok(())
}

/// Deletes all but the newest `keep` `epoch-*` directories (0 keeps all).
pub fn prune_checkpoints(run_dir: &Path, keep: usize) -> Result<(), TrainError> {
    if keep == 0 {
        return Ok(());
    }
    let mut epochs: Vec<PathBuf> = std::fs::read_dir(run_dir)
        .map_err(io(run_dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("epoch-") && !n.contains('.'))
        })
        .collect();
    epochs.sort();
    let excess = epochs.len().saturating_sub(keep);
    for dir in &epochs[..excess] {
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_previous_run_is_refused_unless_overwritten_and_pruning_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path();
        clear_previous_run(run, false).unwrap();
        for epoch in 1..=4 {
            std::fs::create_dir_all(run.join(format!("epoch-{epoch:04}"))).unwrap();
        }
        std::fs::create_dir_all(run.join("epoch-0005.tmp")).unwrap();
        std::fs::write(run.join("metrics.jsonl"), "{}\n").unwrap();
        std::fs::write(run.join("config.toml"), "").unwrap();
        prune_checkpoints(run, 2).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(run)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "config.toml",
                "epoch-0003",
                "epoch-0004",
                "epoch-0005.tmp",
                "metrics.jsonl"
            ]
        );
        let err = clear_previous_run(run, false).unwrap_err().to_string();
        assert!(err.contains("--overwrite"), "{err}");
        clear_previous_run(run, true).unwrap();
        let left: Vec<_> = std::fs::read_dir(run).unwrap().collect();
        assert_eq!(left.len(), 1, "only config.toml is left");
    }
}
