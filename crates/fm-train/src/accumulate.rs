//! Gradient accumulation: several micro-batches, one optimizer step.
//!
//! Each micro-batch's backward pass is added into the [`ParamStore`]'s gradient buffers; when all
//! `micro_batches` are in, [`GradAccumulator::finish`] divides the sums by their count, so the step
//! sees the gradient of the mean loss over the micro-batches — the same as one batch of their union
//! when each micro-batch's loss is a mean over equally many examples.
//!
//! ```
//! use fm_tensor::autograd::{ParamStore, Tape};
//! use fm_train::GradAccumulator;
//! use ndarray::array;
//!
//! let mut store = ParamStore::<f64>::new();
//! let w = store.add("w", array![1.0])?;
//! let mut acc = GradAccumulator::new(2)?;
//! for x in [1.0, 3.0] {
//!     let tape = Tape::new();
//!     let loss = tape.param(&store, w)?.mul(tape.constant(array![x]))?.sum()?; // d/dw = x
//!     let value = loss.item()?;
//!     acc.add(&mut store, &tape.backward(loss)?, value, 1)?;
//! }
//! let step = acc.finish(&mut store);
//! assert_eq!(store.grad(w).unwrap()[[0]], 2.0); // mean of 1 and 3
//! assert_eq!((step.mean_loss, step.micro_batches), (2.0, 2));
//! # Ok::<(), fm_train::TrainError>(())
//! ```

use fm_tensor::autograd::Gradients;
use fm_tensor::{Element, ParamStore};

use crate::error::{Result, TrainError};

/// Sums micro-batch gradients and losses until a step is complete.
#[derive(Debug, Clone, PartialEq)]
pub struct GradAccumulator {
    micro_batches: usize,
    seen: usize,
    loss_sum: f64,
    tokens: u64,
}

/// What the micro-batches of one step added up to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccumulatedStep {
    /// Mean of the micro-batch losses.
    pub mean_loss: f64,
    /// Tokens (or examples) the micro-batches reported.
    pub tokens: u64,
    /// Micro-batches accumulated.
    pub micro_batches: usize,
}

impl GradAccumulator {
    /// Accumulates `micro_batches >= 1` micro-batches per step.
    pub fn new(micro_batches: usize) -> Result<Self> {
        if micro_batches == 0 {
            return Err(TrainError::config(
                "GradAccumulator",
                "micro_batches",
                micro_batches,
                "must be at least 1",
            ));
        }
        Ok(GradAccumulator {
            micro_batches,
            seen: 0,
            loss_sum: 0.0,
            tokens: 0,
        })
    }

    /// Micro-batches per step.
    pub fn micro_batches(&self) -> usize {
        self.micro_batches
    }

    /// Micro-batches added since the last [`finish`](Self::finish).
    pub fn seen(&self) -> usize {
        self.seen
    }

    /// Whether all micro-batches of the step are in.
    pub fn is_ready(&self) -> bool {
        self.seen >= self.micro_batches
    }

    /// Adds one micro-batch's gradients (into `store`), loss and token count. Returns whether the
    /// step is now complete.
    pub fn add<T: Element>(
        &mut self,
        store: &mut ParamStore<T>,
        grads: &Gradients<T>,
        loss: f64,
        tokens: u64,
    ) -> Result<bool> {
        store.accumulate(grads)?;
        self.seen += 1;
        self.loss_sum += loss;
        self.tokens += tokens;
        Ok(self.is_ready())
    }

    /// Divides the accumulated gradients by the number of micro-batches added and starts the next
    /// step. (With one micro-batch per step nothing is rescaled.)
    pub fn finish<T: Element>(&mut self, store: &mut ParamStore<T>) -> AccumulatedStep {
        let n = self.seen.max(1);
        if n > 1 {
            store.scale_grads(T::from_f64_lossy(1.0 / n as f64));
        }
        let step = AccumulatedStep {
            mean_loss: self.loss_sum / n as f64,
            tokens: self.tokens,
            micro_batches: self.seen,
        };
        self.seen = 0;
        self.loss_sum = 0.0;
        self.tokens = 0;
        step
    }
}
