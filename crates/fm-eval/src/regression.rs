//! Regression metrics: MSE, RMSE, MAE, R², explained variance, max error.
//!
//! One accumulator, [`Regression`], keeps exact sums ([`ExactSum`]) of the residual `d = y_true -
//! y_pred`, of `|d|`, `d²`, `y_true` and `y_true²` (squares added exactly with a fused multiply-add
//! split), and the extremes of `d` and `y_true`. Every metric is a function of those, so merges are
//! exact and streaming needs no second pass. Variances are formed as `n Σx² − (Σx)²` from about 159
//! bits of each sum, which keeps them accurate where the mean is large against the spread (the
//! textbook one-pass formula loses every digit there). A variance is exactly 0 when all values were
//! equal, which is how scikit-learn's `force_finite` rules (R² = 1 for a perfect fit of constant
//! data, 0 for an imperfect one) are reached without rounding noise.

use ndarray::ArrayView1;

use crate::error::{EvalError, Result};
use crate::exact::ExactSum;
use crate::input::{check_lengths, contiguous, empty_accumulator, Score};
use crate::metric::{Direction, Metric, MetricValues};

const METRIC: &str = "regression";

/// Streaming regression metrics over `(y_true, y_pred)` pairs.
///
/// ```
/// use fm_eval::{Metric, Regression};
///
/// let mut reg = Regression::new();
/// reg.update(&[3.0, -0.5, 2.0, 7.0], &[2.5, 0.0, 2.0, 8.0])?;
/// let m = reg.compute()?;
/// assert_eq!(m.mse, 0.375);
/// assert_eq!(m.mae, 0.5);
/// assert_eq!(m.max_error, 1.0);
/// assert!((m.r2.unwrap() - 0.9486081370449679).abs() < 1e-15);
/// # Ok::<(), fm_eval::EvalError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Regression {
    n: u64,
    sum_abs_residual: ExactSum,
    sum_sq_residual: ExactSum,
    sum_residual: ExactSum,
    sum_true: ExactSum,
    sum_sq_true: ExactSum,
    /// (min, max) of the residuals and of `y_true`; (+inf, -inf) while empty.
    residual_range: (f64, f64),
    true_range: (f64, f64),
    max_abs_residual: f64,
}

/// Every regression metric at once, as computed by [`Regression`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegressionMetrics {
    /// Mean squared error (`mean_squared_error`).
    pub mse: f64,
    /// Root mean squared error (`root_mean_squared_error`).
    pub rmse: f64,
    /// Mean absolute error (`mean_absolute_error`).
    pub mae: f64,
    /// Coefficient of determination (`r2_score`); `None` with fewer than two samples, where
    /// scikit-learn returns NaN.
    pub r2: Option<f64>,
    /// Explained variance (`explained_variance_score`).
    pub explained_variance: f64,
    /// Largest absolute residual (`max_error`).
    pub max_error: f64,
    /// Number of pairs.
    pub count: u64,
}

impl Default for Regression {
    fn default() -> Self {
        Self::new()
    }
}

impl Regression {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self {
            n: 0,
            sum_abs_residual: ExactSum::new(),
            sum_sq_residual: ExactSum::new(),
            sum_residual: ExactSum::new(),
            sum_true: ExactSum::new(),
            sum_sq_true: ExactSum::new(),
            residual_range: EMPTY_RANGE,
            true_range: EMPTY_RANGE,
            max_abs_residual: 0.0,
        }
    }

    /// Adds a batch of targets and predictions. Errors (changing nothing) on a length mismatch, an
    /// empty batch, or a NaN or infinite value.
    pub fn update<'a, 'b, S: Score>(
        &mut self,
        y_true: impl Into<ArrayView1<'a, S>>,
        y_pred: impl Into<ArrayView1<'b, S>>,
    ) -> Result<()> {
        let (y_true, y_pred) = (y_true.into(), y_pred.into());
        check_lengths(METRIC, "y_true", y_true.len(), "y_pred", y_pred.len())?;
        let y_true = contiguous(&y_true);
        let y_pred = contiguous(&y_pred);
        check_finite("y_true", &y_true)?;
        check_finite("y_pred", &y_pred)?;
        for (&t, &p) in y_true.iter().zip(y_pred.iter()) {
            let (t, p) = (t.to_f64(), p.to_f64());
            // The residual is rounded once, as scikit-learn's `y_true - y_pred` is; everything
            // after is exact.
            let d = t - p;
            self.sum_residual.add(d);
            self.sum_abs_residual.add(d.abs());
            self.sum_sq_residual.add_product(d, d);
            self.sum_true.add(t);
            self.sum_sq_true.add_product(t, t);
            self.max_abs_residual = self.max_abs_residual.max(d.abs());
            self.residual_range = widen(self.residual_range, (d, d));
            self.true_range = widen(self.true_range, (t, t));
        }
        self.n += y_true.len() as u64;
        Ok(())
    }

    /// Mean squared error.
    pub fn mse(&self) -> Result<f64> {
        self.nonempty()?;
        Ok(self.sum_sq_residual.value() / self.n as f64)
    }

    /// Mean absolute error.
    pub fn mae(&self) -> Result<f64> {
        self.nonempty()?;
        Ok(self.sum_abs_residual.value() / self.n as f64)
    }

    /// R² = 1 − SS_res / SS_tot. Undefined (an error) with fewer than two samples; 1 when both sums
    /// are 0 and 0 when only SS_tot is (scikit-learn's `force_finite=True`).
    pub fn r2(&self) -> Result<f64> {
        self.nonempty()?;
        if self.n < 2 {
            return Err(EvalError::Undefined {
                metric: "r2",
                reason: "R² needs at least two samples (scikit-learn returns NaN here)".into(),
            });
        }
        let ss_res = self.sum_sq_residual.value();
        let n_ss_tot = n_times_centered(self.n, &self.sum_sq_true, &self.sum_true, self.true_range);
        Ok(fraction_explained(ss_res, n_ss_tot / self.n as f64))
    }

    /// Explained variance = 1 − Var(y_true − y_pred) / Var(y_true), with the same `force_finite`
    /// rules as R².
    pub fn explained_variance(&self) -> Result<f64> {
        self.nonempty()?;
        let numerator = n_times_centered(
            self.n,
            &self.sum_sq_residual,
            &self.sum_residual,
            self.residual_range,
        );
        let denominator =
            n_times_centered(self.n, &self.sum_sq_true, &self.sum_true, self.true_range);
        Ok(fraction_explained(numerator, denominator))
    }

    /// Largest absolute residual.
    pub fn max_error(&self) -> Result<f64> {
        self.nonempty()?;
        Ok(self.max_abs_residual)
    }

    fn nonempty(&self) -> Result<()> {
        if self.n == 0 {
            return Err(empty_accumulator(METRIC));
        }
        Ok(())
    }
}

fn check_finite<S: Score>(what: &'static str, values: &[S]) -> Result<()> {
    if let Some(i) = values.iter().position(|&v| !v.to_f64().is_finite()) {
        return Err(EvalError::NonFinite {
            metric: METRIC,
            what,
            position: vec![i],
            value: values[i].to_f64(),
        });
    }
    Ok(())
}

const EMPTY_RANGE: (f64, f64) = (f64::INFINITY, f64::NEG_INFINITY);

fn widen(range: (f64, f64), other: (f64, f64)) -> (f64, f64) {
    (range.0.min(other.0), range.1.max(other.1))
}

/// `1 − numerator / denominator` with scikit-learn's `force_finite` rules for a zero denominator.
fn fraction_explained(numerator: f64, denominator: f64) -> f64 {
    if denominator != 0.0 {
        1.0 - numerator / denominator
    } else if numerator == 0.0 {
        1.0
    } else {
        0.0
    }
}

/// `n Σx² − (Σx)²` (n times the sum of squared deviations from the mean), exactly 0 when all values
/// were equal and otherwise accurate to about 2^-158 of `n Σx²`.
fn n_times_centered(n: u64, sum_sq: &ExactSum, sum: &ExactSum, range: (f64, f64)) -> f64 {
    if range.0 == range.1 {
        return 0.0;
    }
    let a = three_parts(sum_sq);
    let b = three_parts(sum);
    let n = n as f64;
    let mut total = ExactSum::new();
    for &part in &a {
        total.add_product(n, part);
    }
    for i in 0..3 {
        total.add_product(-b[i], b[i]);
        for j in i + 1..3 {
            total.add_product(-2.0 * b[i], b[j]);
        }
    }
    total.value().max(0.0)
}

/// The exact sum as `hi + mid + lo`, each the correctly rounded remainder of the ones before.
fn three_parts(sum: &ExactSum) -> [f64; 3] {
    let (hi, mid) = sum.value_hi_lo();
    let mut rest = sum.clone();
    rest.add(-hi);
    rest.add(-mid);
    [hi, mid, rest.value()]
}

impl Metric for Regression {
    type Output = RegressionMetrics;

    fn compute(&self) -> Result<RegressionMetrics> {
        let mse = self.mse()?;
        Ok(RegressionMetrics {
            mse,
            rmse: mse.sqrt(),
            mae: self.mae()?,
            r2: self.r2().ok(),
            explained_variance: self.explained_variance()?,
            max_error: self.max_error()?,
            count: self.n,
        })
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        self.n += other.n;
        self.sum_abs_residual.merge(&other.sum_abs_residual);
        self.sum_sq_residual.merge(&other.sum_sq_residual);
        self.sum_residual.merge(&other.sum_residual);
        self.sum_true.merge(&other.sum_true);
        self.sum_sq_true.merge(&other.sum_sq_true);
        self.max_abs_residual = self.max_abs_residual.max(other.max_abs_residual);
        self.residual_range = widen(self.residual_range, other.residual_range);
        self.true_range = widen(self.true_range, other.true_range);
        Ok(())
    }

    fn reset(&mut self) {
        *self = Self::new();
    }

    fn count(&self) -> u64 {
        self.n
    }

    fn record(&self, out: &mut MetricValues) {
        use Direction::{HigherIsBetter, LowerIsBetter};
        out.insert("mse", self.mse(), LowerIsBetter);
        out.insert("rmse", self.mse().map(f64::sqrt), LowerIsBetter);
        out.insert("mae", self.mae(), LowerIsBetter);
        out.insert("r2", self.r2(), HigherIsBetter);
        out.insert(
            "explained_variance",
            self.explained_variance(),
            HigherIsBetter,
        );
        out.insert("max_error", self.max_error(), LowerIsBetter);
        out.count("samples", self.n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variance_survives_a_large_mean() {
        // Mean 1e9, spread 1: the one-pass formula Σy²/n − mean² loses every digit in f64.
        let y: Vec<f64> = (0..1000).map(|i| 1e9 + (i % 7) as f64).collect();
        let p: Vec<f64> = y.iter().map(|v| v + 0.5).collect();
        let mut reg = Regression::new();
        reg.update(&y, &p).unwrap();
        let mean = y.iter().sum::<f64>() / y.len() as f64;
        let ss_tot: f64 = y.iter().map(|v| (v - mean) * (v - mean)).sum();
        let r2 = 1.0 - 250.0 / ss_tot;
        assert!(
            (reg.r2().unwrap() - r2).abs() < 1e-13,
            "{} vs {r2}",
            reg.r2().unwrap()
        );
        // A constant offset explains all variance.
        assert_eq!(reg.explained_variance().unwrap(), 1.0);
    }

    #[test]
    fn constant_targets_follow_force_finite() {
        let mut reg = Regression::new();
        reg.update(&[0.1f64, 0.1, 0.1], &[0.1, 0.1, 0.1]).unwrap();
        assert_eq!(reg.r2().unwrap(), 1.0);
        reg.update(&[0.1f64], &[0.2]).unwrap();
        assert_eq!(reg.r2().unwrap(), 0.0);
        let mut one = Regression::new();
        one.update(&[1.0f32], &[2.0]).unwrap();
        assert!(one.r2().is_err());
        assert_eq!(one.compute().unwrap().r2, None);
        let err = one
            .update(&[1.0f32, f32::INFINITY], &[2.0, 1.0])
            .unwrap_err();
        assert!(err.to_string().contains("y_true[1] is inf"), "{err}");
    }
}
