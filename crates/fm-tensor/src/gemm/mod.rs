//! GEMM: C = αAB + βC, the one matrix product everything in fm goes through.
//!
//! PLACEHOLDER: naive loops; the packed, blocked, SIMD implementation replaces the body of
//! [`gemm`] while keeping these signatures.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};

use crate::element::Element;
use crate::error::{Result, TensorError};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// Scalar types with GEMM kernels (`f32` and `f64`). Sealed: implemented here only.
pub trait GemmElement: sealed::Sealed + Copy {}
impl GemmElement for f32 {}
impl GemmElement for f64 {}

/// C = αAB + βC for any strides of A, B and C (pass `a.t()` for Aᵀ).
pub fn gemm<T: Element>(
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    mut c: ArrayViewMut2<'_, T>,
) -> Result<()> {
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    if k != k2 {
        return Err(TensorError::shape_mismatch(
            "gemm",
            a.shape(),
            b.shape(),
            format!("inner dimensions {k} and {k2} differ"),
        ));
    }
    if c.dim() != (m, n) {
        return Err(TensorError::shape_mismatch(
            "gemm",
            &[m, n],
            c.shape(),
            "output must be [rows of A, columns of B]",
        ));
    }
    for i in 0..m {
        for j in 0..n {
            let mut acc = T::zero();
            for p in 0..k {
                acc = acc + a[[i, p]] * b[[p, j]];
            }
            let prev = if beta == T::zero() {
                T::zero()
            } else {
                beta * c[[i, j]]
            };
            c[[i, j]] = alpha * acc + prev;
        }
    }
    Ok(())
}

/// A·B into a new array: the entry point for users who only want the kernel.
pub fn matmul<T: Element>(a: ArrayView2<'_, T>, b: ArrayView2<'_, T>) -> Result<Array2<T>> {
    let mut c = Array2::zeros((a.nrows(), b.ncols()));
    gemm(T::one(), a, b, T::zero(), c.view_mut())?;
    Ok(c)
}
