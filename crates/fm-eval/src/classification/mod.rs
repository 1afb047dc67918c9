//! Classification metrics: counts of hits and misses, and rankings of scores.
//!
//! Classes are declared up front as `n_classes` and labels are class indices `0..n_classes`. This is
//! what scikit-learn computes when given `labels=range(n_classes)`: a class that never occurs in
//! `y_true` or `y_pred` still takes part in macro averages (with the [`ZeroDivision`] value), which
//! is the honest choice for streaming evaluation, where one batch may lack a class the next one has.
//!
//! - [`ConfusionMatrix`] holds the counts every label-based metric derives from: accuracy, precision,
//!   recall, F-beta (per class, binary, micro, macro, weighted), balanced accuracy, Matthews
//!   correlation. [`Precision`], [`Recall`], [`FBeta`], [`BalancedAccuracy`] and [`MatthewsCorrcoef`]
//!   wrap it as single-valued metrics.
//! - [`Accuracy`] counts hits only, for when the k×k matrix is not wanted; [`TopKAccuracy`] scores
//!   a matrix of class scores.
//! - [`RocAuc`], [`RocAucOvr`], [`AveragePrecision`], [`AveragePrecisionOvr`] rank scores and so
//!   keep every score they are given (see their memory notes).
//! - [`LogLoss`] scores predicted probabilities.

mod accuracy;
mod confusion;
mod confusion_count;
mod log_loss;
mod ranking;

pub use accuracy::{Accuracy, TopKAccuracy};
pub use confusion::{
    BalancedAccuracy, ConfusionMatrix, FBeta, MatthewsCorrcoef, PerClass, Precision,
    PrecisionRecallF, Recall,
};
pub use log_loss::LogLoss;
pub use ranking::{AveragePrecision, AveragePrecisionOvr, RocAuc, RocAucOvr};

use crate::error::{EvalError, Result};

/// How per-class precision, recall and F-beta are combined into one number (scikit-learn's
/// `average`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Average {
    /// Only the class `pos_label` of a two-class problem (scikit-learn's `average="binary"`).
    Binary {
        /// The class counted as positive, `0` or `1`.
        pos_label: usize,
    },
    /// Global counts: true positives, false positives and false negatives summed over classes.
    /// For single-label multiclass data micro precision, recall and F1 all equal accuracy.
    Micro,
    /// Unweighted mean of the per-class values; every declared class counts.
    Macro,
    /// Mean of the per-class values weighted by support (the number of true samples per class).
    Weighted,
}

impl Average {
    pub(crate) fn validate(self, metric: &'static str, n_classes: usize) -> Result<()> {
        if let Average::Binary { pos_label } = self {
            if n_classes != 2 {
                return Err(EvalError::InvalidArgument {
                    metric,
                    reason: format!(
                        "average = Binary needs exactly 2 declared classes, got {n_classes}; \
                         use Micro, Macro or Weighted, or the per-class values"
                    ),
                });
            }
            if pos_label >= 2 {
                return Err(EvalError::InvalidArgument {
                    metric,
                    reason: format!("pos_label = {pos_label} is not one of the classes 0, 1"),
                });
            }
        }
        Ok(())
    }

    /// The suffix used in report keys: `binary`, `micro`, `macro`, `weighted`.
    pub fn key(self) -> &'static str {
        match self {
            Average::Binary { .. } => "binary",
            Average::Micro => "micro",
            Average::Macro => "macro",
            Average::Weighted => "weighted",
        }
    }
}

/// The value a ratio takes when its denominator is zero (scikit-learn's `zero_division`).
///
/// Precision is `tp / (tp + fp)`: undefined for a class that was never predicted. Recall is
/// `tp / (tp + fn)`: undefined for a class that never occurs in `y_true`. F-beta is
/// `(1 + β²) tp / ((1 + β²) tp + β² fn + fp)`: undefined only when the class is neither predicted
/// nor present. With [`ZeroDivision::NaN`] undefined per-class values are left out of the macro and
/// weighted averages (and an average over nothing is NaN), as in scikit-learn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ZeroDivision {
    /// Use 0.0. scikit-learn's default `"warn"` gives the same value (plus a warning).
    #[default]
    Zero,
    /// Use 1.0.
    One,
    /// Use NaN, and leave the class out of averages.
    NaN,
}

impl ZeroDivision {
    /// The value substituted for 0/0.
    pub fn value(self) -> f64 {
        match self {
            ZeroDivision::Zero => 0.0,
            ZeroDivision::One => 1.0,
            ZeroDivision::NaN => f64::NAN,
        }
    }
}
