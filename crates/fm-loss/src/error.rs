//! The one error type of fm-loss.
//!
//! Every loss checks its inputs before it computes anything, and reports what is wrong in terms a user
//! can act on: the loss's name and both shapes for a mismatch, the position and value of a class index
//! out of range, the option that is outside its domain. Inside an autograd graph the same errors reach
//! the caller as [`TensorError`]s (see the `From` impl), with the message intact.

use fm_tensor::TensorError;

/// Result alias used throughout fm-loss.
pub type Result<T, E = LossError> = std::result::Result<T, E>;

/// What went wrong in a loss computation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LossError {
    /// Two operands whose shapes do not fit together (predictions and targets, a gradient and its
    /// output, logits and class weights).
    #[error("{op}: shape mismatch between {lhs:?} and {rhs:?} ({detail})")]
    ShapeMismatch {
        /// The loss that rejected the shapes.
        op: &'static str,
        /// Shape of the first operand (usually the predictions or logits).
        lhs: Vec<usize>,
        /// Shape of the second operand.
        rhs: Vec<usize>,
        /// What was expected.
        detail: String,
    },
    /// An operand whose shape is wrong on its own (wrong rank, no classes).
    #[error("{op}: invalid shape {shape:?}: {reason}")]
    InvalidShape {
        /// The loss that rejected the shape.
        op: &'static str,
        /// The offending shape.
        shape: Vec<usize>,
        /// What was expected instead.
        reason: String,
    },
    /// A class index that is negative or not below the number of classes (and is not the
    /// `ignore_index`).
    #[error("{op}: target {class} at position {position} is out of range for {classes} classes")]
    ClassOutOfRange {
        /// The loss that rejected the target.
        op: &'static str,
        /// Position of the target in the (flattened) target array.
        position: usize,
        /// The class index given.
        class: i64,
        /// Number of classes (the logits' last dimension).
        classes: usize,
    },
    /// A label that must be -1 or +1 (binary hinge) but is not.
    #[error("{op}: label {value} at position {position} must be -1 or +1")]
    InvalidLabel {
        /// The loss that rejected the label.
        op: &'static str,
        /// Position of the label (flattened).
        position: usize,
        /// The value given.
        value: f64,
    },
    /// A mean over nothing: every target is ignored, or the class weights of the targets sum to
    /// zero. Use `Reduction::Sum` to get 0 for such a batch.
    #[error("{op}: mean reduction over {what}: nothing to average")]
    NothingToAverage {
        /// The loss that was asked for the mean.
        op: &'static str,
        /// Why the denominator is zero ("0 non-ignored targets", "a total class weight of 0").
        what: String,
    },
    /// A row of logits without a finite log-sum-exp (a NaN or +∞ logit, or every logit −∞).
    #[error("{op}: row {row} has no finite log-sum-exp (a NaN or +inf logit, or all logits -inf)")]
    NonFiniteLogits {
        /// The loss that found the row.
        op: &'static str,
        /// The row (flattened leading index).
        row: usize,
    },
    /// An option outside its domain (label smoothing outside [0, 1], a negative class weight, a
    /// non-positive Huber delta, ...).
    #[error("{op}: invalid option: {reason}")]
    InvalidOption {
        /// The loss that rejected the option.
        op: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// An error from fm-tensor (recording on a tape, a variable from another tape).
    #[error(transparent)]
    Tensor(#[from] TensorError),
}

impl LossError {
    pub(crate) fn shape_mismatch(
        op: &'static str,
        lhs: &[usize],
        rhs: &[usize],
        detail: impl Into<String>,
    ) -> Self {
        LossError::ShapeMismatch {
            op,
            lhs: lhs.to_vec(),
            rhs: rhs.to_vec(),
            detail: detail.into(),
        }
    }

    pub(crate) fn invalid_shape(
        op: &'static str,
        shape: &[usize],
        reason: impl Into<String>,
    ) -> Self {
        LossError::InvalidShape {
            op,
            shape: shape.to_vec(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid_option(op: &'static str, reason: impl Into<String>) -> Self {
        LossError::InvalidOption {
            op,
            reason: reason.into(),
        }
    }

    /// The loss (op) name this error is about, if it has one.
    pub fn op(&self) -> Option<&'static str> {
        match self {
            LossError::ShapeMismatch { op, .. }
            | LossError::InvalidShape { op, .. }
            | LossError::ClassOutOfRange { op, .. }
            | LossError::InvalidLabel { op, .. }
            | LossError::NothingToAverage { op, .. }
            | LossError::NonFiniteLogits { op, .. }
            | LossError::InvalidOption { op, .. } => Some(op),
            LossError::Tensor(_) => None,
        }
    }
}

/// Lets a loss error travel through fm-tensor's autograd (a [`CustomOp`](fm_tensor::CustomOp) returns
/// [`TensorError`]) and through `?` in functions that return fm-tensor's `Result`. Shape mismatches
/// stay shape mismatches; everything else becomes an `InvalidArgument` carrying the full message.
impl From<LossError> for TensorError {
    fn from(error: LossError) -> Self {
        match error {
            LossError::Tensor(inner) => inner,
            LossError::ShapeMismatch {
                op,
                lhs,
                rhs,
                detail,
            } => TensorError::shape_mismatch(op, &lhs, &rhs, detail),
            other => {
                let op = other.op().unwrap_or("loss");
                TensorError::invalid_argument(op, other.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_loss_and_the_problem() {
        let e = LossError::ClassOutOfRange {
            op: "cross_entropy",
            position: 3,
            class: 7,
            classes: 5,
        };
        assert_eq!(
            e.to_string(),
            "cross_entropy: target 7 at position 3 is out of range for 5 classes"
        );
        let e =
            LossError::shape_mismatch("mse", &[2, 3], &[3, 2], "targets must match predictions");
        assert_eq!(
            e.to_string(),
            "mse: shape mismatch between [2, 3] and [3, 2] (targets must match predictions)"
        );
    }

    #[test]
    fn conversion_to_tensor_error_keeps_the_message() {
        let e = LossError::NothingToAverage {
            op: "nll",
            what: "0 non-ignored targets".into(),
        };
        let message = e.to_string();
        let t: TensorError = e.into();
        assert!(t.to_string().contains(&message), "{t}");
        let shape: TensorError = LossError::shape_mismatch("mse", &[1], &[2], "x").into();
        assert!(matches!(
            shape,
            TensorError::ShapeMismatch { op: "mse", .. }
        ));
    }
}
