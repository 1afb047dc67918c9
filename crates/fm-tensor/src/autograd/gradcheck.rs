//! Gradient checking: compare a backward pass with central finite differences, in f64.
//!
//! [`check_gradients`] runs a function of some input arrays on a tape, projects its output onto fixed
//! random weights `r` (so a non-scalar output is checked through a full vector-Jacobian product,
//! `L = Σ out · r`), and compares the analytic ∂L/∂input from [`Tape::backward_with`] with
//! `(L(x + ε) − L(x − ε)) / 2ε` for every input element.
//!
//! The error per element is `|analytic − numeric| / max(1, |analytic|, |numeric|)`: relative for
//! gradients of magnitude above 1, absolute below (where a relative measure would only amplify
//! rounding noise). fm's own ops pass with a maximum below 1e-6.
//!
//! ```
//! use fm_tensor::autograd::{check_gradients, GradCheckConfig};
//! use ndarray::array;
//!
//! let a = array![[0.5, -1.0], [2.0, 0.25]].into_dyn();
//! let b = array![[1.5], [-0.5]].into_dyn();
//! let report = check_gradients(|_tape, x| x[0].matmul(x[1]), &[a, b], &GradCheckConfig::default())?;
//! assert!(report.passed(), "{report}");
//! # Ok::<(), fm_tensor::TensorError>(())
//! ```

use std::fmt;

use ndarray::ArrayD;
use ndarray_rand::rand::rngs::StdRng;
use ndarray_rand::rand::SeedableRng;
use ndarray_rand::rand_distr::Uniform;
use ndarray_rand::RandomExt;

use crate::autograd::tape::Tape;
use crate::autograd::var::Var;
use crate::error::{Result, TensorError};

/// Settings for [`check_gradients`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradCheckConfig {
    /// Finite-difference step.
    pub epsilon: f64,
    /// Largest acceptable error (see the module doc for the measure).
    pub tolerance: f64,
    /// Seed of the projection weights `r`.
    pub seed: u64,
}

impl Default for GradCheckConfig {
    fn default() -> Self {
        GradCheckConfig {
            epsilon: 1e-6,
            tolerance: 1e-6,
            seed: 0x5eed,
        }
    }
}

/// The worst disagreement found by [`check_gradients`].
#[derive(Debug, Clone, PartialEq)]
pub struct GradCheckReport {
    /// Largest error over all checked elements.
    pub max_error: f64,
    /// Where it happened: (input position, flat element index, analytic, numeric).
    pub worst: Option<(usize, usize, f64, f64)>,
    /// How many elements were compared.
    pub checked: usize,
    /// The tolerance the report is judged against.
    pub tolerance: f64,
}

impl GradCheckReport {
    /// Whether every element is within tolerance (and the error is not NaN).
    pub fn passed(&self) -> bool {
        self.max_error <= self.tolerance
    }
}

impl fmt::Display for GradCheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gradient check over {} elements: max error {:.3e} (tolerance {:.1e})",
            self.checked, self.max_error, self.tolerance
        )?;
        if let Some((input, index, analytic, numeric)) = self.worst {
            write!(f, "; worst at input {input}, element {index}: analytic {analytic:.9e}, numeric {numeric:.9e}")?;
        }
        Ok(())
    }
}

/// Checks the gradients of `f` with respect to each of `inputs` by central differences.
///
/// `f` receives a tape and one variable per input and returns the output variable. It is called once on
/// a recording tape and twice per input element on no-grad tapes, so keep the inputs small.
pub fn check_gradients<F>(
    f: F,
    inputs: &[ArrayD<f64>],
    config: &GradCheckConfig,
) -> Result<GradCheckReport>
where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Result<Var<'t, f64>>,
{
    if config.epsilon.is_nan() || config.epsilon <= 0.0 {
        return Err(TensorError::invalid_argument(
            "check_gradients",
            "epsilon must be positive",
        ));
    }
    // Analytic: one recorded pass.
    let tape = Tape::<f64>::new();
    let vars: Vec<Var<'_, f64>> = inputs.iter().map(|x| tape.variable(x.clone())).collect();
    let output = f(&tape, &vars)?;
    let out_shape = output.shape();
    let mut rng = StdRng::seed_from_u64(config.seed);
    let uniform = Uniform::new(-1.0, 1.0).expect("valid range");
    let weights = ArrayD::<f64>::random_using(ndarray::IxDyn(&out_shape), uniform, &mut rng);
    let grads = tape.backward_with(output, weights.clone())?;

    // Numeric: L(x ± ε) on evaluation tapes.
    let projected = |xs: &[ArrayD<f64>]| -> Result<f64> {
        let tape = Tape::<f64>::no_grad();
        let vars: Vec<Var<'_, f64>> = xs.iter().map(|x| tape.variable(x.clone())).collect();
        let out = f(&tape, &vars)?.value();
        if out.shape() != weights.shape() {
            return Err(TensorError::Autograd(
                "check_gradients: output shape changed between evaluations".into(),
            ));
        }
        Ok(out
            .view()
            .iter()
            .zip(weights.iter())
            .map(|(o, r)| o * r)
            .sum())
    };

    let mut report = GradCheckReport {
        max_error: 0.0,
        worst: None,
        checked: 0,
        tolerance: config.tolerance,
    };
    // Standard layout so that "element i" means the same in inputs, perturbations and gradients.
    let mut perturbed: Vec<ArrayD<f64>> = inputs
        .iter()
        .map(|x| x.as_standard_layout().into_owned())
        .collect();
    for (input_index, var) in vars.iter().enumerate() {
        let analytic = match grads.of(*var) {
            Some(g) => g.as_standard_layout().into_owned(),
            // The output does not depend on this input: its gradient is zero.
            None => ArrayD::zeros(inputs[input_index].raw_dim()),
        };
        let analytic = analytic.as_slice().expect("standard layout");
        for flat in 0..analytic.len() {
            let original = slice_of(&perturbed[input_index])[flat];
            slice_of_mut(&mut perturbed[input_index])[flat] = original + config.epsilon;
            let plus = projected(&perturbed)?;
            slice_of_mut(&mut perturbed[input_index])[flat] = original - config.epsilon;
            let minus = projected(&perturbed)?;
            slice_of_mut(&mut perturbed[input_index])[flat] = original;
            let numeric = (plus - minus) / (2.0 * config.epsilon);
            let exact = analytic[flat];
            let scale = 1f64.max(exact.abs()).max(numeric.abs());
            let error = (exact - numeric).abs() / scale;
            report.checked += 1;
            if error > report.max_error || error.is_nan() {
                report.max_error = if error.is_nan() { f64::INFINITY } else { error };
                report.worst = Some((input_index, flat, exact, numeric));
            }
        }
    }
    Ok(report)
}

fn slice_of(array: &ArrayD<f64>) -> &[f64] {
    array.as_slice().expect("standard layout")
}

fn slice_of_mut(array: &mut ArrayD<f64>) -> &mut [f64] {
    array.as_slice_mut().expect("standard layout")
}
