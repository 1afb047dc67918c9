//! Broadcasting, as NumPy and PyTorch define it, and its adjoint: summing a gradient back to the
//! shape of an operand that was broadcast.
//!
//! Two shapes are aligned at their last axes; the shorter one is padded with leading axes of length
//! 1; along each axis the lengths must be equal or one of them 1, and the result takes the other.
//! So `[3, 1, 4]` and `[5, 1]` broadcast to `[3, 5, 4]`.
//!
//! ```
//! use fm_tensor::ops::broadcast::{broadcast_shape, sum_to_shape};
//! use ndarray::ArrayD;
//!
//! assert_eq!(broadcast_shape("add", &[3, 1, 4], &[5, 1])?, vec![3, 5, 4]);
//! let grad = ArrayD::<f32>::ones(vec![3, 5, 4]);
//! let g = sum_to_shape(grad.view(), &[5, 1])?; // each entry collects 3 * 4 ones
//! assert_eq!(g, ArrayD::from_elem(vec![5, 1], 12.0));
//! # Ok::<(), fm_tensor::TensorError>(())
//! ```

use ndarray::{ArrayD, ArrayViewD};

use super::reduce::{reduce_axes, SumReducer};
use crate::element::Element;
use crate::error::{Result, TensorError};

/// The shape two operands of `op` broadcast to, or a shape-mismatch error naming `op` and both shapes.
pub fn broadcast_shape(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let padded = |shape: &[usize], axis: usize| {
        let missing = rank - shape.len();
        if axis < missing {
            1
        } else {
            shape[axis - missing]
        }
    };
    (0..rank)
        .map(|axis| {
            let (la, lb) = (padded(a, axis), padded(b, axis));
            if la == lb || lb == 1 {
                Ok(la)
            } else if la == 1 {
                Ok(lb)
            } else {
                Err(TensorError::shape_mismatch(
                    op,
                    a,
                    b,
                    format!("axis {axis} of the broadcast shape has lengths {la} and {lb}; they must be equal or 1"),
                ))
            }
        })
        .collect()
}

/// Sums `grad` over the axes along which an operand of shape `shape` was broadcast, returning an
/// array of exactly `shape`: the backward of broadcasting.
///
/// `shape` must broadcast to `grad`'s shape without changing it, otherwise this is a shape mismatch.
/// The summation order is fixed by the shapes alone (see [`reduce`](super::reduce)), so the result is
/// bitwise the same for any thread count.
pub fn sum_to_shape<T: Element>(grad: ArrayViewD<'_, T>, shape: &[usize]) -> Result<ArrayD<T>> {
    let fits = shape.len() <= grad.ndim()
        && broadcast_shape("sum_to_shape", grad.shape(), shape).is_ok_and(|s| s == grad.shape());
    if !fits {
        return Err(TensorError::shape_mismatch(
            "sum_to_shape",
            grad.shape(),
            shape,
            "the target shape must broadcast to the gradient's shape",
        ));
    }
    let leading = grad.ndim() - shape.len();
    let reduced: Vec<bool> = grad
        .shape()
        .iter()
        .enumerate()
        .map(|(axis, &len)| axis < leading || (shape[axis - leading] == 1 && len != 1))
        .collect();
    let data = reduce_axes::<T, SumReducer>(grad, &reduced);
    Ok(ArrayD::from_shape_vec(shape, data).expect("reduced gradient matches the target shape"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{assert_bitwise_eq_across_threads, random_array};
    use ndarray::{array, Axis};

    #[test]
    fn broadcast_shapes_follow_numpy_rules() {
        assert_eq!(
            broadcast_shape("t", &[3, 1, 4], &[5, 1]).unwrap(),
            vec![3, 5, 4]
        );
        assert_eq!(broadcast_shape("t", &[], &[2, 3]).unwrap(), vec![2, 3]);
        assert_eq!(broadcast_shape("t", &[2, 3], &[2, 3]).unwrap(), vec![2, 3]);
        assert_eq!(broadcast_shape("t", &[1, 0], &[4, 1]).unwrap(), vec![4, 0]);
        assert_eq!(broadcast_shape("t", &[0], &[1]).unwrap(), vec![0]);
    }

    #[test]
    fn broadcast_error_names_op_and_both_shapes() {
        let err = broadcast_shape("add", &[2, 3], &[4, 3]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("add: shape mismatch between [2, 3] and [4, 3]"),
            "{text}"
        );
        assert!(text.contains("axis 0"), "{text}");
        assert!(matches!(err, TensorError::ShapeMismatch { op: "add", .. }));
    }

    #[test]
    fn sum_to_shape_matches_explicit_sums() {
        let g = random_array::<f64>(&[3, 5, 4], 1);
        let got = sum_to_shape(g.view(), &[5, 1]).unwrap();
        let want = g.sum_axis(Axis(0)).sum_axis(Axis(1)).insert_axis(Axis(1));
        assert!((got - want).iter().all(|d| d.abs() < 1e-12));

        let got = sum_to_shape(g.view(), &[3, 1, 4]).unwrap();
        let want = g.sum_axis(Axis(1)).insert_axis(Axis(1));
        assert!((got - want).iter().all(|d| d.abs() < 1e-12));

        let scalar = sum_to_shape(g.view(), &[]).unwrap();
        assert!((scalar.into_iter().next().unwrap() - g.sum()).abs() < 1e-12);
    }

    #[test]
    fn sum_to_shape_by_hand() {
        let g = array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn();
        assert_eq!(
            sum_to_shape(g.view(), &[3]).unwrap(),
            array![5.0, 7.0, 9.0].into_dyn()
        );
        assert_eq!(
            sum_to_shape(g.view(), &[2, 1]).unwrap(),
            array![[6.0], [15.0]].into_dyn()
        );
        assert_eq!(
            sum_to_shape(g.view(), &[1, 1]).unwrap(),
            array![[21.0]].into_dyn()
        );
        assert_eq!(sum_to_shape(g.view(), &[2, 3]).unwrap(), g);
    }

    #[test]
    fn sum_to_shape_ignores_layout() {
        let g = random_array::<f64>(&[6, 7], 2);
        let t = g.t().to_owned();
        let via_view = sum_to_shape(t.t().into_dyn(), &[7]).unwrap();
        let direct = sum_to_shape(g.view(), &[7]).unwrap();
        assert_eq!(via_view, direct);
    }

    #[test]
    fn sum_to_shape_rejects_shapes_that_do_not_broadcast() {
        let g = ArrayD::<f32>::zeros(vec![3, 4]);
        for bad in [&[2usize][..], &[3, 4, 1], &[4, 4]] {
            let err = sum_to_shape(g.view(), bad).unwrap_err();
            assert!(err.to_string().contains("[3, 4]"), "{err}");
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn sum_to_shape_of_empty_arrays() {
        let g = ArrayD::<f32>::zeros(vec![0, 3]);
        assert_eq!(
            sum_to_shape(g.view(), &[3]).unwrap(),
            ArrayD::<f32>::zeros(vec![3])
        );
        let g = ArrayD::<f32>::zeros(vec![2, 0]);
        assert_eq!(sum_to_shape(g.view(), &[1, 0]).unwrap().shape(), &[1, 0]);
    }

    #[test]
    fn sum_to_shape_is_thread_count_invariant() {
        let g = random_array::<f32>(&[64, 33, 257], 3);
        assert_bitwise_eq_across_threads(|| sum_to_shape(g.view(), &[257]).unwrap());
        assert_bitwise_eq_across_threads(|| sum_to_shape(g.view(), &[64, 1, 1]).unwrap());
        assert_bitwise_eq_across_threads(|| sum_to_shape(g.view(), &[33, 1]).unwrap());
    }
}
