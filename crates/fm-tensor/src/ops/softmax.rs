//! Softmax and log-softmax along one axis, numerically stable, with their backward passes.
//!
//! Each lane along `axis` (a "row"; pass `x.ndim() - 1` for the usual last axis) is normalised on
//! its own: the row maximum is subtracted before exponentiating, so no finite input overflows. Rows
//! run in parallel; within a row the sums use the fixed order of
//! [`reduce`](super::reduce), so results are bitwise the same for any thread count. Rows along the
//! last axis of a standard-layout array are read in place; another axis costs one transposed copy of
//! the input and one of the output.
//!
//! **Fully masked rows.** A row whose entries are all −∞ has no probability mass: `softmax` returns
//! zeros there and `log_softmax` returns −∞, and both backward passes return a zero gradient for such
//! a row (where the maths has none). No NaN and no panic. Rows with some −∞ entries are ordinary:
//! those entries get probability 0. A NaN in a row makes that row NaN.
//!
//! The backward passes need only the forward **output** `y` and the gradient:
//! softmax: dx = y ⊙ (g − Σ g⊙y); log-softmax: dx = g − eʸ ⊙ Σ g.
//!
//! ```
//! use fm_tensor::ops::softmax::{softmax, softmax_backward};
//! use ndarray::{array, ArrayD};
//!
//! let x = array![[1.0f64, 2.0, 3.0], [0.0, 0.0, f64::NEG_INFINITY]].into_dyn();
//! let y = softmax(x.view(), 1)?;
//! assert!((y[[0, 2]] - 0.6652409557748219).abs() < 1e-15);
//! assert_eq!((y[[1, 0]], y[[1, 2]]), (0.5, 0.0));
//! let dx = softmax_backward(y.view(), ArrayD::ones(y.shape()).view(), 1)?;
//! assert!(dx.iter().all(|d| d.abs() < 1e-15)); // a constant gradient moves nothing
//! # Ok::<(), fm_tensor::TensorError>(())
//! ```

use ndarray::{ArrayD, ArrayViewD};

use super::parallel::{for_each_chunk_mut, rows_per_task, worth_parallel};
use super::reduce::{max_slice, sum_slice};
use super::special::exp;
use crate::element::Element;
use crate::error::{Result, TensorError};

/// Checks that `axis` exists in `shape`.
fn check_axis(op: &'static str, shape: &[usize], axis: usize) -> Result<()> {
    if axis >= shape.len() {
        return Err(TensorError::invalid_argument(
            op,
            format!(
                "axis {axis} is out of range for shape {shape:?} ({} axes)",
                shape.len()
            ),
        ));
    }
    Ok(())
}

/// Runs `kernel(rows_in, row_out)` on every lane along `axis` of the `N` same-shaped `inputs`.
fn rowwise<T: Element, const N: usize>(
    inputs: [ArrayViewD<'_, T>; N],
    axis: usize,
    kernel: impl Fn([&[T]; N], &mut [T]) + Sync + Send,
) -> ArrayD<T> {
    let ndim = inputs[0].ndim();
    let last = ndim - 1;
    // Move `axis` last so each row is contiguous; remember how to move it back.
    let order: Vec<usize> = (0..ndim).filter(|&a| a != axis).chain([axis]).collect();
    let moved = inputs.map(|x| {
        if axis == last {
            x
        } else {
            x.permuted_axes(order.clone())
        }
    });
    let standard: [_; N] = std::array::from_fn(|k| moved[k].as_standard_layout());
    let slices: [&[T]; N] = std::array::from_fn(|k| {
        standard[k]
            .as_slice()
            .expect("a standard-layout array is a contiguous slice")
    });
    let row_len = standard[0].shape()[last];
    let mut out = crate::buffers::vec_for_overwrite(standard[0].len());
    let task = rows_per_task(row_len) * row_len;
    let parallel = worth_parallel(out.len());
    for_each_chunk_mut(&mut out, task, parallel, |c, chunk| {
        for (r, row_out) in chunk.chunks_mut(row_len.max(1)).enumerate() {
            let start = c * task + r * row_len;
            kernel(slices.map(|s| &s[start..start + row_len]), row_out);
        }
    });
    let out = ArrayD::from_shape_vec(standard[0].shape(), out).expect("output has the rows' shape");
    if axis == last {
        return out;
    }
    let mut back = vec![0; ndim];
    for (position, &a) in order.iter().enumerate() {
        back[a] = position;
    }
    out.permuted_axes(back).as_standard_layout().into_owned()
}

fn softmax_row<T: Element>([x]: [&[T]; 1], out: &mut [T]) {
    let max = max_slice(x);
    if max == T::neg_infinity() {
        out.fill(T::zero());
        return;
    }
    for (o, &v) in out.iter_mut().zip(x) {
        *o = exp(v - max);
    }
    let scale = sum_slice(out).recip();
    for o in out.iter_mut() {
        *o = *o * scale;
    }
}

fn log_softmax_row<T: Element>([x]: [&[T]; 1], out: &mut [T]) {
    let max = max_slice(x);
    if max == T::neg_infinity() {
        out.fill(T::neg_infinity());
        return;
    }
    for (o, &v) in out.iter_mut().zip(x) {
        *o = exp(v - max);
    }
    // (x − max) − ln Σ: subtracting max first keeps the digits a large max would swallow.
    let log_total = sum_slice(out).ln();
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (v - max) - log_total;
    }
}

fn softmax_backward_row<T: Element>([y, g]: [&[T]; 2], out: &mut [T]) {
    for ((o, &p), &d) in out.iter_mut().zip(y).zip(g) {
        *o = p * d;
    }
    let dot = sum_slice(out);
    for (o, &p) in out.iter_mut().zip(y) {
        *o = *o - p * dot;
    }
}

fn log_softmax_backward_row<T: Element>([y, g]: [&[T]; 2], out: &mut [T]) {
    if y.iter().all(|&v| v == T::neg_infinity()) {
        out.fill(T::zero());
        return;
    }
    let total = sum_slice(g);
    for ((o, &l), &d) in out.iter_mut().zip(y).zip(g) {
        *o = d - exp(l) * total;
    }
}

fn check_backward_shapes(
    op: &'static str,
    y: &ArrayViewD<'_, impl Element>,
    grad: &ArrayViewD<'_, impl Element>,
) -> Result<()> {
    if y.shape() != grad.shape() {
        return Err(TensorError::shape_mismatch(
            op,
            y.shape(),
            grad.shape(),
            "the gradient must have the shape of the forward output",
        ));
    }
    Ok(())
}

/// Softmax along `axis`: e^(x − max) / Σ e^(x − max) on every lane. Fully −∞ lanes give zeros.
pub fn softmax<T: Element>(x: ArrayViewD<'_, T>, axis: usize) -> Result<ArrayD<T>> {
    check_axis("softmax", x.shape(), axis)?;
    Ok(rowwise([x], axis, softmax_row))
}

/// Gradient of [`softmax`] from its output `y` and the output gradient: y ⊙ (g − Σ g⊙y) per lane.
pub fn softmax_backward<T: Element>(
    y: ArrayViewD<'_, T>,
    grad: ArrayViewD<'_, T>,
    axis: usize,
) -> Result<ArrayD<T>> {
    check_axis("softmax_backward", y.shape(), axis)?;
    check_backward_shapes("softmax_backward", &y, &grad)?;
    Ok(rowwise([y, grad], axis, softmax_backward_row))
}

/// Log-softmax along `axis`: x − max − ln Σ e^(x − max) on every lane. Fully −∞ lanes stay −∞.
pub fn log_softmax<T: Element>(x: ArrayViewD<'_, T>, axis: usize) -> Result<ArrayD<T>> {
    check_axis("log_softmax", x.shape(), axis)?;
    Ok(rowwise([x], axis, log_softmax_row))
}

/// Gradient of [`log_softmax`] from its output `y` and the output gradient: g − eʸ ⊙ Σ g per lane
/// (zero on fully −∞ lanes).
pub fn log_softmax_backward<T: Element>(
    y: ArrayViewD<'_, T>,
    grad: ArrayViewD<'_, T>,
    axis: usize,
) -> Result<ArrayD<T>> {
    check_axis("log_softmax_backward", y.shape(), axis)?;
    check_backward_shapes("log_softmax_backward", &y, &grad)?;
    Ok(rowwise([y, grad], axis, log_softmax_backward_row))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{
        assert_bitwise_eq_across_threads, check_gradient, random_array, random_in, weighted_sum,
    };
    use ndarray::{array, Axis};

    fn row<T: Element>(a: &ArrayD<T>, i: usize) -> Vec<T> {
        a.index_axis(Axis(0), i).iter().copied().collect()
    }

    /// Softmax along `axis` the plain way, in f64.
    fn reference_softmax(x: &ArrayD<f64>, axis: usize) -> ArrayD<f64> {
        let mut out = x.clone();
        for mut lane in out.lanes_mut(Axis(axis)) {
            let max = lane.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
            lane.mapv_inplace(|v| (v - max).exp());
            let total = lane.sum();
            lane.mapv_inplace(|v| v / total);
        }
        out
    }

    #[test]
    fn values_by_hand() {
        let x = array![1.0f64, 2.0, 3.0].into_dyn();
        let y = softmax(x.view(), 0).unwrap();
        let want = [0.09003057317038046, 0.24472847105479764, 0.6652409557748218];
        for (got, want) in y.iter().zip(want) {
            assert!((got - want).abs() < 2e-16, "{got} vs {want}");
        }
        let l = log_softmax(x.view(), 0).unwrap();
        let want = [
            -2.4076059644443806,
            -1.4076059644443804,
            -0.4076059644443804,
        ];
        for (got, want) in l.iter().zip(want) {
            assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        }
    }

    #[test]
    fn matches_reference_along_every_axis() {
        let x = random_in::<f64>(&[3, 4, 5], 1, -5.0, 5.0);
        for axis in 0..3 {
            let want = reference_softmax(&x, axis);
            let got = softmax(x.view(), axis).unwrap();
            assert!(
                got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-15),
                "axis {axis}"
            );
            let got = log_softmax(x.view(), axis).unwrap();
            assert!(
                got.iter()
                    .zip(&want)
                    .all(|(a, b)| (a - b.ln()).abs() < 1e-14),
                "axis {axis}"
            );
        }
    }

    #[test]
    fn large_inputs_are_stable() {
        let x = array![[1000.0f32, 1001.0, 999.0], [-1e30, 0.0, 1e30]].into_dyn();
        let y = softmax(x.view(), 1).unwrap();
        assert!(y.iter().all(|v| v.is_finite()));
        assert!((row(&y, 0).iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(row(&y, 1), vec![0.0, 0.0, 1.0]);
        let l = log_softmax(x.view(), 1).unwrap();
        assert!((l[[0, 1]] - (-0.407_606)).abs() < 1e-6, "{}", l[[0, 1]]);
        assert_eq!(l[[1, 2]], 0.0);
    }

    #[test]
    fn masked_and_fully_masked_rows() {
        let inf = f64::NEG_INFINITY;
        let x = array![[0.0, inf, 0.0], [inf, inf, inf]].into_dyn();
        let y = softmax(x.view(), 1).unwrap();
        assert_eq!(y, array![[0.5, 0.0, 0.5], [0.0, 0.0, 0.0]].into_dyn());
        let l = log_softmax(x.view(), 1).unwrap();
        assert_eq!(row(&l, 1), vec![inf; 3]);
        assert_eq!(l[[0, 1]], inf);
        let g = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn();
        let dx = softmax_backward(y.view(), g.view(), 1).unwrap();
        assert_eq!(row(&dx, 1), vec![0.0; 3]);
        assert_eq!(row(&dx, 0), vec![-0.5, 0.0, 0.5]);
        let dx = log_softmax_backward(l.view(), g.view(), 1).unwrap();
        assert_eq!(row(&dx, 1), vec![0.0; 3]);
        assert!(dx.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn gradients_match_finite_differences() {
        for (seed, shape) in [&[3, 1, 4][..], &[2, 5], &[6], &[1, 1]]
            .into_iter()
            .enumerate()
        {
            let x = random_array::<f64>(shape, seed as u64);
            let w = random_array::<f64>(shape, 10 + seed as u64);
            for axis in 0..shape.len() {
                let y = softmax(x.view(), axis).unwrap();
                let dx = softmax_backward(y.view(), w.view(), axis).unwrap();
                check_gradient("softmax", &x, &dx, |x| {
                    weighted_sum(&softmax(x.view(), axis).unwrap(), &w)
                });
                let y = log_softmax(x.view(), axis).unwrap();
                let dx = log_softmax_backward(y.view(), w.view(), axis).unwrap();
                check_gradient("log_softmax", &x, &dx, |x| {
                    weighted_sum(&log_softmax(x.view(), axis).unwrap(), &w)
                });
            }
        }
    }

    #[test]
    fn bad_arguments_are_errors() {
        let x = ArrayD::<f32>::zeros(vec![2, 3]);
        let err = softmax(x.view(), 2).unwrap_err().to_string();
        assert!(
            err.contains("axis 2 is out of range for shape [2, 3]"),
            "{err}"
        );
        assert!(log_softmax(ArrayD::<f32>::zeros(vec![]).view(), 0).is_err());
        let err = softmax_backward(x.view(), ArrayD::zeros(vec![3, 2]).view(), 1)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("softmax_backward: shape mismatch between [2, 3] and [3, 2]"),
            "{err}"
        );
        assert!(log_softmax_backward(x.view(), x.view(), 7).is_err());
    }

    #[test]
    fn empty_arrays() {
        for shape in [vec![0, 4], vec![4, 0], vec![2, 0, 3]] {
            let x = ArrayD::<f32>::zeros(shape.clone());
            for axis in 0..shape.len() {
                assert_eq!(softmax(x.view(), axis).unwrap().shape(), shape.as_slice());
                assert_eq!(
                    log_softmax_backward(x.view(), x.view(), axis)
                        .unwrap()
                        .shape(),
                    shape.as_slice()
                );
            }
        }
    }

    #[test]
    fn results_are_identical_for_any_thread_count() {
        let x = random_in::<f32>(&[256, 1000], 2, -8.0, 8.0);
        let g = random_array::<f32>(&[256, 1000], 3);
        for axis in [0, 1] {
            assert_bitwise_eq_across_threads(|| softmax(x.view(), axis).unwrap());
            assert_bitwise_eq_across_threads(|| log_softmax(x.view(), axis).unwrap());
            assert_bitwise_eq_across_threads(|| {
                softmax_backward(x.view(), g.view(), axis).unwrap()
            });
            assert_bitwise_eq_across_threads(|| {
                log_softmax_backward(x.view(), g.view(), axis).unwrap()
            });
        }
    }
}
