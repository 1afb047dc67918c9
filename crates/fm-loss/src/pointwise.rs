//! The shared driver of the element-wise losses (regression, binary, KL): shape checks, a per-element
//! function applied in row-major order, the reduction, and the matching backward.
//!
//! Each element-wise loss is then two closures — its value and its derivative — next to each other in
//! its own module. The closures get the element's position along the last axis, which is how per-class
//! options such as `pos_weight` find their value.

use fm_tensor::Element;
use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::error::{LossError, Result};
use crate::reduction::{check_mean_not_empty, reduce, Reduction, UpstreamGrad};

/// Checks that predictions and targets have the same shape.
pub(crate) fn check_same_shape<T>(
    op: &'static str,
    input: &ArrayViewD<'_, T>,
    target: &ArrayViewD<'_, T>,
) -> Result<()> {
    if input.shape() != target.shape() {
        return Err(LossError::shape_mismatch(
            op,
            input.shape(),
            target.shape(),
            "targets must have the input's shape (no broadcasting)",
        ));
    }
    Ok(())
}

/// Length of the last axis (1 for a 0-d input): the period of the class position.
pub(crate) fn last_dim(shape: &[usize]) -> usize {
    shape.last().copied().unwrap_or(1).max(1)
}

/// Applies `loss(input, target, class)` to every element and reduces (the mean divides by
/// `denominator`, or by the element count when it is `None`).
pub(crate) fn forward<T: Element>(
    op: &'static str,
    input: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    reduction: Reduction,
    denominator: Option<f64>,
    loss: impl Fn(T, T, usize) -> T,
) -> Result<ArrayD<T>> {
    check_same_shape(op, &input, &target)?;
    check_mean_not_empty(op, reduction, input.len())?;
    let period = last_dim(input.shape());
    let values = input
        .iter()
        .zip(target.iter())
        .enumerate()
        .map(|(i, (&x, &y))| loss(x, y, i % period).to_f64_lossless());
    reduce(op, values, input.shape(), reduction, denominator)
}

/// The gradient of the reduced loss with respect to one operand, given `derivative(input, target,
/// class)` = ∂(element loss)/∂(that operand).
pub(crate) fn backward<T: Element>(
    op: &'static str,
    input: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    grad_output: ArrayViewD<'_, T>,
    reduction: Reduction,
    denominator: Option<f64>,
    derivative: impl Fn(T, T, usize) -> T,
) -> Result<ArrayD<T>> {
    check_same_shape(op, &input, &target)?;
    check_mean_not_empty(op, reduction, input.len())?;
    let denominator = denominator.unwrap_or(input.len() as f64);
    let upstream = UpstreamGrad::resolve(op, grad_output, reduction, input.shape(), denominator)?;
    let period = last_dim(input.shape());
    let pairs = input.iter().zip(target.iter()).enumerate();
    let data: Vec<T> = match upstream {
        UpstreamGrad::Uniform(g) => pairs
            .map(|(i, (&x, &y))| g * derivative(x, y, i % period))
            .collect(),
        UpstreamGrad::PerElement(g) => pairs
            .zip(g.iter())
            .map(|((i, (&x, &y)), &g)| g * derivative(x, y, i % period))
            .collect(),
    };
    Ok(ArrayD::from_shape_vec(IxDyn(input.shape()), data).expect("one gradient per element"))
}

/// Checks an optional per-class vector (weights, `pos_weight`) against the last axis.
pub(crate) fn check_per_class(
    op: &'static str,
    what: &str,
    values: Option<&[f64]>,
    shape: &[usize],
) -> Result<()> {
    let Some(values) = values else {
        return Ok(());
    };
    let classes = last_dim(shape);
    if values.len() != classes {
        return Err(LossError::shape_mismatch(
            op,
            shape,
            &[values.len()],
            format!("{what} needs one value per position of the last axis ({classes})"),
        ));
    }
    if let Some((i, v)) = values
        .iter()
        .enumerate()
        .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
    {
        return Err(LossError::invalid_option(
            op,
            format!("{what}[{i}] = {v} must be finite and non-negative"),
        ));
    }
    Ok(())
}
