//! Accuracy from labels, and top-k accuracy from class scores.
//!
//! [`Accuracy`] keeps two integers, so it is the cheapest metric here: one pass that checks labels and
//! counts matches, vectorised, reading each batch from memory once. [`TopKAccuracy`] ranks each row of
//! a score matrix the way scikit-learn's `top_k_accuracy_score` does, ties included.

use ndarray::{ArrayView1, ArrayView2};

use crate::error::{EvalError, Result};
use crate::input::{
    check_columns, check_labels, check_lengths, check_n_classes, check_not_nan, check_same_classes,
    contiguous, contiguous_rows, empty_accumulator, ClassLabel, Score,
};
use crate::metric::{Direction, Metric, MetricValues};

/// Labels are checked and counted in chunks this long; a chunk's counts fit in `u32`.
const CHUNK: usize = 1 << 16;

/// The fraction of predictions equal to the true label (scikit-learn's `accuracy_score`).
///
/// ```
/// use fm_eval::{Accuracy, Metric};
///
/// let mut acc = Accuracy::new(3)?;
/// acc.update(&[0u32, 1, 2, 2], &[0u32, 2, 2, 2])?;
/// assert_eq!(acc.compute()?, 0.75);
/// assert!(acc.update(&[0u32], &[3u32]).is_err()); // 3 is not a declared class
/// # Ok::<(), fm_eval::EvalError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accuracy {
    n_classes: usize,
    correct: u64,
    total: u64,
}

impl Accuracy {
    /// Accuracy over labels `0..n_classes`.
    pub fn new(n_classes: usize) -> Result<Self> {
        check_n_classes("accuracy", n_classes, 1)?;
        Ok(Self {
            n_classes,
            correct: 0,
            total: 0,
        })
    }

    /// Counts one batch. Errors (changing nothing) on a length mismatch, an empty batch or a label
    /// outside `0..n_classes`.
    pub fn update<'a, 'b, L: ClassLabel>(
        &mut self,
        y_true: impl Into<ArrayView1<'a, L>>,
        y_pred: impl Into<ArrayView1<'b, L>>,
    ) -> Result<()> {
        let (y_true, y_pred) = (y_true.into(), y_pred.into());
        check_lengths("accuracy", "y_true", y_true.len(), "y_pred", y_pred.len())?;
        let y_true = contiguous(&y_true);
        let y_pred = contiguous(&y_pred);
        let k = u32::try_from(self.n_classes).expect("n_classes fits in u32 (checked in new)");
        let mut correct = 0u64;
        for (chunk, (t, p)) in y_true.chunks(CHUNK).zip(y_pred.chunks(CHUNK)).enumerate() {
            // One pass that both checks and counts (a separate checking pass would read the
            // data from memory twice), in u32 lanes; the position of a bad label is only
            // searched for once the chunk's maximum shows there is one.
            let (mut max, mut matches) = (0u32, 0u32);
            for (&a, &b) in t.iter().zip(p) {
                let (a, b) = (a.to_u32_or_max(), b.to_u32_or_max());
                max = max.max(a).max(b);
                matches += u32::from(a == b);
            }
            if max >= k {
                check_labels("accuracy", "y_true", t, self.n_classes, chunk * CHUNK)?;
                check_labels("accuracy", "y_pred", p, self.n_classes, chunk * CHUNK)?;
            }
            correct += u64::from(matches);
        }
        self.correct += correct;
        self.total += y_true.len() as u64;
        Ok(())
    }

    /// Number of correct predictions so far.
    pub fn correct(&self) -> u64 {
        self.correct
    }
}

impl Metric for Accuracy {
    type Output = f64;

    fn compute(&self) -> Result<f64> {
        if self.total == 0 {
            return Err(empty_accumulator("accuracy"));
        }
        Ok(self.correct as f64 / self.total as f64)
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        self.check_merge(other)?;
        self.correct += other.correct;
        self.total += other.total;
        Ok(())
    }

    fn check_merge(&self, other: &Self) -> Result<()> {
        check_same_classes("accuracy", self.n_classes, other.n_classes)
    }

    fn reset(&mut self) {
        self.correct = 0;
        self.total = 0;
    }

    fn count(&self) -> u64 {
        self.total
    }

    fn record(&self, out: &mut MetricValues) {
        out.insert("accuracy", self.compute(), Direction::HigherIsBetter);
        out.count("samples", self.total);
    }
}

/// The fraction of samples whose true class is among the `k` highest scores (scikit-learn's
/// `top_k_accuracy_score` for multiclass scores).
///
/// Ties are broken as scikit-learn breaks them (a stable ascending sort, reversed): among equal scores
/// the class with the larger index ranks higher. So the true class `t` is a hit when fewer than `k`
/// classes have a larger score or an equal score and a larger index.
///
/// ```
/// use fm_eval::{Metric, TopKAccuracy};
/// use ndarray::array;
///
/// let mut top2 = TopKAccuracy::new(2, 3)?;
/// let scores = array![[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.4, 0.4, 0.2]];
/// top2.update(&[1u32, 0, 2], scores.view())?;
/// assert_eq!(top2.compute()?, 1.0 / 3.0);
/// # Ok::<(), fm_eval::EvalError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopKAccuracy {
    k: usize,
    n_classes: usize,
    hits: u64,
    total: u64,
}

impl TopKAccuracy {
    /// Top-`k` accuracy over `n_classes` classes. Errors when `k` is 0 or larger than `n_classes`.
    pub fn new(k: usize, n_classes: usize) -> Result<Self> {
        check_n_classes("top_k_accuracy", n_classes, 1)?;
        if k == 0 || k > n_classes {
            return Err(EvalError::InvalidArgument {
                metric: "top_k_accuracy",
                reason: format!("k = {k} must be between 1 and the class count {n_classes}"),
            });
        }
        Ok(Self {
            k,
            n_classes,
            hits: 0,
            total: 0,
        })
    }

    /// Scores one batch: `y_score` is `[n, n_classes]` (logits, probabilities, any scores). Errors
    /// (changing nothing) on a length or column mismatch, an empty batch, a label outside
    /// `0..n_classes` or a NaN score.
    pub fn update<'a, L: ClassLabel, S: Score>(
        &mut self,
        y_true: impl Into<ArrayView1<'a, L>>,
        y_score: ArrayView2<'_, S>,
    ) -> Result<()> {
        const METRIC: &str = "top_k_accuracy";
        let y_true = y_true.into();
        check_lengths(
            METRIC,
            "y_true",
            y_true.len(),
            "y_score rows",
            y_score.nrows(),
        )?;
        check_columns(METRIC, "y_score", y_score.shape(), self.n_classes)?;
        let y_true = contiguous(&y_true);
        check_labels(METRIC, "y_true", &y_true, self.n_classes, 0)?;
        let scores = contiguous_rows(&y_score);
        check_not_nan(METRIC, "y_score", &scores, self.n_classes)?;
        let hits: u64 = y_true
            .iter()
            .zip(scores.chunks_exact(self.n_classes))
            .map(|(&t, row)| u64::from(is_top_k(row, t.to_index(), self.k)))
            .sum();
        self.hits += hits;
        self.total += y_true.len() as u64;
        Ok(())
    }

    /// The `k` this accumulator was built with.
    pub fn k(&self) -> usize {
        self.k
    }
}

/// Whether class `target` ranks among the first `k` of `row` (ties: larger index first).
#[inline]
fn is_top_k<S: Score>(row: &[S], target: usize, k: usize) -> bool {
    let s = row[target].to_f64();
    let above_before = row[..target].iter().filter(|&&x| x.to_f64() > s).count();
    let above_after = row[target + 1..]
        .iter()
        .filter(|&&x| x.to_f64() >= s)
        .count();
    above_before + above_after < k
}

impl Metric for TopKAccuracy {
    type Output = f64;

    fn compute(&self) -> Result<f64> {
        if self.total == 0 {
            return Err(empty_accumulator("top_k_accuracy"));
        }
        Ok(self.hits as f64 / self.total as f64)
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        self.check_merge(other)?;
        self.hits += other.hits;
        self.total += other.total;
        Ok(())
    }

    fn check_merge(&self, other: &Self) -> Result<()> {
        check_same_classes("top_k_accuracy", self.n_classes, other.n_classes)?;
        if self.k != other.k {
            return Err(EvalError::MergeMismatch {
                metric: "top_k_accuracy",
                reason: format!("k = {} vs k = {}", self.k, other.k),
            });
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.hits = 0;
        self.total = 0;
    }

    fn count(&self) -> u64 {
        self.total
    }

    fn record(&self, out: &mut MetricValues) {
        out.insert(
            &format!("top_{}_accuracy", self.k),
            self.compute(),
            Direction::HigherIsBetter,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn ties_favour_the_larger_index() {
        let scores = array![[1.0, 1.0, 1.0]];
        let mut top1 = TopKAccuracy::new(1, 3).unwrap();
        top1.update(&[2u8], scores.view()).unwrap();
        top1.update(&[0u8], scores.view()).unwrap();
        assert_eq!(top1.hits, 1);
        let mut top2 = TopKAccuracy::new(2, 3).unwrap();
        top2.update(&[1u8], scores.view()).unwrap();
        assert_eq!(top2.compute().unwrap(), 1.0);
    }

    #[test]
    fn bad_input_is_named() {
        assert!(TopKAccuracy::new(4, 3)
            .unwrap_err()
            .to_string()
            .contains("k = 4"));
        assert!(TopKAccuracy::new(0, 3).is_err());
        let mut top1 = TopKAccuracy::new(1, 3).unwrap();
        let err = top1
            .update(&[0u8], array![[0.1, f64::NAN, 0.3]].view())
            .unwrap_err();
        assert!(err.to_string().contains("y_score[0, 1] is NaN"), "{err}");
        let err = top1.update(&[0u8], array![[0.1, 0.3]].view()).unwrap_err();
        assert!(err.to_string().contains("3 columns"), "{err}");
        let err = top1
            .update(&[0u8, 1], array![[0.1, 0.2, 0.3]].view())
            .unwrap_err();
        assert!(matches!(
            err,
            EvalError::LengthMismatch {
                left_len: 2,
                right_len: 1,
                ..
            }
        ));
        assert_eq!(top1.count(), 0);
        let mut acc = Accuracy::new(2).unwrap();
        let empty: [u8; 0] = [];
        assert!(matches!(
            acc.update(&empty, &empty),
            Err(EvalError::EmptyInput { .. })
        ));
        assert!(acc.compute().is_err());
    }
}
