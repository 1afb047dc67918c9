//! The trainer's own state in a checkpoint (`trainer.json`): counters, RNG seed, loader position.

use serde::{Deserialize, Serialize};

use crate::early_stop::EarlyStoppingState;
use crate::loader::LoaderPosition;

/// Everything besides the model and the optimizer that a resumed run needs to continue exactly.
///
/// Random numbers in fm-train are functions of the run's `seed` and the step (see
/// [`crate::rng`]), so `seed` and `step` are the whole RNG state; a loop with its own generators
/// keeps their state in `user`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Optimizer steps attempted so far (taken or skipped): the next step's index.
    pub step: u64,
    /// The run's base seed.
    pub seed: u64,
    /// Where the data loader is.
    pub loader: LoaderPosition,
    /// Steps skipped by the NaN/Inf guard.
    pub skipped_steps: u64,
    /// Tokens (or examples) trained on.
    pub tokens_seen: u64,
    /// Training wall time so far, over all runs, in seconds.
    pub elapsed_secs: f64,
    /// The last step's mean loss.
    pub last_loss: Option<f64>,
    /// Early-stopping counters, when early stopping is on.
    pub early_stopping: Option<EarlyStoppingState>,
    /// Anything else the caller wants saved (its own RNG state, a curriculum stage, ...).
    #[serde(default)]
    pub user: serde_json::Value,
}

impl TrainerState {
    /// The state of a run that has not started: step 0, loader at its start.
    pub fn new(seed: u64, loader: LoaderPosition) -> Self {
        TrainerState {
            step: 0,
            seed,
            loader,
            skipped_steps: 0,
            tokens_seen: 0,
            elapsed_secs: 0.0,
            last_loss: None,
            early_stopping: None,
            user: serde_json::Value::Null,
        }
    }
}
