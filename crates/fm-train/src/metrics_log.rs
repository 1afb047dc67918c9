//! The metrics log: one JSON object per line (JSON Lines), appended as training goes.
//!
//! Each [`LogRecord`] carries the step, the wall time since the run began (over all resumes), and
//! either training figures (loss, learning rate, tokens per second, gradient norm) or evaluation
//! metrics, or both. Lines are flushed as they are written, so `tail -f` and a crash both see every
//! finished step. When a run resumes from step `k`, records after `k` (written by the interrupted run
//! after its last checkpoint) are dropped first, so the file reads as one run.
//!
//! ```
//! use fm_train::{LogRecord, MetricsLog};
//!
//! let path = std::env::temp_dir().join(format!("fm-train-doc-log-{}.jsonl", std::process::id()));
//! let mut log = MetricsLog::create(&path)?;
//! log.write(&LogRecord::train(1, 2.5, 1e-3, 0.1))?;
//! log.write(&LogRecord::train(2, 2.0, 1e-3, 0.2))?;
//! drop(log);
//! let mut resumed = MetricsLog::resume(&path, 1)?; // the run resumes from step 1
//! assert_eq!(resumed.records().len(), 1);
//! # std::fs::remove_file(&path).unwrap();
//! # Ok::<(), fm_train::TrainError>(())
//! ```

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// One line of the metrics log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Steps completed when the record was written.
    pub step: u64,
    /// Seconds of training wall time since the run began (over all resumes).
    pub wall_secs: f64,
    /// Mean training loss over the steps since the previous training record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// The learning rate of the last step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// Tokens (or examples) per second since the previous training record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_sec: Option<f64>,
    /// The last step's gradient norm before clipping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_norm: Option<f64>,
    /// Steps skipped by the NaN/Inf guard so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_steps: Option<u64>,
    /// Evaluation metrics, when this record is an evaluation.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub eval: BTreeMap<String, f64>,
}

impl LogRecord {
    /// A training record with the essentials.
    pub fn train(step: u64, loss: f64, lr: f64, wall_secs: f64) -> Self {
        LogRecord {
            step,
            wall_secs,
            loss: Some(loss),
            lr: Some(lr),
            tokens_per_sec: None,
            grad_norm: None,
            skipped_steps: None,
            eval: BTreeMap::new(),
        }
    }

    /// An evaluation record.
    pub fn eval(step: u64, wall_secs: f64, metrics: BTreeMap<String, f64>) -> Self {
        LogRecord {
            step,
            wall_secs,
            loss: None,
            lr: None,
            tokens_per_sec: None,
            grad_norm: None,
            skipped_steps: None,
            eval: metrics,
        }
    }
}

/// A JSON Lines metrics file.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    file: File,
    records: Vec<LogRecord>,
}

impl MetricsLog {
    /// Creates (or empties) the log at `path`.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::create(&path).map_err(|e| TrainError::io(&path, e))?;
        Ok(MetricsLog {
            path,
            file,
            records: Vec::new(),
        })
    }

    /// Opens the log of a run resumed from step `step`: keeps the records up to `step`, drops later
    /// ones, and appends from there. A missing file starts an empty log; a line that is not a record
    /// is an error naming the file and line.
    pub fn resume(path: impl AsRef<Path>, step: u64) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if !path.exists() {
            return Self::create(&path);
        }
        let kept: Vec<LogRecord> = read_records(&path)?
            .into_iter()
            .filter(|r| r.step <= step)
            .collect();
        let mut text = String::new();
        for record in &kept {
            text.push_str(&serde_json::to_string(record)?);
            text.push('\n');
        }
        crate::checkpoint::write_file_atomic(&path, text.as_bytes())?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| TrainError::io(&path, e))?;
        Ok(MetricsLog {
            path,
            file,
            records: kept,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every record in the file, in order.
    pub fn records(&mut self) -> &[LogRecord] {
        &self.records
    }

    /// Appends a record and flushes it.
    pub fn write(&mut self, record: &LogRecord) -> Result<()> {
        let mut line = serde_json::to_string(record)?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|e| TrainError::io(&self.path, e))?;
        self.records.push(record.clone());
        Ok(())
    }
}

/// Reads every record of a JSON Lines metrics file (blank lines are skipped).
pub fn read_records(path: &Path) -> Result<Vec<LogRecord>> {
    let file = File::open(path).map_err(|e| TrainError::io(path, e))?;
    let mut records = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| TrainError::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(&line).map_err(|e| {
            TrainError::checkpoint(path, format!("line {}: not a metrics record: {e}", i + 1))
        })?;
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_bad_lines_are_named() {
        let path = std::env::temp_dir().join(format!("fm-train-log-{}.jsonl", std::process::id()));
        let mut log = MetricsLog::create(&path).unwrap();
        let mut eval = BTreeMap::new();
        eval.insert("val/loss".to_string(), 0.25);
        log.write(&LogRecord::train(1, 1.5, 0.01, 0.5)).unwrap();
        log.write(&LogRecord::eval(1, 0.6, eval)).unwrap();
        let back = read_records(&path).unwrap();
        assert_eq!(back, log.records());
        std::fs::write(&path, "{\"step\":1,\"wall_secs\":0}\nnot json\n").unwrap();
        let err = read_records(&path).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        std::fs::remove_file(&path).unwrap();
    }
}
