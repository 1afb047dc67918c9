//! Binary cross-entropy with logits, for binary and multi-label classification.
//!
//! Per element, with logit `x`, target `y` in [0, 1], `pos_weight` `p` and `weight` `w` (both per
//! position of the last axis, as PyTorch broadcasts them):
//! `loss = w · (p · y · softplus(−x) + (1 − y) · softplus(x))`, which is
//! `−w · (p · y · log σ(x) + (1 − y) · log(1 − σ(x)))` written so that it never takes the log of 0:
//! `softplus(z) = max(z, 0) + ln(1 + e^(−|z|))` is exact for logits of any size.
//! The gradients are `w · ((1 − y) σ(x) − p · y · σ(−x))` for the logits and
//! `w · (p · softplus(−x) − softplus(x))` for the targets.

use fm_tensor::Element;
use ndarray::{ArrayD, ArrayViewD};

use crate::error::Result;
use crate::pointwise::{self, check_per_class};
use crate::reduction::Reduction;

/// Options of [`bce_with_logits`] (PyTorch's `binary_cross_entropy_with_logits` arguments).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BceOptions {
    /// How per-element losses are combined (default `Mean`, over all elements).
    pub reduction: Reduction,
    /// Weight of the positive term per position of the last axis (default: all 1). Values above 1
    /// raise recall on rare positives.
    pub pos_weight: Option<Vec<f64>>,
    /// Weight of each element's loss per position of the last axis (default: all 1).
    pub weight: Option<Vec<f64>>,
}

impl BceOptions {
    /// Sets the reduction.
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// Sets `pos_weight`.
    pub fn pos_weight(mut self, pos_weight: impl Into<Vec<f64>>) -> Self {
        self.pos_weight = Some(pos_weight.into());
        self
    }

    /// Sets `weight`.
    pub fn weight(mut self, weight: impl Into<Vec<f64>>) -> Self {
        self.weight = Some(weight.into());
        self
    }

    fn check(&self, op: &'static str, shape: &[usize]) -> Result<()> {
        check_per_class(op, "pos_weight", self.pos_weight.as_deref(), shape)?;
        check_per_class(op, "weight", self.weight.as_deref(), shape)
    }

    fn factors<T: Element>(&self, class: usize) -> (T, T) {
        let w = self.weight.as_ref().map_or(1.0, |w| w[class]);
        let p = self.pos_weight.as_ref().map_or(1.0, |p| p[class]);
        (T::from_f64_lossy(w), T::from_f64_lossy(p))
    }
}

/// `ln(1 + e^z)` without overflow or loss of precision.
#[inline]
pub(crate) fn softplus<T: Element>(z: T) -> T {
    z.max(T::zero()) + (-z.abs()).exp().ln_1p()
}

/// The logistic function, evaluated on the side where `e^(−|z|)` cannot overflow.
#[inline]
pub(crate) fn sigmoid<T: Element>(z: T) -> T {
    let e = (-z.abs()).exp();
    if z >= T::zero() {
        T::one() / (T::one() + e)
    } else {
        e / (T::one() + e)
    }
}

/// Binary cross-entropy between `sigmoid(logits)` and `targets` (same shape, values in [0, 1]).
///
/// ```
/// use fm_loss::{bce_with_logits, BceOptions};
/// use ndarray::array;
///
/// let logits = array![1e4, -1e4, 0.0].into_dyn();
/// let targets = array![1.0, 0.0, 1.0].into_dyn();
/// let loss = bce_with_logits(logits.view(), targets.view(), &BceOptions::default())?;
/// assert!((loss[[]] - 2f64.ln() / 3.0).abs() < 1e-15);
/// # Ok::<(), fm_loss::LossError>(())
/// ```
pub fn bce_with_logits<T: Element>(
    logits: ArrayViewD<'_, T>,
    targets: ArrayViewD<'_, T>,
    options: &BceOptions,
) -> Result<ArrayD<T>> {
    const OP: &str = "bce_with_logits";
    options.check(OP, logits.shape())?;
    pointwise::forward(OP, logits, targets, options.reduction, None, |x, y, c| {
        let (w, p) = options.factors::<T>(c);
        w * (p * y * softplus(-x) + (T::one() - y) * softplus(x))
    })
}

/// ∂[`bce_with_logits`]/∂logits.
pub fn bce_with_logits_backward<T: Element>(
    logits: ArrayViewD<'_, T>,
    targets: ArrayViewD<'_, T>,
    grad_output: ArrayViewD<'_, T>,
    options: &BceOptions,
) -> Result<ArrayD<T>> {
    const OP: &str = "bce_with_logits_backward";
    options.check(OP, logits.shape())?;
    pointwise::backward(
        OP,
        logits,
        targets,
        grad_output,
        options.reduction,
        None,
        |x, y, c| {
            let (w, p) = options.factors::<T>(c);
            w * ((T::one() - y) * sigmoid(x) - p * y * sigmoid(-x))
        },
    )
}

/// ∂[`bce_with_logits`]/∂targets.
pub fn bce_with_logits_backward_targets<T: Element>(
    logits: ArrayViewD<'_, T>,
    targets: ArrayViewD<'_, T>,
    grad_output: ArrayViewD<'_, T>,
    options: &BceOptions,
) -> Result<ArrayD<T>> {
    const OP: &str = "bce_with_logits_backward_targets";
    options.check(OP, logits.shape())?;
    pointwise::backward(
        OP,
        logits,
        targets,
        grad_output,
        options.reduction,
        None,
        |x, _, c| {
            let (w, p) = options.factors::<T>(c);
            w * (p * softplus(-x) - softplus(x))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::LossError;
    use ndarray::array;

    #[test]
    fn extreme_logits_stay_finite() {
        for &x in &[1e4f32, -1e4, 88.0, -88.0, 0.0] {
            assert!(softplus(x).is_finite());
            let s = sigmoid(x);
            assert!((0.0..=1.0).contains(&s));
        }
        let logits = array![1e4f32, -1e4].into_dyn();
        let targets = array![0.0f32, 1.0].into_dyn();
        let loss = bce_with_logits(logits.view(), targets.view(), &BceOptions::default()).unwrap();
        assert_eq!(loss[[]], 1e4);
    }

    #[test]
    fn pos_weight_needs_one_value_per_class() {
        let logits = array![[0.0, 1.0, 2.0]].into_dyn();
        let e = bce_with_logits(
            logits.view(),
            logits.view(),
            &BceOptions::default().pos_weight(vec![1.0, 2.0]),
        )
        .unwrap_err();
        assert!(matches!(e, LossError::ShapeMismatch { .. }), "{e}");
        let e = bce_with_logits(
            logits.view(),
            logits.view(),
            &BceOptions::default().weight(vec![1.0, -2.0, 1.0]),
        )
        .unwrap_err();
        assert!(matches!(e, LossError::InvalidOption { .. }), "{e}");
    }
}
