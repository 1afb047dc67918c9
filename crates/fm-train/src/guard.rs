//! The NaN/Inf guard: what to do when a step's loss or gradients are not finite.
//!
//! One bad batch (an overflow, a log of zero) can poison every parameter through a single optimizer
//! step. The guard looks at the step's mean loss and its [`GradStats`] before the optimizer runs, and
//! either stops the run with an error naming the step and what was not finite
//! ([`NonFiniteAction::Stop`]), or drops the step's gradients, counts the step as skipped and lets
//! training go on ([`NonFiniteAction::Skip`]).
//!
//! ```
//! use fm_train::{GradStats, GuardVerdict, NonFiniteAction, NonFiniteGuard};
//!
//! let finite = GradStats { norm: 1.0, max_abs: 1.0, params: 1, elements: 1, non_finite: vec![] };
//! let mut guard = NonFiniteGuard::new(NonFiniteAction::Skip);
//! assert_eq!(guard.check(0, 0.5, &finite)?, GuardVerdict::Proceed);
//! assert_eq!(guard.check(1, f64::NAN, &finite)?, GuardVerdict::Skip);
//! assert_eq!(guard.skipped(), 1);
//!
//! let mut strict = NonFiniteGuard::new(NonFiniteAction::Stop);
//! let err = strict.check(7, f64::INFINITY, &finite).unwrap_err();
//! assert!(err.to_string().starts_with("step 7: non-finite loss"));
//! # Ok::<(), fm_train::TrainError>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::grads::GradStats;

/// What the guard does with a non-finite step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NonFiniteAction {
    /// End the run with [`TrainError::NonFinite`] naming the step and the loss or parameter.
    #[default]
    Stop,
    /// Drop the step's gradients, count it, and continue with the next batch.
    Skip,
}

/// The guard's decision for one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardVerdict {
    /// Everything finite: take the optimizer step.
    Proceed,
    /// Something non-finite and the action is [`NonFiniteAction::Skip`]: do not step.
    Skip,
}

/// Checks each step's loss and gradients and counts skipped steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonFiniteGuard {
    action: NonFiniteAction,
    skipped: u64,
}

impl NonFiniteGuard {
    /// A guard taking `action` on non-finite steps.
    pub fn new(action: NonFiniteAction) -> Self {
        NonFiniteGuard { action, skipped: 0 }
    }

    /// The configured action.
    pub fn action(&self) -> NonFiniteAction {
        self.action
    }

    /// Steps skipped so far (including those counted before a resume, see [`restore`](Self::restore)).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Sets the skipped-step count saved in a checkpoint.
    pub fn restore(&mut self, skipped: u64) {
        self.skipped = skipped;
    }

    /// Checks step `step`'s mean loss and gradient statistics.
    pub fn check(&mut self, step: u64, loss: f64, grads: &GradStats) -> Result<GuardVerdict> {
        let problem = if !loss.is_finite() {
            Some(format!("loss = {loss}"))
        } else if !grads.is_finite() {
            Some(format!("gradient of {}", quoted_list(&grads.non_finite)))
        } else {
            None
        };
        match (problem, self.action) {
            (None, _) => Ok(GuardVerdict::Proceed),
            (Some(what), NonFiniteAction::Stop) => Err(TrainError::NonFinite { step, what }),
            (Some(_), NonFiniteAction::Skip) => {
                self.skipped += 1;
                Ok(GuardVerdict::Skip)
            }
        }
    }
}

/// `"a", "b" and 3 more`.
fn quoted_list(names: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut out = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        out.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_parameters_with_bad_gradients() {
        let stats = GradStats {
            norm: f64::NAN,
            max_abs: 0.0,
            params: 5,
            elements: 5,
            non_finite: ["a", "b", "c", "d", "e"].map(String::from).to_vec(),
        };
        let err = NonFiniteGuard::new(NonFiniteAction::Stop)
            .check(3, 1.0, &stats)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "step 3: non-finite gradient of \"a\", \"b\", \"c\" and 2 more; the run was stopped \
             (set NonFiniteAction::Skip to skip such steps)"
        );
    }
}
