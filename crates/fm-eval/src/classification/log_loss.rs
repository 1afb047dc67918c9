//! Log loss (cross-entropy of predicted probabilities), as scikit-learn's `log_loss`.
//!
//! Probabilities are clipped to `[eps, 1 - eps]` with the epsilon of the input type before the log,
//! as scikit-learn 1.9 does, and are not renormalised (scikit-learn only warns when rows do not sum
//! to one). Per-sample losses are summed with [`ExactSum`](crate::ExactSum), so merges are exact.

use ndarray::{ArrayView1, ArrayView2};

use crate::error::{EvalError, Result};
use crate::exact::ExactSum;
use crate::input::{
    check_columns, check_labels, check_lengths, check_n_classes, check_not_nan, check_same_classes,
    contiguous, contiguous_rows, empty_accumulator, position_of, ClassLabel, Score,
};
use crate::metric::{Direction, Metric, MetricValues};

const METRIC: &str = "log_loss";

/// Mean negative log-likelihood of the true class under predicted probabilities.
///
/// ```
/// use fm_eval::{LogLoss, Metric};
/// use ndarray::array;
///
/// let mut loss = LogLoss::new(3)?;
/// loss.update(&[0u32, 2], array![[0.5, 0.25, 0.25], [0.2, 0.3, 0.5]].view())?;
/// assert!((loss.compute()? - 0.5f64.ln().abs()).abs() < 1e-15);
/// # Ok::<(), fm_eval::EvalError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LogLoss {
    n_classes: usize,
    sum: ExactSum,
    total: u64,
}

impl LogLoss {
    /// Log loss over `n_classes` ≥ 2 classes.
    pub fn new(n_classes: usize) -> Result<Self> {
        check_n_classes(METRIC, n_classes, 2)?;
        Ok(Self {
            n_classes,
            sum: ExactSum::new(),
            total: 0,
        })
    }

    /// Adds a batch of probability rows `[n, n_classes]`. Errors (changing nothing) on a length or
    /// column mismatch, an empty batch, a label outside the classes, a NaN or a value outside [0, 1].
    pub fn update<'a, L: ClassLabel, S: Score>(
        &mut self,
        y_true: impl Into<ArrayView1<'a, L>>,
        y_prob: ArrayView2<'_, S>,
    ) -> Result<()> {
        let y_true = y_true.into();
        check_lengths(
            METRIC,
            "y_true",
            y_true.len(),
            "y_prob rows",
            y_prob.nrows(),
        )?;
        check_columns(METRIC, "y_prob", y_prob.shape(), self.n_classes)?;
        let y_true = contiguous(&y_true);
        check_labels(METRIC, "y_true", &y_true, self.n_classes, 0)?;
        let probs = contiguous_rows(&y_prob);
        check_probabilities(&probs, self.n_classes)?;
        let (low, high) = clip_bounds::<S>();
        for (&t, row) in y_true.iter().zip(probs.chunks_exact(self.n_classes)) {
            let p = row[t.to_index()].to_f64().clamp(low, high);
            self.sum.add(-p.ln());
        }
        self.total += y_true.len() as u64;
        Ok(())
    }

    /// Adds a batch of a two-class problem given as the probability of class 1 (a 1-D input, as
    /// scikit-learn accepts). Errors unless the accumulator was built with 2 classes, and on the
    /// same bad input as [`update`](Self::update).
    pub fn update_binary<'a, 'b, L: ClassLabel, S: Score>(
        &mut self,
        y_true: impl Into<ArrayView1<'a, L>>,
        p_positive: impl Into<ArrayView1<'b, S>>,
    ) -> Result<()> {
        if self.n_classes != 2 {
            return Err(EvalError::InvalidArgument {
                metric: METRIC,
                reason: format!(
                    "update_binary needs 2 declared classes, this accumulator has {}",
                    self.n_classes
                ),
            });
        }
        let (y_true, p_positive) = (y_true.into(), p_positive.into());
        check_lengths(
            METRIC,
            "y_true",
            y_true.len(),
            "p_positive",
            p_positive.len(),
        )?;
        let y_true = contiguous(&y_true);
        check_labels(METRIC, "y_true", &y_true, 2, 0)?;
        let probs = contiguous(&p_positive);
        check_probabilities(&probs, 1)?;
        let (low, high) = clip_bounds::<S>();
        for (&t, &p) in y_true.iter().zip(probs.iter()) {
            let p = p.to_f64();
            let p_true = if t.to_index() == 1 { p } else { 1.0 - p };
            self.sum.add(-p_true.clamp(low, high).ln());
        }
        self.total += y_true.len() as u64;
        Ok(())
    }
}

fn clip_bounds<S: Score>() -> (f64, f64) {
    (S::EPSILON, 1.0 - S::EPSILON)
}

fn check_probabilities<S: Score>(probs: &[S], columns: usize) -> Result<()> {
    check_not_nan(METRIC, "y_prob", probs, columns)?;
    if let Some(i) = probs
        .iter()
        .position(|&p| !(0.0..=1.0).contains(&p.to_f64()))
    {
        return Err(EvalError::OutOfRange {
            metric: METRIC,
            what: "y_prob",
            position: position_of(i, columns),
            value: probs[i].to_f64(),
            range: "[0, 1]",
        });
    }
    Ok(())
}

impl Metric for LogLoss {
    type Output = f64;

    fn compute(&self) -> Result<f64> {
        if self.total == 0 {
            return Err(empty_accumulator(METRIC));
        }
        Ok(self.sum.value() / self.total as f64)
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        self.check_merge(other)?;
        self.sum.merge(&other.sum);
        self.total += other.total;
        Ok(())
    }

    fn check_merge(&self, other: &Self) -> Result<()> {
        check_same_classes(METRIC, self.n_classes, other.n_classes)
    }

    fn reset(&mut self) {
        self.sum.reset();
        self.total = 0;
    }

    fn count(&self) -> u64 {
        self.total
    }

    fn record(&self, out: &mut MetricValues) {
        out.insert("log_loss", self.compute(), Direction::LowerIsBetter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn probabilities_are_checked_and_clipped() {
        let mut loss = LogLoss::new(2).unwrap();
        let err = loss.update(&[0u8], array![[1.5, -0.5]].view()).unwrap_err();
        assert!(
            err.to_string()
                .contains("y_prob[0, 0] = 1.5 is outside [0, 1]"),
            "{err}"
        );
        let err = loss.update_binary(&[0u8], &[f32::NAN]).unwrap_err();
        assert!(err.to_string().contains("NaN"), "{err}");
        loss.update_binary(&[1u8], &[0.0f64]).unwrap();
        assert_eq!(loss.compute().unwrap(), -(f64::EPSILON.ln()));
        assert!(LogLoss::new(3)
            .unwrap()
            .update_binary(&[0u8], &[0.5])
            .is_err());
    }
}
