//! The metrics log: one JSON object per line, appended and flushed as training goes, so a
//! crashed run keeps everything it logged.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use visage_model::LossValues;

use crate::error::{io, write_error, TrainError};

/// Appends JSON lines to `metrics.jsonl`.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    file: File,
    len: u64,
}

impl MetricsLog {
    /// Opens (creating or appending to) the log.
    pub fn open(path: &Path) -> Result<Self, TrainError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io(path))?;
        let len = file.metadata().map_err(io(path))?.len();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            len,
        })
    }

    /// The log's length in bytes: what a checkpoint records, so that a resumed run can cut
    /// off the lines an interrupted run wrote after it.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing is logged yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes one record as a line and flushes it.
    pub fn append<T: Serialize>(&mut self, record: &T) -> Result<(), TrainError> {
        let mut line = serde_json::to_string(record).expect("metrics serialise");
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.flush())
            .map_err(write_error(&self.path))?;
        self.len += line.len() as u64;
        Ok(())
    }
}

/// A training-step record.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    /// `"train"`.
    pub kind: &'static str,
    /// 0-based epoch.
    pub epoch: usize,
    /// Global iteration (1-based: iterations done).
    pub iteration: usize,
    /// Learning rate used for this step.
    pub lr: f64,
    /// Total loss.
    pub loss: f32,
    /// The named loss parts, written as `loss_<name>` (e.g. `loss_cls`, `loss_box`), each
    /// before its weight.
    #[serde(flatten)]
    pub parts: std::collections::BTreeMap<String, f32>,
    /// Positive anchors in the batch.
    pub positives: usize,
    /// Training throughput over the logging window.
    pub images_per_s: f64,
    /// Seconds since the run (or the resume) started.
    pub elapsed_s: f64,
}

impl StepRecord {
    /// The record of the step that ended iteration `iteration` with `loss`.
    pub fn new(
        epoch: usize,
        iteration: usize,
        lr: f64,
        loss: &LossValues,
        images_per_s: f64,
        elapsed_s: f64,
    ) -> Self {
        StepRecord {
            kind: "train",
            epoch,
            iteration,
            lr,
            loss: loss.total,
            parts: loss
                .parts
                .iter()
                .map(|(name, v)| (format!("loss_{name}"), *v))
                .collect(),
            positives: loss.num_positive,
            images_per_s,
            elapsed_s,
        }
    }
}

/// A step skipped for a non-finite loss or gradient (`train.on_non_finite = "skip"`).
#[derive(Debug, Clone, Serialize)]
pub struct SkipRecord {
    /// `"skipped"`.
    pub kind: &'static str,
    /// 0-based epoch.
    pub epoch: usize,
    /// Global iteration (1-based).
    pub iteration: usize,
    /// Learning rate the step would have used.
    pub lr: f64,
    /// What was not finite.
    pub detail: String,
}

impl SkipRecord {
    /// The record of the step of iteration `iteration`.
    pub fn new(epoch: usize, iteration: usize, lr: f64, detail: &str) -> Self {
        SkipRecord {
            kind: "skipped",
            epoch,
            iteration,
            lr,
            detail: detail.to_string(),
        }
    }
}

/// A validation record.
#[derive(Debug, Clone, Serialize)]
pub struct EvalRecord {
    /// `"val"`.
    pub kind: &'static str,
    /// Epochs completed.
    pub epoch: usize,
    /// WIDER Easy AP.
    pub easy: f64,
    /// WIDER Medium AP.
    pub medium: f64,
    /// WIDER Hard AP.
    pub hard: f64,
    /// Seconds the validation took.
    pub seconds: f64,
}

impl EvalRecord {
    /// The mean of Easy, Medium and Hard AP: the score `best` is chosen by.
    pub fn mean_ap(&self) -> f64 {
        (self.easy + self.medium + self.hard) / 3.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_one_json_object_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        for epoch in 0..2 {
            let mut log = MetricsLog::open(&path).unwrap();
            log.append(&EvalRecord {
                kind: "val",
                epoch,
                easy: 0.5,
                medium: 0.25,
                hard: 0.125,
                seconds: 1.0,
            })
            .unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["epoch"], 1);
        assert_eq!(lines[0]["hard"], 0.125);
    }
}
