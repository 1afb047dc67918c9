//! The one error type of fm-optim.
//!
//! Configurations are checked when they are built, so a bad learning rate or `beta` is reported before
//! training starts, naming the field and the value. A step checks shapes and gradients before it
//! touches any parameter: on an error, parameters and optimizer state are exactly as they were.

/// Result alias used throughout fm-optim.
pub type Result<T, E = OptimError> = std::result::Result<T, E>;

/// What went wrong when configuring an optimizer, stepping it, or restoring its state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OptimError {
    /// A hyper-parameter outside its domain (negative learning rate, `beta` outside [0, 1), ...).
    #[error("{what}: invalid {field} = {value}: {reason}")]
    InvalidConfig {
        /// What was being configured ("Adam", "LrSchedule::Step", "GradClip", ...).
        what: &'static str,
        /// The field.
        field: &'static str,
        /// The value given, as text.
        value: String,
        /// What is allowed.
        reason: &'static str,
    },
    /// A gradient whose shape differs from its parameter's, or a parameter whose shape changed since
    /// its optimizer state was created.
    #[error("parameter {param:?}: shape mismatch between {expected:?} and {got:?} ({detail})")]
    ShapeMismatch {
        /// The parameter's name.
        param: String,
        /// The parameter's (or its state's) shape.
        expected: Vec<usize>,
        /// The offending shape.
        got: Vec<usize>,
        /// Which shapes were compared.
        detail: &'static str,
    },
    /// A gradient holding NaN or ±infinity (with [`NonFinitePolicy::Error`](crate::NonFinitePolicy)).
    /// Nothing was updated.
    #[error(
        "parameter {param:?}: non-finite gradient (NaN or infinity); no parameter was updated"
    )]
    NonFiniteGradient {
        /// The first parameter (in visiting order) with a non-finite gradient.
        param: String,
    },
    /// The same parameter name twice in one step, or in two parameter groups.
    #[error("parameter {param:?} appears twice ({detail})")]
    DuplicateParam {
        /// The repeated name.
        param: String,
        /// Where it was repeated.
        detail: &'static str,
    },
    /// Saved state that does not fit this optimizer (another algorithm, a missing tensor, a malformed
    /// header).
    #[error("optimizer state: {0}")]
    State(String),
    /// Saved state whose JSON part cannot be read or written.
    #[error("optimizer state JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A safetensors file that could not be written or read.
    #[cfg(feature = "fm-tensor")]
    #[error(transparent)]
    Tensor(#[from] fm_tensor::TensorError),
}

impl OptimError {
    pub(crate) fn config(
        what: &'static str,
        field: &'static str,
        value: impl std::fmt::Display,
        reason: &'static str,
    ) -> Self {
        OptimError::InvalidConfig {
            what,
            field,
            value: value.to_string(),
            reason,
        }
    }
}

/// Checks a learning-rate-like value: finite and non-negative.
pub(crate) fn check_non_negative(what: &'static str, field: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(OptimError::config(
            what,
            field,
            v,
            "must be finite and >= 0",
        ))
    }
}

/// Checks a decay factor: in [0, 1).
pub(crate) fn check_unit_interval(what: &'static str, field: &'static str, v: f64) -> Result<()> {
    if (0.0..1.0).contains(&v) {
        Ok(())
    } else {
        Err(OptimError::config(what, field, v, "must be in [0, 1)"))
    }
}

/// Checks a strictly positive, finite value.
pub(crate) fn check_positive(what: &'static str, field: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(OptimError::config(what, field, v, "must be finite and > 0"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_field_and_value() {
        let e = check_unit_interval("Adam", "beta1", 1.0).unwrap_err();
        assert_eq!(e.to_string(), "Adam: invalid beta1 = 1: must be in [0, 1)");
        let e = check_non_negative("SGD", "lr", -0.1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "SGD: invalid lr = -0.1: must be finite and >= 0"
        );
        assert!(check_non_negative("SGD", "lr", f64::NAN).is_err());
        assert!(check_positive("Adam", "eps", 0.0).is_err());
    }
}
