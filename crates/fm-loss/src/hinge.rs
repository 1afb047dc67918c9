//! Margin losses: the binary hinge with ±1 labels, and the multiclass hinge.
//!
//! - [`hinge`]: `max(0, margin − y · x)` per element, labels `y` exactly −1 or +1 (anything else is an
//!   error, so 0/1 labels are caught rather than silently mis-scored).
//! - [`multi_margin`]: PyTorch's `multi_margin_loss` (Crammer–Singer style, one row per sample):
//!   `loss[n] = Σ_{i ≠ y} w[y] · max(0, margin − x[y] + x[i])^p / C` with `p` 1 or 2; `Mean` divides by
//!   the number of rows.
//!
//! At the hinge's kink (`margin − y · x = 0`) the gradient is 0.

use fm_tensor::Element;
use ndarray::{ArrayD, ArrayViewD, Axis};

use crate::error::{LossError, Result};
use crate::pointwise;
use crate::reduction::{check_mean_not_empty, reduce, Reduction, UpstreamGrad};
use crate::targets::{validate, validate_class_weights, ClassIndex, ClassTargets};

/// Options of [`hinge`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HingeOptions {
    /// The margin (default 1); must be finite.
    pub margin: f64,
    /// How per-element losses are combined (default `Mean`).
    pub reduction: Reduction,
}

impl Default for HingeOptions {
    fn default() -> Self {
        HingeOptions {
            margin: 1.0,
            reduction: Reduction::Mean,
        }
    }
}

impl HingeOptions {
    /// Sets the margin.
    pub fn margin(mut self, margin: f64) -> Self {
        self.margin = margin;
        self
    }

    /// Sets the reduction.
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }
}

fn check_labels<T: Element>(
    op: &'static str,
    labels: &ArrayViewD<'_, T>,
    margin: f64,
) -> Result<()> {
    if !margin.is_finite() {
        return Err(LossError::invalid_option(
            op,
            format!("margin must be finite, got {margin}"),
        ));
    }
    for (position, &y) in labels.iter().enumerate() {
        if y != T::one() && y != -T::one() {
            return Err(LossError::InvalidLabel {
                op,
                position,
                value: y.to_f64_lossless(),
            });
        }
    }
    Ok(())
}

/// Binary hinge loss of scores `x` against labels `y ∈ {−1, +1}` (same shape).
///
/// ```
/// use fm_loss::{hinge, HingeOptions, Reduction};
/// use ndarray::array;
///
/// let scores = array![2.0, 0.5, -0.5].into_dyn();
/// let labels = array![1.0, 1.0, 1.0].into_dyn();
/// let loss = hinge(scores.view(), labels.view(), &HingeOptions::default().reduction(Reduction::None))?;
/// assert_eq!(loss, array![0.0, 0.5, 1.5].into_dyn());
/// # Ok::<(), fm_loss::LossError>(())
/// ```
pub fn hinge<T: Element>(
    scores: ArrayViewD<'_, T>,
    labels: ArrayViewD<'_, T>,
    options: &HingeOptions,
) -> Result<ArrayD<T>> {
    const OP: &str = "hinge";
    pointwise::check_same_shape(OP, &scores, &labels)?;
    check_labels(OP, &labels, options.margin)?;
    let margin = T::from_f64_lossy(options.margin);
    pointwise::forward(OP, scores, labels, options.reduction, None, |x, y, _| {
        (margin - y * x).max(T::zero())
    })
}

/// ∂[`hinge`]/∂scores: `−y` where the margin is violated, 0 elsewhere.
pub fn hinge_backward<T: Element>(
    scores: ArrayViewD<'_, T>,
    labels: ArrayViewD<'_, T>,
    grad_output: ArrayViewD<'_, T>,
    options: &HingeOptions,
) -> Result<ArrayD<T>> {
    const OP: &str = "hinge_backward";
    pointwise::check_same_shape(OP, &scores, &labels)?;
    check_labels(OP, &labels, options.margin)?;
    let margin = T::from_f64_lossy(options.margin);
    pointwise::backward(
        OP,
        scores,
        labels,
        grad_output,
        options.reduction,
        None,
        |x, y, _| {
            if margin - y * x > T::zero() {
                -y
            } else {
                T::zero()
            }
        },
    )
}

/// Options of [`multi_margin`] (PyTorch's `multi_margin_loss` arguments).
#[derive(Debug, Clone, PartialEq)]
pub struct MultiMarginOptions {
    /// The exponent `p`: 1 (hinge) or 2 (squared hinge). Default 1.
    pub p: u32,
    /// The margin (default 1).
    pub margin: f64,
    /// One finite, non-negative weight per class, applied by the target's class (default: all 1).
    pub class_weights: Option<Vec<f64>>,
    /// How per-row losses are combined (default `Mean`, over rows).
    pub reduction: Reduction,
}

impl Default for MultiMarginOptions {
    fn default() -> Self {
        MultiMarginOptions {
            p: 1,
            margin: 1.0,
            class_weights: None,
            reduction: Reduction::Mean,
        }
    }
}

impl MultiMarginOptions {
    /// Sets `p` (1 or 2).
    pub fn p(mut self, p: u32) -> Self {
        self.p = p;
        self
    }

    /// Sets the margin.
    pub fn margin(mut self, margin: f64) -> Self {
        self.margin = margin;
        self
    }

    /// Sets per-class weights.
    pub fn class_weights(mut self, weights: impl Into<Vec<f64>>) -> Self {
        self.class_weights = Some(weights.into());
        self
    }

    /// Sets the reduction.
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }
}

fn check_multi<I: ClassIndex>(
    op: &'static str,
    shape: &[usize],
    targets: &ClassTargets<'_, I>,
    options: &MultiMarginOptions,
) -> Result<(Vec<usize>, usize)> {
    let Some((&classes, leading)) = shape.split_last() else {
        return Err(LossError::invalid_shape(
            op,
            shape,
            "scores need a class axis",
        ));
    };
    if classes == 0 {
        return Err(LossError::invalid_shape(
            op,
            shape,
            "scores need at least one class",
        ));
    }
    if options.p != 1 && options.p != 2 {
        return Err(LossError::invalid_option(
            op,
            format!("p must be 1 or 2, got {}", options.p),
        ));
    }
    if !options.margin.is_finite() {
        return Err(LossError::invalid_option(
            op,
            format!("margin must be finite, got {}", options.margin),
        ));
    }
    if let Some(w) = &options.class_weights {
        validate_class_weights(op, w, classes)?;
    }
    validate(op, targets, leading, classes, None, None)?;
    check_mean_not_empty(op, options.reduction, targets.len())?;
    Ok((leading.to_vec(), classes))
}

/// Multiclass hinge loss of `scores` (classes on the last axis) against class-index `targets`.
pub fn multi_margin<'a, T: Element, I: ClassIndex>(
    scores: ArrayViewD<'_, T>,
    targets: impl Into<ClassTargets<'a, I>>,
    options: &MultiMarginOptions,
) -> Result<ArrayD<T>> {
    const OP: &str = "multi_margin";
    let targets = targets.into();
    let (leading, classes) = check_multi(OP, scores.shape(), &targets, options)?;
    let last = Axis(leading.len());
    let margin = options.margin;
    let losses = scores
        .lanes(last)
        .into_iter()
        .zip(targets.as_slice())
        .map(|(row, &y)| {
            let y = y.to_i64() as usize;
            let w = options.class_weights.as_ref().map_or(1.0, |w| w[y]);
            let xy = row[y].to_f64_lossless();
            let mut sum = 0.0;
            for (i, &xi) in row.iter().enumerate() {
                let h = margin - xy + xi.to_f64_lossless();
                if i != y && h > 0.0 {
                    sum += if options.p == 1 { h } else { h * h };
                }
            }
            w * sum / classes as f64
        });
    reduce(OP, losses, &leading, options.reduction, None)
}

/// ∂[`multi_margin`]/∂scores.
pub fn multi_margin_backward<'a, T: Element, I: ClassIndex>(
    scores: ArrayViewD<'_, T>,
    targets: impl Into<ClassTargets<'a, I>>,
    grad_output: ArrayViewD<'_, T>,
    options: &MultiMarginOptions,
) -> Result<ArrayD<T>> {
    const OP: &str = "multi_margin_backward";
    let targets = targets.into();
    let (leading, classes) = check_multi(OP, scores.shape(), &targets, options)?;
    let rows = targets.len();
    let upstream =
        UpstreamGrad::resolve(OP, grad_output, options.reduction, &leading, rows as f64)?;
    let per_row: Vec<f64> = match &upstream {
        UpstreamGrad::Uniform(a) => vec![a.to_f64_lossless(); rows],
        UpstreamGrad::PerElement(g) => g.iter().map(|v| v.to_f64_lossless()).collect(),
    };
    let last = Axis(leading.len());
    let mut grad = ArrayD::<T>::zeros(scores.raw_dim());
    let margin = options.margin;
    let rows_in = scores.lanes(last).into_iter().zip(grad.lanes_mut(last));
    for (((row, mut g), &y), a) in rows_in.zip(targets.as_slice()).zip(per_row) {
        let y = y.to_i64() as usize;
        let w = options.class_weights.as_ref().map_or(1.0, |w| w[y]);
        let xy = row[y].to_f64_lossless();
        let scale = a * w / classes as f64;
        let mut at_target = 0.0;
        for (i, &xi) in row.iter().enumerate() {
            let h = margin - xy + xi.to_f64_lossless();
            if i != y && h > 0.0 {
                let d = scale * if options.p == 1 { 1.0 } else { 2.0 * h };
                g[i] = T::from_f64_lossy(d);
                at_target -= d;
            }
        }
        g[y] = T::from_f64_lossy(at_target);
    }
    Ok(grad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn zero_one_labels_are_rejected() {
        let s = array![0.5, 1.0].into_dyn();
        let l = array![0.0, 1.0].into_dyn();
        let e = hinge(s.view(), l.view(), &HingeOptions::default()).unwrap_err();
        assert!(
            matches!(e, LossError::InvalidLabel { position: 0, .. }),
            "{e}"
        );
    }

    #[test]
    fn multi_margin_by_hand() {
        let s = array![[0.1f64, 0.2, 0.4, 0.8]].into_dyn();
        // PyTorch's documented example: (1-0.8+0.1 + 1-0.8+0.2 + 1-0.8+0.4) / 4 = 0.325
        let loss = multi_margin(s.view(), &[3usize], &MultiMarginOptions::default()).unwrap();
        assert!((loss[[]] - 0.325).abs() < 1e-12);
        let e = multi_margin(s.view(), &[3usize], &MultiMarginOptions::default().p(3)).unwrap_err();
        assert!(matches!(e, LossError::InvalidOption { .. }), "{e}");
    }
}
