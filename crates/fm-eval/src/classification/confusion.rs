//! The confusion matrix, and every metric that is a function of it.
//!
//! [`ConfusionMatrix`] counts `(true class, predicted class)` pairs in a k×k table of `u64`. Counts
//! are integers, so merging is exact and any split of the data gives the same table. Precision,
//! recall, F-beta, balanced accuracy and the Matthews correlation are then computed from the table
//! with the formulas and edge-case rules of scikit-learn 1.9 (`precision_recall_fscore_support`,
//! `balanced_accuracy_score`, `matthews_corrcoef`), given `labels=range(n_classes)`.

use ndarray::{ArrayView1, ArrayView2};

use super::confusion_count::{
    count_deferring_misses, count_pairs, DEFERRED_MISSES, FOLD_EVERY, MAX_DEFERRED_CLASSES,
    MAX_PAIR_CLASSES, MIN_DEFERRED_CLASSES,
};
use super::{Average, ZeroDivision};
use crate::error::{EvalError, Result};
use crate::input::{
    check_lengths, check_n_classes, check_same_classes, contiguous, empty_accumulator, ClassLabel,
};
use crate::metric::{Direction, Metric, MetricValues};

/// The two-class sums are kept in `u32` over chunks this long.
const CHUNK: usize = 2048;
/// Pair counting pays for its k⁴-cell scratch table from this many labels per pair-table cell.
const PAIR_MIN_LABELS_PER_CELL: usize = 4;

/// Counts of `(true class, predicted class)` pairs; row = true class, column = predicted class
/// (scikit-learn's layout).
///
/// ```
/// use fm_eval::{Average, ConfusionMatrix, ZeroDivision};
///
/// let mut cm = ConfusionMatrix::new(3)?;
/// cm.update(&[0u32, 1, 2, 2], &[0u32, 2, 2, 2])?;
/// cm.update(&[1u32, 0], &[1u32, 0])?;
/// assert_eq!(cm.get(2, 2), 2);
/// assert_eq!(cm.accuracy()?, 5.0 / 6.0);
/// let f1 = cm.fbeta(1.0, Average::Macro, ZeroDivision::Zero)?;
/// assert!((f1 - (1.0 + 2.0 / 3.0 + 0.8) / 3.0).abs() < 1e-15);
/// # Ok::<(), fm_eval::EvalError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfusionMatrix {
    n_classes: usize,
    counts: Vec<u64>,
    total: u64,
    zero_division: ZeroDivision,
}

/// Precision, recall, F-beta and support for every class (scikit-learn's `average=None`).
#[derive(Clone, Debug, PartialEq)]
pub struct PerClass {
    /// `tp / (tp + fp)` per class.
    pub precision: Vec<f64>,
    /// `tp / (tp + fn)` per class.
    pub recall: Vec<f64>,
    /// F-beta per class.
    pub fbeta: Vec<f64>,
    /// Number of true samples per class.
    pub support: Vec<u64>,
}

/// Averaged precision, recall and F-beta (scikit-learn's `precision_recall_fscore_support` with an
/// `average`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PrecisionRecallF {
    /// Averaged precision.
    pub precision: f64,
    /// Averaged recall.
    pub recall: f64,
    /// Averaged F-beta.
    pub fbeta: f64,
}

const METRIC: &str = "confusion_matrix";

impl ConfusionMatrix {
    /// An empty k×k matrix. Errors when `n_classes` is 0 or does not fit in 32 bits.
    pub fn new(n_classes: usize) -> Result<Self> {
        check_n_classes(METRIC, n_classes, 1)?;
        let cells = n_classes
            .checked_mul(n_classes)
            .ok_or_else(|| EvalError::InvalidArgument {
                metric: METRIC,
                reason: format!("{n_classes}² cells do not fit in memory"),
            })?;
        Ok(Self {
            n_classes,
            counts: vec![0; cells],
            total: 0,
            zero_division: ZeroDivision::Zero,
        })
    }

    /// Sets the zero-division value used by [`Metric::record`] (the explicit methods take their own).
    pub fn with_zero_division(mut self, zero_division: ZeroDivision) -> Self {
        self.zero_division = zero_division;
        self
    }

    /// Counts one batch of labels. Errors (changing nothing) on a length mismatch, an empty batch or
    /// a label outside `0..n_classes`.
    pub fn update<'a, 'b, L: ClassLabel>(
        &mut self,
        y_true: impl Into<ArrayView1<'a, L>>,
        y_pred: impl Into<ArrayView1<'b, L>>,
    ) -> Result<()> {
        self.update_as(METRIC, y_true.into(), y_pred.into())
    }

    pub(crate) fn update_as<L: ClassLabel>(
        &mut self,
        metric: &'static str,
        y_true: ArrayView1<'_, L>,
        y_pred: ArrayView1<'_, L>,
    ) -> Result<()> {
        check_lengths(metric, "y_true", y_true.len(), "y_pred", y_pred.len())?;
        let y_true = contiguous(&y_true);
        let y_pred = contiguous(&y_pred);
        let k = self.n_classes;
        let n = y_true.len();
        if k == 2 {
            self.count_binary(metric, &y_true, &y_pred)?;
        } else if k <= MAX_PAIR_CLASSES && n >= PAIR_MIN_LABELS_PER_CELL * k.pow(4) {
            self.count_pairs(metric, &y_true, &y_pred)?;
        } else if (MIN_DEFERRED_CLASSES..=MAX_DEFERRED_CLASSES).contains(&k) && n >= k {
            count_deferring_misses(k, &y_true, &y_pred, DEFERRED_MISSES, &mut self.counts)
                .map_err(|start| label_error(metric, &y_true, &y_pred, k, start))?;
        } else {
            self.count_in_place(metric, &y_true, &y_pred)?;
        }
        self.total += y_true.len() as u64;
        Ok(())
    }

    /// Two classes need no table: with labels in {0, 1}, the four cells follow from Σt, Σp and
    /// Σ(t·p), sums that vectorise, so the matrix costs about what reading the labels costs.
    fn count_binary<L: ClassLabel>(
        &mut self,
        metric: &'static str,
        y_true: &[L],
        y_pred: &[L],
    ) -> Result<()> {
        let (mut sum_true, mut sum_pred, mut sum_both) = (0u64, 0u64, 0u64);
        for (chunk, (t, p)) in y_true.chunks(CHUNK).zip(y_pred.chunks(CHUNK)).enumerate() {
            // Chunk sums fit in u32; `outside` collects any bit above the lowest.
            let (mut st, mut sp, mut sb, mut outside) = (0u32, 0u32, 0u32, 0u32);
            for (&a, &b) in t.iter().zip(p) {
                let (a, b) = (a.to_u32_or_max(), b.to_u32_or_max());
                outside |= (a | b) >> 1;
                st += a;
                sp += b;
                sb += a & b;
            }
            if outside != 0 {
                return Err(label_error(metric, y_true, y_pred, 2, chunk * CHUNK));
            }
            sum_true += u64::from(st);
            sum_pred += u64::from(sp);
            sum_both += u64::from(sb);
        }
        let n = y_true.len() as u64;
        // Cells (true, pred): (1,1) = Σtp, (1,0) = Σt − Σtp, (0,1) = Σp − Σtp, (0,0) = the rest.
        self.counts[3] += sum_both;
        self.counts[2] += sum_true - sum_both;
        self.counts[1] += sum_pred - sum_both;
        self.counts[0] += n + sum_both - sum_true - sum_pred;
        Ok(())
    }

    /// Pair counting (see `confusion_count`) into a fresh batch table, added to the matrix only when
    /// every label checked out, so a failed update changes nothing.
    fn count_pairs<L: ClassLabel>(
        &mut self,
        metric: &'static str,
        y_true: &[L],
        y_pred: &[L],
    ) -> Result<()> {
        let k = self.n_classes;
        let mut batch = vec![0u64; k * k];
        count_pairs(k, y_true, y_pred, FOLD_EVERY, &mut batch)
            .map_err(|start| label_error(metric, y_true, y_pred, k, start))?;
        for (cell, count) in self.counts.iter_mut().zip(batch) {
            *cell += count;
        }
        Ok(())
    }

    /// Counts straight into the matrix (too few labels to pay for the pair table, or between 17 and
    /// 511 classes, where nothing measured faster), checking labels in the same pass; on a bad label, undoes
    /// what it counted.
    fn count_in_place<L: ClassLabel>(
        &mut self,
        metric: &'static str,
        y_true: &[L],
        y_pred: &[L],
    ) -> Result<()> {
        let k = self.n_classes;
        for (i, (&t, &p)) in y_true.iter().zip(y_pred).enumerate() {
            let (a, b) = (t.to_index(), p.to_index());
            if a >= k || b >= k {
                for (&t, &p) in y_true[..i].iter().zip(&y_pred[..i]) {
                    self.counts[t.to_index() * k + p.to_index()] -= 1;
                }
                return Err(label_error(metric, y_true, y_pred, k, 0));
            }
            self.counts[a * k + b] += 1;
        }
        Ok(())
    }

    /// The number of declared classes.
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// How many pairs were counted.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The count of samples of true class `true_class` predicted as `predicted_class` (0 for classes
    /// outside the matrix).
    pub fn get(&self, true_class: usize, predicted_class: usize) -> u64 {
        if true_class < self.n_classes && predicted_class < self.n_classes {
            self.counts[true_class * self.n_classes + predicted_class]
        } else {
            0
        }
    }

    /// The table as a k×k view (row = true class).
    pub fn matrix(&self) -> ArrayView2<'_, u64> {
        ArrayView2::from_shape((self.n_classes, self.n_classes), &self.counts)
            .expect("counts hold n_classes² cells")
    }

    /// Fraction of pairs on the diagonal (scikit-learn's `accuracy_score`).
    pub fn accuracy(&self) -> Result<f64> {
        self.nonempty()?;
        let correct: u64 = (0..self.n_classes).map(|c| self.get(c, c)).sum();
        Ok(correct as f64 / self.total as f64)
    }

    /// Precision, recall, F-beta and support of every class (`average=None`). `beta` must be ≥ 0
    /// (`f64::INFINITY` gives recall, `0` gives precision).
    pub fn per_class(&self, beta: f64, zero_division: ZeroDivision) -> Result<PerClass> {
        self.nonempty()?;
        check_beta(METRIC, beta)?;
        let (tp, predicted, actual) = self.class_sums();
        let zd = zero_division.value();
        let precision: Vec<f64> = tp
            .iter()
            .zip(&predicted)
            .map(|(&t, &p)| ratio(t as f64, p as f64, zd))
            .collect();
        let recall: Vec<f64> = tp
            .iter()
            .zip(&actual)
            .map(|(&t, &a)| ratio(t as f64, a as f64, zd))
            .collect();
        let fbeta = (0..self.n_classes)
            .map(|c| {
                fbeta_from_counts(
                    beta,
                    tp[c],
                    predicted[c],
                    actual[c],
                    precision[c],
                    recall[c],
                    zd,
                )
            })
            .collect();
        Ok(PerClass {
            precision,
            recall,
            fbeta,
            support: actual,
        })
    }

    /// Precision, recall and F-beta combined by `average` (scikit-learn's
    /// `precision_recall_fscore_support(..., labels=range(n_classes))`).
    pub fn precision_recall_fscore(
        &self,
        beta: f64,
        average: Average,
        zero_division: ZeroDivision,
    ) -> Result<PrecisionRecallF> {
        average.validate(METRIC, self.n_classes)?;
        let per_class = self.per_class(beta, zero_division)?;
        Ok(match average {
            Average::Binary { pos_label } => PrecisionRecallF {
                precision: per_class.precision[pos_label],
                recall: per_class.recall[pos_label],
                fbeta: per_class.fbeta[pos_label],
            },
            Average::Micro => {
                let (tp, predicted, actual) = self.class_sums();
                let tp: u64 = tp.iter().sum();
                let predicted: u64 = predicted.iter().sum();
                let actual: u64 = actual.iter().sum();
                let zd = zero_division.value();
                let precision = ratio(tp as f64, predicted as f64, zd);
                let recall = ratio(tp as f64, actual as f64, zd);
                PrecisionRecallF {
                    precision,
                    recall,
                    fbeta: fbeta_from_counts(beta, tp, predicted, actual, precision, recall, zd),
                }
            }
            Average::Macro => PrecisionRecallF {
                precision: nan_average(&per_class.precision, None),
                recall: nan_average(&per_class.recall, None),
                fbeta: nan_average(&per_class.fbeta, None),
            },
            Average::Weighted => {
                let weights: Vec<f64> = per_class.support.iter().map(|&s| s as f64).collect();
                PrecisionRecallF {
                    precision: nan_average(&per_class.precision, Some(&weights)),
                    recall: nan_average(&per_class.recall, Some(&weights)),
                    fbeta: nan_average(&per_class.fbeta, Some(&weights)),
                }
            }
        })
    }

    /// Precision combined by `average` (scikit-learn's `precision_score`).
    pub fn precision(&self, average: Average, zero_division: ZeroDivision) -> Result<f64> {
        Ok(self
            .precision_recall_fscore(1.0, average, zero_division)?
            .precision)
    }

    /// Recall combined by `average` (scikit-learn's `recall_score`).
    pub fn recall(&self, average: Average, zero_division: ZeroDivision) -> Result<f64> {
        Ok(self
            .precision_recall_fscore(1.0, average, zero_division)?
            .recall)
    }

    /// F-beta combined by `average` (scikit-learn's `fbeta_score`; `beta = 1` is `f1_score`).
    pub fn fbeta(&self, beta: f64, average: Average, zero_division: ZeroDivision) -> Result<f64> {
        Ok(self
            .precision_recall_fscore(beta, average, zero_division)?
            .fbeta)
    }

    /// Mean recall over the classes that occur in `y_true` (scikit-learn's `balanced_accuracy_score`).
    /// With `adjusted`, rescaled so chance is 0 and perfect is 1.
    pub fn balanced_accuracy(&self, adjusted: bool) -> Result<f64> {
        self.nonempty()?;
        let (tp, _, actual) = self.class_sums();
        let recalls: Vec<f64> = tp
            .iter()
            .zip(&actual)
            .filter(|(_, &a)| a > 0)
            .map(|(&t, &a)| t as f64 / a as f64)
            .collect();
        let mut score = recalls.iter().sum::<f64>() / recalls.len() as f64;
        if adjusted {
            let chance = 1.0 / recalls.len() as f64;
            score -= chance;
            score /= 1.0 - chance;
        }
        Ok(score)
    }

    /// The Matthews correlation coefficient (multiclass R_K statistic), 0 when either marginal is
    /// constant (scikit-learn's `matthews_corrcoef`). Covariances are formed in exact integers.
    pub fn matthews_corrcoef(&self) -> Result<f64> {
        self.nonempty()?;
        let (tp, predicted, actual) = self.class_sums();
        let n = i128::from(self.total);
        let correct: i128 = tp.iter().map(|&t| i128::from(t)).sum();
        let dot = |a: &[u64], b: &[u64]| -> i128 {
            a.iter()
                .zip(b)
                .map(|(&x, &y)| i128::from(x) * i128::from(y))
                .sum()
        };
        let cov_true_pred = correct * n - dot(&actual, &predicted);
        let cov_pred_pred = n * n - dot(&predicted, &predicted);
        let cov_true_true = n * n - dot(&actual, &actual);
        if cov_pred_pred == 0 || cov_true_true == 0 {
            return Ok(0.0);
        }
        // The product can pass i128 for huge n; in f64 it cannot overflow.
        Ok(cov_true_pred as f64 / ((cov_pred_pred as f64) * (cov_true_true as f64)).sqrt())
    }

    fn nonempty(&self) -> Result<()> {
        if self.total == 0 {
            return Err(empty_accumulator(METRIC));
        }
        Ok(())
    }

    /// Per class: true positives (diagonal), predicted counts (column sums), true counts (row sums).
    fn class_sums(&self) -> (Vec<u64>, Vec<u64>, Vec<u64>) {
        let k = self.n_classes;
        let mut predicted = vec![0u64; k];
        let mut actual = vec![0u64; k];
        for (t, row) in self.counts.chunks_exact(k).enumerate() {
            actual[t] = row.iter().sum();
            for (p, &c) in row.iter().enumerate() {
                predicted[p] += c;
            }
        }
        let tp = (0..k).map(|c| self.counts[c * k + c]).collect();
        (tp, predicted, actual)
    }

    fn record_into(&self, out: &mut MetricValues) {
        let zd = self.zero_division;
        out.insert("accuracy", self.accuracy(), Direction::HigherIsBetter);
        out.insert(
            "balanced_accuracy",
            self.balanced_accuracy(false),
            Direction::HigherIsBetter,
        );
        out.insert(
            "matthews_corrcoef",
            self.matthews_corrcoef(),
            Direction::HigherIsBetter,
        );
        let mut averages = vec![Average::Micro, Average::Macro, Average::Weighted];
        if self.n_classes == 2 {
            averages.insert(0, Average::Binary { pos_label: 1 });
        }
        for average in averages {
            let prf = self.precision_recall_fscore(1.0, average, zd);
            let key = average.key();
            let pick = |f: fn(&PrecisionRecallF) -> f64| match &prf {
                Ok(v) => Ok(f(v)),
                Err(e) => Err(EvalError::Undefined {
                    metric: METRIC,
                    reason: e.to_string(),
                }),
            };
            out.insert(
                &format!("precision_{key}"),
                pick(|v| v.precision),
                Direction::HigherIsBetter,
            );
            out.insert(
                &format!("recall_{key}"),
                pick(|v| v.recall),
                Direction::HigherIsBetter,
            );
            out.insert(
                &format!("f1_{key}"),
                pick(|v| v.fbeta),
                Direction::HigherIsBetter,
            );
        }
        out.count("samples", self.total);
    }
}

/// The error for the first bad label at or after `from` (the slow path, after a check failed).
fn label_error<L: ClassLabel>(
    metric: &'static str,
    y_true: &[L],
    y_pred: &[L],
    k: usize,
    from: usize,
) -> EvalError {
    let first_bad = |labels: &[L]| {
        labels[from..]
            .iter()
            .position(|l| l.to_index() >= k)
            .map(|i| i + from)
    };
    let (what, labels, position) = match (first_bad(y_true), first_bad(y_pred)) {
        (Some(i), Some(j)) if j < i => ("y_pred", y_pred, j),
        (Some(i), _) => ("y_true", y_true, i),
        (None, Some(j)) => ("y_pred", y_pred, j),
        (None, None) => unreachable!("called only after a label failed the check"),
    };
    EvalError::LabelOutOfRange {
        metric,
        what,
        position,
        label: labels[position].to_i128(),
        n_classes: k,
    }
}

pub(crate) fn check_beta(metric: &'static str, beta: f64) -> Result<()> {
    if beta.is_nan() || beta < 0.0 {
        return Err(EvalError::InvalidArgument {
            metric,
            reason: format!("beta must be >= 0, got {beta}"),
        });
    }
    Ok(())
}

/// `numerator / denominator`, or the zero-division value when the denominator is 0.
fn ratio(numerator: f64, denominator: f64, zero_division: f64) -> f64 {
    if denominator == 0.0 {
        zero_division
    } else {
        numerator / denominator
    }
}

/// F-beta from counts, in the form scikit-learn uses: (1 + β²) tp / (β² (tp + fn) + (tp + fp)).
fn fbeta_from_counts(
    beta: f64,
    tp: u64,
    predicted: u64,
    actual: u64,
    precision: f64,
    recall: f64,
    zero_division: f64,
) -> f64 {
    if beta == f64::INFINITY {
        return recall;
    }
    if beta == 0.0 {
        return precision;
    }
    let beta2 = beta * beta;
    ratio(
        (1.0 + beta2) * tp as f64,
        beta2 * actual as f64 + predicted as f64,
        zero_division,
    )
}

/// Mean (or weighted mean) over the non-NaN values; NaN when all are NaN. When the remaining weights
/// sum to zero the plain mean is used, as scikit-learn's `_nanaverage` does.
fn nan_average(values: &[f64], weights: Option<&[f64]>) -> f64 {
    let kept: Vec<usize> = (0..values.len()).filter(|&i| !values[i].is_nan()).collect();
    if kept.is_empty() {
        return f64::NAN;
    }
    let plain = || kept.iter().map(|&i| values[i]).sum::<f64>() / kept.len() as f64;
    match weights {
        None => plain(),
        Some(w) => {
            let total: f64 = kept.iter().map(|&i| w[i]).sum();
            if total == 0.0 {
                plain()
            } else {
                kept.iter().map(|&i| values[i] * w[i]).sum::<f64>() / total
            }
        }
    }
}

impl Metric for ConfusionMatrix {
    type Output = ConfusionMatrix;

    /// A copy of the table; call its methods for the derived metrics.
    fn compute(&self) -> Result<ConfusionMatrix> {
        self.nonempty()?;
        Ok(self.clone())
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        self.check_merge(other)?;
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        Ok(())
    }

    fn check_merge(&self, other: &Self) -> Result<()> {
        check_same_classes(METRIC, self.n_classes, other.n_classes)
    }

    fn reset(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.total = 0;
    }

    fn count(&self) -> u64 {
        self.total
    }

    fn record(&self, out: &mut MetricValues) {
        self.record_into(out);
    }
}

macro_rules! confusion_wrapper {
    (
        $(#[$doc:meta])*
        $name:ident, $metric:literal, { $($field:ident : $ty:ty),* },
        |$cm:ident, $me:ident| $compute:expr, |$me2:ident| $key:expr
    ) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name {
            matrix: ConfusionMatrix,
            $($field: $ty,)*
        }

        impl $name {
            /// Counts one batch of labels, as [`ConfusionMatrix::update`].
            pub fn update<'a, 'b, L: ClassLabel>(
                &mut self,
                y_true: impl Into<ArrayView1<'a, L>>,
                y_pred: impl Into<ArrayView1<'b, L>>,
            ) -> Result<()> {
                self.matrix.update_as($metric, y_true.into(), y_pred.into())
            }

            /// The confusion matrix accumulated so far.
            pub fn matrix(&self) -> &ConfusionMatrix {
                &self.matrix
            }
        }

        impl Metric for $name {
            type Output = f64;

            fn compute(&self) -> Result<f64> {
                if self.matrix.total == 0 {
                    return Err(empty_accumulator($metric));
                }
                let $cm = &self.matrix;
                let $me = self;
                $compute
            }

            fn merge(&mut self, other: &Self) -> Result<()> {
                self.check_merge(other)?;
                self.matrix.merge(&other.matrix)
            }

            fn check_merge(&self, other: &Self) -> Result<()> {
                check_same_classes($metric, self.matrix.n_classes, other.matrix.n_classes)?;
                let same = true $(&& self.$field == other.$field)*;
                if !same {
                    return Err(EvalError::MergeMismatch {
                        metric: $metric,
                        reason: "the two accumulators have different options".into(),
                    });
                }
                Ok(())
            }

            fn reset(&mut self) {
                self.matrix.reset();
            }

            fn count(&self) -> u64 {
                self.matrix.total
            }

            fn record(&self, out: &mut MetricValues) {
                let $me2 = self;
                let key: String = $key;
                out.insert(&key, self.compute(), Direction::HigherIsBetter);
            }
        }
    };
}

confusion_wrapper!(
    /// Precision as a single-valued metric (scikit-learn's `precision_score`).
    Precision, "precision", { average: Average, zero_division: ZeroDivision },
    |cm, me| cm.precision(me.average, me.zero_division),
    |me| format!("precision_{}", me.average.key())
);

confusion_wrapper!(
    /// Recall as a single-valued metric (scikit-learn's `recall_score`).
    Recall, "recall", { average: Average, zero_division: ZeroDivision },
    |cm, me| cm.recall(me.average, me.zero_division),
    |me| format!("recall_{}", me.average.key())
);

confusion_wrapper!(
    /// F-beta as a single-valued metric (scikit-learn's `fbeta_score`; [`FBeta::f1`] for `f1_score`).
    FBeta, "fbeta", { beta: f64, average: Average, zero_division: ZeroDivision },
    |cm, me| cm.fbeta(me.beta, me.average, me.zero_division),
    |me| if me.beta == 1.0 {
        format!("f1_{}", me.average.key())
    } else {
        format!("f{}_{}", me.beta, me.average.key())
    }
);

confusion_wrapper!(
    /// Balanced accuracy as a single-valued metric (scikit-learn's `balanced_accuracy_score`).
    BalancedAccuracy, "balanced_accuracy", { adjusted: bool },
    |cm, me| cm.balanced_accuracy(me.adjusted),
    |me| if me.adjusted { "balanced_accuracy_adjusted".to_string() } else { "balanced_accuracy".to_string() }
);

confusion_wrapper!(
    /// The Matthews correlation coefficient as a single-valued metric (scikit-learn's
    /// `matthews_corrcoef`).
    MatthewsCorrcoef, "matthews_corrcoef", { },
    |cm, _me| cm.matthews_corrcoef(),
    |_me| "matthews_corrcoef".to_string()
);

impl Precision {
    /// Precision over `n_classes` classes, combined by `average`, with zero division giving 0.
    pub fn new(n_classes: usize, average: Average) -> Result<Self> {
        average.validate("precision", n_classes)?;
        Ok(Self {
            matrix: ConfusionMatrix::new(n_classes)?,
            average,
            zero_division: ZeroDivision::Zero,
        })
    }

    /// Sets the value used for 0/0.
    pub fn with_zero_division(mut self, zero_division: ZeroDivision) -> Self {
        self.zero_division = zero_division;
        self
    }
}

impl Recall {
    /// Recall over `n_classes` classes, combined by `average`, with zero division giving 0.
    pub fn new(n_classes: usize, average: Average) -> Result<Self> {
        average.validate("recall", n_classes)?;
        Ok(Self {
            matrix: ConfusionMatrix::new(n_classes)?,
            average,
            zero_division: ZeroDivision::Zero,
        })
    }

    /// Sets the value used for 0/0.
    pub fn with_zero_division(mut self, zero_division: ZeroDivision) -> Self {
        self.zero_division = zero_division;
        self
    }
}

impl FBeta {
    /// F-beta over `n_classes` classes, combined by `average`, with zero division giving 0. Errors
    /// when `beta` is negative or NaN.
    pub fn new(n_classes: usize, beta: f64, average: Average) -> Result<Self> {
        check_beta("fbeta", beta)?;
        average.validate("fbeta", n_classes)?;
        Ok(Self {
            matrix: ConfusionMatrix::new(n_classes)?,
            beta,
            average,
            zero_division: ZeroDivision::Zero,
        })
    }

    /// F1, the harmonic mean of precision and recall.
    pub fn f1(n_classes: usize, average: Average) -> Result<Self> {
        Self::new(n_classes, 1.0, average)
    }

    /// Sets the value used for 0/0.
    pub fn with_zero_division(mut self, zero_division: ZeroDivision) -> Self {
        self.zero_division = zero_division;
        self
    }
}

impl BalancedAccuracy {
    /// Balanced accuracy over `n_classes` classes; `adjusted` rescales chance to 0.
    pub fn new(n_classes: usize, adjusted: bool) -> Result<Self> {
        Ok(Self {
            matrix: ConfusionMatrix::new(n_classes)?,
            adjusted,
        })
    }
}

impl MatthewsCorrcoef {
    /// The Matthews correlation over `n_classes` classes.
    pub fn new(n_classes: usize) -> Result<Self> {
        Ok(Self {
            matrix: ConfusionMatrix::new(n_classes)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_update_changes_nothing() {
        let mut cm = ConfusionMatrix::new(3).unwrap();
        cm.update(&[0u8, 1], &[0u8, 1]).unwrap();
        let before = cm.clone();
        let mut t = vec![1u32; 10_000];
        let p = vec![2u32; 10_000];
        t[9_000] = 3;
        let err = cm.update(&t, &p).unwrap_err();
        assert!(
            matches!(
                err,
                EvalError::LabelOutOfRange {
                    position: 9000,
                    label: 3,
                    n_classes: 3,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(cm, before);
        let err = cm.update(&[0i64, -1], &[0i64, 0]).unwrap_err();
        assert!(
            err.to_string().contains("y_true[1] = -1 is outside"),
            "{err}"
        );
    }

    #[test]
    fn every_counting_path_agrees_with_a_plain_loop() {
        // Two classes (sums); pair counting (k ≤ 16, long batches); in place (short batches,
        // 17..512 classes); deferred misses (k ≥ 512). Odd lengths, lengths around the 2048-label
        // chunks.
        // Mostly-positive labels once caught an unsigned underflow in the two-class path.
        let cases = [
            (1usize, 7usize),
            (1, 5_001),
            (2, 70_000),
            (2, 10),
            (3, 5_000),
            (3, 100),
            (10, 20),
            (10, 2_049),
            (10, 40_001),
            (16, 300_001),
            (70, 3_000),
            (100, 1),
            (100, 30_001),
            (256, 20_000),
            (300, 4_097),
            (1000, 9_999),
        ];
        for (k, n) in cases {
            let t: Vec<u16> = (0..n).map(|i| ((i * 7 + i / 3) % k) as u16).collect();
            let p: Vec<u16> = (0..n)
                .map(|i| {
                    if i % 5 == 0 {
                        ((i / 5) % k) as u16
                    } else {
                        t[i]
                    }
                })
                .collect();
            let last = vec![(k - 1) as u16; n];
            for (t, p) in [(&t, &p), (&last, &last)] {
                let mut cm = ConfusionMatrix::new(k).unwrap();
                cm.update(t, p).unwrap();
                cm.update(t, p).unwrap();
                let mut expected = vec![0u64; k * k];
                for (&a, &b) in t.iter().zip(p.iter()) {
                    expected[a as usize * k + b as usize] += 2;
                }
                assert_eq!(cm.counts, expected, "k = {k}, n = {n}");
                assert_eq!(cm.total(), 2 * n as u64);
            }
        }
    }

    #[test]
    fn a_bad_label_mid_batch_leaves_every_path_unchanged() {
        for (k, n) in [
            (1usize, 9_000usize),
            (3, 9_000),
            (10, 60_001),
            (100, 9_000),
            (300, 9_000),
            (1000, 9_000),
            (1000, 100),
        ] {
            let mut cm = ConfusionMatrix::new(k).unwrap();
            let t: Vec<i32> = (0..n).map(|i| (i % k) as i32).collect();
            cm.update(&t, &t).unwrap();
            let before = cm.clone();
            for (bad, in_pred) in [(k as i32, false), (-1, true), (i32::MAX, false)] {
                // Off the diagonal one time in three.
                let shifted =
                    |(i, &x): (usize, &i32)| if i % 3 == 0 { (x + 1) % k as i32 } else { x };
                let (mut t, mut p) = (
                    t.clone(),
                    t.iter().enumerate().map(shifted).collect::<Vec<_>>(),
                );
                let position = n / 2 + 1;
                if in_pred {
                    p[position] = bad;
                } else {
                    t[position] = bad;
                }
                let err = cm.update(&t, &p).unwrap_err();
                let what = if in_pred { "y_pred" } else { "y_true" };
                assert!(
                    err.to_string()
                        .contains(&format!("{what}[{position}] = {bad} is outside")),
                    "k = {k}: {err}"
                );
                assert_eq!(cm, before, "k = {k}");
            }
        }
    }

    #[test]
    fn binary_average_needs_two_classes() {
        let mut cm = ConfusionMatrix::new(3).unwrap();
        cm.update(&[0u8, 1, 2], &[0u8, 1, 1]).unwrap();
        assert!(cm
            .precision(Average::Binary { pos_label: 1 }, ZeroDivision::Zero)
            .is_err());
        assert!(Precision::new(2, Average::Binary { pos_label: 2 }).is_err());
        assert!(FBeta::new(2, -1.0, Average::Macro).is_err());
    }

    #[test]
    fn strided_views_are_read_correctly() {
        let data = ndarray::array![[0u32, 0], [1, 2], [2, 2]];
        let mut cm = ConfusionMatrix::new(3).unwrap();
        cm.update(data.column(0), data.column(1)).unwrap();
        assert_eq!(cm.get(1, 2), 1);
        assert_eq!(cm.get(2, 2), 1);
        assert_eq!(cm.total(), 3);
    }
}
