//! Kullback–Leibler divergence, PyTorch's `kl_div`: the input holds log-probabilities `log q`, the
//! target holds probabilities `p` (or log-probabilities with `log_target`), and
//! `loss = p · (log p − log q)` per element, with the convention `0 · log 0 = 0`.
//!
//! `KlReduction::BatchMean` (sum divided by the size of the first axis) is the mathematically correct
//! per-sample KL; `Mean` divides by every element, as PyTorch's `reduction="mean"` does.

use fm_tensor::Element;
use ndarray::{ArrayD, ArrayViewD};

use crate::error::{LossError, Result};
use crate::pointwise;
use crate::reduction::Reduction;

/// How [`kl_div`] combines per-element terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KlReduction {
    /// One term per element.
    None,
    /// The sum of all terms.
    Sum,
    /// The sum divided by the number of elements.
    Mean,
    /// The sum divided by the length of the first axis (the batch): the KL per sample.
    #[default]
    BatchMean,
}

/// Options of [`kl_div`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct KlDivOptions {
    /// How terms are combined (default `BatchMean`).
    pub reduction: KlReduction,
    /// Whether the target holds log-probabilities (default false: probabilities).
    pub log_target: bool,
}

impl KlDivOptions {
    /// Sets the reduction.
    pub fn reduction(mut self, reduction: KlReduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// Sets whether targets are log-probabilities.
    pub fn log_target(mut self, log_target: bool) -> Self {
        self.log_target = log_target;
        self
    }
}

/// The element reduction and the mean's denominator behind a `KlReduction`.
fn plain(
    op: &'static str,
    reduction: KlReduction,
    shape: &[usize],
) -> Result<(Reduction, Option<f64>)> {
    Ok(match reduction {
        KlReduction::None => (Reduction::None, None),
        KlReduction::Sum => (Reduction::Sum, None),
        KlReduction::Mean => (Reduction::Mean, None),
        KlReduction::BatchMean => {
            let batch = shape.first().copied().unwrap_or(1);
            if batch == 0 {
                return Err(LossError::NothingToAverage {
                    op,
                    what: "an empty batch".into(),
                });
            }
            (Reduction::Mean, Some(batch as f64))
        }
    })
}

/// `p · (log p − input)`, 0 where `p = 0`.
#[inline]
fn term<T: Element>(input: T, target: T, log_target: bool) -> T {
    if log_target {
        target.exp() * (target - input)
    } else if target > T::zero() {
        target * (target.ln() - input)
    } else {
        T::zero()
    }
}

/// KL divergence of `target` from the distribution whose log-probabilities are `input`.
///
/// ```
/// use fm_loss::{kl_div, KlDivOptions};
/// use ndarray::array;
///
/// let p = array![[0.5, 0.5]].into_dyn();
/// let log_q = array![[0.25f64.ln(), 0.75f64.ln()]].into_dyn();
/// let kl = kl_div(log_q.view(), p.view(), &KlDivOptions::default())?;
/// let expected = 0.5 * (0.5f64 / 0.25).ln() + 0.5 * (0.5f64 / 0.75).ln();
/// assert!((kl[[]] - expected).abs() < 1e-15);
/// # Ok::<(), fm_loss::LossError>(())
/// ```
pub fn kl_div<T: Element>(
    input: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    options: &KlDivOptions,
) -> Result<ArrayD<T>> {
    const OP: &str = "kl_div";
    let (reduction, denominator) = plain(OP, options.reduction, input.shape())?;
    pointwise::forward(OP, input, target, reduction, denominator, |x, t, _| {
        term(x, t, options.log_target)
    })
}

/// ∂[`kl_div`]/∂input: `−p`.
pub fn kl_div_backward<T: Element>(
    input: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    grad_output: ArrayViewD<'_, T>,
    options: &KlDivOptions,
) -> Result<ArrayD<T>> {
    const OP: &str = "kl_div_backward";
    let (reduction, denominator) = plain(OP, options.reduction, input.shape())?;
    pointwise::backward(
        OP,
        input,
        target,
        grad_output,
        reduction,
        denominator,
        |_, t, _| {
            if options.log_target {
                -t.exp()
            } else {
                -t
            }
        },
    )
}

/// ∂[`kl_div`]/∂target: `log p + 1 − input` (`e^t (t − input + 1)` for log-targets).
///
/// For probability targets the derivative is unbounded at `p = 0`; such an element is an error
/// rather than an infinite (and, times a zero upstream gradient, NaN) gradient.
pub fn kl_div_backward_target<T: Element>(
    input: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    grad_output: ArrayViewD<'_, T>,
    options: &KlDivOptions,
) -> Result<ArrayD<T>> {
    const OP: &str = "kl_div_backward_target";
    if !options.log_target {
        if let Some(position) = target.iter().position(|&t| t <= T::zero()) {
            return Err(LossError::invalid_option(
                OP,
                format!(
                    "the gradient with respect to a probability target is unbounded at p = 0 \
                     (position {position}); use log-targets or treat the target as a constant"
                ),
            ));
        }
    }
    let (reduction, denominator) = plain(OP, options.reduction, input.shape())?;
    pointwise::backward(
        OP,
        input,
        target,
        grad_output,
        reduction,
        denominator,
        |x, t, _| {
            if options.log_target {
                t.exp() * (t - x + T::one())
            } else {
                t.ln() + T::one() - x
            }
        },
    )
}
