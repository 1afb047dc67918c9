//! # fm-eval
//!
//! Evaluation for the fm stack: the metrics scikit-learn computes (classification, regression) plus
//! language-model figures (cross-entropy, perplexity, bits per token and per byte), each as a
//! streaming accumulator that can be split over threads or shards and merged back **exactly**, an
//! [`Evaluator`] that runs a model over any iterator of batches in parallel, and JSON reports that
//! can be compared to catch regressions.
//!
//! Use it to score a model you trained with fm, or any predictions you have as ndarray arrays or
//! slices: it depends on ndarray only, not on fm's tensors.
//!
//! ## A first example
//!
//! ```
//! use fm_eval::{Average, ConfusionMatrix, Metric, RocAuc, ZeroDivision};
//!
//! // Two batches of a 3-class problem, fed as they arrive.
//! let mut cm = ConfusionMatrix::new(3)?;
//! cm.update(&[0u32, 1, 2, 2, 1], &[0u32, 2, 2, 2, 1])?;
//! cm.update(&[0u32, 1], &[0u32, 0])?;
//! assert_eq!(cm.accuracy()?, 5.0 / 7.0);
//! let macro_f1 = cm.fbeta(1.0, Average::Macro, ZeroDivision::Zero)?;
//! let mcc = cm.matthews_corrcoef()?;
//! assert!(macro_f1 > 0.6 && mcc > 0.5);
//!
//! // Shards merge exactly: the same bits as one pass over all the data.
//! let mut left = RocAuc::new();
//! let mut right = RocAuc::new();
//! left.update(&[0u8, 1, 1], &[0.1, 0.7, 0.4])?;
//! right.update(&[0u8, 1], &[0.5, 0.9])?;
//! left.merge(&right)?;
//! let mut whole = RocAuc::new();
//! whole.update(&[0u8, 1, 1, 0, 1], &[0.1, 0.7, 0.4, 0.5, 0.9])?;
//! assert_eq!(left.compute()?.to_bits(), whole.compute()?.to_bits());
//! # Ok::<(), fm_eval::EvalError>(())
//! ```
//!
//! ## Where to look next, in the order a newcomer meets things
//!
//! 1. [`Metric`]: the life cycle every accumulator shares (`update` with a batch, `merge`, `compute`,
//!    `reset`, `record` into a report). Tuples of metrics are metrics; [`Named`] prefixes keys.
//! 2. [`classification`]: [`ConfusionMatrix`] and the metrics derived from it ([`Precision`],
//!    [`Recall`], [`FBeta`] with scikit-learn's [`Average`] and [`ZeroDivision`], [`BalancedAccuracy`],
//!    [`MatthewsCorrcoef`]), [`Accuracy`], [`TopKAccuracy`], [`LogLoss`], and the ranking metrics
//!    [`RocAuc`] and [`AveragePrecision`] (binary and one-vs-rest), which keep every score: their
//!    module explains the memory this takes and how they merge.
//! 3. [`Regression`] for MSE, RMSE, MAE, R², explained variance and max error;
//!    [`TokenCrossEntropy`] for language models.
//! 4. [`Evaluator`] and [`Model`] to run a model over batches with rayon; [`EvalReport`] to save,
//!    load and [`compare`](EvalReport::compare) the results.
//! 5. [`ExactSum`], the exact summation that makes merges exact, for your own accumulators.
//!
//! ## Matching scikit-learn
//!
//! Every metric is tested against values scikit-learn 1.9 computed on random and edge-case inputs
//! (one class only, a class never predicted, tied scores, perfect and worst predictions); they agree
//! to 1e-12. Classes are declared up front, which corresponds to passing `labels=range(n_classes)`
//! to scikit-learn. Where scikit-learn returns NaN with a warning because a metric is undefined
//! (ROC-AUC with one class, R² on one sample), `compute` returns [`EvalError::Undefined`].
//!
//! ## Determinism
//!
//! Counts are integers and floating-point sums go through [`ExactSum`], so an accumulator's result
//! depends only on the multiset of predictions it saw: not on batch sizes, order, the number of
//! shards or threads. The [`Evaluator`]'s metric values are therefore bitwise identical for any
//! thread count.
//!
//! ## Errors
//!
//! Bad input (a length mismatch, an empty batch, a label outside the declared classes, a NaN score,
//! top-k larger than the class count) is an [`EvalError`] that names the metric, the input and the
//! position, never a panic. A failed `update` changes nothing.

pub mod classification;
pub mod error;
pub mod evaluator;
pub mod exact;
pub mod input;
pub mod language;
pub mod metric;
pub mod regression;
pub mod report;

pub use classification::{
    Accuracy, Average, AveragePrecision, AveragePrecisionOvr, BalancedAccuracy, ConfusionMatrix,
    FBeta, LogLoss, MatthewsCorrcoef, PerClass, Precision, PrecisionRecallF, Recall, RocAuc,
    RocAucOvr, TopKAccuracy, ZeroDivision,
};
pub use error::{BoxError, EvalError, Result};
pub use evaluator::{Evaluation, Evaluator, Model};
pub use exact::ExactSum;
pub use input::{ClassLabel, Score};
pub use language::{LanguageModelMetrics, TokenCrossEntropy};
pub use metric::{Direction, Metric, MetricValue, MetricValues, Named};
pub use regression::{Regression, RegressionMetrics};
pub use report::{ChangeStatus, Comparison, EvalReport, MetricChange, Timing, Tolerance};
