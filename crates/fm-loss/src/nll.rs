//! Negative log-likelihood of class-index targets, given log-probabilities.
//!
//! `loss[n] = −w[y_n] · log_probs[n, y_n]`, PyTorch's `nll_loss`: classes on the last axis, targets of
//! the leading shape, optional per-class weights and `ignore_index`; `Mean` divides by the sum of the
//! weights of the non-ignored targets. Feed it the output of a log-softmax; for raw logits
//! [`cross_entropy`](crate::cross_entropy()) is the same loss, fused and stable.

use fm_tensor::Element;
use ndarray::{ArrayD, ArrayViewD, Axis};

use crate::error::{LossError, Result};
use crate::reduction::{reduce, Reduction, UpstreamGrad};
use crate::targets::{resolve, validate, validate_class_weights, ClassIndex, ClassTargets, Target};

/// Options of [`nll_loss`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NllOptions {
    /// How per-row losses are combined (default `Mean`).
    pub reduction: Reduction,
    /// Targets equal to this value contribute nothing (default: none).
    pub ignore_index: Option<i64>,
    /// One finite, non-negative weight per class (default: all 1).
    pub class_weights: Option<Vec<f64>>,
}

impl NllOptions {
    /// Sets the reduction.
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// Sets the target value to ignore.
    pub fn ignore_index(mut self, index: i64) -> Self {
        self.ignore_index = Some(index);
        self
    }

    /// Sets per-class weights.
    pub fn class_weights(mut self, weights: impl Into<Vec<f64>>) -> Self {
        self.class_weights = Some(weights.into());
        self
    }
}

struct Checked {
    leading: Vec<usize>,
    denominator: f64,
}

fn check<I: ClassIndex>(
    op: &'static str,
    shape: &[usize],
    targets: &ClassTargets<'_, I>,
    options: &NllOptions,
) -> Result<Checked> {
    let Some((&classes, leading)) = shape.split_last() else {
        return Err(LossError::invalid_shape(
            op,
            shape,
            "log-probabilities need a class axis",
        ));
    };
    if classes == 0 {
        return Err(LossError::invalid_shape(
            op,
            shape,
            "log-probabilities need at least one class",
        ));
    }
    if let Some(w) = &options.class_weights {
        validate_class_weights(op, w, classes)?;
    }
    let denominator = validate(
        op,
        targets,
        leading,
        classes,
        options.ignore_index,
        options.class_weights.as_deref(),
    )?;
    if options.reduction == Reduction::Mean && denominator == 0.0 {
        return Err(LossError::NothingToAverage {
            op,
            what: "targets that are all ignored or weigh 0 in total".into(),
        });
    }
    Ok(Checked {
        leading: leading.to_vec(),
        denominator,
    })
}

fn weight(options: &NllOptions, class: usize) -> f64 {
    options.class_weights.as_ref().map_or(1.0, |w| w[class])
}

/// Negative log-likelihood of `targets` under `log_probs` (classes on the last axis).
pub fn nll_loss<'a, T: Element, I: ClassIndex>(
    log_probs: ArrayViewD<'_, T>,
    targets: impl Into<ClassTargets<'a, I>>,
    options: &NllOptions,
) -> Result<ArrayD<T>> {
    const OP: &str = "nll_loss";
    let targets = targets.into();
    let checked = check(OP, log_probs.shape(), &targets, options)?;
    let last = Axis(checked.leading.len());
    let losses = log_probs
        .lanes(last)
        .into_iter()
        .zip(targets.as_slice())
        .map(
            |(row, &y)| match resolve(y.to_i64(), options.ignore_index) {
                Target::Ignored => 0.0,
                Target::Class(c) => {
                    let w = weight(options, c);
                    if w == 0.0 {
                        0.0
                    } else {
                        -w * row[c].to_f64_lossless()
                    }
                }
            },
        );
    reduce(
        OP,
        losses,
        &checked.leading,
        options.reduction,
        Some(checked.denominator),
    )
}

/// ∂[`nll_loss`]/∂log_probs: `−w[y]` (times the output gradient) at each target, 0 elsewhere.
pub fn nll_loss_backward<'a, T: Element, I: ClassIndex>(
    log_probs: ArrayViewD<'_, T>,
    targets: impl Into<ClassTargets<'a, I>>,
    grad_output: ArrayViewD<'_, T>,
    options: &NllOptions,
) -> Result<ArrayD<T>> {
    const OP: &str = "nll_loss_backward";
    let targets = targets.into();
    let checked = check(OP, log_probs.shape(), &targets, options)?;
    let upstream = UpstreamGrad::resolve(
        OP,
        grad_output,
        options.reduction,
        &checked.leading,
        checked.denominator,
    )?;
    let mut grad = ArrayD::<T>::zeros(log_probs.raw_dim());
    let last = Axis(checked.leading.len());
    let per_row: Vec<f64> = match &upstream {
        UpstreamGrad::Uniform(a) => vec![a.to_f64_lossless(); targets.len()],
        UpstreamGrad::PerElement(g) => g.iter().map(|v| v.to_f64_lossless()).collect(),
    };
    for ((mut row, &y), a) in grad
        .lanes_mut(last)
        .into_iter()
        .zip(targets.as_slice())
        .zip(per_row)
    {
        if let Target::Class(c) = resolve(y.to_i64(), options.ignore_index) {
            row[c] = T::from_f64_lossy(-a * weight(options, c));
        }
    }
    Ok(grad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn weighted_mean_divides_by_target_weights() {
        let lp = array![[-0.1f64, -2.0, -3.0], [-1.0, -0.5, -2.5]].into_dyn();
        let o = NllOptions::default().class_weights(vec![1.0, 2.0, 3.0]);
        let loss = nll_loss(lp.view(), &[2usize, 1], &o).unwrap()[[]];
        assert!((loss - (3.0 * 3.0 + 2.0 * 0.5) / 5.0).abs() < 1e-15);
        let all_ignored = NllOptions::default().ignore_index(7);
        let e = nll_loss(lp.view(), &[7i64, 7], &all_ignored).unwrap_err();
        assert!(matches!(e, LossError::NothingToAverage { .. }), "{e}");
        let sum = nll_loss(
            lp.view(),
            &[7i64, 7],
            &all_ignored.reduction(Reduction::Sum),
        )
        .unwrap();
        assert_eq!(sum[[]], 0.0);
    }
}
