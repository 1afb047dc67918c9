//! Threads and memory: the compute handle.
//!
//! Kernels in fm-tensor run in whatever rayon pool they are called from. By default that is rayon's
//! global pool (all cores). A program that wants to cap threads — two trainings on one machine, or a
//! benchmark at 1 thread — makes a [`Compute`] with [`Compute::with_threads`] and runs its work through
//! [`Compute::install`]; every kernel called inside uses at most that many threads.
//!
//! Each handle also keeps a [`MemoryTracker`]: the bytes of live [`Tensor`](crate::Tensor) data created
//! on its threads, and the peak since the last reset. Tensors created outside any handle's pool are
//! charged to [`MemoryTracker::global`].
//!
//! ```
//! use fm_tensor::{Compute, Tensor};
//! let compute = Compute::with_threads(1)?;
//! compute.memory().reset_peak();
//! let bytes = compute.install(|| {
//!     let t = Tensor::<f32>::zeros(&[256, 256]);
//!     t.len() * 4
//! });
//! assert!(compute.memory().peak_bytes() >= bytes);
//! assert_eq!(compute.memory().live_bytes(), 0); // `t` was dropped inside
//! # Ok::<(), fm_tensor::TensorError>(())
//! ```

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::error::{Result, TensorError};

/// Counts live tensor bytes and their peak.
#[derive(Debug, Default)]
pub struct MemoryTracker {
    live: AtomicUsize,
    peak: AtomicUsize,
}

impl MemoryTracker {
    /// The tracker charged for tensors created outside any [`Compute`] pool.
    pub fn global() -> &'static Arc<MemoryTracker> {
        static GLOBAL: OnceLock<Arc<MemoryTracker>> = OnceLock::new();
        GLOBAL.get_or_init(|| Arc::new(MemoryTracker::default()))
    }

    /// Bytes of tensor data alive now.
    pub fn live_bytes(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// The most bytes alive at once since creation or the last [`reset_peak`](Self::reset_peak).
    pub fn peak_bytes(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Starts a new peak measurement from the bytes alive now.
    pub fn reset_peak(&self) {
        self.peak.store(self.live_bytes(), Ordering::Relaxed);
    }

    pub(crate) fn allocate(&self, bytes: usize) {
        let now = self.live.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    pub(crate) fn release(&self, bytes: usize) {
        self.live.fetch_sub(bytes, Ordering::Relaxed);
    }
}

thread_local! {
    // Set on the worker threads of a `Compute` pool, so tensors made there are charged to its tracker.
    static CURRENT_TRACKER: RefCell<Option<Arc<MemoryTracker>>> = const { RefCell::new(None) };
}

/// The tracker to charge for a tensor created on this thread.
pub(crate) fn current_tracker() -> Arc<MemoryTracker> {
    CURRENT_TRACKER
        .with(|t| t.borrow().clone())
        .unwrap_or_else(|| Arc::clone(MemoryTracker::global()))
}

/// A handle on compute resources: a thread pool (or rayon's global one) and a memory tracker.
#[derive(Debug, Clone)]
pub struct Compute {
    pool: Option<Arc<rayon::ThreadPool>>,
    memory: Arc<MemoryTracker>,
}

impl Default for Compute {
    fn default() -> Self {
        Compute::global()
    }
}

impl Compute {
    /// rayon's global pool (all cores unless `RAYON_NUM_THREADS` says otherwise) and the global tracker.
    pub fn global() -> Self {
        Compute {
            pool: None,
            memory: Arc::clone(MemoryTracker::global()),
        }
    }

    /// A dedicated pool of exactly `threads` threads, with its own memory tracker.
    pub fn with_threads(threads: usize) -> Result<Self> {
        if threads == 0 {
            return Err(TensorError::invalid_argument(
                "Compute::with_threads",
                "thread count must be at least 1",
            ));
        }
        let memory = Arc::new(MemoryTracker::default());
        let for_workers = Arc::clone(&memory);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("fm-compute-{i}"))
            .start_handler(move |_| {
                let tracker = Arc::clone(&for_workers);
                CURRENT_TRACKER.with(|t| *t.borrow_mut() = Some(tracker));
            })
            .build()
            .map_err(|e| TensorError::ThreadPool(e.to_string()))?;
        Ok(Compute {
            pool: Some(Arc::new(pool)),
            memory,
        })
    }

    /// How many threads kernels may use under this handle.
    pub fn threads(&self) -> usize {
        match &self.pool {
            Some(pool) => pool.current_num_threads(),
            None => rayon::current_num_threads(),
        }
    }

    /// Runs `work` with this handle's threads; kernels called inside parallelise over at most
    /// [`threads`](Self::threads) threads.
    pub fn install<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(work),
            None => work(),
        }
    }

    /// The memory tracker for tensors created under this handle.
    pub fn memory(&self) -> &MemoryTracker {
        &self.memory
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tensor;

    #[test]
    fn zero_threads_is_an_error() {
        assert!(matches!(
            Compute::with_threads(0),
            Err(TensorError::InvalidArgument { .. })
        ));
    }

    #[test]
    fn pool_has_requested_threads_and_caps_rayon() {
        let c = Compute::with_threads(3).unwrap();
        assert_eq!(c.threads(), 3);
        assert_eq!(c.install(rayon::current_num_threads), 3);
    }

    #[test]
    fn tracker_sees_peak_of_tensors_made_in_pool() {
        let c = Compute::with_threads(1).unwrap();
        c.install(|| {
            let a = Tensor::<f32>::zeros(&[100]);
            let b = Tensor::<f64>::zeros(&[10]);
            assert_eq!(c.memory().live_bytes(), 400 + 80);
            drop(a);
            drop(b);
        });
        assert_eq!(c.memory().live_bytes(), 0);
        assert_eq!(c.memory().peak_bytes(), 480);
        c.memory().reset_peak();
        assert_eq!(c.memory().peak_bytes(), 0);
    }
}
