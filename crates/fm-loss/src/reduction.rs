//! How per-element (or per-sample) losses become the value a caller gets back.
//!
//! [`Reduction::None`] returns one loss per element (per sample for the class losses), `Sum` their sum
//! and `Mean` their mean, as PyTorch's `reduction=` argument does. For losses with ignored or weighted
//! targets (cross-entropy, NLL) the mean divides by the number of non-ignored targets, or by the sum of
//! their class weights; a mean over nothing is an error ([`LossError::NothingToAverage`]), never a NaN.
//!
//! Sums are accumulated in `f64` in a fixed (row-major) order, so a loss is the same bits for any
//! number of threads and precise for `f32` inputs.

use fm_tensor::Element;
use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::error::{LossError, Result};

/// How to combine per-element losses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Reduction {
    /// One loss per element (per sample for class losses), in the input's (leading) shape.
    None,
    /// The sum of the per-element losses (a 0-d array).
    Sum,
    /// The mean (a 0-d array): over all elements, or over non-ignored targets weighted by their
    /// class weights for the class losses.
    #[default]
    Mean,
}

impl Reduction {
    /// PyTorch's name for the reduction (`"none"`, `"sum"`, `"mean"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Reduction::None => "none",
            Reduction::Sum => "sum",
            Reduction::Mean => "mean",
        }
    }
}

/// The upstream gradient of a reduced loss, resolved against the loss's shape: one value for a
/// reduced loss, or one value per element for `Reduction::None`.
pub(crate) enum UpstreamGrad<'a, T> {
    /// d(total)/d(each element's loss) is the same for every element.
    Uniform(T),
    /// One factor per element (per row), in the loss's unreduced shape.
    PerElement(ArrayViewD<'a, T>),
}

impl<'a, T: Element> UpstreamGrad<'a, T> {
    /// Checks `grad_output` against the output a loss with `reduction` produces (`unreduced` is the
    /// shape of the per-element losses) and folds in the mean's `1 / denominator`.
    pub(crate) fn resolve(
        op: &'static str,
        grad_output: ArrayViewD<'a, T>,
        reduction: Reduction,
        unreduced: &[usize],
        denominator: f64,
    ) -> Result<Self> {
        match reduction {
            Reduction::None => {
                if grad_output.shape() != unreduced {
                    return Err(LossError::shape_mismatch(
                        op,
                        unreduced,
                        grad_output.shape(),
                        "with reduction \"none\" the output gradient has the per-element loss shape",
                    ));
                }
                Ok(UpstreamGrad::PerElement(grad_output))
            }
            Reduction::Sum | Reduction::Mean => {
                if grad_output.len() != 1 {
                    return Err(LossError::shape_mismatch(
                        op,
                        &[],
                        grad_output.shape(),
                        "a reduced loss is a scalar: its output gradient must have one element",
                    ));
                }
                let g = grad_output.iter().next().copied().unwrap_or_else(T::zero);
                let scale = if reduction == Reduction::Mean {
                    1.0 / denominator
                } else {
                    1.0
                };
                Ok(UpstreamGrad::Uniform(T::from_f64_lossy(
                    g.to_f64_lossless() * scale,
                )))
            }
        }
    }
}

/// Reduces per-element losses (given as `f64`, in row-major order) to the requested output.
///
/// `per_element` is only materialised as an array for `Reduction::None`; `shape` is its shape.
pub(crate) fn reduce<T: Element>(
    op: &'static str,
    per_element: impl Iterator<Item = f64>,
    shape: &[usize],
    reduction: Reduction,
    denominator: Option<f64>,
) -> Result<ArrayD<T>> {
    match reduction {
        Reduction::None => {
            let data: Vec<T> = per_element.map(T::from_f64_lossy).collect();
            Ok(ArrayD::from_shape_vec(IxDyn(shape), data)
                .expect("per-element losses fill the shape"))
        }
        Reduction::Sum => Ok(scalar(per_element.sum())),
        Reduction::Mean => {
            let count = shape.iter().product::<usize>() as f64;
            let denominator = denominator.unwrap_or(count);
            if denominator == 0.0 {
                return Err(LossError::NothingToAverage {
                    op,
                    what: if shape.iter().product::<usize>() == 0 {
                        "an empty input".into()
                    } else {
                        "a zero denominator".into()
                    },
                });
            }
            Ok(scalar(per_element.sum::<f64>() / denominator))
        }
    }
}

/// A 0-d array holding `value`.
pub(crate) fn scalar<T: Element>(value: f64) -> ArrayD<T> {
    ArrayD::from_elem(IxDyn(&[]), T::from_f64_lossy(value))
}

/// Errors for a mean over an empty input before any work is done.
pub(crate) fn check_mean_not_empty(
    op: &'static str,
    reduction: Reduction,
    len: usize,
) -> Result<()> {
    if reduction == Reduction::Mean && len == 0 {
        return Err(LossError::NothingToAverage {
            op,
            what: "an empty input".into(),
        });
    }
    Ok(())
}
