//! The one error type of fm-eval.
//!
//! Every accumulator's `update` validates its whole batch before it changes any state, so an error
//! leaves the accumulator exactly as it was. Variants name the metric that refused the input and what
//! was wrong with it: both lengths for a mismatch, the position and value of a bad label or score, the
//! declared class count. Panics are reserved for broken internal invariants.

/// Result alias used throughout fm-eval.
pub type Result<T, E = EvalError> = std::result::Result<T, E>;

/// The error a model closure may return to the [`Evaluator`](crate::Evaluator), boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong while accumulating, computing, evaluating or comparing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// Two inputs that must have one entry per prediction have different lengths.
    #[error(
        "{metric}: length mismatch: {left} has {left_len} entries but {right} has {right_len}"
    )]
    LengthMismatch {
        /// The metric that refused the input.
        metric: &'static str,
        /// Name of the first input (`"y_true"`).
        left: &'static str,
        /// Its length.
        left_len: usize,
        /// Name of the second input (`"y_pred"`, `"y_score"`, ...).
        right: &'static str,
        /// Its length.
        right_len: usize,
    },
    /// A 2-D input whose shape does not fit (scores with the wrong number of class columns, ...).
    #[error("{metric}: {what} has shape {got:?} but {expected}")]
    ShapeMismatch {
        /// The metric that refused the input.
        metric: &'static str,
        /// Which input.
        what: &'static str,
        /// The shape given.
        got: Vec<usize>,
        /// What was expected, in words (`"must have 3 columns, one per class"`).
        expected: String,
    },
    /// An update with no predictions in it, or a compute on an accumulator that saw none.
    #[error("{metric}: {what} is empty")]
    EmptyInput {
        /// The metric that refused the input.
        metric: &'static str,
        /// What was empty (`"y_true"`, `"the accumulator (no update yet)"`).
        what: &'static str,
    },
    /// A class label outside `0..n_classes` (negative labels included).
    #[error(
        "{metric}: {what}[{position}] = {label} is outside the declared classes 0..{n_classes}"
    )]
    LabelOutOfRange {
        /// The metric that refused the input.
        metric: &'static str,
        /// Which input held the label.
        what: &'static str,
        /// Index of the offending entry.
        position: usize,
        /// The label found there.
        label: i128,
        /// The declared number of classes.
        n_classes: usize,
    },
    /// A NaN (or otherwise unusable non-finite) value among scores, probabilities or targets.
    #[error("{metric}: {what}{position:?} is {value}, which is not allowed here")]
    NonFinite {
        /// The metric that refused the input.
        metric: &'static str,
        /// Which input held the value.
        what: &'static str,
        /// Index of the offending entry (one index per axis).
        position: Vec<usize>,
        /// The value found (NaN, or an infinity where none is allowed).
        value: f64,
    },
    /// A value outside the range the metric accepts (a probability above 1, a log-probability above 0).
    #[error("{metric}: {what}{position:?} = {value} is outside {range}")]
    OutOfRange {
        /// The metric that refused the input.
        metric: &'static str,
        /// Which input held the value.
        what: &'static str,
        /// Index of the offending entry (one index per axis).
        position: Vec<usize>,
        /// The value found.
        value: f64,
        /// The accepted range, in words (`"[0, 1]"`).
        range: &'static str,
    },
    /// A configuration that makes no sense (top-k with k larger than the class count, a negative
    /// beta, fewer than two classes, ...).
    #[error("{metric}: invalid argument: {reason}")]
    InvalidArgument {
        /// The metric that refused the argument.
        metric: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A metric that is mathematically undefined on the data seen (ROC-AUC with only one class in
    /// `y_true`, R² on fewer than two samples). scikit-learn returns NaN with a warning in these cases.
    #[error("{metric}: undefined: {reason}")]
    Undefined {
        /// The metric that could not be computed.
        metric: &'static str,
        /// Why it is undefined.
        reason: String,
    },
    /// Two accumulators that cannot be merged because they were configured differently.
    #[error("{metric}: cannot merge: {reason}")]
    MergeMismatch {
        /// The metric whose accumulators differ.
        metric: &'static str,
        /// How they differ (`"3 classes vs 4 classes"`).
        reason: String,
    },
    /// The model closure given to the [`Evaluator`](crate::Evaluator) failed on a batch.
    #[error("model failed on shard {shard}, batch {batch}: {source}")]
    Model {
        /// Index of the shard (0 for [`Evaluator::run`](crate::Evaluator::run)).
        shard: usize,
        /// Index of the batch within its shard, in the order the iterator yielded it.
        batch: usize,
        /// The model's own error.
        source: BoxError,
    },
    /// A report that could not be written or read as JSON.
    #[error("report JSON: {0}")]
    Json(#[from] serde_json::Error),
}
