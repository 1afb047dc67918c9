//! Normalisation over the last axis: LayerNorm and RMSNorm, forward and backward.
//!
//! Every lane along the last axis (a "row" of length D) is normalised on its own; `gamma` (scale)
//! and `beta` (shift) have shape `[D]` and are optional (absent means ones and zeros). The forward
//! returns, beside the output, the per-row statistics the backward needs (`mean` and `rstd` =
//! 1/√(var + eps) for LayerNorm, `rstd` = 1/√(mean(x²) + eps) for RMSNorm), one value per row in
//! row-major order of the leading axes. The variance is the biased one (divided by D), as in
//! PyTorch, and is computed in two passes (mean first) for accuracy.
//!
//! # Determinism
//! Rows are independent and run in parallel. The parameter gradients (`dgamma`, `dbeta`) are sums
//! over rows: each fixed block of rows (its size depends only on D, never on the thread count)
//! accumulates its partial sums in row order, and the partials are then added in block order. So
//! every output is bitwise the same for any number of threads. Extra memory: one partial `[D]`
//! vector per block of rows for each parameter gradient.
//!
//! ```
//! use fm_tensor::ops::norm::{layer_norm, layer_norm_backward};
//! use ndarray::{array, ArrayD};
//!
//! let x = array![[1.0f64, 2.0, 3.0], [2.0, 4.0, 6.0]].into_dyn();
//! let forward = layer_norm(x.view(), None, None, 0.0)?;
//! assert!((forward.output[[0, 2]] - 1.5f64.sqrt()).abs() < 1e-15);
//! assert_eq!(forward.mean.to_vec(), vec![2.0, 4.0]);
//!
//! let g = ArrayD::ones(x.shape());
//! let grads = layer_norm_backward(x.view(), None, forward.mean.view(), forward.rstd.view(), g.view())?;
//! assert!(grads.dx.iter().all(|d| d.abs() < 1e-12)); // a uniform shift is normalised away
//! assert_eq!(grads.dbeta.to_vec(), vec![2.0, 2.0, 2.0]);
//! # Ok::<(), fm_tensor::TensorError>(())
//! ```

use std::borrow::Cow;

use ndarray::{Array1, ArrayD, ArrayView1, ArrayViewD};

use super::parallel::{map_chunks_mut, rows_per_task, worth_parallel};
use super::reduce::{dot_slice, sum_slice};
use crate::element::Element;
use crate::error::{Result, TensorError};

/// At least this many rows share one partial sum of the parameter gradients, which bounds the
/// partials' memory to 1/64 of the input's.
const MIN_ROWS_PER_PARTIAL: usize = 64;

/// LayerNorm's output and the statistics its backward needs.
#[derive(Clone, Debug)]
pub struct LayerNormOutput<T> {
    /// The normalised, scaled and shifted input (shape of the input).
    pub output: ArrayD<T>,
    /// Mean of each row, `[rows]`.
    pub mean: Array1<T>,
    /// 1/√(var + eps) of each row, `[rows]`.
    pub rstd: Array1<T>,
}

/// The gradients of LayerNorm.
#[derive(Clone, Debug)]
pub struct LayerNormGrads<T> {
    /// Gradient of the input.
    pub dx: ArrayD<T>,
    /// Gradient of `gamma`, `[D]` (what it would be for `gamma` = ones when none was given).
    pub dgamma: Array1<T>,
    /// Gradient of `beta`, `[D]` (the column sums of the output gradient).
    pub dbeta: Array1<T>,
}

/// RMSNorm's output and the statistic its backward needs.
#[derive(Clone, Debug)]
pub struct RmsNormOutput<T> {
    /// The normalised and scaled input (shape of the input).
    pub output: ArrayD<T>,
    /// 1/√(mean(x²) + eps) of each row, `[rows]`.
    pub rstd: Array1<T>,
}

/// The gradients of RMSNorm.
#[derive(Clone, Debug)]
pub struct RmsNormGrads<T> {
    /// Gradient of the input.
    pub dx: ArrayD<T>,
    /// Gradient of `gamma`, `[D]` (what it would be for `gamma` = ones when none was given).
    pub dgamma: Array1<T>,
}

/// The row length D of `x`, checking that there is a non-empty last axis.
fn row_length(op: &'static str, x: &ArrayViewD<'_, impl Element>) -> Result<usize> {
    match x.shape().last() {
        None => Err(TensorError::invalid_shape(
            op,
            x.shape(),
            "normalisation needs at least one axis",
        )),
        Some(0) => Err(TensorError::invalid_shape(
            op,
            x.shape(),
            "the normalised (last) axis is empty",
        )),
        Some(&d) => Ok(d),
    }
}

/// A per-feature parameter as a contiguous `[D]` slice, or `fill` repeated when absent.
fn parameter<'a, T: Element>(
    op: &'static str,
    name: &str,
    param: Option<&'a ArrayView1<'_, T>>,
    x_shape: &[usize],
    fill: T,
) -> Result<Cow<'a, [T]>> {
    let d = x_shape[x_shape.len() - 1];
    match param {
        None => Ok(Cow::Owned(vec![fill; d])),
        Some(p) if p.len() != d => Err(TensorError::shape_mismatch(
            op,
            x_shape,
            p.shape(),
            format!("{name} must have shape [{d}], the length of the last axis"),
        )),
        Some(p) => Ok(p
            .as_slice()
            .map_or_else(|| Cow::Owned(p.to_vec()), Cow::Borrowed)),
    }
}

fn check_eps<T: Element>(op: &'static str, eps: T) -> Result<()> {
    if eps >= T::zero() && eps.is_finite() {
        Ok(())
    } else {
        Err(TensorError::invalid_argument(
            op,
            format!("eps must be finite and non-negative, got {eps}"),
        ))
    }
}

/// Checks the backward's gradient and per-row statistics against `x`.
fn check_backward(
    op: &'static str,
    x: &ArrayViewD<'_, impl Element>,
    grad: &ArrayViewD<'_, impl Element>,
    stats: &[(&str, usize)],
    rows: usize,
) -> Result<()> {
    if x.shape() != grad.shape() {
        return Err(TensorError::shape_mismatch(
            op,
            x.shape(),
            grad.shape(),
            "the gradient must have the input's shape",
        ));
    }
    for &(name, len) in stats {
        if len != rows {
            return Err(TensorError::shape_mismatch(
                op,
                x.shape(),
                &[len],
                format!("{name} must have one value per row ({rows})"),
            ));
        }
    }
    Ok(())
}

/// Runs `row(index, x_row, out_row) -> stats` over all rows in parallel, returning the stats in
/// row order.
fn forward_rows<T: Element, S: Send>(
    x: &[T],
    d: usize,
    row: impl Fn(&[T], &mut [T]) -> S + Sync + Send,
) -> (Vec<T>, Vec<S>) {
    let mut out = crate::buffers::vec_for_overwrite(x.len());
    let rows_per_chunk = rows_per_task(d);
    let parallel = worth_parallel(x.len());
    let stats = map_chunks_mut(&mut out, rows_per_chunk * d, parallel, |c, chunk| {
        let first = c * rows_per_chunk * d;
        let inputs = &x[first..first + chunk.len()];
        chunk
            .chunks_mut(d)
            .zip(inputs.chunks(d))
            .map(|(o, xr)| row(xr, o))
            .collect::<Vec<S>>()
    });
    (out, stats.into_iter().flatten().collect())
}

/// Runs `row(index, x_row, dx_row, partials)` over all rows in fixed blocks, each block
/// accumulating `P` parameter-gradient partials of length `d`; returns dx and the partials summed
/// in block order.
fn backward_rows<T: Element, const P: usize>(
    rows_total: usize,
    d: usize,
    row: impl Fn(usize, &mut [T], &mut [Vec<T>; P], &mut Vec<T>) + Sync + Send,
) -> (Vec<T>, [Vec<T>; P]) {
    let mut dx = crate::buffers::vec_for_overwrite(rows_total * d);
    let rows_per_block = rows_per_task(d).max(MIN_ROWS_PER_PARTIAL);
    let parallel = worth_parallel(dx.len());
    let partials = map_chunks_mut(&mut dx, rows_per_block * d, parallel, |b, block| {
        let mut sums: [Vec<T>; P] = std::array::from_fn(|_| vec![T::zero(); d]);
        let mut scratch = vec![T::zero(); d];
        for (r, dx_row) in block.chunks_mut(d).enumerate() {
            row(b * rows_per_block + r, dx_row, &mut sums, &mut scratch);
        }
        sums
    });
    let mut totals: [Vec<T>; P] = std::array::from_fn(|_| vec![T::zero(); d]);
    for block in &partials {
        for (total, part) in totals.iter_mut().zip(block) {
            for (t, &p) in total.iter_mut().zip(part) {
                *t = *t + p;
            }
        }
    }
    (dx, totals)
}

/// LayerNorm over the last axis: (x − mean)/√(var + eps)·gamma + beta, with the biased variance.
/// `gamma` and `beta` have shape `[D]` (D the last axis); `None` means ones and zeros.
pub fn layer_norm<T: Element>(
    x: ArrayViewD<'_, T>,
    gamma: Option<ArrayView1<'_, T>>,
    beta: Option<ArrayView1<'_, T>>,
    eps: T,
) -> Result<LayerNormOutput<T>> {
    const OP: &str = "layer_norm";
    let d = row_length(OP, &x)?;
    let gamma = parameter(OP, "gamma", gamma.as_ref(), x.shape(), T::one())?;
    let beta = parameter(OP, "beta", beta.as_ref(), x.shape(), T::zero())?;
    check_eps(OP, eps)?;
    let xs = x.as_standard_layout();
    let xs_slice = xs.as_slice().expect("standard layout is contiguous");
    let d_t = T::from_usize(d).expect("lengths convert to floats");
    let (out, stats) = forward_rows(xs_slice, d, |xr, o| {
        let mean = sum_slice(xr) / d_t;
        for (o, &v) in o.iter_mut().zip(xr) {
            *o = v - mean;
        }
        let rstd = (dot_slice(o, o) / d_t + eps).sqrt().recip();
        for ((o, &g), &b) in o.iter_mut().zip(gamma.iter()).zip(beta.iter()) {
            *o = *o * rstd * g + b;
        }
        (mean, rstd)
    });
    let (mean, rstd): (Vec<T>, Vec<T>) = stats.into_iter().unzip();
    Ok(LayerNormOutput {
        output: ArrayD::from_shape_vec(x.shape(), out).expect("output has the input's shape"),
        mean: Array1::from(mean),
        rstd: Array1::from(rstd),
    })
}

/// Gradients of [`layer_norm`] from the input `x`, the same `gamma`, the forward's `mean` and `rstd`,
/// and the output gradient. With x̂ = (x − mean)·rstd and ĝ = grad·gamma per row:
/// dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)), dgamma = Σ_rows grad·x̂, dbeta = Σ_rows grad.
pub fn layer_norm_backward<T: Element>(
    x: ArrayViewD<'_, T>,
    gamma: Option<ArrayView1<'_, T>>,
    mean: ArrayView1<'_, T>,
    rstd: ArrayView1<'_, T>,
    grad: ArrayViewD<'_, T>,
) -> Result<LayerNormGrads<T>> {
    const OP: &str = "layer_norm_backward";
    let d = row_length(OP, &x)?;
    let gamma = parameter(OP, "gamma", gamma.as_ref(), x.shape(), T::one())?;
    let rows = x.len() / d;
    check_backward(
        OP,
        &x,
        &grad,
        &[("mean", mean.len()), ("rstd", rstd.len())],
        rows,
    )?;
    let (xs, gs) = (x.as_standard_layout(), grad.as_standard_layout());
    let (xs, gs) = (
        xs.as_slice().expect("contiguous"),
        gs.as_slice().expect("contiguous"),
    );
    let d_t = T::from_usize(d).expect("lengths convert to floats");
    let (dx, [dgamma, dbeta]) =
        backward_rows::<T, 2>(rows, d, |r, dx_row, [dgamma, dbeta], x_hat| {
            let (xr, gr) = (&xs[r * d..(r + 1) * d], &gs[r * d..(r + 1) * d]);
            let (m, s) = (mean[r], rstd[r]);
            for (((xh, o), &v), (&g, &w)) in x_hat
                .iter_mut()
                .zip(dx_row.iter_mut())
                .zip(xr)
                .zip(gr.iter().zip(gamma.iter()))
            {
                *xh = (v - m) * s;
                *o = g * w;
            }
            let mean_g = sum_slice(dx_row) / d_t;
            let mean_gx = dot_slice(dx_row, x_hat) / d_t;
            for (o, &xh) in dx_row.iter_mut().zip(x_hat.iter()) {
                *o = s * (*o - mean_g - xh * mean_gx);
            }
            for (((dg, db), &g), &xh) in dgamma
                .iter_mut()
                .zip(dbeta.iter_mut())
                .zip(gr)
                .zip(x_hat.iter())
            {
                *dg = *dg + g * xh;
                *db = *db + g;
            }
        });
    Ok(LayerNormGrads {
        dx: ArrayD::from_shape_vec(x.shape(), dx).expect("gradient has the input's shape"),
        dgamma: Array1::from(dgamma),
        dbeta: Array1::from(dbeta),
    })
}

/// RMSNorm over the last axis: x/√(mean(x²) + eps)·gamma, `gamma` of shape `[D]` or `None` (ones).
pub fn rms_norm<T: Element>(
    x: ArrayViewD<'_, T>,
    gamma: Option<ArrayView1<'_, T>>,
    eps: T,
) -> Result<RmsNormOutput<T>> {
    const OP: &str = "rms_norm";
    let d = row_length(OP, &x)?;
    let gamma = parameter(OP, "gamma", gamma.as_ref(), x.shape(), T::one())?;
    check_eps(OP, eps)?;
    let xs = x.as_standard_layout();
    let xs_slice = xs.as_slice().expect("standard layout is contiguous");
    let d_t = T::from_usize(d).expect("lengths convert to floats");
    let (out, rstd) = forward_rows(xs_slice, d, |xr, o| {
        let rstd = (dot_slice(xr, xr) / d_t + eps).sqrt().recip();
        for ((o, &v), &g) in o.iter_mut().zip(xr).zip(gamma.iter()) {
            *o = v * rstd * g;
        }
        rstd
    });
    Ok(RmsNormOutput {
        output: ArrayD::from_shape_vec(x.shape(), out).expect("output has the input's shape"),
        rstd: Array1::from(rstd),
    })
}

/// Gradients of [`rms_norm`] from the input `x`, the same `gamma`, the forward's `rstd` and the
/// output gradient. With x̂ = x·rstd and ĝ = grad·gamma per row: dx = rstd·(ĝ − x̂·mean(ĝ·x̂)),
/// dgamma = Σ_rows grad·x̂.
pub fn rms_norm_backward<T: Element>(
    x: ArrayViewD<'_, T>,
    gamma: Option<ArrayView1<'_, T>>,
    rstd: ArrayView1<'_, T>,
    grad: ArrayViewD<'_, T>,
) -> Result<RmsNormGrads<T>> {
    const OP: &str = "rms_norm_backward";
    let d = row_length(OP, &x)?;
    let gamma = parameter(OP, "gamma", gamma.as_ref(), x.shape(), T::one())?;
    let rows = x.len() / d;
    check_backward(OP, &x, &grad, &[("rstd", rstd.len())], rows)?;
    let (xs, gs) = (x.as_standard_layout(), grad.as_standard_layout());
    let (xs, gs) = (
        xs.as_slice().expect("contiguous"),
        gs.as_slice().expect("contiguous"),
    );
    let d_t = T::from_usize(d).expect("lengths convert to floats");
    let (dx, [dgamma]) = backward_rows::<T, 1>(rows, d, |r, dx_row, [dgamma], x_hat| {
        let (xr, gr) = (&xs[r * d..(r + 1) * d], &gs[r * d..(r + 1) * d]);
        let s = rstd[r];
        for (((xh, o), &v), (&g, &w)) in x_hat
            .iter_mut()
            .zip(dx_row.iter_mut())
            .zip(xr)
            .zip(gr.iter().zip(gamma.iter()))
        {
            *xh = v * s;
            *o = g * w;
        }
        let mean_gx = dot_slice(dx_row, x_hat) / d_t;
        for (o, &xh) in dx_row.iter_mut().zip(x_hat.iter()) {
            *o = s * (*o - xh * mean_gx);
        }
        for ((dg, &g), &xh) in dgamma.iter_mut().zip(gr).zip(x_hat.iter()) {
            *dg = *dg + g * xh;
        }
    });
    Ok(RmsNormGrads {
        dx: ArrayD::from_shape_vec(x.shape(), dx).expect("gradient has the input's shape"),
        dgamma: Array1::from(dgamma),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{
        assert_bitwise_eq_across_threads, check_gradient, random_array, weighted_sum,
    };
    use ndarray::{array, Axis};

    /// LayerNorm the plain way, in f64.
    fn reference_layer_norm(
        x: &ArrayD<f64>,
        gamma: &Array1<f64>,
        beta: &Array1<f64>,
        eps: f64,
    ) -> ArrayD<f64> {
        let last = Axis(x.ndim() - 1);
        let mut out = x.clone();
        for mut lane in out.lanes_mut(last) {
            let mean = lane.mean().unwrap();
            let var = lane.mapv(|v| (v - mean) * (v - mean)).mean().unwrap();
            for (i, v) in lane.iter_mut().enumerate() {
                *v = (*v - mean) / (var + eps).sqrt() * gamma[i] + beta[i];
            }
        }
        out
    }

    #[test]
    fn layer_norm_by_hand() {
        let x = array![[1.0f64, 2.0, 3.0], [2.0, 4.0, 6.0]].into_dyn();
        let f = layer_norm(x.view(), None, None, 0.0).unwrap();
        let s = 1.5f64.sqrt();
        for (got, want) in f.output.iter().zip([-s, 0.0, s, -s, 0.0, s]) {
            assert!((got - want).abs() < 1e-15);
        }
        assert_eq!(f.mean.to_vec(), vec![2.0, 4.0]);
        assert!(
            (f.rstd[0] - 1.5f64.sqrt()).abs() < 1e-15
                && (f.rstd[1] - 0.375f64.sqrt()).abs() < 1e-15
        );
        let gamma = array![2.0, 1.0, 0.5];
        let beta = array![0.0, 10.0, 1.0];
        let f = layer_norm(x.view(), Some(gamma.view()), Some(beta.view()), 0.0).unwrap();
        assert!((f.output[[1, 0]] + 2.0 * s).abs() < 1e-15 && f.output[[1, 1]] == 10.0);
        // A constant row normalises to beta when eps > 0.
        let c = array![[3.0f32, 3.0, 3.0]].into_dyn();
        let f = layer_norm(c.view(), None, Some(beta.mapv(|v| v as f32).view()), 1e-5).unwrap();
        assert_eq!(f.output, array![[0.0f32, 10.0, 1.0]].into_dyn());
    }

    #[test]
    fn rms_norm_by_hand() {
        let x = array![[3.0f64, 4.0]].into_dyn();
        let f = rms_norm(x.view(), Some(array![1.0, 2.0].view()), 0.0).unwrap();
        let rms = 12.5f64.sqrt();
        assert!(
            (f.output[[0, 0]] - 3.0 / rms).abs() < 1e-15
                && (f.output[[0, 1]] - 8.0 / rms).abs() < 1e-15
        );
        assert!((f.rstd[0] - 1.0 / rms).abs() < 1e-16);
    }

    #[test]
    fn layer_norm_matches_reference() {
        let x = random_array::<f64>(&[3, 4, 7], 1) * 3.0 + 1.0;
        let gamma = random_array::<f64>(&[7], 2).into_dimensionality().unwrap();
        let beta = random_array::<f64>(&[7], 3).into_dimensionality().unwrap();
        let f = layer_norm(x.view(), Some(gamma.view()), Some(beta.view()), 1e-5).unwrap();
        let want = reference_layer_norm(&x, &gamma, &beta, 1e-5);
        assert!(f
            .output
            .iter()
            .zip(&want)
            .all(|(a, b)| (a - b).abs() < 1e-13));
        assert_eq!(f.mean.len(), 12);
        // f32 agrees with f64 to f32 precision.
        let f32_out = layer_norm(
            x.mapv(|v| v as f32).view(),
            Some(gamma.mapv(|v| v as f32).view()),
            None,
            1e-5,
        )
        .unwrap()
        .output;
        let want = reference_layer_norm(&x, &gamma, &Array1::zeros(7), 1e-5);
        assert!(f32_out
            .iter()
            .zip(&want)
            .all(|(&a, b)| (a as f64 - b).abs() < 2e-6));
    }

    #[test]
    fn gradients_match_finite_differences() {
        let eps = 1e-5;
        for (seed, shape) in [&[3, 1, 4][..], &[2, 5], &[1, 3], &[6]]
            .into_iter()
            .enumerate()
        {
            let seed = seed as u64 * 10;
            let d = shape[shape.len() - 1];
            let x = random_array::<f64>(shape, seed);
            let w = random_array::<f64>(shape, seed + 1);
            let gamma: Array1<f64> = random_array::<f64>(&[d], seed + 2)
                .into_dimensionality()
                .unwrap();
            let beta: Array1<f64> = random_array::<f64>(&[d], seed + 3)
                .into_dimensionality()
                .unwrap();
            for with_params in [true, false] {
                let (g, b) = if with_params {
                    (Some(gamma.view()), Some(beta.view()))
                } else {
                    (None, None)
                };
                let f = layer_norm(x.view(), g, b, eps).unwrap();
                let grads =
                    layer_norm_backward(x.view(), g, f.mean.view(), f.rstd.view(), w.view())
                        .unwrap();
                let loss = |x: &ArrayD<f64>, g: &Array1<f64>, b: &Array1<f64>| {
                    weighted_sum(
                        &layer_norm(x.view(), Some(g.view()), Some(b.view()), eps)
                            .unwrap()
                            .output,
                        &w,
                    )
                };
                let (g1, b0) = (
                    gamma.mapv(|v| if with_params { v } else { 1.0 }),
                    beta.mapv(|v| if with_params { v } else { 0.0 }),
                );
                check_gradient("layer_norm dx", &x, &grads.dx, |x| loss(x, &g1, &b0));
                check_gradient(
                    "layer_norm dgamma",
                    &g1.clone().into_dyn(),
                    &grads.dgamma.into_dyn(),
                    |g| loss(&x, &g.clone().into_dimensionality().unwrap(), &b0),
                );
                check_gradient(
                    "layer_norm dbeta",
                    &b0.clone().into_dyn(),
                    &grads.dbeta.into_dyn(),
                    |b| loss(&x, &g1, &b.clone().into_dimensionality().unwrap()),
                );

                let f = rms_norm(x.view(), g, eps).unwrap();
                let grads = rms_norm_backward(x.view(), g, f.rstd.view(), w.view()).unwrap();
                let loss = |x: &ArrayD<f64>, g: &Array1<f64>| {
                    weighted_sum(&rms_norm(x.view(), Some(g.view()), eps).unwrap().output, &w)
                };
                check_gradient("rms_norm dx", &x, &grads.dx, |x| loss(x, &g1));
                check_gradient(
                    "rms_norm dgamma",
                    &g1.clone().into_dyn(),
                    &grads.dgamma.into_dyn(),
                    |g| loss(&x, &g.clone().into_dimensionality().unwrap()),
                );
            }
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let x = ArrayD::<f32>::zeros(vec![2, 3]);
        let gamma = Array1::<f32>::ones(4);
        let err = layer_norm(x.view(), Some(gamma.view()), None, 1e-5)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("layer_norm: shape mismatch between [2, 3] and [4]"),
            "{err}"
        );
        let err = rms_norm(x.view(), None, -1.0).unwrap_err().to_string();
        assert!(err.contains("eps"), "{err}");
        assert!(layer_norm(x.view(), None, None, f32::NAN).is_err());
        let err = layer_norm(ArrayD::<f32>::zeros(vec![]).view(), None, None, 0.0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least one axis"), "{err}");
        let err = rms_norm(ArrayD::<f32>::zeros(vec![3, 0]).view(), None, 0.0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("[3, 0]") && err.contains("empty"), "{err}");
        let stats = Array1::<f32>::zeros(2);
        let err = layer_norm_backward(
            x.view(),
            None,
            stats.view(),
            stats.view(),
            ArrayD::zeros(vec![3, 2]).view(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("layer_norm_backward: shape mismatch between [2, 3] and [3, 2]"),
            "{err}"
        );
        let short = Array1::<f32>::zeros(1);
        let err = rms_norm_backward(x.view(), None, short.view(), x.view())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rstd must have one value per row (2)"),
            "{err}"
        );
    }

    #[test]
    fn empty_batches() {
        let x = ArrayD::<f32>::zeros(vec![0, 4]);
        let f = layer_norm(x.view(), None, None, 1e-5).unwrap();
        assert_eq!((f.output.shape(), f.mean.len()), (&[0usize, 4][..], 0));
        let grads =
            layer_norm_backward(x.view(), None, f.mean.view(), f.rstd.view(), x.view()).unwrap();
        assert_eq!(
            (grads.dx.shape(), grads.dgamma.to_vec()),
            (&[0usize, 4][..], vec![0.0; 4])
        );
        let f = rms_norm(x.view(), None, 1e-5).unwrap();
        let grads = rms_norm_backward(x.view(), None, f.rstd.view(), x.view()).unwrap();
        assert_eq!(grads.dgamma.to_vec(), vec![0.0; 4]);
    }

    #[test]
    fn results_are_identical_for_any_thread_count() {
        let x = random_array::<f32>(&[1000, 192], 5);
        let g = random_array::<f32>(&[1000, 192], 6);
        let gamma: Array1<f32> = random_array::<f32>(&[192], 7)
            .into_dimensionality()
            .unwrap();
        let beta: Array1<f32> = random_array::<f32>(&[192], 8)
            .into_dimensionality()
            .unwrap();
        let f = layer_norm(x.view(), Some(gamma.view()), Some(beta.view()), 1e-5).unwrap();
        assert_bitwise_eq_across_threads(|| {
            let f = layer_norm(x.view(), Some(gamma.view()), Some(beta.view()), 1e-5).unwrap();
            (f.output, f.mean, f.rstd)
        });
        assert_bitwise_eq_across_threads(|| {
            let b = layer_norm_backward(
                x.view(),
                Some(gamma.view()),
                f.mean.view(),
                f.rstd.view(),
                g.view(),
            )
            .unwrap();
            (b.dx, b.dgamma, b.dbeta)
        });
        let r = rms_norm(x.view(), Some(gamma.view()), 1e-6).unwrap();
        assert_bitwise_eq_across_threads(|| {
            rms_norm(x.view(), Some(gamma.view()), 1e-6).unwrap().output
        });
        assert_bitwise_eq_across_threads(|| {
            let b =
                rms_norm_backward(x.view(), Some(gamma.view()), r.rstd.view(), g.view()).unwrap();
            (b.dx, b.dgamma)
        });
    }
}
