//! Early stopping: end training when a monitored evaluation metric has stopped improving.
//!
//! After each evaluation, [`EarlyStopping::observe`] compares the metric with the best value so far.
//! A value counts as an improvement when it beats the best by more than `min_delta` (below it in
//! [`Mode::Min`], above it in [`Mode::Max`]); after `patience` evaluations in a row without one, the
//! run should stop. A NaN value never improves. The counters are part of the checkpointed state
//! ([`EarlyStoppingState`]), so a resumed run stops where the uninterrupted one would have.
//!
//! ```
//! use fm_train::{EarlyStopping, Mode};
//!
//! let mut stop = EarlyStopping::new("val/loss", Mode::Min, 2, 0.01)?;
//! assert!(!stop.observe(100, 1.00)); // first value: the best
//! assert!(!stop.observe(200, 0.95)); // improved by more than 0.01
//! assert!(!stop.observe(300, 0.945)); // not by enough: 1 of 2
//! assert!(stop.observe(400, 0.96)); // 2 of 2: stop
//! assert_eq!(stop.state().best_step, Some(200));
//! # Ok::<(), fm_train::TrainError>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// Which direction is better for the monitored metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Smaller is better (losses, perplexity).
    Min,
    /// Larger is better (accuracy, F1).
    Max,
}

/// The counters of an [`EarlyStopping`] (saved in checkpoints).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct EarlyStoppingState {
    /// The best value seen.
    pub best: Option<f64>,
    /// The step of the evaluation that gave it.
    pub best_step: Option<u64>,
    /// Evaluations since the last improvement.
    pub evals_without_improvement: u64,
}

/// Stops a run after `patience` evaluations without an improvement of more than `min_delta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    metric: String,
    mode: Mode,
    patience: u64,
    min_delta: f64,
    state: EarlyStoppingState,
}

impl EarlyStopping {
    /// Monitors `metric` (a name in the evaluation's `MetricValues`). `patience >= 1`, `min_delta`
    /// finite and `>= 0`.
    pub fn new(
        metric: impl Into<String>,
        mode: Mode,
        patience: u64,
        min_delta: f64,
    ) -> Result<Self> {
        if patience == 0 {
            return Err(TrainError::config(
                "EarlyStopping",
                "patience",
                patience,
                "must be at least 1",
            ));
        }
        if !(min_delta.is_finite() && min_delta >= 0.0) {
            return Err(TrainError::config(
                "EarlyStopping",
                "min_delta",
                min_delta,
                "must be finite and >= 0",
            ));
        }
        Ok(EarlyStopping {
            metric: metric.into(),
            mode,
            patience,
            min_delta,
            state: EarlyStoppingState::default(),
        })
    }

    /// The monitored metric's name.
    pub fn metric(&self) -> &str {
        &self.metric
    }

    /// Which direction is better.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Records the metric's value at `step`; returns whether the run should stop now.
    pub fn observe(&mut self, step: u64, value: f64) -> bool {
        let improved = match self.state.best {
            _ if value.is_nan() => false,
            None => true,
            Some(best) => match self.mode {
                Mode::Min => value < best - self.min_delta,
                Mode::Max => value > best + self.min_delta,
            },
        };
        if improved {
            self.state.best = Some(value);
            self.state.best_step = Some(step);
            self.state.evals_without_improvement = 0;
        } else {
            self.state.evals_without_improvement += 1;
        }
        self.should_stop()
    }

    /// Whether `patience` evaluations in a row brought no improvement.
    pub fn should_stop(&self) -> bool {
        self.state.evals_without_improvement >= self.patience
    }

    /// The counters, for a checkpoint.
    pub fn state(&self) -> EarlyStoppingState {
        self.state
    }

    /// Restores counters saved by [`state`](Self::state).
    pub fn restore(&mut self, state: EarlyStoppingState) {
        self.state = state;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_mode_and_nan_values() {
        let mut s = EarlyStopping::new("acc", Mode::Max, 1, 0.0).unwrap();
        assert!(!s.observe(1, 0.5));
        assert!(!s.observe(2, 0.6));
        assert!(s.observe(3, f64::NAN), "NaN never improves");
        let mut t = EarlyStopping::new("acc", Mode::Max, 1, 0.0).unwrap();
        assert!(t.observe(1, f64::NAN) && t.state().best.is_none());
    }

    #[test]
    fn restoring_counters_continues_the_count() {
        let mut a = EarlyStopping::new("loss", Mode::Min, 3, 0.0).unwrap();
        a.observe(1, 1.0);
        a.observe(2, 1.5);
        let mut b = EarlyStopping::new("loss", Mode::Min, 3, 0.0).unwrap();
        b.restore(a.state());
        assert_eq!(a.observe(3, 2.0), b.observe(3, 2.0));
        assert!(!a.observe(4, 0.5) && !b.observe(4, 0.5));
        assert_eq!(a, b);
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(EarlyStopping::new("x", Mode::Min, 0, 0.0).is_err());
        let err = EarlyStopping::new("x", Mode::Min, 1, -1.0).unwrap_err();
        assert!(err.to_string().contains("min_delta"), "{err}");
        assert!(EarlyStopping::new("x", Mode::Min, 1, f64::NAN).is_err());
    }
}
