//! Metrics of how well scores rank positives above negatives: ROC-AUC and average precision.
//!
//! Both depend on the order of all scores, so their accumulators keep every score. Memory and
//! merging, made explicit:
//!
//! - **Memory.** A binary accumulator ([`RocAuc`], [`AveragePrecision`]) stores 8 bytes per sample
//!   (the score as an order-preserving `u64` key, in one list for positives and one for negatives).
//!   A one-vs-rest accumulator ([`RocAucOvr`], [`AveragePrecisionOvr`]) stores `8 * n_classes` bytes
//!   per sample. `compute` sorts a copy, so it needs the same amount again while it runs: 10 million
//!   binary predictions take 80 MB, and 160 MB during `compute`.
//! - **Merging** appends the other accumulator's lists (time and memory linear in its size). The
//!   result is a function of the multiset of (score, label) pairs only, since `compute` sorts and
//!   treats equal scores as one threshold, so any split, order or thread count gives the same bits.
//! - **Ties** are grouped as scikit-learn groups them: equal scores form one threshold, which gives
//!   the trapezoid (a half credit) in ROC-AUC and one precision/recall point in average precision.
//!   `-0.0` and `0.0` are the same score.
//!
//! ROC-AUC is formed as an exact integer (twice the area under the step curve, in units of one
//! positive-negative pair) and divided once; average precision sums its terms with
//! [`ExactSum`](crate::ExactSum). Infinite scores are accepted and ordered; NaN is an error.

use ndarray::{ArrayView1, ArrayView2};

use crate::error::{EvalError, Result};
use crate::exact::ExactSum;
use crate::input::{
    check_columns, check_labels, check_lengths, check_n_classes, check_not_nan, check_same_classes,
    contiguous, contiguous_rows, empty_accumulator, ClassLabel, Score,
};
use crate::metric::{Direction, Metric, MetricValues};

/// An order-preserving key: `a < b` as `f64` (no NaN) iff `key(a) < key(b)` as `u64`; `-0.0` and
/// `0.0` share a key.
#[inline(always)]
fn score_key(x: f64) -> u64 {
    let bits = (x + 0.0).to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// Scores of one binary problem, split by label.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct SplitScores {
    positives: Vec<u64>,
    negatives: Vec<u64>,
}

/// ROC-AUC and average precision of one binary problem.
struct Ranked {
    /// None when one of the classes is absent.
    roc_auc: Option<f64>,
    average_precision: f64,
}

impl SplitScores {
    fn len(&self) -> u64 {
        (self.positives.len() + self.negatives.len()) as u64
    }

    fn extend(&mut self, other: &SplitScores) {
        self.positives.extend_from_slice(&other.positives);
        self.negatives.extend_from_slice(&other.negatives);
    }

    fn clear(&mut self) {
        self.positives.clear();
        self.negatives.clear();
    }

    /// Walks the thresholds from the highest score down, as scikit-learn's `roc_curve` and
    /// `precision_recall_curve` do (without dropping intermediate points, which changes no area).
    fn rank(&self) -> Ranked {
        let mut pos = self.positives.clone();
        let mut neg = self.negatives.clone();
        // pdqsort on u64 keys; an LSD radix sort measured no faster here at 5M keys.
        pos.sort_unstable();
        neg.sort_unstable();
        let n_pos = pos.len() as u64;
        let n_neg = neg.len() as u64;
        let (mut i, mut j) = (pos.len(), neg.len());
        let (mut tp, mut fp) = (0u64, 0u64);
        // Twice the area under the ROC step curve, in units of (1 positive) x (1 negative).
        let mut twice_area: u128 = 0;
        let mut average_precision = ExactSum::new();
        while i > 0 || j > 0 {
            let threshold = match (i > 0, j > 0) {
                (true, true) => pos[i - 1].max(neg[j - 1]),
                (true, false) => pos[i - 1],
                _ => neg[j - 1],
            };
            let (tp_before, fp_before) = (tp, fp);
            while i > 0 && pos[i - 1] == threshold {
                i -= 1;
                tp += 1;
            }
            while j > 0 && neg[j - 1] == threshold {
                j -= 1;
                fp += 1;
            }
            twice_area += u128::from(fp - fp_before) * u128::from(tp + tp_before);
            if tp > tp_before {
                let recall_step = (tp - tp_before) as f64 / n_pos as f64;
                let precision = tp as f64 / (tp + fp) as f64;
                average_precision.add(recall_step * precision);
            }
        }
        let roc_auc = (n_pos > 0 && n_neg > 0)
            .then(|| twice_area as f64 / (2 * u128::from(n_pos) * u128::from(n_neg)) as f64);
        Ranked {
            roc_auc,
            // With no positives every term is absent: 0, as scikit-learn returns (with a warning).
            average_precision: average_precision.value(),
        }
    }
}

fn binary_update<L: ClassLabel, S: Score>(
    metric: &'static str,
    scores: &mut SplitScores,
    y_true: ArrayView1<'_, L>,
    y_score: ArrayView1<'_, S>,
) -> Result<()> {
    check_lengths(metric, "y_true", y_true.len(), "y_score", y_score.len())?;
    let y_true = contiguous(&y_true);
    let y_score = contiguous(&y_score);
    check_labels(metric, "y_true", &y_true, 2, 0)?;
    check_not_nan(metric, "y_score", &y_score, 1)?;
    for (&t, &s) in y_true.iter().zip(y_score.iter()) {
        let key = score_key(s.to_f64());
        if t.to_index() == 1 {
            scores.positives.push(key);
        } else {
            scores.negatives.push(key);
        }
    }
    Ok(())
}

fn ovr_update<L: ClassLabel, S: Score>(
    metric: &'static str,
    per_class: &mut [SplitScores],
    y_true: ArrayView1<'_, L>,
    y_score: ArrayView2<'_, S>,
) -> Result<()> {
    let n_classes = per_class.len();
    check_lengths(
        metric,
        "y_true",
        y_true.len(),
        "y_score rows",
        y_score.nrows(),
    )?;
    check_columns(metric, "y_score", y_score.shape(), n_classes)?;
    let y_true = contiguous(&y_true);
    check_labels(metric, "y_true", &y_true, n_classes, 0)?;
    let scores = contiguous_rows(&y_score);
    check_not_nan(metric, "y_score", &scores, n_classes)?;
    for (&t, row) in y_true.iter().zip(scores.chunks_exact(n_classes)) {
        let t = t.to_index();
        for (c, (&s, class)) in row.iter().zip(per_class.iter_mut()).enumerate() {
            let key = score_key(s.to_f64());
            if c == t {
                class.positives.push(key);
            } else {
                class.negatives.push(key);
            }
        }
    }
    Ok(())
}

fn undefined_auc(metric: &'static str, scores: &SplitScores, class: Option<usize>) -> EvalError {
    let which = class.map_or(String::new(), |c| {
        format!(" for class {c} against the rest")
    });
    let present = if scores.positives.is_empty() {
        "no positive"
    } else {
        "no negative"
    };
    EvalError::Undefined {
        metric,
        reason: format!(
            "only one class present in y_true ({present} samples{which}); ROC-AUC needs both \
             (scikit-learn returns NaN here)"
        ),
    }
}

/// Area under the ROC curve of a binary problem (scikit-learn's `roc_auc_score` on binary labels).
///
/// Labels are `0`/`1` (or `bool`), `1` the positive class; scores are any reals, larger meaning more
/// positive. Undefined (an error) when `y_true` held only one class. Keeps every score: see the
/// [module notes](self) on memory and merging.
///
/// ```
/// use fm_eval::{Metric, RocAuc};
///
/// let mut auc = RocAuc::new();
/// auc.update(&[0u8, 0, 1, 1], &[0.1, 0.4, 0.35, 0.8])?;
/// assert_eq!(auc.compute()?, 0.75);
/// # Ok::<(), fm_eval::EvalError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RocAuc {
    scores: SplitScores,
}

impl RocAuc {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a batch. Errors (changing nothing) on a length mismatch, an empty batch, a label other
    /// than 0 or 1, or a NaN score.
    pub fn update<'a, 'b, L: ClassLabel, S: Score>(
        &mut self,
        y_true: impl Into<ArrayView1<'a, L>>,
        y_score: impl Into<ArrayView1<'b, S>>,
    ) -> Result<()> {
        binary_update("roc_auc", &mut self.scores, y_true.into(), y_score.into())
    }
}

/// Average precision of a binary problem: the area under the precision-recall step curve,
/// `Σ (R_n − R_{n−1}) P_n` over thresholds (scikit-learn's `average_precision_score`).
///
/// Labels are `0`/`1` (or `bool`), `1` the positive class. With no positive sample it is 0, as in
/// scikit-learn. Keeps every score: see the [module notes](self) on memory and merging.
///
/// ```
/// use fm_eval::{AveragePrecision, Metric};
///
/// let mut ap = AveragePrecision::new();
/// ap.update(&[0u8, 0, 1, 1], &[0.1, 0.4, 0.35, 0.8])?;
/// assert!((ap.compute()? - (0.5 * 1.0 + 0.5 * 2.0 / 3.0)).abs() < 1e-15);
/// # Ok::<(), fm_eval::EvalError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AveragePrecision {
    scores: SplitScores,
}

impl AveragePrecision {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a batch. Errors (changing nothing) on a length mismatch, an empty batch, a label other
    /// than 0 or 1, or a NaN score.
    pub fn update<'a, 'b, L: ClassLabel, S: Score>(
        &mut self,
        y_true: impl Into<ArrayView1<'a, L>>,
        y_score: impl Into<ArrayView1<'b, S>>,
    ) -> Result<()> {
        binary_update(
            "average_precision",
            &mut self.scores,
            y_true.into(),
            y_score.into(),
        )
    }
}

/// Macro-averaged one-vs-rest ROC-AUC over `n_classes` classes (scikit-learn's `roc_auc_score` with
/// `multi_class="ovr", average="macro"`).
///
/// Each class is scored against the rest with its column of `y_score`, and the per-class AUCs are
/// averaged. scikit-learn additionally insists that rows of `y_score` sum to 1; this accumulator takes
/// any scores (on probabilities the two agree). Undefined when some class never occurs in `y_true`
/// (or is all of it). Stores `8 * n_classes` bytes per sample: see the [module notes](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RocAucOvr {
    per_class: Vec<SplitScores>,
}

impl RocAucOvr {
    /// One-vs-rest ROC-AUC over `n_classes` ≥ 2 classes.
    pub fn new(n_classes: usize) -> Result<Self> {
        check_n_classes("roc_auc_ovr", n_classes, 2)?;
        Ok(Self {
            per_class: vec![SplitScores::default(); n_classes],
        })
    }

    /// Adds a batch: labels `0..n_classes` and scores `[n, n_classes]`. Errors (changing nothing) on
    /// a length or column mismatch, an empty batch, a label outside the classes or a NaN score.
    pub fn update<'a, L: ClassLabel, S: Score>(
        &mut self,
        y_true: impl Into<ArrayView1<'a, L>>,
        y_score: ArrayView2<'_, S>,
    ) -> Result<()> {
        ovr_update("roc_auc_ovr", &mut self.per_class, y_true.into(), y_score)
    }

    /// The ROC-AUC of every class against the rest.
    pub fn per_class(&self) -> Result<Vec<f64>> {
        if self.count() == 0 {
            return Err(empty_accumulator("roc_auc_ovr"));
        }
        self.per_class
            .iter()
            .enumerate()
            .map(|(c, s)| {
                s.rank()
                    .roc_auc
                    .ok_or_else(|| undefined_auc("roc_auc_ovr", s, Some(c)))
            })
            .collect()
    }
}

/// Macro-averaged one-vs-rest average precision over `n_classes` classes (scikit-learn's
/// `average_precision_score` on multiclass labels, `average="macro"`).
///
/// A declared class with no positive sample contributes 0 to the mean, which is what scikit-learn
/// computes for a binarised label matrix with an empty column. Stores `8 * n_classes` bytes per
/// sample: see the [module notes](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AveragePrecisionOvr {
    per_class: Vec<SplitScores>,
}

impl AveragePrecisionOvr {
    /// One-vs-rest average precision over `n_classes` ≥ 2 classes.
    pub fn new(n_classes: usize) -> Result<Self> {
        check_n_classes("average_precision_ovr", n_classes, 2)?;
        Ok(Self {
            per_class: vec![SplitScores::default(); n_classes],
        })
    }

    /// Adds a batch: labels `0..n_classes` and scores `[n, n_classes]`. Errors (changing nothing) on
    /// a length or column mismatch, an empty batch, a label outside the classes or a NaN score.
    pub fn update<'a, L: ClassLabel, S: Score>(
        &mut self,
        y_true: impl Into<ArrayView1<'a, L>>,
        y_score: ArrayView2<'_, S>,
    ) -> Result<()> {
        ovr_update(
            "average_precision_ovr",
            &mut self.per_class,
            y_true.into(),
            y_score,
        )
    }

    /// The average precision of every class against the rest.
    pub fn per_class(&self) -> Result<Vec<f64>> {
        if self.count() == 0 {
            return Err(empty_accumulator("average_precision_ovr"));
        }
        Ok(self
            .per_class
            .iter()
            .map(|s| s.rank().average_precision)
            .collect())
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

macro_rules! ranking_metric {
    ($name:ident, $key:literal, |$me:ident| $compute:expr, |$me2:ident| $len:expr,
     |$me3:ident, $other:ident| $check:expr, |$me4:ident, $other2:ident| $merge:expr, |$me5:ident| $reset:expr) => {
        impl Metric for $name {
            type Output = f64;

            fn compute(&self) -> Result<f64> {
                let $me = self;
                $compute
            }

            fn merge(&mut self, other: &Self) -> Result<()> {
                self.check_merge(other)?;
                let ($me4, $other2) = (self, other);
                $merge;
                Ok(())
            }

            fn check_merge(&self, other: &Self) -> Result<()> {
                let ($me3, $other) = (self, other);
                $check
            }

            fn reset(&mut self) {
                let $me5 = self;
                $reset;
            }

            fn count(&self) -> u64 {
                let $me2 = self;
                $len
            }

            fn record(&self, out: &mut MetricValues) {
                out.insert($key, self.compute(), Direction::HigherIsBetter);
            }
        }
    };
}

ranking_metric!(
    RocAuc,
    "roc_auc",
    |me| {
        if me.scores.len() == 0 {
            return Err(empty_accumulator("roc_auc"));
        }
        me.scores
            .rank()
            .roc_auc
            .ok_or_else(|| undefined_auc("roc_auc", &me.scores, None))
    },
    |me| me.scores.len(),
    |_me, _other| Ok(()),
    |me, other| me.scores.extend(&other.scores),
    |me| me.scores.clear()
);

ranking_metric!(
    AveragePrecision,
    "average_precision",
    |me| {
        if me.scores.len() == 0 {
            return Err(empty_accumulator("average_precision"));
        }
        Ok(me.scores.rank().average_precision)
    },
    |me| me.scores.len(),
    |_me, _other| Ok(()),
    |me, other| me.scores.extend(&other.scores),
    |me| me.scores.clear()
);

ranking_metric!(
    RocAucOvr,
    "roc_auc_ovr_macro",
    |me| Ok(mean(&me.per_class()?)),
    |me| me.per_class[0].len(),
    |me, other| check_same_classes("roc_auc_ovr", me.per_class.len(), other.per_class.len()),
    |me, other| me
        .per_class
        .iter_mut()
        .zip(&other.per_class)
        .for_each(|(a, b)| a.extend(b)),
    |me| me.per_class.iter_mut().for_each(SplitScores::clear)
);

ranking_metric!(
    AveragePrecisionOvr,
    "average_precision_ovr_macro",
    |me| Ok(mean(&me.per_class()?)),
    |me| me.per_class[0].len(),
    |me, other| check_same_classes(
        "average_precision_ovr",
        me.per_class.len(),
        other.per_class.len()
    ),
    |me, other| me
        .per_class
        .iter_mut()
        .zip(&other.per_class)
        .for_each(|(a, b)| a.extend(b)),
    |me| me.per_class.iter_mut().for_each(SplitScores::clear)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_preserve_order() {
        let xs = [
            f64::NEG_INFINITY,
            -1e300,
            -1.0,
            -f64::MIN_POSITIVE,
            -0.0,
            0.0,
            5e-324,
            1.0,
            f64::INFINITY,
        ];
        for w in xs.windows(2) {
            assert!(score_key(w[0]) <= score_key(w[1]), "{} {}", w[0], w[1]);
        }
        assert_eq!(score_key(-0.0), score_key(0.0));
    }

    #[test]
    fn ties_get_half_credit_and_one_class_is_undefined() {
        let mut auc = RocAuc::new();
        auc.update(&[0u8, 1], &[0.5, 0.5]).unwrap();
        assert_eq!(auc.compute().unwrap(), 0.5);
        let mut one = RocAuc::new();
        one.update(&[1u8, 1], &[0.2, 0.5]).unwrap();
        let err = one.compute().unwrap_err();
        assert!(err.to_string().contains("no negative"), "{err}");
        let mut ap = AveragePrecision::new();
        ap.update(&[0u8, 0], &[0.2, 0.5]).unwrap();
        assert_eq!(ap.compute().unwrap(), 0.0);
        assert!(ap.update(&[2u8], &[0.1]).is_err());
        assert!(ap.update(&[1u8], &[f64::NAN]).is_err());
        assert_eq!(ap.count(), 2);
    }
}
