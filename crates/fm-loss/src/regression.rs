//! Regression losses: mean squared error, mean absolute error, Huber and smooth L1.
//!
//! Each is a value function and a backward function on plain ndarray views; the backward returns
//! ∂loss/∂input, and ∂loss/∂target is its negation (every loss here depends on `input − target` only).
//! Inputs and targets must have the same shape. The formulas are PyTorch's `mse_loss`, `l1_loss`,
//! `huber_loss` and `smooth_l1_loss`; at a kink (`input == target` for MAE) the gradient is 0.
//!
//! ```
//! use fm_loss::{mse, mse_backward, Reduction};
//! use ndarray::array;
//!
//! let pred = array![1.0, 2.0, 4.0].into_dyn();
//! let target = array![1.0, 3.0, 2.0].into_dyn();
//! let loss = mse(pred.view(), target.view(), Reduction::Mean)?;
//! assert_eq!(loss[[]], (0.0 + 1.0 + 4.0) / 3.0);
//! let one = ndarray::arr0(1.0).into_dyn();
//! let grad = mse_backward(pred.view(), target.view(), one.view(), Reduction::Mean)?;
//! assert_eq!(grad, array![0.0, -2.0 / 3.0, 4.0 / 3.0].into_dyn());
//! # Ok::<(), fm_loss::LossError>(())
//! ```

use fm_tensor::Element;
use ndarray::{ArrayD, ArrayViewD};

use crate::error::{LossError, Result};
use crate::pointwise;
use crate::reduction::Reduction;

/// Mean squared error: `(input − target)²` per element, then `reduction`.
pub fn mse<T: Element>(
    input: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    reduction: Reduction,
) -> Result<ArrayD<T>> {
    pointwise::forward("mse", input, target, reduction, None, |x, y, _| {
        (x - y) * (x - y)
    })
}

/// ∂[`mse`]/∂input for a given output gradient (a scalar for `Sum`/`Mean`, the input's shape for
/// `None`).
pub fn mse_backward<T: Element>(
    input: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    grad_output: ArrayViewD<'_, T>,
    reduction: Reduction,
) -> Result<ArrayD<T>> {
    let two = T::from_f64_lossy(2.0);
    pointwise::backward(
        "mse",
        input,
        target,
        grad_output,
        reduction,
        None,
        |x, y, _| two * (x - y),
    )
}

/// Mean absolute error (L1): `|input − target|` per element, then `reduction`.
pub fn mae<T: Element>(
    input: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    reduction: Reduction,
) -> Result<ArrayD<T>> {
    pointwise::forward("mae", input, target, reduction, None, |x, y, _| {
        (x - y).abs()
    })
}

/// ∂[`mae`]/∂input: `sign(input − target)`, 0 where they are equal.
pub fn mae_backward<T: Element>(
    input: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    grad_output: ArrayViewD<'_, T>,
    reduction: Reduction,
) -> Result<ArrayD<T>> {
    pointwise::backward(
        "mae",
        input,
        target,
        grad_output,
        reduction,
        None,
        |x, y, _| sign(x - y),
    )
}

/// Options of [`huber`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HuberOptions {
    /// Where the loss turns from quadratic to linear (PyTorch's `delta`); must be positive.
    pub delta: f64,
    /// How per-element losses are combined.
    pub reduction: Reduction,
}

impl Default for HuberOptions {
    /// `delta = 1`, mean reduction (PyTorch's defaults).
    fn default() -> Self {
        HuberOptions {
            delta: 1.0,
            reduction: Reduction::Mean,
        }
    }
}

impl HuberOptions {
    /// Sets `delta`.
    pub fn delta(mut self, delta: f64) -> Self {
        self.delta = delta;
        self
    }

    /// Sets the reduction.
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    fn validate(&self, op: &'static str) -> Result<()> {
        if !(self.delta > 0.0 && self.delta.is_finite()) {
            return Err(LossError::invalid_option(
                op,
                format!("delta must be positive and finite, got {}", self.delta),
            ));
        }
        Ok(())
    }
}

/// Huber loss: `½ d²` for `|d| < delta`, `delta · (|d| − ½ delta)` beyond, with `d = input − target`.
pub fn huber<T: Element>(
    input: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    options: &HuberOptions,
) -> Result<ArrayD<T>> {
    options.validate("huber")?;
    let delta = T::from_f64_lossy(options.delta);
    let half = T::from_f64_lossy(0.5);
    pointwise::forward(
        "huber",
        input,
        target,
        options.reduction,
        None,
        |x, y, _| {
            let z = (x - y).abs();
            if z < delta {
                half * z * z
            } else {
                delta * (z - half * delta)
            }
        },
    )
}

/// ∂[`huber`]/∂input: `d` clamped to `[−delta, delta]`.
pub fn huber_backward<T: Element>(
    input: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    grad_output: ArrayViewD<'_, T>,
    options: &HuberOptions,
) -> Result<ArrayD<T>> {
    options.validate("huber")?;
    let delta = T::from_f64_lossy(options.delta);
    pointwise::backward(
        "huber",
        input,
        target,
        grad_output,
        options.reduction,
        None,
        |x, y, _| clamp(x - y, delta),
    )
}

/// Smooth L1 loss with threshold `beta`: Huber divided by `beta` (`½ d² / beta` for `|d| < beta`,
/// `|d| − ½ beta` beyond); `beta = 0` is the L1 loss.
pub fn smooth_l1<T: Element>(
    input: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    beta: f64,
    reduction: Reduction,
) -> Result<ArrayD<T>> {
    check_beta(beta)?;
    if beta == 0.0 {
        return pointwise::forward("smooth_l1", input, target, reduction, None, |x, y, _| {
            (x - y).abs()
        });
    }
    let b = T::from_f64_lossy(beta);
    let half = T::from_f64_lossy(0.5);
    pointwise::forward("smooth_l1", input, target, reduction, None, |x, y, _| {
        let z = (x - y).abs();
        if z < b {
            half * z * z / b
        } else {
            z - half * b
        }
    })
}

/// ∂[`smooth_l1`]/∂input: `d / beta` clamped to `[−1, 1]` (`sign(d)` for `beta = 0`).
pub fn smooth_l1_backward<T: Element>(
    input: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    grad_output: ArrayViewD<'_, T>,
    beta: f64,
    reduction: Reduction,
) -> Result<ArrayD<T>> {
    check_beta(beta)?;
    let b = T::from_f64_lossy(beta);
    pointwise::backward(
        "smooth_l1",
        input,
        target,
        grad_output,
        reduction,
        None,
        |x, y, _| {
            if beta == 0.0 {
                sign(x - y)
            } else {
                clamp((x - y) / b, T::one())
            }
        },
    )
}

fn check_beta(beta: f64) -> Result<()> {
    if !(beta >= 0.0 && beta.is_finite()) {
        return Err(LossError::invalid_option(
            "smooth_l1",
            format!("beta must be finite and non-negative, got {beta}"),
        ));
    }
    Ok(())
}

/// −1, 0 or 1 (0 at 0, unlike `f64::signum`).
#[inline]
pub(crate) fn sign<T: Element>(v: T) -> T {
    if v > T::zero() {
        T::one()
    } else if v < T::zero() {
        -T::one()
    } else {
        T::zero()
    }
}

#[inline]
fn clamp<T: Element>(v: T, bound: T) -> T {
    if v > bound {
        bound
    } else if v < -bound {
        -bound
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr0, array};

    #[test]
    fn values_and_reductions() {
        let x = array![[1.0, -2.0], [0.5, 3.0]].into_dyn();
        let y = array![[0.0, 0.0], [0.5, 1.0]].into_dyn();
        let none = mse(x.view(), y.view(), Reduction::None).unwrap();
        assert_eq!(none, array![[1.0, 4.0], [0.0, 4.0]].into_dyn());
        assert_eq!(mse(x.view(), y.view(), Reduction::Sum).unwrap()[[]], 9.0);
        assert_eq!(
            mae(x.view(), y.view(), Reduction::Mean).unwrap()[[]],
            5.0 / 4.0
        );
        let h = huber(
            x.view(),
            y.view(),
            &HuberOptions::default().reduction(Reduction::None),
        )
        .unwrap();
        assert_eq!(h, array![[0.5, 1.5], [0.0, 1.5]].into_dyn());
        let s = smooth_l1(x.view(), y.view(), 2.0, Reduction::None).unwrap();
        assert_eq!(s, array![[0.25, 1.0], [0.0, 1.0]].into_dyn());
    }

    #[test]
    fn bad_input_is_an_error() {
        let x = array![1.0, 2.0].into_dyn();
        let y = array![1.0, 2.0, 3.0].into_dyn();
        let e = mse(x.view(), y.view(), Reduction::Mean).unwrap_err();
        assert!(
            matches!(e, LossError::ShapeMismatch { op: "mse", .. }),
            "{e}"
        );
        let e = huber(x.view(), x.view(), &HuberOptions::default().delta(0.0)).unwrap_err();
        assert!(matches!(e, LossError::InvalidOption { .. }), "{e}");
        let empty = ndarray::ArrayD::<f64>::zeros(ndarray::IxDyn(&[0]));
        let e = mae(empty.view(), empty.view(), Reduction::Mean).unwrap_err();
        assert!(matches!(e, LossError::NothingToAverage { .. }), "{e}");
        assert_eq!(
            mae(empty.view(), empty.view(), Reduction::Sum).unwrap()[[]],
            0.0
        );
        // A gradient of the wrong shape for reduction "none".
        let g = arr0(1.0).into_dyn();
        let e = mse_backward(x.view(), x.view(), g.view(), Reduction::None).unwrap_err();
        assert!(matches!(e, LossError::ShapeMismatch { .. }), "{e}");
    }
}
