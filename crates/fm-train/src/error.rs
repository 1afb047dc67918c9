//! The crate's error type: every failure names what it concerns (the file, the step, the setting).

use std::path::PathBuf;

/// A boxed error from user code (a loss or evaluation closure, a data loader).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Shorthand for results of this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// Everything that can go wrong while training, checkpointing or resuming.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A configuration value out of range.
    #[error("{what}: {field} = {value} {reason}")]
    Config {
        /// The configuration being built (`TrainerConfig`, `EarlyStopping`, ...).
        what: &'static str,
        /// The offending field.
        field: &'static str,
        /// Its value, as text.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A loss or a gradient that is NaN or infinite, with the non-finite guard set to stop.
    #[error("step {step}: non-finite {what}; the run was stopped (set NonFiniteAction::Skip to skip such steps)")]
    NonFinite {
        /// The trainer step (0-based) at which it happened.
        step: u64,
        /// What was not finite (`loss = NaN`, `gradient of "w1"`, ...).
        what: String,
    },
    /// A checkpoint file that is missing, truncated, corrupted or not what it claims to be.
    #[error("{}: {reason}", .path.display())]
    Checkpoint {
        /// The file (or directory) concerned.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// No checkpoint could be loaded: lists every candidate and what was wrong with it.
    #[error("no valid checkpoint in {}{}", .dir.display(), describe_problems(.problems))]
    NoValidCheckpoint {
        /// The checkpoint directory.
        dir: PathBuf,
        /// Each candidate that was rejected, newest first.
        problems: Vec<crate::checkpoint::CheckpointProblem>,
    },
    /// A saved model parameter that does not match the model it is loaded into.
    #[error("parameter {name:?}: {reason}")]
    ParamMismatch {
        /// The parameter's name.
        name: String,
        /// What does not match (shape, dtype, missing, unexpected).
        reason: String,
    },
    /// A data loader position that does not fit the loader.
    #[error("data loader: {0}")]
    Loader(String),
    /// An I/O failure, with the file it happened on.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Writing the loss-curve plot failed.
    #[error("{}: plotting failed: {reason}", .path.display())]
    Plot {
        /// The PNG being written.
        path: PathBuf,
        /// What the plotting backend reported.
        reason: String,
    },
    /// An error from the user's loss closure.
    #[error("step {step}: loss function failed: {source}")]
    Loss {
        /// The trainer step.
        step: u64,
        /// The closure's error.
        #[source]
        source: BoxError,
    },
    /// An error from the user's evaluation closure.
    #[error("step {step}: evaluation failed: {source}")]
    Eval {
        /// The trainer step.
        step: u64,
        /// The closure's error.
        #[source]
        source: BoxError,
    },
    /// An error from fm-tensor (parameter store, safetensors, thread pool).
    #[error(transparent)]
    Tensor(#[from] fm_tensor::TensorError),
    /// An error from fm-optim (optimizer step or state).
    #[error(transparent)]
    Optim(#[from] fm_optim::OptimError),
    /// JSON (de)serialisation of training state or logs.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

fn describe_problems(problems: &[crate::checkpoint::CheckpointProblem]) -> String {
    if problems.is_empty() {
        return " (none saved)".to_string();
    }
    let mut out = String::from(":");
    for p in problems {
        out.push_str(&format!("\n  - {p}"));
    }
    out
}

impl TrainError {
    pub(crate) fn config(
        what: &'static str,
        field: &'static str,
        value: impl std::fmt::Display,
        reason: &'static str,
    ) -> Self {
        TrainError::Config {
            what,
            field,
            value: value.to_string(),
            reason,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn checkpoint(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        TrainError::Checkpoint {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
