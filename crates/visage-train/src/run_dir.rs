//! The run directory around the checkpoints: one writer at a time ([`RunLock`]), refusing to
//! mix a fresh run with an earlier one (or clearing it with `--overwrite`), and keeping only
//! the newest per-epoch checkpoints.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::{io, write_error, TrainError};

/// The lock file of a run directory.
pub const LOCK_FILE: &str = "train.lock";

/// The advisory lock of a run directory, held by the one `visage train` writing into it for
/// as long as this value lives. It is the operating system's file lock (`flock` on Linux) on
/// `train.lock`, which also records who holds it: a process that dies (killed, crashed)
/// releases it, so a stale file never blocks. (On network file systems without locking
/// support, the lock cannot protect the directory.)
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock of `run_dir` (which must exist) without waiting.
    ///
    /// # Errors
    /// [`TrainError::RunDirLocked`] naming the holder (pid and host) when another process
    /// holds it.
    pub fn acquire(run_dir: &Path) -> Result<RunLock, TrainError> {
        let path = run_dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(TrainError::RunDirLocked {
                    path: run_dir.to_path_buf(),
                    holder: if holder.is_empty() {
                        "a process that has not written its pid yet".into()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(&path)(e)),
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "this host".into());
        let me = format!("pid {} on {host}\n", std::process::id());
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(me.as_bytes()))
            .and_then(|_| file.flush())
            .map_err(write_error(&path))?;
        Ok(RunLock { _file: file })
    }
}

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
    fn one_writer_per_run_directory_and_a_released_lock_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        // A second open file description conflicts as a second process would.
        let err = RunLock::acquire(dir.path()).unwrap_err().to_string();
        let pid = format!("pid {}", std::process::id());
        assert!(err.contains("in use") && err.contains(&pid), "{err}");
        drop(first);
        // The lock file stays, but nobody holds it: no stale lock.
        assert!(dir.path().join(LOCK_FILE).is_file());
        let _again = RunLock::acquire(dir.path()).unwrap();
    }

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
