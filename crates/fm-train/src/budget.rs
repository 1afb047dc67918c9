//! Compute budgets: how long a run may go on, and a handle to ask it to stop.
//!
//! A [`Budget`] bounds a run by optimizer steps and by wall-clock time (measured from the start of
//! this call to the trainer, so a resumed run gets a fresh allowance). A [`StopHandle`] is a flag
//! another thread (a Ctrl-C handler, a scheduler) sets to ask for a stop. In every case the trainer
//! finishes the step in flight, writes a checkpoint and returns normally, saying why it stopped.
//!
//! ```
//! use fm_train::{Budget, StopHandle};
//! use std::time::Duration;
//!
//! let budget = Budget::steps(1000).with_wall_clock(Duration::from_secs(600));
//! assert_eq!(budget.max_steps, Some(1000));
//!
//! let stop = StopHandle::new();
//! let for_handler = stop.clone(); // e.g. moved into a Ctrl-C handler
//! for_handler.request_stop();
//! assert!(stop.is_stop_requested());
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Upper bounds on a run: total optimizer steps and wall-clock time of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Budget {
    /// Stop once this many steps (counted from step 0, over all resumes) are done.
    pub max_steps: Option<u64>,
    /// Stop once this much wall-clock time has passed in the current call.
    pub max_wall_clock: Option<Duration>,
}

impl Budget {
    /// No bound (the run ends by early stopping or a stop request).
    pub fn unlimited() -> Self {
        Budget::default()
    }

    /// At most `max_steps` steps.
    pub fn steps(max_steps: u64) -> Self {
        Budget {
            max_steps: Some(max_steps),
            max_wall_clock: None,
        }
    }

    /// Adds a wall-clock limit.
    pub fn with_wall_clock(mut self, limit: Duration) -> Self {
        self.max_wall_clock = Some(limit);
        self
    }

    /// Whether the step budget is spent after `steps_done` steps.
    pub fn steps_spent(&self, steps_done: u64) -> bool {
        self.max_steps.is_some_and(|max| steps_done >= max)
    }

    /// Whether the time budget is spent after `elapsed`.
    pub fn time_spent(&self, elapsed: Duration) -> bool {
        self.max_wall_clock.is_some_and(|max| elapsed >= max)
    }
}

/// A shared flag asking a run to stop cleanly at the end of the current step.
#[derive(Debug, Clone, Default)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
}

impl StopHandle {
    /// A handle with no stop requested.
    pub fn new() -> Self {
        StopHandle::default()
    }

    /// Asks the run to stop (safe from any thread or a signal handler's thread).
    pub fn request_stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was requested.
    pub fn is_stop_requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Withdraws a request (to reuse the handle for another run).
    pub fn reset(&self) {
        self.flag.store(false, Ordering::SeqCst);
    }
}
